"""Forward proxying between vrev and V2Ray 4.34 over VMess, VLESS and SOCKS5, both ways:

    client --TCP--> [client side: dokodemo-door -> X outbound]
                    ==X==> [server side: X inbound -> freedom] --TCP--> harness HTTP backend

with X in {vmess aes-128-gcm, chacha20-poly1305, none; vless; socks without and with a
password}, once with vrev as the client side and V2Ray as the server side and once the other
way. Payloads: a small HTTP GET, 64 MiB down and up checked by SHA-256, 64 concurrent
connections. Then refusals (wrong UUID, wrong password) and a reverse tunnel over VLESS
(vrev bridge <-> V2Ray portal and the other way). Configs are V2Ray JSON, read by both
programs; every process is stopped by PID and every wait is bounded (harness.py).
"""
import concurrent.futures
import hashlib
import os
import socket
import time

import pytest

from harness import (UUID, bridge_config, free_port, http_get, http_post, pattern, port_open,
                     portal_config, wait_until)

OTHER_UUID = "0ebd0c5f-62f2-4f8a-9f77-0d8c3b1c7e11"
PROTOCOLS = ["vmess-aes", "vmess-chacha", "vmess-none", "vless", "socks", "socks-password"]
SIDES = [("vrev", "v2ray"), ("v2ray", "vrev")]  # (client side, server side)
BULK = 64 << 20


# ---- configs -----------------------------------------------------------------------------

def server_inbound(proto, port, uuid=UUID):
    if proto.startswith("vmess"):
        settings = {"clients": [{"id": uuid, "alterId": 0, "email": "fwd@vrev.test"}]}
        name = "vmess"
    elif proto == "vless":
        settings = {"clients": [{"id": uuid, "email": "fwd@vrev.test"}], "decryption": "none"}
        name = "vless"
    elif proto == "socks":
        settings = {"auth": "noauth", "udp": False}
        name = "socks"
    else:
        settings = {"auth": "password", "accounts": [{"user": "fwd", "pass": "secret 1"}]}
        name = "socks"
    return {"tag": "in", "listen": "127.0.0.1", "port": port, "protocol": name,
            "settings": settings}


def client_outbound(proto, port, uuid=UUID, password="secret 1"):
    server = {"address": "127.0.0.1", "port": port}
    if proto.startswith("vmess"):
        security = {"vmess-aes": "aes-128-gcm", "vmess-chacha": "chacha20-poly1305",
                    "vmess-none": "none"}[proto]
        server["users"] = [{"id": uuid, "alterId": 0, "security": security}]
        return {"tag": "out", "protocol": "vmess", "settings": {"vnext": [server]}}
    if proto == "vless":
        server["users"] = [{"id": uuid, "encryption": "none"}]
        return {"tag": "out", "protocol": "vless", "settings": {"vnext": [server]}}
    if proto == "socks-password":
        server["users"] = [{"user": "fwd", "pass": password}]
    return {"tag": "out", "protocol": "socks", "settings": {"servers": [server]}}


def client_config(proto, listen_port, server_port, target_port, **kw):
    return {
        "log": {"loglevel": "warning"},
        "inbounds": [{"tag": "app", "listen": "127.0.0.1", "port": listen_port,
                      "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": target_port,
                                   "network": "tcp"}}],
        "outbounds": [client_outbound(proto, server_port, **kw)],
    }


def server_config(proto, port, handshake=None, **kw):
    cfg = {
        "log": {"loglevel": "warning"},
        "inbounds": [server_inbound(proto, port, **kw)],
        "outbounds": [{"tag": "direct", "protocol": "freedom", "settings": {}}],
    }
    if handshake is not None:
        cfg["policy"] = {"levels": {"0": {"handshake": handshake}}}
    return cfg


def start_forward(procs, client_kind, server_kind, proto, backend, client_kw=None,
                  server_kw=None, check=True):
    app, srv = free_port(), free_port()
    server = procs.start(server_kind, "server", server_config(proto, srv, **(server_kw or {})))
    assert wait_until(lambda: port_open(srv), 10), procs.log(server)
    client = procs.start(client_kind, "client",
                         client_config(proto, app, srv, backend, **(client_kw or {})))
    assert wait_until(lambda: port_open(app), 10), procs.log(client)
    if check:
        ok = wait_until(lambda: backend_answers(app), 10)
        assert ok, "no path:\n--- client\n%s\n--- server\n%s" % (procs.log(client),
                                                                  procs.log(server))
    return app, client, server


def backend_answers(port):
    try:
        return http_get(port, timeout=2)[1] == b"hello from the backend\n"
    except OSError:
        return False


# ---- payload helpers (streaming: 64 MiB must not be concatenated chunk by chunk) ----------

_digests = {}
_payload = []


def pattern_digest(n):
    if n not in _digests:
        _digests[n] = hashlib.sha256(pattern(n)).hexdigest()
    return _digests[n]


def upload_payload():
    if not _payload:
        _payload.append(os.urandom(BULK))
    return _payload[0]


def get_digest(port, n, timeout=60):
    """GET /bytes/n; returns (status line, body length, SHA-256 of the body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        data = bytearray()
        while b"\r\n\r\n" not in data:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        digest, got = hashlib.sha256(body), len(body)
        while got < length:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
        return head.split(b"\r\n")[0], got, digest.hexdigest()


def bulk_both_ways(port, size):
    t0 = time.monotonic()
    status, got, digest = get_digest(port, size)
    t1 = time.monotonic()
    assert status.startswith(b"HTTP/1.1 200") and got == size
    assert digest == pattern_digest(size), "download corrupted"
    payload = upload_payload()[:size]
    answer = http_post(port, payload, timeout=60)
    t2 = time.monotonic()
    assert answer.decode() == hashlib.sha256(payload).hexdigest(), "upload corrupted"
    return t1 - t0, t2 - t1


# ---- forward proxying --------------------------------------------------------------------

def concurrent_gets(port, n):
    sizes = [1000 + 997 * i for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda k: http_get(port, "/bytes/%d" % k, timeout=20), sizes))
    for k, (head, body) in zip(sizes, results):
        assert head.startswith(b"HTTP/1.1 200") and body == pattern(k)


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("client_kind,server_kind", SIDES)
def test_forward(procs, backend, client_kind, server_kind, proto):
    """A few small requests, 64 MiB each way (checked by SHA-256), and for one protocol of
    each kind 64 concurrent connections."""
    app, client, server = start_forward(procs, client_kind, server_kind, proto, backend)
    for _ in range(3):
        head, body = http_get(app)
        assert head.startswith(b"HTTP/1.1 200") and body == b"hello from the backend\n"
    down, up = bulk_both_ways(app, BULK)
    print("%s client -> %s server, %s: 64 MiB down %.2f s, up %.2f s"
          % (client_kind, server_kind, proto, down, up))
    if proto in ("vmess-aes", "vless", "socks-password"):
        concurrent_gets(app, 64)
    assert client.poll() is None and server.poll() is None


# ---- refusals ----------------------------------------------------------------------------

def exchange(port, timeout):
    """Send a request; return (bytes received, seconds until the connection ended)."""
    t0 = time.monotonic()
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return got, time.monotonic() - t0


@pytest.mark.parametrize("client_kind,server_kind", SIDES)
def test_vless_wrong_uuid(procs, backend, client_kind, server_kind):
    app, client, server = start_forward(procs, client_kind, server_kind, "vless", backend,
                                        client_kw={"uuid": OTHER_UUID},
                                        server_kw={"handshake": 2}, check=False)
    got, took = exchange(app, timeout=10)
    assert got == b""
    if server_kind == "vrev":  # anti-probing: quiet until the handshake deadline (2 s)
        assert took > 1.5, took
        assert "rejected" in procs.log(server)


@pytest.mark.parametrize("client_kind,server_kind", SIDES)
def test_socks_wrong_password(procs, backend, client_kind, server_kind):
    app, client, server = start_forward(procs, client_kind, server_kind, "socks-password",
                                        backend, client_kw={"password": "wrong"}, check=False)
    got, took = exchange(app, timeout=10)
    assert got == b"" and took < 5
    if server_kind == "vrev":
        assert "wrong username or password" in procs.log(server)


def test_socks_udp_associate_refused(procs, backend):
    """A vrev SOCKS inbound without "udp": true answers UDP ASSOCIATE (and always BIND) with
    "command not supported"."""
    srv = free_port()
    server = procs.start("vrev", "server", server_config("socks", srv))
    assert wait_until(lambda: port_open(srv), 10), procs.log(server)
    for cmd in (3, 2):
        with socket.create_connection(("127.0.0.1", srv), timeout=5) as s:
            s.sendall(bytes([5, 1, 0, 5, cmd, 0, 1, 127, 0, 0, 1, 0, 53]))
            data = b""
            while len(data) < 12:
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            assert data[:2] == b"\x05\x00" and data[2:4] == b"\x05\x07", data
            assert s.recv(64) == b""  # then closed


# ---- a reverse tunnel over VLESS ---------------------------------------------------------

def vless_portal_config(ext, tun):
    cfg = portal_config(ext, tun)
    cfg["inbounds"][1] = {"tag": "interconn", "listen": "127.0.0.1", "port": tun,
                          "protocol": "vless",
                          "settings": {"clients": [{"id": UUID}], "decryption": "none"}}
    return cfg


def vless_bridge_config(tun, backend):
    cfg = bridge_config(tun, backend)
    cfg["outbounds"][1] = {"tag": "interconn", "protocol": "vless",
                           "settings": {"vnext": [{"address": "127.0.0.1", "port": tun,
                                                   "users": [{"id": UUID,
                                                              "encryption": "none"}]}]}}
    return cfg


@pytest.mark.parametrize("portal_kind,bridge_kind", [("v2ray", "vrev"), ("vrev", "v2ray")])
def test_reverse_over_vless(procs, backend, portal_kind, bridge_kind):
    ext, tun = free_port(), free_port()
    portal = procs.start(portal_kind, "portal", vless_portal_config(ext, tun))
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", vless_bridge_config(tun, backend))
    ok = wait_until(lambda: backend_answers(ext), 15)
    assert ok, "no tunnel:\n--- portal\n%s\n--- bridge\n%s" % (procs.log(portal),
                                                                procs.log(bridge))
    for _ in range(20):
        head, body = http_get(ext)
        assert body == b"hello from the backend\n"
    down, up = bulk_both_ways(ext, 16 << 20)
    print("reverse over VLESS, %s portal / %s bridge: 16 MiB down %.2f s, up %.2f s"
          % (portal_kind, bridge_kind, down, up))
    concurrent_gets(ext, 32)
    assert portal.poll() is None and bridge.poll() is None


# ---- several servers on one outbound --------------------------------------------------------

OTHER_UUIDS = ["3b2e1c38-33a4-4b7e-9a9e-7c4a1e0f5d21", "f4c0b7a1-5a3e-4d61-8c2b-9e7d1a6f3b40"]


@pytest.mark.parametrize("proto", ["vmess-aes", "vless", "socks-password"])
def test_several_servers_in_turn(procs, backend, proto):
    """An outbound listing two servers (the first with two users) uses them in turn, as V2Ray
    4.34 does, with a user of the server it picked: server A answers through the backend,
    server B with blackhole's 403, so the answers alternate."""
    app, a, b = free_port(), free_port(), free_port()
    users_a, users_b = [UUID, OTHER_UUIDS[0]], [OTHER_UUIDS[1]]
    ina, inb = server_inbound(proto, a), server_inbound(proto, b)
    ina["tag"], inb["tag"] = "a", "b"
    if proto == "socks-password":
        ina["settings"]["accounts"] = [{"user": "u%d" % i, "pass": "p%d" % i} for i in (1, 2)]
        inb["settings"]["accounts"] = [{"user": "u3", "pass": "p3"}]
    else:
        for inbound, users in ((ina, users_a), (inb, users_b)):
            inbound["settings"]["clients"] = [
                dict(inbound["settings"]["clients"][0], id=u, email="%s@vrev.test" % u[:8])
                for u in users]
    server = procs.start("v2ray", "server", {
        "log": {"loglevel": "warning"},
        "inbounds": [ina, inb],
        "outbounds": [{"tag": "direct", "protocol": "freedom", "settings": {}},
                      {"tag": "deny", "protocol": "blackhole",
                       "settings": {"response": {"type": "http"}}}],
        "routing": {"rules": [{"type": "field", "inboundTag": ["b"], "outboundTag": "deny"}]}})
    assert wait_until(lambda: port_open(a) and port_open(b), 10), procs.log(server)
    out = client_outbound(proto, a)
    if proto == "socks-password":
        out["settings"]["servers"] = [
            {"address": "127.0.0.1", "port": a,
             "users": [{"user": "u1", "pass": "p1"}, {"user": "u2", "pass": "p2"}]},
            {"address": "127.0.0.1", "port": b, "users": [{"user": "u3", "pass": "p3"}]}]
    else:
        user = out["settings"]["vnext"][0]["users"][0]
        out["settings"]["vnext"] = [
            {"address": "127.0.0.1", "port": a, "users": [dict(user, id=u) for u in users_a]},
            {"address": "127.0.0.1", "port": b, "users": [dict(user, id=u) for u in users_b]}]
    cfg = client_config(proto, app, a, backend)
    cfg["outbounds"] = [out]
    client = procs.start("vrev", "client", cfg)
    assert wait_until(lambda: port_open(app), 10), procs.log(client)
    answers = []
    for _ in range(6):
        head, body = http_get(app)
        answers.append("A" if body == b"hello from the backend\n" else
                       "B" if b" 403 " in head.split(b"\r\n")[0] else "?")
    # (the readiness probe of the client's port took a turn too: the order may start at B)
    assert "?" not in answers and all(x != y for x, y in zip(answers, answers[1:])), \
        (answers, procs.log(client), procs.log(server))
