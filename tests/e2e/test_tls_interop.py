"""Reverse tunnels over VMess+TLS and VLESS+TLS between vrev and V2Ray 4.34 in every pairing;
a TLS peer with the wrong name is refused (WIRE-SPEC §8.5)."""
import os

import pytest

from harness import (ROOT, UUID, bridge_config, free_port, http_get, port_open, portal_config,
                     wait_until)

TLS = os.path.join(ROOT, "tests", "vectors", "tls")
PAIRS = [("vrev", "v2ray"), ("v2ray", "vrev"), ("vrev", "vrev")]


def with_tls(portal, bridge, protocol="vmess", server_name="localhost"):
    """Put the tunnel (portal inbound "interconn", bridge outbound "interconn") on TLS."""
    inbound = portal["inbounds"][1]
    outbound = bridge["outbounds"][1]
    if protocol == "vless":
        inbound["protocol"] = "vless"
        inbound["settings"] = {"clients": [{"id": UUID}], "decryption": "none"}
        server = outbound["settings"]["vnext"][0]
        outbound["protocol"] = "vless"
        server["users"] = [{"id": UUID, "encryption": "none"}]
    inbound["streamSettings"] = {"security": "tls", "tlsSettings": {"certificates": [
        {"certificateFile": os.path.join(TLS, "server.crt"),
         "keyFile": os.path.join(TLS, "server.key")}]}}
    outbound["streamSettings"] = {"security": "tls", "tlsSettings": {
        "serverName": server_name,
        "certificates": [{"certificateFile": os.path.join(TLS, "ca.crt"), "usage": "verify"}]}}
    return portal, bridge


def works(port):
    try:
        return http_get(port, timeout=2)[1] == b"hello from the backend\n"
    except OSError:
        return False


@pytest.mark.parametrize("protocol", ["vmess", "vless"])
@pytest.mark.parametrize("portal_kind,bridge_kind", PAIRS)
def test_tunnel_over_tls(procs, backend, portal_kind, bridge_kind, protocol):
    ext, tun = free_port(), free_port()
    portal_cfg, bridge_cfg = with_tls(portal_config(ext, tun), bridge_config(tun, backend),
                                      protocol)
    portal = procs.start(portal_kind, "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", bridge_cfg)
    assert wait_until(lambda: works(ext), 15), \
        "no tunnel:\n--- portal\n%s\n--- bridge\n%s" % (procs.log(portal), procs.log(bridge))
    size = 16 << 20
    head, body = http_get(ext, "/bytes/%d" % size, timeout=60)
    assert len(body) == size
    for _ in range(10):
        assert works(ext)


@pytest.mark.parametrize("portal_kind", ["vrev", "v2ray"])
def test_wrong_server_name_refused(procs, backend, portal_kind):
    """The portal's certificate is for localhost; a vrev bridge told to expect another name
    refuses it: no tunnel, the log says why, nothing crashes."""
    ext, tun = free_port(), free_port()
    portal_cfg, bridge_cfg = with_tls(portal_config(ext, tun), bridge_config(tun, backend),
                                      server_name="portal.example.net")
    portal = procs.start(portal_kind, "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start("vrev", "bridge", bridge_cfg)
    assert not wait_until(lambda: works(ext), 4)
    assert portal.poll() is None and bridge.poll() is None
    assert "tunnel up" not in procs.log(bridge)
    assert wait_until(lambda: "certificate verify failed" in procs.log(bridge), 5), \
        procs.log(bridge)
