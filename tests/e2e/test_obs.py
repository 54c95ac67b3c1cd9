"""Metrics and logs of real vrev processes: /metrics counts a known load, /ready follows the
tunnel, access lines have the shape V2Ray 4.34 writes for the same connections, SIGUSR1 reopens
the log files, --log-format json writes one JSON object a line, and no secret is logged."""
import hashlib
import http.client
import json
import os
import re
import signal
import socket

from harness import (DOMAIN, UUID, bridge_config, free_port, http_get, http_post, pattern,
                     port_open, portal_config, wait_until)


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def status(port, path="/ready"):
    try:
        return get(port, path)[0]
    except OSError:
        return None


SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\d+)$')


def metrics(port):
    """{(name, labels text): value} from /metrics."""
    code, text = get(port, "/metrics")
    assert code == 200
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        out[(m.group(1), m.group(2) or "")] = int(m.group(3))
    return out


def portal_argv(tun, pub, *extra):
    return ["vrev", "portal", "--listen", "127.0.0.1:%d" % tun,
            "--public", "127.0.0.1:%d=web" % pub, "--id", UUID] + list(extra)


def bridge_argv(tun, backend, *extra):
    return ["vrev", "bridge", "--portal", "127.0.0.1:%d" % tun,
            "--to", "web=127.0.0.1:%d" % backend, "--id", UUID] + list(extra)


def post_ok(pub, payload):
    return http_post(pub, payload).decode() == hashlib.sha256(payload).hexdigest()


def test_metrics_count_a_known_load(procs, backend):
    tun, pub, pm, bm = free_port(), free_port(), free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub, "--metrics", "127.0.0.1:%d" % pm))
    assert wait_until(lambda: port_open(pm)), procs.log(portal)
    assert status(pm) == 503  # no bridge yet: nothing can be carried
    assert status(pm, "/nothing") == 404
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend, "--metrics",
                                                    "127.0.0.1:%d" % bm))
    assert wait_until(lambda: status(pm) == 200 and status(bm) == 200), procs.log(bridge)
    n, size = 6, 300 * 1024
    payload = pattern(size)
    for _ in range(n):
        assert post_ok(pub, payload)
    p = "role=\"portal\",tag=\"portal\""
    assert wait_until(lambda: metrics(pm)[("vrev_sessions", p)] == 0)
    m = metrics(pm)
    assert m[("vrev_sessions_total", p)] == n
    assert m[("vrev_bytes_total", p + ",direction=\"up\"")] >= n * size
    assert m[("vrev_bytes_total", p + ",direction=\"down\"")] >= n * 64  # the digests
    assert m[("vrev_tunnels", p)] == 1
    assert m[("vrev_links_total", "inbound=\"public\",outbound=\"portal\"")] == n
    assert m[("vrev_sessions_refused_total", p + ",reason=\"no_tunnel\"")] == 0
    assert m[("vrev_ready", "")] == 1
    b = "role=\"bridge\",tag=\"bridge\""
    mb = metrics(bm)
    assert mb[("vrev_sessions_total", b)] == n
    assert mb[("vrev_bytes_total", b + ",direction=\"up\"")] >= n * size
    assert mb[("vrev_tunnels", b)] == 1
    procs.stop(bridge)
    assert wait_until(lambda: status(pm) == 503), procs.log(portal)
    m = metrics(pm)
    assert m[("vrev_tunnels", p)] == 0 and m[("vrev_ready", "")] == 0
    assert m[("vrev_sessions_total", p)] == n  # counters keep counting from creation


def forward_config(port, backend, access):
    return {
        "log": {"access": str(access), "loglevel": "warning"},
        "inbounds": [{"tag": "in-tag", "listen": "127.0.0.1", "port": port,
                      "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": backend, "network": "tcp"}}],
        "outbounds": [{"tag": "out-tag", "protocol": "freedom", "settings": {}}],
    }


STAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")


def shape(line):
    """A line with its time stamp and the client's port taken out."""
    assert STAMP.match(line), line
    return re.sub(r"^127\.0\.0\.1:\d+ ", "127.0.0.1:PORT ", STAMP.sub("", line))


def test_access_lines_as_v2ray_writes_them(procs, backend, tmp_path):
    n = 3
    files = {}
    for kind in ("vrev", "v2ray"):
        port = free_port()
        files[kind] = tmp_path / ("%s-access.log" % kind)
        p = procs.start(kind, kind, forward_config(port, backend, files[kind]))
        assert wait_until(lambda: port_open(port)), procs.log(p)
        # port_open's probe is a connection too: its line first
        assert wait_until(lambda: files[kind].exists() and files[kind].read_text()), procs.log(p)
        probes = len(files[kind].read_text().splitlines())
        for _ in range(n):
            assert http_get(port)[1] == b"hello from the backend\n"
        assert wait_until(lambda: len(files[kind].read_text().splitlines()) >= probes + n)
        files[kind] = files[kind].read_text().splitlines()
        assert len(files[kind]) == probes + n, files[kind]  # one line per connection
    want = "127.0.0.1:PORT accepted tcp:127.0.0.1:%d [out-tag]" % backend
    for kind in ("v2ray", "vrev"):
        assert [shape(x) for x in files[kind]] == [want] * len(files[kind]), files[kind]


def test_sigusr1_reopens_log_files(procs, backend, tmp_path):
    tun, pub = free_port(), free_port()
    acc, err = tmp_path / "access.log", tmp_path / "error.log"
    portal = procs.start_argv("portal", portal_argv(tun, pub, "--access-log", str(acc),
                                                    "--error-log", str(err)))
    assert wait_until(lambda: port_open(tun)), procs.log(portal)
    procs.start_argv("bridge", bridge_argv(tun, backend))
    assert wait_until(lambda: "tunnel up" in err.read_text()), procs.log(portal)
    for _ in range(2):
        assert http_get(pub)[1] == b"hello from the backend\n"
    before = acc.read_text().splitlines()
    # the tunnel (the bridge's VMess connection) and one line per session
    assert len(before) == 3 and all(" accepted tcp:web:0 [portal]" in x for x in before[1:])
    assert "accepted tcp:%s:0 [portal]" % DOMAIN not in before[0]  # the CLI's default domain
    os.rename(acc, str(acc) + ".1")
    os.rename(err, str(err) + ".1")
    portal.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: err.exists() and "reopened" in err.read_text()), procs.log(portal)
    assert http_get(pub)[1] == b"hello from the backend\n"
    assert wait_until(lambda: acc.exists() and acc.read_text().count("\n") == 1)
    assert " accepted tcp:web:0 [portal]" in acc.read_text()
    assert (tmp_path / "access.log.1").read_text().splitlines() == before
    for f in (acc, err, tmp_path / "access.log.1", tmp_path / "error.log.1"):
        assert UUID not in f.read_text()


def test_json_logs(procs, backend, tmp_path):
    tun, pub = free_port(), free_port()
    acc, err = tmp_path / "access.json", tmp_path / "error.json"
    portal = procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: port_open(tun)), procs.log(portal)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend, "--log-format", "json",
                                                    "--access-log", str(acc),
                                                    "--error-log", str(err)))
    assert wait_until(lambda: err.exists() and "tunnel up" in err.read_text()), procs.log(bridge)
    for _ in range(2):
        assert http_get(pub)[1] == b"hello from the backend\n"
    assert wait_until(lambda: acc.read_text().count("\"to\":\"tcp:web:0\"") == 2)
    for line in err.read_text().splitlines():
        rec = json.loads(line)
        assert set(rec) == {"time", "level", "component", "message"}, rec
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rec["time"])
    sessions = [json.loads(x) for x in acc.read_text().splitlines()
                if "tcp:web:0" in x]
    for rec in sessions:
        assert rec["component"] == "access" and rec["level"] == "info"
        assert rec["status"] == "accepted" and rec["inbound"] == "bridge"
        # the public client's address, which a vrev portal sends with each session
        assert rec["to"] == "tcp:web:0" and rec["from"].startswith("127.0.0.1:")
        assert rec["reason"] == ""
        assert rec["message"] == "%s accepted tcp:web:0 [%s]" % (rec["from"], rec["outbound"])
    assert UUID not in acc.read_text() + err.read_text()


def test_run_serves_the_configured_endpoint(procs, backend):
    ext, tun, pm, bm = free_port(), free_port(), free_port(), free_port()
    pc = portal_config(ext, tun)
    pc["vrev"] = {"metrics": "127.0.0.1:%d" % pm}
    pc["log"]["error"] = str(procs.tmp / "portal-error.log")  # "loglevel": "info" as well
    portal = procs.start("vrev", "portal", pc)
    assert wait_until(lambda: port_open(pm)), procs.log(portal)
    assert status(pm) == 503
    bc = bridge_config(tun, backend)
    bc["inbounds"] = []
    bc["vrev"] = {"metrics": "127.0.0.1:1"}  # the command line's --metrics wins
    (procs.tmp / "bridge.json").write_text(json.dumps(bc))
    bridge = procs.start_argv("bridge", ["vrev", "run", "-c", str(procs.tmp / "bridge.json"),
                                         "--metrics", "127.0.0.1:%d" % bm])
    assert wait_until(lambda: status(pm) == 200 and status(bm) == 200), procs.log(bridge)
    assert http_get(ext)[1] == b"hello from the backend\n"
    m = metrics(pm)
    assert m[("vrev_links_total", "inbound=\"external\",outbound=\"portal\"")] == 1
    assert m[("vrev_reloads_total", "result=\"ok\"")] == 0
    assert m[("vrev_tunnels", "role=\"portal\",tag=\"portal\"")] == 1
    mb = metrics(bm)
    assert mb[("vrev_links_total", "inbound=\"bridge\",outbound=\"out\"")] == 1
    # "log" without "access": V2Ray writes the access log to standard output
    assert wait_until(lambda: "accepted tcp:127.0.0.1:80 [portal]" in procs.log(portal))
    # "error": the log goes to that file, at the "loglevel" asked for
    assert re.search(r"\[info\] portal: c\d+ \[portal\] tunnel up",
                     (procs.tmp / "portal-error.log").read_text())
    assert UUID not in procs.log(portal) + procs.log(bridge)
    # a reload that names another endpoint and another error log: both follow it
    pm2 = free_port()
    pc["vrev"] = {"metrics": "127.0.0.1:%d" % pm2}
    pc["log"]["error"] = str(procs.tmp / "portal-error-2.log")
    (procs.tmp / "portal.json").write_text(json.dumps(pc))
    portal.send_signal(signal.SIGHUP)
    assert wait_until(lambda: port_open(pm2)), procs.log(portal)
    assert wait_until(lambda: not port_open(pm))
    assert metrics(pm2)[("vrev_reloads_total", "result=\"ok\"")] == 1
    assert status(pm2) == 200  # the tunnel stayed
    assert "reloaded" in (procs.tmp / "portal-error.log").read_text()  # said before the switch
    assert "the log goes on here" in (procs.tmp / "portal-error-2.log").read_text()


def test_endpoint_refuses_other_requests_and_keeps_serving(procs):
    tun, pub, pm = free_port(), free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub, "--metrics", "127.0.0.1:%d" % pm))
    assert wait_until(lambda: port_open(pm)), procs.log(portal)
    c = http.client.HTTPConnection("127.0.0.1", pm, timeout=5)
    c.request("POST", "/metrics", body=b"x" * 100)
    assert c.getresponse().status in (413, 501)  # no body taken, and GET or HEAD only
    c.close()
    # a request cut short, and a connection that says nothing: closed after the idle time
    idle = [socket.create_connection(("127.0.0.1", pm)) for _ in range(2)]
    idle[0].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    assert status(pm) == 503 and status(pm, "/metrics") == 200  # served meanwhile
    for s in idle:
        s.settimeout(8)  # closed after 5 s (an error answer first, or nothing)
        while s.recv(1000):
            pass
        s.close()
    assert status(pm, "/metrics") == 200


def test_limit_drops_are_counted(procs):
    # connsPerSource 1: a second connection from 127.0.0.1 to the public listener is refused
    # at accept while the first waits for a tunnel (there is no bridge)
    tun, pub, pm = free_port(), free_port(), free_port()
    portal = procs.start_argv("portal", portal_argv(tun, pub, "--metrics", "127.0.0.1:%d" % pm,
                                                    "--limit", "connsPerSource=1"))
    assert wait_until(lambda: port_open(pm)), procs.log(portal)
    key = ("vrev_limit_drops_total", "limit=\"connsPerSource\",inbound=\"public\"")
    other = ("vrev_limit_drops_total", "limit=\"connsPerListener\",inbound=\"public\"")
    assert metrics(pm)[key] == 0
    with socket.create_connection(("127.0.0.1", pub)) as held:
        held.sendall(b"GET / HTTP/1.1\r\n\r\n")
        with socket.create_connection(("127.0.0.1", pub)) as refused:
            refused.settimeout(5)
            try:
                assert refused.recv(10) == b""
            except ConnectionResetError:
                pass  # closed at accept, with a reset
        assert wait_until(lambda: metrics(pm)[key] == 1)
        assert metrics(pm)[other] == 0  # counted under the cap that refused it


def test_bridge_access_log_has_the_tunnel(procs, backend, tmp_path):
    """The bridge's tunnel is routed as a link (issue M10: its mux runs on the stream the
    outbound dialed, with no relay): its access line comes first, then one per session."""
    tun, pub = free_port(), free_port()
    acc = tmp_path / "bridge-access.log"
    portal = procs.start_argv("portal", portal_argv(tun, pub))
    assert wait_until(lambda: port_open(tun)), procs.log(portal)
    bridge = procs.start_argv("bridge", bridge_argv(tun, backend, "--access-log", str(acc)))
    for _ in range(2):
        assert wait_until(lambda: http_get(pub)[1] == b"hello from the backend\n"), \
            procs.log(bridge)
    assert wait_until(lambda: acc.exists() and acc.read_text().count("\n") == 3), \
        procs.log(bridge)
    lines = acc.read_text().splitlines()
    # the tunnel API's default domain (VREV_TUNNEL_DEFAULT_DOMAIN), to its VMess outbound
    assert lines[0].endswith(" accepted tcp:tunnel.vrev.internal:0 [interconn]"), lines
    assert all(x.endswith(" accepted tcp:web:0 [target-0]") for x in lines[1:]), lines
