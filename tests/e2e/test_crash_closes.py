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
import threading
import time

import pytest

import slowstreams
from harness import Handler, free_port, http_get, port_open, wait_until
from slowstreams import SIZE, Tally

CLIENTS = 6  # downloads at once
UPLOADERS = 2
# a download's outcome (slowstreams) -> its label here; an upload's is "up_" + its outcome
DOWN = {"done": "done", "reset": "error", "clean_short": "clean_short",
        "no_response": "clean_short", "wrong": "wrong"}


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
        slowstreams.send_slowly(self.wfile, n)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        outcome = slowstreams.judge_upload(self.rfile, n)
        self.tally.add("up_" + outcome)
        if outcome != "done":
            return
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")


class SlowBackend(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # resets are expected here (and counted above)


def download(port, tally):
    """One slow download of SIZE pattern bytes, judged."""
    request = b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % SIZE
    tally.add(DOWN[slowstreams.download(port, request, tally)])


def upload(port, tally):
    slowstreams.upload(port)  # judged by the service


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
