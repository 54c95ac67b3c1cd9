"""Two vrev portals behind Debian's HAProxy (TCP mode, PROXY v2, health checks on each portal's
/ready), one vrev bridge dialing both (--portal A --portal B), a local HTTP service. Under a
stream of requests one portal is killed (-9): HAProxy takes it out and the requests go on
through the other, only those in flight at the kill may fail; the portal comes back on the same
ports: the bridge redials it, HAProxy takes it back and it serves again."""
import os
import socket
import threading
import time

from harness import UUID, free_port, http_get, port_open, wait_until
from test_cli_tunnel import bridge_argv as tunnel_bridge_argv
from test_cli_tunnel import portal_argv as tunnel_portal_argv
from test_cli_tunnel import printed, works
from test_proxy_protocol import need
from test_obs import metrics, status

# The README's deployment ("Several portals") shows this configuration.
HAPROXY_CONF = """global
    maxconn 512
    stats socket {sock} level operator
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch 1
frontend public
    bind 127.0.0.1:{front}
    default_backend portals
backend portals
    balance roundrobin
    option httpchk GET /ready
    default-server inter 300ms fall 2 rise 2 send-proxy-v2
    server a 127.0.0.1:{pub_a} check port {met_a}
    server b 127.0.0.1:{pub_b} check port {met_b}
frontend tunnel-a
    bind 127.0.0.1:{tf_a}
    default_backend tunnel-a
backend tunnel-a
    server a 127.0.0.1:{tun_a} send-proxy-v2
frontend tunnel-b
    bind 127.0.0.1:{tf_b}
    default_backend tunnel-b
backend tunnel-b
    server b 127.0.0.1:{tun_b} send-proxy-v2
"""

WORKERS = 4  # requests in flight at any time: at most this many can be cut by a kill


def hap_status(sock, server):
    """The server's status in backend "portals" as HAProxy's stats socket reports it."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(sock)
        s.sendall(b"show stat\n")
        with s.makefile("rb") as f:  # HAProxy closes after one command
            data = f.read()
    for line in data.decode().splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "portals" and f[1] == server:
            return f[17]  # "status": UP, DOWN, "UP 1/2"...
    return None


def portal_argv(p, name):
    return ["vrev", "portal", "--listen", "127.0.0.1:%d" % p["tun"], "--public",
            "127.0.0.1:%d=web" % p["pub"], "--id", UUID, "--accept-proxy-protocol",
            "--metrics", "127.0.0.1:%d" % p["met"]]


def sessions(p):
    try:
        return metrics(p["met"])[("vrev_sessions_total", 'role="portal",tag="portal"')]
    except OSError:
        return None


class Load:
    """WORKERS threads sending GETs through HAProxy one after another, each result noted with
    the time its request started."""

    def __init__(self, port):
        self.port, self.stop, self.results = port, threading.Event(), []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(WORKERS)]

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                head, body = http_get(self.port, timeout=5)
                ok = head.startswith(b"HTTP/1.1 200") and body == b"hello from the backend\n"
            except OSError:
                ok = False
            with self.lock:
                self.results.append((t0, ok))

    def count(self, since=0.0):
        with self.lock:
            return sum(1 for t, ok in self.results if ok and t >= since)


def test_two_portals_behind_haproxy(procs, backend, tmp_path):
    need("haproxy")
    ps = {k: {"tun": free_port(), "pub": free_port(), "met": free_port(), "tf": free_port()}
          for k in "ab"}
    front, sock = free_port(), str(tmp_path / "haproxy.sock")
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(
        sock=sock, front=front, pub_a=ps["a"]["pub"], met_a=ps["a"]["met"], pub_b=ps["b"]["pub"],
        met_b=ps["b"]["met"], tf_a=ps["a"]["tf"], tun_a=ps["a"]["tun"], tf_b=ps["b"]["tf"],
        tun_b=ps["b"]["tun"]))
    portal = {k: procs.start_argv("portal-" + k, portal_argv(ps[k], k)) for k in "ab"}
    hap = procs.start_argv("haproxy", [need("haproxy"), "-db", "-f", str(conf)])
    assert wait_until(lambda: port_open(front) and os.path.exists(sock), 10), procs.log(hap)
    bm = free_port()
    bridge = procs.start_argv("bridge", [
        "vrev", "bridge", "--portal", "127.0.0.1:%d" % ps["a"]["tf"], "--portal",
        "127.0.0.1:%d" % ps["b"]["tf"], "--to", "web=127.0.0.1:%d" % backend, "--id", UUID,
        "--metrics", "127.0.0.1:%d" % bm])
    up = lambda k: hap_status(sock, k) == "UP"  # noqa: E731
    assert wait_until(lambda: up("a") and up("b"), 10), procs.log(bridge) + procs.log(hap)
    mb = metrics(bm)  # a tunnel to each portal, each leg its own tag
    assert mb[("vrev_tunnels", 'role="bridge",tag="bridge-0"')] == 1
    assert mb[("vrev_tunnels", 'role="bridge",tag="bridge-1"')] == 1

    load = Load(front)
    for t in load.threads:
        t.start()
    try:
        assert wait_until(lambda: sessions(ps["a"]) and sessions(ps["b"]), 5)  # both serve
        portal["a"].kill()  # SIGKILL: no goodbye to HAProxy or the bridge
        portal["a"].wait(timeout=5)
        t_kill = time.monotonic()  # a is gone: requests started from now on must not fail
        assert wait_until(lambda: hap_status(sock, "a").startswith("DOWN"), 5), procs.log(hap)
        t_down = time.monotonic()
        time.sleep(1.0)
        assert load.count(since=t_down) >= 5  # served through b alone
        portal["a"] = procs.start_argv("portal-a2", portal_argv(ps["a"], "a"))  # same ports
        assert wait_until(lambda: up("a"), 10), procs.log(portal["a"]) + procs.log(hap)
        assert wait_until(lambda: (sessions(ps["a"]) or 0) >= 3, 5)  # it takes traffic again
    finally:
        load.stop.set()
        for t in load.threads:
            t.join(timeout=10)
    failed = [t for t, ok in load.results if not ok]
    assert len(load.results) >= 50
    # only requests in flight at the kill may fail: at most one per worker, all started before
    # a was gone (the others met a refused connect, which HAProxy redispatched to b)
    assert len(failed) <= WORKERS, failed
    assert all(t < t_kill for t in failed), (t_kill, failed)
    assert status(ps["b"]["met"]) == 200 and status(ps["a"]["met"]) == 200
    assert metrics(bm)[("vrev_tunnels", 'role="bridge",tag="bridge-0"')] >= 1


def test_printed_config_dials_every_portal(procs, backend):
    """`vrev bridge --portal A --portal B --print-config`, run by V2Ray 4.34 and by vrev run:
    a tunnel to each portal, each serving the service."""
    tuns, pubs = [free_port(), free_port()], [free_port(), free_port()]
    for i in range(2):
        procs.start_argv("portal%d" % i, tunnel_portal_argv(tuns[i], pubs[i]))
    assert wait_until(lambda: all(port_open(t) for t in tuns), 10)
    argv = tunnel_bridge_argv(tuns[0], backend)
    argv[4:4] = ["--portal", "127.0.0.1:%d" % tuns[1]]
    conf = printed(procs, argv)
    assert [b["tag"] for b in conf["reverse"]["bridges"]] == ["bridge-0", "bridge-1"]
    for kind in ("v2ray", "vrev"):
        b = procs.start(kind, kind + "-bridge", conf)
        assert wait_until(lambda: works(pubs[0]) and works(pubs[1]), 10), procs.log(b)
        procs.stop(b)
