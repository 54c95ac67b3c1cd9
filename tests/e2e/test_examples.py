"""The C embedding examples (examples/embed_portal.c, embed_bridge.c), built by make, run as
a portal and a bridge of a working tunnel."""
import os
import re
import signal

from harness import UUID, free_port, http_get, wait_until

EXAMPLES = os.environ.get("VREV_EXAMPLES", "build/examples")


def test_embed_examples(procs, backend):
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", [os.path.join(EXAMPLES, "embed_portal"),
                                         "127.0.0.1:%d" % tun, "127.0.0.1:%d" % pub, UUID])
    assert wait_until(lambda: "public port" in procs.log(portal), 10), procs.log(portal)
    bridge = procs.start_argv("bridge", [os.path.join(EXAMPLES, "embed_bridge"),
                                         "127.0.0.1:%d" % tun, "127.0.0.1:%d" % backend, UUID])
    assert wait_until(lambda: "tunnel up" in procs.log(bridge), 10), procs.log(bridge)
    for _ in range(3):
        assert http_get(pub)[1] == b"hello from the backend\n"
    portal.send_signal(signal.SIGTERM)
    assert portal.wait(10) == 0
    assert re.search(r"portal: 3 sessions, \d+ bytes up, \d+ bytes down", procs.log(portal))
    assert wait_until(lambda: "tunnel down" in procs.log(bridge), 10)
    bridge.send_signal(signal.SIGTERM)
    assert bridge.wait(10) == 0


def test_embed_bridge_serves_in_process(procs):
    """embed_bridge with "-": its sessions go to an in-process handler (vrev_stream), which
    answers HTTP itself; the portal's counters see each session's bytes both ways."""
    tun, pub = free_port(), free_port()
    portal = procs.start_argv("portal", [os.path.join(EXAMPLES, "embed_portal"),
                                         "127.0.0.1:%d" % tun, "127.0.0.1:%d" % pub, UUID])
    assert wait_until(lambda: "public port" in procs.log(portal), 10), procs.log(portal)
    bridge = procs.start_argv("bridge", [os.path.join(EXAMPLES, "embed_bridge"),
                                         "127.0.0.1:%d" % tun, "-", UUID])
    assert wait_until(lambda: "tunnel up" in procs.log(bridge), 10), procs.log(bridge)
    for _ in range(3):
        status, body = http_get(pub)[:2]
        assert body == b"hello from embed_bridge\n", (status, body)
    bridge.send_signal(signal.SIGTERM)
    assert bridge.wait(10) == 0
    assert "bridge: 3 sessions" in procs.log(bridge)
    portal.send_signal(signal.SIGTERM)
    assert portal.wait(10) == 0
