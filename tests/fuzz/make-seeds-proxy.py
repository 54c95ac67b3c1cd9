#!/usr/bin/env python3
"""Write the seed corpora of fuzz_vless and fuzz_socks5 (hand-made valid and malformed inputs,
built from the WIRE-SPEC §10.10 vectors).

usage: tests/fuzz/make-seeds-proxy.py   (from the repository root)

Byte 0 of every input selects what the target parses (see the targets' header comments); the
rest is the message.
"""
import os

OUT = "tests/fuzz/corpus"
UUID = bytes.fromhex("278487397e6241389fd3098a63964b6b")
TEST_DOMAIN = b"\x0etest.v2fly.org"
MUX_NEW = bytes.fromhex("000c000101000100500127000001")  # a Mux.Cool New frame as payload


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def vless_seeds():
    req = b"\x00" + UUID
    seeds = {  # byte 0: bit 0 = response, the other bits the split seed
        "req-vector": b"\x00" + req + b"\x00\x01\x00\x00\x02" + TEST_DOMAIN,
        "req-vector-payload": b"\x02" + req + b"\x00\x01\x00\x00\x02" + TEST_DOMAIN + MUX_NEW,
        "req-mux": b"\x04" + req + b"\x00\x03" + MUX_NEW,
        "req-udp-v4": b"\x06" + req + b"\x00\x02\x00\x35\x01\x01\x01\x01\x01",
        "req-v6": b"\x08" + req + b"\x00\x01\x01\xbb\x03" + bytes(15) + b"\x01",
        "req-mapped-v6": b"\x0a" + req + b"\x00\x01\x01\xbb\x03" + bytes(10) + b"\xff\xff\x7f\x00\x00\x01",
        "req-ip-domain": b"\x0c" + req + b"\x00\x01\x00\x50\x02\x09127.0.0.1",
        "req-flow": b"\x0e" + req + b"\x12\x0a\x10xtls-rprx-direct\x01\x00\x50\x02\x0bexample.com",
        "req-addons-unknown": b"\x10" + req + bytes.fromhex("0c 1203010203 18ff01 2501020304 03"),
        "req-bad-version": b"\x00\x01" + UUID + b"\x00\x03",
        "req-bad-user": b"\x00\x00" + UUID[:15] + b"\x6c\x00\x03",
        "req-bad-command": b"\x00" + req + b"\x00\x04",
        "req-addons-overrun": b"\x00" + req + b"\x03\x0a\x05\x41\x03",
        "req-addons-group": b"\x00" + req + b"\x02\x0b\x0c\x03",
        "req-addons-long": b"\x00" + req + b"\xc8\x0a\x01\x41",
        "req-empty-domain": b"\x00" + req + b"\x00\x01\x00\x50\x02\x00",
        "req-bad-domain": b"\x00" + req + b"\x00\x01\x00\x50\x02\x03a/b",
        "req-addr-type": b"\x00" + req + b"\x00\x01\x00\x50\x04\x7f\x00\x00\x01",
        "resp-4.34": b"\x01\x00\x00",
        "resp-payload": b"\x03\x00\x00" + MUX_NEW,
        "resp-flow": b"\x05\x00\x06\x0a\x04xtls",
        "resp-bad-version": b"\x01\x01\x00",
        "resp-bad-addons": b"\x01\x00\x02\x0a\x05",
    }
    for name, data in seeds.items():
        write("fuzz_vless", name, data)
    return len(seeds)


def socks5_seeds():
    greeting, auth, request, method, status, reply, udp = range(7)  # byte 0, low 3 bits
    cap_request = bytes.fromhex("05010003") + TEST_DOMAIN + b"\x00\x00"
    seeds = {
        "greeting-4.34": bytes([greeting]) + bytes.fromhex("050100"),
        "greeting-3": bytes([greeting | 8]) + bytes.fromhex("0503000102"),
        "greeting-none": bytes([greeting]) + bytes.fromhex("0500"),
        "greeting-socks4": bytes([greeting]) + bytes.fromhex("0401005001020304 00"),
        "auth": bytes([auth]) + b"\x01\x04user\x04pass",
        "auth-empty": bytes([auth | 8]) + b"\x01\x00\x00",
        "auth-bad-version": bytes([auth]) + b"\x05\x04user\x04pass",
        "request-4.34": bytes([request]) + cap_request + MUX_NEW,
        "request-v4": bytes([request | 8]) + bytes.fromhex("050100010102030400 50"),
        "request-v6": bytes([request | 16]) + bytes.fromhex("05010004") + bytes(15) + b"\x01\x01\xbb",
        "request-udp": bytes([request]) + bytes.fromhex("05030001000000000000"),
        "request-tor": bytes([request]) + bytes.fromhex("05f0000301610000"),
        "request-ip-domain": bytes([request]) + b"\x05\x01\x00\x03\x0810.0.0.1\x00\x50",
        "request-bad-command": bytes([request]) + bytes.fromhex("0509000101020304 0050"),
        "request-atyp2": bytes([request]) + bytes.fromhex("05010002") + b"\x0bexample.com\x00\x50",
        "request-empty-domain": bytes([request]) + bytes.fromhex("050100030000 50"),
        "request-bad-domain": bytes([request]) + b"\x05\x01\x00\x03\x03a b\x00\x50",
        "method-4.34": bytes([method]) + bytes.fromhex("0500"),
        "method-none": bytes([method]) + bytes.fromhex("05ff"),
        "status-ok": bytes([status]) + bytes.fromhex("0100"),
        "status-fail": bytes([status]) + bytes.fromhex("0101"),
        "reply-4.34": bytes([reply]) + bytes.fromhex("050000017f0000012800") + MUX_NEW,
        "reply-refused": bytes([reply]) + bytes.fromhex("05050001000000000000"),
        "reply-domain": bytes([reply | 8]) + b"\x05\x00\x00\x03\x05proxy\x04\x38",
        "udp-v4": bytes([udp]) + bytes.fromhex("000000010101010100 35") + b"abc",
        "udp-domain": bytes([udp]) + b"\x00\x00\x00\x03\x0bdns.example\x00\x35",
        "udp-fragment": bytes([udp]) + bytes.fromhex("000001010101010100 35") + b"abc",
        "udp-truncated": bytes([udp]) + bytes.fromhex("0000000301"),
    }
    for name, data in seeds.items():
        write("fuzz_socks5", name, data)
    return len(seeds)


if __name__ == "__main__":
    print("wrote %d vless and %d socks5 seeds" % (vless_seeds(), socks5_seeds()))
