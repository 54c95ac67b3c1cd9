"""A connection flood from several local addresses, for tests/e2e/test_flood.py and
bench/bench.py (phase "attack"). Run as a script; it prints one JSON line of counts at the end.

  flood.py --port P [--host 127.0.0.1] [--rate 1000] [--seconds 10] [--sources 127.0.0.2-9]
           [--mode silent|garbage|trickle] [--every 0.5] [--max-open 3000] [--count N]

Each connection is opened at a steady --rate (spread over the sources in turn) and then held:
"silent" sends nothing, "garbage" sends 32 random bytes at once, "trickle" sends the start of
a TLS record and then one byte every --every seconds (a client that never finishes its TLS
handshake), and goes on after an end of stream from the server. A connection the server closes
(end of stream, or in "trickle" a reset or a send that fails) is closed here too and counted. At most --max-open are held at once (the oldest is dropped for a new one) and at most
--count are opened in all (0: no limit); everything stops after --seconds, bounded."""
import argparse
import collections
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux >= 4.2
TLS_START = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])


def sources(spec):
    """"127.0.0.2-9" -> ["127.0.0.2", ..., "127.0.0.9"]; or a comma-separated list."""
    if "-" in spec and "," not in spec:
        base, last = spec.rsplit("-", 1)
        prefix, first = base.rsplit(".", 1)
        return ["%s.%d" % (prefix, i) for i in range(int(first), int(last) + 1)]
    return spec.split(",")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Conn:
    __slots__ = ("sock", "sent")

    def __init__(self, sock):
        self.sock, self.sent = sock, 0


def run(host, port, rate, seconds, srcs, mode, every, max_open, count):
    raise_nofile()
    sel = selectors.DefaultSelector()
    held = collections.OrderedDict()  # fileno -> Conn, oldest first
    todo = collections.deque()  # (when, Conn): sends due, in time order
    stats = {"opened": 0, "failed": 0, "closed_by_server": 0, "dropped_here": 0,
             "max_held": 0}
    start = time.monotonic()
    end = start + seconds

    def close(fd, key):
        c = held.pop(fd)
        try:
            sel.unregister(c.sock)
        except KeyError:
            pass  # no longer read (trickle after an end of stream)
        c.sock.close()
        stats[key] += 1

    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = min(int((now - start) * rate) + 1, count or 1 << 62)
        while stats["opened"] + stats["failed"] < due:
            if len(held) >= max_open:
                close(next(iter(held)), "dropped_here")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            s.setblocking(False)
            try:
                s.bind((srcs[(stats["opened"] + stats["failed"]) % len(srcs)], 0))
                s.connect_ex((host, port))
            except OSError:
                s.close()
                stats["failed"] += 1
                continue
            c = Conn(s)
            held[s.fileno()] = c
            todo.append((now, c))
            sel.register(s, selectors.EVENT_READ, c)
            stats["opened"] += 1
        stats["max_held"] = max(stats["max_held"], len(held))
        for key, _ in sel.select(timeout=0.002):
            c = key.data
            try:
                data = c.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data and mode == "trickle":
                # a patient prober ignores an end of stream and trickles on into the half-open
                # connection: only an error (the socket reset or gone) ends it
                sel.unregister(c.sock)
            elif not data:
                close(c.sock.fileno(), "closed_by_server")
        # sends in time order: each connection's next send goes to the back of the queue
        while mode != "silent" and todo and todo[0][0] <= now:
            _, c = todo.popleft()
            fd = c.sock.fileno()
            if fd < 0 or held.get(fd) is not c:
                continue  # closed meanwhile
            if mode == "garbage":
                chunk = os.urandom(32)
            else:
                chunk = TLS_START[c.sent:c.sent + 1] if c.sent < len(TLS_START) else b"\x01"
            try:
                c.sent += c.sock.send(chunk)
                if mode == "trickle":
                    todo.append((now + every, c))
            except (BlockingIOError, InterruptedError):
                todo.append((now + 0.01, c))
            except OSError as e:
                if e.errno == errno.ENOTCONN:  # still connecting
                    todo.append((now + 0.01, c))
                else:
                    close(fd, "closed_by_server")
    stats["held_at_end"] = len(held)
    for c in held.values():
        c.sock.close()
    stats["seconds"] = round(time.monotonic() - start, 2)
    return stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sources", default="127.0.0.2-9")
    ap.add_argument("--mode", choices=("silent", "garbage", "trickle"), default="garbage")
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--max-open", type=int, default=3000)
    ap.add_argument("--count", type=int, default=0)
    a = ap.parse_args()
    if a.seconds > 120 or a.rate > 20000:
        sys.exit("flood.py: at most 120 s and 20,000 connections/s")
    print(json.dumps(run(a.host, a.port, a.rate, a.seconds, sources(a.sources), a.mode,
                         a.every, a.max_open, a.count)), flush=True)


if __name__ == "__main__":
    main()
