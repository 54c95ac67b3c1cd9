"""vrev test / vrev run: V2Ray JSON configs as a user gives them, and their errors."""
import os
import signal
import socket
import subprocess
import time

from cliutil import ROOT, run

CONFIGS = os.path.join(ROOT, "tests", "vectors", "configs")


def test_reference_configs_are_valid(vrev):
    for name in ("portal.json", "bridge.json", "seed-portal.json", "seed-bridge.json"):
        r = run(vrev, "test", "-c", os.path.join(CONFIGS, name))
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Configuration OK.\n"
    # V2Ray's own spelling of the option
    r = run(vrev, "test", "-config", os.path.join(CONFIGS, "portal.json"))
    assert r.returncode == 0, r.stderr


def test_config_error_names_file_line_and_path(vrev, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  // a comment\n  "outbounds": [\n    { "protocol": "vmess",\n'
                   '      "settings": { "vnext": [ { "address": "127.0.0.1", "port": "x",\n'
                   '        "users": [ { "id": "27848739-7e62-4138-9fd3-098a63964b6b" } ] } ] } }\n'
                   '  ]\n}\n')
    r = run(vrev, "test", "-c", str(bad))
    assert r.returncode == 1
    assert "bad.json:5:" in r.stderr
    assert "outbounds[0].settings.vnext[0].port" in r.stderr


def test_legacy_vmess_refused(vrev, tmp_path):
    cfg = tmp_path / "legacy.json"
    cfg.write_text('{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": '
                   '"127.0.0.1", "port": 1, "users": [{"id": '
                   '"27848739-7e62-4138-9fd3-098a63964b6b", "alterId": 4}]}]}}]}')
    r = run(vrev, "test", "-c", str(cfg))
    assert r.returncode == 1
    assert "alterId" in r.stderr


def test_missing_file_and_usage(vrev, tmp_path):
    r = run(vrev, "run", "-c", str(tmp_path / "nope.json"))
    assert r.returncode == 1 and "nope.json" in r.stderr
    r = run(vrev, "run")
    assert r.returncode == 2 and "usage" in r.stderr
    r = run(vrev, "run", "-c", "x", "--log-level", "loud")
    assert r.returncode == 2 and "loud" in r.stderr


def test_busy_port_is_a_clear_error(vrev, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = tmp_path / "busy.json"
        cfg.write_text('{"inbounds": [{"tag": "in", "listen": "127.0.0.1", "port": %d, '
                       '"protocol": "dokodemo-door", "settings": {"address": "127.0.0.1", '
                       '"port": 1}}], "outbounds": [{"protocol": "freedom"}]}' % port)
        r = run(vrev, "run", "-c", str(cfg))
        assert r.returncode == 1
        assert "inbounds[0]" in r.stderr and "address already in use" in r.stderr


def test_run_stops_cleanly_on_sigterm(vrev, tmp_path):
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "run.json"
    cfg.write_text('{"inbounds": [{"listen": "127.0.0.1", "port": %d, "protocol": '
                   '"dokodemo-door", "settings": {"address": "127.0.0.1", "port": 9}}], '
                   '"outbounds": [{"protocol": "blackhole"}]}' % port)
    log = tmp_path / "run.log"
    with open(log, "w") as errf:
        p = subprocess.Popen([vrev, "run", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=errf)
    try:
        deadline = time.monotonic() + 10  # ready once it says so (signal handlers are set)
        while "started" not in log.read_text():
            assert p.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "vrev never said it started"
            time.sleep(0.02)
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # it listens
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        err = log.read_text()
        assert p.returncode == 0, err
        assert "SIGTERM received" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
