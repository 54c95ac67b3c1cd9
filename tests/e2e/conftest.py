"""Fixtures for the process-level tests (helpers live in harness.py)."""
from harness import backend, procs, time_limit, udp_echo, v2ray_bin, vrev_bin  # noqa: F401
from harness import pytest_configure  # noqa: F401 (hook)
