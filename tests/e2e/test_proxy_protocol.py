"""The client's real address at the service: PROXY protocol v1/v2 in both directions.

Receive: Debian's HAProxy (send-proxy, send-proxy-v2) in front of a vrev portal started with
--accept-proxy-protocol (its tunnel listener too: the bridge comes through HAProxy as well).
Send: the bridge writes a PROXY header to the service (--to NAME=HOST:PORT,proxy-protocol=v1|v2):
Debian's nginx (listen ... proxy_protocol, $proxy_protocol_addr in the response) and a small
server that checks a v1 line. The public client connects from 127.0.0.2, so only an address that
crossed HAProxy, the portal, the tunnel and the bridge can name it. The same JSON config run by
vrev and by V2Ray 4.34 shows that both read the header alike (routing by source) and both close
a connection without one. Real V2Ray 4.34 in both reverse roles with a vrev peer that offers the
address extension: it works, and the service gets v1 UNKNOWN / v2 LOCAL.
"""
import json
import os
import socket
import socketserver
import subprocess
import threading
import time

import pytest

import harness
from harness import ROOT, UUID, free_port, need, port_open, wait_until

CLIENT_IP = "127.0.0.2"
TLS = os.path.join(ROOT, "tests", "vectors", "tls")
# the tunnel's carrier: the header is read before TLS and before the ws upgrade / h2 preface
CARRIERS = {
    "tcp": ([], []),
    "ws": (["--transport", "ws", "--path", "/t"], ["--transport", "ws", "--path", "/t"]),
    "ws+tls": (["--transport", "ws", "--path", "/t", "--tls", "--cert",
                os.path.join(TLS, "server.crt"), "--key", os.path.join(TLS, "server.key")],
               ["--transport", "ws", "--path", "/t", "--tls", "--ca", os.path.join(TLS, "ca.crt"),
                "--sni", "localhost"]),
    "h2+tls": (["--transport", "h2", "--host", "localhost", "--tls", "--cert",
                os.path.join(TLS, "server.crt"), "--key", os.path.join(TLS, "server.key")],
               ["--transport", "h2", "--host", "localhost", "--tls", "--ca",
                os.path.join(TLS, "ca.crt"), "--sni", "localhost"]),
}

HAPROXY_CONF = """global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend pub
    bind 127.0.0.1:{front}
    default_backend pub
backend pub
    server portal 127.0.0.1:{pub} {send}
frontend tun
    bind 127.0.0.1:{tfront}
    default_backend tun
backend tun
    server portal 127.0.0.1:{tun} {send}
"""

NGINX_SERVER = """    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        location / {{
            return 200 "client=$proxy_protocol_addr:$proxy_protocol_port server=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n";
        }}
    }}
"""


def start_haproxy(procs, tmp_path, pub, tun, send):
    front, tfront = free_port(), free_port()
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(front=front, pub=pub, tfront=tfront, tun=tun, send=send))
    hap = procs.start_argv("haproxy", [need("haproxy"), "-db", "-f", str(conf)])
    assert wait_until(lambda: port_open(front) and port_open(tfront), 10), procs.log(hap)
    return front, tfront


def start_nginx(procs, tmp_path):
    port = free_port()
    harness.start_nginx(procs, tmp_path, NGINX_SERVER.format(port=port), port)
    return port


class V1Service(socketserver.ThreadingTCPServer):
    """Reads one PROXY v1 line (at most 107 bytes), then the request line after it; answers
    with both, so that the test sees what came first and that nothing was lost behind it."""
    daemon_threads = True
    allow_reuse_address = True


class V1Handler(socketserver.StreamRequestHandler):
    def handle(self):
        header = self.rfile.readline(107)
        request = self.rfile.readline(1024)
        self.wfile.write(b"header=" + header.rstrip(b"\r\n") + b" request=" +
                         request.rstrip(b"\r\n") + b"\n")


def serve(handler, tag=b""):
    srv = V1Service(("127.0.0.1", 0), handler)
    srv.tag = tag
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def stop(srv):
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def v1_service():
    srv = serve(V1Handler)
    yield srv.server_address[1]
    stop(srv)


def ask(port, payload=b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", source=CLIENT_IP, timeout=5):
    """Connect from `source`, send, read to the end. Returns (client port, reply)."""
    with socket.socket() as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(payload)
        out = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            out += b
        return s.getsockname()[1], out


def try_ask(port, *args, **kw):
    try:
        return ask(port, *args, **kw)
    except OSError:
        return None, b""


def portal_argv(tun, pub, accept=True):
    return (["vrev", "portal", "--listen", "127.0.0.1:%d" % tun,
             "--public", "127.0.0.1:%d=web" % pub, "--id", UUID] +
            (["--accept-proxy-protocol"] if accept else []))


def bridge_argv(portal_port, target, pp=None):
    to = "web=127.0.0.1:%d" % target + (",proxy-protocol=%s" % pp if pp else "")
    return ["vrev", "bridge", "--portal", "127.0.0.1:%d" % portal_port, "--to", to, "--id", UUID]


def up(port, probe):
    return wait_until(lambda: probe in try_ask(port)[1], 15)


def vrev_pair(procs, tmp_path, send, target, pp, carrier="tcp", probe=b"header="):
    """HAProxy (`send`) in front of both listeners of a vrev portal with
    --accept-proxy-protocol, and a vrev bridge (through HAProxy) whose target gets a PROXY
    header of version `pp`, once it serves. Returns (HAProxy's public port, the portal's own
    public port, the portal)."""
    tun, pub = free_port(), free_port()
    front, tfront = start_haproxy(procs, tmp_path, pub, tun, send)
    portal = procs.start_argv("portal", portal_argv(tun, pub) + CARRIERS[carrier][0])
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start_argv("bridge", bridge_argv(tfront, target, pp) + CARRIERS[carrier][1])
    assert up(front, probe), procs.log(portal) + procs.log(bridge)
    return front, pub, portal


@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_haproxy_v2_to_nginx_v2(procs, tmp_path, carrier):
    """HAProxy send-proxy-v2 -> vrev portal -> tunnel (through HAProxy too, over each carrier)
    -> vrev bridge -> PROXY v2 -> nginx."""
    ng = start_nginx(procs, tmp_path)
    front, _, _ = vrev_pair(procs, tmp_path, "send-proxy-v2", ng, "v2", carrier, b"client=")
    for _ in range(5):
        port, reply = ask(front)
        assert reply.endswith(("client=%s:%d server=127.0.0.1:%d\n" % (CLIENT_IP, port, front))
                              .encode()), reply


def test_haproxy_v1_to_v1_service(procs, tmp_path, v1_service):
    """HAProxy send-proxy (v1) both in front of the portal and, from the bridge, to the service;
    the request behind the header arrives whole."""
    front, _, _ = vrev_pair(procs, tmp_path, "send-proxy", v1_service, "v1")
    port, reply = ask(front, b"HELLO there\r\n")
    assert reply == ("header=PROXY TCP4 %s 127.0.0.1 %d %d request=HELLO there\n"
                     % (CLIENT_IP, port, front)).encode(), reply


def test_header_required_and_read_exactly(procs, tmp_path, v1_service):
    """With --accept-proxy-protocol, a connection without a valid header is closed (as V2Ray
    4.34 closes it: go-proxyproto, policy REQUIRE) and reaches nothing; one bad connection
    costs only itself; a header that comes in pieces is read to its last byte and not one
    byte further, v1 and v2."""
    front, pub, portal = vrev_pair(procs, tmp_path, "send-proxy-v2", v1_service, "v1")
    # no header, a bad one, an over-long v1 line: closed, nothing reaches the service
    for junk in (b"HELLO there\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\nHELLO\r\n",
                 b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n",
                 b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + bytes(12)):
        _, reply = try_ask(pub, junk, source="127.0.0.1")
        assert reply == b"", reply
    assert "no valid PROXY protocol header" in procs.log(portal)
    # we are the proxy now: headers in pieces, the request in the same segment as the last
    cases = [
        [b"PROXY TCP4 10.1.2.3 ", b"192.0.2.9 4", b"000 80\r\nHELLO piecewise\r\n"],
        [b"\r\n\r\n\x00\r\nQUIT\n", b"\x21\x11\x00\x16" + bytes([10, 9, 8, 7, 192, 0, 2, 9]),
         b"\x9c\x40\x00\x50" + b"\x04\x00\x04" + bytes(4) + b"\xee\x00\x00HELLO tlv\r\n"],
    ]
    for pieces, want in zip(cases, [b"header=PROXY TCP4 10.1.2.3 192.0.2.9 4000 80 "
                                    b"request=HELLO piecewise\n",
                                    b"header=PROXY TCP4 10.9.8.7 192.0.2.9 40000 80 "
                                    b"request=HELLO tlv\n"]):
        with socket.create_connection(("127.0.0.1", pub), timeout=5) as s:
            for p in pieces:
                s.sendall(p)
                time.sleep(0.1)
            out = b""
            while not out.endswith(b"\n"):
                b = s.recv(4096)
                if not b:
                    break
                out += b
        assert out == want, (out, procs.log(portal))
    # and HAProxy's clients still get through
    port, reply = ask(front, b"HELLO again\r\n")
    assert reply == ("header=PROXY TCP4 %s 127.0.0.1 %d %d request=HELLO again\n"
                     % (CLIENT_IP, port, front)).encode()


def json_config(pub, a, b):
    """A dokodemo-door with acceptProxyProtocol; clients from 127.0.0.2 go to service a, the
    others to b (routing by source: the header's)."""
    return {
        "log": {"loglevel": "info"},
        "inbounds": [{"tag": "in", "listen": "127.0.0.1", "port": pub,
                      "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": a, "network": "tcp"},
                      "streamSettings": {"tcpSettings": {"acceptProxyProtocol": True}}}],
        "outbounds": [
            {"tag": "b", "protocol": "freedom", "settings": {"redirect": "127.0.0.1:%d" % b}},
            {"tag": "a", "protocol": "freedom", "settings": {"redirect": "127.0.0.1:%d" % a}},
        ],
        "routing": {"rules": [{"type": "field", "source": [CLIENT_IP], "outboundTag": "a"}]},
    }


class Tagged(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(1024)
        self.wfile.write(self.server.tag + b" " + line)


@pytest.fixture
def two_services():
    servers = [serve(Tagged, b"A"), serve(Tagged, b"B")]
    yield [s.server_address[1] for s in servers]
    for s in servers:
        stop(s)


@pytest.mark.parametrize("impl", ["vrev", "v2ray"])
def test_json_accept_matches_v2ray(procs, two_services, impl):
    """The same config, run by vrev and by V2Ray 4.34: v1 and v2 headers are read, their
    source routes (127.0.0.2 to service A, others to B), LOCAL / UNKNOWN use the connection's
    own address, and a connection without a header is closed without reaching a service."""
    pub = free_port()
    a, b = two_services
    p = procs.start(impl, impl, json_config(pub, a, b))
    assert wait_until(lambda: port_open(pub), 10), procs.log(p)
    v2_local = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"

    def v2(src):
        return (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + socket.inet_aton(src) +
                socket.inet_aton("127.0.0.1") + b"\x30\x39\x00\x50")
    cases = [
        (b"PROXY TCP4 127.0.0.2 127.0.0.1 12345 80\r\nx1\n", b"A x1\n"),
        (b"PROXY TCP4 127.0.0.3 127.0.0.1 12345 80\r\nx2\n", b"B x2\n"),
        (v2("127.0.0.2") + b"x3\n", b"A x3\n"),
        (v2("127.0.0.3") + b"x4\n", b"B x4\n"),
        (b"PROXY UNKNOWN\r\nx5\n", b"B x5\n"),  # the connection's own: 127.0.0.1
        (v2_local + b"x6\n", b"B x6\n"),
        (b"x7\n", b""),  # no header: closed
    ]
    for payload, want in cases:
        _, reply = try_ask(pub, payload, source="127.0.0.1")
        assert reply == want, (payload, reply, procs.log(p))


def printed(procs, argv):
    """What `vrev portal|bridge ... --print-config` prints: the V2Ray 4.34 configuration."""
    r = subprocess.run([procs.vrev_bin] + argv[1:] + ["--print-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_v2ray_portal_with_vrev_bridge(procs, tmp_path):
    """A real V2Ray 4.34 portal running what `vrev portal --accept-proxy-protocol
    --print-config` prints (acceptProxyProtocol on both inbounds) behind HAProxy, and a vrev
    bridge (through HAProxy) that offers the address extension and sends PROXY v2: V2Ray never
    says who the client is, so nginx gets LOCAL and answers with no PROXY address; everything
    works."""
    tun, pub = free_port(), free_port()
    ng = start_nginx(procs, tmp_path)
    front, tfront = start_haproxy(procs, tmp_path, pub, tun, "send-proxy-v2")
    cfg = printed(procs, portal_argv(tun, pub))
    assert all(ib["streamSettings"]["tcpSettings"]["acceptProxyProtocol"]
               for ib in cfg["inbounds"])
    portal = procs.start("v2ray", "v2portal", cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start_argv("bridge", bridge_argv(tfront, ng, "v2"))
    assert up(front, b"client="), procs.log(portal) + procs.log(bridge)
    for _ in range(3):
        _, reply = ask(front)
        assert reply.startswith(b"HTTP/1.1 200"), reply
        assert reply.endswith(b"client=: server=:\n"), reply


@pytest.mark.parametrize("carrier", ["tcp", "ws"])
def test_vrev_portal_with_v2ray_bridge(procs, tmp_path, backend, carrier):
    """A vrev portal behind HAProxy (--accept-proxy-protocol, the address extension on) and a
    real V2Ray 4.34 bridge (what `vrev bridge --print-config` prints) coming through HAProxy
    too: V2Ray offers no extension, gets none, and serves every connection."""
    tun, pub = free_port(), free_port()
    front, tfront = start_haproxy(procs, tmp_path, pub, tun, "send-proxy-v2")
    portal = procs.start_argv("portal", portal_argv(tun, pub) + CARRIERS[carrier][0])
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    cfg = printed(procs, bridge_argv(tfront, backend) + CARRIERS[carrier][1])
    bridge = procs.start("v2ray", "v2bridge", cfg)
    probe = b"GET /hello HTTP/1.0\r\nHost: x\r\n\r\n"
    assert wait_until(lambda: b"hello from the backend" in try_ask(front, probe)[1], 15), \
        procs.log(portal) + procs.log(bridge)
    for _ in range(5):
        _, reply = ask(front, probe)
        assert reply.endswith(b"hello from the backend\n"), reply
    assert "tunnel up" in procs.log(portal)


@pytest.mark.parametrize("version", ["v1", 2])
def test_json_freedom_sends_header(procs, v1_service, nginx_port_factory, version):
    """JSON mode: "vrev": {"outbounds": {TAG: {"proxyProtocol": ...}}} on a freedom outbound
    behind a dokodemo-door that reads a PROXY header itself: the service gets the header's
    client and the address the header says it connected to; without a header of its own, the
    listener's address."""
    pub, direct = free_port(), free_port()
    target = v1_service if version == "v1" else nginx_port_factory()
    cfg = {
        "log": {"loglevel": "info"},
        "inbounds": [
            {"tag": "pp", "listen": "127.0.0.1", "port": pub, "protocol": "dokodemo-door",
             "settings": {"address": "127.0.0.1", "port": target, "network": "tcp"},
             "streamSettings": {"tcpSettings": {"acceptProxyProtocol": True}}},
            {"tag": "plain", "listen": "127.0.0.1", "port": direct,
             "protocol": "dokodemo-door",
             "settings": {"address": "127.0.0.1", "port": target, "network": "tcp"}}],
        "outbounds": [{"tag": "svc", "protocol": "freedom"}],
        "vrev": {"outbounds": {"svc": {"proxyProtocol": version}}},
    }
    p = procs.start("vrev", "vrev", cfg)
    assert wait_until(lambda: port_open(pub) and port_open(direct), 10), procs.log(p)
    if version == "v1":
        _, reply = ask(pub, b"PROXY TCP4 192.0.2.5 198.51.100.9 5555 443\r\nhi\r\n",
                       source="127.0.0.1")
        assert reply == b"header=PROXY TCP4 192.0.2.5 198.51.100.9 5555 443 request=hi\n", \
            procs.log(p)
        port, reply = ask(direct, b"hi\r\n")
        assert reply == ("header=PROXY TCP4 %s 127.0.0.1 %d %d request=hi\n"
                         % (CLIENT_IP, port, direct)).encode(), procs.log(p)
    else:
        hdr = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24" + socket.inet_pton(socket.AF_INET6,
               "2001:db8::5") + socket.inet_pton(socket.AF_INET6, "2001:db8::9") +
               b"\x15\xb3\x01\xbb")
        _, reply = ask(pub, hdr + b"GET / HTTP/1.0\r\n\r\n", source="127.0.0.1")
        assert reply.endswith(b"client=2001:db8::5:5555 server=2001:db8::9:443\n"), reply
        port, reply = ask(direct)
        assert reply.endswith(("client=%s:%d server=127.0.0.1:%d\n" % (CLIENT_IP, port, direct))
                              .encode()), reply


@pytest.fixture
def nginx_port_factory(procs, tmp_path):
    return lambda: start_nginx(procs, tmp_path)


def test_header_wait_bounded_by_handshake_deadline(procs, two_services):
    """A connection that sends no header, or half of one, holds its place no longer than the
    handshake deadline (policy handshake, here 1 s): it is closed then, unanswered."""
    pub = free_port()
    a, b = two_services
    cfg = json_config(pub, a, b)
    cfg["policy"] = {"levels": {"0": {"handshake": 1}}}
    p = procs.start("vrev", "vrev", cfg)
    assert wait_until(lambda: port_open(pub), 10), procs.log(p)
    for first in (b"", b"PROXY TCP4 127.0.0.2 "):
        with socket.create_connection(("127.0.0.1", pub), timeout=5) as s:
            s.sendall(first)
            t0 = time.monotonic()
            assert s.recv(100) == b""  # closed, not reset by a timeout of ours (5 s)
            took = time.monotonic() - t0
        assert 0.8 < took < 3, took
