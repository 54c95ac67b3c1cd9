"""vrev mux-dump, version and help: the CLI as a user runs it."""
import os
import re
import shutil

from cliutil import ROOT, run

LINE = re.compile(
    r"^sid=(\d+) status=(New|Keep|End|KeepAlive) opt=0x([0-9a-f]{2})"
    r"(?: net=(tcp|udp) target=(\S+):(\d+))?(?: len=(\d+))?(?: control=(ACTIVE|DRAIN))?$")


def listing(path, direction):
    """Frames of one direction from the capture's independent decoding (decoded.txt)."""
    frames, section = [], False
    for line in open(path):
        if line.startswith("==="):
            section = direction in line
        elif section and line.startswith("off=") and "metalen=" in line:
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv and not kv.startswith("t="))
            frames.append(f)
    return frames


def test_dump_basic_down_matches_capture(vrev, vectors):
    r = run(vrev, "mux-dump", "--skip", "12", os.path.join(vectors, "A-basic/conn1.down.bin"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    want = listing(os.path.join(vectors, "A-basic/conn1.decoded.txt"), "[down")
    assert len(lines) == len(want)
    for line, w in zip(lines, want):
        m = LINE.match(line)
        assert m, line
        sid, status, opt, net, host, port, length, control = m.groups()
        assert int(sid) == int(w["sid"])
        assert status == w["status"].split("(")[1].rstrip(")")
        assert int(opt, 16) == int(w["opt"], 16)
        if status == "New":
            assert net == w["net"].split("(")[1].rstrip(")")
            assert host == w["addr"] and int(port) == int(w["port"])
        assert (length is not None) == ("datalen" in w)
        if length is not None:
            assert int(length) == int(w["datalen"])
        # every payload of the control session (sid 1) is decoded as a Control message
        assert (control is not None) == (sid == "1" and length is not None)
    assert lines[0] == ("sid=1 status=New opt=0x01 net=udp "
                        "target=reverse.internal.v2ray.com:0 len=30 control=ACTIVE")
    assert lines[1] == "sid=2 status=New opt=0x01 net=tcp target=127.0.0.1:18000 len=88"
    assert lines[2] == "sid=2 status=End opt=0x00"


def test_dump_drain_and_bridge_side(vrev, vectors):
    r = run(vrev, "mux-dump", "--from-client", "--skip", "12",
            os.path.join(vectors, "B-drain/conn1.down.bin"))
    assert r.returncode == 0, r.stderr
    assert "sid=1 status=Keep opt=0x01 len=51 control=DRAIN" in r.stdout.splitlines()
    assert "sid=1 status=End opt=0x00" in r.stdout.splitlines()
    assert "sid=302 status=New opt=0x01 net=tcp target=127.0.0.1:18000 len=88" in r.stdout
    r = run(vrev, "mux-dump", "--from-server", "--skip", "24",
            os.path.join(vectors, "A-basic/conn1.up.bin"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "sid=2 status=Keep opt=0x01 len=270", "sid=2 status=End opt=0x02",
        "sid=3 status=Keep opt=0x01 len=270", "sid=3 status=End opt=0x02",
        "sid=4 status=Keep opt=0x01 len=10"]


def test_dump_ipv6_in_brackets(vrev, tmp_path):
    f = tmp_path / "v6.bin"
    f.write_bytes(bytes.fromhex("0018 0004 01 00 02 0035 03 00000000000000000000000000000001"
                                .replace(" ", "")))
    r = run(vrev, "mux-dump", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "sid=4 status=New opt=0x00 net=udp target=[::1]:53\n"


def test_dump_corrupted_copy_fails(vrev, vectors, tmp_path):
    data = bytearray(open(os.path.join(vectors, "A-basic/conn1.down.bin"), "rb").read())
    # frame 2 (sid 2 New) starts at offset 81: give it an unknown address type
    assert data[81:84] == bytes.fromhex("000c00")
    data[81 + 9] = 0x07
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    r = run(vrev, "mux-dump", "--skip", "12", str(bad))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith("sid=1 status=New")
    assert lines[-1] == "error: unknown address type at offset 81"
    # metaLen past 512
    data[81:83] = b"\x02\x01"
    bad.write_bytes(bytes(data))
    r = run(vrev, "mux-dump", "--skip", "12", str(bad))
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == \
        "error: mux metadata length out of range (4..512) at offset 81"


def test_dump_truncated_stream(vrev, vectors, tmp_path):
    data = open(os.path.join(vectors, "A-basic/conn1.down.bin"), "rb").read()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:100])  # inside the New frame of sid 2 (offset 81)
    r = run(vrev, "mux-dump", "--skip", "12", str(cut))
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "error: input truncated at offset 81"


def test_dump_usage_errors(vrev, tmp_path):
    r = run(vrev, "mux-dump")
    assert r.returncode == 2 and "usage" in r.stderr
    r = run(vrev, "mux-dump", str(tmp_path / "missing.bin"))
    assert r.returncode == 2 and "missing.bin" in r.stderr
    r = run(vrev, "mux-dump", "--bogus", "x")
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = run(vrev, "mux-dump", "--help")
    assert r.returncode == 0 and "--from-client" in r.stdout
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    r = run(vrev, "mux-dump", str(empty))
    assert r.returncode == 0 and r.stdout == ""


def test_version_and_help(vrev):
    r = run(vrev, "version")
    assert r.returncode == 0
    hdr = open(os.path.join(ROOT, "include/vrev/version.h")).read()
    ver = ".".join(re.search(r"VREV_VERSION_%s (\d+)" % k, hdr).group(1)
                   for k in ("MAJOR", "MINOR", "PATCH"))
    assert r.stdout.startswith("vrev %s " % ver)
    backend = os.environ.get("CRYPTO")
    if backend:
        assert "crypto %s" % backend in r.stdout
    r = run(vrev, "--help")
    assert r.returncode == 0 and "mux-dump" in r.stdout
    r = run(vrev, "frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr
