"""A TCP service for slow-reader tests (tests/e2e/test_slow_reader.py) and bench/bench.py:
a line "N\\n" is answered with N bytes of a known pattern, then the end; "sink S\\n" makes it
read nothing for S seconds, then read all; an HTTP GET gets a small 200 response (readiness
checks). A thread per connection, all ended by close()."""
import socket
import threading

BLOCK = bytes(range(256)) * 256  # 64 KiB; byte i of a stream is i % 256
BODY = b"x" * 1024


def pattern_ok(data, offset):
    """Whether `data` continues the pattern at stream offset `offset`."""
    start = offset % len(BLOCK)
    expect = (BLOCK[start:] + BLOCK * (len(data) // len(BLOCK) + 1))[:len(data)]
    return data == expect


class StreamServer:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        try:
            line = b""
            while not line.endswith(b"\n"):
                c = conn.recv(1)
                if not c:
                    return
                line += c
            if line.startswith(b"GET "):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
            elif line.startswith(b"sink "):
                self.sink(conn, float(line.split()[1]))
            else:
                self.send(conn, int(line))
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def send(self, conn, left):
        while left > 0 and not self.stopping.is_set():
            n = min(left, len(BLOCK))
            conn.sendall(BLOCK[:n])
            left -= n

    def sink(self, conn, seconds):
        self.stopping.wait(seconds)
        conn.settimeout(10)
        buf = bytearray(65536)
        while conn.recv_into(buf):
            pass

    def close(self):
        self.stopping.set()
        self.sock.close()
