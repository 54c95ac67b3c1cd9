"""The vrev program gives memory back after a burst of connections (cli/mem.c): a portal and a
bridge carry 600 connections at once; once those close, each process returns most of the
anonymous memory they took (before cli/mem.c: none of it, the heap stayed at its peak)."""
import os
import resource
import selectors
import socket
import subprocess
import threading
import time

import pytest

from harness import bridge_config, free_port, portal_config, wait_until

CONNS = 600


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/%d/status" % pid)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * CONNS + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("needs %d descriptors, the hard limit is %d" % (want, hard))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@pytest.fixture
def echo_server():
    """One thread, many connections: every byte read is written back."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1024)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                if key.fileobj is lsock:
                    try:
                        c, _ = lsock.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if data:
                    key.fileobj.sendall(data)  # a few bytes: the socket buffer takes them
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield lsock.getsockname()[1]
    stop.set()
    t.join(5)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()


def echo_once(port, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"ping")
            return s.recv(16) == b"ping"
    except OSError:
        return False


def hold(port, n):
    """n connections through the tunnel, each with one echoed exchange, left open."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"hello")
        socks.append(s)
    for s in socks:
        got = b""
        while len(got) < 5:
            chunk = s.recv(16)
            assert chunk, "a tunneled connection closed before its echo"
            got += chunk
    return socks


@pytest.mark.limit(90)
def test_memory_returns_after_connections_close(procs, echo_server, tmp_path):
    if os.environ.get("VREV_SAN_FLAGS", "").strip():
        pytest.skip("under a sanitizer the program leaves memory to the sanitizer's allocator")
    raise_nofile()
    external, tunnel = free_port(), free_port()
    portal = procs.start("vrev", "portal", portal_config(external, tunnel))
    bridge = procs.start("vrev", "bridge", bridge_config(tunnel, echo_server))
    assert wait_until(lambda: echo_once(external), 15), procs.log(portal) + procs.log(bridge)
    time.sleep(1)
    pids = {"portal": portal.pid, "bridge": bridge.pid}
    idle = {k: rss_anon_kib(p) for k, p in pids.items()}
    socks = hold(external, CONNS)
    time.sleep(0.5)
    held = {k: rss_anon_kib(p) for k, p in pids.items()}
    for s in socks:
        s.close()
    for side in pids:
        assert held[side] - idle[side] >= CONNS // 4, \
            "%s: %d connections took only %d KiB" % (side, CONNS, held[side] - idle[side])

    def returned(side):
        # at least half of what the connections took
        return rss_anon_kib(pids[side]) - idle[side] <= (held[side] - idle[side]) // 2

    for side in pids:
        assert wait_until(lambda: returned(side), 10), \
            "%s RssAnon: idle %d KiB, %d connections %d KiB, 10 s after they closed %d KiB" % (
                side, idle[side], CONNS, held[side], rss_anon_kib(pids[side]))
    assert portal.poll() is None and bridge.poll() is None
