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
