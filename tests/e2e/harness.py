"""Process-level test harness: vrev and Debian's V2Ray 4.34 as real processes on 127.0.0.1.

Every process is started by a fixture and ended by PID at teardown; every wait is bounded.
"""
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UUID = "5783a3e7-e373-51cd-8642-c83782b807c5"
DOMAIN = "tunnel.vrev.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_conf(tmp, servers, connections=64):
    """An nginx.conf for Debian's nginx run in the foreground by a test: everything it writes
    (pid, logs, temporary files) goes under `tmp`; `servers` is the http block's content."""
    return """daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/ng-body;
    proxy_temp_path {tmp}/ng-proxy;
    fastcgi_temp_path {tmp}/ng-fastcgi;
    uwsgi_temp_path {tmp}/ng-uwsgi;
    scgi_temp_path {tmp}/ng-scgi;
{servers}}}
""".format(tmp=tmp, connections=connections, servers=servers)


def need(name):
    """The path of a Debian-packaged program the tests run (nginx, haproxy: /usr/sbin)."""
    path = shutil.which(name) or ("/usr/sbin/" + name if os.access("/usr/sbin/" + name, os.X_OK)
                                  else None)
    assert path, "Debian's %s is a test dependency (scripts/install-deps.sh)" % name
    return path


def start_nginx(procs, tmp, servers, port, connections=64):
    """Run nginx with nginx_conf(tmp, servers) until it listens on `port`; returns it."""
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, servers, connections))
    ng = procs.start_argv("nginx", [need("nginx"), "-p", str(tmp) + "/", "-c", str(conf),
                                    "-e", str(tmp / "nginx-error.log")])
    assert wait_until(lambda: port_open(port), 10), procs.log(ng)
    return ng


def relay(a, b, first=None):
    """Copy socket a to socket b until a ends, then shut both down; first(data): called with the
    first bytes read, if given."""
    try:
        while True:
            d = a.recv(1 << 16)
            if first:
                first(d)
                first = None
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def wait_until(cond, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def vrev_bin():
    path = os.environ.get("VREV_BIN", os.path.join(ROOT, "build", "vrev"))
    path = path if os.path.isabs(path) else os.path.join(ROOT, path)
    assert os.access(path, os.X_OK), "build vrev first (make), or set VREV_BIN"
    return path


@pytest.fixture(scope="session")
def v2ray_bin():
    path = shutil.which("v2ray")
    if not path:
        pytest.fail("v2ray (Debian package v2ray 4.34) is not installed: run scripts/install-deps.sh")
    return path


class Procs:
    """Starts processes with their config in tmp_path and stops them by PID."""

    def __init__(self, tmp_path, vrev_bin, v2ray_bin):
        self.tmp = tmp_path
        self.vrev_bin = vrev_bin
        self.v2ray_bin = v2ray_bin
        self.procs = []

    def start(self, kind, name, config):
        path = self.tmp / ("%s.json" % name)
        path.write_text(json.dumps(config, indent=1))
        log = open(self.tmp / ("%s.log" % name), "w")
        if kind == "vrev":
            argv = [self.vrev_bin, "run", "-c", str(path), "--log-level", "info"]
        else:
            argv = [self.v2ray_bin, "-config", str(path)]
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        p.name, p.log_path = name, self.tmp / ("%s.log" % name)
        self.procs.append(p)
        return p

    def start_argv(self, name, argv, env=None):
        """Start any command (argv[0] "vrev" means the vrev under test)."""
        if argv[0] == "vrev":
            argv = [self.vrev_bin] + list(argv[1:])
        log = open(self.tmp / ("%s.log" % name), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        p.name, p.log_path = name, self.tmp / ("%s.log" % name)
        self.procs.append(p)
        return p

    def start_file(self, kind, name, path):
        """Run a config file as it is (comments and all)."""
        argv = (["vrev", "run", "-c", str(path)] if kind == "vrev"
                else [self.v2ray_bin, "-config", str(path)])
        return self.start_argv(name, argv)

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        return p.returncode

    def log(self, p):
        return p.log_path.read_text(errors="replace")

    def stop_all(self):
        for p in self.procs:
            self.stop(p)

    def sanitizer_reports(self):
        """What a sanitizer printed in any process's log ("" when nothing): under `make asan`
        a report at any time, shutdown included, fails the test."""
        found = []
        for p in self.procs:
            text = self.log(p)
            for marker in SANITIZER_MARKERS:
                at = text.find(marker)
                if at >= 0:
                    found.append("%s: %s" % (p.name, text[max(0, at - 200):at + 3000]))
                    break
        return "\n".join(found)


# LeakSanitizer's report is among them: a vrev process stopped by the test (SIGTERM) frees
# everything it made, the TLS sockets still lingering included (its context closes them), so
# whatever LSan finds at its exit is a leak.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "MemorySanitizer")


@pytest.fixture
def procs(tmp_path, vrev_bin, v2ray_bin):
    ps = Procs(tmp_path, vrev_bin, v2ray_bin)
    yield ps
    ps.stop_all()
    reports = ps.sanitizer_reports()
    if reports:
        pytest.fail("sanitizer report:\n" + reports, pytrace=False)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            body = pattern(n)
        else:
            body = b"hello from the backend\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        while n:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            n -= len(chunk)
        body = digest.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def pattern(n):
    block = hashlib.sha256(b"vrev").digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


class Backend(http.server.ThreadingHTTPServer):
    """The test web service. A connection reset by the proxy in front of it is counted, not
    printed: a vrev process stopped at a test's end resets the streams it still relays
    (cut, not ended), e.g. those a V2Ray 4.34 client keeps open for its uplinkOnly and
    downlinkOnly timers after the application has closed."""
    daemon_threads = True
    resets = 0

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionResetError):
            Backend.resets += 1
        else:
            super().handle_error(request, client_address)


@pytest.fixture
def backend():
    srv = Backend(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def read_response(s):
    """Read one HTTP response as a client like curl does: headers, then Content-Length bytes
    (not until EOF: a V2Ray 4.34 portal keeps the client's connection open for its 1 s
    uplinkOnly timer after the response has ended)."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    body = bytearray(rest)
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while length is None or len(body) < length:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        body += chunk
    return head, bytes(body)


def http_get(port, path="/hello", timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        return read_response(s)


def http_post(port, payload, timeout=30):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload))
                  .encode())
        s.sendall(payload)
        return read_response(s)[1]


# ---- configs in V2Ray's own format (both programs read the same files) ---------------------

def portal_config(external_port, tunnel_port, security_clients=None):
    return {
        "log": {"loglevel": "info"},
        "reverse": {"portals": [{"tag": "portal", "domain": DOMAIN}]},
        "inbounds": [
            {"tag": "external", "listen": "127.0.0.1", "port": external_port,
             "protocol": "dokodemo-door",
             "settings": {"address": "127.0.0.1", "port": 80, "network": "tcp"}},
            {"tag": "interconn", "listen": "127.0.0.1", "port": tunnel_port, "protocol": "vmess",
             "settings": {"clients": security_clients or [{"id": UUID, "alterId": 0}]}},
        ],
        "outbounds": [{"tag": "block", "protocol": "blackhole", "settings": {}}],
        "routing": {"rules": [
            {"type": "field", "inboundTag": ["external"], "outboundTag": "portal"},
            {"type": "field", "inboundTag": ["interconn"], "outboundTag": "portal"},
        ]},
    }


def bridge_config(tunnel_port, backend_port, security="aes-128-gcm"):
    return {
        "log": {"loglevel": "info"},
        "reverse": {"bridges": [{"tag": "bridge", "domain": DOMAIN}]},
        "outbounds": [
            {"tag": "out", "protocol": "freedom",
             "settings": {"redirect": "127.0.0.1:%d" % backend_port}},
            {"tag": "interconn", "protocol": "vmess",
             "settings": {"vnext": [{"address": "127.0.0.1", "port": tunnel_port,
                                     "users": [{"id": UUID, "alterId": 0,
                                                "security": security}]}]}},
        ],
        "routing": {"rules": [
            {"type": "field", "inboundTag": ["bridge"], "domain": ["full:" + DOMAIN],
             "outboundTag": "interconn"},
            {"type": "field", "inboundTag": ["bridge"], "outboundTag": "out"},
        ]},
    }


@pytest.fixture(autouse=True)
def time_limit(request):
    """Every test has a hard limit (default 120 s; @pytest.mark.limit(seconds) to change)."""
    import signal
    mark = request.node.get_closest_marker("limit")
    seconds = mark.args[0] if mark else 120

    def expired(signum, frame):
        raise TimeoutError("test exceeded its %d s limit" % seconds)

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "limit(seconds): hard time limit for one test")


@pytest.fixture
def udp_echo():
    """A UDP echo server on 127.0.0.1 (answers every datagram with b"echo:" + datagram)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            sock.sendto(b"echo:" + data, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join(2)
    sock.close()


def udp_roundtrip(port, payload, timeout=1.0, sock=None):
    """Send one datagram to 127.0.0.1:port and return the answer (None on timeout), from
    `sock`, or from a fresh socket (to a UDP inbound: a new session)."""
    if sock is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            return udp_roundtrip(port, payload, timeout, s)
    sock.settimeout(timeout)
    sock.sendto(payload, ("127.0.0.1", port))
    try:
        return sock.recvfrom(65536)[0]
    except socket.timeout:
        return None


def udp_exit_tries(kind):
    """How many fresh sessions a datagram may take when `kind` sends it on to the echo server.

    V2Ray 4.34 binds each outgoing UDP socket (freedom, its SOCKS outbound) to port 0 with
    SO_REUSEPORT, so the kernel may give a new socket the port of a live one; answers for the
    new session then reach the older socket and are lost (`ss -uanp` shows the shared port;
    1 to 3 sessions in 400 here). Another session gets another socket. A vrev exit uses
    connected sockets of its own: one try."""
    return 2 if kind == "v2ray" else 1


def udp_session(port, payload, tries, timeout=2.0):
    """A client socket whose first datagram was answered (a session that works), with the
    answer; a fresh socket for each try. Returns (socket or None, answer or None)."""
    for _ in range(tries):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        got = udp_roundtrip(port, payload, timeout, s)
        if got is not None:
            return s, got
        s.close()
    return None, None
