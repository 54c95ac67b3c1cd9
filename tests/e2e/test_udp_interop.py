"""UDP through a reverse tunnel (a UDP mux session per client address; WIRE-SPEC §2.5), in
every pairing of vrev and V2Ray 4.34."""
import pytest

from harness import (bridge_config, free_port, port_open, portal_config, udp_roundtrip,
                     wait_until)

PAIRS = [("vrev", "v2ray"), ("v2ray", "vrev"), ("vrev", "vrev")]


def udp_configs(tun, ext_udp, echo_port, backend):
    portal = portal_config(free_port(), tun)
    portal["inbounds"].append(
        {"tag": "external-udp", "listen": "127.0.0.1", "port": ext_udp,
         "protocol": "dokodemo-door",
         "settings": {"address": "127.0.0.1", "port": 53, "network": "udp"}})
    portal["routing"]["rules"].append(
        {"type": "field", "inboundTag": ["external-udp"], "outboundTag": "portal"})
    bridge = bridge_config(tun, backend)
    bridge["outbounds"].append({"tag": "out-udp", "protocol": "freedom",
                                "settings": {"redirect": "127.0.0.1:%d" % echo_port}})
    bridge["routing"]["rules"].insert(1, {"type": "field", "inboundTag": ["bridge"],
                                          "network": "udp", "outboundTag": "out-udp"})
    return portal, bridge


@pytest.mark.parametrize("portal_kind,bridge_kind", PAIRS)
def test_udp_echo_through_tunnel(procs, backend, udp_echo, portal_kind, bridge_kind):
    tun, ext = free_port(), free_port()
    portal_cfg, bridge_cfg = udp_configs(tun, ext, udp_echo, backend)
    portal = procs.start(portal_kind, "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", bridge_cfg)
    assert wait_until(lambda: udp_roundtrip(ext, b"ping-udp-1", 0.3) == b"echo:ping-udp-1", 15), \
        "no UDP echo:\n%s\n%s" % (procs.log(portal), procs.log(bridge))
    for i in range(20):
        payload = b"datagram-%d-" % i + bytes(range(256)) * (i % 7)
        assert udp_roundtrip(ext, payload, 2.0) == b"echo:" + payload
