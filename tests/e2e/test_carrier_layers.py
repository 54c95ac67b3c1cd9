"""M9: the carrier layers of lib/net (ws both roles, h2 client) against Debian's V2Ray 4.34,
through tests/e2e/layer_peer.c (libevent, the layers as the proxy protocols use them), before
the configuration names them. V2Ray relays between a dokodemo-door inbound and a freedom
outbound, one side of which is the carrier under test, so the bytes through it are the test's
own.

  ws  V2Ray's client (freedom over ws, path /ray, Host header) -> our ws server layer (echo)
      our ws client layer -> V2Ray's server (dokodemo-door over ws) -> an echo service
  h2  V2Ray's client (freedom over h2 + TLS, ALPN h2) -> our TLS + h2 server (echo per
      stream); two connections at once, which V2Ray multiplexes over one HTTP/2 connection
      our h2 client layer (cleartext: V2Ray's server serves prior knowledge without TLS) ->
      V2Ray's server -> an echo service

Each moves 4 MiB each way and compares.
"""
import threading

from harness import free_port, port_open, wait_until
from test_carrier_codecs import (TLS, dokodemo, echo_service, echo_through, run_client,
                                 start_peer, start_v2ray)


PEER = "layer_peer"


def test_v2ray_ws_client_to_our_layer(procs):
    ours = start_peer(procs, "ws-server", name=PEER)
    local = free_port()
    start_v2ray(procs, "v2ray-ws-client", dokodemo(local, ours), {
        "protocol": "freedom", "streamSettings": {
            "network": "ws",
            "wsSettings": {"path": "/ray", "headers": {"Host": "ws.example.com"}}}})
    echo_through(local)
    echo_through(local)  # a second connection: the server takes many


def test_our_ws_layer_to_v2ray_server(procs):
    echo = echo_service()
    port = free_port()
    start_v2ray(procs, "v2ray-ws-server",
                dokodemo(port, echo.getsockname()[1],
                         {"network": "ws", "wsSettings": {"path": "/ray"}}),
                {"protocol": "freedom"})
    assert wait_until(lambda: port_open(port), 10)
    run_client("ws-client", port, name=PEER)
    echo.close()


def test_our_h2_layer_to_v2ray_server(procs):
    echo = echo_service()
    port = free_port()
    start_v2ray(procs, "v2ray-h2-server",
                dokodemo(port, echo.getsockname()[1],
                         {"network": "h2",
                          "httpSettings": {"host": ["h2.example.com"], "path": "/h2"}}),
                {"protocol": "freedom"})
    assert wait_until(lambda: port_open(port), 10)
    run_client("h2-client", port, name=PEER)
    echo.close()


def test_v2ray_h2_client_to_our_layer(procs):
    ours = start_peer(procs, "h2-server", TLS, name=PEER)
    local = free_port()
    start_v2ray(procs, "v2ray-h2-client", dokodemo(local, ours), {
        "protocol": "freedom", "streamSettings": {
            "network": "h2", "security": "tls",
            "tlsSettings": {"serverName": "localhost", "allowInsecure": True},
            "httpSettings": {"host": ["h2.example.com"], "path": "/h2"}}})
    errors = []

    def one():
        try:
            echo_through(local)
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    echo_through(local)  # and one more after those ended
