#!/usr/bin/env python3
"""Capture what Debian's V2Ray 4.34 sends and answers over its HTTP/2 transport ("h2"), for
tests/unit/test_h2.c. Runs the real `v2ray` on loopback (ports picked free), kills only the
process it started. The bytes saved are the HTTP/2 connection inside TLS (ALPN h2, the test
certificates of tests/vectors/tls). Rewrites the files next to it:

  client.bin       V2Ray's client side (outbound freedom over h2+TLS, httpSettings host
                   ["h2.example.com"], path "/h2"): preface, SETTINGS, WINDOW_UPDATE, its
                   request HEADERS and the body "hello from client"; then what it sent once
                   our answer (200, "hello from server") arrived and the local side closed
  server.bin       V2Ray's server side (inbound dokodemo-door over h2+TLS, the same settings,
                   to an echo service) answering our connection: stream 1 asks for /h2 on
                   h2.example.com and sends "hello from client" (echoed back), stream 3 asks
                   for /other (path refused), stream 5 for host other.example.com (refused),
                   stream 7 for /h2/sub (a longer path: V2Ray matches a prefix), then stream 1
                   ends its body (END_STREAM)
  server-h2c.bin   the same first stream, without TLS (V2Ray's listener serves cleartext h2
                   with prior knowledge when no TLS is configured)

Usage: python3 tests/vectors/h2/capture.py  (needs the v2ray binary: scripts/install-deps.sh)
"""
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

HERE = os.path.dirname(os.path.abspath(__file__))
TLS = os.path.join(HERE, "..", "tls")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


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


def connect(port, timeout=10.0):
    """Connect, retrying while the listener (started by a goroutine) is not up yet."""
    end = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_for(s, seconds):
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


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman coding."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def headers(sid, path, host, end_stream=False):
    block = (literal(b":method", b"PUT") + literal(b":scheme", b"https") +
             literal(b":path", path) + literal(b":authority", host))
    return frame(1, 0x04 | (0x01 if end_stream else 0), sid, block)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def capture_client(tmp):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(TLS, "server.crt"), os.path.join(TLS, "server.key"))
    ctx.set_alpn_protocols(["h2"])
    fake = socket.socket()
    fake.bind(("127.0.0.1", 0))
    fake.listen(1)
    local = free_port()
    p = start_v2ray({
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": local, "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": fake.getsockname()[1],
                                   "network": "tcp"}}],
        "outbounds": [{"protocol": "freedom", "streamSettings": {
            "network": "h2", "security": "tls",
            "tlsSettings": {"serverName": "localhost", "allowInsecure": True},
            "httpSettings": {"host": ["h2.example.com"], "path": "/h2"}}}],
    }, tmp)
    try:
        app = socket.create_connection(("127.0.0.1", local), timeout=5)
        app.sendall(b"hello from client")
        fake.settimeout(10)
        raw, _ = fake.accept()
        conn = ctx.wrap_socket(raw, server_side=True)
        assert conn.selected_alpn_protocol() == "h2"
        data = read_for(conn, 1.0)
        conn.sendall(frame(4, 0, 0) + frame(4, 1, 0) + frame(1, 0x04, 1, b"\x88") +
                     frame(0, 0, 1, b"hello from server"))
        app.settimeout(5)
        got = app.recv(100)
        assert got == b"hello from server", got
        app.close()
        data += read_for(conn, 2.0)
        write("client.bin", data)
        conn.close()
    finally:
        stop(p)
        fake.close()


def echo_server():
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


def capture_server(tmp, use_tls):
    echo = echo_server()
    port = free_port()
    stream = {"network": "h2", "httpSettings": {"host": ["h2.example.com"], "path": "/h2"}}
    if use_tls:
        stream["security"] = "tls"
        stream["tlsSettings"] = {"certificates": [{
            "certificateFile": os.path.join(TLS, "server.crt"),
            "keyFile": os.path.join(TLS, "server.key")}]}
    p = start_v2ray({
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": port, "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": echo.getsockname()[1],
                                   "network": "tcp"},
                      "streamSettings": stream}],
        "outbounds": [{"protocol": "freedom"}],
    }, tmp)
    try:
        s = connect(port)
        if use_tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname="localhost")
            assert s.selected_alpn_protocol() == "h2"
        s.sendall(PREFACE + frame(4, 0, 0) + headers(1, b"/h2", b"h2.example.com") +
                  frame(0, 0, 1, b"hello from client"))
        data = read_for(s, 1.0)
        if not use_tls:
            write("server-h2c.bin", data)
            s.close()
            return
        s.sendall(frame(4, 1, 0) + headers(3, b"/other", b"h2.example.com", True))
        data += read_for(s, 0.5)
        s.sendall(headers(5, b"/h2", b"other.example.com", True))
        data += read_for(s, 0.5)
        s.sendall(headers(7, b"/h2/sub", b"h2.example.com"))
        data += read_for(s, 0.5)
        s.sendall(frame(0, 1, 1))
        data += read_for(s, 1.0)
        write("server.bin", data)
        s.close()
    finally:
        stop(p)
        echo.close()


def main():
    if not shutil.which("v2ray"):
        sys.exit("v2ray not found: run scripts/install-deps.sh")
    with tempfile.TemporaryDirectory() as tmp:
        capture_client(tmp)
        capture_server(tmp, True)
        capture_server(tmp, False)


if __name__ == "__main__":
    main()
