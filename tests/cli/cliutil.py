"""Helpers for the CLI tests."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def run(*args, timeout=30, **kw):
    """Run a command to its end; a sanitizer report in its output fails the test whatever
    the exit status (a test that expects a failure would take ASan's for it)."""
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    for marker in SANITIZER_MARKERS:
        assert marker not in r.stdout + r.stderr, r.stdout + r.stderr
    return r
