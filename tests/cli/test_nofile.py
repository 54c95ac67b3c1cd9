"""The vrev program raises its soft RLIMIT_NOFILE to the hard limit at start (cli/nofile.c), as
nginx's worker_rlimit_nofile and Go do, and says so; a low hard limit is a warning. At the
usual soft limit of 1024 a portal stalled at ~1000 connections (EMFILE)."""
import resource
import subprocess
import time

import pytest


def soft_limit_of(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc/%d/limits" % pid)


def run_bridge(vrev, soft, hard):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # No portal listens on port 1: the bridge only retries; it runs until stopped.
    p = subprocess.Popen([vrev, "bridge", "--portal", "127.0.0.1:1", "--to", "127.0.0.1:2",
                          "--id", "5783a3e7-e373-51cd-8642-c83782b807c5"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, preexec_fn=limit)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and soft_limit_of(p.pid) == soft and soft != hard:
            time.sleep(0.01)
        time.sleep(0.2)
        return soft_limit_of(p.pid)
    finally:
        p.terminate()
        err = p.communicate(timeout=5)[1].decode()
        run_bridge.log = err


def test_soft_limit_raised_to_hard(vrev):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("the hard limit (%d) leaves nothing to raise" % hard)
    want = hard if hard != resource.RLIM_INFINITY else None
    got = run_bridge(vrev, 1024, hard)
    assert got > 1024 and (want is None or got == want), got
    assert "open-file limit raised from 1024 to %d" % got in run_bridge.log, run_bridge.log


def test_low_hard_limit_is_a_warning(vrev):
    got = run_bridge(vrev, 512, 512)
    assert got == 512
    assert "[warn]" in run_bridge.log and "open-file limit 512" in run_bridge.log, \
        run_bridge.log
