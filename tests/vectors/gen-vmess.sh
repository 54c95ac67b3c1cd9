#!/usr/bin/env bash
# Capture real VMess AEAD traffic from the reference peer (Debian's v2ray 4.34) into
# tests/vectors/vmess/, for tests/unit/test_vmess_peer.c.
#
# 1. Client side: v2ray runs a dokodemo-door inbound (fixed target) and a VMess outbound
#    (alterId 0, fixed UUID) pointed at a recorder. We send a known plaintext through the
#    inbound, half-close, and save every byte the VMess client wrote:
#      <security>.bin   raw request bytes (auth ID, header, body chunks, end chunk)
#      <security>.json  uuid, unix time of the capture, target, plaintext, options byte seen
#    for security aes-128-gcm, chacha20-poly1305 and none (plus udp-aes-128-gcm.*, UDP).
# 2. Server side (needs a built libvrev.a: VREV_BUILD=build/dir, default build/h-vmess): a
#    request made by libvrev's own client codec (tests/vectors/vmess-mkreq.c) goes to a v2ray
#    VMess inbound -> freedom -> a local echo server; we save v2ray's response bytes:
#      server-<security>.req.bin / .resp.bin / .json
#
# Only bash and python3's standard library; only 127.0.0.1, ephemeral ports; every process
# started here is bounded (30 s timer, parent-death signal, `timeout` on the script) and killed
# by its PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${VMESS_OUT:-$here/vmess}
v2ray=${V2RAY:-/usr/bin/v2ray}
build=${VREV_BUILD:-$root/build/h-vmess}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkreq=""
if [ -f "$build/libvrev.a" ]; then
    crypto_libs=$(pkg-config --libs libssl libcrypto 2>/dev/null || echo -lssl -lcrypto)
    if nm "$build/libvrev.a" 2>/dev/null | grep -q mbedtls_; then
        crypto_libs="-lmbedtls -lmbedx509 -lmbedcrypto"
    fi
    if cc -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$root/lib" \
        -o "$work/vmess-mkreq" "$here/vmess-mkreq.c" "$build/libvrev.a" $crypto_libs \
        $(pkg-config --libs libevent jansson 2>/dev/null || echo -levent -ljansson); then
        mkreq="$work/vmess-mkreq"
    fi
fi
[ -n "$mkreq" ] || echo "gen-vmess: no $build/libvrev.a: skipping the server-side capture" >&2

V2RAY="$v2ray" WORK="$work" OUT="$out" MKREQ="$mkreq" timeout 120 python3 - <<'PY'
import ctypes, json, os, signal, socket, subprocess, threading, time

V2RAY, WORK, OUT, MKREQ = (os.environ[k] for k in ("V2RAY", "WORK", "OUT", "MKREQ"))
UUID = "27848739-7e62-4138-9fd3-098a63964b6b"
TARGET_HOST, TARGET_PORT = "target.vrev.test", 8443
PLAINTEXT = b"GET /vrev-vmess-capture HTTP/1.1\r\nHost: target.vrev.test\r\n\r\n" + bytes(range(256)) * 12


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def die_with_parent():
    # PR_SET_PDEATHSIG(SIGKILL): v2ray dies with this script, whatever happens to it.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def start_v2ray(cfg, name):
    path = os.path.join(WORK, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    log = open(os.path.join(WORK, name + ".log"), "wb")
    # v2ray itself is the child (not a `timeout` wrapper, whose death would orphan it), so
    # its PID is the one we kill; a timer bounds it to 30 s in any case.
    proc = subprocess.Popen([V2RAY, "-config", path], stdout=log, stderr=log,
                            preexec_fn=die_with_parent)
    proc.bound = threading.Timer(30, proc.kill)
    proc.bound.daemon = True
    proc.bound.start()
    return proc


def stop(proc):
    proc.bound.cancel()
    if proc.poll() is None:
        proc.kill()  # by PID
    proc.wait(timeout=10)


def wait_started(proc, name):
    # Not by connecting: a probe connection to the dokodemo port would itself be tunnelled
    # to the recorder. v2ray logs this line once every listener is up.
    log = os.path.join(WORK, name + ".log")
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit("v2ray exited early: " + open(log).read())
        if b"V2Ray 4.34.0 started" in open(log, "rb").read():
            return
        time.sleep(0.05)
    raise SystemExit("v2ray did not start")


def recv_all(conn, idle):
    conn.settimeout(idle)
    data = b""
    while True:
        try:
            b = conn.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        data += b
    return data


def capture_client(security, network):
    rec = socket.socket()
    rec.bind(("127.0.0.1", 0))
    rec.listen(1)
    rec.settimeout(10)
    rport = rec.getsockname()[1]
    iport = free_port()
    cfg = {
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": iport, "protocol": "dokodemo-door",
                      "settings": {"address": TARGET_HOST, "port": TARGET_PORT,
                                   "network": network}}],
        "outbounds": [{"protocol": "vmess", "settings": {"vnext": [{
            "address": "127.0.0.1", "port": rport,
            "users": [{"id": UUID, "alterId": 0, "security": security}]}]}}],
    }
    name = "client-" + security + "-" + network
    proc = start_v2ray(cfg, name)
    try:
        wait_started(proc, name)
        if network == "tcp":
            c = socket.create_connection(("127.0.0.1", iport), timeout=5)
            c.sendall(PLAINTEXT)
            # A half-close right away makes 4.34's dokodemo drop the connection before the
            # VMess outbound has written anything; give it time to dial and flush first.
            time.sleep(0.5)
            c.shutdown(socket.SHUT_WR)
            payload = PLAINTEXT
        else:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            payload = PLAINTEXT[:200]
            c.sendto(payload, ("127.0.0.1", iport))
        t0 = int(time.time())  # the auth ID's own timestamp may be a second or so earlier
        conn, _ = rec.accept()
        data = recv_all(conn, 1.5)
        t1 = int(time.time())
        conn.close()
        c.close()
    finally:
        stop(proc)
        rec.close()
    name = security if network == "tcp" else "udp-" + security
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)
    meta = {"uuid": UUID, "time": t0, "time_after": t1, "security": security,
            "network": network, "target_host": TARGET_HOST, "target_port": TARGET_PORT,
            "plaintext_hex": payload.hex(), "bytes": len(data),
            "peer": "Debian v2ray 4.34.0+ds-1 (/usr/bin/v2ray), VMess outbound, alterId 0",
            "note": "raw bytes the v2ray VMess client wrote; the header options byte is only "
                    "visible after decryption (see test_vmess_peer.c)"}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("gen-vmess: %s: %d bytes" % (name, len(data)))


def echo_server(expect):
    # Echo `expect` bytes, then close: v2ray then ends the response with its end-of-stream
    # chunk. (Waiting for an idle timeout instead lets 4.34's 1 s downlinkOnly timer fire
    # first, and v2ray just closes.)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)

    def run():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conn.settimeout(5.0)
        got = 0
        try:
            while got < expect:
                b = conn.recv(65536)
                if not b:
                    break
                got += len(b)
                conn.sendall(b)
        except OSError:
            pass
        conn.close()
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return srv.getsockname()[1], t


def capture_server(security):
    payload = b"echo me through a v2ray 4.34 VMess inbound, security " + security.encode()
    eport, t = echo_server(len(payload))
    vport = free_port()
    cfg = {
        "log": {"loglevel": "warning"},
        "inbounds": [{"listen": "127.0.0.1", "port": vport, "protocol": "vmess",
                      "settings": {"clients": [{"id": UUID, "alterId": 0}]}}],
        "outbounds": [{"protocol": "freedom"}],
    }
    proc = start_v2ray(cfg, "server-" + security)
    try:
        wait_started(proc, "server-" + security)
        now = int(time.time())
        req = subprocess.run([MKREQ, UUID, str(now), security, str(eport), payload.hex()],
                             check=True, capture_output=True, timeout=10).stdout
        req = bytes.fromhex(req.decode().strip())
        c = socket.create_connection(("127.0.0.1", vport), timeout=5)
        c.sendall(req)
        resp = recv_all(c, 3.0)
        c.close()
    finally:
        stop(proc)
        t.join(timeout=5)
    base = os.path.join(OUT, "server-" + security)
    open(base + ".req.bin", "wb").write(req)
    open(base + ".resp.bin", "wb").write(resp)
    meta = {"uuid": UUID, "time": now, "security": security, "echo_port": eport,
            "plaintext_hex": payload.hex(), "resp_bytes": len(resp),
            "peer": "Debian v2ray 4.34.0+ds-1 (/usr/bin/v2ray), VMess inbound -> freedom -> echo",
            "request": "made by tests/vectors/vmess-mkreq.c: body IV 00..0f, body key 10..1f, "
                       "V 0x5a, options 0x0d (0x05 for none), padding 0, TCP 127.0.0.1:echo_port"}
    with open(base + ".json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("gen-vmess: server-%s: request %d bytes, response %d bytes" % (security, len(req), len(resp)))


for sec in ("aes-128-gcm", "chacha20-poly1305", "none"):
    capture_client(sec, "tcp")
capture_client("aes-128-gcm", "udp")
if MKREQ:
    for sec in ("aes-128-gcm", "chacha20-poly1305", "none"):
        capture_server(sec)
PY
