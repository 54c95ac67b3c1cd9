"""One slow public client beside fast ones, through `vrev portal` + `vrev bridge` and through
each mixed pairing with V2Ray 4.34 (which runs the configuration --print-config gives).

vrev + vrev negotiate per-session flow control (docs/extensions.md): the slow client keeps
receiving at its own pace and the other clients are not held up at all. With V2Ray on either
end there is no extension (V2Ray ignores vrev's HELLO, and this is where that is shown in
both roles): a vrev portal resets the slow session after its stall timeout (10 s) and the
tunnel reads on; a V2Ray portal blocks its whole tunnel behind the slow client (V2Ray's own
head-of-line blocking), and the vrev bridge behind it must neither give up the tunnel nor
lose a byte. Before the fix, vrev + vrev deadlocked for good: no byte for anybody, ever."""
import json
import socket
import subprocess
import threading
import time

import pytest

from harness import UUID, free_port, port_open, wait_until
from streamsrv import StreamServer, pattern_ok

@pytest.fixture
def stream_backend():
    b = StreamServer()
    yield b.port
    b.close()


def fetch(port, n, timeout):
    """Ask for n bytes; returns (bytes received and checked, seconds)."""
    t0 = time.monotonic()
    got = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"%d\n" % n)
        while got < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            assert pattern_ok(chunk, got), "wrong bytes at offset %d" % got
            got += len(chunk)
    return got, time.monotonic() - t0


class SlowClient(threading.Thread):
    """Downloads a large object reading 16 KiB every 0.25 s (64 KiB/s), checking every byte;
    records when bytes came and how the stream ended."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.got, self.times, self.end = port, 0, [], None
        self.halt = threading.Event()

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.sendall(b"%d\n" % (256 << 20))
                while not self.halt.is_set():
                    chunk = s.recv(16384)
                    if not chunk:
                        self.end = "eof"
                        return
                    if not pattern_ok(chunk, self.got):
                        self.end = "wrong bytes"
                        return
                    self.got += len(chunk)
                    self.times.append((time.monotonic(), self.got))
                    time.sleep(0.25)
                self.end = "stopped"
        except OSError as e:
            self.end = "error: %s" % e

    def bytes_since(self, t):
        before = [g for (at, g) in self.times if at <= t]
        return self.got - (before[-1] if before else 0)


def portal_argv(tun, pub):
    return ["vrev", "portal", "--listen", "127.0.0.1:%d" % tun,
            "--public", "127.0.0.1:%d=web" % pub, "--id", UUID]


def bridge_argv(tun, backend):
    return ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun,
            "--to", "web=127.0.0.1:%d" % backend, "--id", UUID]


def printed(procs, argv):
    r = subprocess.run([procs.vrev_bin] + argv[1:] + ["--print-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def start_pair(procs, kind_portal, kind_bridge, backend):
    tun, pub = free_port(), free_port()
    if kind_portal == "vrev":
        portal = procs.start_argv("portal", portal_argv(tun, pub))
    else:
        portal = procs.start("v2ray", "portal", printed(procs, portal_argv(tun, pub)))
    assert wait_until(lambda: port_open(tun), 10)
    if kind_bridge == "vrev":
        bridge = procs.start_argv("bridge", bridge_argv(tun, backend))
    else:
        bridge = procs.start("v2ray", "bridge", printed(procs, bridge_argv(tun, backend)))

    def serves():
        try:
            return fetch(pub, 1000, 2)[0] == 1000
        except OSError:
            return False
    assert wait_until(serves, 15), procs.log(portal) + procs.log(bridge)
    return portal, bridge, pub


def v2ray_complaints(procs, p):
    """Lines in which V2Ray says it could not read what vrev sent."""
    bad = ("unknown status", "failed to read metadata", "invalid metalen",
           "failed to process data")
    return [l for l in procs.log(p).splitlines() if any(b in l for b in bad)]


@pytest.mark.limit(60)
def test_slow_reader_vrev_both_ends(procs, stream_backend):
    portal, bridge, pub = start_pair(procs, "vrev", "vrev", stream_backend)
    alone = [fetch(pub, 65536, 5)[1] for _ in range(5)]
    slow = SlowClient(pub)
    slow.start()
    time.sleep(1.5)  # its window is full: the portal holds what the client has not read
    t0 = time.monotonic()
    beside = []
    for _ in range(10):
        got, secs = fetch(pub, 65536, 5)
        assert got == 65536
        beside.append(secs)
    time.sleep(2.5)  # past the old stall timeout's share: the slow client still reads on
    t1 = time.monotonic()
    time.sleep(1.0)
    slow.halt.set()
    slow.join(5)
    print("64 KiB alone: max %.3f s; beside a slow reader: max %.3f s; slow client got %d "
          "bytes" % (max(alone), max(beside), slow.got))
    assert max(beside) < 1.0, beside  # not held up (before: never answered)
    assert slow.end == "stopped", slow.end  # never cut, never wrong bytes
    assert slow.bytes_since(t0) > 200 * 1024  # ~64 KiB/s for ~4 s
    assert slow.bytes_since(t1) > 16 * 1024  # and still going at the end
    assert "stalled the tunnel" not in procs.log(portal) + procs.log(bridge)


@pytest.mark.limit(90)
@pytest.mark.parametrize("kinds", [("vrev", "v2ray"), ("v2ray", "vrev")],
                         ids=["vrev-portal-v2ray-bridge", "v2ray-portal-vrev-bridge"])
def test_slow_reader_with_v2ray(procs, stream_backend, kinds):
    """No extension with V2Ray: V2Ray's semantics, made safe. A vrev portal resets the slow
    session after its stall timeout and the other requests complete; a V2Ray portal blocks
    every session behind the slow one for as long as it reads (V2Ray + V2Ray does the same:
    nothing for the others in 40 s, checked), and once the slow client goes away the others
    complete. Either way every byte is right, the tunnel stays up, and V2Ray reads vrev's
    frames (its HELLO included) without a complaint."""
    portal, bridge, pub = start_pair(procs, kinds[0], kinds[1], stream_backend)
    slow = SlowClient(pub)
    slow.start()
    time.sleep(1.5)
    results = []

    def request():
        try:
            results.append(fetch(pub, 65536, 40))
        except OSError as e:
            results.append((repr(e), 0))
    threads = [threading.Thread(target=request) for _ in range(3)]
    for t in threads:
        t.start()
    if kinds[0] == "v2ray":  # its portal waits for the slow client: it goes away
        time.sleep(4)
        slow.halt.set()
        slow.join(5)
    for t in threads:
        t.join(45)
    slow.halt.set()
    slow.join(5)
    print("requests beside a slow reader:", results, "slow client:", slow.got, slow.end)
    assert [r[0] for r in results] == [65536] * 3, results
    assert slow.end in ("stopped", "error: [Errno 104] Connection reset by peer"), slow.end
    if kinds[0] == "vrev":
        assert "stalled the tunnel" in procs.log(portal)  # V2Ray's semantics, plus the reset
    else:
        assert slow.end == "stopped"  # V2Ray's portal throttles everybody to it; nobody cut
    logs = procs.log(portal) + procs.log(bridge)
    assert "tunnel closed" not in logs and "silent for" not in logs, logs
    v2 = portal if kinds[0] == "v2ray" else bridge
    assert v2ray_complaints(procs, v2) == []
    got, _ = fetch(pub, 4 << 20, 20)  # and it carries bulk as before
    assert got == 4 << 20


@pytest.mark.limit(60)
def test_slow_local_service_behind_v2ray_portal(procs, stream_backend):
    """V2Ray portal + vrev bridge, an upload to a local service that reads nothing for 9 s.
    Without flow control the bridge stops reading its tunnel behind that session (V2Ray's
    semantics) until the stall timeout; it must not take its own pause for the portal's
    silence: it closed the whole tunnel after 7 s ("tunnel silent"), cutting every session."""
    portal, bridge, pub = start_pair(procs, "v2ray", "vrev", stream_backend)
    up = socket.create_connection(("127.0.0.1", pub), timeout=20)
    up.sendall(b"sink 9\n")
    payload = b"u" * (1 << 20)

    def upload():
        try:
            for _ in range(8):
                up.sendall(payload)
        except OSError:
            pass
    t = threading.Thread(target=upload, daemon=True)
    t.start()
    time.sleep(8.5)  # past the bridge's 7 s silence limit, before the 10 s stall reset
    assert "silent for" not in procs.log(bridge), procs.log(bridge)
    t.join(15)
    up.close()
    got, _ = fetch(pub, 65536, 15)  # the tunnel carries new sessions
    assert got == 65536
    assert "tunnel closed" not in procs.log(bridge) and "silent for" not in procs.log(bridge)
