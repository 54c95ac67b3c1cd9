"""A bridge portal given by a host name with several addresses: `vrev bridge --portal
localhost:P`, "localhost" being 127.0.0.1 and ::1, with a vrev portal on 127.0.0.1:P and
another on [::1]:P. The bridge keeps a tunnel to each; one portal killed, the other still
serves, and the killed one serves again once back. With TLS the bridge checks each portal's
certificate against the name (the certificate has no ::1 in it), and over ws it sends the name
as Host to each address. A name that does not resolve is logged and retried, the bridge stays.

When /etc/hosts does not give "localhost" both addresses, the bridge runs in a mount namespace
of its own (unshare) with a hosts file that does."""
import os
import socket
import subprocess
import threading
import time

import pytest

from harness import ROOT, UUID, free_port, port_open, relay, wait_until
from test_cli_tunnel import works

TLS_DIR = os.path.join(ROOT, "tests", "vectors", "tls")


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def hosts_addresses(name, path="/etc/hosts"):
    found = set()
    with open(path) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) > 1 and name in fields[1:]:
                found.add(fields[0])
    return found


@pytest.fixture
def both_localhost(tmp_path):
    """The argv prefix under which "localhost" resolves to 127.0.0.1 and ::1."""
    if not has_ipv6_loopback():
        pytest.skip("this host has no IPv6 loopback (::1): a name with an IPv4 and an IPv6 "
                    "loopback address cannot be tested")
    if {"127.0.0.1", "::1"} <= hosts_addresses("localhost"):
        return []
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n")
    prefix = ["unshare", "-m"] + ([] if os.geteuid() == 0 else ["-r"]) + [
        "--", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    try:
        r = subprocess.run(prefix + ["cat", "/etc/hosts"], capture_output=True, text=True,
                           timeout=10)
        ok = r.returncode == 0 and "::1 localhost" in r.stdout
    except OSError:
        ok = False
    if not ok:
        pytest.skip("/etc/hosts gives localhost no ::1 and no mount namespace is available "
                    "to give it one (unshare -m)")
    return prefix


def same_port_both():
    """A port free on 127.0.0.1 and on ::1."""
    for _ in range(50):
        p = free_port()
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(("::1", p))
            return p
        except OSError:
            continue
    raise AssertionError("no port free on both loopbacks")


def portal_argv(listen, pub, extra=()):
    return ["vrev", "portal", "--listen", listen, "--public", "127.0.0.1:%d=web" % pub,
            "--id", UUID] + list(extra)


def start_bridge(procs, prefix, port, backend, extra=()):
    argv = [procs.vrev_bin, "bridge", "--portal", "localhost:%d" % port, "--to",
            "web=127.0.0.1:%d" % backend, "--id", UUID, "--log-level", "info"] + list(extra)
    return procs.start_argv("bridge", prefix + argv)


def serves(pub, times=1):
    return all(works(pub) for _ in range(times))


def test_a_tunnel_to_each_address(procs, backend, both_localhost):
    port, pubs = same_port_both(), [free_port(), free_port()]
    listens = ["127.0.0.1:%d" % port, "[::1]:%d" % port]
    portal = [procs.start_argv("portal%d" % i, portal_argv(listens[i], pubs[i]))
              for i in range(2)]
    assert wait_until(lambda: port_open(port) and port_open(port, "::1"), 10)
    bridge = start_bridge(procs, both_localhost, port, backend)
    assert wait_until(lambda: serves(pubs[0]) and serves(pubs[1]), 15), procs.log(bridge)
    log = procs.log(bridge)
    assert "portal localhost:%d: 2 addresses (127.0.0.1, ::1)" % port in log, log

    portal[0].kill()  # SIGKILL: the IPv4 portal is gone, the IPv6 one serves on
    portal[0].wait(timeout=5)
    assert serves(pubs[1], 10), procs.log(bridge)
    portal[0] = procs.start_argv("portal0-again", portal_argv(listens[0], pubs[0]))
    assert wait_until(lambda: serves(pubs[0]), 15), procs.log(bridge)
    assert serves(pubs[1], 3)
    assert bridge.poll() is None


def test_tls_checks_the_name_at_each_address(procs, backend, both_localhost):
    """The portals' certificate names localhost and 127.0.0.1, not ::1: the leg to ::1 is up
    only if the bridge sends and checks the name, not the address it dials."""
    port, pubs = same_port_both(), [free_port(), free_port()]
    cert = ["--tls", "--cert", os.path.join(TLS_DIR, "server.crt"),
            "--key", os.path.join(TLS_DIR, "server.key")]
    for i, listen in enumerate(["127.0.0.1:%d" % port, "[::1]:%d" % port]):
        procs.start_argv("portal%d" % i, portal_argv(listen, pubs[i], cert))
    assert wait_until(lambda: port_open(port) and port_open(port, "::1"), 10)
    bridge = start_bridge(procs, both_localhost, port, backend,
                          ["--tls", "--ca", os.path.join(TLS_DIR, "ca.crt")])
    assert wait_until(lambda: serves(pubs[0]) and serves(pubs[1]), 15), procs.log(bridge)
    assert "certificate verify failed" not in procs.log(bridge)


class Recorder:
    """A TCP relay on [::1]:port to 127.0.0.1:to that keeps the first bytes each connection
    sends (a ws upgrade request)."""

    def __init__(self, port, to):
        self.to, self.heads = to, []
        self.srv = socket.socket(socket.AF_INET6)
        self.srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.srv.bind(("::1", port))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            c.settimeout(None)
            u = socket.create_connection(("127.0.0.1", self.to), timeout=5)
            u.settimeout(None)
            for a, b, first in ((c, u, self.heads.append), (u, c, None)):
                threading.Thread(target=relay, args=(a, b, first), daemon=True).start()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.srv.close()


def test_ws_host_is_the_name_at_each_address(procs, backend, both_localhost):
    """Over ws the bridge sends Host: localhost:P to ::1 too (seen by a relay in front of the
    IPv6 portal)."""
    port, inner, pubs = same_port_both(), free_port(), [free_port(), free_port()]
    ws = ["--transport", "ws", "--path", "/t"]
    for i, listen in enumerate(["127.0.0.1:%d" % port, "127.0.0.1:%d" % inner]):
        procs.start_argv("portal%d" % i, portal_argv(listen, pubs[i], ws))
    assert wait_until(lambda: port_open(port) and port_open(inner), 10)
    rec = Recorder(port, inner)
    try:
        bridge = start_bridge(procs, both_localhost, port, backend, ws)
        assert wait_until(lambda: serves(pubs[0]) and serves(pubs[1]), 15), procs.log(bridge)
        heads = b"".join(rec.heads)
        assert b"GET /t HTTP/1.1\r\n" in heads, heads
        assert b"\r\nHost: localhost:%d\r\n" % port in heads, heads
        assert b"Host: [::1]" not in heads, heads
    finally:
        rec.close()


def test_a_name_that_does_not_resolve(procs, backend):
    bridge = procs.start_argv("bridge", [
        "vrev", "bridge", "--portal", "no-such-portal.invalid:%d" % free_port(), "--to",
        "web=127.0.0.1:%d" % backend, "--id", UUID])
    line = "portal no-such-portal.invalid:"
    assert wait_until(lambda: line in procs.log(bridge) and "does not resolve" in
                      procs.log(bridge), 30), procs.log(bridge)
    time.sleep(2)  # retried meanwhile (backoff), the bridge goes on
    assert bridge.poll() is None, procs.log(bridge)
    log = procs.log(bridge)
    assert log.count("does not resolve") == 1, log  # logged once, not per retry
    # the tunnel's dials (by name meanwhile) fail as often as they are retried: said once too
    assert log.count("no tunnel to the portal (host name resolution failed)") == 1, log
    assert log.count("host name resolution failed") == 2, log  # these two lines only
