"""A portal and a bridge run from Python through the ctypes binding (vrev.py), carrying HTTP
requests to a backend served by this same test."""
import http.server
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vrev  # noqa: E402

UUID = "5783a3e7-e373-51cd-8642-c83782b807c5"


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello from python\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"hello from python\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def test_portal_and_bridge_from_python():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    loop = vrev.Loop()
    try:
        portal = loop.call(vrev.Portal, listen="127.0.0.1:0", public=["127.0.0.1:0"], id=UUID)
        tport, pport = loop.call(lambda l: (portal.tunnel_port(), portal.public_port()))
        bridge = loop.call(vrev.Bridge, portal="127.0.0.1:%d" % tport,
                           targets=["127.0.0.1:%d" % srv.server_address[1]], id=UUID)
        deadline = time.monotonic() + 10
        while loop.call(lambda l: portal.counter("tunnels")) < 1:
            assert time.monotonic() < deadline, "no tunnel"
            time.sleep(0.02)
        for _ in range(5):
            assert get(pport).endswith(b"hello from python\n")
        sessions = loop.call(lambda l: portal.counter("sessions"))
        assert sessions == 5
        assert loop.call(lambda l: bridge.counter("sessions")) == 5
        assert loop.call(lambda l: portal.counter("bytes_down")) > 0
        assert vrev.TUNNEL_UP in portal.events and vrev.TUNNEL_UP in bridge.events
        # bad options are reported as Python errors with the library's message
        try:
            loop.call(vrev.Bridge, portal="nowhere", targets=["127.0.0.1:1"], id=UUID)
            raise AssertionError("accepted a bad portal address")
        except vrev.VrevError as e:
            assert "HOST:PORT" in str(e)
        loop.call(bridge.free)
        loop.call(portal.free)
    finally:
        loop.close()
        srv.shutdown()


def test_idle_loop_does_not_poll():
    """The loop's thread waits in the kernel between calls: no CPU while idle, one run."""
    loop = vrev.Loop()
    try:
        assert loop.call(lambda l: 42) == 42
        before = loop.cpu_seconds()
        time.sleep(1)
        idle = loop.cpu_seconds() - before
        assert idle < 0.005, "the loop thread used %.3f s of CPU in 1 s idle" % idle
        for i in range(100):  # calls are still picked up at once, each through a post
            assert loop.call(lambda l, i=i: i) == i
        assert loop.runs == 1
    finally:
        loop.close()
    assert not loop._thread.is_alive()


class Echo(vrev.Handler):
    """Each session's bytes back, with backpressure: the client is paused while a lot waits
    to go out. Records what it saw in `seen` (one dict per session)."""
    seen = []
    HIGH = 256 * 1024

    def connected(self, stream):
        self.info = {"in": 0, "paused": 0, "end": False}
        Echo.seen.append(self.info)

    def data(self, stream, data):
        self.info["in"] += len(data)
        stream.write(data)
        if stream.buffered() > self.HIGH:
            stream.pause(True)
            self.info["paused"] += 1

    def drained(self, stream):
        stream.pause(False)

    def end(self, stream):
        self.info["end"] = True
        self.info["bytes_in"] = stream.bytes_in()
        self.info["bytes_out"] = stream.bytes_out()
        stream.shutdown()  # our end too, once all is out
        stream.close()


class HelloHandler(vrev.Handler):
    def data(self, stream, data):
        if b"\r\n\r\n" in data:
            stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\nhello from python\n")


def wait_for(loop, fn, what, timeout=10):
    """Until fn(loop) is true in the loop's thread (at most `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not loop.call(fn):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def echo_through(port, payload, read_after=0):
    """Send payload and read as much back (starting after `read_after` seconds: meanwhile the
    echo backs up), then close (no half-close: Mux.Cool has none, and a portal ends the
    session at the client's end of stream, WIRE-SPEC 2.9)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t = threading.Thread(target=s.sendall, args=(payload,))
        t.start()
        time.sleep(read_after)
        got = bytearray()
        while len(got) < len(payload):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        t.join(10)
    return bytes(got)


def test_handlers_in_python():
    """A bridge whose targets are served by Python handlers through vrev_stream: an echo
    (16 MiB that the client reads late: paused by its own backpressure) and an HTTP hello."""
    loop = vrev.Loop()
    try:
        portal = loop.call(vrev.Portal, listen="127.0.0.1:0",
                           public=["127.0.0.1:0"], id=UUID)
        tport, pport = loop.call(lambda l: (portal.tunnel_port(), portal.public_port()))
        bridge = loop.call(vrev.Bridge, portal="127.0.0.1:%d" % tport, targets=[], id=UUID,
                           handlers={None: Echo})
        wait_for(loop, lambda l: portal.counter("tunnels") >= 1, "no tunnel")
        payload = os.urandom(16 << 20)
        assert echo_through(pport, payload, read_after=0.5) == payload
        assert echo_through(pport, b"x") == b"x"
        wait_for(loop, lambda l: len(Echo.seen) == 2 and all(i["end"] for i in Echo.seen),
                 "a session's end not seen")
        info = loop.call(lambda l: list(Echo.seen))
        assert info[0]["in"] == info[0]["bytes_in"] == info[0]["bytes_out"] == len(payload)
        assert info[0]["paused"] > 0  # the backpressure path was taken
        wait_for(loop, lambda l: not bridge._handlers.streams, "a stream left open")
        assert loop.call(lambda l: bridge.counter("sessions")) == 2
        loop.call(bridge.free)

        bridge = loop.call(vrev.Bridge, portal="127.0.0.1:%d" % tport, targets=[], id=UUID,
                           handlers={"default": HelloHandler})
        wait_for(loop, lambda l: bridge.counter("tunnels") >= 1, "no tunnel")
        for _ in range(3):
            assert get(pport).endswith(b"hello from python\n")
        # each client closes after its answer: the handler's default end() closes the stream
        loop.call(bridge.free)
        loop.call(portal.free)
    finally:
        loop.close()
