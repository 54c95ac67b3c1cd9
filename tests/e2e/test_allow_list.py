"""JSON mode's opt-in allow-list for a bridge ("vrev": {"bridges": {TAG: {"allow": [...]}}}).

With V2Ray's semantics a bridge whose sessions reach a freedom outbound without "redirect"
dials whatever the portal names: a hostile (or compromised) portal reaches any host and port
the bridge can. The loader warns about it; the allow-list closes it. Here the portal names two
services on the bridge's host; only the allowed one is reached.
"""
import socket

from harness import (DOMAIN, UUID, backend, free_port, http_get, procs,  # noqa: F401
                     time_limit, wait_until)


def portal(tunnel_port, ext_a, ext_b, port_a, port_b):
    def public(tag, listen, target):
        return {"tag": tag, "listen": "127.0.0.1", "port": listen, "protocol": "dokodemo-door",
                "settings": {"address": "127.0.0.1", "port": target, "network": "tcp"}}
    return {
        "reverse": {"portals": [{"tag": "portal", "domain": DOMAIN}]},
        "inbounds": [
            public("ext-a", ext_a, port_a),
            public("ext-b", ext_b, port_b),  # the target the bridge must refuse
            {"tag": "interconn", "listen": "127.0.0.1", "port": tunnel_port, "protocol": "vmess",
             "settings": {"clients": [{"id": UUID, "alterId": 0}]}},
        ],
        "outbounds": [{"tag": "block", "protocol": "blackhole", "settings": {}}],
        "routing": {"rules": [{"type": "field", "inboundTag": ["ext-a", "ext-b", "interconn"],
                               "outboundTag": "portal"}]},
    }


def bridge(tunnel_port, allow):
    cfg = {
        "reverse": {"bridges": [{"tag": "bridge", "domain": DOMAIN}]},
        "outbounds": [
            {"tag": "out", "protocol": "freedom", "settings": {}},  # no redirect
            {"tag": "interconn", "protocol": "vmess",
             "settings": {"vnext": [{"address": "127.0.0.1", "port": tunnel_port,
                                     "users": [{"id": UUID, "alterId": 0}]}]}},
        ],
        "routing": {"rules": [
            {"type": "field", "inboundTag": ["bridge"], "domain": ["full:" + DOMAIN],
             "outboundTag": "interconn"},
            {"type": "field", "inboundTag": ["bridge"], "outboundTag": "out"},
        ]},
    }
    if allow:
        cfg["vrev"] = {"bridges": {"bridge": {"allow": allow}}}
    return cfg


def reached(listener, ext_port):
    """Whether a connection to the portal's public port ext_port arrives at `listener`."""
    try:
        with socket.create_connection(("127.0.0.1", ext_port), timeout=3) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            listener.settimeout(2.0)
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                return False
            conn.close()
            return True
    except OSError:
        return False


def run_case(procs, backend, allow):  # noqa: F811
    tunnel, ext_a, ext_b = free_port(), free_port(), free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        port_b = other.getsockname()[1]
        allow = [a.replace("PORT_A", str(backend)) for a in allow]
        procs.start("vrev", "portal", portal(tunnel, ext_a, ext_b, backend, port_b))
        b = procs.start("vrev", "bridge", bridge(tunnel, allow))
        # the allowed service works through the tunnel
        assert wait_until(lambda: _get_ok(ext_a), timeout=15), procs.log(b)
        return reached(other, ext_b), procs.log(b)


def _get_ok(port):
    try:
        return http_get(port, timeout=3)[1] == b"hello from the backend\n"
    except OSError:
        return False


def test_allow_list_refuses_other_targets(procs, backend):  # noqa: F811
    got, log = run_case(procs, backend, ["tcp:127.0.0.1:PORT_A"])
    assert not got, "the portal reached a target outside the allow-list"
    assert "redirect" not in log  # opted in: no warning


def test_without_allow_list_the_portal_reaches_anything(procs, backend):  # noqa: F811
    """V2Ray's semantics, kept, with the load-time warning that names the way out."""
    got, log = run_case(procs, backend, [])
    assert got
    assert ('the sessions of bridge "bridge" reach freedom outbound "out" by routing.rules[1]'
            in log), log
    assert '"vrev": {"bridges": {"bridge": {"allow"' in log
