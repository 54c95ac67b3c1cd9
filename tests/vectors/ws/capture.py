#!/usr/bin/env python3
"""Capture what Debian's V2Ray 4.34 sends and answers over its WebSocket transport, for
tests/unit/test_ws.c and test_http1.c. Runs the real `v2ray` on loopback (ports picked free),
kills only the process it started. Rewrites the files next to it:

  client-request.txt   V2Ray's upgrade request (outbound freedom over ws, path /ray,
                       headers {"Host": "ws.example.com"})
  client-frames.bin    the frames it sent after our 101 answer: the payload "hello from client"
                       (masked), then what it sent when the local side closed (a close frame)
  server-101.txt       V2Ray's answer to our valid upgrade (inbound over ws, path /ray)
  server-frames.bin    its unmasked frames: our payload echoed back, then its answer to our
                       close frame
  server-404.txt       its answer to the right upgrade for a wrong path (/other)
  server-400-*.txt     its answers to upgrades missing a piece (Upgrade, version 13, key)
  server-405-post.txt  ... to a POST on the path
  server-101-*.txt     its answers to a query string, a %-escaped path, HTTP/1.0 and a key
                       that is not 16 bytes of base64 (all accepted)
  server-400-garbage.txt, server-431.txt
                       its answers to a bad request line and to an 8000-byte header

Usage: python3 tests/vectors/ws/capture.py  (needs the v2ray binary: scripts/install-deps.sh)
"""
import base64
import hashlib
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from capturelib import (echo_server, free_port, read_for, run_captures,  # noqa: E402
                        start_v2ray, stop, writer)

HERE = os.path.dirname(os.path.abspath(__file__))
write = writer(HERE)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def frame(opcode, payload, mask=None):
    b = bytes([0x80 | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        b += bytes([m | n])
    elif n < 65536:
        b += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        b += bytes([m | 127]) + n.to_bytes(8, "big")
    if mask:
        b += mask
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return b + payload


def capture_client(tmp):
    fake = socket.socket()
    fake.bind(("127.0.0.1", 0))
    fake.listen(1)
    fake_port = fake.getsockname()[1]
    local = free_port()
    p = start_v2ray({
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": local, "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": fake_port,
                                   "network": "tcp"}}],
        "outbounds": [{"protocol": "freedom", "streamSettings": {
            "network": "ws",
            "wsSettings": {"path": "/ray", "headers": {"Host": "ws.example.com"}}}}],
    }, tmp)
    try:
        app = socket.create_connection(("127.0.0.1", local), timeout=5)
        app.sendall(b"hello from client")
        fake.settimeout(10)
        conn, _ = fake.accept()
        head, rest = read_head(conn)
        write("client-request.txt", head)
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        frames = rest + read_for(conn, 1.0)
        conn.sendall(frame(2, b"hello from server"))
        app.settimeout(5)
        got = app.recv(100)
        assert got == b"hello from server", got
        app.close()
        frames += read_for(conn, 2.0)
        write("client-frames.bin", frames)
        conn.close()
    finally:
        stop(p)
        fake.close()


def upgrade(port, request):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(request)
    head, rest = read_head(s)
    return s, head, rest


def request(path=b"/ray", method=b"GET", drop=None):
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: ws.example.com",
             b"Upgrade: websocket", b"Connection: Upgrade",
             b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Version: 13"]
    lines = [l for l in lines if not (drop and l.startswith(drop))]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def capture_server(tmp):
    echo = echo_server()
    port = free_port()
    p = start_v2ray({
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": port, "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": echo.getsockname()[1],
                                   "network": "tcp"},
                      "streamSettings": {"network": "ws", "wsSettings": {"path": "/ray"}}}],
        "outbounds": [{"protocol": "freedom"}],
    }, tmp)
    try:
        s, head, rest = upgrade(port, request())
        write("server-101.txt", head)
        mask = b"\x37\xfa\x21\x3d"
        s.sendall(frame(2, b"hello from client", mask))
        frames = rest + read_for(s, 1.0)
        s.sendall(frame(8, b"\x03\xe8", mask))
        frames += read_for(s, 1.5)
        write("server-frames.bin", frames)
        s.close()
        for name, req in [("server-404.txt", request(path=b"/other")),
                          ("server-400-upgrade.txt", request(drop=b"Upgrade")),
                          ("server-400-version.txt", request(drop=b"Sec-WebSocket-Version")),
                          ("server-400-key.txt", request(drop=b"Sec-WebSocket-Key")),
                          ("server-405-post.txt", request(method=b"POST")),
                          ("server-101-query.txt", request(path=b"/ray?ed=2048")),
                          ("server-101-escaped.txt", request(path=b"/r%61y")),
                          ("server-101-http10.txt", request().replace(b"HTTP/1.1", b"HTTP/1.0")),
                          ("server-101-badkey.txt", request().replace(KEY, b"abc")),
                          ("server-400-garbage.txt", b"GARBAGE\r\n\r\n"),
                          ("server-431.txt", request().replace(b"\r\n\r\n", b"\r\nX-Big: "
                                                              + b"a" * 8000 + b"\r\n\r\n"))]:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            write(name, read_for(s, 1.0))
            s.close()
    finally:
        stop(p)
        echo.close()


def main():
    run_captures(capture_client, capture_server)


if __name__ == "__main__":
    main()
