"""vrev portal / vrev bridge (no JSON), against each other and against V2Ray 4.34 running the
configuration that --print-config gives; the bridge's target allowlist; bad ids; the
documentation's example configs run unchanged."""
import json
import os
import re
import socket
import subprocess
import time

from harness import (DOMAIN, ROOT, UUID, free_port, http_get, port_open, portal_config,
                     wait_until)

WRONG_UUID = "0f5b7f64-0a8c-4e0e-9e57-0b6c2d1f9a21"


def works(port):
    try:
        return http_get(port, timeout=2)[1] == b"hello from the backend\n"
    except OSError:
        return False


def portal_argv(tun, pub, name="web", uuid=UUID):
    return ["vrev", "portal", "--listen", "127.0.0.1:%d" % tun,
            "--public", "127.0.0.1:%d=%s" % (pub, name), "--id", uuid]


def bridge_argv(tun, backend, name="web", uuid=UUID):
    return ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun,
            "--to", "%s=127.0.0.1:%d" % (name, backend), "--id", uuid]


def printed(procs, argv):
    argv = [procs.vrev_bin] + argv[1:] + ["--print-config"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_portal_and_bridge(procs, backend):
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend))
    assert wait_until(lambda: works(pub), 10), procs.log(bridge)
    for _ in range(10):
        assert works(pub)
    assert "tunnel up" in procs.log(bridge) and "tunnel up" in procs.log(portal)


def test_cli_against_v2ray_both_roles(procs, backend):
    # vrev portal (CLI) + V2Ray bridge running what `vrev bridge --print-config` prints
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: port_open(tun), 10)
    procs.start("v2ray", "v2bridge", printed(procs, bridge_argv(tun, backend)))
    assert wait_until(lambda: works(pub), 10), procs.log(portal)
    procs.stop_all()
    # V2Ray portal running what `vrev portal --print-config` prints + vrev bridge (CLI)
    tun, pub = free_port(), free_port()
    procs.start("v2ray", "v2portal", printed(procs, portal_argv(tun, pub)))
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend))
    assert wait_until(lambda: works(pub), 10), procs.log(bridge)


def test_printed_configs_run_under_vrev(procs, backend):
    tun, pub = free_port(), free_port()
    procs.start("vrev", "pportal", printed(procs, portal_argv(tun, pub)))
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start("vrev", "pbridge", printed(procs, bridge_argv(tun, backend)))
    assert wait_until(lambda: works(pub), 10), procs.log(bridge)


def test_bridge_refuses_targets_outside_to(procs, backend):
    """A hostile portal (V2Ray, its public listener aimed at another name, then at a raw
    address) gets nothing from a CLI bridge: each session is refused and counted."""
    tun, ext = free_port(), free_port()
    cfg = portal_config(ext, tun)
    cfg["reverse"]["portals"][0]["domain"] = "tunnel.vrev.internal"
    cfg["inbounds"][0]["settings"] = {"address": "127.0.0.1", "port": backend, "network": "tcp"}
    procs.start("v2ray", "hostile", cfg)
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start_argv("bridge", bridge_argv(tun, free_port()))
    assert wait_until(lambda: "tunnel up" in procs.log(bridge), 10), procs.log(bridge)
    for _ in range(3):
        assert not works(ext)
    assert wait_until(lambda: procs.log(bridge).count("not an allowed target") >= 3, 5), \
        procs.log(bridge)
    assert "127.0.0.1:%d" % backend in procs.log(bridge)
    assert procs.procs[-1].poll() is None  # the bridge is still running


def test_wrong_id_makes_no_tunnel(procs, backend):
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend, uuid=WRONG_UUID))
    assert wait_until(lambda: "rejected" in procs.log(portal), 10), procs.log(portal)
    assert not works(pub)
    assert portal.poll() is None and bridge.poll() is None
    assert WRONG_UUID not in procs.log(portal) and WRONG_UUID not in procs.log(bridge)
    assert "tunnel up" not in procs.log(bridge)


def test_bad_id_is_a_clear_error_at_start(procs):
    r = subprocess.run([procs.vrev_bin, "bridge", "--portal", "127.0.0.1:1", "--to",
                        "127.0.0.1:2", "--id", "not-a-uuid"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "--id" in r.stderr and "UUID" in r.stderr
    r = subprocess.run([procs.vrev_bin, "bridge", "--portal", "127.0.0.1:1", "--to",
                        "127.0.0.1:2"], capture_output=True, text=True, timeout=10,
                       env={k: v for k, v in os.environ.items() if k != "VREV_ID"})
    assert r.returncode == 1 and "needs an id" in r.stderr


def test_bridge_killed_mid_transfer_is_an_error(procs, backend):
    """The public client sees an error (reset), never a clean but short response."""
    tun, pub = free_port(), free_port()
    procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend))
    assert wait_until(lambda: works(pub), 10)
    size = 256 << 20
    with socket.create_connection(("127.0.0.1", pub), timeout=10) as s:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
        got = len(s.recv(65536))
        bridge.kill()
        error = False
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except ConnectionResetError:
            error = True
    assert got < size
    assert error, "the client got a clean end after %d of %d bytes" % (got, size)


def seed_config(name, replacements):
    text = open(os.path.join(ROOT, "tests", "vectors", "configs", name)).read()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_seed_page_configs_run_unchanged(procs, backend, tmp_path):
    """The documentation's bridge and portal (only addresses and ports changed, listeners put
    on loopback, comments kept) work under vrev in every pairing with V2Ray."""
    for portal_kind, bridge_kind in [("vrev", "vrev"), ("vrev", "v2ray"), ("v2ray", "vrev")]:
        tun, ext = free_port(), free_port()
        # listeners on loopback only: "listen" is added next to each port
        portal_text = seed_config("seed-portal.json", [
            ('"port": 1024,', '"listen": "127.0.0.1", "port": %d,' % tun),
            ('"port": 80, //', '"listen": "127.0.0.1", "port": %d, //' % ext)])
        bridge_text = seed_config("seed-bridge.json", [
            ("203.0.113.7", "127.0.0.1"), ('"port": 1024,', '"port": %d,' % tun),
            ("127.0.0.1:80", "127.0.0.1:%d" % backend)])
        pp, bp = tmp_path / ("p-%s.json" % portal_kind), tmp_path / ("b-%s.json" % bridge_kind)
        pp.write_text(portal_text)
        bp.write_text(bridge_text)
        portal = procs.start_file(portal_kind, "seedportal-" + portal_kind + bridge_kind, pp)
        assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
        bridge = procs.start_file(bridge_kind, "seedbridge-" + portal_kind + bridge_kind, bp)
        assert wait_until(lambda: works(ext), 15), procs.log(portal) + procs.log(bridge)
        procs.stop_all()


TLS_DIR = os.path.join(ROOT, "tests", "vectors", "tls")


def test_cli_tls_both_roles_and_v2ray(procs, backend):
    """--tls: CLI portal and bridge, then each against V2Ray running the printed config."""
    cert = ["--tls", "--cert", os.path.join(TLS_DIR, "server.crt"),
            "--key", os.path.join(TLS_DIR, "server.key")]
    trust = ["--tls", "--ca", os.path.join(TLS_DIR, "ca.crt")]
    for portal_kind, bridge_kind in [("vrev", "vrev"), ("vrev", "v2ray"), ("v2ray", "vrev")]:
        tun, pub = free_port(), free_port()
        pargv, bargv = portal_argv(tun, pub) + cert, bridge_argv(tun, backend) + trust
        if portal_kind == "vrev":
            portal = procs.start_argv("portal-" + bridge_kind, pargv)
        else:
            portal = procs.start("v2ray", "v2portal", printed(procs, pargv))
        assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
        if bridge_kind == "vrev":
            bridge = procs.start_argv("bridge-" + portal_kind, bargv)
        else:
            bridge = procs.start("v2ray", "v2bridge", printed(procs, bargv))
        assert wait_until(lambda: works(pub), 15), procs.log(portal) + procs.log(bridge)
        procs.stop_all()


def test_cli_tls_unknown_ca_refused(procs, backend):
    tun, pub = free_port(), free_port()
    procs.start_argv("portal", portal_argv(tun, pub) + [
        "--tls", "--cert", os.path.join(TLS_DIR, "server.crt"),
        "--key", os.path.join(TLS_DIR, "server.key")])
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend) + [
        "--tls", "--ca", os.path.join(TLS_DIR, "other-ca.crt")])
    assert wait_until(lambda: "certificate verify failed" in procs.log(bridge), 10), \
        procs.log(bridge)
    assert not works(pub)


def test_cli_bridge_with_seed_page_v2ray_portal(procs, backend, tmp_path):
    """A CLI bridge serves a V2Ray portal configured as in the documentation (its public
    listener asks for 127.0.0.1:80; the bridge maps exactly that address)."""
    tun, ext = free_port(), free_port()
    portal_text = seed_config("seed-portal.json", [
        ('"port": 1024,', '"listen": "127.0.0.1", "port": %d,' % tun),
        ('"port": 80, //', '"listen": "127.0.0.1", "port": %d, //' % ext)])
    pp = tmp_path / "seed-portal.json"
    pp.write_text(portal_text)
    portal = procs.start_file("v2ray", "seedportal", pp)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start_argv("bridge", [
        "vrev", "bridge", "--portal", "127.0.0.1:%d" % tun, "--domain", "test.v2fly.org",
        "--id", "27848739-7e62-4138-9fd3-098a63964b6b",
        "--to", "127.0.0.1:80=127.0.0.1:%d" % backend])
    assert wait_until(lambda: works(ext), 15), procs.log(bridge)
    # and the printed equivalent runs under V2Ray with the same effect (on a fresh portal: a
    # 4.34 portal keeps picking a closed tunnel for up to 30 s, WIRE-SPEC §3.7)
    procs.stop_all()
    tun2, ext2 = free_port(), free_port()
    pp.write_text(seed_config("seed-portal.json", [
        ('"port": 1024,', '"listen": "127.0.0.1", "port": %d,' % tun2),
        ('"port": 80, //', '"listen": "127.0.0.1", "port": %d, //' % ext2)]))
    procs.start_file("v2ray", "seedportal2", pp)
    assert wait_until(lambda: port_open(tun2), 10)
    cfg = printed(procs, ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun2, "--domain",
                          "test.v2fly.org", "--id", "27848739-7e62-4138-9fd3-098a63964b6b",
                          "--to", "127.0.0.1:80=127.0.0.1:%d" % backend])
    procs.start("v2ray", "v2bridge", cfg)
    assert wait_until(lambda: works(ext2), 15)


def test_cli_portal_with_seed_page_v2ray_bridge(procs, backend, tmp_path):
    """A CLI portal serves a V2Ray bridge configured as in the documentation (its freedom
    outbound redirects every session to the local web server)."""
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", [
        "vrev", "portal", "--listen", "127.0.0.1:%d" % tun, "--public", "127.0.0.1:%d" % pub,
        "--domain", "test.v2fly.org", "--id", "27848739-7e62-4138-9fd3-098a63964b6b"])
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bp = tmp_path / "seed-bridge.json"
    bp.write_text(seed_config("seed-bridge.json", [
        ("203.0.113.7", "127.0.0.1"), ('"port": 1024,', '"port": %d,' % tun),
        ("127.0.0.1:80", "127.0.0.1:%d" % backend)]))
    procs.start_file("v2ray", "seedbridge", bp)
    assert wait_until(lambda: works(pub), 15), procs.log(portal)


def test_cli_bridge_serves_a_documented_v2ray_portal(procs, backend):
    """A V2Ray 4.34 portal set up as the V2Ray documentation shows (its public dokodemo-door
    names the real service: "address": "127.0.0.1", "port": <service port>) is served by
    `vrev bridge --to 127.0.0.1:<service port>`: the session's target is exactly the --to
    address. The same address over UDP (a dokodemo-door with "network": "udp") is not a TCP
    service: refused before anything is sent to the port (issue M7)."""
    tun, ext, ext_udp = free_port(), free_port(), free_port()
    cfg = portal_config(ext, tun)
    cfg["inbounds"][0]["settings"] = {"address": "127.0.0.1", "port": backend, "network": "tcp"}
    cfg["inbounds"].append({"tag": "external-udp", "listen": "127.0.0.1", "port": ext_udp,
                            "protocol": "dokodemo-door",
                            "settings": {"address": "127.0.0.1", "port": backend,
                                         "network": "udp"}})
    cfg["routing"]["rules"].append({"type": "field", "inboundTag": ["external-udp"],
                                    "outboundTag": "portal"})
    # a UDP socket on the service's port number: whatever reaches it would show up here
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trap.bind(("127.0.0.1", backend))
    trap.settimeout(0.2)
    try:
        procs.start("v2ray", "v2portal", cfg)
        assert wait_until(lambda: port_open(tun), 10)
        bridge = procs.start_argv("bridge", [
            "vrev", "bridge", "--portal", "127.0.0.1:%d" % tun, "--domain", DOMAIN,
            "--id", UUID, "--to", "127.0.0.1:%d" % backend])
        assert wait_until(lambda: works(ext), 15), procs.log(bridge)
        for _ in range(5):
            assert works(ext)
        assert "not an allowed target" not in procs.log(bridge)
        # UDP to the same address: refused, nothing arrives at the port, no answer
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(0.5)
            for _ in range(3):
                c.sendto(b"ping", ("127.0.0.1", ext_udp))
                try:
                    assert c.recvfrom(65536) is None, "the UDP session was answered"
                except socket.timeout:
                    pass
        want = "refused session to udp:127.0.0.1:%d: not an allowed target" % backend
        assert wait_until(lambda: want in procs.log(bridge), 5), procs.log(bridge)
        try:
            got = trap.recvfrom(65536)
        except socket.timeout:
            got = None
        assert got is None, "a datagram reached the service's port: %r" % (got,)
        assert works(ext)  # the tunnel still serves TCP
    finally:
        trap.close()


def test_printed_bridge_serves_a_documented_v2ray_portal(procs, backend):
    """What `vrev bridge --to 127.0.0.1:<port> --print-config` prints does what the CLI bridge
    does: run by V2Ray and by `vrev run`, it serves a V2Ray portal set up as the V2Ray
    documentation shows (the session names the real service over TCP)."""
    argv = ["vrev", "bridge", "--portal", "127.0.0.1:%d", "--domain", DOMAIN, "--id", UUID,
            "--to", "127.0.0.1:%d" % backend]
    for kind in ("v2ray", "vrev"):
        tun, ext = free_port(), free_port()
        cfg = portal_config(ext, tun)
        cfg["inbounds"][0]["settings"] = {"address": "127.0.0.1", "port": backend,
                                          "network": "tcp"}
        procs.start("v2ray", "v2portal-" + kind, cfg)
        assert wait_until(lambda: port_open(tun), 10)
        bridge_cfg = printed(procs, [a % tun if a == "127.0.0.1:%d" else a for a in argv])
        bridge = procs.start(kind, "printed-" + kind, bridge_cfg)
        assert wait_until(lambda: works(ext), 15), procs.log(bridge)
        procs.stop_all()
