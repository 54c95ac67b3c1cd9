"""M9 groundwork: the carrier codecs (lib/codec/http1, ws, h2) against Debian's V2Ray 4.34,
before the event-loop glue exists. tests/e2e/carrier_peer.c drives them over a plain socket;
V2Ray relays between a dokodemo-door inbound and a freedom outbound, one side of which is the
carrier under test, so the bytes through it are the test's own.

  ws  V2Ray's client (freedom over ws, path /ray, Host header) -> our server (echo)
      our client -> V2Ray's server (dokodemo-door over ws) -> an echo service
  h2  V2Ray's client (freedom over h2 + TLS; TLS ended here, ALPN h2) -> our server (echo)
      our client (cleartext h2: V2Ray's server serves it when no TLS is set) -> V2Ray's
      server -> an echo service

Each moves 4 MiB each way and compares digests.
"""
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading

from harness import ROOT, free_port, port_open, relay, wait_until

sys.path.insert(0, os.path.join(ROOT, "tests", "vectors"))
from capturelib import echo_server as echo_service  # noqa: E402

TLS = os.path.join(ROOT, "tests", "vectors", "tls")
SIZE = 4 << 20


def peer_bin(name="carrier_peer"):
    """A test peer program of tests/e2e (carrier_peer.c, layer_peer.c), built by make."""
    build = os.environ.get("VREV_BUILD", "build")
    path = os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build), "tests",
                        name)
    assert os.access(path, os.X_OK), "build it first: make %s" % path
    return path


def start_peer(procs, kind, *args, name="carrier_peer"):
    """Run a peer's server role; returns the port it announces."""
    p = procs.start_argv("%s-%s" % (name, kind), [peer_bin(name), kind] + list(args))
    port = []

    def announced():
        for line in procs.log(p).splitlines():
            if line.startswith("port "):
                port.append(int(line.split()[1]))
                return True
        return p.poll() is not None

    assert wait_until(announced, 10) and port, procs.log(p)
    return port[0]


def start_v2ray(procs, name, inbound, outbound):
    """Started once it says so: its dokodemo-door and ws listeners are bound by then (its h2
    listener binds in a goroutine: probe that one)."""
    v = procs.start("v2ray", name, {"log": {"loglevel": "warning"}, "inbounds": [inbound],
                                    "outbounds": [outbound]})
    assert wait_until(lambda: "started" in procs.log(v), 10), procs.log(v)
    return v


def dokodemo(port, to_port, stream=None):
    inbound = {"listen": "127.0.0.1", "port": port, "protocol": "dokodemo-door",
               "settings": {"address": "127.0.0.1", "port": to_port, "network": "tcp"}}
    if stream:
        inbound["streamSettings"] = stream
    return inbound


def tls_terminator(to_port):
    """TLS with ALPN h2 (V2Ray's h2 client insists), relaying the plaintext to to_port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(TLS, "server.crt"), os.path.join(TLS, "server.key"))
    ctx.set_alpn_protocols(["h2"])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                raw, _ = srv.accept()
                tls = ctx.wrap_socket(raw, server_side=True)
            except OSError:
                return
            plain = socket.create_connection(("127.0.0.1", to_port))
            threading.Thread(target=relay, args=(tls, plain), daemon=True).start()
            threading.Thread(target=relay, args=(plain, tls), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def echo_through(port):
    data = os.urandom(SIZE)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = bytearray()
        while len(got) < SIZE:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        t.join(30)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), len(got)


def run_client(kind, port, name="carrier_peer"):
    """Run a peer's client role: SIZE bytes echoed through `port`."""
    r = subprocess.run([peer_bin(name), kind, str(port), str(SIZE)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok %d bytes echoed" % SIZE in r.stdout


def test_v2ray_ws_client_to_our_server(procs):
    ours = start_peer(procs, "ws-server")
    local = free_port()
    start_v2ray(procs, "v2ray-ws-client", dokodemo(local, ours), {
        "protocol": "freedom", "streamSettings": {
            "network": "ws",
            "wsSettings": {"path": "/ray", "headers": {"Host": "ws.example.com"}}}})
    echo_through(local)  # no probe first: it would be relayed, and our server is sequential


def test_our_ws_client_to_v2ray_server(procs):
    echo = echo_service()
    port = free_port()
    start_v2ray(procs, "v2ray-ws-server",
                dokodemo(port, echo.getsockname()[1],
                         {"network": "ws", "wsSettings": {"path": "/ray"}}),
                {"protocol": "freedom"})
    assert wait_until(lambda: port_open(port), 10)
    run_client("ws-client", port)
    echo.close()


def test_v2ray_h2_client_to_our_server(procs):
    ours = start_peer(procs, "h2-server")
    tls = tls_terminator(ours)
    local = free_port()
    start_v2ray(procs, "v2ray-h2-client", dokodemo(local, tls.getsockname()[1]), {
        "protocol": "freedom", "streamSettings": {
            "network": "h2", "security": "tls",
            "tlsSettings": {"serverName": "localhost", "allowInsecure": True},
            "httpSettings": {"host": ["h2.example.com"], "path": "/h2"}}})
    echo_through(local)
    tls.close()


def test_our_h2_client_to_v2ray_server(procs):
    echo = echo_service()
    port = free_port()
    start_v2ray(procs, "v2ray-h2-server",
                dokodemo(port, echo.getsockname()[1],
                         {"network": "h2",
                          "httpSettings": {"host": ["h2.example.com"], "path": "/h2"}}),
                {"protocol": "freedom"})
    assert wait_until(lambda: port_open(port), 10)
    run_client("h2-client", port)
    echo.close()
