#!/usr/bin/env python3
"""Regenerate the seed corpora of fuzz_http1, fuzz_ws and fuzz_h2 from what V2Ray 4.34 sent
(tests/vectors/ws/, tests/vectors/h2/, written by the capture.py scripts there), plus a few
hand-made inputs for paths the captures do not reach (fragments, pings, bad frames). The
found-* files next to them are a libFuzzer merge of a minute's run of each target; this script
leaves them alone.

usage: tests/fuzz/make-seeds-carriers.py   (from the repository root)
"""
import os

WS = "tests/vectors/ws"
H2 = "tests/vectors/h2"
OUT = "tests/fuzz/corpus"


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def masked(opcode, payload, fin=True):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def main():
    # http1: byte 0 = mode (bit 0: response) and piece size - 1 (bits 1-7)
    for name in sorted(os.listdir(WS)):
        if not name.endswith(".txt"):
            continue
        data = read(os.path.join(WS, name))
        response = name.startswith("server-")
        write("fuzz_http1", name[:-4], bytes([0xfe | response]) + data)  # pieces of 128
        write("fuzz_http1", name[:-4] + "-bytewise", bytes([response]) + data)
    write("fuzz_http1", "probe", b"\x06GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("fuzz_http1", "xff", b"\x10GET /ray?ed=1 HTTP/1.1\nX-Forwarded-For: 1.2.3.4, ::1\n"
          b"Upgrade: websocket\nConnection: a, Upgrade\nSec-WebSocket-Key: "
          b"dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n")
    # ws: byte 0 = role (bit 0 client), small max_frame (bit 1), ticks (bit 2), piece size
    write("fuzz_ws", "v2ray-client-frames", b"\x00" + read(os.path.join(WS, "client-frames.bin")))
    write("fuzz_ws", "v2ray-server-frames", b"\x01" + read(os.path.join(WS, "server-frames.bin")))
    write("fuzz_ws", "fragments-ping", b"\x04" + masked(2, b"abc", False) + masked(9, b"p") +
          masked(0, b"def", False) + masked(10, b"") + masked(0, b"g") + masked(1, b"\xc3\xa9"))
    write("fuzz_ws", "pings", b"\x00" + masked(9, b"") * 40)
    write("fuzz_ws", "too-big", b"\x02" + masked(2, b"x" * 200))
    write("fuzz_ws", "close-bad", b"\x00" + masked(8, b"\x03\xed"))
    # h2: byte 0 = role (bit 0 client), preface (bit 1), ticks (bit 2), piece size
    write("fuzz_h2", "v2ray-client", b"\x00" + read(os.path.join(H2, "client.bin")))
    write("fuzz_h2", "v2ray-client-split", b"\x38" + read(os.path.join(H2, "client.bin")))
    write("fuzz_h2", "v2ray-server", b"\x01" + read(os.path.join(H2, "server.bin")))
    write("fuzz_h2", "v2ray-server-h2c", b"\x05" + read(os.path.join(H2, "server-h2c.bin")))


if __name__ == "__main__":
    main()
