"""Many concurrent idle connections from one thread (selectors), and a line-echo server in a
process of its own, for capacity tests (tests/e2e/test_capacity.py) and bench/bench.py.

A client connection sends one line, waits for its echo and stays open; later every connection
(or a sample) sends a second line and must get it back. Sources 127.0.0.2.. spread the
connections over several local addresses, since one (source, destination) pair has only the
~28,000 ports of ip_local_port_range. A client socket is bound to its source with
IP_BIND_ADDRESS_NO_PORT: a port taken at bind() time would be withheld from every connect()
that picks its own (the bridge's, to the service), whatever the addresses."""
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

ECHO_SERVER = r'''
import os, selectors, socket, sys
# argv: the addresses to listen on ("host:port"), then writes "ready" on stdout.
sel = selectors.DefaultSelector()
for hp in sys.argv[1:]:
    host, port = hp.rsplit(":", 1)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data is None:
            for _ in range(256):
                try:
                    c, _ = key.fileobj.accept()
                except (BlockingIOError, OSError):
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, True)
            continue
        c = key.fileobj
        try:
            data = c.recv(65536)
        except OSError:
            data = b""
        if not data:
            sel.unregister(c)
            c.close()
            continue
        try:
            c.send(data)  # lines are short: the echo always fits the socket buffer
        except OSError:
            sel.unregister(c)
            c.close()
'''


def raise_nofile(want):
    """Raise this process's RLIMIT_NOFILE to `want` (the hard limit too, when allowed: root).
    Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_preexec(want):
    """A preexec_fn giving a child RLIMIT_NOFILE `want` (soft and hard; hard needs root)."""
    def setup():
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            pass
    return setup


def start_echo(addrs, log_path, nofile):
    """Start the echo server on every "host:port" in addrs; returns the Popen once it listens."""
    log = open(log_path, "w")
    p = subprocess.Popen([sys.executable, "-c", ECHO_SERVER] + list(addrs),
                         stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                         preexec_fn=nofile_preexec(nofile))
    log.close()
    line = p.stdout.readline()
    if line.strip() != b"ready":
        p.kill()
        p.wait(5)
        raise RuntimeError("echo server did not start: %s" % open(log_path).read())
    return p


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Held:
    """Connections that have had their first echo and are kept open."""

    def __init__(self):
        self.socks = []
        self.failed = 0
        self.errors = {}
        self.open_s = 0.0

    def fail(self, why):
        self.failed += 1
        self.errors[why] = self.errors.get(why, 0) + 1

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux >= 4.2


def _line(i, round_):
    return b"conn %d round %d\n" % (i, round_)


def _roundtrip(items, round_, timeout, held):
    """items: [(sock, index)], connected or connecting. Send each its line for `round_` (once
    connected), read the echo. Returns the sockets that got it back; the others are closed and
    counted as failures in `held`."""
    sel = selectors.DefaultSelector()
    state = {}
    for s, i in items:
        state[s] = [i, b"", round_ > 0]  # index, bytes read, line sent
        sel.register(s, selectors.EVENT_WRITE)
    ok = []
    end = time.monotonic() + timeout
    try:
        while state and time.monotonic() < end:
            for key, ev in sel.select(timeout=0.2):
                s = key.fileobj
                st = state[s]
                want = _line(st[0], round_)
                try:
                    if ev & selectors.EVENT_WRITE:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, os.strerror(err))
                        s.send(want)
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError(0, "closed")
                    st[1] += chunk
                    if len(st[1]) >= len(want):
                        sel.unregister(s)
                        del state[s]
                        if st[1] != want:
                            held.fail("wrong echo")
                            s.close()
                        else:
                            ok.append((s, st[0]))
                except OSError as e:
                    sel.unregister(s)
                    del state[s]
                    s.close()
                    held.fail(e.strerror or "error")
        for s in state:
            held.fail("timeout")
            s.close()
    finally:
        sel.close()
    return ok


def open_held(port, n, sources=("127.0.0.1",), batch=500, timeout=60.0):
    """Open n connections to 127.0.0.1:port (spread over `sources`), each with one echoed
    line; they stay open. Batches of `batch` connections are in flight at a time."""
    held = Held()
    t0 = time.monotonic()
    end = t0 + timeout
    items = []
    for start in range(0, n, batch):
        pend = []
        for i in range(start, min(n, start + batch)):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((sources[i % len(sources)], 0))
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError as e:
                s.close()
                held.fail(e.strerror or "connect")
                continue
            pend.append((s, i))
        items += _roundtrip(pend, 0, max(0.1, end - time.monotonic()), held)
    held.open_s = time.monotonic() - t0
    held.socks = [s for s, _ in items]
    held.items = items
    return held


def ping_held(held, round_=1, timeout=60.0, batch=5000):
    """Send every held connection its line for `round_`; returns how many echoed it. Failed
    ones are closed and dropped from `held`."""
    good = []
    end = time.monotonic() + timeout
    for start in range(0, len(held.items), batch):
        good += _roundtrip(held.items[start:start + batch], round_,
                           max(0.1, end - time.monotonic()), held)
    held.items = good
    held.socks = [s for s, _ in good]
    return len(good)
