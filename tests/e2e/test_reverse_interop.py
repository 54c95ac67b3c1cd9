"""Reverse tunnels between vrev and V2Ray 4.34, in every pairing, over VMess AEAD."""
import os
import time

import pytest

from harness import (bridge_config, free_port, http_get, http_post, pattern, port_open,
                      portal_config, wait_until)

PAIRS = [("vrev", "v2ray"), ("v2ray", "vrev"), ("vrev", "vrev")]


def start_pair(procs, portal_kind, bridge_kind, backend, security="aes-128-gcm"):
    ext, tun = free_port(), free_port()
    portal = procs.start(portal_kind, "portal", portal_config(ext, tun))
    assert wait_until(lambda: port_open(tun), 10), procs.log(portal)
    bridge = procs.start(bridge_kind, "bridge", bridge_config(tun, backend, security))
    ok = wait_until(lambda: tunnel_works(ext), 15)
    assert ok, "no tunnel:\n--- portal\n%s\n--- bridge\n%s" % (procs.log(portal), procs.log(bridge))
    return ext, portal, bridge


def tunnel_works(port):
    try:
        head, body = http_get(port, timeout=2)
        return body == b"hello from the backend\n"
    except OSError:
        return False


@pytest.mark.parametrize("portal_kind,bridge_kind", PAIRS)
def test_http_through_tunnel(procs, backend, portal_kind, bridge_kind):
    ext, portal, bridge = start_pair(procs, portal_kind, bridge_kind, backend)
    for _ in range(20):
        head, body = http_get(ext)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"hello from the backend\n"
    assert portal.poll() is None and bridge.poll() is None


@pytest.mark.parametrize("portal_kind,bridge_kind", PAIRS)
@pytest.mark.parametrize("security", ["aes-128-gcm", "chacha20-poly1305", "none"])
def test_bulk_both_directions(procs, backend, portal_kind, bridge_kind, security):
    ext, portal, bridge = start_pair(procs, portal_kind, bridge_kind, backend, security)
    size = (64 if security == "aes-128-gcm" else 16) << 20
    head, body = http_get(ext, "/bytes/%d" % size, timeout=60)
    assert len(body) == size and body == pattern(size)  # downstream: backend -> client
    payload = os.urandom(size)
    digest = http_post(ext, payload, timeout=60)  # upstream: client -> backend
    import hashlib
    assert digest.decode() == hashlib.sha256(payload).hexdigest()


def test_concurrent_sessions(procs, backend):
    import concurrent.futures
    ext, portal, bridge = start_pair(procs, "vrev", "vrev", backend)
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda i: http_get(ext, "/bytes/%d" % (1000 + i)), range(64)))
    for i, (head, body) in enumerate(results):
        assert body == pattern(1000 + i)


@pytest.mark.parametrize("portal_kind,bridge_kind", [("v2ray", "vrev"), ("vrev", "v2ray")])
def test_drain_after_256_sessions(procs, backend, portal_kind, bridge_kind):
    """The portal drains a tunnel after 256 sessions; the bridge opens another; no request
    fails on the way (WIRE-SPEC §3.5, capture B-drain)."""
    ext, portal, bridge = start_pair(procs, portal_kind, bridge_kind, backend)
    for i in range(300):
        head, body = http_get(ext)
        assert body == b"hello from the backend\n", "request %d failed" % i
        time.sleep(0.005)
    time.sleep(2.5)  # the next heartbeat carries DRAIN; the bridge replaces the tunnel
    for i in range(20):
        head, body = http_get(ext)
        assert body == b"hello from the backend\n"
    if bridge_kind == "vrev":
        assert "drained" in procs.log(bridge)
    if portal_kind == "vrev":
        assert "drained" in procs.log(portal)


def test_portal_restart_bridge_recovers(procs, backend):
    """A vrev bridge redials a restarted V2Ray portal within about a second."""
    ext, tun = free_port(), free_port()
    portal = procs.start("v2ray", "portal", portal_config(ext, tun))
    assert wait_until(lambda: port_open(tun), 10)
    bridge = procs.start("vrev", "bridge", bridge_config(tun, backend))
    assert wait_until(lambda: tunnel_works(ext), 15)
    procs.stop(portal)
    time.sleep(3)
    portal = procs.start("v2ray", "portal2", portal_config(ext, tun))
    assert wait_until(lambda: port_open(tun), 10)
    t0 = time.monotonic()
    assert wait_until(lambda: tunnel_works(ext), 10)
    elapsed = time.monotonic() - t0
    print("tunnel back %.2f s after the portal listened again" % elapsed)
    assert elapsed < 2.0, procs.log(bridge)


def test_bridge_first_start_order(procs, backend):
    """Start order does not matter: a vrev bridge started before its portal connects as soon
    as the portal appears."""
    ext, tun = free_port(), free_port()
    bridge = procs.start("vrev", "bridge", bridge_config(tun, backend))
    time.sleep(2)
    portal = procs.start("vrev", "portal", portal_config(ext, tun))
    t0 = time.monotonic()
    assert wait_until(lambda: tunnel_works(ext), 10), procs.log(bridge)
    assert time.monotonic() - t0 < 2.5
