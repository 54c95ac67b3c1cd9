"""Slow 1 MiB streams whose every byte is checked, for the crash-honest close checks
(tests/e2e/test_crash_closes.py and bench/bench.py's kill cycles). The sources are slow (the
service sends a download, the client an upload, in small pieces) so that a stream is still
going when a proxy dies; a stream cut that way must end with an error (a reset), never clean
and short.

Each stream ends in one of these outcomes, which callers count under their own labels:
"done" (every byte, right), "reset" (an error), "clean_short" (a clean end before the last
byte), "no_response" (a download's clean end before the end of the response's head), "wrong"
(a byte that is not the pattern's)."""
import socket
import threading
import time

SIZE = 1 << 20
CHUNK = 16 << 10
PAUSE = 0.002  # per chunk at the source: a 1 MiB stream lasts about 0.15 s


def pattern(n):
    block = bytes(range(251)) * 261  # 65511 bytes: a period no chunk size lines up with
    return (block * (n // len(block) + 1))[:n]


BODY = pattern(SIZE)


class Tally:
    """Counts of outcomes by label, and how many downloads are receiving their body."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}
        self.in_flight = 0

    def add(self, what):
        with self.lock:
            self.n[what] = self.n.get(what, 0) + 1

    def get(self, what):
        with self.lock:
            return self.n.get(what, 0)


# ---- the service's end ------------------------------------------------------------------------

def send_slowly(wfile, n=SIZE):
    """Write the first `n` bytes of BODY to `wfile`, CHUNK bytes every PAUSE s."""
    for at in range(0, n, CHUNK):
        wfile.write(BODY[at:min(n, at + CHUNK)])
        time.sleep(PAUSE)


def judge_upload(rfile, n=SIZE):
    """Read an upload of `n` BODY bytes from `rfile`; returns its outcome."""
    got = 0
    try:
        while got < n:
            chunk = rfile.read1(min(n - got, CHUNK))
            if not chunk:
                return "clean_short"
            if chunk != BODY[got:got + len(chunk)]:
                return "wrong"
            got += len(chunk)
    except OSError:
        return "reset"
    return "done"


# ---- the client's end -------------------------------------------------------------------------

def read_head(s):
    """An HTTP response's head and the bytes after it; (None, what came) at a clean end first."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return None, bytes(data)
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    return head, rest


def download(port, request, tally):
    """Send `request` (an HTTP GET for SIZE BODY bytes) to `port` and read the answer; returns
    its outcome. tally.in_flight counts it while its body comes. After a reset, sleeps 10 ms
    (the proxy is down: callers that loop do not spin)."""
    got, counted = 0, False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            head, body = read_head(s)
            if head is None:
                return "no_response"
            with tally.lock:
                tally.in_flight += 1
            counted = True
            while True:
                if body != BODY[got:got + len(body)]:
                    return "wrong"
                got += len(body)
                if got == SIZE:
                    return "done"
                body = s.recv(1 << 16)
                if not body:
                    return "clean_short"
    except OSError:
        time.sleep(0.01)
        return "reset"
    finally:
        if counted:
            with tally.lock:
                tally.in_flight -= 1


def upload(port, host=b"x"):
    """POST SIZE BODY bytes to `port`, CHUNK bytes every PAUSE s, then read the answer's head.
    The service judges it (judge_upload); after a reset, sleeps 10 ms."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" % (host, SIZE))
            for at in range(0, SIZE, CHUNK):
                s.sendall(BODY[at:at + CHUNK])
                time.sleep(PAUSE)
            read_head(s)
    except OSError:
        time.sleep(0.01)
