#!/usr/bin/env python3
"""Regenerate the seed corpora of fuzz_vmess_header and fuzz_vmess_body (formats in those
files) from WIRE-SPEC §10.4/§10.6 and the real-peer captures in tests/vectors/vmess/.

usage: tests/fuzz/make-vmess-seeds.py   (from the repository root; python3 stdlib only)
"""
import json
import os
import struct

OUT = "tests/fuzz/corpus"
VEC = "tests/vectors/vmess"
T0 = 1700000000

FIRST_FLIGHT = bytes.fromhex(
    "6868c12572a3ce177baac5f08cc54ec34fc263ae40ba9307a4408b540625876e4097a0a1a2a3a4a5a6a7"
    "cc17d05e6998c430cb3239bb14b6b7efdfe28993f18530c61f2c862463f8b582221bdd586ee7a3598dcce8afac2e"
    "f06cb186e3d2cea66c994090ff03a7d1aefe24d7f9296dce30fa33ea1668")


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def fnv1a(b):
    h = 0x811C9DC5
    for c in b:
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def header(opt=0x0D, sec=3, cmd=1, addr=b"\x00\x00\x02\x0etest.v2fly.org", pad=b"", fix=True):
    h = bytes([1]) + bytes(range(16)) + bytes(range(16, 32)) + bytes([0x5A, opt,
                                                                      len(pad) << 4 | sec, 0, cmd])
    if cmd != 3:
        h += addr
    h += pad
    return h + struct.pack(">I", fnv1a(h) if fix else 0)


def plain_seed(h, skew=0, extra=b""):
    # flags bit 0: the harness makes the auth ID; in a VREV_FUZZING build "ciphertext" is
    # the plaintext, so: u16 L + 16 tag bytes, 8 nonce bytes, header + 16 tag bytes.
    return (bytes([0x01, 1, 2, 3, 4, skew & 0xFF]) + struct.pack(">H", len(h)) + bytes(16) +
            bytes(range(0xA0, 0xA8)) + h + bytes(16) + extra)


def header_seeds():
    t = "fuzz_vmess_header"
    write(t, "vector-10.4", bytes([0x00]) + struct.pack(">Q", T0) + FIRST_FLIGHT)
    write(t, "vector-10.4-split", bytes([0x2A]) + struct.pack(">Q", T0 + 119) + FIRST_FLIGHT +
          b"\x19\x5bbody")
    for name in sorted(os.listdir(VEC)):
        if not name.endswith(".json"):
            continue
        meta = json.load(open(os.path.join(VEC, name)))
        base = name[:-5]
        binf = base + (".req.bin" if base.startswith("server-") else ".bin")
        raw = open(os.path.join(VEC, binf), "rb").read()
        write(t, "peer-" + base, bytes([0x06]) + struct.pack(">Q", meta["time"]) + raw[:240])
    write(t, "plain-tcp-domain", plain_seed(header()))
    write(t, "plain-ipv4-padding", plain_seed(header(addr=b"\x00\x50\x01\x7f\x00\x00\x01",
                                                     pad=b"\xaa\xbb\xcc")))
    write(t, "plain-ipv6-udp", plain_seed(header(cmd=2, addr=b"\x00\x35\x03" + bytes(15) + b"\x01")))
    write(t, "plain-mux", plain_seed(header(cmd=3)))
    write(t, "plain-none", plain_seed(header(opt=0x05, sec=5)))
    write(t, "plain-opt-08", plain_seed(header(opt=0x08)))
    write(t, "plain-opt-10", plain_seed(header(opt=0x1D)))
    write(t, "plain-sec-auto", plain_seed(header(sec=2)))
    write(t, "plain-bad-fnv", plain_seed(header(fix=False)))
    write(t, "plain-skew-121", plain_seed(header(), skew=121 - 256))
    write(t, "plain-trailing", plain_seed(header() + b"\x00"))
    write(t, "junk", bytes([0x00]) + struct.pack(">Q", T0) + bytes(range(60)))


def body_seeds():
    t = "fuzz_vmess_body"
    hello_gcm = bytes.fromhex("195bc76e58df1d1b6686ac14fce9bcc0f768b9c8beb10f" + "00" * 8 +
                              "c6656334ec174d7c6cd918a0ee0a87d3d8a9" + "00" * 5)
    hello_chacha = bytes.fromhex("195b8aa8b3dd9185f30769fd06639baa587ae610a3c4d5" + "00" * 8)
    hello_none = bytes.fromhex("984d68656c6c6f1946")
    # byte 0: sec | cmd << 2 | mode << 4; byte 1: option index (0x0d = 9, 0x05 = 5); byte 2: seed
    write(t, "decode-gcm-0d", bytes([0x00, 9, 7]) + hello_gcm)
    write(t, "decode-chacha-0d", bytes([0x01, 9, 3]) + hello_chacha)
    write(t, "decode-none-05", bytes([0x02, 5, 1]) + hello_none)
    write(t, "decode-bad-len", bytes([0x00, 9, 0]) + bytes.fromhex("194c"))
    write(t, "decode-udp-none-eof", bytes([0x06, 9, 0]) + bytes.fromhex("194e"))
    payload = bytes((i * 7 + 3) & 0xFF for i in range(3000))
    for sec in range(3):
        for cmd in range(3):
            for oi in (0, 5, 9):
                write(t, "trip-s%d-c%d-o%d" % (sec, cmd, oi),
                      bytes([0x10 | cmd << 2 | sec, oi, sec * 9 + cmd]) + payload[:200 + 900 * sec])


if __name__ == "__main__":
    header_seeds()
    body_seeds()
