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
