"""Crash-honest closes: a portal or a bridge that dies (kill -9) or stops (SIGTERM) while
streams pass through it cuts them with a reset. None may end with a clean FIN after a short
read: a client without length framing would take that for a complete file.

When a process dies, the kernel closes its sockets, and a socket with nothing unread ends
with a FIN behind the bytes it still holds. So a portal killed in the middle of a download
ended it cleanly and short, and a bridge killed in the middle of an upload did the same to the
local service. Here the sources are slow (the service serves a download, the client sends an
upload, in small pieces), so that the stream is not over when the victim dies: a fast source
puts a whole 1 MiB in the kernel's buffers at once, which then deliver it all."""
import http.server
import signal
import socket
import threading
import time

import pytest

from harness import Handler, free_port, http_get, pattern, port_open, wait_until

SIZE = 1 << 20
CHUNK = 16 << 10
PAUSE = 0.002  # per chunk: a 1 MiB transfer takes about 0.15 s
BODY = pattern(SIZE)
CLIENTS = 6  # downloads at once
UPLOADERS = 2


class Tally:
    """Outcomes of the transfers, from the clients (downloads) and the service (uploads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}
        self.in_flight = 0

    def add(self, what, k=1):
        with self.lock:
            self.n[what] = self.n.get(what, 0) + k

    def get(self, what):
        with self.lock:
            return self.n.get(what, 0)


class SlowHandler(Handler):
    """The harness's service, but a download is sent slowly, and an upload is judged:
    complete and right, cut by a reset (an error: fine), or ended cleanly before its length
    (the bug)."""
    tally = None

    def do_GET(self):
        if not self.path.startswith("/bytes/"):
            return super().do_GET()
        n = int(self.path.split("/")[2])
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        for at in range(0, n, CHUNK):
            self.wfile.write(BODY[at:min(n, at + CHUNK)])
            time.sleep(PAUSE)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        got = 0
        try:
            while got < n:
                chunk = self.rfile.read1(min(n - got, CHUNK))
                if not chunk:
                    self.tally.add("up_clean_short")
                    return
                if chunk != BODY[got:got + len(chunk)]:
                    self.tally.add("up_wrong")
                    return
                got += len(chunk)
        except OSError:
            self.tally.add("up_reset")
            raise
        self.tally.add("up_done")
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")


class SlowBackend(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # resets are expected here (and counted above)


def read_head(s):
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return None, bytes(data)
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    return head, rest


def download(port, tally):
    """One slow download of SIZE pattern bytes, judged."""
    got, counted = 0, False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % SIZE)
            head, body = read_head(s)
            if head is None:  # the end (after nothing, or part of a header): clean and short
                tally.add("clean_short")
                return
            with tally.lock:
                tally.in_flight += 1
            counted = True
            while True:
                if body != BODY[got:got + len(body)]:
                    tally.add("wrong")
                    return
                got += len(body)
                if got == SIZE:
                    tally.add("done")
                    return
                body = s.recv(1 << 16)
                if not body:
                    tally.add("clean_short")
                    return
    except OSError:
        tally.add("error")
        time.sleep(0.01)  # the victim is down: do not spin
    finally:
        if counted:
            with tally.lock:
                tally.in_flight -= 1


def upload(port, tally):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % SIZE)
            for at in range(0, SIZE, CHUNK):
                s.sendall(BODY[at:at + CHUNK])
                time.sleep(PAUSE)
            read_head(s)
    except OSError:
        time.sleep(0.01)  # judged by the service


def clients(port, tally, stop):
    def loop(fn):
        while not stop.is_set():
            fn(port, tally)
    threads = [threading.Thread(target=loop, args=(download,), daemon=True)
               for _ in range(CLIENTS)]
    threads += [threading.Thread(target=loop, args=(upload,), daemon=True)
                for _ in range(UPLOADERS)]
    for t in threads:
        t.start()
    return threads


def works(port):
    try:
        return http_get(port, "/hello", timeout=2)[1] == b"hello from the backend\n"
    except OSError:
        return False


def kill_cycles(procs, tally, port_backend, order):
    """Kill (or stop) the portal and the bridge as `order` says ([(role, signal)]), each while
    transfers run, restarting the victim each time. Returns the recovery times (s)."""
    tun, pub = free_port(), free_port()
    argv = {
        "portal": ["vrev", "portal", "--listen", "127.0.0.1:%d" % tun, "--public",
                   "127.0.0.1:%d=web" % pub, "--id", "5783a3e7-e373-51cd-8642-c83782b807c5"],
        "bridge": ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun, "--to",
                   "web=127.0.0.1:%d" % port_backend, "--id",
                   "5783a3e7-e373-51cd-8642-c83782b807c5"],
    }
    live = {"portal": procs.start_argv("portal0", argv["portal"])}
    assert wait_until(lambda: port_open(tun), 10), procs.log(live["portal"])
    live["bridge"] = procs.start_argv("bridge0", argv["bridge"])
    assert wait_until(lambda: works(pub), 15), procs.log(live["bridge"])
    stop = threading.Event()
    threads = clients(pub, tally, stop)
    recovery = []
    try:
        for i, (role, sig) in enumerate(order, 1):
            # downloads complete again, then the victim dies with several in flight
            done = tally.get("done")
            assert wait_until(lambda: tally.get("done") > done, 15, 0.01), tally.n
            assert wait_until(lambda: tally.in_flight >= CLIENTS // 2, 5, 0.01), tally.n
            victim = live[role]
            victim.send_signal(sig)
            victim.wait(10)
            live[role] = procs.start_argv("%s%d" % (role, i), argv[role])
            t0 = time.monotonic()
            assert wait_until(lambda: works(pub), 15), procs.log(live[role])
            recovery.append(time.monotonic() - t0)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    return recovery


@pytest.mark.limit(150)
def test_killed_portal_and_bridge_reset_what_they_cut(procs):
    tally = Tally()
    SlowHandler.tally = tally
    srv = SlowBackend(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        order = [("portal", signal.SIGKILL), ("bridge", signal.SIGKILL)] * 3
        order += [("portal", signal.SIGTERM), ("bridge", signal.SIGTERM)]
        recovery = kill_cycles(procs, tally, srv.server_address[1], order)
    finally:
        srv.shutdown()
        srv.server_close()
    print("transfers: %s; recovery %s s" % (tally.n, ["%.2f" % r for r in recovery]))
    assert tally.get("done") > 0 and tally.get("up_done") > 0, tally.n
    assert tally.get("wrong") == 0 and tally.get("up_wrong") == 0, tally.n
    assert tally.get("clean_short") == 0, "downloads ended clean and short: %s" % tally.n
    assert tally.get("up_clean_short") == 0, "uploads ended clean and short: %s" % tally.n
