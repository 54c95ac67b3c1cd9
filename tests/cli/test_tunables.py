"""--heartbeat, --dead-after and --max-sessions on vrev portal|bridge: values, errors, and each
one's effect, seen on the tunnel's TCP connection through a relay that counts what crosses it."""
import socket
import subprocess
import threading
import time

import pytest

from cliutil import run
from test_cli_limits import UUID, Echo, free_port, stop


class Relay(Echo):
    """Accepts the bridge's tunnel connections and joins each to `upstream` (or, with None,
    holds it silent: a portal that never answers). Counts connections, and the reads from the
    upstream side (one per write the portal made, on an idle loopback tunnel)."""

    def __init__(self, upstream=None):
        self.upstream = upstream
        self.accepted = []  # monotonic times
        self.down_reads = []  # monotonic times of reads from upstream
        super().__init__()

    def echo(self, c):  # Echo's per-connection handler, in a thread of its own
        self.accepted.append(time.monotonic())
        if self.upstream is None:
            self.pump(c, None, False)
            return
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            c.close()  # as a portal not up yet: the bridge dials again
            return
        threading.Thread(target=self.pump, args=(u, c, True), daemon=True).start()
        self.pump(c, u, False)

    def pump(self, src, dst, down):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if down:
                    self.down_reads.append(time.monotonic())
                if dst:
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                if s:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def start(vrev, tmp_path, name, argv):
    log = open(tmp_path / (name + ".log"), "w")
    return subprocess.Popen([vrev] + argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


PORTAL = ["portal", "--listen", "127.0.0.1:1", "--public", "127.0.0.1:2", "--id", UUID]
BRIDGE = ["bridge", "--portal", "127.0.0.1:1", "--id", UUID, "--to", "127.0.0.1:9"]


@pytest.mark.parametrize("argv,opt,value,why", [
    (PORTAL, "--heartbeat", "5x", "not a duration"),
    (PORTAL, "--heartbeat", "0", "out of range (1ms..1h)"),
    (PORTAL, "--heartbeat", "61m", "not a duration"),
    (PORTAL, "--heartbeat", "99999999999999999999999s", "not a duration"),
    (PORTAL, "--dead-after", "1.5s", "not a duration"),
    (BRIDGE, "--dead-after", "500ms", "out of range (1s..1h)"),
    (BRIDGE, "--dead-after", "", "not a duration"),
    (BRIDGE, "--max-sessions", "0", "out of range"),
    (PORTAL, "--max-sessions", "65001", "out of range"),
    (BRIDGE, "--max-sessions", "-1", "out of range"),
    (BRIDGE, "--max-sessions", "16k", "out of range"),
])
def test_bad_value_names_the_option(vrev, argv, opt, value, why):
    r = run(vrev, *argv, opt, value, "--print-config")
    assert r.returncode == 2, r.stdout
    assert "vrev: %s '%s': %s" % (opt, value, why) in r.stderr, r.stderr


def test_good_values_and_portal_only_heartbeat(vrev):
    for argv, opt, value in ((PORTAL, "--heartbeat", "500ms"), (PORTAL, "--heartbeat", "10"),
                             (PORTAL, "--dead-after", "2m"), (BRIDGE, "--dead-after", "1s"),
                             (BRIDGE, "--dead-after", "3600"), (PORTAL, "--max-sessions", "1"),
                             (BRIDGE, "--max-sessions", "65000")):
        r = run(vrev, *argv, opt, value, "--print-config")
        assert r.returncode == 0, (opt, value, r.stderr)
    r = run(vrev, *BRIDGE, "--heartbeat", "1s")  # the portal sends heartbeats, not the bridge
    assert r.returncode == 2 and "unknown option '--heartbeat'" in r.stderr


def test_bridge_dead_after_redials_a_silent_portal(vrev, tmp_path):
    """A 'portal' that accepts and never answers: with --dead-after 1s the bridge gives the
    tunnel up at its next 2 s check and dials again at once (default: 7 s)."""
    relay = Relay(None)
    p = start(vrev, tmp_path, "bridge", ["bridge", "--portal", "127.0.0.1:%d" % relay.port,
                                         "--id", UUID, "--to", "127.0.0.1:9",
                                         "--dead-after", "1s"])
    try:
        assert wait_for(lambda: len(relay.accepted) >= 2, 6), relay.accepted
    finally:
        stop([p])
        relay.sock.close()
    assert 1.0 <= relay.accepted[1] - relay.accepted[0] <= 3.5, relay.accepted
    assert "tunnel silent for 1000 ms: closing it" in (tmp_path / "bridge.log").read_text()


def tunnel(vrev, tmp_path, portal_args, bridge_args):
    """Portal, relay, bridge, echo service: (public port, relay, processes, echo)."""
    echo = Echo()
    tport, pport = free_port(), free_port()
    portal = start(vrev, tmp_path, "portal", ["portal", "--listen", "127.0.0.1:%d" % tport,
                                               "--public", "127.0.0.1:%d" % pport, "--id",
                                               UUID] + portal_args)
    assert wait_for(lambda: "tunnel on port" in (tmp_path / "portal.log").read_text(), 10)
    relay = Relay(tport)
    bridge = start(vrev, tmp_path, "bridge", ["bridge", "--portal", "127.0.0.1:%d" % relay.port,
                                               "--id", UUID, "--to", "127.0.0.1:%d" % echo.port]
                   + bridge_args)
    return pport, relay, [bridge, portal], echo


def echo_once(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"ping")
            return s.recv(16) == b"ping"
    except OSError:
        return False


@pytest.mark.parametrize("heartbeat", ["100ms", None])
def test_portal_heartbeat_period(vrev, tmp_path, heartbeat):
    """The portal's writes on an idle tunnel are its heartbeats: about 20 in 2 s at 100ms,
    one or two at the default 2 s."""
    pport, relay, procs, echo = tunnel(vrev, tmp_path,
                                       ["--heartbeat", heartbeat] if heartbeat else [], [])
    try:
        assert wait_for(lambda: echo_once(pport), 10)
        time.sleep(0.3)
        t0 = time.monotonic()
        time.sleep(2.0)
        n = sum(1 for t in relay.down_reads if t0 <= t < t0 + 2.0)
    finally:
        stop(procs)
        relay.sock.close()
        echo.sock.close()
    if heartbeat:
        assert n >= 8, n
    else:
        assert n <= 3, n


def test_portal_max_sessions_drains(vrev, tmp_path):
    """--max-sessions 2 on the portal: after more than 2 sessions the tunnel is drained at the
    next heartbeat and the bridge opens another."""
    pport, relay, procs, echo = tunnel(vrev, tmp_path,
                                       ["--max-sessions", "2", "--heartbeat", "200ms"], [])
    try:
        assert wait_for(lambda: echo_once(pport), 10)
        for _ in range(3):
            assert echo_once(pport)
        assert wait_for(lambda: "drained after" in (tmp_path / "portal.log").read_text(), 3)
        assert wait_for(lambda: len(relay.accepted) >= 2, 3), relay.accepted
        assert echo_once(pport)
    finally:
        stop(procs)
        relay.sock.close()
        echo.sock.close()
    assert "(lifetime limit" in (tmp_path / "portal.log").read_text()


@pytest.mark.parametrize("max_sessions", ["1", None])
def test_bridge_max_sessions_opens_tunnels(vrev, tmp_path, max_sessions):
    """Three sessions held open: with --max-sessions 1 the bridge's 2 s check opens another
    tunnel (more than 1 live session per tunnel); at the default 16 it keeps one."""
    pport, relay, procs, echo = tunnel(
        vrev, tmp_path, [], ["--max-sessions", max_sessions] if max_sessions else [])
    held = []
    try:
        assert wait_for(lambda: echo_once(pport), 10)
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", pport), timeout=3)
            s.sendall(b"ping")
            assert s.recv(16) == b"ping"
            held.append(s)
        more = wait_for(lambda: len(relay.accepted) >= 2, 3.5)
    finally:
        for s in held:
            s.close()
        stop(procs)
        relay.sock.close()
        echo.sock.close()
    assert more == bool(max_sessions), relay.accepted
