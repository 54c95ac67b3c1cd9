"""UDP through a reverse tunnel (a UDP mux session per client address; WIRE-SPEC §2.5), in
every pairing of vrev and V2Ray 4.34."""
import socket
import struct

import pytest

from harness import (bridge_config, free_port, port_open, portal_config, udp_exit_tries,
                     udp_roundtrip, udp_session, wait_until)

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
    tries = udp_exit_tries(bridge_kind)
    # one session, several datagrams of several sizes: each comes back whole and in order
    sock, got = udp_session(ext, b"first", tries)
    assert got == b"echo:first", "%s\n%s" % (procs.log(portal), procs.log(bridge))
    with sock:
        for i in range(10):
            payload = b"in-session-%d-" % i + bytes(range(256)) * (i % 7)
            assert udp_roundtrip(ext, payload, 2.0, sock) == b"echo:" + payload, i
    # a new session per datagram
    for i in range(20):
        payload = b"datagram-%d-" % i + bytes(range(256)) * (i % 7)
        sock, got = udp_session(ext, payload, tries)
        assert got == b"echo:" + payload, i
        sock.close()


@pytest.mark.parametrize("portal_kind", ["vrev", "v2ray"])
def test_many_udp_sessions_keep_apart(procs, backend, udp_echo, portal_kind):
    """300 UDP sessions in quick succession through a vrev bridge, all live at once: every
    answer reaches the client that asked, first time. (V2Ray 4.34 as the bridge fails this:
    two of its freedom sockets can share a port, see harness.udp_exit_tries.)"""
    tun, ext = free_port(), free_port()
    portal_cfg, bridge_cfg = udp_configs(tun, ext, udp_echo, backend)
    portal = procs.start(portal_kind, "portal", portal_cfg)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start("vrev", "bridge", bridge_cfg)
    assert wait_until(lambda: udp_roundtrip(ext, b"ping", 0.3) == b"echo:ping", 15), \
        "no UDP echo:\n%s\n%s" % (procs.log(portal), procs.log(bridge))
    lost = [i for i in range(300)
            if udp_roundtrip(ext, b"session-%d" % i, 2.0) != b"echo:session-%d" % i]
    assert not lost, lost


# ---- forward UDP: dokodemo-door (udp) -> X outbound ==> X inbound -> freedom -> echo -------

def forward_udp_configs(proto, app, srv, echo_port):
    from test_forward_interop import client_outbound, server_inbound
    client = {
        "log": {"loglevel": "warning"},
        "inbounds": [{"tag": "app", "listen": "127.0.0.1", "port": app,
                      "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": echo_port,
                                   "network": "udp"}}],
        "outbounds": [client_outbound(proto, srv)],
    }
    server = {
        "log": {"loglevel": "warning"},
        "inbounds": [server_inbound(proto, srv)],
        "outbounds": [{"tag": "direct", "protocol": "freedom", "settings": {}}],
    }
    return client, server


@pytest.mark.parametrize("proto", ["vmess-aes", "vless"])
@pytest.mark.parametrize("client_kind,server_kind", PAIRS)
def test_forward_udp(procs, udp_echo, proto, client_kind, server_kind):
    """Datagrams over a VMess (UDP command, one datagram per chunk) or VLESS (UDP command,
    u16be length-prefixed datagrams) proxy connection, with V2Ray 4.34 on either side:
    boundaries kept, sizes from 1 byte up to what a 4.34 writer sends (VLESS: 2046 bytes;
    VMess: what fits a 2048-byte chunk with its tag and padding)."""
    app, srv = free_port(), free_port()
    client_cfg, server_cfg = forward_udp_configs(proto, app, srv, udp_echo)
    server = procs.start(server_kind, "server", server_cfg)
    assert wait_until(lambda: port_open(srv), 10), procs.log(server)
    client = procs.start(client_kind, "client", client_cfg)
    assert wait_until(lambda: udp_roundtrip(app, b"ping", 0.3) == b"echo:ping", 15), \
        "no UDP echo:\n%s\n%s" % (procs.log(client), procs.log(server))
    biggest = 2041 if proto == "vless" else 1900  # the echo adds 5 bytes
    for size in (1, 100, 1400, biggest):
        payload = bytes((i * 7 + size) & 0xFF for i in range(size))
        sock, got = udp_session(app, payload, udp_exit_tries(server_kind))
        assert got == b"echo:" + payload, size
        sock.close()


# ---- SOCKS5 UDP ASSOCIATE -------------------------------------------------------------------

def socks_udp_server(port, listen="127.0.0.1", announce="127.0.0.1"):
    return {"log": {"loglevel": "info"},
            "inbounds": [{"tag": "socks", "listen": listen, "port": port,
                          "protocol": "socks",
                          "settings": {"auth": "noauth", "udp": True, "ip": announce}}],
            "outbounds": [{"tag": "direct", "protocol": "freedom", "settings": {}}]}


def socks_associate(port):
    """UDP ASSOCIATE on a fresh connection: (the connection, the relay's (host, port))."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(bytes([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
    data = b""
    while len(data) < 12:
        chunk = s.recv(64)
        assert chunk, "closed during the handshake: %r" % data
        data += chunk
    assert data[:2] == b"\x05\x00" and data[2:4] == b"\x05\x00" and data[5] == 1, data
    host = socket.inet_ntoa(data[6:10])
    return s, (host, struct.unpack(">H", data[10:12])[0])


def socks_datagram(dest_port, payload):
    return bytes([0, 0, 0, 1, 127, 0, 0, 1]) + struct.pack(">H", dest_port) + payload


def socks_udp_roundtrip(sock, relay, dest_port, payload, timeout=2.0):
    sock.settimeout(timeout)
    sock.sendto(socks_datagram(dest_port, payload), relay)
    try:
        data, _ = sock.recvfrom(65536)
        return data
    except socket.timeout:
        return None


def test_socks_udp_associate(procs, udp_echo):
    """A vrev SOCKS inbound with "udp": true relays datagrams (each naming its destination in
    the SOCKS header; replies name it as their source), only for client IPs with an open
    association, and stops when the association's connection closes."""
    srv = free_port()
    server = procs.start("vrev", "server", socks_udp_server(srv))
    assert wait_until(lambda: port_open(srv), 10), procs.log(server)
    ctl, relay = socks_associate(srv)
    assert relay == ("127.0.0.1", srv)  # settings.ip, and the inbound's own port
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    for i, size in enumerate((1, 100, 1400, 8000)):
        payload = bytes((j + i) & 0xFF for j in range(size))
        got = socks_udp_roundtrip(u, relay, udp_echo, payload)
        assert got == socks_datagram(udp_echo, b"echo:" + payload), (size, procs.log(server))
    # a fragment (FRAG != 0) is dropped, as by V2Ray
    frag = bytearray(socks_datagram(udp_echo, b"fragment"))
    frag[2] = 1
    u.sendto(bytes(frag), relay)
    assert socks_udp_roundtrip(u, relay, udp_echo, b"after", 2.0) == \
        socks_datagram(udp_echo, b"echo:after")
    # another client IP without an association gets nothing through
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    assert socks_udp_roundtrip(other, relay, udp_echo, b"stranger", 0.5) is None
    other.close()
    # the association ends with its connection
    ctl.close()
    assert wait_until(lambda: socks_udp_roundtrip(u, relay, udp_echo, b"late", 0.2) is None, 5)
    u.close()
    assert "UDP associated for 127.0.0.1" in procs.log(server)


def socks_udp_client(app, srv, echo_port, server_host="127.0.0.1"):
    """dokodemo-door (UDP) to the echo server, through a SOCKS outbound."""
    return {"log": {"loglevel": "info"},
            "inbounds": [{"tag": "app", "listen": "127.0.0.1", "port": app,
                          "protocol": "dokodemo-door",
                          "settings": {"address": "127.0.0.1", "port": echo_port,
                                       "network": "udp"}}],
            "outbounds": [{"protocol": "socks", "settings": {
                "servers": [{"address": server_host, "port": srv}]}}]}


@pytest.mark.parametrize("client_kind,server_kind",
                         [("v2ray", "vrev"), ("vrev", "vrev"), ("vrev", "v2ray")])
def test_socks_udp_outbound(procs, udp_echo, client_kind, server_kind):
    """A SOCKS outbound carries UDP links through a SOCKS5 server's UDP relay (UDP ASSOCIATE
    on a TCP connection, then datagrams behind SOCKS headers to the relay the reply names):
    vrev's to a vrev or a V2Ray 4.34 server, V2Ray's to vrev's; sizes up to 2000 bytes, a
    session per datagram and several datagrams in one."""
    srv, app = free_port(), free_port()
    server = procs.start(server_kind, "server", socks_udp_server(srv))
    assert wait_until(lambda: port_open(srv), 10), procs.log(server)
    client = procs.start(client_kind, "client", socks_udp_client(app, srv, udp_echo))
    assert wait_until(lambda: udp_roundtrip(app, b"ping", 0.3) == b"echo:ping", 15), \
        "no UDP echo:\n%s\n%s" % (procs.log(client), procs.log(server))
    # both sides open UDP sockets of their own (the client's to the relay)
    tries = max(udp_exit_tries(client_kind), udp_exit_tries(server_kind))
    for size in (1, 1400, 2000):
        payload = bytes((i * 5 + size) & 0xFF for i in range(size))
        sock, got = udp_session(app, payload, tries)
        assert got == b"echo:" + payload, size
        sock.close()
    sock, got = udp_session(app, b"first", tries)
    assert got == b"echo:first"
    with sock:
        for i in range(5):
            assert udp_roundtrip(app, b"more-%d" % i, 2.0, sock) == b"echo:more-%d" % i
    assert client.poll() is None and server.poll() is None


@pytest.mark.parametrize("server_kind", ["vrev", "v2ray"])
def test_socks_udp_relay_named_unspecified(procs, udp_echo, server_kind):
    """A server on 127.0.0.2 whose UDP ASSOCIATE reply names 0.0.0.0 ("ip": "0.0.0.0"): vrev's
    SOCKS outbound sends to the server's own address (127.0.0.2). Sent to 0.0.0.0, Linux
    would deliver the datagrams to 127.0.0.1, where nothing listens."""
    srv, app = free_port(), free_port()
    server = procs.start(server_kind, "server",
                         socks_udp_server(srv, listen="127.0.0.2", announce="0.0.0.0"))
    assert wait_until(lambda: port_open(srv, "127.0.0.2"), 10), procs.log(server)
    client = procs.start("vrev", "client",
                         socks_udp_client(app, srv, udp_echo, server_host="127.0.0.2"))
    assert wait_until(lambda: udp_roundtrip(app, b"ping", 0.3) == b"echo:ping", 15), \
        "no UDP echo:\n%s\n%s" % (procs.log(client), procs.log(server))
