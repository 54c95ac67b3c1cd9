"""The vrev program wipes the configuration's secrets before it frees them: the text it read,
and everything jansson frees (its tree and lexer buffers), besides libvrev's own copies.

A preloaded free() (freescan.c) counts the freed blocks that still hold a secret of the file.
"""
import os
import subprocess

import pytest

from cliutil import ROOT, run

# The secret is the UUID's tail: jansson's lexer reuses one buffer for every token, so a
# later short token overwrites only the start of the UUID's text there.
UUID = "0c3e3a8a-4e1f-4a8b-9d61-5f2d7c9e0b1a"
TAIL = UUID[12:]


@pytest.fixture(scope="module")
def freescan(tmp_path_factory):
    if os.environ.get("VREV_SAN_FLAGS"):
        pytest.skip("a sanitizer replaces malloc and free: the preload cannot look at blocks")
    out = tmp_path_factory.mktemp("freescan") / "freescan.so"
    cc = os.environ.get("VREV_CC", "cc")
    r = run(cc, "-shared", "-fPIC", "-O1", "-o", str(out),
            os.path.join(ROOT, "tests", "cli", "freescan.c"))
    assert r.returncode == 0, r.stderr
    return str(out)


def freed_with_secret(vrev, freescan, cfg):
    env = dict(os.environ, LD_PRELOAD=freescan, FREESCAN_SECRET=TAIL)
    r = subprocess.run([vrev, "test", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("freescan: ")]
    assert len(lines) == 1, r.stderr
    return int(lines[0].split()[1])


def test_config_secrets_are_wiped(vrev, freescan, tmp_path):
    cfg = tmp_path / "bridge.json"
    # the id last: no longer token follows it through jansson's lexer buffer
    cfg.write_text('{"reverse": {"bridges": [{"tag": "b", "domain": "t.example"}]},\n'
                   ' "outbounds": [{"tag": "x", "protocol": "blackhole"}, {"protocol": "vmess",'
                   ' "settings": {"vnext": [{"address": "127.0.0.1", "port": 1, "users": '
                   '[{"alterId": 0, "id": "%s"}]}]}}]}\n' % UUID)
    assert freed_with_secret(vrev, freescan, cfg) == 0
