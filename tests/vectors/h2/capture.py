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
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from capturelib import (echo_server, free_port, read_for, run_captures,  # noqa: E402
                        start_v2ray, stop, writer)

HERE = os.path.dirname(os.path.abspath(__file__))
write = writer(HERE)
TLS = os.path.join(HERE, "..", "tls")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


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
    run_captures(capture_client, lambda tmp: capture_server(tmp, True), lambda tmp: capture_server(tmp, False))


if __name__ == "__main__":
    main()
