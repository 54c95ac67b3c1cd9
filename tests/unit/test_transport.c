/* Custom transports (include/vrev/transport.h): an embedder's layer, registered on the ctx and
 * named in V2Ray JSON streamSettings.security, carries VMess — forward, and a reverse tunnel
 * (portal + bridge) — and is really in the path: a peer without it cannot talk to one with it.
 * Also: registration rules, a layer that fails, unknown names refused at load. */
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
#define MSG "over the custom layer"
#define MSG_LEN (sizeof(MSG) - 1)

/* The layer: every byte XOR 0x5a, both ways (a stand-in for an obfuscation layer). */
struct xor_state {
    int wraps[2];  /* by role: client, server */
    int bytes_out; /* bytes it transformed on their way to the socket */
    int fail;      /* refuse to wrap */
    int freed;
};

struct xor_dir {
    struct xor_state *x;
    int out;
};

static enum bufferevent_filter_result xor_filter(struct evbuffer *src, struct evbuffer *dst,
                                                 struct xor_state *x, int out)
{
    uint8_t buf[4096];
    int n;
    while ((n = evbuffer_remove(src, buf, sizeof(buf))) > 0) {
        for (int i = 0; i < n; i++)
            buf[i] ^= 0x5a;
        evbuffer_add(dst, buf, (size_t)n);
        if (out)
            x->bytes_out += n;
    }
    return BEV_OK;
}

static enum bufferevent_filter_result xor_in(struct evbuffer *src, struct evbuffer *dst,
                                             ev_ssize_t limit, enum bufferevent_flush_mode m,
                                             void *arg)
{
    (void)limit, (void)m;
    return xor_filter(src, dst, arg, 0);
}

static enum bufferevent_filter_result xor_out(struct evbuffer *src, struct evbuffer *dst,
                                              ev_ssize_t limit, enum bufferevent_flush_mode m,
                                              void *arg)
{
    (void)limit, (void)m;
    return xor_filter(src, dst, arg, 1);
}

static struct bufferevent *xor_wrap(void *state, struct bufferevent *lower, int role,
                                    const char *peer_name, int *err)
{
    (void)peer_name;
    struct xor_state *x = state;
    struct bufferevent *b = NULL;
    if (!x->fail)
        b = bufferevent_filter_new(lower, xor_in, xor_out,
                                   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, NULL, x);
    if (!b) {
        bufferevent_free(lower);
        *err = VREV_ERR_UNSUPPORTED;
        return NULL;
    }
    x->wraps[role == VREV_TRANSPORT_SERVER]++;
    return b;
}

static void xor_free(void *state)
{
    ((struct xor_state *)state)->freed++;
}

static const vrev_transport_ops xor_ops = {
    .abi = VREV_TRANSPORT_OPS_ABI, .name = "xor-demo", .wrap = xor_wrap, .free_state = xor_free};

static struct bufferevent *never_wrap(void *state, struct bufferevent *lower, int role,
                                      const char *peer_name, int *err)
{
    (void)state, (void)lower, (void)role, (void)peer_name, (void)err;
    fail_msg("not called");
    return NULL;
}

static void test_register(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct xor_state x;
    memset(&x, 0, sizeof(x));
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vrev_ctx_add_transport(NULL, &xor_ops, &x), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_add_transport(ctx, NULL, &x), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_add_transport(ctx, &xor_ops, &x), 0);
    assert_int_equal(vrev_ctx_add_transport(ctx, &xor_ops, &x), VREV_ERR_INVAL); /* taken */
    vrev_transport_ops bad = {
        .abi = VREV_TRANSPORT_OPS_ABI, .name = "other", .wrap = never_wrap, .free_state = xor_free};
    const char *refused[] = {"tls", "TLS", "none", "None", "", "a-name-of-thirty-two-characters!"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        bad.name = refused[i];
        assert_int_equal(vrev_ctx_add_transport(ctx, &bad, NULL), VREV_ERR_INVAL);
    }
    bad.name = NULL;
    assert_int_equal(vrev_ctx_add_transport(ctx, &bad, NULL), VREV_ERR_INVAL);
    bad.name = "other";
    bad.abi = VREV_TRANSPORT_OPS_ABI + 1;
    assert_int_equal(vrev_ctx_add_transport(ctx, &bad, NULL), VREV_ERR_INVAL);
    bad.abi = VREV_TRANSPORT_OPS_ABI;
    bad.wrap = NULL;
    assert_int_equal(vrev_ctx_add_transport(ctx, &bad, NULL), VREV_ERR_INVAL);
    bad.wrap = never_wrap;
    bad.name = "a-name-of-thirty-one-characters";
    bad.free_state = NULL; /* optional */
    assert_int_equal(vrev_ctx_add_transport(ctx, &bad, NULL), 0);
    vrev_ctx_free(ctx);
    assert_int_equal(x.freed, 1); /* refused registrations never call it */
}

/* Registration goes through the ctx's allocator: every failure point leaves nothing behind. */
static void test_register_alloc_failure(void **state)
{
    (void)state;
    for (unsigned at = 1; at < 8; at++) {
        struct tu_failing_alloc fa = {at, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *ctx;
        if (vrev_ctx_new2(&ctx, NULL, &a) < 0) {
            assert_int_equal(fa.live, 0);
            continue;
        }
        struct xor_state x;
        memset(&x, 0, sizeof(x));
        int rc = vrev_ctx_add_transport(ctx, &xor_ops, &x);
        assert_true(rc == 0 || rc == VREV_ERR_NOMEM);
        vrev_ctx_free(ctx);
        assert_int_equal(x.freed, rc == 0);
        assert_int_equal(fa.live, 0);
    }
}

/* --- traffic over the layer ------------------------------------------------------------------ */

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct xor_state x;
    struct vrev__listener *echo;
    struct bufferevent *echo_conn, *client;
    struct evbuffer *got;
    int client_closed;
    vrev_instance *inst[2];
    char log[4096];
};

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    ((struct world *)arg)->echo_conn = NULL;
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

static void client_read(struct bufferevent *bev, void *arg)
{
    evbuffer_add_buffer(((struct world *)arg)->got, bufferevent_get_input(bev));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        ((struct world *)arg)->client_closed = 1;
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev;
    bufferevent_setcb(bev, client_read, NULL, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_write(bev, MSG, MSG_LEN);
}

static void keep_log(int level, const char *component, const char *message, void *user)
{
    (void)level;
    struct world *w = user;
    size_t n = strlen(w->log);
    snprintf(w->log + n, sizeof(w->log) - n, "%s: %s\n", component, message);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    w->got = evbuffer_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    vrev_ctx_set_log(w->ctx, VREV_LOG_INFO, keep_log, w);
    assert_int_equal(vrev_ctx_add_transport(w->ctx, &xor_ops, &w->x), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, echo_accept, w, &w->echo), 0);
}

static void world_done(struct world *w)
{
    vrev_instance_free(w->inst[0]);
    vrev_instance_free(w->inst[1]);
    if (w->client)
        bufferevent_free(w->client);
    if (w->echo_conn)
        bufferevent_free(w->echo_conn);
    vrev__listener_free(w->echo);
    evbuffer_free(w->got);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
    assert_int_equal(w->x.freed, 1);
}

static void start(struct world *w, int i, const char *cfg)
{
    char err[512];
    if (vrev_instance_new_json(&w->inst[i], w->ctx, cfg, strlen(cfg), "t.json", err, sizeof(err)) <
        0)
        fail_msg("%s", err);
    assert_int_equal(vrev_instance_start(w->inst[i]), 0);
}

/* Run the loop until cond holds (at most 3 s). */
static void run_until(struct world *w, bool (*cond)(struct world *))
{
    for (int i = 0; i < 300 && !cond(w); i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
}

static bool client_done(struct world *w)
{
    return evbuffer_get_length(w->got) >= MSG_LEN || w->client_closed;
}

static bool tunnel_up(struct world *w)
{
    return strstr(w->log, "[portal] tunnel up") != NULL;
}

/* Connect a client to `port`, send MSG, and run until it came back or the client closed. */
static void run_client(struct world *w, uint16_t port)
{
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", port), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, client_dialed, w, NULL), 0);
    run_until(w, client_done);
}

static bool got_msg(struct world *w)
{
    return evbuffer_get_length(w->got) == MSG_LEN &&
           memcmp(evbuffer_pullup(w->got, -1), MSG, MSG_LEN) == 0;
}

/* A VMess server inbound and a client outbound, each with `security` on its stream. */
static void forward_pair(struct world *w, const char *server_sec, const char *client_sec)
{
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "{\"inbounds\": [{\"tag\": \"server\", \"listen\": \"127.0.0.1\", \"port\": 0,"
             " \"protocol\": \"vmess\", \"settings\": {\"clients\": [{\"id\": \"" UUID "\"}]},"
             " \"streamSettings\": {\"security\": \"%s\"}}],"
             " \"outbounds\": [{\"protocol\": \"freedom\", \"settings\": {\"redirect\":"
             " \"127.0.0.1:%u\"}}]}",
             server_sec, vrev__listener_port(w->echo));
    start(w, 0, cfg);
    snprintf(cfg, sizeof(cfg),
             "{\"inbounds\": [{\"tag\": \"in\", \"listen\": \"127.0.0.1\", \"port\": 0,"
             " \"protocol\": \"dokodemo-door\", \"settings\": {\"address\": \"127.0.0.1\","
             " \"port\": 9}}], \"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\":"
             " [{\"address\": \"127.0.0.1\", \"port\": %u, \"users\": [{\"id\": \"" UUID "\"}]}]},"
             " \"streamSettings\": {\"security\": \"%s\"}}]}",
             vrev_instance_inbound_port(w->inst[0], "server"), client_sec);
    start(w, 1, cfg);
}

static void test_vmess_over_layer(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    forward_pair(&w, "xor-demo", "xor-demo");
    run_client(&w, vrev_instance_inbound_port(w.inst[1], "in"));
    assert_true(got_msg(&w));
    assert_int_equal(w.x.wraps[0], 1);
    assert_int_equal(w.x.wraps[1], 1);
    /* the VMess request header and two sealed chunks went through it, one way and back */
    assert_true(w.x.bytes_out > 2 * (int)MSG_LEN);
    world_done(&w);
}

/* One end without the layer: the VMess server sees XORed bytes and authenticates nothing
 * (it then drains the connection, as V2Ray does); the echo server is never reached. */
static void test_layer_is_in_the_path(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    forward_pair(&w, "none", "xor-demo");
    run_client(&w, vrev_instance_inbound_port(w.inst[1], "in"));
    assert_int_equal(evbuffer_get_length(w.got), 0);
    assert_non_null(strstr(w.log, "VMess authentication failed"));
    assert_int_equal(w.x.wraps[0], 1);
    assert_int_equal(w.x.wraps[1], 0);
    assert_null(w.echo_conn);
    world_done(&w);
}

/* A layer that refuses to wrap: the dial fails cleanly, the log names the layer, the client
 * is closed. */
static void test_layer_failure(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    forward_pair(&w, "xor-demo", "xor-demo");
    w.x.fail = 1;
    run_client(&w, vrev_instance_inbound_port(w.inst[1], "in"));
    assert_int_equal(evbuffer_get_length(w.got), 0);
    assert_true(w.client_closed);
    assert_non_null(strstr(w.log, "xor-demo: could not set up the layer (client side)"));
    assert_null(w.echo_conn);
    world_done(&w);
}

/* A reverse tunnel (V2Ray JSON portal + bridge) whose link runs over the layer. */
static void test_reverse_over_layer(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    start(&w, 0,
          "{\"reverse\": {\"portals\": [{\"tag\": \"portal\", \"domain\": \"t.vrev.test\"}]},"
          " \"inbounds\": [{\"tag\": \"external\", \"listen\": \"127.0.0.1\", \"port\": 0,"
          "   \"protocol\": \"dokodemo-door\", \"settings\": {\"address\": \"127.0.0.1\","
          "   \"port\": 80, \"network\": \"tcp\"}},"
          "  {\"tag\": \"interconn\", \"listen\": \"127.0.0.1\", \"port\": 0,"
          "   \"protocol\": \"vmess\", \"settings\": {\"clients\": [{\"id\": \"" UUID "\"}]},"
          "   \"streamSettings\": {\"security\": \"xor-demo\"}}],"
          " \"routing\": {\"rules\": [{\"type\": \"field\","
          "   \"inboundTag\": [\"external\", \"interconn\"], \"outboundTag\": \"portal\"}]}}");
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "{\"reverse\": {\"bridges\": [{\"tag\": \"bridge\", \"domain\": \"t.vrev.test\"}]},"
             " \"outbounds\": [{\"tag\": \"tunnel\", \"protocol\": \"vmess\", \"settings\":"
             "   {\"vnext\": [{\"address\": \"127.0.0.1\", \"port\": %u, \"users\":"
             "   [{\"id\": \"" UUID "\"}]}]}, \"streamSettings\": {\"security\": \"xor-demo\"}},"
             "  {\"tag\": \"local\", \"protocol\": \"freedom\", \"settings\":"
             "   {\"redirect\": \"127.0.0.1:%u\"}}],"
             " \"routing\": {\"rules\": [{\"type\": \"field\", \"inboundTag\": [\"bridge\"],"
             "   \"domain\": [\"full:t.vrev.test\"], \"outboundTag\": \"tunnel\"},"
             "  {\"type\": \"field\", \"inboundTag\": [\"bridge\"], \"outboundTag\": \"local\"}]}}",
             vrev_instance_inbound_port(w.inst[0], "interconn"), vrev__listener_port(w.echo));
    start(&w, 1, cfg);
    run_until(&w, tunnel_up);
    run_client(&w, vrev_instance_inbound_port(w.inst[0], "external"));
    assert_true(got_msg(&w));
    assert_true(w.x.wraps[0] >= 1); /* the bridge's tunnel(s) */
    assert_int_equal(w.x.wraps[0], w.x.wraps[1]);
    world_done(&w);
}

/* The JSON-free tunnel API over the layer: vrev_tunnel_opts_set_transport on both ends. */
static int tunnel_opts(vrev_tunnel_opts **o, const char *transport)
{
    assert_int_equal(vrev_tunnel_opts_new(o, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(*o, UUID), 0);
    return vrev_tunnel_opts_set_transport(*o, transport);
}

static bool portal_up(struct world *w)
{
    return strstr(w->log, "tunnel up") != NULL;
}

static void test_tunnel_api_over_layer(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    vrev_tunnel_opts *po, *bo;
    char err[256], cfg[2048];
    assert_int_equal(tunnel_opts(&po, "xor-demo"), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(po, "127.0.0.1:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(po, "127.0.0.1:0", NULL), 0);
    vrev_portal *portal;
    if (vrev_portal_new(&portal, w.ctx, po, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    /* the V2Ray equivalent names the layer as the stream security */
    assert_true(vrev_tunnel_opts_print_config(po, 1, cfg, sizeof(cfg)) > 0);
    assert_non_null(strstr(cfg, "\"streamSettings\": { \"security\": \"xor-demo\" }"));
    char portal_at[64], target[64];
    snprintf(portal_at, sizeof(portal_at), "127.0.0.1:%u", vrev_portal_tunnel_port(portal));
    snprintf(target, sizeof(target), "127.0.0.1:%u", vrev__listener_port(w.echo));
    assert_int_equal(tunnel_opts(&bo, "xor-demo"), 0);
    assert_int_equal(vrev_tunnel_opts_set_portal(bo, portal_at), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(bo, NULL, target), 0);
    vrev_bridge *bridge, *other;
    if (vrev_bridge_new(&bridge, w.ctx, bo, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_true(vrev_tunnel_opts_print_config(bo, 0, cfg, sizeof(cfg)) > 0);
    assert_non_null(strstr(cfg, "\"security\": \"xor-demo\""));
    assert_int_equal(vrev_bridge_start(bridge), 0);
    run_until(&w, portal_up);
    run_client(&w, vrev_portal_public_port(portal, 0));
    assert_true(got_msg(&w));
    assert_true(w.x.wraps[0] >= 1 && w.x.wraps[0] == w.x.wraps[1]);
    /* errors: an unknown name, TLS as well, a bad name */
    assert_int_equal(vrev_tunnel_opts_set_transport(bo, "nope"), 0);
    assert_int_equal(vrev_bridge_new(&other, w.ctx, bo, err, sizeof(err)), VREV_ERR_INVAL);
    assert_string_equal(err, "no transport named 'nope' is registered on the context");
    assert_int_equal(vrev_tunnel_opts_set_transport(bo, "xor-demo"), 0);
    assert_int_equal(vrev_tunnel_opts_set_tls(bo, 1), 0);
    assert_int_equal(vrev_bridge_new(&other, w.ctx, bo, err, sizeof(err)), VREV_ERR_INVAL);
    assert_string_equal(err, "TLS and a custom transport exclude each other");
    assert_int_equal(vrev_tunnel_opts_set_transport(bo, "a\"b"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_set_transport(bo, NULL), 0); /* none again */
    vrev_bridge_free(bridge);
    vrev_portal_free(portal);
    vrev_tunnel_opts_free(po);
    vrev_tunnel_opts_free(bo);
    world_done(&w);
}

/* A name nobody registered is refused at load, naming the key; a registered name is not
 * known to another ctx. */
static void test_unknown_name(void **state)
{
    (void)state;
    const char *cfg = "{\"outbounds\": [{\"protocol\": \"freedom\","
                      " \"streamSettings\": {\"security\": \"xor-demo\"}}]}";
    char err[512];
    vrev_instance *inst = NULL;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, cfg, strlen(cfg), "t.json", err, sizeof(err)),
        VREV_ERR_CONFIG_UNSUPPORTED);
    assert_string_equal(err, "t.json:1:71: outbounds[0].streamSettings.security: security "
                             "\"xor-demo\" is not supported (use \"tls\", \"none\" or a "
                             "registered transport)");
    struct xor_state x;
    memset(&x, 0, sizeof(x));
    assert_int_equal(vrev_ctx_add_transport(ctx, &xor_ops, &x), 0);
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, cfg, strlen(cfg), "t.json", err, sizeof(err)), 0);
    vrev_instance_free(inst);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
    assert_int_equal(x.freed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_register_alloc_failure),
        cmocka_unit_test(test_vmess_over_layer),
        cmocka_unit_test(test_layer_is_in_the_path),
        cmocka_unit_test(test_layer_failure),
        cmocka_unit_test(test_reverse_over_layer),
        cmocka_unit_test(test_tunnel_api_over_layer),
        cmocka_unit_test(test_unknown_name),
    };
    return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
