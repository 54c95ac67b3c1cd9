"""What the capture scripts of tests/vectors (ws/capture.py, h2/capture.py) share: running
Debian's V2Ray 4.34 on loopback, an echo service, reading from a socket for a while, writing a
vector file. Only processes started here are stopped, by their handle."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_v2ray(cfg, tmp):
    path = os.path.join(tmp, "config-%d.json" % len(os.listdir(tmp)))
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([shutil.which("v2ray"), "-config", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    # Wait for its "started" line: probing the port would open a connection it forwards.
    end = time.monotonic() + 10
    for line in p.stdout:
        if b"started" in line or time.monotonic() > end:
            break
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def read_for(s, seconds):
    """What `s` (a socket or a TLS socket) sends within `seconds`, or until it ends."""
    s.settimeout(0.2)
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except (ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def echo_server():
    """A listening socket on 127.0.0.1 that echoes every connection (close it to stop)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def run():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(c,), daemon=True).start()

    def echo(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

    threading.Thread(target=run, daemon=True).start()
    return srv


def writer(here):
    """A function writing a named vector file next to the script in `here`."""
    def write(name, data):
        with open(os.path.join(here, name), "wb") as f:
            f.write(data)
    return write


def run_captures(*steps):
    """Run each step(tmp) with V2Ray available and a scratch directory."""
    if not shutil.which("v2ray"):
        sys.exit("v2ray not found: run scripts/install-deps.sh")
    with tempfile.TemporaryDirectory() as tmp:
        for step in steps:
            step(tmp)
