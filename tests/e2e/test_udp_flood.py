"""A public UDP listener on a portal (JSON mode: dokodemo-door, network udp) flooded while its
tunnel does not move (the bridge is stopped with SIGSTOP): the datagrams waiting for the
tunnel are bounded (udpClientBytes per client, udpInboundBytes per inbound; issue M7), the
rest dropped and counted in the log; once the bridge runs again, UDP works again."""
import json
import os
import signal
import socket
import time

from harness import free_port, port_open, udp_roundtrip, wait_until
from test_udp_interop import udp_configs

CLIENTS = 4
RATE = 17 << 20  # bytes per second in all, as in the report (17 MB/s)
SECONDS = 5
DGRAM = 1000


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def flood(port, seconds, rate, on_tick):
    """CLIENTS sockets from 127.0.0.2.. send DGRAM-byte datagrams at `rate` bytes/s in all for
    `seconds`; on_tick() every 100 ms. Returns the bytes sent."""
    socks = []
    for i in range(CLIENTS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.%d" % (2 + i), 0))
        s.setblocking(False)
        socks.append(s)
    payload = b"x" * DGRAM
    per_tick = rate // 10 // DGRAM // CLIENTS
    sent = 0
    start = time.monotonic()
    try:
        for tick in range(seconds * 10):
            for s in socks:
                for _ in range(per_tick):
                    try:
                        s.sendto(payload, ("127.0.0.1", port))
                        sent += DGRAM
                    except BlockingIOError:
                        break
            on_tick()
            pause = start + (tick + 1) / 10 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    finally:
        for s in socks:
            s.close()
    return sent


def test_udp_flood_while_tunnel_stalled(procs, backend, udp_echo):
    tun, ext = free_port(), free_port()
    portal_cfg, bridge_cfg = udp_configs(tun, ext, udp_echo, backend)
    # under ASan freed memory stays resident in its quarantine: keep it tiny, so that RSS
    # measures what the portal holds (no effect on other builds)
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=1"]))
    path = procs.tmp / "portal.json"
    path.write_text(json.dumps(portal_cfg))
    portal = procs.start_argv("portal", ["vrev", "run", "-c", str(path), "--log-level", "info"],
                              env=env)
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start("vrev", "bridge", bridge_cfg)
    assert wait_until(lambda: udp_roundtrip(ext, b"ping", 0.3) == b"echo:ping", 15), \
        procs.log(portal) + procs.log(bridge)
    before = rss_kib(portal.pid)
    most = [before]
    os.kill(bridge.pid, signal.SIGSTOP)  # the tunnel stops moving
    try:
        sent = flood(ext, SECONDS, RATE, lambda: most.append(rss_kib(portal.pid)))
    finally:
        os.kill(bridge.pid, signal.SIGCONT)
    growth = max(most) - before
    print("sent %.1f MB in %d s; portal RSS %d -> max %d KiB (+%d KiB)"
          % (sent / 1e6, SECONDS, before, max(most), growth))
    assert sent > SECONDS * RATE // 2, "the flood itself was too slow to mean anything"
    # 4 clients x 512 KiB waiting, plus the tunnel's own buffers: far below what was sent
    assert growth < 12 * 1024, "portal RSS grew by %d KiB" % growth
    assert wait_until(lambda: "dropping datagrams" in procs.log(portal), 5), procs.log(portal)
    # the tunnel moves again: a new session is answered
    assert wait_until(lambda: udp_roundtrip(ext, b"again", 0.3) == b"echo:again", 15), \
        procs.log(portal) + procs.log(bridge)
