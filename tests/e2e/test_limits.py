"""Running out of file descriptors: vrev stops accepting for a moment instead of spinning on
EMFILE, and serves again once descriptors are free."""
import json
import os
import resource
import socket
import subprocess
import time

from harness import free_port, http_get, port_open, wait_until


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def test_emfile_pauses_accepting(procs, backend, tmp_path):
    port = free_port()
    cfg = {"inbounds": [{"tag": "in", "listen": "127.0.0.1", "port": port,
                         "protocol": "dokodemo-door",
                         "settings": {"address": "127.0.0.1", "port": backend}}],
           "outbounds": [{"protocol": "freedom"}]}
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(cfg))
    log = open(tmp_path / "vrev.log", "w")
    p = subprocess.Popen([procs.vrev_bin, "run", "-c", str(path), "--log-level", "warning"],
                         stdout=log, stderr=subprocess.STDOUT,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48)))
    procs.procs.append(p)
    p.log_path = tmp_path / "vrev.log"
    try:
        assert wait_until(lambda: port_open(port), 10)
        held = []
        for _ in range(60):  # each needs two descriptors in vrev: far more than it has
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(s)
        time.sleep(0.5)
        before = cpu_seconds(p.pid)
        time.sleep(2)
        spent = cpu_seconds(p.pid) - before
        assert spent < 0.5, "vrev used %.2f s of CPU in 2 s while out of descriptors" % spent
        assert p.poll() is None
        assert "pausing accepts" in procs.log(p)
        for s in held:
            s.close()
        # descriptors come back: the waiting connections are served, and new ones too
        assert wait_until(lambda: http_get(port, timeout=2)[1] == b"hello from the backend\n", 10)
    finally:
        procs.stop(p)


def rss_peak_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_slow_reader_memory_is_bounded(procs, backend):
    """A client that stops reading a 64 MiB download: neither VMess end buffers it all (the
    relay's high-water marks reach through the VMess layer to the socket)."""
    from harness import UUID
    server_port, client_port = free_port(), free_port()
    procs.start("vrev", "server", {
        "inbounds": [{"listen": "127.0.0.1", "port": server_port, "protocol": "vmess",
                      "settings": {"clients": [{"id": UUID, "alterId": 0}]}}],
        "outbounds": [{"protocol": "freedom"}]})
    assert wait_until(lambda: port_open(server_port), 10)
    client = procs.start("vrev", "client", {
        "inbounds": [{"listen": "127.0.0.1", "port": client_port, "protocol": "dokodemo-door",
                      "settings": {"address": "127.0.0.1", "port": backend}}],
        "outbounds": [{"protocol": "vmess", "settings": {"vnext": [
            {"address": "127.0.0.1", "port": server_port,
             "users": [{"id": UUID, "alterId": 0}]}]}}]})
    assert wait_until(lambda: port_open(client_port), 10)
    server = procs.procs[0]
    size = 64 << 20
    with socket.create_connection(("127.0.0.1", client_port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
        got = len(s.recv(65536))
        time.sleep(3)  # stalled: the tunnel fills up to its limits and stops
        peaks = (rss_peak_kib(server.pid), rss_peak_kib(client.pid))
        while got < size:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    assert got >= size
    # Under ASan freed memory sits in quarantine and shadow memory doubles the rest, so the
    # bound is looser there; buffering the whole download (the bug this guards against) gives
    # over 80 MB in a plain build and far more under ASan.
    limit = 96 if os.environ.get("VREV_SAN_FLAGS") else 24
    assert max(peaks) < limit * 1024, "peak RSS %s KiB while the reader was stalled" % (peaks,)
