#!/usr/bin/env python3
"""Regenerate the seed corpora of the fuzz targets from the captured V2Ray streams.

usage: tests/fuzz/make-seeds.py   (from the repository root)
"""
import os
import struct

VEC = "tests/vectors/v2ray-4.34"
OUT = "tests/fuzz/corpus"
PREAMBLE = {"up": 24, "down": 12}


def frames(stream):
    i = 0
    while i + 2 <= len(stream):
        mlen = struct.unpack(">H", stream[i:i + 2])[0]
        j = i + 2 + mlen
        opt = stream[i + 5]
        if opt & 1:
            j += 2 + struct.unpack(">H", stream[j:j + 2])[0]
        yield stream[i:j]
        i = j


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def main():
    n = 0
    for scen in ("A-basic", "B-drain"):
        for conn in sorted(os.listdir(os.path.join(VEC, scen))):
            if not conn.endswith(".bin"):
                continue
            direction = "up" if ".up." in conn else "down"
            raw = open(os.path.join(VEC, scen, conn), "rb").read()[PREAMBLE[direction]:]
            role = b"\x01" if direction == "down" else b"\x00"  # receiver: server for down
            fl = list(frames(raw))
            # whole (short) streams, and the first 40 frames of long ones
            write("fuzz_mux", "%s-%s" % (scen, conn), role + b"".join(fl[:40]))
            for k, fr in enumerate(fl[:60]):
                write("fuzz_mux", "%s-%s-f%03d" % (scen, conn, k), role + fr)
                if fr[4] == 1 and fr[6] in (1, 2):  # New: address part as an addr seed
                    write("fuzz_addr", "%s-%s-f%03d" % (scen, conn, k), fr[7:2 + struct.unpack(">H", fr[:2])[0]])
                if struct.unpack(">H", fr[2:4])[0] == 1 and fr[5] & 1:  # control payloads
                    mlen = struct.unpack(">H", fr[:2])[0]
                    write("fuzz_control", "%s-%s-f%03d" % (scen, conn, k), fr[2 + mlen + 2:])
                n += 1
    # hand-made edge cases
    for name, data in {
        "meta0": b"\x01\x00\x00", "meta3": b"\x01\x00\x03\x00\x01\x02", "meta513": b"\x01\x02\x01",
        "keepalive": b"\x00\x00\x04\x00\x00\x04\x00",
        "dup-new": b"\x01" + bytes.fromhex("000c00020100010050017f000001") * 2,
    }.items():
        write("fuzz_mux", "hand-" + name, data)
    for name, data in {"drain": bytes.fromhex("0801"), "drain-random": bytes.fromhex("08019a0604deadbeef"),
                       "empty": b"", "varint10": bytes.fromhex("08ffffffffffffffffff01"),
                       "fixed": bytes.fromhex("0d0102030409010203040506070800")}.items():
        write("fuzz_control", "hand-" + name, data)
    for name, data in {"v6": bytes.fromhex("0035030000000000000000000000000000000001"),
                       "mapped": bytes.fromhex("005003" + "00000000000000000000ffff7f000001"),
                       "domain-ip": b"\x00\x50\x02\x09127.0.0.1", "empty-domain": b"\x00\x50\x02\x00"}.items():
        write("fuzz_addr", "hand-" + name, data)
    print("wrote seeds from %d frames" % n)


if __name__ == "__main__":
    main()
