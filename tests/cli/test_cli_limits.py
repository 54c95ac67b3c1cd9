"""vrev limits, --limit NAME=VALUE on portal/bridge/run, and the warning for --security none
without --tls."""
import os
import socket
import subprocess
import threading
import time

import pytest

from cliutil import run

UUID = "5783a3e7-e373-51cd-8642-c83782b807c5"
NAMES = ["preauthPerInbound", "preauthPerSource", "connsPerListener", "connsPerSource",
         "sessionRate", "sessionBurst", "dialsPerTunnel", "tunnelsPerBridge", "tunnelBuffer",
         "udpClientBytes", "udpInboundBytes", "bufferedTotal"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_limits_table(vrev):
    r = run(vrev, "limits")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DEFAULT", "RANGE", "MEANING"]
    rows = {l.split()[0]: l.split() for l in lines[1:1 + len(NAMES)]}
    assert list(rows) == NAMES
    assert rows["sessionRate"][1:3] == ["10000", "1..10000000"]
    assert rows["tunnelBuffer"][1:3] == ["67108864", "1048576..4294967295"]
    assert "token bucket" in " ".join(rows["sessionRate"][3:])
    assert "--limit NAME=VALUE" in r.stdout and '"vrev": {"limits"' in r.stdout


def test_readme_names_every_limit_with_its_default(vrev):
    """The README's Limits table lists every limit with the default the library has."""
    r = run(vrev, "limits")
    assert r.returncode == 0, r.stderr
    have = {l.split()[0]: l.split()[1] for l in r.stdout.splitlines()[1:1 + len(NAMES)]}
    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    with open(readme) as f:
        text = f.read()
    section = text.split("### Limits", 1)[1].split("\n## ", 1)[0]
    doc = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`") and cells[0].endswith("`"):
            doc[cells[0].strip("`")] = cells[1]
    assert doc == have


@pytest.mark.parametrize("cmd", [["portal", "--listen", "127.0.0.1:0", "--public",
                                  "127.0.0.1:0", "--id", UUID],
                                 ["bridge", "--portal", "127.0.0.1:1", "--id", UUID, "--to",
                                  "127.0.0.1:9"],
                                 ["run", "-c", "nonexistent.json"]])
def test_bad_limit_is_a_clear_error(vrev, cmd):
    r = run(vrev, *cmd, "--limit", "sessionsRate=5")
    assert r.returncode == 2
    assert "--limit sessionsRate=5: no limit is named 'sessionsRate'" in r.stderr
    assert ", ".join(NAMES) in r.stderr
    r = run(vrev, *cmd, "--limit", "sessionRate=0")
    assert r.returncode == 2
    assert "--limit sessionRate=0: sessionRate must be a whole number from 1 to 10000000" \
        in r.stderr
    for bad in ("sessionRate=", "sessionRate=5x", "sessionRate", "=5", "tunnelBuffer=-1m"):
        r = run(vrev, *cmd, "--limit", bad)
        assert r.returncode == 2 and "--limit" in r.stderr, (bad, r.stderr)
    r = run(vrev, *cmd, "--limit", "tunnelBuffer=16777216g")
    assert r.returncode == 2 and "from 1048576 to 4294967295" in r.stderr


class Echo:
    """A TCP echo service on 127.0.0.1 (a thread per connection, all daemons)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(c,), daemon=True).start()

    @staticmethod
    def echo(c):
        with c:
            try:
                while True:
                    data = c.recv(4096)
                    if not data:
                        return
                    c.sendall(data)
            except OSError:
                return


def echoed(port, results, i):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"ping")
            results[i] = s.recv(16) == b"ping"
    except OSError:
        results[i] = False


def burst(port, n):
    """n clients at once through the tunnel; how many got their echo."""
    results = [False] * n
    threads = [threading.Thread(target=echoed, args=(port, results, i)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return sum(results)


def tunnel(vrev, tmp_path, bridge_args):
    """A CLI portal and bridge to an echo service; returns (public port, processes)."""
    echo = Echo()
    tport, pport = free_port(), free_port()
    procs = []
    for name, argv in (("portal", [vrev, "portal", "--listen", "127.0.0.1:%d" % tport,
                                   "--public", "127.0.0.1:%d" % pport, "--id", UUID]),
                       ("bridge", [vrev, "bridge", "--portal", "127.0.0.1:%d" % tport,
                                   "--id", UUID, "--to", "127.0.0.1:%d" % echo.port]
                        + bridge_args)):
        log = open(tmp_path / (name + ".log"), "w")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL))
    end = time.monotonic() + 15
    while time.monotonic() < end and burst(pport, 1) != 1:
        time.sleep(0.1)
    return pport, procs, echo


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


@pytest.mark.parametrize("limited", [True, False])
def test_limit_reaches_the_bridge(vrev, tmp_path, limited):
    """--limit sessionBurst=2 --limit sessionRate=1 on the bridge: of 12 sessions opened at
    once only the bucket's few get through (without the options: all 12)."""
    args = ["--limit", "sessionBurst=2", "--limit", "sessionRate=1"] if limited else []
    pport, procs, echo = tunnel(vrev, tmp_path, args)
    try:
        time.sleep(1.5)  # the bucket refills after the readiness probe
        got = burst(pport, 12)
    finally:
        stop(procs)
        echo.sock.close()
    if limited:
        assert 1 <= got <= 4, got
    else:
        assert got == 12


def started_log(tmp_path, argv, marker, timeout=10):
    """Start argv, wait for `marker` in its output (or timeout), stop it; the output."""
    path = tmp_path / "out.log"
    with open(path, "w") as log:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    try:
        end = time.monotonic() + timeout
        while marker not in path.read_text() and time.monotonic() < end and p.poll() is None:
            time.sleep(0.05)
    finally:
        stop([p])
    return path.read_text()


WARNING = "--security none without --tls: the tunnel is neither encrypted nor authenticated"


def test_security_none_warns_without_tls(vrev, tmp_path):
    bridge = [vrev, "bridge", "--portal", "127.0.0.1:1", "--id", UUID, "--to", "127.0.0.1:9"]
    text = started_log(tmp_path, bridge + ["--security", "none"], "started")
    assert text.count(WARNING) == 1, text
    portal = [vrev, "portal", "--listen", "127.0.0.1:0", "--public", "127.0.0.1:0", "--id", UUID,
              "--security", "none"]
    text = started_log(tmp_path, portal, "tunnel on port")
    assert text.count(WARNING) == 1, text
    # with TLS, or another cipher: no warning
    text = started_log(tmp_path, bridge + ["--security", "none", "--tls", "--insecure"], "started")
    assert "started" in text and WARNING not in text, text
    text = started_log(tmp_path, bridge + ["--security", "chacha20-poly1305"], "started")
    assert "started" in text and WARNING not in text, text
