#!/usr/bin/python3
"""vrev and V2Ray 4.34 side by side on 127.0.0.1 (issue M5; DESIGN.md section 8).

Starts a portal + bridge pair per implementation with the same V2Ray JSON configuration
(`vrev run -c` and `v2ray -config`), a backend (iperf3 server, nginx serving a 1 KiB body) behind
the bridge, and measures, alternating the implementations run by run:

  bulk       iperf3 1 and 8 streams, both directions, per tunnel protocol (VMess, VLESS, over
             TCP, TLS, WebSocket and WebSocket + TLS), plus CPU s/GB
  requests   wrk keep-alive -c50 / -c1000 and `Connection: close` -c50, p50/p99, CPU per request
             (over ws and ws + TLS too: the c50 runs)
  footprint  VmRSS idle, with N open tunneled connections, after they close
  startup    bridge start -> first successful request; portal restart -> first request
  micro      the AEAD seal rate of each crypto backend (bench/aead_bench.c), if built
  attack     bridge under attack: the bridge restarted while 8 addresses open 1,000
             connections/s at the portal (garbage, held); the portal's descriptors and RSS
             before, during and after the flood
  kill       (--only kill) kill -9 of portal and bridge in turns during 1 MiB transfers:
             completed, reset, clean but short (must be 0), wrong bytes (must be 0); recovery
             after each restart

`direct` (no tunnel) is the physical reference. Prints a table of medians [min..max] with the
vrev/V2Ray and tunnel/direct ratios, writes bench/results/<date>.json and draws <date>.png
(gnuplot). Python 3 standard library only. Every process is started here, bounded in time and
stopped by its PID; only 127.0.0.1 is used. Normally run through bench/run.sh, which builds both
vrev backends and installs the tools.
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import threading
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UUID = "5783a3e7-e373-51cd-8642-c83782b807c5"
DOMAIN = "tunnel.bench.vrev.test"
CERT = os.path.join(ROOT, "tests", "vectors", "configs", "portal-test.crt")
KEY = os.path.join(ROOT, "tests", "vectors", "configs", "portal-test.key")
TLS_NAME = "portal.vrev.test"
BODY = b"x" * 1024

# Tunnel protocols: (key, label, description).
PROTOS = [
    ("vmess-aes", "vmess aes-128-gcm"),
    ("vmess-chacha", "vmess chacha20-poly1305"),
    ("vless", "vless (plain TCP)"),
    ("vmess-tls", "vmess aes-128-gcm + tls"),
    ("vless-tls", "vless + tls"),
    ("vmess-ws", "vmess aes-128-gcm over ws"),
    ("vmess-ws-tls", "vmess aes-128-gcm over ws + tls"),
]
TLS_PROTOS = ("vmess-tls", "vless-tls", "vmess-ws-tls")
WS_PROTOS = ("vmess-ws", "vmess-ws-tls")
WS_PATH = "/bench-ws"
PROTO_LABEL = dict(PROTOS)
IMPLS = ["direct", "v2ray", "vrev-openssl", "vrev-mbedtls"]
TUNNEL_IMPLS = ["v2ray", "vrev-openssl", "vrev-mbedtls"]

LOG = []


def say(msg):
    line = "[%s] %s" % (time.strftime("%H:%M:%S"), msg)
    LOG.append(line)
    print(line, flush=True)


class Deadline(Exception):
    pass


# ---- processes -------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # If this driver dies, its children get SIGTERM (PR_SET_PDEATHSIG = 1).
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    os.setpgid(0, 0)


class Procs:
    """Every process the benchmark starts; each is stopped by its PID."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.live = []
        self.n = 0

    def start(self, name, argv, cwd=None):
        self.n += 1
        log_path = os.path.join(self.tmp, "%02d-%s.log" % (self.n, name))
        log = open(log_path, "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_child_setup, cwd=cwd or self.tmp)
        log.close()
        p.name, p.log_path = name, log_path
        self.live.append(p)
        return p

    def stop(self, p, timeout=5):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=timeout)
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(self.live):
            self.stop(p)

    @staticmethod
    def log_tail(p, n=15):
        try:
            with open(p.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def run_tool(argv, timeout):
    """Run a client tool (iperf3, wrk) to completion, bounded; returns (rc, stdout, stderr)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, preexec_fn=_child_setup, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return -1, out, (err or "") + "\n(timed out after %.0f s)" % timeout
    return p.returncode, out, err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(cond, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def proc_rss_kib(pid):
    """(VmRSS, VmHWM) in KiB from /proc/PID/status."""
    rss = hwm = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def proc_pss_private_kib(pid):
    """(Pss, Private_Clean + Private_Dirty) in KiB from /proc/PID/smaps_rollup: what the
    process costs once the shared libraries' pages are shared out or left aside."""
    pss = private = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                key = line.split(":")[0]
                if key == "Pss":
                    pss = int(line.split()[1])
                elif key in ("Private_Clean", "Private_Dirty"):
                    private += int(line.split()[1])
    except OSError:
        return None, None
    return pss, private


_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """utime + stime of PID in seconds (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


# ---- HTTP helpers ----------------------------------------------------------------------------

def http_request_ok(port, timeout=1.0):
    """One GET through `port`; True on a complete 200 response with the 1 KiB body."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if response_complete(data):
                    return data.startswith(b"HTTP/1.1 200")
            return False
    except OSError:
        return False


def response_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def first_success(port, deadline_s, every=0.002, attempt_timeout=2.0):
    """Open a new GET attempt every `every` seconds (attempts run concurrently, so a portal that
    holds a connection until a tunnel exists cannot hide the moment it starts working); return
    the monotonic time of the first complete 200 response, or None after deadline_s."""
    sel = selectors.DefaultSelector()
    end = time.monotonic() + deadline_s
    next_at = 0.0
    pending = {}
    try:
        while True:
            now = time.monotonic()
            if now >= end:
                return None
            if now >= next_at and len(pending) < 256:
                next_at = now + every
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    s = None
                if s is not None:
                    pending[s] = [now, b"", False]
                    sel.register(s, selectors.EVENT_WRITE)
            for key, ev in sel.select(timeout=every):
                s = key.fileobj
                st = pending[s]
                try:
                    if ev & selectors.EVENT_WRITE and not st[2]:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, "connect")
                        s.send(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                        st[2] = True
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("eof")
                    st[1] += chunk
                    if response_complete(st[1]):
                        if st[1].startswith(b"HTTP/1.1 200"):
                            return time.monotonic()
                        raise OSError("status")
                except OSError:
                    sel.unregister(s)
                    s.close()
                    del pending[s]
            now = time.monotonic()
            for s in [s for s, st in pending.items() if now - st[0] > attempt_timeout]:
                sel.unregister(s)
                s.close()
                del pending[s]
    finally:
        for s in pending:
            s.close()
        sel.close()


def hold_connections(port, n, timeout=30.0, batch=100):
    """Open n keep-alive connections through `port`, each with one complete GET/200 exchange,
    and keep them open. Returns the list of sockets that completed (the caller closes them)."""
    done = []
    sel = selectors.DefaultSelector()
    end = time.monotonic() + timeout
    try:
        remaining = n
        while remaining > 0 and time.monotonic() < end:
            pending = {}
            for _ in range(min(batch, remaining)):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                pending[s] = [b"", False]
                sel.register(s, selectors.EVENT_WRITE)
            remaining -= len(pending)
            while pending and time.monotonic() < end:
                for key, ev in sel.select(timeout=0.5):
                    s = key.fileobj
                    st = pending[s]
                    try:
                        if not st[1]:
                            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                            if err:
                                raise OSError(err, "connect")
                            s.send(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                            st[1] = True
                            sel.modify(s, selectors.EVENT_READ)
                            continue
                        chunk = s.recv(65536)
                        if not chunk:
                            raise OSError("eof")
                        st[0] += chunk
                        if response_complete(st[0]):
                            sel.unregister(s)
                            del pending[s]
                            done.append(s)
                    except OSError:
                        sel.unregister(s)
                        del pending[s]
                        s.close()
            for s in pending:
                sel.unregister(s)
                s.close()
    finally:
        sel.close()
    return done


# ---- backends --------------------------------------------------------------------------------

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/ng-body;
    proxy_temp_path {tmp}/ng-proxy;
    fastcgi_temp_path {tmp}/ng-fastcgi;
    uwsgi_temp_path {tmp}/ng-uwsgi;
    scgi_temp_path {tmp}/ng-scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type application/octet-stream; return 200 "{body}"; }}
    }}
}}
"""

PY_SERVER = r'''
import asyncio, sys
BODY = b"x" * 1024
RESP = (b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + BODY)
CLOSE = RESP.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            close = b"connection: close" in head.lower()
            w.write(CLOSE if close else RESP)
            await w.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
'''


class Backends:
    def __init__(self, procs, tmp):
        self.procs, self.tmp = procs, tmp
        self.iperf_port = free_port()
        self.web_port = free_port()
        self.iperf = None
        self.web = None
        self.web_kind = None

    def start(self):
        self.start_iperf()
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                          else None)
        if nginx:
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(tmp=self.tmp, port=self.web_port,
                                          body=BODY.decode()))
            self.web = self.procs.start("nginx", [nginx, "-p", self.tmp + "/", "-c", conf,
                                                  "-e", os.path.join(self.tmp, "nginx-error.log")])
            self.web_kind = "nginx (1 process)"
        else:
            path = os.path.join(self.tmp, "web.py")
            with open(path, "w") as f:
                f.write(PY_SERVER)
            self.web = self.procs.start("pyweb", [sys.executable, path, str(self.web_port)])
            self.web_kind = "python asyncio (nginx not found)"
        if not wait_until(lambda: port_open(self.web_port), 10):
            raise RuntimeError("web server did not start:\n" + Procs.log_tail(self.web))
        if not http_request_ok(self.web_port):
            raise RuntimeError("web server does not answer GET /")

    def start_iperf(self):
        if self.iperf is not None:
            self.procs.stop(self.iperf)
        self.iperf = self.procs.start("iperf3-server", ["iperf3", "-s", "-B", "127.0.0.1", "-p",
                                                        str(self.iperf_port)])
        if not wait_until(lambda: self.iperf.poll() is None and port_listening(self.iperf_port),
                          10):
            raise RuntimeError("iperf3 server did not start:\n" + Procs.log_tail(self.iperf))


def port_listening(port):
    """True when something listens on 127.0.0.1:port, without connecting (an iperf3 server
    treats a bare connection as a test)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(want) and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


# ---- configurations (V2Ray v4 JSON; both programs run the same file) -------------------------

def portal_config(proto, tunnel_port, publics):
    """publics: [(port, target name)]; the tunnel inbound per protocol."""
    if proto.startswith("vless"):
        inbound = {"tag": "tunnel", "listen": "127.0.0.1", "port": tunnel_port,
                   "protocol": "vless",
                   "settings": {"clients": [{"id": UUID}], "decryption": "none"}}
    else:
        inbound = {"tag": "tunnel", "listen": "127.0.0.1", "port": tunnel_port,
                   "protocol": "vmess",
                   "settings": {"clients": [{"id": UUID, "alterId": 0}]}}
    if proto in TLS_PROTOS:
        inbound["streamSettings"] = {
            "network": "tcp", "security": "tls",
            "tlsSettings": {"certificates": [{"certificateFile": CERT, "keyFile": KEY}]}}
    if proto in WS_PROTOS:
        inbound.setdefault("streamSettings", {}).update(
            {"network": "ws", "wsSettings": {"path": WS_PATH}})
    inbounds = [inbound]
    for i, (port, name) in enumerate(publics):
        inbounds.append({"tag": "public-%d" % i, "listen": "127.0.0.1", "port": port,
                         "protocol": "dokodemo-door",
                         "settings": {"address": name, "port": 0, "network": "tcp"}})
    return {
        "log": {"loglevel": "warning", "access": "none"},
        "reverse": {"portals": [{"tag": "portal", "domain": DOMAIN}]},
        "inbounds": inbounds,
        "outbounds": [{"tag": "block", "protocol": "blackhole", "settings": {}}],
        "routing": {"rules": [{"type": "field", "inboundTag": [ib["tag"] for ib in inbounds],
                               "outboundTag": "portal"}]},
    }


def bridge_config(proto, tunnel_port, targets):
    """targets: [(name, port)]: the bridge reaches 127.0.0.1:port for target `name`."""
    if proto.startswith("vless"):
        tunnel = {"tag": "interconn", "protocol": "vless",
                  "settings": {"vnext": [{"address": "127.0.0.1", "port": tunnel_port,
                                          "users": [{"id": UUID, "encryption": "none"}]}]}}
    else:
        security = "chacha20-poly1305" if proto == "vmess-chacha" else "aes-128-gcm"
        tunnel = {"tag": "interconn", "protocol": "vmess",
                  "settings": {"vnext": [{"address": "127.0.0.1", "port": tunnel_port,
                                          "users": [{"id": UUID, "alterId": 0,
                                                     "security": security}]}]}}
    if proto in TLS_PROTOS:
        tunnel["streamSettings"] = {
            "network": "tcp", "security": "tls",
            "tlsSettings": {"serverName": TLS_NAME, "disableSystemRoot": True,
                            "certificates": [{"usage": "verify", "certificateFile": CERT}]}}
    if proto in WS_PROTOS:
        tunnel.setdefault("streamSettings", {}).update(
            {"network": "ws", "wsSettings": {"path": WS_PATH}})
    outbounds = [tunnel]
    rules = [{"type": "field", "inboundTag": ["bridge"], "domain": ["full:" + DOMAIN],
              "outboundTag": "interconn"}]
    for i, (name, port) in enumerate(targets):
        outbounds.append({"tag": "target-%d" % i, "protocol": "freedom",
                          "settings": {"redirect": "127.0.0.1:%d" % port}})
        rules.append({"type": "field", "inboundTag": ["bridge"], "domain": ["full:" + name],
                      "outboundTag": "target-%d" % i})
    outbounds.append({"tag": "deny", "protocol": "blackhole", "settings": {}})
    rules.append({"type": "field", "inboundTag": ["bridge"], "outboundTag": "deny"})
    return {
        "log": {"loglevel": "warning", "access": "none"},
        "reverse": {"bridges": [{"tag": "bridge", "domain": DOMAIN}]},
        "outbounds": outbounds,
        "routing": {"rules": rules},
    }


class Impl:
    def __init__(self, name, binary, kind):
        self.name, self.binary, self.kind = name, binary, kind

    def argv(self, config_path):
        if self.kind == "vrev":
            return [self.binary, "run", "-c", config_path, "--log-level", "warning"]
        return [self.binary, "-config", config_path]

    def check(self, config_path):
        """None when the implementation accepts the configuration, else its message."""
        if self.kind == "vrev":
            argv = [self.binary, "test", "-c", config_path]
        else:
            argv = [self.binary, "-test", "-config", config_path]
        rc, out, err = run_tool(argv, 20)
        if rc == 0:
            return None
        return (err.strip() or out.strip() or "exit %d" % rc).splitlines()[-1]


class Pair:
    """A portal + bridge of one implementation and tunnel protocol, with public ports for the
    iperf3 server ("iperf") and the web server ("web")."""

    def __init__(self, procs, tmp, impl, proto, backends):
        self.procs, self.tmp, self.impl, self.proto = procs, tmp, impl, proto
        self.tunnel_port = free_port()
        self.iperf_port = free_port()
        self.web_port = free_port()
        tag = "%s-%s-%d" % (impl.name, proto, self.tunnel_port)
        self.portal_path = os.path.join(tmp, "portal-%s.json" % tag)
        self.bridge_path = os.path.join(tmp, "bridge-%s.json" % tag)
        with open(self.portal_path, "w") as f:
            json.dump(portal_config(proto, self.tunnel_port,
                                    [(self.iperf_port, "iperf"), (self.web_port, "web")]), f,
                      indent=1)
        with open(self.bridge_path, "w") as f:
            json.dump(bridge_config(proto, self.tunnel_port,
                                    [("iperf", backends.iperf_port), ("web", backends.web_port)]),
                      f, indent=1)
        self.portal = self.bridge = None
        self.tag = tag

    def check(self):
        for path in (self.portal_path, self.bridge_path):
            msg = self.impl.check(path)
            if msg:
                return "%s: %s" % (os.path.basename(path).split("-")[0], msg)
        return None

    def start_portal(self):
        self.portal = self.procs.start("portal-" + self.tag, self.impl.argv(self.portal_path))
        if not wait_until(lambda: port_listening(self.tunnel_port) and
                          port_listening(self.web_port), 10):
            raise RuntimeError("%s portal did not listen:\n%s" % (self.impl.name,
                                                                 Procs.log_tail(self.portal)))

    def start_bridge(self):
        self.bridge = self.procs.start("bridge-" + self.tag, self.impl.argv(self.bridge_path))

    def start(self, ready_timeout=15):
        self.start_portal()
        self.start_bridge()
        if first_success(self.web_port, ready_timeout) is None:
            raise RuntimeError("%s %s tunnel not working after %d s\nportal:\n%s\nbridge:\n%s" % (
                self.impl.name, self.proto, ready_timeout, Procs.log_tail(self.portal),
                Procs.log_tail(self.bridge)))

    def pids(self):
        return [self.portal.pid, self.bridge.pid]

    def recover(self, wait_s=20):
        """After a failed run: wait until the tunnel serves again (a backlog may still be
        draining); restart the pair if it does not. Returns a note for the results."""
        t0 = time.monotonic()
        if self.alive() and first_success(self.web_port, wait_s) is not None:
            return "tunnel served again %.1f s after the failure" % (time.monotonic() - t0)
        why = "died" if not self.alive() else "still not serving after %d s" % wait_s
        tails = "portal:\n%s\nbridge:\n%s" % (Procs.log_tail(self.portal),
                                              Procs.log_tail(self.bridge))
        self.stop()
        self.start()
        return "pair %s: restarted\n%s" % (why, tails)

    def cpu(self):
        return sum(proc_cpu_s(pid) for pid in self.pids())

    def rss(self):
        return {"portal": proc_rss_kib(self.portal.pid)[0],
                "bridge": proc_rss_kib(self.bridge.pid)[0]}

    def hwm(self):
        return {"portal": proc_rss_kib(self.portal.pid)[1],
                "bridge": proc_rss_kib(self.bridge.pid)[1]}

    def alive(self):
        return self.portal.poll() is None and self.bridge.poll() is None

    def stop(self):
        for p in (self.bridge, self.portal):
            if p is not None:
                self.procs.stop(p)


# ---- measurements ----------------------------------------------------------------------------

class Results:
    """results[section][test][impl][metric] = [value per run]."""

    def __init__(self):
        self.data = {}
        self.notes = {}

    def add(self, section, test, impl, metric, value):
        (self.data.setdefault(section, {}).setdefault(test, {}).setdefault(impl, {})
         .setdefault(metric, []).append(value))

    def note(self, section, test, impl, text):
        self.notes.setdefault(section, {}).setdefault(test, {})[impl] = text

    def get(self, section, test, impl, metric):
        return self.data.get(section, {}).get(test, {}).get(impl, {}).get(metric, [])


def rotated(items, r):
    if not items:
        return items
    r %= len(items)
    return items[r:] + items[:r]


def iperf_once(port, duration, streams, reverse):
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(duration), "-P", str(streams),
            "-J", "--connect-timeout", "3000"]
    if reverse:
        argv.append("-R")
    for attempt in range(8):
        rc, out, err = run_tool(argv, duration + 20)
        try:
            j = json.loads(out)
        except ValueError:
            return None, "iperf3 rc=%d: %s" % (rc, (err or out).strip()[-300:])
        # The server may still be closing the previous test: try again shortly.
        if "busy" in (j.get("error") or "") and attempt < 7:
            time.sleep(0.5)
            continue
        break
    if j.get("error"):
        return None, "iperf3: " + j["error"]
    s = j["end"]["sum_received"]
    return {"gbps": s["bits_per_second"] / 1e9, "bytes": s["bytes"]}, None


def bench_bulk(res, ctx, pairs, proto, tests, reps, duration):
    """pairs: {impl name: Pair or None (direct)}."""
    for streams, reverse in tests:
        test = "%s %d stream%s %s" % (PROTO_LABEL[proto], streams, "s" if streams > 1 else "",
                                      "down (-R)" if reverse else "up")
        for r in range(reps):
            for name in rotated(list(pairs), r):
                ctx.check_deadline()
                pair = pairs[name]
                port = pair.iperf_port if pair else ctx.backends.iperf_port
                cpu0 = pair.cpu() if pair else None
                out, err = iperf_once(port, duration, streams, reverse)
                if out is None:
                    say("  %-13s %-40s FAILED: %s" % (name, test, err))
                    res.note("bulk", test, name, err)
                    ctx.backends.start_iperf()   # a half-finished test can leave it busy
                    if pair:
                        ctx.recover(pair)
                    continue
                res.add("bulk", test, name, "gbps", out["gbps"])
                line = "  %-13s %-42s %6.2f Gbit/s" % (name, test, out["gbps"])
                if pair:
                    cpu = pair.cpu() - cpu0
                    res.add("bulk", test, name, "cpu_s_per_gb", cpu / (out["bytes"] / 1e9))
                    line += "  %.2f CPU-s/GB" % (cpu / (out["bytes"] / 1e9))
                say(line)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out):
    def dur(text):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
        return float(m.group(1)) * _UNIT[m.group(2)] if m else None
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        return None
    r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        r[key] = dur(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    r["errors"] = errors
    return r


WRK_TESTS = [("keep-alive c50", 50, False), ("keep-alive c1000", 1000, False),
             ("Connection: close c50", 50, True)]


def bench_requests(res, ctx, pairs, reps, duration, tests=None, label=""):
    """tests: WRK_TESTS or a part of it; label: prefixed to each test's name (" over ws")."""
    for test, conns, close in tests or WRK_TESTS:
        test += label
        for r in range(reps):
            for name in rotated(list(pairs), r):
                ctx.check_deadline()
                pair = pairs[name]
                port = pair.web_port if pair else ctx.backends.web_port
                argv = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % duration, "--latency",
                        "--timeout", "5s"]
                if close:
                    argv += ["-H", "Connection: close"]
                argv.append("http://127.0.0.1:%d/" % port)
                cpu0 = pair.cpu() if pair else None
                rc, out, err = run_tool(argv, duration + 30)
                w = parse_wrk(out) if rc == 0 else None
                if w is None or not w["requests"]:
                    why = ((err or out).strip()[-200:] if w is None else
                           "no request completed in %d s" % duration)
                    say("  %-13s %-22s FAILED: %s" % (name, test, why))
                    res.note("requests", test, name, why)
                    if pair:
                        ctx.recover(pair)
                    continue
                for k in ("rps", "p50_ms", "p99_ms", "errors"):
                    if w[k] is not None:
                        res.add("requests", test, name, k, w[k])
                line = "  %-13s %-22s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d" % (
                    name, test, w["rps"], w["p50_ms"] or -1, w["p99_ms"] or -1, w["errors"])
                if pair and w["requests"]:
                    cpu = pair.cpu() - cpu0
                    res.add("requests", test, name, "cpu_ms_per_1k_req", cpu * 1e6 / w["requests"])
                    line += "  %.1f CPU-ms/1k req" % (cpu * 1e6 / w["requests"])
                say(line)


def bench_footprint(res, ctx, pairs, nconn):
    """pairs: {name: Pair}, freshly started (idle is measured first)."""
    for name, pair in pairs.items():
        rss = pair.rss()
        for side in ("portal", "bridge"):
            res.add("footprint", "RSS idle, " + side, name, "kib", rss[side])
            pss, private = proc_pss_private_kib(getattr(pair, side).pid)
            if pss is not None:
                res.add("footprint", "PSS idle, " + side, name, "kib", pss)
                res.add("footprint", "private idle, " + side, name, "kib", private)
    for name in rotated(list(pairs), ctx.rep_seed):
        ctx.check_deadline()
        pair = pairs[name]
        idle = pair.rss()
        socks = hold_connections(pair.web_port, nconn)
        time.sleep(0.5)
        held = pair.rss()
        n = len(socks)
        for s in socks:
            s.close()
        time.sleep(ctx.settle)
        after = pair.rss()
        res.add("footprint", "connections held", name, "n", n)
        line = "  %-13s %d/%d connections:" % (name, n, nconn)
        for side in ("portal", "bridge"):
            res.add("footprint", "RSS with %d conns, %s" % (nconn, side), name, "kib", held[side])
            per = (held[side] - idle[side]) / max(n, 1)
            res.add("footprint", "KiB per open conn, " + side, name, "kib", per)
            res.add("footprint", "RSS after close, " + side, name, "kib", after[side])
            line += "  %s %d -> %d -> %d KiB (%.1f KiB/conn)" % (side, idle[side], held[side],
                                                                after[side], per)
        say(line)


def bench_startup(res, ctx, impls, reps, backends):
    for r in range(reps):
        for impl in rotated(list(impls), r):
            ctx.check_deadline()
            pair = Pair(ctx.procs, ctx.tmp, impl, "vmess-aes", backends)
            try:
                pair.start_portal()
                time.sleep(0.2)
                t0 = time.monotonic()
                pair.start_bridge()
                t1 = first_success(pair.web_port, 15)
                if t1 is None:
                    res.note("startup", "bridge start -> first request", impl.name,
                             "no tunnel in 15 s")
                    say("  %-13s no working tunnel 15 s after bridge start" % impl.name)
                    continue
                first = (t1 - t0) * 1000
                res.add("startup", "bridge start -> first request", impl.name, "ms", first)
                time.sleep(0.3)
                tk = time.monotonic()
                ctx.procs.stop(pair.portal)
                ts = time.monotonic()
                pair.start_portal()
                t2 = first_success(pair.web_port, 15)
                if t2 is None:
                    res.note("startup", "portal restart -> first request", impl.name,
                             "not served again within 15 s")
                    say("  %-13s first request %.1f ms; not served 15 s after portal restart" % (
                        impl.name, first))
                    continue
                res.add("startup", "portal restart -> first request", impl.name, "ms",
                        (t2 - ts) * 1000)
                res.add("startup", "portal stop -> first request", impl.name, "ms",
                        (t2 - tk) * 1000)
                say("  %-13s first request %.1f ms after bridge start; served %.0f ms after "
                    "portal restart" % (impl.name, first, (t2 - ts) * 1000))
            finally:
                pair.stop()


# ---- capacity: many idle connections through one pair -----------------------------------------

CAPACITY_PER_ADDR = 20000  # connections per (source or destination address, port): of ~28,000


def capacity_configs(proto, tunnel_port, publics, echo_port, addr_base):
    """One public port per CAPACITY_PER_ADDR connections; public i goes to name cap-i, which the
    bridge sends to the echo server at 127.0.0.(addr_base+i): each destination address has its
    own ~28,000 local ports on the bridge's side (and a run's closed connections keep theirs in
    TIME_WAIT for a minute: each run gets addresses of its own)."""
    names = ["cap-%d" % i for i in range(len(publics))]
    portal = portal_config(proto, tunnel_port, list(zip(publics, names)))
    bridge = bridge_config(proto, tunnel_port, [(n, echo_port) for n in names])
    for ob in bridge["outbounds"]:
        if ob["tag"].startswith("target-"):
            i = int(ob["tag"].split("-")[1])
            ob["settings"]["redirect"] = "127.0.0.%d:%d" % (addr_base + i, echo_port)
    return portal, bridge


def capacity_run(ctx, impl, n, echo_port, hold_s, addr_base):
    """One pair of `impl` carrying n idle connections; returns a dict of measurements."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import holdconns as hc
    nports = (n + CAPACITY_PER_ADDR - 1) // CAPACITY_PER_ADDR
    tunnel_port = free_port()
    publics = [free_port() for _ in range(nports)]
    portal_cfg, bridge_cfg = capacity_configs("vmess-aes", tunnel_port, publics, echo_port,
                                              addr_base)
    paths = []
    for side, cfg in (("portal", portal_cfg), ("bridge", bridge_cfg)):
        path = os.path.join(ctx.tmp, "capacity-%s-%s.json" % (impl.name, side))
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        paths.append(path)
    portal = ctx.procs.start("cap-portal-" + impl.name, impl.argv(paths[0]))
    bridge = None
    out = {"n": n}
    try:
        if not wait_until(lambda: all(port_listening(p) for p in publics + [tunnel_port]), 10):
            raise RuntimeError("portal did not listen:\n" + Procs.log_tail(portal))
        bridge = ctx.procs.start("cap-bridge-" + impl.name, impl.argv(paths[1]))
        if not wait_until(lambda: len(hc.open_held(publics[0], 1, timeout=2).socks) == 1, 15,
                          0.2):
            raise RuntimeError("no tunnel:\n" + Procs.log_tail(portal) + Procs.log_tail(bridge))
        time.sleep(1)
        pids = {"portal": portal.pid, "bridge": bridge.pid}
        rss0 = {k: hc.rss_kib(p) for k, p in pids.items()}
        sources = ["127.0.0.%d" % (100 + addr_base + i) for i in range(2 * nports)]
        helds, t0 = [], time.monotonic()
        for i, port in enumerate(publics):
            count = min(CAPACITY_PER_ADDR, n - i * CAPACITY_PER_ADDR)
            helds.append(hc.open_held(port, count, sources[2 * i:2 * i + 2], batch=1000,
                                      timeout=max(5, 240 - (time.monotonic() - t0))))
        out["open_s"] = time.monotonic() - t0
        out["opened"] = sum(len(h.socks) for h in helds)
        out["errors"] = {}
        for h in helds:
            for k, v in h.errors.items():
                out["errors"][k] = out["errors"].get(k, 0) + v
        time.sleep(1)
        out["rss_held"] = {k: hc.rss_kib(p) for k, p in pids.items()}
        out["fds_held"] = {k: hc.fd_count(p) for k, p in pids.items()}
        time.sleep(hold_s)  # past the liveness checks: a drained tunnel must keep its sessions
        out["answered"] = sum(hc.ping_held(h, 1, timeout=120, batch=10000) for h in helds)
        out["alive"] = portal.poll() is None and bridge.poll() is None
        for h in helds:
            h.close()
        time.sleep(ctx.settle + 2)
        out["rss_after"] = {k: hc.rss_kib(p) for k, p in pids.items()}
        out["rss_idle"] = rss0
    finally:
        for p in (bridge, portal):
            if p is not None:
                ctx.procs.stop(p)
    return out


def bench_capacity(res, ctx, impls, nconn, v2ray_nconn, hold_s=11):
    """nconn idle connections through one vrev pair (every vrev build given), v2ray_nconn through
    V2Ray for comparison: connections held, time to open them, RSS and KiB per connection, and
    whether every one still answers after hold_s."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import holdconns as hc
    need = max(nconn, v2ray_nconn) + 1024  # per process: client, echo server, portal, bridge
    got = hc.raise_nofile(need)  # children inherit it (the hard limit too, given the right)
    if got < need:
        # Each of those processes holds one descriptor per connection; the hard limit can only
        # be raised with CAP_SYS_RESOURCE.
        say("  warning: open-file limit %d (hard) < %d: one process holds at most ~%d "
            "connections here; measuring that many" % (got, need, got - 1024))
        res.note("capacity", "open-file limit", "vrev-openssl",
                 "hard limit %d: %d connections asked, at most %d measured" %
                 (got, nconn, got - 1024))
        nconn, v2ray_nconn = min(nconn, got - 1024), min(v2ray_nconn, got - 1024)
    echo_port = free_port()
    per_run = 1 + max(nconn, v2ray_nconn) // CAPACITY_PER_ADDR  # addresses a run needs
    addrs = ["127.0.0.%d:%d" % (10 + i, echo_port) for i in range(per_run * len(impls))]
    echo = hc.start_echo(addrs, os.path.join(ctx.tmp, "capacity-echo.log"), need)
    try:
        for k, impl in enumerate(impls):
            ctx.check_deadline()
            n = v2ray_nconn if impl.kind == "v2ray" else nconn
            try:
                r = capacity_run(ctx, impl, n, echo_port, hold_s, 10 + k * per_run)
            except RuntimeError as e:
                res.note("capacity", "connections held", impl.name, str(e).splitlines()[0])
                say("  %-13s FAILED: %s" % (impl.name, e))
                continue
            held = r["rss_held"]
            per = sum(held[k] - r["rss_idle"][k] for k in held) / max(r["opened"], 1)
            test = "%d idle conns" % n
            res.add("capacity", "connections held, " + test, impl.name, "n", r["opened"])
            res.add("capacity", "answering at the end, " + test, impl.name, "n", r["answered"])
            res.add("capacity", "time to open, " + test, impl.name, "s", r["open_s"])
            for side in ("portal", "bridge"):
                res.add("capacity", "RSS held, %s, %s" % (test, side), impl.name, "kib",
                        held[side])
                res.add("capacity", "RSS after close, %s, %s" % (test, side), impl.name, "kib",
                        r["rss_after"][side])
            res.add("capacity", "RSS held portal+bridge, " + test, impl.name, "kib",
                    held["portal"] + held["bridge"])
            res.add("capacity", "KiB per conn portal+bridge, " + test, impl.name, "kib", per)
            say("  %-13s %d/%d held (%s), %d answered %d s later, %s; opened in %.1f s; RSS "
                "portal %d + bridge %d = %.0f MiB (%.2f KiB/conn), after close %d + %d KiB; "
                "descriptors %d + %d" % (
                    impl.name, r["opened"], n, r["errors"] or "no errors", r["answered"],
                    hold_s, "both alive" if r["alive"] else "A PROCESS DIED", r["open_s"],
                    held["portal"], held["bridge"], (held["portal"] + held["bridge"]) / 1024,
                    per, r["rss_after"]["portal"], r["rss_after"]["bridge"],
                    r["fds_held"]["portal"], r["fds_held"]["bridge"]))
    finally:
        echo.terminate()
        echo.wait(10)


def bench_restart(res, ctx, impls, backends, reps=5):
    """Median time until the tunnel serves again: after the portal restarts (from the moment it
    listens) and after the bridge restarts (from its start)."""
    for impl in impls:
        ctx.check_deadline()
        pair = Pair(ctx.procs, ctx.tmp, impl, "vmess-aes", backends)
        try:
            pair.start()
            portal_ms, bridge_ms = [], []
            for i in range(reps):
                ctx.procs.stop(pair.portal)
                time.sleep(0.5 + 0.2 * i)  # several phases of a bridge's backoff
                pair.start_portal()  # returns once it listens
                t0 = time.monotonic()
                t1 = first_success(pair.web_port, 15)
                if t1 is not None:
                    portal_ms.append((t1 - t0) * 1000)
            for i in range(reps):
                ctx.procs.stop(pair.bridge)
                t0 = time.monotonic()
                pair.start_bridge()
                t1 = first_success(pair.web_port, 15)
                if t1 is not None:
                    bridge_ms.append((t1 - t0) * 1000)
            for test, v in (("portal restart (listening) -> served", portal_ms),
                            ("bridge restart -> served", bridge_ms)):
                for x in v:
                    res.add("restart", test, impl.name, "ms", x)
                if len(v) < reps:
                    res.note("restart", test, impl.name, "%d of %d not served in 15 s" %
                             (reps - len(v), reps))
            say("  %-13s portal restart: median %s ms (%s); bridge restart: median %s ms (%s)" % (
                impl.name, fmt_med(portal_ms), " ".join("%.0f" % x for x in portal_ms),
                fmt_med(bridge_ms), " ".join("%.0f" % x for x in bridge_ms)))
        finally:
            pair.stop()


# ---- bridge under attack ------------------------------------------------------------------------

ATTACK_HANDSHAKE_S = 60  # vrev's pre-auth deadline (policy.levels.0.handshake, V2Ray's hold)


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def bench_attack(res, ctx, impls, backends, flood_s, reps=3, rate=1000):
    """Bridge under attack: 8 addresses (127.0.0.2..9) open `rate` new connections/s at the
    portal's tunnel port for flood_s seconds, each sending 32 bytes of garbage and holding
    (tests/e2e/flood.py). The bridge is restarted during the flood: time from its start to the
    first request served, beside the same without a flood. The portal's descriptors and RSS
    before, during (peak) and after (the flood stopped and the handshake deadline passed)."""
    flood_py = os.path.join(ROOT, "tests", "e2e", "flood.py")
    for impl in impls:
        ctx.check_deadline()
        pair = Pair(ctx.procs, ctx.tmp, impl, "vmess-aes", backends)
        try:
            pair.start()
            quiet, attacked = [], []
            for _ in range(reps):
                ctx.procs.stop(pair.bridge)
                t0 = time.monotonic()
                pair.start_bridge()
                t1 = first_success(pair.web_port, 15)
                if t1 is not None:
                    quiet.append((t1 - t0) * 1000)
            pid = pair.portal.pid
            time.sleep(1)
            fds0, rss0 = proc_fds(pid), proc_rss_kib(pid)[0]
            peak = {"fds": fds0, "rss": rss0}

            def sample():
                peak["fds"] = max(peak["fds"], proc_fds(pid) or 0)
                peak["rss"] = max(peak["rss"], proc_rss_kib(pid)[0])
            flood = subprocess.Popen(
                [sys.executable, flood_py, "--port", str(pair.tunnel_port), "--rate", str(rate),
                 "--seconds", str(flood_s), "--sources", "127.0.0.2-9", "--mode", "garbage"],
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
            t_flood = time.monotonic()
            try:
                while time.monotonic() - t_flood < 2.5:  # the pool fills
                    sample()
                    time.sleep(0.1)
                for _ in range(reps):
                    if time.monotonic() - t_flood > flood_s - 3:
                        break
                    sample()
                    ctx.procs.stop(pair.bridge)
                    t0 = time.monotonic()
                    pair.start_bridge()
                    t1 = first_success(pair.web_port, max(1.0, flood_s - (t0 - t_flood)))
                    attacked.append((t1 - t0) * 1000 if t1 is not None else None)
                    sample()
                    time.sleep(1.0)
                while flood.poll() is None and time.monotonic() - t_flood < flood_s + 10:
                    sample()
                    time.sleep(0.25)
            finally:
                out, _ = flood.communicate(timeout=flood_s + 30)
            stats = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
            t_end = time.monotonic()
            while time.monotonic() - t_end < ATTACK_HANDSHAKE_S + 3:  # every place's deadline
                time.sleep(0.5)
            fds1, rss1 = proc_fds(pid), proc_rss_kib(pid)[0]
            served_after = first_success(pair.web_port, 5) is not None
            name = impl.name
            for x in quiet:
                res.add("attack", "bridge restart -> served, no flood", name, "ms", x)
            if len(quiet) < reps:
                res.note("attack", "bridge restart -> served, no flood", name,
                         "%d of %d restarts not served in 15 s" % (reps - len(quiet), reps))
            for x in attacked:
                if x is not None:
                    res.add("attack", "bridge restart -> served, under the flood", name, "ms", x)
            if None in attacked or not attacked:
                res.note("attack", "bridge restart -> served, under the flood", name,
                         "%d of %d restarts not served during the flood" %
                         (attacked.count(None), len(attacked)))
            for when, f, r in (("before", fds0, rss0), ("during (peak)", peak["fds"],
                                                         peak["rss"]), ("after", fds1, rss1)):
                res.add("attack", "portal descriptors %s" % when, name, "n", f)
                res.add("attack", "portal RSS %s" % when, name, "kib", r)
            res.add("attack", "flood connections opened", name, "n", stats.get("opened", 0))
            res.add("attack", "flood connections closed by the portal", name, "n",
                    stats.get("closed_by_server", 0))
            if not served_after:
                res.note("attack", "portal RSS after", name, "tunnel not serving after the flood")
            say("  %-13s bridge restart -> served: no flood %s ms, under %d conn/s %s ms; "
                "portal fds %s / %s / %s, RSS %s / %s / %s KiB (before / during / after); "
                "flood %s" % (
                    name, " ".join("%.0f" % x for x in quiet), rate,
                    " ".join("-" if x is None else "%.0f" % x for x in attacked), fds0,
                    peak["fds"], fds1, rss0, peak["rss"], rss1, stats))
        finally:
            pair.stop()


# ---- slow reader beside fast requests ---------------------------------------------------------

SLOW_OBJECT = 512 << 20  # what the slow client asks for (it reads a few MiB of it)


def fetch_n(port, n, timeout):
    """Ask for n bytes through `port`; seconds it took, or None on a failure or a short read."""
    t0 = time.monotonic()
    got, buf = 0, bytearray(65536)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"%d\n" % n)
            while got < n:
                k = s.recv_into(buf)
                if not k:
                    break
                got += k
    except OSError:
        return None
    return time.monotonic() - t0 if got == n else None


def latency_run(port, count, wall_s, timeout, min_s=0.0):
    """Sequential 64 KiB requests, at least `count` and for at least `min_s` seconds, at most
    `wall_s`: their latencies (s) and how many failed."""
    t0 = time.monotonic()
    lat, failed, end = [], 0, t0 + wall_s
    while time.monotonic() < end and (len(lat) + failed < count or
                                      time.monotonic() < t0 + min_s):
        t = fetch_n(port, 65536, timeout)
        if t is None:
            failed += 1
        else:
            lat.append(t)
    return lat, failed


def pctl(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def slow_client(port, state, halt):
    """Reads a 512 MiB object at 64 KiB/s (16 KiB every 0.25 s) until halted."""
    buf = bytearray(16384)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"%d\n" % SLOW_OBJECT)
            while not halt.is_set():
                k = s.recv_into(buf)
                if not k:
                    state["end"] = "ended"
                    return
                state["got"] += k
                time.sleep(0.25)
        state["end"] = "still reading"
    except OSError as e:
        state["end"] = "cut: %s" % e


def slow_reader_run(res, impl, pair, count, slow_s):
    alone, failed_alone = latency_run(pair.web_port, count, 30, 5)
    state, halt = {"got": 0, "end": None}, threading.Event()
    t = threading.Thread(target=slow_client, args=(pair.web_port, state, halt), daemon=True)
    t.start()
    time.sleep(3)  # its window (or V2Ray's buffers) fill
    g0, t0 = state["got"], time.monotonic()
    beside, failed = latency_run(pair.web_port, count, slow_s, 5, min_s=8)  # the slow
    # client's rate is measured over these seconds: a few of its 16 KiB reads would not do
    rate = (state["got"] - g0) / max(time.monotonic() - t0, 1e-9)
    halt.set()
    t.join(5)
    test = "64 KiB requests"
    res.add("slow_reader", test + ", p99 alone", impl.name, "ms", pctl(alone, .99) * 1e3)
    res.add("slow_reader", test + ", p99 beside a 64 KiB/s reader", impl.name, "ms",
            pctl(beside, .99) * 1e3)
    res.add("slow_reader", test + ", p99 beside / alone", impl.name, "x",
            pctl(beside, .99) / pctl(alone, .99))
    res.add("slow_reader", test + ", failed beside it (5 s)", impl.name, "n", failed)
    res.add("slow_reader", "slow reader's rate", impl.name, "kib_s", rate / 1024)
    say("  %-13s 64 KiB alone: p50 %.1f p99 %.1f ms (%d failed); beside a slow reader: p50 "
        "%.1f p99 %.1f ms, %d done, %d failed; slow reader %.0f KiB/s (%s)" % (
            impl.name, pctl(alone, .5) * 1e3, pctl(alone, .99) * 1e3, failed_alone,
            pctl(beside, .5) * 1e3, pctl(beside, .99) * 1e3, len(beside), failed, rate / 1024,
            state["end"]))


def bench_slow_reader(res, ctx, impls, reps, count=300, slow_s=20):
    """M6 item 1: one client reads a 512 MiB object at 64 KiB/s through the pair while others
    make 64 KiB requests. Target (vrev + vrev): the requests' p99 within 2x their p99 alone,
    the slow client keeps its pace, portal + bridge RSS under 64 MiB."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    from streamsrv import StreamServer
    server = StreamServer()
    server.web_port, server.iperf_port = server.port, free_port()  # what Pair() routes to
    try:
        for impl in impls:
            ctx.check_deadline()
            pair = Pair(ctx.procs, ctx.tmp, impl, "vmess-aes", server)
            try:
                pair.start()
                for _ in range(reps):
                    slow_reader_run(res, impl, pair, count, slow_s)
                hwm = pair.hwm()
                res.add("slow_reader", "peak RSS portal+bridge", impl.name, "kib",
                        hwm["portal"] + hwm["bridge"])
                say("  %-13s peak RSS portal %d + bridge %d KiB" % (impl.name, hwm["portal"],
                                                                   hwm["bridge"]))
            finally:
                pair.stop()
    finally:
        server.close()


def fmt_med(v):
    return "%.0f" % statistics.median(v) if v else "-"


def bench_micro(res, ctx, micro_bins):
    for name, path in micro_bins.items():
        if not path or not os.access(path, os.X_OK):
            continue
        rc, out, err = run_tool([path], 60)
        for line in out.splitlines():
            m = re.match(r"\S+\s+(\S+)\s+seal\s+(\d+) B:\s+([\d.]+) GB/s", line)
            if m:
                res.add("micro", "AEAD seal %s %s B (GB/s)" % (m.group(1), m.group(2)), name,
                        "gbs", float(m.group(3)))
        say("  %s: %s" % (name, "; ".join(l.strip() for l in out.splitlines())))


# ---- kill cycles: crash-honest closes ----------------------------------------------------------

KILL_DOWNLOADERS, KILL_UPLOADERS = 6, 2
# a stream's outcome (tests/e2e/slowstreams.py) -> its label here, after "down " or "up "
KILL_LABEL = {"done": "completed", "reset": "reset", "clean_short": "clean-short",
              "no_response": "clean, no response",  # V2Ray's portal, when it has no tunnel
              "wrong": "wrong bytes"}


def slowstreams():
    """tests/e2e/slowstreams.py: the slow 1 MiB streams, every byte checked, that the e2e crash
    test (tests/e2e/test_crash_closes.py) uses too."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import slowstreams as ss
    return ss


def kill_service(tally):
    """The service behind the bridge: GET / answers the 1 KiB body (first_success); GET /big
    sends 1 MiB of pattern bytes slowly (the stream is still going when a process dies); a
    POST of 1 MiB of pattern bytes is judged: complete, reset, clean and short, or wrong."""
    import http.server
    import threading
    ss = slowstreams()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, body):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/big":
                return self.answer(BODY)
            self.send_response(200)
            self.send_header("Content-Length", str(ss.SIZE))
            self.end_headers()
            ss.send_slowly(self.wfile)

        def do_POST(self):
            outcome = ss.judge_upload(self.rfile)
            tally.add("up " + KILL_LABEL[outcome])
            if outcome == "done":
                self.answer(b"ok")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # resets are expected (and counted)

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def kill_download(ss, port, tally):
    request = b"GET /big HTTP/1.1\r\nHost: bench\r\n\r\n"
    tally.add("down " + KILL_LABEL[ss.download(port, request, tally)])


def kill_upload(ss, port, tally):
    ss.upload(port, b"bench")  # judged by the service


def bench_kill_cycles(res, ctx, impls, cycles):
    """kill -9 the portal and the bridge in turns, `cycles` times, while clients download and
    upload 1 MiB with slow sources and check every byte; restart the victim each time. A stream
    cut by the kill must end with an error (a reset), never clean and short."""
    import threading
    ss = slowstreams()
    for impl in impls:
        ctx.check_deadline()
        tally = ss.Tally()
        srv = kill_service(tally)
        port = srv.server_address[1]
        pair = Pair(ctx.procs, ctx.tmp, impl, "vmess-aes",
                    type("KillBackends", (), {"iperf_port": port, "web_port": port}))
        stop = threading.Event()
        threads = []
        try:
            pair.start()

            def loop(fn):
                while not stop.is_set():
                    fn(ss, pair.web_port, tally)
            threads = [threading.Thread(target=loop, args=(fn,), daemon=True)
                       for fn in [kill_download] * KILL_DOWNLOADERS + [kill_upload] * KILL_UPLOADERS]
            for t in threads:
                t.start()
            for i in range(cycles):
                ctx.check_deadline()
                role = ("portal", "bridge")[i % 2]
                done = tally.get("down completed")
                wait_until(lambda: tally.get("down completed") > done, 15)
                wait_until(lambda: tally.in_flight >= KILL_DOWNLOADERS // 2, 5)
                victim = getattr(pair, role)
                t_kill = time.monotonic()
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(10)
                ctx.procs.stop(victim)
                t0 = time.monotonic()
                pair.start_portal() if role == "portal" else pair.start_bridge()
                t1 = first_success(pair.web_port, 15)
                if t1 is None:  # V2Ray 4.34's portal keeps a dead bridge's tunnel (WIRE-SPEC 3.7)
                    res.note("kill", "%s restart -> first request" % role, impl.name,
                             "not served again within 15 s (cycle %d)" % (i + 1))
                    say("  %-13s cycle %2d: %s killed, not served again within 15 s of its "
                        "restart: cycles end here" % (impl.name, i + 1, role))
                    break
                res.add("kill", "%s restart -> first request" % role, impl.name, "ms",
                        (t1 - t0) * 1000)
                res.add("kill", "%s killed -> first request" % role, impl.name, "ms",
                        (t1 - t_kill) * 1000)
                say("  %-13s cycle %2d: %s killed, served again %.0f ms after its restart; %s" % (
                    impl.name, i + 1, role, (t1 - t0) * 1000,
                    ", ".join("%s %d" % kv for kv in sorted(tally.n.items()))))
        finally:
            stop.set()
            for t in threads:
                t.join(15)
            pair.stop()
            srv.shutdown()
            srv.server_close()
        bad_kinds = ("down clean-short", "down clean, no response", "down wrong bytes",
                     "up clean-short", "up wrong bytes")
        for what in ("down completed", "down reset") + bad_kinds[:3] + (
                "up completed", "up reset") + bad_kinds[3:]:
            res.add("kill", "%d kills: %s" % (cycles, what), impl.name, "count", tally.get(what))
        bad = sum(tally.get(w) for w in bad_kinds)
        say("  %-13s %d kills: %s%s" % (impl.name, cycles,
                                        ", ".join("%s %d" % kv for kv in sorted(tally.n.items())),
                                        "" if not bad else "  <-- STREAMS ENDED AS IF COMPLETE"))


# ---- summary ---------------------------------------------------------------------------------

def summary(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "runs": values}


def paired_ratio(a, b):
    """Ratios a[i]/b[i] of runs measured next to each other (same rep)."""
    return [x / y for x, y in zip(a, b) if x is not None and y]


def fmt(s, digits=2):
    if s is None:
        return "-"
    f = "%%.%df" % digits
    if s["n"] == 1 or s["min"] == s["max"]:
        return f % s["median"]
    return (f + " [" + f + ".." + f + "]") % (s["median"], s["min"], s["max"])


# (section, metric, unit label, digits, better: "high"|"low", show tunnel/direct)
METRICS = [
    ("bulk", "gbps", "Gbit/s", 2, "high", True),
    ("bulk", "cpu_s_per_gb", "CPU-s/GB (portal+bridge)", 2, "low", False),
    ("requests", "rps", "req/s", 0, "high", True),
    ("requests", "p50_ms", "p50 ms", 2, "low", True),
    ("requests", "p99_ms", "p99 ms", 2, "low", True),
    ("requests", "cpu_ms_per_1k_req", "CPU-ms/1k req (portal+bridge)", 1, "low", False),
    ("requests", "errors", "socket errors + non-2xx", 0, "low", False),
    ("footprint", "kib", "KiB", 0, "low", False),
    ("footprint", "n", "count", 0, "high", False),
    ("startup", "ms", "ms", 1, "low", False),
    ("kill", "count", "transfers", 0, "low", False),
    ("kill", "ms", "ms", 0, "low", False),
    ("capacity", "n", "count", 0, "high", False),
    ("capacity", "s", "s", 2, "low", False),
    ("capacity", "kib", "KiB", 0, "low", False),
    ("restart", "ms", "ms", 1, "low", False),
    ("micro", "gbs", "GB/s", 2, "high", False),
]


def build_table(res, unsupported):
    rows = []
    ratio_cols = [("vrev-openssl", "v2ray"), ("vrev-mbedtls", "v2ray"), ("v2ray", "direct"),
                  ("vrev-openssl", "direct")]
    head = ["test", "direct", "v2ray", "vrev-openssl", "vrev-mbedtls", "ossl/v2ray",
            "mbed/v2ray", "v2ray/direct", "ossl/direct"]
    table_json = []
    for section, metric, unit, digits, better, direct_ratio in METRICS:
        tests = res.data.get(section, {})
        block = []
        for test, by_impl in tests.items():
            if not any(metric in m for m in by_impl.values()):
                continue
            cells = [test]
            entry = {"section": section, "test": test, "metric": metric, "unit": unit,
                     "better": better, "impls": {}, "ratios": {}}
            for impl in IMPLS:
                s = summary(by_impl.get(impl, {}).get(metric, []))
                entry["impls"][impl] = s
                note = res.notes.get(section, {}).get(test, {}).get(impl)
                if s is None and note:
                    entry["impls"][impl] = {"failed": note}
                cells.append(fmt(s, digits) if s else ("FAILED" if note else "-"))
            for a, b in ratio_cols:
                if (b == "direct" and not direct_ratio) or metric in ("errors", "n"):
                    cells.append("")
                    continue
                ra = paired_ratio(res.get(section, test, a, metric),
                                  res.get(section, test, b, metric))
                s = summary(ra)
                entry["ratios"]["%s/%s" % (a, b)] = s
                cells.append(fmt(s, 2) if s else "-")
            block.append(cells)
            table_json.append(entry)
        if block:
            rows.append(("%s: %s" % (section, unit), block))
    if unsupported:
        rows.append(("not supported yet (vrev test -c refuses the configuration)",
                     [["%s, %s" % (PROTO_LABEL[proto], impl), "not supported yet: " + msg]
                      for proto, impl, msg in unsupported]))
    widths = [len(h) for h in head]
    for _, block in rows:
        for cells in block:
            if len(cells) == len(head):
                widths = [max(w, len(c)) for w, c in zip(widths, cells)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    for title, block in rows:
        lines.append("")
        lines.append("-- " + title)
        for cells in block:
            if len(cells) == len(head):
                lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
            else:
                lines.append("  ".join(cells))
    return "\n".join(lines), table_json


def med(res, section, test, impl, metric):
    v = res.get(section, test, impl, metric)
    return statistics.median(v) if v else None


def check_targets(res, unsupported, nconn):
    """The issue's targets, evaluated on this run."""
    out = []

    def ratio_target(label, section, test, metric, impl, op, limit):
        ra = paired_ratio(res.get(section, test, impl, metric),
                          res.get(section, test, "v2ray", metric))
        if not ra:
            out.append({"target": label, "status": "n/a", "detail": "not measured"})
            return
        v = statistics.median(ra)
        ok = v >= limit if op == ">=" else v <= limit
        out.append({"target": label, "status": "holds" if ok else "MISSED", "value": v,
                    "limit": "%s %.2fx" % (op, limit),
                    "detail": "%.2fx V2Ray (%s %.2fx)" % (v, op, limit)})

    def abs_target(label, value, op, limit, unit):
        if value is None:
            out.append({"target": label, "status": "n/a", "detail": "not measured"})
            return
        ok = value >= limit if op == ">=" else value <= limit
        out.append({"target": label, "status": "holds" if ok else "MISSED", "value": value,
                    "limit": "%s %g %s" % (op, limit, unit),
                    "detail": "%.1f %s (%s %g)" % (value, unit, op, limit)})

    unsup = {(p, i) for p, i, _ in unsupported}
    for proto in ("vmess-aes", "vless", "vmess-tls", "vless-tls"):
        for direction in ("up", "down (-R)"):
            test = "%s 1 stream %s" % (PROTO_LABEL[proto], direction)
            extra = " (not in the issue)" if proto == "vless-tls" else ""
            label = "iperf3 1 stream %s %s >= 2.0x V2Ray%s" % (PROTO_LABEL[proto], direction,
                                                               extra)
            if (proto, "vrev-openssl") in unsup:
                out.append({"target": label, "status": "MISSED", "detail": "not supported yet"})
            else:
                ratio_target(label, "bulk", test, "gbps", "vrev-openssl", ">=", 2.0)
    for proto in WS_PROTOS:  # issue M9
        for direction in ("up", "down (-R)"):
            test = "%s 1 stream %s" % (PROTO_LABEL[proto], direction)
            label = "iperf3 1 stream %s %s >= 2.0x V2Ray" % (PROTO_LABEL[proto], direction)
            if (proto, "vrev-openssl") in unsup:
                out.append({"target": label, "status": "MISSED", "detail": "not supported yet"})
            else:
                ratio_target(label, "bulk", test, "gbps", "vrev-openssl", ">=", 2.0)
        test = "keep-alive c50 (%s)" % PROTO_LABEL[proto]
        ratio_target("wrk %s req/s >= 1.5x V2Ray" % test, "requests", test, "rps",
                     "vrev-openssl", ">=", 1.5)
    ratio_target("CPU s/GB (1 stream up, aes) <= 0.4x V2Ray", "bulk",
                 "vmess aes-128-gcm 1 stream up", "cpu_s_per_gb", "vrev-openssl", "<=", 0.4)
    ratio_target("CPU s/GB (1 stream down, aes) <= 0.4x V2Ray", "bulk",
                 "vmess aes-128-gcm 1 stream down (-R)", "cpu_s_per_gb", "vrev-openssl", "<=", 0.4)
    ratio_target("wrk keep-alive c50 req/s >= 1.5x V2Ray", "requests", "keep-alive c50", "rps",
                 "vrev-openssl", ">=", 1.5)
    ratio_target("wrk keep-alive c50 p99 <= 0.5x V2Ray", "requests", "keep-alive c50", "p99_ms",
                 "vrev-openssl", "<=", 0.5)
    ratio_target("wrk Connection: close c50 conn/s >= 2x V2Ray", "requests",
                 "Connection: close c50", "rps", "vrev-openssl", ">=", 2.0)
    for side in ("portal", "bridge"):
        idle = med(res, "footprint", "RSS idle, " + side, "vrev-openssl", "kib")
        abs_target("RSS idle %s <= 2 MiB" % side, idle, "<=", 2048, "KiB")
        abs_target("RSS per open conn (%d) %s <= 16 KiB" % (nconn, side),
                   med(res, "footprint", "KiB per open conn, " + side, "vrev-openssl", "kib"),
                   "<=", 16, "KiB")
        after = med(res, "footprint", "RSS after close, " + side, "vrev-openssl", "kib")
        abs_target("RSS after close %s within 10%% of idle" % side,
                   (after / idle - 1) * 100 if after and idle else None, "<=", 10, "% above idle")
    abs_target("bridge start -> working tunnel <= 20 ms",
               med(res, "startup", "bridge start -> first request", "vrev-openssl", "ms"), "<=", 20,
               "ms")
    abs_target("recovery after portal restart <= 1 s",
               med(res, "startup", "portal restart -> first request", "vrev-openssl", "ms"), "<=",
               1000, "ms")
    # M6: the tunnel under load (phases not run by default: slow, capacity, restart, kill).
    abs_target("slow reader: 64 KiB p99 beside a 64 KiB/s reader <= 2x alone",
               med(res, "slow_reader", "64 KiB requests, p99 beside / alone", "vrev-openssl",
                   "x"), "<=", 2.0, "x")
    abs_target("slow reader keeps its pace (>= 48 KiB/s of 64)",
               med(res, "slow_reader", "slow reader's rate", "vrev-openssl", "kib_s"), ">=", 48,
               "KiB/s")
    abs_target("slow reader: portal + bridge peak RSS < 64 MiB",
               med(res, "slow_reader", "peak RSS portal+bridge", "vrev-openssl", "kib"), "<=",
               65536, "KiB")
    for test in res.data.get("capacity", {}):
        if test.startswith("answering at the end, "):
            n = int(test.split(", ")[1].split()[0])
            abs_target("capacity: %d idle connections all answering" % n,
                       med(res, "capacity", test, "vrev-openssl", "n"), ">=", n, "connections")
        if test.startswith("RSS held portal+bridge, "):
            abs_target("capacity: portal + bridge RSS < 1 GiB (%s)" % test.split(", ")[1],
                       med(res, "capacity", test, "vrev-openssl", "kib"), "<=", 1 << 20, "KiB")
    abs_target("restart: portal restart -> served, median <= 100 ms",
               med(res, "restart", "portal restart (listening) -> served", "vrev-openssl", "ms"),
               "<=", 100, "ms")
    abs_target("restart: bridge restart -> served, median <= 50 ms",
               med(res, "restart", "bridge restart -> served", "vrev-openssl", "ms"), "<=", 50,
               "ms")
    abs_target("attack: bridge restart -> served under a 1,000 conn/s flood, median <= 1 s",
               med(res, "attack", "bridge restart -> served, under the flood", "vrev-openssl",
                   "ms"), "<=", 1000, "ms")
    for test in res.data.get("kill", {}):
        if test.endswith(("clean-short", "clean, no response", "wrong bytes")):
            abs_target("kill -9 cycles: %s == 0" % test,
                       med(res, "kill", test, "vrev-openssl", "count"), "<=", 0, "")
    # mbedTLS: must beat V2Ray on RSS, CPU per request and latency.
    ratio_target("mbedTLS: CPU per request (keep-alive c50) < 1x V2Ray", "requests",
                 "keep-alive c50", "cpu_ms_per_1k_req", "vrev-mbedtls", "<=", 1.0)
    ratio_target("mbedTLS: p99 (keep-alive c50) < 1x V2Ray", "requests", "keep-alive c50",
                 "p99_ms", "vrev-mbedtls", "<=", 1.0)
    for side in ("portal", "bridge"):
        ratio_target("mbedTLS: RSS with %d conns %s < 1x V2Ray" % (nconn, side), "footprint",
                     "RSS with %d conns, %s" % (nconn, side), "kib", "vrev-mbedtls", "<=", 1.0)
    return out


GNUPLOT = """set terminal pngcairo size 1600,1500 font ",10"
set output "{png}"
set multiplot layout 3,2 title "{title}"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set xtics rotate by -15 scale 0
set yrange [0:*]
{panels}
unset multiplot
"""
COLORS = {"direct": "#999999", "v2ray": "#d95f02", "vrev-openssl": "#1b9e77",
          "vrev-mbedtls": "#7570b3"}


def short_label(test):
    for long, short in (("vmess chacha20-poly1305", "chacha"), ("vless (plain TCP)", "vless"),
                        ("vmess aes-128-gcm + tls", "vmess+tls"), ("vless + tls", "vless+tls"),
                        (" 1 stream ", " "), (" (-R)", "")):
        test = test.replace(long, short)
    return test


def draw_chart(res, png, title, tmp):
    gp = shutil.which("gnuplot")
    if not gp:
        say("gnuplot not found: no chart (scripts/install-deps.sh --bench installs gnuplot-nox)")
        return False
    aes = PROTO_LABEL["vmess-aes"]

    def is_aes(t):
        return re.match(re.escape(aes) + r" \d+ stream", t) is not None

    def direct_note(tests):
        v = [statistics.median(res.get("bulk", t, "direct", "gbps")) for t in tests
             if res.get("bulk", t, "direct", "gbps")]
        return " (direct: %.0f..%.0f Gbit/s)" % (min(v), max(v)) if v else ""

    aes_tests = [t for t in res.data.get("bulk", {}) if is_aes(t)]
    specs = [
        ("bulk", "gbps", "iperf3 through the tunnel, %s, Gbit/s%s" % (aes, direct_note(aes_tests)),
         is_aes, TUNNEL_IMPLS),
        ("bulk", "gbps", "iperf3 1 stream, other tunnel protocols, Gbit/s",
         lambda t: " 1 stream " in t and not is_aes(t), TUNNEL_IMPLS),
        ("requests", "rps", "wrk, 1 KiB body, requests/s", lambda t: True, IMPLS),
        ("requests", "p99_ms", "wrk p99 latency, ms, log scale (lower is better)",
         lambda t: True, IMPLS),
        ("bulk", "cpu_s_per_gb", "CPU seconds per GB, portal + bridge (lower is better)", is_aes,
         TUNNEL_IMPLS),
        ("footprint", "kib", "RSS per process, KiB (lower is better)",
         lambda t: t.startswith("RSS"), TUNNEL_IMPLS),
    ]
    panels = []
    for i, (section, metric, ptitle, keep, order) in enumerate(specs):
        tests = [t for t in res.data.get(section, {}) if keep(t)]
        if section == "footprint":
            tests.sort(key=lambda t: ("bridge" in t,
                                      0 if "idle" in t else 1 if "with" in t else 2))
        impls = [im for im in order if any(res.get(section, t, im, metric) for t in tests)]
        if not tests or not impls:
            panels.append("set multiplot next")
            continue
        dat = os.path.join(tmp, "chart%d.dat" % i)
        with open(dat, "w") as f:
            for t in tests:
                label = t.replace(aes + " ", "") if is_aes(t) else short_label(t)
                row = ['"%s"' % label.replace('"', "'")]
                for im in impls:
                    s = summary(res.get(section, t, im, metric))
                    row += (["%g" % s["median"], "%g" % s["min"], "%g" % s["max"]] if s
                            else ["NaN", "NaN", "NaN"])
                f.write(" ".join(row) + "\n")
        plots = []
        for k, im in enumerate(impls):
            c = 2 + 3 * k
            plots.append('"%s" using %d:%d:%d%s title "%s" lc rgb "%s"' % (
                dat, c, c + 1, c + 2, ":xtic(1)" if k == 0 else "", im, COLORS[im]))
        log = metric == "p99_ms"
        panels.append('set title "%s"\n%splot %s\n%s' % (
            ptitle, "set logscale y\nset yrange [0.5:*]\n" if log else "", ", ".join(plots),
            "unset logscale y\nset yrange [0:*]" if log else ""))
    script = os.path.join(tmp, "chart.gp")
    with open(script, "w") as f:
        f.write(GNUPLOT.format(png=png, title=title, panels="\n".join(panels)))
    rc, out, err = run_tool([gp, script], 60)
    if rc != 0:
        say("gnuplot failed: " + (err or out).strip()[-300:])
        return False
    return True


# ---- report ----------------------------------------------------------------------------------

def report(doc, jpath, tmp):
    """Print the table and the targets of a results document, add them to it, write it to
    jpath and draw the chart next to it (<name>.png). Used after a run and by --report."""
    res = Results()
    res.data, res.notes = doc["results"], doc.get("failures", {})
    unsupported = [(u["proto"], u["impl"], u["message"]) for u in doc.get("unsupported", [])]
    table, table_json = build_table(res, unsupported)
    targets = check_targets(res, unsupported, doc["connections"])
    print()
    print("vrev vs V2Ray 4.34 on 127.0.0.1 (%s, commit %s) -- medians [min..max] of %d run(s); "
          "ratios are medians of per-run ratios (runs measured next to each other)"
          % (doc["date"], doc.get("commit"), doc["reps"]))
    print(table)
    print()
    print("targets (issue M5):")
    for t in targets:
        print("  %-7s %-66s %s" % (t["status"], t["target"], t.get("detail", "")))
    print()
    print("load average (and cores other processes kept busy): " + "; ".join(
        "%s %.2f/%.2f/%.2f%s" % (l["at"], *l["loadavg"], " (%.2f)" % l["other_cores"]
                                 if "other_cores" in l else "") for l in doc["loadavg"]))
    others = doc.get("other_processes") or {}
    if others:
        cores = others["cores_busy_avg"]
        print("other processes used %.0f CPU-s during the run: %.2f of %d cores on average%s" % (
            others["cpu_s"], cores, doc["machine"]["cores"],
            " -- BUSY MACHINE, rerun when idle" if cores > 0.25 else ""))
    doc.update(summary=table_json, targets=targets, table=table)
    with open(jpath, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    ppath = os.path.splitext(jpath)[0] + ".png"
    title = "vrev vs V2Ray 4.34, 127.0.0.1, %s, %d cores, %s run, commit %s" % (
        doc["date"][:10], doc["machine"]["cores"], "quick" if doc["quick"] else "full",
        doc.get("commit"))
    drawn = draw_chart(res, ppath, title, tmp)
    print("wrote %s%s (%.0f s)" % (jpath, " and " + ppath if drawn else "", doc["elapsed_s"]))


# Rows of the Markdown summary: (section, test, metric, label, digits).
MD_ROWS = [
    ("bulk", "vmess aes-128-gcm 1 stream up", "gbps", "iperf3 1 stream up, vmess aes (Gbit/s)", 2),
    ("bulk", "vmess aes-128-gcm 1 stream down (-R)", "gbps",
     "iperf3 1 stream down, vmess aes (Gbit/s)", 2),
    ("bulk", "vmess aes-128-gcm 8 streams up", "gbps", "iperf3 8 streams up, vmess aes (Gbit/s)", 2),
    ("bulk", "vmess chacha20-poly1305 1 stream up", "gbps",
     "iperf3 1 stream up, vmess chacha (Gbit/s)", 2),
    ("bulk", "vless (plain TCP) 1 stream up", "gbps", "iperf3 1 stream up, vless (Gbit/s)", 2),
    ("bulk", "vless (plain TCP) 1 stream down (-R)", "gbps",
     "iperf3 1 stream down, vless (Gbit/s)", 2),
    ("bulk", "vmess aes-128-gcm + tls 1 stream up", "gbps",
     "iperf3 1 stream up, vmess+tls (Gbit/s)", 2),
    ("bulk", "vmess aes-128-gcm + tls 1 stream down (-R)", "gbps",
     "iperf3 1 stream down, vmess+tls (Gbit/s)", 2),
    ("bulk", "vmess aes-128-gcm 1 stream up", "cpu_s_per_gb",
     "CPU-s per GB, 1 stream up, vmess aes (portal+bridge)", 2),
    ("bulk", "vmess aes-128-gcm 1 stream down (-R)", "cpu_s_per_gb",
     "CPU-s per GB, 1 stream down, vmess aes", 2),
    ("requests", "keep-alive c50", "rps", "wrk keep-alive c50 (req/s)", 0),
    ("requests", "keep-alive c50", "p99_ms", "wrk keep-alive c50 p99 (ms)", 2),
    ("requests", "keep-alive c1000", "rps", "wrk keep-alive c1000 (req/s)", 0),
    ("requests", "Connection: close c50", "rps", "wrk Connection: close c50 (conn/s)", 0),
    ("requests", "keep-alive c50", "cpu_ms_per_1k_req", "CPU-ms per 1k requests (c50)", 1),
    ("footprint", "RSS idle, portal", "kib", "RSS idle, portal (KiB)", 0),
    ("footprint", "RSS idle, bridge", "kib", "RSS idle, bridge (KiB)", 0),
    ("footprint", "PSS idle, portal", "kib", "PSS idle, portal (KiB; shared pages shared out)", 0),
    ("footprint", "private idle, portal", "kib", "private memory idle, portal (KiB)", 0),
    ("footprint", "KiB per open conn, portal", "kib", "KiB per open connection, portal", 1),
    ("footprint", "KiB per open conn, bridge", "kib", "KiB per open connection, bridge", 1),
    ("footprint", "RSS after close, portal", "kib", "RSS after the connections closed, portal", 0),
    ("footprint", "RSS after close, bridge", "kib", "RSS after the connections closed, bridge", 0),
    ("startup", "bridge start -> first request", "ms", "bridge start to first request (ms)", 1),
    ("startup", "portal restart -> first request", "ms", "portal restart to first request (ms)",
     0),
]


def markdown(doc, name):
    """The main figures of a results document and its targets, as Markdown tables."""
    res = Results()
    res.data = doc["results"]

    def cell(section, test, impl, metric, digits):
        v = med(res, section, test, impl, metric)
        return "-" if v is None else "%.*f" % (digits, v)

    def ratio(section, test, impl, metric):
        ra = paired_ratio(res.get(section, test, impl, metric),
                          res.get(section, test, "v2ray", metric))
        return "%.2fx" % statistics.median(ra) if ra else "-"

    m = doc["machine"]
    out = ["Medians of %d runs, %s, commit %s; %d cores (%s), Linux %s; %s; results file "
           "`bench/results/%s`." % (doc["reps"], doc["date"][:10], doc.get("commit"),
                                    m["cores"], m["cpu"], m["kernel"],
                                    doc["versions"].get("v2ray", "V2Ray"), name), "",
           "| measure | V2Ray 4.34 | vrev (OpenSSL) | vrev (mbedTLS) | OpenSSL / V2Ray "
           "| mbedTLS / V2Ray |", "|---|---:|---:|---:|---:|---:|"]
    for section, test, metric, label, digits in MD_ROWS:
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            label, cell(section, test, "v2ray", metric, digits),
            cell(section, test, "vrev-openssl", metric, digits),
            cell(section, test, "vrev-mbedtls", metric, digits),
            ratio(section, test, "vrev-openssl", metric),
            ratio(section, test, "vrev-mbedtls", metric)))
    out += ["", "| target (issue M5) | result | |", "|---|---|---|"]
    for t in doc.get("targets", []):
        out.append("| %s | %s | %s |" % (t["target"], t["status"], t.get("detail", "")))
    return "\n".join(out)


# ---- main ------------------------------------------------------------------------------------

class Ctx:
    pass


def versions(args):
    v = {}
    for name, argv in (("vrev-openssl", [args.vrev_openssl, "version"]),
                       ("vrev-mbedtls", [args.vrev_mbedtls, "version"]),
                       ("v2ray", [args.v2ray, "-version"]),
                       ("iperf3", ["iperf3", "--version"]),
                       ("wrk", ["wrk", "--version"]),
                       ("nginx", ["nginx", "-v"])):
        try:
            rc, out, err = run_tool(argv, 10)
            v[name] = ((out or "") + (err or "")).strip().splitlines()[0]
        except (OSError, IndexError, TypeError):
            v[name] = None
    return v


def cpu_busy_s():
    """CPU seconds the whole machine has spent busy (/proc/stat, all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / _TICK


def wait_idle(limit_s, window=10.0, max_cores=0.15):
    """Wait (at most limit_s) until the machine has been nearly idle for `window` seconds."""
    end = time.monotonic() + limit_s
    while True:
        b0 = cpu_busy_s()
        time.sleep(window)
        cores = (cpu_busy_s() - b0) / window
        if cores <= max_cores:
            say("machine idle (%.2f cores busy over %.0f s)" % (cores, window))
            return True
        if time.monotonic() >= end:
            say("warning: machine still busy (%.2f cores) after waiting %d s; running anyway"
                % (cores, limit_s))
            return False
        say("waiting for an idle machine (%.2f cores busy)" % cores)


def own_cpu_s():
    """CPU seconds of this driver and every child it has waited for (all of them, at the end)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def source_commit():
    """The commit measured: $VREV_COMMIT (for an exported tree), else git describe."""
    if os.environ.get("VREV_COMMIT"):
        return os.environ["VREV_COMMIT"]
    try:
        rc, out, err = run_tool(["git", "-C", ROOT, "describe", "--always", "--dirty"], 10)
        return out.strip() if rc == 0 else None
    except OSError:
        return None


def machine_info():
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1048576
    want = min(want, 1048576)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a ~2-minute smoke run")
    ap.add_argument("--vrev-openssl", default=os.path.join(ROOT, "build/bench/openssl/vrev"))
    ap.add_argument("--vrev-mbedtls", default=os.path.join(ROOT, "build/bench/mbedtls/vrev"))
    ap.add_argument("--micro-openssl",
                    default=os.path.join(ROOT, "build/bench/openssl/bench/aead_bench"))
    ap.add_argument("--micro-mbedtls",
                    default=os.path.join(ROOT, "build/bench/mbedtls/bench/aead_bench"))
    ap.add_argument("--v2ray", default=shutil.which("v2ray") or "/usr/bin/v2ray")
    ap.add_argument("--reps", type=int, help="runs per measurement (default 3; quick 1)")
    ap.add_argument("--kill-cycles", type=int, help="kill -9 cycles (default 20; quick 6)")
    ap.add_argument("--duration", type=int, help="seconds per iperf3/wrk run (default 3; quick 1)")
    ap.add_argument("--conns", type=int, help="open connections for the footprint (default 1000)")
    ap.add_argument("--only",
                    default="startup,footprint,bulk,requests,micro,slow,restart,capacity,kill,"
                            "attack",
                    help="comma-separated sections to run (default all: %(default)s)")
    ap.add_argument("--capacity-conns", type=int,
                    help="idle connections through one vrev pair (capacity; default 100000, "
                         "quick 5000)")
    ap.add_argument("--capacity-v2ray", type=int,
                    help="the same through V2Ray, for comparison (default 10000, quick 2000)")
    ap.add_argument("--protos", help="comma-separated tunnel protocols (default all: %s)" %
                    ",".join(p for p, _ in PROTOS))
    ap.add_argument("--impls", default=",".join(TUNNEL_IMPLS),
                    help="comma-separated tunnel implementations (default %(default)s)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--name", help="results file name without extension (default the date)")
    ap.add_argument("--max-busy", type=float, default=0.25,
                    help="warn when other processes keep more cores than this busy at start")
    ap.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                    help="first wait up to SECONDS for the machine to be idle (shared machines)")
    ap.add_argument("--report", metavar="JSON",
                    help="measure nothing: print the table and targets of a results file again, "
                         "and redraw its chart")
    ap.add_argument("--markdown", metavar="JSON",
                    help="measure nothing: print a results file's main figures and targets as "
                         "Markdown (the README's benchmark section)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep configs and logs")
    args = ap.parse_args()
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f), os.path.basename(args.markdown)))
        return 0
    if args.report:
        with open(args.report) as f:
            doc = json.load(f)
        tmp = tempfile.mkdtemp(prefix="vrev-bench-")
        try:
            report(doc, args.report, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0

    reps = args.reps or (1 if args.quick else 3)
    duration = args.duration or (1 if args.quick else 3)
    nconn = args.conns or (300 if args.quick else 1000)
    args.capacity_conns = args.capacity_conns or (5000 if args.quick else 100000)
    args.capacity_v2ray = args.capacity_v2ray or (2000 if args.quick else 10000)
    sections = set(args.only.split(","))
    protos = args.protos.split(",") if args.protos else [p for p, _ in PROTOS]
    limit_s = 8 * 60 if args.quick else 45 * 60

    nofile = raise_nofile()
    if nofile < 2 * nconn + 200:
        say("warning: open-file limit %d is low for %d connections" % (nofile, nconn))

    for tool in ("iperf3", "wrk"):
        if not shutil.which(tool):
            sys.exit("bench: %s not found (scripts/install-deps.sh --bench)" % tool)
    impls = {}
    for name, path, kind in (("v2ray", args.v2ray, "v2ray"),
                             ("vrev-openssl", args.vrev_openssl, "vrev"),
                             ("vrev-mbedtls", args.vrev_mbedtls, "vrev")):
        if name not in args.impls.split(","):
            continue
        if path and os.access(path, os.X_OK):
            impls[name] = Impl(name, os.path.abspath(path), kind)
        else:
            say("warning: %s not found at %s: its column stays empty" % (name, path))

    tmp = tempfile.mkdtemp(prefix="vrev-bench-")
    procs = Procs(tmp)
    ctx = Ctx()
    ctx.procs, ctx.tmp, ctx.settle, ctx.rep_seed = procs, tmp, 3.0 if not args.quick else 1.5, 0
    if args.wait_idle:
        wait_idle(args.wait_idle)
    t_start = time.monotonic()
    busy0, own0 = cpu_busy_s(), own_cpu_s()
    phase = {"t": t_start, "busy": busy0, "own": own0}

    def mark(at):
        """Load average, and the cores other processes kept busy since the previous mark."""
        now_t, busy = time.monotonic(), cpu_busy_s()
        own = own_cpu_s() + sum(proc_cpu_s(p.pid) for p in procs.live if p.poll() is None)
        others = max(0.0, (busy - phase["busy"]) - (own - phase["own"]))
        cores = others / max(now_t - phase["t"], 1e-3)
        phase.update(t=now_t, busy=busy, own=own)
        loads.append({"at": at, "loadavg": os.getloadavg(), "other_cores": round(cores, 2)})
        if cores > 0.25:
            say("note: other processes kept %.2f cores busy during this part (%s)" % (cores, at))
    ctx.deadline = t_start + limit_s

    def check_deadline():
        if time.monotonic() > ctx.deadline:
            raise Deadline("run exceeded its %d s limit" % limit_s)
    ctx.check_deadline = check_deadline
    ctx.recoveries = []

    def recover(pair):
        note = pair.recover()
        say("  %s %s: %s" % (pair.impl.name, pair.proto, note.splitlines()[0]))
        ctx.recoveries.append({"impl": pair.impl.name, "proto": pair.proto, "note": note})
    ctx.recover = recover

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    res = Results()
    unsupported = []
    loads = [{"at": "start", "loadavg": os.getloadavg()}]
    now = datetime.datetime.now()
    name = args.name or (now.strftime("%Y-%m-%d") + ("-quick" if args.quick else ""))
    say("bench: %s run, %d rep(s) x %d s, %d connections; load average %.2f %.2f %.2f on %d cores"
        % ("quick" if args.quick else "full", reps, duration, nconn, *os.getloadavg(),
           os.cpu_count()))
    # The load average lags (it still counts a previous run); sample what is busy right now.
    b0 = cpu_busy_s()
    time.sleep(2)
    busy_now = (cpu_busy_s() - b0) / 2
    if busy_now > args.max_busy:
        say("warning: other processes keep %.2f cores busy: results will be noisy; rerun when "
            "idle (--wait-idle)" % busy_now)
    status = "complete"
    try:
        backends = Backends(procs, tmp)
        backends.start()
        ctx.backends = backends
        say("backends: iperf3 server :%d, %s :%d" % (backends.iperf_port, backends.web_kind,
                                                     backends.web_port))

        if "startup" in sections:
            say("== startup: bridge start -> first request; portal restart -> first request")
            bench_startup(res, ctx, [impls[n] for n in TUNNEL_IMPLS if n in impls],
                          reps if not args.quick else 1, backends)
            mark("after startup")

        for proto in (protos if sections & {"footprint", "bulk", "requests"} else []):
            pairs = {}
            try:
                for iname in TUNNEL_IMPLS:
                    if iname not in impls:
                        continue
                    pair = Pair(procs, tmp, impls[iname], proto, backends)
                    msg = pair.check()
                    if msg:
                        if iname == "v2ray":
                            say("warning: V2Ray refuses the %s configuration: %s" % (proto, msg))
                        else:
                            say("%s over %s: not supported yet (%s)" % (iname, proto, msg))
                        unsupported.append((proto, iname, msg))
                        continue
                    pair.start()
                    pairs[iname] = pair
                if not pairs:
                    continue
                say("== %s: %s" % (proto, ", ".join("%s %s" % (n, p.pids()) for n, p in
                                                    pairs.items())))
                if proto == "vmess-aes" and "footprint" in sections:
                    say("-- footprint (%d connections)" % nconn)
                    bench_footprint(res, ctx, pairs, nconn)
                if "bulk" in sections:
                    say("-- bulk (iperf3, %d s per run)" % duration)
                    if proto == "vmess-aes":
                        tests = [(1, False), (1, True), (8, False), (8, True)]
                    elif args.quick:
                        tests = [(1, False)]
                    else:
                        tests = [(1, False), (1, True), (8, False), (8, True)]
                    allp = dict(pairs)
                    if proto == "vmess-aes":
                        allp = dict([("direct", None)] + list(pairs.items()))
                    bench_bulk(res, ctx, allp, proto, tests, reps, duration)
                if proto == "vmess-aes" and "requests" in sections:
                    say("-- requests (wrk, %d s per run)" % duration)
                    allp = dict([("direct", None)] + list(pairs.items()))
                    bench_requests(res, ctx, allp, reps, duration)
                if proto in WS_PROTOS and "requests" in sections:
                    say("-- requests over ws (wrk, %d s per run)" % duration)
                    bench_requests(res, ctx, pairs, reps, duration,
                                   [t for t in WRK_TESTS if t[1] == 50],
                                   " (%s)" % PROTO_LABEL[proto])
                for iname, pair in pairs.items():
                    hwm = pair.hwm()
                    for side in ("portal", "bridge"):
                        res.add("footprint", "peak RSS (VmHWM) %s, %s" % (proto, side), iname,
                                "kib", hwm[side])
            finally:
                for pair in pairs.values():
                    pair.stop()
            mark("after " + proto)

        if "restart" in sections:
            say("== restart: median time to served again after a portal / bridge restart")
            bench_restart(res, ctx, [impls[n] for n in TUNNEL_IMPLS if n in impls], backends)
            mark("after restart")
        if "capacity" in sections:
            say("== capacity: %d idle connections through one vrev pair, %d through V2Ray" %
                (args.capacity_conns, args.capacity_v2ray))
            bench_capacity(res, ctx, [impls[n] for n in TUNNEL_IMPLS if n in impls],
                           args.capacity_conns, args.capacity_v2ray)
            mark("after capacity")

        if "attack" in sections:
            flood_s = 8 if args.quick else 15
            say("== attack: bridge restarts while 127.0.0.2..9 open 1,000 connections/s at the "
                "portal for %d s; the portal's descriptors and RSS" % flood_s)
            bench_attack(res, ctx, [impls[n] for n in TUNNEL_IMPLS if n in impls], backends,
                         flood_s, reps=1 if args.quick else 3)
            mark("after attack")

        if "slow" in sections:
            say("== slow: 64 KiB requests beside a client reading 64 KiB/s")
            bench_slow_reader(res, ctx, [impls[n] for n in TUNNEL_IMPLS if n in impls],
                              reps if not args.quick else 1)
            mark("after slow")

        if "kill" in sections:
            cycles = args.kill_cycles or (6 if args.quick else 20)
            say("== kill: kill -9 portal and bridge in turns, %d times, during 1 MiB transfers"
                % cycles)
            bench_kill_cycles(res, ctx, [impls[n] for n in TUNNEL_IMPLS if n in impls], cycles)
            mark("after kill")

        if "micro" in sections:
            say("== micro: AEAD seal rate (bench/aead_bench.c)")
            bench_micro(res, ctx, {"vrev-openssl": args.micro_openssl,
                                   "vrev-mbedtls": args.micro_mbedtls})
    except (Deadline, KeyboardInterrupt, RuntimeError) as e:
        status = "aborted: %s" % e
        say("bench: ABORTED: %s" % e)
    finally:
        procs.stop_all()
    mark("end")
    elapsed = time.monotonic() - t_start
    # What the rest of the machine took meanwhile (other users' builds and tests).
    foreign = max(0.0, (cpu_busy_s() - busy0) - (own_cpu_s() - own0))
    others = {"cpu_s": round(foreign, 1), "cores_busy_avg": round(foreign / elapsed, 2)}

    os.makedirs(args.out, exist_ok=True)
    jpath = os.path.join(args.out, name + ".json")
    doc = {
        "name": name, "date": now.isoformat(timespec="seconds"), "status": status,
        "quick": args.quick, "reps": reps, "duration_s": duration, "connections": nconn,
        "elapsed_s": round(elapsed, 1), "commit": source_commit(), "machine": machine_info(),
        "versions": versions(args),
        "web_server": getattr(ctx, "backends", None) and ctx.backends.web_kind,
        "loadavg": loads, "other_processes": others,
        "unsupported": [{"proto": p, "impl": i, "message": m} for p, i, m in unsupported],
        "results": res.data, "failures": res.notes,
        "recoveries": getattr(ctx, "recoveries", []), "log": LOG,
    }
    report(doc, jpath, tmp)
    if args.keep_tmp:
        print("configs and logs kept in " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if status == "complete" else 1


if __name__ == "__main__":
    sys.exit(main())
