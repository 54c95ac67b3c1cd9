"""Helpers for the CLI tests."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, timeout=30, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
