/* The JSON-free tunnel API (include/vrev/tunnel.h): options validation, a portal and a bridge
 * in one loop with events and counters, refusal of unknown targets, allocation failures, and a
 * portal giving up the tunnel of a bridge that has stopped. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/net.h"
#include "testutil.h"
#include "vrev.h"

#define UUID "5783a3e7-e373-51cd-8642-c83782b807c5"

static void test_options(void **state)
{
    (void)state;
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, NULL), 0);
    assert_string_equal(vrev_tunnel_opts_error(o), "");
    assert_int_equal(vrev_tunnel_opts_set_id(o, "nope"), VREV_ERR_INVAL);
    assert_non_null(strstr(vrev_tunnel_opts_error(o), "UUID"));
    assert_int_equal(vrev_tunnel_opts_set_id(o, "00000000-0000-0000-0000-000000000000"),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_security(o, "rc4"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_security(o, "chacha20-poly1305"), 0);
    assert_int_equal(vrev_tunnel_opts_set_domain(o, "bad domain"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "example.com:80"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "[::1]:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "1.2.3.4"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "web"), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", "localhost:8080"), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:1"), VREV_ERR_INVAL);
    assert_non_null(strstr(vrev_tunnel_opts_error(o), "twice"));
    assert_int_equal(vrev_tunnel_opts_add_target(o, "127.0.0.1:80", "127.0.0.1:8081"), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "bad:name:x", "127.0.0.1:1"), VREV_ERR_INVAL);
    /* PROXY protocol: a known target with a HOST:PORT, version 0..2 */
    assert_int_equal(vrev_tunnel_opts_set_target_proxy_protocol(o, "web", 2), 0);
    assert_int_equal(vrev_tunnel_opts_set_target_proxy_protocol(o, "web", 3), VREV_ERR_INVAL);
    assert_non_null(strstr(vrev_tunnel_opts_error(o), "v1 or v2"));
    assert_int_equal(vrev_tunnel_opts_set_target_proxy_protocol(o, "other", 1), VREV_ERR_INVAL);
    assert_non_null(strstr(vrev_tunnel_opts_error(o), "no target 'other'"));
    assert_int_equal(vrev_tunnel_opts_set_target_proxy_protocol(o, NULL, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_target_proxy_protocol(NULL, "web", 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_accept_proxy_protocol(o, 1), 0);
    assert_int_equal(vrev_tunnel_opts_set_accept_proxy_protocol(NULL, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_portal(o, "portal.example:443"), 0);
    assert_int_equal(vrev_tunnel_opts_set_dead_after_ms(o, 999), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_dead_after_ms(o, 3600 * 1000 + 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_dead_after_ms(o, 1000), 0);
    assert_int_equal(vrev_tunnel_opts_set_dead_after_ms(o, 0), 0);
    char buf[4096];
    int n = vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_non_null(strstr(buf, "\"security\": \"chacha20-poly1305\""));
    assert_non_null(strstr(buf, "\"redirect\": \"localhost:8080\""));
    assert_non_null(strstr(buf, "\"full:web\""));
    assert_non_null(strstr(buf, "\"ip\": [ \"127.0.0.1\" ], \"port\": \"80\""));
    /* the PROXY header to "web" (target-0): libvrev's key, which V2Ray ignores */
    assert_non_null(strstr(buf, "\"vrev\": { \"outbounds\": { \"target-0\": { "
                                "\"proxyProtocol\": \"v2\" } } }"));
    /* --accept-proxy-protocol: V2Ray's own key, on the tunnel and the public inbound */
    char pbuf[4096];
    n = vrev_tunnel_opts_print_config(o, 1, pbuf, sizeof(pbuf));
    assert_true(n > 0 && (size_t)n < sizeof(pbuf));
    const char *at = strstr(pbuf, "\"tcpSettings\": { \"acceptProxyProtocol\": true }");
    assert_non_null(at);
    assert_non_null(strstr(at + 1, "\"tcpSettings\": { \"acceptProxyProtocol\": true }"));
    n = vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf));
    /* too small a buffer: the length it would need, and a terminated prefix */
    char small[16];
    assert_int_equal(vrev_tunnel_opts_print_config(o, 0, small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    vrev_tunnel_opts_free(o);
    vrev_tunnel_opts_free(NULL);
}

/* --transport / --path / --host: validated, normalized, printed as V2Ray's streamSettings. */
static void test_carrier_options(void **state)
{
    (void)state;
    vrev_tunnel_opts *o;
    char buf[4096];
    assert_int_equal(vrev_tunnel_opts_new(&o, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_carrier(o, "kcp"), VREV_ERR_INVAL);
    assert_non_null(strstr(vrev_tunnel_opts_error(o), "tcp, ws or h2"));
    assert_int_equal(vrev_tunnel_opts_set_carrier_path(o, "/a b"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_carrier_path(o, "/a\"x"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_carrier_host(o, "a\"b"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_carrier(o, "WebSocket"), 0);
    assert_int_equal(vrev_tunnel_opts_set_carrier_path(o, "t?x=1"), 0); /* "/" added */
    assert_int_equal(vrev_tunnel_opts_set_carrier_host(o, "cdn.example:8443"), 0);
    assert_int_equal(vrev_tunnel_opts_set_portal(o, "127.0.0.1:443"), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, NULL, "127.0.0.1:80"), 0);
    assert_true(vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"streamSettings\": { \"network\": \"ws\", \"wsSettings\": { "
                                "\"path\": \"/t?x=1\", \"headers\": { \"Host\": "
                                "\"cdn.example:8443\" } }, \"security\": \"none\" }"));
    assert_int_equal(vrev_tunnel_opts_set_carrier(o, "http"), 0);
    assert_int_equal(vrev_tunnel_opts_set_tls(o, 1), 0);
    assert_true(vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"network\": \"h2\", \"httpSettings\": { \"path\": "
                                "\"/t?x=1\", \"host\": [ \"cdn.example:8443\" ] }, \"security\": "
                                "\"tls\""));
    assert_non_null(strstr(buf, "\"alpn\": [ \"h2\" ]"));
    assert_int_equal(vrev_tunnel_opts_set_carrier(o, NULL), 0); /* back to tcp */
    assert_int_equal(vrev_tunnel_opts_set_tls(o, 0), 0);
    assert_true(vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf)) > 0);
    assert_null(strstr(buf, "streamSettings"));
    vrev_tunnel_opts_free(o);
}

/* --- a portal and a bridge in one loop ------------------------------------------------------ */

/* A log line of the portal's (side 0) or the bridge's context (1): test_connection_ids. */
struct log_line {
    int side;
    char text[300];
};
#define MAX_LINES 400

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    vrev_ctx *bctx; /* the bridge's when it has a context of its own (world_init2); else NULL */
    struct log_line *lines; /* MAX_LINES of them, when logging (test_connection_ids) */
    int n_lines;
    struct vrev__listener *echo;
    struct bufferevent *echo_conn;
    vrev_portal *portal;
    vrev_bridge *bridge;
    int up[2], opens[2], closes[2], refused;
    uint64_t close_up, close_down;
    char close_name[64];
    struct bufferevent *client;
    struct evbuffer *got;
};

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    struct world *w = arg;
    w->echo_conn = NULL;
    bufferevent_free(bev);
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    assert_null(w->echo_conn);
    w->echo_conn = vrev__bev_socket(w->ctx, fd);
    bufferevent_setcb(w->echo_conn, echo_read, NULL, echo_event, w);
    bufferevent_enable(w->echo_conn, EV_READ | EV_WRITE);
}

static void on_event(struct world *w, int side, int event, const char *name, uint64_t up,
                     uint64_t down)
{
    if (event == VREV_EVENT_TUNNEL_UP)
        w->up[side]++;
    else if (event == VREV_EVENT_SESSION_OPEN)
        w->opens[side]++;
    else if (event == VREV_EVENT_SESSION_REFUSED)
        w->refused++;
    else if (event == VREV_EVENT_SESSION_CLOSE) {
        w->closes[side]++;
        if (side == 0) {
            w->close_up = up;
            w->close_down = down;
            snprintf(w->close_name, sizeof(w->close_name), "%s", name ? name : "");
        }
    }
}

static void portal_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    on_event(user, 0, event, name, up, down);
}

static void bridge_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    on_event(user, 1, event, name, up, down);
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* own_ctx: the bridge gets a context of its own (its connection ids count apart). */
static void world_start(struct world *w);

/* tls: the tunnel over TLS (the portal's certificate from tests/vectors/tls, checked). */
static void world_setup(struct world *w, const char *bridge_target_name, bool own_ctx, bool tls)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    if (own_ctx)
        assert_int_equal(vrev_ctx_new(&w->bctx, w->base), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, echo_accept, w, &w->echo), 0);
    w->got = evbuffer_new();
    char err[256], hp[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "echo"), 0);
    if (tls) {
        const char *dir = getenv("VREV_VECTORS");
        char cert[256], key[256], ca[256];
        snprintf(cert, sizeof(cert), "%s/tls/server.crt", dir ? dir : "tests/vectors");
        snprintf(key, sizeof(key), "%s/tls/server.key", dir ? dir : "tests/vectors");
        snprintf(ca, sizeof(ca), "%s/tls/ca.crt", dir ? dir : "tests/vectors");
        assert_int_equal(vrev_tunnel_opts_set_tls(o, 1), 0);
        assert_int_equal(vrev_tunnel_opts_set_tls_cert(o, cert, key), 0);
        assert_int_equal(vrev_tunnel_opts_set_tls_ca(o, ca), 0);
        assert_int_equal(vrev_tunnel_opts_set_tls_sni(o, "localhost"), 0);
    }
    assert_int_equal(vrev_portal_new(&w->portal, w->ctx, o, err, sizeof(err)), 0);
    vrev_portal_set_event_cb(w->portal, portal_event, w);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev_portal_tunnel_port(w->portal));
    assert_int_equal(vrev_tunnel_opts_set_portal(o, hp), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev__listener_port(w->echo));
    assert_int_equal(vrev_tunnel_opts_add_target(o, bridge_target_name, hp), 0);
    assert_int_equal(vrev_bridge_new(&w->bridge, w->bctx ? w->bctx : w->ctx, o, err, sizeof(err)),
                     0);
    vrev_tunnel_opts_free(o);
    vrev_bridge_set_event_cb(w->bridge, bridge_event, w);
}

static void world_start(struct world *w)
{
    assert_int_equal(vrev_bridge_start(w->bridge), 0);
    for (int i = 0; i < 300 && !(w->up[0] && w->up[1]); i++)
        run_ms(w, 10);
    assert_int_equal(w->up[0], 1);
    assert_int_equal(w->up[1], 1);
    assert_int_equal(vrev_portal_counter(w->portal, VREV_COUNTER_TUNNELS), 1);
    assert_int_equal(vrev_bridge_counter(w->bridge, VREV_COUNTER_TUNNELS), 1);
}

static void world_init2(struct world *w, const char *bridge_target_name, bool own_ctx)
{
    world_setup(w, bridge_target_name, own_ctx, false);
    world_start(w);
}

static void world_init(struct world *w, const char *bridge_target_name)
{
    world_init2(w, bridge_target_name, false);
}

static void world_done(struct world *w)
{
    if (w->client)
        bufferevent_free(w->client);
    if (w->echo_conn)
        bufferevent_free(w->echo_conn);
    vrev_bridge_free(w->bridge);
    vrev_portal_free(w->portal);
    vrev__listener_free(w->echo);
    evbuffer_free(w->got);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
    vrev_ctx_free(w->bctx);
    free(w->lines);
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    evbuffer_add_buffer(w->got, bufferevent_get_input(bev));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    client_read(bev, arg);
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev;
    bufferevent_setcb(bev, client_read, NULL, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_write(bev, "0123456789", 10);
}

static void connect_client(struct world *w)
{
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev_portal_public_port(w->portal, 0)),
                     0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, client_dialed, w, NULL), 0);
}

static void test_portal_bridge_events_and_counters(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, "echo");
    connect_client(&w);
    for (int i = 0; i < 300 && evbuffer_get_length(w.got) < 10; i++)
        run_ms(&w, 10);
    assert_int_equal(evbuffer_get_length(w.got), 10);
    assert_int_equal(w.opens[0], 1);
    assert_int_equal(w.opens[1], 1);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_SESSIONS_ACTIVE), 1);
    bufferevent_free(w.client); /* the client leaves: the session ends on both sides */
    w.client = NULL;
    for (int i = 0; i < 300 && !(w.closes[0] && w.closes[1]); i++)
        run_ms(&w, 10);
    assert_int_equal(w.closes[0], 1);
    assert_int_equal(w.closes[1], 1);
    assert_string_equal(w.close_name, "echo");
    assert_int_equal(w.close_up, 10);
    assert_int_equal(w.close_down, 10);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_SESSIONS), 1);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_BYTES_UP), 10);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_BYTES_DOWN), 10);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS), 1);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_BYTES_UP), 10);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_SESSIONS_ACTIVE), 0);
    world_done(&w);
}

static void test_drain_after_option(void **state)
{
    (void)state;
    struct world w;
    memset(&w, 0, sizeof(w));
    w.base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w.ctx, w.base), 0);
    assert_int_equal(vrev__listener_new(w.ctx, "127.0.0.1", 0, echo_accept, &w, &w.echo), 0);
    w.got = evbuffer_new();
    char err[256], hp[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w.ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_drain_after(o, 1), 0);
    assert_int_equal(vrev_tunnel_opts_set_heartbeat_ms(o, 50), 0);
    assert_int_equal(vrev_tunnel_opts_set_drain_after(o, 70000), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "echo"), 0);
    assert_int_equal(vrev_portal_new(&w.portal, w.ctx, o, err, sizeof(err)), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev_portal_tunnel_port(w.portal));
    assert_int_equal(vrev_tunnel_opts_set_portal(o, hp), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev__listener_port(w.echo));
    assert_int_equal(vrev_tunnel_opts_add_target(o, "echo", hp), 0);
    assert_int_equal(vrev_bridge_new(&w.bridge, w.ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    vrev_bridge_start(w.bridge);
    for (int i = 0; i < 300 && vrev_portal_counter(w.portal, VREV_COUNTER_TUNNELS) < 1; i++)
        run_ms(&w, 10);
    connect_client(&w); /* control + 1 session > 1: the next heartbeat (50 ms) drains */
    for (int i = 0; i < 300 && vrev_portal_counter(w.portal, VREV_COUNTER_TUNNELS_OPENED) < 2; i++)
        run_ms(&w, 10);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_TUNNELS_OPENED), 2);
    world_done(&w);
}

static void test_bridge_refuses_unknown_names(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, "other"); /* the portal asks for "echo", the bridge only knows "other" */
    connect_client(&w);
    for (int i = 0; i < 300 && !w.refused; i++)
        run_ms(&w, 10);
    assert_int_equal(w.refused, 1);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_REFUSED), 1);
    assert_null(w.echo_conn); /* nothing reached the service */
    world_done(&w);
}

/* In-process handler: the session arrives as a vrev_stream in the bridge's loop. */
static char handled_name[32];

static void on_session(vrev_stream *stream, const char *name, void *user)
{
    snprintf(handled_name, sizeof(handled_name), "%s", name);
    tu_stream_echo_accept(stream, name, user);
}

/* A portal with a public listener for "app", and a bridge serving "app" with `accept`. */
static void handler_world(struct world *w, vrev_bridge_accept_cb accept)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    w->got = evbuffer_new();
    char err[256], hp[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "app"), 0);
    assert_int_equal(vrev_portal_new(&w->portal, w->ctx, o, err, sizeof(err)), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev_portal_tunnel_port(w->portal));
    assert_int_equal(vrev_tunnel_opts_set_portal(o, hp), 0);
    assert_int_equal(vrev_tunnel_opts_add_handler(o, "app", accept, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_print_config(o, 0, NULL, 0), VREV_ERR_UNSUPPORTED);
    assert_int_equal(vrev_bridge_new(&w->bridge, w->ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    vrev_bridge_start(w->bridge);
    for (int i = 0; i < 300 && vrev_portal_counter(w->portal, VREV_COUNTER_TUNNELS) < 1; i++)
        run_ms(w, 10);
}

static void test_bridge_handler_in_process(void **state)
{
    (void)state;
    struct world w;
    handler_world(&w, on_session);
    connect_client(&w);
    for (int i = 0; i < 300 && evbuffer_get_length(w.got) < 10; i++)
        run_ms(&w, 10);
    assert_int_equal(evbuffer_get_length(w.got), 10);
    assert_string_equal(handled_name, "app");
    bufferevent_free(w.client); /* the end reaches the handler, which closes its stream */
    w.client = NULL;
    for (int i = 0; i < 300 && vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS_ACTIVE); i++)
        run_ms(&w, 10);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS_ACTIVE), 0);
    world_done(&w);
}

/* A handler holding its stream when the bridge goes: the stream fails (VREV_ERR_IO), the
 * handler closes it, nothing leaks (ASan). */
static vrev_stream *held;
static int held_events[5], held_err;

static void held_event(vrev_stream *s, int event, int err, void *user)
{
    (void)user;
    held_events[event]++;
    if (event == VREV_STREAM_ERROR) {
        held_err = err;
        vrev_stream_close(s, 1);
        held = NULL;
    }
}

static void hold_session(vrev_stream *stream, const char *name, void *user)
{
    (void)name, (void)user;
    held = stream;
    assert_int_equal(vrev_stream_set_cb(stream, held_event, NULL), 0);
}

static void test_bridge_freed_under_a_handler_stream(void **state)
{
    (void)state;
    struct world w;
    handler_world(&w, hold_session);
    connect_client(&w);
    for (int i = 0; i < 300 && vrev_stream_readable(held) < 10; i++)
        run_ms(&w, 10);
    assert_int_equal(vrev_stream_readable(held), 10);
    assert_int_equal(held_events[VREV_STREAM_READABLE], 1);
    vrev_bridge_free(w.bridge);
    w.bridge = NULL;
    for (int i = 0; i < 300 && held; i++)
        run_ms(&w, 10);
    assert_null(held);
    assert_int_equal(held_events[VREV_STREAM_ERROR], 1);
    assert_int_equal(held_err, VREV_ERR_IO);
    world_done(&w);
}

/* A handler that answers and closes from inside its accept callback: the answer still
 * reaches the client, and the session ends on both sides. */
static void busy_session(vrev_stream *stream, const char *name, void *user)
{
    (void)name, (void)user;
    assert_int_equal(vrev_stream_write(stream, "busy\n", 5), 0);
    vrev_stream_close(stream, 0);
}

static void test_bridge_handler_closes_at_once(void **state)
{
    (void)state;
    struct world w;
    handler_world(&w, busy_session);
    connect_client(&w);
    for (int i = 0; i < 300 && evbuffer_get_length(w.got) < 5; i++)
        run_ms(&w, 10);
    assert_int_equal(evbuffer_get_length(w.got), 5);
    assert_memory_equal(evbuffer_pullup(w.got, 5), "busy\n", 5);
    for (int i = 0; i < 300 && vrev_portal_counter(w.portal, VREV_COUNTER_SESSIONS_ACTIVE); i++)
        run_ms(&w, 10);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_SESSIONS), 1);
    assert_int_equal(vrev_portal_counter(w.portal, VREV_COUNTER_SESSIONS_ACTIVE), 0);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS_ACTIVE), 0);
    world_done(&w);
}

static void test_new_errors(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    vrev_tunnel_opts *o;
    vrev_portal *p;
    vrev_bridge *b;
    char err[256];
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_new(&o, ctx), 0);
    assert_int_equal(vrev_portal_new(&p, ctx, o, err, sizeof(err)), VREV_ERR_INVAL);
    assert_non_null(strstr(err, "--id"));
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_bridge_new(&b, ctx, o, err, sizeof(err)), VREV_ERR_INVAL);
    assert_non_null(strstr(err, "--portal"));
    assert_int_equal(vrev_tunnel_opts_set_portal(o, "127.0.0.1:1"), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, NULL, "127.0.0.1:2"), 0);
    assert_int_equal(vrev_bridge_new(&b, ctx, o, err, sizeof(err)), VREV_ERR_STATE);
    vrev_tunnel_opts_free(o);
    vrev_ctx_free(ctx);
}

/* An allocator that counts calls and the bytes it has out (each block prefixed with its
 * size): a block it did not allocate, freed through it, or one of its blocks freed by the C
 * library, breaks the count or the heap. */
struct counting {
    unsigned calls;
    long blocks;
    size_t bytes;
};
#define CA_HEAD 16 /* keeps the caller's block aligned as malloc's */

static void *ca_realloc(void *ptr, size_t size, void *user)
{
    struct counting *c = user;
    uint8_t *old = ptr ? (uint8_t *)ptr - CA_HEAD : NULL;
    size_t was = 0;
    if (old)
        memcpy(&was, old, sizeof(was));
    uint8_t *p = realloc(old, CA_HEAD + size);
    c->calls++;
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof(size));
    c->blocks += old ? 0 : 1;
    c->bytes += size - was;
    return p + CA_HEAD;
}

static void *ca_malloc(size_t size, void *user)
{
    return ca_realloc(NULL, size, user);
}

static void ca_free(void *ptr, void *user)
{
    struct counting *c = user;
    if (!ptr)
        return;
    size_t was;
    memcpy(&was, (uint8_t *)ptr - CA_HEAD, sizeof(was));
    c->blocks--;
    c->bytes -= was;
    free((uint8_t *)ptr - CA_HEAD);
}

/* Set a string option and check that its copy (at least the string and its NUL) was taken
 * from the counting allocator. */
#define CA_SET(c, call, str)                                                                       \
    do {                                                                                           \
        size_t before_ = (c)->bytes;                                                               \
        assert_int_equal((call), 0);                                                               \
        assert_true((c)->bytes >= before_ + strlen(str) + 1);                                      \
    } while (0)

/* vrev_tunnel_opts_new(&o, ctx): the options, every string they copy and every list they grow
 * come from the context's allocator, and all of it goes back to it; the allocator is copied,
 * so the options may outlive the context. */
static void test_opts_allocator(void **state)
{
    (void)state;
    struct counting c = {0, 0, 0};
    vrev_allocator a = {VREV_ALLOCATOR_ABI, ca_malloc, ca_realloc, ca_free, &c};
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
    long ctx_blocks = c.blocks;
    size_t ctx_bytes = c.bytes;
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, ctx), 0);
    assert_true(c.blocks == ctx_blocks + 1 && c.bytes > ctx_bytes); /* the object itself */
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    CA_SET(&c, vrev_tunnel_opts_set_domain(o, "tunnel.example.internal"),
           "tunnel.example.internal");
    CA_SET(&c, vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), "127.0.0.1:0");
    CA_SET(&c, vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "web"), "127.0.0.1:0web");
    CA_SET(&c, vrev_tunnel_opts_add_public(o, "[::1]:0", "ssh"), "[::1]:0ssh");
    CA_SET(&c, vrev_tunnel_opts_set_portal(o, "portal.example.net:443"), "portal.example.net:443");
    CA_SET(&c, vrev_tunnel_opts_add_portal(o, "127.0.0.2:443"), "127.0.0.2:443");
    CA_SET(&c, vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:8080"), "web127.0.0.1:8080");
    CA_SET(&c, vrev_tunnel_opts_add_target(o, "ssh", "127.0.0.1:22"), "ssh127.0.0.1:22");
    CA_SET(&c, vrev_tunnel_opts_set_tls_cert(o, "cert.pem", "key.pem"), "cert.pemkey.pem");
    CA_SET(&c, vrev_tunnel_opts_set_tls_ca(o, "ca.pem"), "ca.pem");
    CA_SET(&c, vrev_tunnel_opts_set_tls_sni(o, "portal.example.net"), "portal.example.net");
    size_t before = c.bytes;
    assert_int_equal(vrev_tunnel_opts_add_tls_pin(o, "sha256:00112233445566778899aabbccddeeff"
                                                     "00112233445566778899aabbccddeeff"),
                     0);
    assert_true(c.bytes >= before + 32); /* the list of 32-byte hashes grew */
    CA_SET(&c, vrev_tunnel_opts_set_transport(o, "my-layer"), "my-layer");
    CA_SET(&c, vrev_tunnel_opts_set_carrier_path(o, "/tunnel"), "/tunnel");
    CA_SET(&c, vrev_tunnel_opts_set_carrier_host(o, "www.example.com"), "www.example.com");
    /* replacing a value frees the old copy through the allocator as well */
    before = c.bytes;
    assert_int_equal(vrev_tunnel_opts_set_domain(o, "b.internal"), 0);
    assert_int_equal(c.bytes, before - sizeof("tunnel.example.internal") + sizeof("b.internal"));
    long opts_blocks = c.blocks - ctx_blocks;
    vrev_ctx_free(ctx); /* first: the options keep a copy of the allocator */
    assert_int_equal(c.blocks, opts_blocks);
    vrev_tunnel_opts_free(o);
    assert_int_equal(c.blocks, 0);
    assert_int_equal(c.bytes, 0);

    /* No context: the C library's allocator, nothing through this one. */
    unsigned calls = c.calls;
    assert_int_equal(vrev_tunnel_opts_new(&o, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
    vrev_tunnel_opts_free(o);
    assert_int_equal(c.calls, calls);
    assert_int_equal(vrev_tunnel_opts_new(NULL, NULL), VREV_ERR_INVAL);
}

/* Every allocation of building a portal and a bridge may fail: a clean error, no leak. */
static void test_allocation_failures(void **state)
{
    (void)state;
    for (unsigned k = 1;; k++) {
        struct tu_failing_alloc fa = {k, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        struct event_base *base = event_base_new();
        vrev_ctx *ctx = NULL;
        vrev_tunnel_opts *o = NULL;
        vrev_portal *p = NULL;
        vrev_bridge *b = NULL;
        char err[256];
        int rc = vrev_ctx_new2(&ctx, base, &a);
        /* The options on the context's (failing) allocator too: any setter may be refused. */
        if (rc == 0)
            rc = vrev_tunnel_opts_new(&o, ctx);
        if (rc == 0)
            rc = vrev_tunnel_opts_set_id(o, UUID);
        if (rc == 0)
            rc = vrev_tunnel_opts_set_listen(o, "127.0.0.1:0");
        if (rc == 0)
            rc = vrev_tunnel_opts_add_public(o, "127.0.0.1:0", NULL);
        if (rc == 0)
            rc = vrev_tunnel_opts_set_portal(o, "127.0.0.1:9");
        if (rc == 0)
            rc = vrev_tunnel_opts_add_target(o, NULL, "127.0.0.1:9");
        if (rc == 0)
            rc = vrev_portal_new(&p, ctx, o, err, sizeof(err));
        if (rc == 0)
            rc = vrev_bridge_new(&b, ctx, o, err, sizeof(err));
        bool failed = fa.calls >= k; /* the k-th allocation was made, and refused */
        if (failed)
            assert_int_equal(rc, VREV_ERR_NOMEM);
        else { /* nothing refused: both were built */
            assert_int_equal(rc, 0);
            assert_non_null(p);
            assert_non_null(b);
        }
        vrev_bridge_free(b);
        vrev_portal_free(p);
        vrev_tunnel_opts_free(o);
        event_base_loop(base, EVLOOP_NONBLOCK);
        event_base_free(base);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
        if (!failed)
            break;
    }
}

/* --- a bridge that stops reading: the portal gives its tunnel up ------------------------------ */

/* The portal and the bridge on loops of their own: stopping the bridge's loop is a bridge whose
 * process hangs (or whose host has gone: its kernel no longer takes the portal's bytes). */
struct frozen {
    struct event_base *pbase, *bbase;
    vrev_ctx *pctx, *bctx;
    vrev_portal *portal;
    vrev_bridge *bridge;
    struct bufferevent *client;
    int up, down;
};

static void frozen_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)name, (void)up, (void)down;
    struct frozen *f = user;
    f->up += event == VREV_EVENT_TUNNEL_UP;
    f->down += event == VREV_EVENT_TUNNEL_DOWN;
}

static void frozen_run(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void frozen_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    static const char block[64 * 1024];
    struct frozen *f = arg;
    assert_int_equal(err, 0);
    f->client = bev;
    for (int i = 0; i < 512; i++) /* 32 MiB: more than the sockets on the way can hold */
        evbuffer_add(bufferevent_get_output(bev), block, sizeof(block));
    bufferevent_enable(bev, EV_WRITE);
}

/* Bring a tunnel up, stop the bridge, upload through the portal: how many times the portal
 * reports the tunnel down within wait_ms. */
static int frozen_bridge(unsigned dead_after_ms, int wait_ms)
{
    struct frozen f;
    memset(&f, 0, sizeof(f));
    f.pbase = event_base_new();
    f.bbase = event_base_new();
    assert_int_equal(vrev_ctx_new(&f.pctx, f.pbase), 0);
    assert_int_equal(vrev_ctx_new(&f.bctx, f.bbase), 0);
    char err[256], hp[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_dead_after_ms(o, dead_after_ms), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "svc"), 0);
    assert_int_equal(vrev_portal_new(&f.portal, f.pctx, o, err, sizeof(err)), 0);
    vrev_portal_set_event_cb(f.portal, frozen_event, &f);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev_portal_tunnel_port(f.portal));
    assert_int_equal(vrev_tunnel_opts_set_portal(o, hp), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "svc", "127.0.0.1:1"), 0);
    assert_int_equal(vrev_bridge_new(&f.bridge, f.bctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    assert_int_equal(vrev_bridge_start(f.bridge), 0);
    for (int i = 0; i < 300 && !(f.up && vrev_bridge_counter(f.bridge, VREV_COUNTER_TUNNELS));
         i++) {
        frozen_run(f.pbase, 5);
        frozen_run(f.bbase, 5);
    }
    assert_int_equal(f.up, 1);
    struct vrev__addr a; /* from here on only the portal's loop runs */
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev_portal_public_port(f.portal, 0)),
                     0);
    assert_int_equal(vrev__tcp_dial(f.pctx, NULL, &a, 2000, frozen_dialed, &f, NULL), 0);
    for (int t = 0; t < wait_ms && !f.down; t += 50)
        frozen_run(f.pbase, 50);
    int down = f.down;
    if (f.client)
        bufferevent_free(f.client);
    vrev_bridge_free(f.bridge);
    vrev_portal_free(f.portal);
    event_base_loop(f.pbase, EVLOOP_NONBLOCK);
    event_base_loop(f.bbase, EVLOOP_NONBLOCK);
    event_base_free(f.pbase);
    event_base_free(f.bbase);
    vrev_ctx_free(f.pctx);
    vrev_ctx_free(f.bctx);
    return down;
}

static void test_portal_gives_up_a_frozen_bridge(void **state)
{
    (void)state;
    /* 1 s without progress once the bridge's window has shut; 10 s is a generous bound */
    assert_int_equal(frozen_bridge(1000, 10000), 1);
    /* the control: with an hour, the tunnel is still there after 3 s */
    assert_int_equal(frozen_bridge(3600 * 1000, 3000), 0);
}

struct side_log {
    struct world *w;
    int side;
};

static void on_log(int level, const char *component, const char *message, void *user)
{
    (void)level, (void)component;
    struct side_log *s = user;
    struct world *w = s->w;
    assert_true(w->n_lines < MAX_LINES); /* bounded: a flood of lines is a failure too */
    w->lines[w->n_lines].side = s->side;
    snprintf(w->lines[w->n_lines].text, sizeof(w->lines[0].text), "%s", message);
    w->n_lines++;
}

/* Every line of both sides, debug ones too, unthrottled, into w->lines. */
static void capture_lines(struct world *w)
{
    w->lines = calloc(MAX_LINES, sizeof(*w->lines));
    assert_non_null(w->lines);
    static struct side_log logs[2];
    for (int i = 0; i < 2; i++) {
        logs[i] = (struct side_log){.w = w, .side = i};
        vrev_ctx_set_log(i ? w->bctx : w->ctx, VREV_LOG_DEBUG, on_log, &logs[i]);
        vrev_ctx_set_log_rate(i ? w->bctx : w->ctx, 0, 0);
    }
}

/* Lines of `side` from `from` on that contain `needle`. */
static int count(const struct world *w, int from, int side, const char *needle)
{
    int n = 0;
    for (int i = from; i < w->n_lines; i++)
        n += w->lines[i].side == side && strstr(w->lines[i].text, needle) != NULL;
    return n;
}

/* The id a line starts with ("c17 ..."); 0: none. */
static unsigned long long id_of(const char *text)
{
    unsigned long long id = 0;
    int end = 0;
    if (sscanf(text, "c%llu %n", &id, &end) < 1 || end == 0)
        return 0;
    return id;
}

/* The line of `side` from `from` on containing `needle`, which must be there once. */
static const char *find(const struct world *w, int from, int side, const char *needle)
{
    const char *found = NULL;
    for (int i = from; i < w->n_lines; i++)
        if (w->lines[i].side == side && strstr(w->lines[i].text, needle)) {
            if (found)
                fail_msg("twice: '%s'\n  %s\n  %s", needle, found, w->lines[i].text);
            found = w->lines[i].text;
        }
    if (!found)
        fail_msg("no line with '%s'", needle);
    return found;
}

/* The ids one connection had on each side. */
struct conn_ids {
    unsigned long long portal, bridge;
    unsigned sid;
};

/* One connection through the tunnel, its lines checked: returns its ids. */
static struct conn_ids one_connection(struct world *w)
{
    int from = w->n_lines, closes0 = w->closes[0], closes1 = w->closes[1];
    evbuffer_drain(w->got, evbuffer_get_length(w->got));
    connect_client(w);
    for (int i = 0; i < 300 && evbuffer_get_length(w->got) < 10; i++)
        run_ms(w, 10);
    assert_int_equal(evbuffer_get_length(w->got), 10);
    char port[16];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    assert_int_equal(getsockname(bufferevent_getfd(w->client), (struct sockaddr *)&ss, &sl), 0);
    snprintf(port, sizeof(port), ":%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    bufferevent_free(w->client); /* the client leaves: the session ends, the relay after it */
    w->client = NULL;
    for (int i = 0; i < 300 && !(w->closes[0] > closes0 && w->closes[1] > closes1 &&
                                 count(w, from, 1, "relay closed") == 1);
         i++)
        run_ms(w, 10);

    struct conn_ids ids;
    /* the portal: accepted (from the client's port), routed, a session on the tunnel, closed */
    char want[128];
    snprintf(want, sizeof(want), "accepted from 127.0.0.1%s", port);
    ids.portal = id_of(find(w, from, 0, want));
    assert_true(ids.portal > 0);
    unsigned long long tunnel = 0;
    const char *open = find(w, from, 0, "to tcp:echo");
    assert_int_equal(sscanf(open, "c%*u sid %u on tunnel c%llu", &ids.sid, &tunnel), 2);
    assert_int_equal(id_of(open), ids.portal);
    assert_true(tunnel > 0 && tunnel != ids.portal);
    assert_int_equal(id_of(find(w, from, 0, "tcp:echo:0 -> [portal]")), ids.portal);
    snprintf(want, sizeof(want), "sid %u closed: up 10, down 10 bytes", ids.sid);
    assert_int_equal(id_of(find(w, from, 0, want)), ids.portal);
    /* the bridge: the same sid opened, routed, dialed, relayed, closed, under one id */
    snprintf(want, sizeof(want), "sid %u on tunnel", ids.sid);
    ids.bridge = id_of(find(w, from, 1, want));
    assert_true(ids.bridge > 0);
    assert_int_equal(id_of(find(w, from, 1, "tcp:echo:0 -> [")), ids.bridge);
    char echo[32];
    snprintf(echo, sizeof(echo), "dial 127.0.0.1:%u", vrev__listener_port(w->echo));
    assert_int_equal(id_of(find(w, from, 1, echo)), ids.bridge);
    assert_int_equal(id_of(find(w, from, 1, "relay closed: up 10, down 10 bytes")), ids.bridge);
    snprintf(want, sizeof(want), "sid %u closed: up 10, down 10 bytes", ids.sid);
    assert_int_equal(id_of(find(w, from, 1, want)), ids.bridge);
    /* every line logged meanwhile is about this connection, and says so */
    for (int i = from; i < w->n_lines; i++) {
        unsigned long long id = id_of(w->lines[i].text);
        if (id != (w->lines[i].side ? ids.bridge : ids.portal))
            fail_msg("a line without the connection's id (c%llu / c%llu): %s", ids.portal,
                     ids.bridge, w->lines[i].text);
    }
    return ids;
}

/* Connection ids in the debug log: the portal and the bridge each with a context of its own
 * (ids count per context); two public connections, one after the other. Each connection's
 * lines on each side start with its id ("c17 ..."), from its acceptance (on the bridge: the
 * New frame) to its end with the bytes moved each way; both sides name the same mux session
 * id; ids are not reused. */
static void test_connection_ids(void **state)
{
    (void)state;
    struct world w;
    world_init2(&w, "echo", true);
    capture_lines(&w);
    struct conn_ids a = one_connection(&w), b = one_connection(&w);
    assert_true(a.portal != b.portal); /* one id per connection, never reused */
    assert_true(a.bridge != b.bridge);
    assert_true(a.sid != b.sid);
    world_done(&w);
}

/* The TLS layer's lines name the tunnel they are about: on the portal the id of the
 * tunnel connection's acceptance, on the bridge the tunnel's (its "tunnel up" line). */
static void test_connection_ids_tls(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, "echo", true, true);
    capture_lines(&w);
    world_start(&w);
    unsigned long long portal = id_of(find(&w, 0, 0, "accepted from 127.0.0.1:"));
    unsigned long long bridge = id_of(find(&w, 0, 1, "tunnel up"));
    assert_true(portal > 0 && bridge > 0);
    assert_int_equal(id_of(find(&w, 0, 0, "handshake done: ")), portal);
    assert_int_equal(id_of(find(&w, 0, 1, "handshake done: ")), bridge);
    struct conn_ids a = one_connection(&w); /* and the sessions over it as without TLS */
    assert_true(a.portal != portal && a.bridge != bridge);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_carrier_options),
        cmocka_unit_test(test_portal_bridge_events_and_counters),
        cmocka_unit_test(test_drain_after_option),
        cmocka_unit_test(test_bridge_refuses_unknown_names),
        cmocka_unit_test(test_bridge_handler_in_process),
        cmocka_unit_test(test_bridge_freed_under_a_handler_stream),
        cmocka_unit_test(test_bridge_handler_closes_at_once),
        cmocka_unit_test(test_new_errors),
        cmocka_unit_test(test_opts_allocator),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_portal_gives_up_a_frozen_bridge),
        cmocka_unit_test(test_connection_ids),
        cmocka_unit_test(test_connection_ids_tls),
    };
    return cmocka_run_group_tests_name("tunnel", tests, NULL, NULL);
}
