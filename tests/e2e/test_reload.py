"""Hot reload (SIGHUP, vrev reload): a portal and bridges as `vrev run -c` processes.

What a reload must not disturb (a download through the tunnel, a stream of new connections,
the tunnels themselves), what it must apply (a new public port, a removed user), and what it
must refuse (a bad file: named by file and line, the old configuration keeps serving).
"""
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import (DOMAIN, UUID, backend, bridge_config, free_port, http_get,  # noqa: F401
                     pattern, portal_config, procs, time_limit, wait_until)

UUID2 = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
DOWNLOAD = 64 << 20


def portal_cfg(ext, tunnel, users=(UUID, UUID2), extra_rule=False, ext2=None):
    cfg = portal_config(ext, tunnel, [{"id": u, "alterId": 0} for u in users])
    if extra_rule:  # harmless changes: a rule that matches nothing the test sends, an extra
        # inbound, and the two busy inbounds written differently (handed over to new ones)
        del cfg["inbounds"][0]["settings"]["network"]  # tcp, the default
        cfg["inbounds"][1]["settings"]["clients"][0]["email"] = "one@example.com"
        cfg["routing"]["rules"].insert(0, {"type": "field", "domain": ["full:nothing.invalid"],
                                           "outboundTag": "block"})
        cfg["inbounds"].append({"tag": "spare", "listen": "127.0.0.1", "port": 0,
                                "protocol": "dokodemo-door",
                                "settings": {"address": "127.0.0.1", "port": 9,
                                             "network": "tcp"}})
    if ext2:
        cfg["inbounds"].append({"tag": "external2", "listen": "127.0.0.1", "port": ext2,
                                "protocol": "dokodemo-door",
                                "settings": {"address": "127.0.0.1", "port": 80,
                                             "network": "tcp"}})
        cfg["routing"]["rules"].append({"type": "field", "inboundTag": ["external2"],
                                        "outboundTag": "portal"})
    return cfg


def bridge_cfg(tunnel, backend_port, user):
    cfg = bridge_config(tunnel, backend_port)
    cfg["outbounds"][1]["settings"]["vnext"][0]["users"][0]["id"] = user
    return cfg


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def reloads(procs, p):
    return procs.log(p).count("reloaded ")


def write(path, cfg):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=1)
    os.replace(tmp, path)  # a reader never sees half a file


class Download(threading.Thread):
    """GET /bytes/N through the portal, read at a bounded rate so that it spans the reloads."""

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port, self.n, self.got, self.digest, self.error = port, n, 0, None, None

    def run(self):
        try:
            h = hashlib.sha256()
            with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
                s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % self.n)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    assert chunk, "closed before the headers"
                    head += chunk
                body = head.partition(b"\r\n\r\n")[2]
                h.update(body)
                self.got = len(body)
                while self.got < self.n:
                    chunk = s.recv(min(1 << 18, self.n - self.got))
                    assert chunk, "closed after %d bytes" % self.got
                    h.update(chunk)
                    self.got += len(chunk)
                    time.sleep(0.008)  # about 30 MiB/s at most: a few seconds in all
            self.digest = h.hexdigest()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = repr(e)


class Stream(threading.Thread):
    """New connections one after another, each a full request; failures counted."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.failed, self.stop = port, 0, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                head, body = http_get(self.port, timeout=10)
                if body == b"hello from the backend\n":
                    self.ok += 1
                else:
                    self.failed.append(head[:40])
                time.sleep(0.02)  # fewer than the 256 sessions that drain a tunnel
            except OSError as e:
                self.failed.append(repr(e))


def start_pair(procs, tmp_path, backend, users=(UUID, UUID2)):
    ext, tunnel = free_port(), free_port()
    cfg_path = tmp_path / "portal.json"
    write(cfg_path, portal_cfg(ext, tunnel, users))
    pid_file = tmp_path / "portal.pid"
    portal = procs.start_argv("portal", ["vrev", "run", "-c", str(cfg_path), "--log-level",
                                         "info", "--pid-file", str(pid_file)])
    assert wait_until(lambda: pid_file.exists())
    assert int(pid_file.read_text()) == portal.pid
    bridge = procs.start("vrev", "bridge", bridge_cfg(tunnel, backend, UUID))
    assert wait_until(lambda: "tunnel up" in procs.log(bridge)), procs.log(bridge)
    assert http_get(ext)[1] == b"hello from the backend\n"
    return ext, tunnel, cfg_path, pid_file, portal, bridge


@pytest.mark.limit(90)
def test_twenty_reloads_keep_a_download_and_new_connections(procs, tmp_path, backend):
    ext, tunnel, cfg_path, pid_file, portal, bridge = start_pair(procs, tmp_path, backend)
    time.sleep(0.3)
    fds_before = fds(portal.pid)
    dl = Download(ext, DOWNLOAD)
    stream = Stream(ext)
    dl.start()
    stream.start()
    assert wait_until(lambda: dl.got > 0, 10)
    got_at_first = dl.got
    for i in range(20):
        write(cfg_path, portal_cfg(ext, tunnel, extra_rule=(i % 2 == 0)))
        if i % 2:
            subprocess.run([procs.vrev_bin, "reload", "--pid-file", str(pid_file)], check=True)
        else:
            os.kill(portal.pid, signal.SIGHUP)
        assert wait_until(lambda: reloads(procs, portal) == i + 1, 5), procs.log(portal)[-2000:]
        time.sleep(0.05)
    stream.stop.set()
    stream.join(20)
    dl.join(30)
    log = procs.log(portal)
    assert got_at_first < DOWNLOAD, "the download ended before the first reload"
    assert dl.error is None, dl.error
    assert dl.digest == hashlib.sha256(pattern(DOWNLOAD)).hexdigest()
    assert stream.failed == [], stream.failed
    assert stream.ok >= 20, stream.ok
    assert "reload of" not in log, log[-2000:]  # no failed reload
    assert log.count("2 on their old listener") == 20, log[-2000:]
    # the tunnel itself survived: never closed, never replaced
    assert "tunnel closed" not in log and log.count("tunnel up") == 1, log
    assert procs.log(bridge).count("tunnel up") == 1, procs.log(bridge)
    # the spare inbound came and went ten times, the handed-over listeners stayed open: no
    # descriptor is left behind (the retired inbounds are freed within a second or two)
    assert wait_until(lambda: fds(portal.pid) <= fds_before, 5), (fds_before, fds(portal.pid))


@pytest.mark.limit(60)
def test_reload_adds_a_public_port_and_removes_a_user(procs, tmp_path, backend):
    ext, tunnel, cfg_path, pid_file, portal, bridge = start_pair(procs, tmp_path, backend)
    bridge2 = procs.start("vrev", "bridge2", bridge_cfg(tunnel, backend, UUID2))
    assert wait_until(lambda: "tunnel up" in procs.log(bridge2)), procs.log(bridge2)
    # a new public port
    ext2 = free_port()
    write(cfg_path, portal_cfg(ext, tunnel, ext2=ext2))
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: reloads(procs, portal) == 1, 5), procs.log(portal)
    assert http_get(ext2)[1] == b"hello from the backend\n"
    assert http_get(ext)[1] == b"hello from the backend\n"
    # UUID2 removed: its live tunnel stays, its next handshake is refused
    write(cfg_path, portal_cfg(ext, tunnel, users=(UUID,), ext2=ext2))
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: reloads(procs, portal) == 2, 5), procs.log(portal)
    time.sleep(0.5)
    assert "tunnel closed" not in procs.log(portal)  # bridge2's live tunnel stays
    assert procs.log(portal).count("tunnel up") == 2
    procs.stop(bridge2)
    assert wait_until(lambda: "tunnel closed" in procs.log(portal), 5)
    bridge3 = procs.start("vrev", "bridge3", bridge_cfg(tunnel, backend, UUID2))
    time.sleep(2.5)
    assert "tunnel up" not in procs.log(bridge3), procs.log(bridge3)
    assert "refused" in procs.log(portal) or "failed" in procs.log(portal), procs.log(portal)
    # the other bridge's tunnel stayed up throughout (bridge2's alone closed), and serves both
    assert procs.log(portal).count("tunnel closed") == 1, procs.log(portal)
    assert procs.log(bridge).count("tunnel up") == 1
    for port in (ext, ext2):
        assert http_get(port)[1] == b"hello from the backend\n"
    # and a user put back is let in again
    write(cfg_path, portal_cfg(ext, tunnel, ext2=ext2))
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: "tunnel up" in procs.log(bridge3), 10), procs.log(bridge3)


@pytest.mark.limit(60)
def test_bad_config_is_reported_and_the_old_one_keeps_serving(procs, tmp_path, backend):
    ext, tunnel, cfg_path, pid_file, portal, bridge = start_pair(procs, tmp_path, backend)
    good = json.dumps(portal_cfg(ext, tunnel), indent=1)
    # a syntax error on line 3
    lines = good.split("\n")
    lines[2] += " ,,"
    cfg_path.write_text("\n".join(lines))
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: "reload of" in procs.log(portal), 5)
    assert "%s:3:" % cfg_path in procs.log(portal), procs.log(portal)[-1500:]
    assert http_get(ext)[1] == b"hello from the backend\n"
    # an unknown key where unknown keys are errors: named with its line and path
    bad = portal_cfg(ext, tunnel)
    bad["vrev"] = {"bogus": 1}
    write(cfg_path, bad)
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: procs.log(portal).count("reload of") == 2, 5)
    last = [l for l in procs.log(portal).splitlines() if "reload of" in l][-1]
    assert str(cfg_path) in last and "vrev.bogus" in last, last
    # something a reload cannot change: refused, named
    bad = portal_cfg(ext, tunnel)
    bad["policy"] = {"levels": {"0": {"handshake": 7}}}
    write(cfg_path, bad)
    subprocess.run([procs.vrev_bin, "reload", str(portal.pid)], check=True)
    assert wait_until(lambda: procs.log(portal).count("reload of") == 3, 5)
    last = [l for l in procs.log(portal).splitlines() if "reload of" in l][-1]
    assert "policy" in last and "restart" in last, last
    # a port another process holds: the whole reload is refused, nothing half-applied
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    ext2 = free_port()
    write(cfg_path, portal_cfg(ext, tunnel, ext2=ext2, extra_rule=True))
    cfg = portal_cfg(ext, tunnel, ext2=ext2)
    cfg["inbounds"].append({"tag": "busy", "listen": "127.0.0.1", "port": busy,
                            "protocol": "dokodemo-door",
                            "settings": {"address": "127.0.0.1", "port": 80}})
    write(cfg_path, cfg)
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: procs.log(portal).count("reload of") == 4, 5)
    holder.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ext2), timeout=1).close()
    assert http_get(ext)[1] == b"hello from the backend\n"
    assert portal.poll() is None and reloads(procs, portal) == 0
    assert subprocess.run([procs.vrev_bin, "reload", "--pid-file",
                           str(tmp_path / "nope.pid")]).returncode == 1
    assert subprocess.run([procs.vrev_bin, "reload", "1"]).returncode == 2  # never init
    assert subprocess.run([procs.vrev_bin, "reload"]).returncode == 2
    procs.stop(portal)
    assert not pid_file.exists(), "the pid file is removed at exit"


def write_conf(path, lines):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write("# written by test_reload\n" + "\n".join(lines) + "\n")
    os.replace(tmp, path)


@pytest.mark.limit(90)
def test_cli_config_file_reloads(procs, tmp_path, backend):
    ext, ext2, tunnel = free_port(), free_port(), free_port()
    pconf, bconf = tmp_path / "portal.conf", tmp_path / "bridge.conf"

    def portal_lines(extra=False, user=UUID):
        lines = ["listen 127.0.0.1:%d   # the tunnel" % tunnel, "public 127.0.0.1:%d=web" % ext,
                 "id " + user]
        return lines + (["public 127.0.0.1:%d=web" % ext2] if extra else [])

    def bridge_lines(extra=False, user=UUID):
        lines = ["portal 127.0.0.1:%d" % tunnel, "to web=127.0.0.1:%d" % backend, "id " + user]
        return lines + (["to other=127.0.0.1:9"] if extra else [])

    write_conf(pconf, portal_lines())
    write_conf(bconf, bridge_lines())
    pid_file = tmp_path / "portal.pid"
    portal = procs.start_argv("portal", ["vrev", "portal", "--config-file", str(pconf),
                                         "--pid-file", str(pid_file)])
    bridge = procs.start_argv("bridge", ["vrev", "bridge", "--log-level", "info",
                                         "--config-file", str(bconf)])
    assert wait_until(lambda: "tunnel up" in procs.log(bridge)), procs.log(bridge)
    assert http_get(ext)[1] == b"hello from the backend\n"
    time.sleep(0.3)
    fds_before = fds(portal.pid), fds(bridge.pid)
    dl, stream = Download(ext, DOWNLOAD), Stream(ext)
    dl.start()
    stream.start()
    assert wait_until(lambda: dl.got > 0, 10)
    for i in range(20):
        write_conf(pconf, portal_lines(extra=i % 2 == 0))
        subprocess.run([procs.vrev_bin, "reload", "--pid-file", str(pid_file)], check=True)
        if i % 4 == 0:
            write_conf(bconf, bridge_lines(extra=i % 8 == 0))
            os.kill(bridge.pid, signal.SIGHUP)
        assert wait_until(lambda: procs.log(portal).count("reloaded") == i + 1, 5), \
            procs.log(portal)[-2000:]
        time.sleep(0.05)
    stream.stop.set()
    stream.join(20)
    dl.join(30)
    assert dl.error is None, dl.error
    assert dl.digest == hashlib.sha256(pattern(DOWNLOAD)).hexdigest()
    assert stream.failed == [] and stream.ok >= 20, (stream.failed, stream.ok)
    assert procs.log(bridge).count("reloaded") == 5, procs.log(bridge)
    assert "tunnel closed" not in procs.log(portal), procs.log(portal)
    assert procs.log(bridge).count("tunnel up") == 1, procs.log(bridge)
    assert wait_until(lambda: fds(portal.pid) <= fds_before[0] and fds(bridge.pid) <= fds_before[1],
                      5), (fds_before, fds(portal.pid), fds(bridge.pid))
    # the added public port served while it was there; now (i = 19: without it) it is closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ext2), timeout=1).close()
    # a bad line: named by file and line, nothing changes
    write_conf(pconf, portal_lines(extra=True) + ["bogus 1"])
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: "failed" in procs.log(portal), 5)
    assert "%s:6: unknown option '--bogus'" % pconf in procs.log(portal), procs.log(portal)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ext2), timeout=1).close()
    assert http_get(ext)[1] == b"hello from the backend\n"
    # a new id on both sides: the portal's tunnel listener is renewed (the live tunnel stays),
    # then the bridge dials new tunnels with it and lets the old one go
    write_conf(pconf, portal_lines(user=UUID2))
    os.kill(portal.pid, signal.SIGHUP)
    assert wait_until(lambda: "tunnel listener renewed" in procs.log(portal), 5)
    assert http_get(ext)[1] == b"hello from the backend\n"
    write_conf(bconf, bridge_lines(user=UUID2))
    os.kill(bridge.pid, signal.SIGHUP)
    assert wait_until(lambda: "tunnels renewed" in procs.log(bridge), 5), procs.log(bridge)
    assert wait_until(lambda: procs.log(bridge).count("tunnel up") == 2, 5), procs.log(bridge)
    assert wait_until(lambda: "old settings carries no session: closing it" in procs.log(bridge),
                      5), procs.log(bridge)
    assert wait_until(lambda: procs.log(portal).count("tunnel closed") == 1, 5), procs.log(portal)
    assert http_get(ext)[1] == b"hello from the backend\n"
    assert procs.stop(portal) == 0 and not pid_file.exists()
