"""The ws and h2 carriers (streamSettings.network) between vrev and V2Ray 4.34: reverse tunnels
in every pairing (vmess over ws, vless over ws+tls, vmess over h2+tls) with an HTTP GET, a
transfer both ways checked with SHA-256 and a UDP echo; forward proxying over ws and h2 with
V2Ray in both roles; a portal behind Debian's nginx (TLS ended there, the ws location proxied
to the portal) with a vrev and a V2Ray bridge; the CLI's --transport. Without the carriers
vrev refuses every one of these configurations."""
import hashlib
import os

import pytest

from harness import (ROOT, UUID, bridge_config, free_port, http_get, http_post, pattern,
                     port_open, portal_config, start_nginx, udp_exit_tries, udp_roundtrip,
                     udp_session, wait_until)

TLS = os.path.join(ROOT, "tests", "vectors", "tls")
PAIRS = [("vrev", "v2ray"), ("v2ray", "vrev"), ("vrev", "vrev")]
# (proxy protocol, network, TLS)
CARRIERS = [("vmess", "ws", False), ("vless", "ws", True), ("vmess", "h2", True),
            ("vless", "h2", True)]
H2_HOST = "tunnel.example.net"
SIZE = 64 << 20  # both ways, SHA-256 checked


def server_tls():
    return {"security": "tls", "tlsSettings": {"certificates": [
        {"certificateFile": os.path.join(TLS, "server.crt"),
         "keyFile": os.path.join(TLS, "server.key")}]}}


def client_tls():
    return {"security": "tls", "tlsSettings": {
        "serverName": "localhost",
        "certificates": [{"certificateFile": os.path.join(TLS, "ca.crt"), "usage": "verify"}]}}


def carrier_settings(network, path):
    if network == "ws":
        return {"network": "ws", "wsSettings": {"path": path}}
    return {"network": "h2", "httpSettings": {"path": path, "host": [H2_HOST]}}


def stream(network, tls, server, path="/carrier"):
    s = carrier_settings(network, path)
    if tls:
        s.update(server_tls() if server else client_tls())
    return s


def make_vless(inbound, outbound):
    if inbound is not None:
        inbound["protocol"] = "vless"
        inbound["settings"] = {"clients": [{"id": UUID}], "decryption": "none"}
    if outbound is not None:
        outbound["protocol"] = "vless"
        outbound["settings"]["vnext"][0]["users"] = [{"id": UUID, "encryption": "none"}]


def reverse_configs(ext, tun, backend, echo, protocol, network, tls):
    """portal_config / bridge_config with the tunnel on the carrier, plus a UDP public port
    (returned) whose datagrams the bridge sends to the echo server."""
    portal, bridge = portal_config(ext, tun), bridge_config(tun, backend)
    inbound, outbound = portal["inbounds"][1], bridge["outbounds"][1]
    if protocol == "vless":
        make_vless(inbound, outbound)
    inbound["streamSettings"] = stream(network, tls, True)
    outbound["streamSettings"] = stream(network, tls, False)
    ext_udp = free_port()
    portal["inbounds"].append(
        {"tag": "external-udp", "listen": "127.0.0.1", "port": ext_udp,
         "protocol": "dokodemo-door",
         "settings": {"address": "127.0.0.1", "port": 53, "network": "udp"}})
    portal["routing"]["rules"].append(
        {"type": "field", "inboundTag": ["external-udp"], "outboundTag": "portal"})
    bridge["outbounds"].append({"tag": "out-udp", "protocol": "freedom",
                                "settings": {"redirect": "127.0.0.1:%d" % echo}})
    bridge["routing"]["rules"].insert(1, {"type": "field", "inboundTag": ["bridge"],
                                          "network": "udp", "outboundTag": "out-udp"})
    return portal, bridge, ext_udp


def works(port):
    try:
        return http_get(port, timeout=2)[1] == b"hello from the backend\n"
    except OSError:
        return False


def both_ways(port, size=SIZE):
    head, body = http_get(port, "/bytes/%d" % size, timeout=60)
    assert len(body) == size and hashlib.sha256(body).digest() == \
        hashlib.sha256(pattern(size)).digest()  # downstream
    payload = os.urandom(size)
    assert http_post(port, payload, timeout=60).decode() == \
        hashlib.sha256(payload).hexdigest()  # upstream


def carrier_answers(port, network, tls):
    """The portal's port speaks the carrier, not bare VMess: TLS with ALPN h2 (h2), or an
    HTTP server answering another path 404 (ws)."""
    import socket
    import ssl
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = raw
    if tls:
        ctx = ssl.create_default_context(cafile=os.path.join(TLS, "ca.crt"))
        ctx.set_alpn_protocols(["h2"] if network == "h2" else ["http/1.1"])
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    with s:
        if network == "h2":
            return s.selected_alpn_protocol() == "h2"
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        return s.recv(4096).startswith(b"HTTP/1.1 404")


def logs(procs, *ps):
    return "\n".join("--- %s\n%s" % (p.name, procs.log(p)) for p in ps)


@pytest.mark.parametrize("protocol,network,tls", CARRIERS,
                         ids=["vmess-ws", "vless-ws-tls", "vmess-h2-tls", "vless-h2-tls"])
@pytest.mark.parametrize("portal_kind,bridge_kind", PAIRS)
def test_reverse_tunnel(procs, backend, udp_echo, portal_kind, bridge_kind, protocol, network,
                        tls):
    ext, tun = free_port(), free_port()
    portal_cfg, bridge_cfg, ext_udp = reverse_configs(ext, tun, backend, udp_echo, protocol,
                                                      network, tls)
    portal = procs.start(portal_kind, "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", bridge_cfg)
    assert wait_until(lambda: works(ext), 15), "no tunnel:\n" + logs(procs, portal, bridge)
    for _ in range(5):
        head, body = http_get(ext)
        assert head.startswith(b"HTTP/1.1 200") and body == b"hello from the backend\n"
    both_ways(ext)
    # UDP echo through the tunnel
    assert wait_until(lambda: udp_roundtrip(ext_udp, b"ping", 0.3) == b"echo:ping", 10), \
        logs(procs, portal, bridge)
    sock, got = udp_session(ext_udp, b"first", udp_exit_tries(bridge_kind))
    assert got == b"echo:first"
    for i in range(20):
        payload = os.urandom(200 + i)
        assert udp_roundtrip(ext_udp, payload, 2.0, sock) == b"echo:" + payload, i
    sock.close()
    assert portal.poll() is None and bridge.poll() is None
    assert carrier_answers(tun, network, tls)  # not bare VMess on both sides


@pytest.mark.parametrize("protocol,network,tls", CARRIERS[:3],
                         ids=["vmess-ws", "vless-ws-tls", "vmess-h2-tls"])
@pytest.mark.parametrize("portal_kind,bridge_kind", PAIRS)
def test_drain_over_carrier(procs, backend, udp_echo, portal_kind, bridge_kind, protocol,
                            network, tls):
    """The portal drains a tunnel after 256 sessions and the bridge replaces it, over the
    carrier: no request fails on the way."""
    import time
    ext, tun = free_port(), free_port()
    portal_cfg, bridge_cfg, _ = reverse_configs(ext, tun, backend, udp_echo, protocol, network,
                                                tls)
    portal = procs.start(portal_kind, "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", bridge_cfg)
    assert wait_until(lambda: works(ext), 15), "no tunnel:\n" + logs(procs, portal, bridge)
    for i in range(300):
        head, body = http_get(ext)
        assert body == b"hello from the backend\n", "request %d failed" % i
    time.sleep(2.5)  # the next heartbeat carries DRAIN; the bridge replaces the tunnel
    for i in range(20):
        head, body = http_get(ext)
        assert body == b"hello from the backend\n", "request %d after the drain failed" % i
    for p, kind in ((portal, portal_kind), (bridge, bridge_kind)):
        if kind == "vrev":
            assert "drained" in procs.log(p), logs(procs, portal, bridge)


def test_wrong_path_is_a_web_server(procs, backend, udp_echo):
    """A vrev ws portal answers another path 404 as a web server would, and a bridge sent
    there gets no tunnel; the right path works."""
    import socket
    ext, tun = free_port(), free_port()
    portal_cfg, bridge_cfg, _ = reverse_configs(ext, tun, backend, udp_echo, "vmess", "ws",
                                                False)
    bridge_cfg["outbounds"][1]["streamSettings"]["wsSettings"]["path"] = "/elsewhere"
    portal = procs.start("vrev", "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    with socket.create_connection(("127.0.0.1", tun), timeout=5) as s:
        s.sendall(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 404")
    bridge = procs.start("vrev", "bridge", bridge_cfg)
    assert not wait_until(lambda: works(ext), 3)
    procs.stop(bridge)
    bridge_cfg["outbounds"][1]["streamSettings"]["wsSettings"]["path"] = "carrier"  # "/" added
    bridge = procs.start("vrev", "bridge2", bridge_cfg)
    assert wait_until(lambda: works(ext), 15), logs(procs, portal, bridge)


# ---- forward proxying: dokodemo-door -> X outbound ==carrier==> X inbound -> freedom ---------

def forward_configs(app, srv, backend, network, tls):
    client = {
        "log": {"loglevel": "info"},
        "inbounds": [{"tag": "app", "listen": "127.0.0.1", "port": app,
                      "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": backend,
                                   "network": "tcp"}}],
        "outbounds": [{"tag": "proxy", "protocol": "vmess",
                       "settings": {"vnext": [{"address": "127.0.0.1", "port": srv,
                                               "users": [{"id": UUID, "alterId": 0}]}]},
                       "streamSettings": stream(network, tls, False, "/fwd")}],
    }
    server = {
        "log": {"loglevel": "info"},
        "inbounds": [{"tag": "in", "listen": "127.0.0.1", "port": srv, "protocol": "vmess",
                      "settings": {"clients": [{"id": UUID, "alterId": 0}]},
                      "streamSettings": stream(network, tls, True, "/fwd")}],
        "outbounds": [{"tag": "direct", "protocol": "freedom", "settings": {}}],
    }
    return client, server


@pytest.mark.parametrize("network,tls", [("ws", False), ("ws", True), ("h2", True)],
                         ids=["ws", "ws-tls", "h2-tls"])
@pytest.mark.parametrize("client_kind,server_kind", [("vrev", "v2ray"), ("v2ray", "vrev")])
def test_forward(procs, backend, client_kind, server_kind, network, tls):
    app, srv = free_port(), free_port()
    client_cfg, server_cfg = forward_configs(app, srv, backend, network, tls)
    server = procs.start(server_kind, "server", server_cfg)
    assert wait_until(lambda: port_open(srv), 10), procs.log(server)
    client = procs.start(client_kind, "client", client_cfg)
    assert wait_until(lambda: works(app), 15), logs(procs, client, server)
    import concurrent.futures  # several connections at once (h2: streams of one connection)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: http_get(app, "/bytes/%d" % (1000 + i))[1], range(16)))
    assert all(body == pattern(1000 + i) for i, body in enumerate(got))
    both_ways(app, 4 << 20)


# ---- a portal behind nginx -------------------------------------------------------------------

NGINX_SERVER = """    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tls}/server.crt;
        ssl_certificate_key {tls}/server.key;
        location /tunnel {{
            proxy_pass http://127.0.0.1:{tun};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 300s;
        }}
        location / {{ return 404; }}
    }}
"""


@pytest.mark.parametrize("bridge_kind", ["vrev", "v2ray"])
def test_portal_behind_nginx(procs, backend, tmp_path, bridge_kind):
    ext, tun, front = free_port(), free_port(), free_port()
    portal_cfg, bridge_cfg = portal_config(ext, tun), bridge_config(front, backend)
    portal_cfg["inbounds"][1]["streamSettings"] = stream("ws", False, True, "/tunnel")
    bridge_cfg["outbounds"][1]["streamSettings"] = stream("ws", True, False, "/tunnel")
    start_nginx(procs, tmp_path, NGINX_SERVER.format(port=front, tun=tun, tls=TLS), front, 256)
    portal = procs.start("vrev", "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", bridge_cfg)
    assert wait_until(lambda: works(ext), 15), \
        logs(procs, portal, bridge) + (tmp_path / "nginx-error.log").read_text()
    both_ways(ext)
    for _ in range(10):
        assert works(ext)


# ---- the CLI ---------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["ws", "h2"])
def test_cli_transport(procs, backend, transport):
    """vrev portal / vrev bridge --transport; the bridge's --print-config, run by V2Ray,
    reaches the same portal."""
    ext, tun = free_port(), free_port()
    common = ["--id", UUID, "--transport", transport, "--path", "/cli", "--host", "localhost",
              "--tls"]
    portal = procs.start_argv("portal", ["vrev", "portal", "--listen", "127.0.0.1:%d" % tun,
                                         "--public", "127.0.0.1:%d" % ext, "--cert",
                                         os.path.join(TLS, "server.crt"), "--key",
                                         os.path.join(TLS, "server.key")] + common)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge_argv = ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun, "--to",
                   "127.0.0.1:%d" % backend, "--ca", os.path.join(TLS, "ca.crt"), "--sni",
                   "localhost"] + common
    bridge = procs.start_argv("bridge", bridge_argv)
    assert wait_until(lambda: works(ext), 15), logs(procs, portal, bridge)
    both_ways(ext, 2 << 20)
    procs.stop(bridge)
    import subprocess
    text = subprocess.run([procs.vrev_bin] + bridge_argv[1:] + ["--print-config"],
                          capture_output=True, text=True, check=True).stdout
    path = procs.tmp / "printed-bridge.json"
    path.write_text(text)
    assert '"network": "%s"' % transport in text
    bridge = procs.start_file("v2ray", "v2ray-bridge", path)
    assert wait_until(lambda: works(ext), 15), logs(procs, portal, bridge)


def test_cli_h2_bridge_needs_tls(vrev_bin):
    import subprocess
    r = subprocess.run([vrev_bin, "bridge", "--portal", "127.0.0.1:1", "--to", "127.0.0.1:2",
                        "--id", UUID, "--transport", "h2"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "--transport h2 needs --tls" in r.stderr


@pytest.mark.parametrize("role", ["dokodemo-door", "freedom"])
def test_run_refuses_carrier_where_unsupported(procs, tmp_path, role):
    """V2Ray would put a dokodemo-door inbound or a freedom outbound on ws too; vrev says it
    does not rather than ignore it."""
    import subprocess
    cfg = {"inbounds": [{"protocol": "dokodemo-door", "listen": "127.0.0.1",
                         "port": free_port(), "settings": {"address": "127.0.0.1", "port": 1}}],
           "outbounds": [{"protocol": "freedom"}]}
    (cfg["inbounds"][0] if role == "dokodemo-door" else cfg["outbounds"][0])[
        "streamSettings"] = {"network": "ws"}
    path = tmp_path / "c.json"
    path.write_text(__import__("json").dumps(cfg))
    r = subprocess.run([procs.vrev_bin, "run", "-c", str(path)], capture_output=True, text=True,
                       timeout=10)
    want = "a %s %s over ws or h2 is not supported" % (
        role, "outbound" if role == "freedom" else "inbound")
    assert r.returncode != 0 and want in r.stderr, r.stderr
