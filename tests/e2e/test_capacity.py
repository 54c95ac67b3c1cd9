"""Capacity and recovery of a vrev portal + vrev bridge (the CLI path, default options).

- 10,000 concurrent idle connections through one pair: each sends a line and gets its echo,
  all of them answer a second line after the tunnels that carried them were drained and had
  time to die of any liveness check (before: the mux codec's default of 1024 live sessions
  per tunnel served ~1023 and reset the rest; at Linux's default soft RLIMIT_NOFILE of 1024
  the listeners stalled at ~1000). Descriptors come back to the baseline once they close.
- A restarted portal is served again quickly (the bridge redials a lost tunnel at once, then
  every 25..100 ms; the portal holds a public connection until a tunnel comes), and so is a
  restarted bridge.

The same 10,000 under `make asan` (about 20 s there); VREV_CAPACITY_CONNS sets another
number."""
import os
import random
import statistics
import time

import pytest

import holdconns as hc
from harness import UUID, free_port, http_get, wait_until

SANITIZED = bool(os.environ.get("VREV_SAN_FLAGS", "").strip())  # memory is ASan's then
CONNS = int(os.environ.get("VREV_CAPACITY_CONNS") or 10000)
SOURCES = ["127.0.0.%d" % i for i in range(2, 10)]
# Longer than the bridge's dead-tunnel check (7 s) and the portal's TCP_USER_TIMEOUT (10 s)
# after the last drain: a drained tunnel that such a check killed would take its sessions.
HOLD_S = 11


def portal_argv(tun, pub, name="web"):
    return ["vrev", "portal", "--listen", "127.0.0.1:%d" % tun,
            "--public", "127.0.0.1:%d=%s" % (pub, name), "--id", UUID]


def bridge_argv(tun, backend, name="web", host="127.0.0.1"):
    return ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun,
            "--to", "%s=%s:%d" % (name, host, backend), "--id", UUID]


def listening(port):
    """Something listens on 127.0.0.1:port (read from /proc: connecting would be a client)."""
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


def echo_works(port):
    try:
        h = hc.open_held(port, 1, timeout=3)
        ok = len(h.socks) == 1
        h.close()
        return ok
    except OSError:
        return False


def counts(pids):
    return ({k: hc.fd_count(p) for k, p in pids.items()},
            {k: hc.rss_kib(p) for k, p in pids.items()})


@pytest.mark.limit(150)
def test_ten_thousand_idle_connections(procs, tmp_path):
    hc.raise_nofile(CONNS + 1024)
    echo_port, tun, pub = free_port(), free_port(), free_port()
    # The bridge's connections to the service take ports of 127.0.0.1 -> echo_host, and keep
    # them in TIME_WAIT for a minute after closing: an address of its own for each run.
    echo_host = "127.0.0.%d" % random.randrange(10, 250)
    echo = hc.start_echo(["%s:%d" % (echo_host, echo_port)], tmp_path / "echo.log",
                         CONNS + 1024)
    try:
        portal = procs.start_argv("portal", portal_argv(tun, pub))
        assert wait_until(lambda: listening(tun) and listening(pub), 10), procs.log(portal)
        bridge = procs.start_argv("bridge", bridge_argv(tun, echo_port, host=echo_host))
        assert wait_until(lambda: echo_works(pub), 10), procs.log(portal) + procs.log(bridge)
        time.sleep(0.5)
        pids = {"portal": portal.pid, "bridge": bridge.pid}
        fd0, rss0 = counts(pids)

        held = hc.open_held(pub, CONNS, SOURCES, timeout=60)
        print("%d connections open in %.2f s (%d failed: %s)" % (len(held.socks), held.open_s,
                                                                 held.failed, held.errors))
        assert len(held.socks) == CONNS, (held.errors, procs.log(portal)[-3000:],
                                          procs.log(bridge)[-3000:])
        fd1, rss1 = counts(pids)
        for side in pids:
            assert fd1[side] >= fd0[side] + CONNS, (side, fd0, fd1)

        time.sleep(HOLD_S)
        answered = hc.ping_held(held, 1, timeout=60)
        assert answered == CONNS, (held.errors, procs.log(portal)[-3000:],
                                   procs.log(bridge)[-3000:])
        assert portal.poll() is None and bridge.poll() is None
        assert "silent" not in procs.log(bridge), procs.log(bridge)[-3000:]
        held.close()

        def settled():
            return all(hc.fd_count(p) <= fd0[k] + 4 for k, p in pids.items())
        assert wait_until(settled, 15, 0.2), (fd0, counts(pids)[0])
        time.sleep(2)  # the program trims its heap a second after a burst of closes
        fd2, rss2 = counts(pids)
        per_conn = sum(rss1[k] - rss0[k] for k in pids) / CONNS
        print("descriptors portal/bridge: %d/%d idle, %d/%d held, %d/%d after close" % (
            fd0["portal"], fd0["bridge"], fd1["portal"], fd1["bridge"], fd2["portal"],
            fd2["bridge"]))
        print("RSS KiB portal/bridge: %d/%d idle, %d/%d held, %d/%d after close; "
              "%.2f KiB per connection (both sides)" % (
                  rss0["portal"], rss0["bridge"], rss1["portal"], rss1["bridge"],
                  rss2["portal"], rss2["bridge"], per_conn))
        if not SANITIZED:
            assert per_conn < 16, "%.1f KiB per connection" % per_conn
    finally:
        echo.terminate()
        echo.wait(5)


def served_after(port, t0):
    """Seconds from t0 until a request on a fresh connection is answered (the portal holds a
    connection that finds no tunnel yet: no polling needed)."""
    head, body = http_get(port, timeout=5)
    assert body == b"hello from the backend\n"
    return time.monotonic() - t0


@pytest.mark.limit(90)
def test_restart_recovery(procs, backend):
    """A restarted portal is served again within about 100 ms of listening (median of 5), a
    restarted bridge within about 50 ms of starting. Bounds here are generous (a loaded
    machine, a sanitizer); the measured medians are printed."""
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: listening(tun) and listening(pub), 10)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend))
    served_after(pub, time.monotonic())
    portal_times, bridge_times = [], []
    for i in range(5):
        procs.stop(portal)
        time.sleep(0.5 + 0.2 * i)  # several phases of the bridge's backoff
        portal = procs.start_argv("portal-%d" % i, portal_argv(tun, pub))
        assert wait_until(lambda: listening(pub), 10, 0.001), procs.log(portal)
        portal_times.append(served_after(pub, time.monotonic()))
    for i in range(5):
        procs.stop(bridge)
        t0 = time.monotonic()
        bridge = procs.start_argv("bridge-%d" % i, bridge_argv(tun, backend))
        bridge_times.append(served_after(pub, t0))
    pm, bm = statistics.median(portal_times), statistics.median(bridge_times)
    print("served again after a portal restart: median %.0f ms (%s); after a bridge restart: "
          "median %.0f ms (%s)" % (pm * 1000, " ".join("%.0f" % (t * 1000) for t in portal_times),
                                  bm * 1000, " ".join("%.0f" % (t * 1000) for t in bridge_times)))
    assert pm < 1.0, portal_times
    assert bm < 1.0, bridge_times
