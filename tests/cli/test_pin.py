"""vrev bridge --pin sha256:...: the portal's TLS certificate chain pinned (V2Ray's
pinnedPeerCertificateChainSha256). Test certificates: tests/vectors/tls."""
import os
import socket
import subprocess
import time

from cliutil import ROOT
from test_cli_limits import Echo, burst, free_port, stop

UUID = "5783a3e7-e373-51cd-8642-c83782b807c5"
TLS = os.path.join(ROOT, "tests", "vectors", "tls")
# sha256 of server.crt's DER (Python: hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)))
PIN = "LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2w="
PIN_HEX = "2d1dbb4b0efe544236bf0e4da7fab584c2b89e3c92688292f54228f9d9c3b36c"
OTHER = "QSVutuBdZ1kNMaU4rLEnd4YMImYmLPqD7iWmF1yl6mQ="  # self.crt's


def run_pair(vrev, tmp_path, bridge_args):
    echo = Echo()
    tport, pport = free_port(), free_port()
    logs = {}
    procs = []
    for name, argv in (("portal", [vrev, "portal", "--listen", "127.0.0.1:%d" % tport,
                                   "--public", "127.0.0.1:%d" % pport, "--id", UUID, "--tls",
                                   "--cert", os.path.join(TLS, "server.crt"),
                                   "--key", os.path.join(TLS, "server.key")]),
                       ("bridge", [vrev, "bridge", "--portal", "localhost:%d" % tport,
                                   "--id", UUID, "--to", "127.0.0.1:%d" % echo.port, "--tls"]
                        + bridge_args)):
        logs[name] = tmp_path / (name + ".log")
        with open(logs[name], "w") as log:
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
    try:
        ok = False
        end = time.monotonic() + 8
        while time.monotonic() < end and not ok:
            ok = burst(pport, 1) == 1
            if not ok:
                time.sleep(0.2)
    finally:
        stop(procs)
        echo.sock.close()
    return ok, logs["bridge"].read_text()


def test_matching_pin_connects(vrev, tmp_path):
    ok, log = run_pair(vrev, tmp_path, ["--ca", os.path.join(TLS, "ca.crt"),
                                        "--pin", "sha256:" + OTHER, "--pin", "sha256:" + PIN])
    assert ok, log
    ok, log = run_pair(vrev, tmp_path, ["--insecure", "--pin", "sha256:" + PIN_HEX])
    assert ok, log


def test_wrong_pin_fails_clearly(vrev, tmp_path):
    ok, log = run_pair(vrev, tmp_path, ["--ca", os.path.join(TLS, "ca.crt"),
                                        "--pin", "sha256:" + OTHER])
    assert not ok
    assert ("certificate pin mismatch: the server's chain (1 certificate) is sha256:" + PIN) \
        in log, log
