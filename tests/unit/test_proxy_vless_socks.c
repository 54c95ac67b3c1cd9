/* lib/proxy VLESS and SOCKS5 on loopback, in one event loop with two engines:
 *
 *   client --> dokodemo-door (target vrev.test:4242) -> vless|socks out ==TCP==>
 *              vless|socks in -> recorder -> freedom (redirect to the echo server) -> echo
 *
 * The recorder outbound notes the target and user each link arrives with. Also: bulk data
 * with a half-close through the raw streams, refusals (wrong UUID: quiet until the handshake
 * deadline; wrong password: SOCKS status then close), headers split into single bytes and
 * pipelined in one write against the inbounds, fake servers that answer the outbounds in
 * single bytes (or wrongly), and stopping the engines in the middle of handshakes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "codec/socks5.h"
#include "codec/vless.h"
#include "proxy/inbound.h"
#include "proxy/proxy.h"
#include "testutil.h"

static const uint8_t uuid[16] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38,
                                 0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b};
static const uint8_t other_uuid[16] = {0x0e, 0xbd, 0x0c, 0x5f, 0x62, 0xf2, 0x4f, 0x8a,
                                       0x9f, 0x77, 0x0d, 0x8c, 0x3b, 0x1c, 0x7e, 0x11};
#define TARGET_HOST "vrev.test"
#define TARGET_PORT 4242
#define PING "ping through vless/socks"

struct world;

/* A scripted TCP endpoint: sends `script` (chunk bytes per millisecond tick, 0: at once),
 * optionally half-closes after it, and records everything it receives. A fake server's
 * peer first waits for `expect` bytes. */
struct peer {
    struct world *w;
    struct bufferevent *bev;
    const uint8_t *script;
    size_t script_len, sent, chunk, expect;
    bool shut_after, started, eof, error;
    struct event *tick;
    struct evbuffer *got;
};

struct echo_conn {
    struct bufferevent *bev;
    bool eof;
};

struct recorder {
    struct vrev__outbound base; /* first */
    struct vrev__outbound *next;
    int links;
    char user[64];
    bool has_user;
    struct vrev__addr target;
};

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__engine client_engine, server_engine;
    struct vrev__inbound *door, *server_in;
    struct recorder *rec;
    struct vrev__listener *echo, *fake;
    struct echo_conn echo_conns[32];
    int n_echo;
    struct peer *peers[8];
    int n_peers;
    struct peer fake_tpl; /* what the fake server's accepted peer does */
    struct peer *client;
    size_t want; /* stop the loop once the client has this many bytes */
};

/* ---- echo server: echoes, and passes a half-close back once its output has drained ------- */

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_write(struct bufferevent *bev, void *arg)
{
    struct echo_conn *c = arg;
    if (c->eof && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    struct echo_conn *c = arg;
    if (what & BEV_EVENT_EOF && !(what & BEV_EVENT_ERROR)) {
        echo_read(bev, arg);
        c->eof = true;
        echo_write(bev, arg);
        return;
    }
    bufferevent_free(bev);
    c->bev = NULL;
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    assert_true(w->n_echo < 32);
    struct echo_conn *c = &w->echo_conns[w->n_echo++];
    c->bev = vrev__bev_socket(w->ctx, fd);
    bufferevent_setcb(c->bev, echo_read, echo_write, echo_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- peers ------------------------------------------------------------------------------ */

static void peer_check_done(struct peer *p)
{
    struct world *w = p->w;
    if (p == w->client &&
        (p->eof || p->error || (w->want && evbuffer_get_length(p->got) >= w->want)))
        event_base_loopexit(w->base, NULL);
}

static void peer_send(struct peer *p)
{
    size_t n = p->script_len - p->sent;
    if (p->chunk && n > p->chunk)
        n = p->chunk;
    bufferevent_write(p->bev, p->script + p->sent, n);
    p->sent += n;
    if (p->sent < p->script_len) {
        struct timeval tv = {0, 1000};
        evtimer_add(p->tick, &tv);
    } /* a half-close follows once the output has drained (peer_write) */
}

static void peer_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    peer_send(arg);
}

static void peer_write(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    if (p->shut_after && p->sent == p->script_len &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void peer_start(struct peer *p)
{
    p->started = true;
    if (p->script_len)
        peer_send(p);
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    evbuffer_add_buffer(p->got, bufferevent_get_input(bev));
    if (!p->started && evbuffer_get_length(p->got) >= p->expect)
        peer_start(p);
    peer_check_done(p);
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    peer_read(bev, arg);
    if (what & BEV_EVENT_EOF)
        p->eof = true;
    if (what & BEV_EVENT_ERROR)
        p->error = true;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_disable(bev, EV_READ);
    peer_check_done(p);
}

static struct peer *peer_new(struct world *w, struct bufferevent *bev, const struct peer *tpl)
{
    assert_true(w->n_peers < 8);
    struct peer *p = calloc(1, sizeof(*p));
    if (tpl)
        *p = *tpl;
    p->w = w;
    p->bev = bev;
    p->got = evbuffer_new();
    p->tick = evtimer_new(w->base, peer_tick, p);
    w->peers[w->n_peers++] = p;
    if (bev) {
        bufferevent_setcb(bev, peer_read, peer_write, peer_event, p);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    }
    return p;
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct peer *p = arg;
    assert_int_equal(err, 0);
    p->bev = bev;
    bufferevent_setcb(bev, peer_read, peer_write, peer_event, p);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    peer_start(p);
}

/* Connect a client peer to `port` that sends script (chunk bytes per tick). */
static struct peer *connect_client(struct world *w, uint16_t port, const void *script, size_t len,
                                   size_t chunk, bool shut_after)
{
    struct peer tpl = {0};
    tpl.script = script;
    tpl.script_len = len;
    tpl.chunk = chunk;
    tpl.shut_after = shut_after;
    struct peer *p = peer_new(w, NULL, &tpl); /* started once connected */
    w->client = p;
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", port), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, client_dialed, p, NULL), 0);
    return p;
}

static void fake_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    struct peer *p = peer_new(w, vrev__bev_socket(w->ctx, fd), &w->fake_tpl);
    if (p->expect == 0)
        peer_start(p);
}

/* ---- the recorder outbound ---------------------------------------------------------------- */

static int rec_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                      struct bufferevent *link)
{
    struct recorder *r = (struct recorder *)ob;
    r->links++;
    r->target = info->target;
    r->has_user = info->user != NULL;
    if (info->user)
        snprintf(r->user, sizeof(r->user), "%s", info->user);
    return r->next->ops->handle(r->next, info, link);
}

static void rec_destroy(struct vrev__outbound *ob)
{
    struct recorder *r = (struct recorder *)ob;
    r->next->ops->destroy(r->next);
    vrev__outbound_cleanup(ob);
    vrev__free(ob->engine->ctx, ob);
}

static const struct vrev__outbound_ops rec_ops = {
    .protocol = "recorder", .handle = rec_handle, .destroy = rec_destroy};

/* ---- worlds ----------------------------------------------------------------------------- */

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev__engine_init(&w->client_engine, w->ctx), 0);
    assert_int_equal(vrev__engine_init(&w->server_engine, w->ctx), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, echo_accept, w, &w->echo), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, fake_accept, w, &w->fake), 0);
    /* server side: recorder -> freedom redirected to the echo server */
    struct vrev__outbound *fr;
    struct vrev__freedom_opts f = {"127.0.0.1", vrev__listener_port(w->echo), VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(&w->server_engine, "direct", &f, &fr), 0);
    w->rec = vrev__calloc(w->ctx, 1, sizeof(*w->rec));
    assert_int_equal(vrev__outbound_init(&w->rec->base, &w->server_engine, &rec_ops, "rec"), 0);
    w->rec->next = fr;
    assert_int_equal(vrev__engine_add_outbound(&w->server_engine, &w->rec->base), 0);
}

/* The client side: dokodemo-door (target vrev.test:4242) -> ob. */
static void world_client(struct world *w, struct vrev__outbound *ob)
{
    assert_int_equal(vrev__engine_add_outbound(&w->client_engine, ob), 0);
    struct vrev__dokodemo_opts o = {"127.0.0.1", 0, TARGET_HOST, TARGET_PORT, VREV_ROUTE_TCP};
    assert_int_equal(vrev__dokodemo_new(&w->client_engine, "door", &o, &w->door), 0);
}

static void server_vless(struct world *w, uint32_t handshake_ms)
{
    w->server_engine.policy.handshake_ms = handshake_ms;
    struct vrev__in_user users[2] = {{{0}, "other@test"}, {{0}, "vless@test"}};
    memcpy(users[0].uuid, other_uuid, 16);
    memcpy(users[1].uuid, uuid, 16);
    struct vrev__in_user_opts o = {"127.0.0.1", 0, users, 2};
    assert_int_equal(vrev__vless_in_new(&w->server_engine, "in", &o, &w->server_in), 0);
}

static void server_socks(struct world *w, bool password)
{
    static const struct vrev__socks_in_account acc[2] = {{"other", "x"}, {"fwd", "secret 1"}};
    struct vrev__socks_in_opts o = {
        .listen = "127.0.0.1", .accounts = password ? acc : NULL, .n_accounts = password ? 2 : 0};
    assert_int_equal(vrev__socks_in_new(&w->server_engine, "in", &o, &w->server_in), 0);
}

static struct vrev__outbound *vless_out(struct world *w, uint16_t port, const uint8_t *id)
{
    struct vrev__user_out_opts o = {"127.0.0.1", port, {0}, 0};
    memcpy(o.uuid, id, 16);
    struct vrev__outbound *ob;
    assert_int_equal(vrev__vless_out_new(&w->client_engine, "out", &o, 1, &ob), 0);
    return ob;
}

static struct vrev__outbound *socks_out(struct world *w, uint16_t port, const char *user,
                                        const char *pass)
{
    struct vrev__socks_out_opts o = {"127.0.0.1", port, user, pass};
    struct vrev__outbound *ob;
    assert_int_equal(vrev__socks_out_new(&w->client_engine, "out", &o, 1, &ob), 0);
    return ob;
}

static uint16_t server_port(struct world *w)
{
    return vrev__inbound_port(w->server_in);
}

static uint16_t door_port(struct world *w)
{
    return vrev__inbound_port(w->door);
}

static void world_run(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

static void world_done(struct world *w)
{
    for (int i = 0; i < w->n_peers; i++) {
        struct peer *p = w->peers[i];
        if (p->bev)
            bufferevent_free(p->bev);
        event_free(p->tick);
        evbuffer_free(p->got);
        free(p);
    }
    vrev__inbound_free(w->door);
    vrev__inbound_free(w->server_in);
    vrev__engine_cleanup(&w->client_engine);
    vrev__engine_cleanup(&w->server_engine);
    for (int i = 0; i < w->n_echo; i++)
        if (w->echo_conns[i].bev)
            bufferevent_free(w->echo_conns[i].bev);
    vrev__listener_free(w->echo);
    vrev__listener_free(w->fake);
    event_base_loop(w->base, EVLOOP_NONBLOCK); /* deferred callbacks release their refs */
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

static void assert_got(struct peer *p, const void *want, size_t len)
{
    assert_int_equal(evbuffer_get_length(p->got), len);
    assert_memory_equal(evbuffer_pullup(p->got, -1), want, len);
}

static void assert_recorded(struct world *w, const char *user)
{
    assert_int_equal(w->rec->links, 1);
    assert_int_equal(w->rec->target.type, VREV_ADDR_DOMAIN);
    assert_int_equal(w->rec->target.len, strlen(TARGET_HOST));
    assert_memory_equal(w->rec->target.host, TARGET_HOST, strlen(TARGET_HOST));
    assert_int_equal(w->rec->target.port, TARGET_PORT);
    assert_int_equal(w->rec->has_user, user != NULL);
    if (user)
        assert_string_equal(w->rec->user, user);
}

static uint8_t *bulk_pattern(size_t n)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + (i >> 13));
    return p;
}

/* Through the chain: n bytes, then a half-close; everything comes back, then a clean EOF. */
static void run_bulk(struct world *w, size_t n)
{
    uint8_t *data = bulk_pattern(n);
    struct peer *c = connect_client(w, door_port(w), data, n, 0, true);
    w->want = 0; /* run until the EOF */
    world_run(w, 10000);
    assert_true(c->eof);
    assert_false(c->error);
    assert_got(c, data, n);
    free(data);
}

/* ---- chains ----------------------------------------------------------------------------- */

static void test_vless_chain(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_vless(&w, 60000);
    world_client(&w, vless_out(&w, server_port(&w), uuid));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    w.want = strlen(PING);
    world_run(&w, 5000);
    assert_got(c, PING, strlen(PING));
    assert_recorded(&w, "vless@test");
    world_done(&w); /* with the connection still up */
}

static void test_vless_chain_bulk(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_vless(&w, 60000);
    world_client(&w, vless_out(&w, server_port(&w), uuid));
    run_bulk(&w, 4 << 20);
    assert_recorded(&w, "vless@test");
    assert_int_equal(w.client_engine.stats.relays_ok, 1);
    world_done(&w);
}

static void test_socks_chain_noauth(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_socks(&w, false);
    world_client(&w, socks_out(&w, server_port(&w), NULL, NULL));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    w.want = strlen(PING);
    world_run(&w, 5000);
    assert_got(c, PING, strlen(PING));
    assert_recorded(&w, NULL);
    world_done(&w);
}

static void test_socks_chain_password(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_socks(&w, true);
    world_client(&w, socks_out(&w, server_port(&w), "fwd", "secret 1"));
    run_bulk(&w, 1 << 20);
    assert_recorded(&w, "fwd");
    world_done(&w);
}

/* ---- refusals --------------------------------------------------------------------------- */

static void test_vless_wrong_uuid(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_vless(&w, 300);
    static const uint8_t unknown[16] = {1, 2, 3};
    world_client(&w, vless_out(&w, server_port(&w), unknown));
    struct timeval t0, t1, dt;
    gettimeofday(&t0, NULL);
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    world_run(&w, 5000);
    gettimeofday(&t1, NULL);
    timersub(&t1, &t0, &dt);
    /* no answer, and no close before the handshake deadline (anti-probing) */
    assert_true(c->eof || c->error);
    assert_int_equal(evbuffer_get_length(c->got), 0);
    assert_true(dt.tv_sec * 1000 + dt.tv_usec / 1000 >= 250);
    assert_int_equal(w.rec->links, 0);
    world_done(&w);
}

static void test_socks_wrong_password(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_socks(&w, true);
    world_client(&w, socks_out(&w, server_port(&w), "fwd", "secret 2"));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    world_run(&w, 5000);
    assert_true(c->eof || c->error);
    assert_int_equal(evbuffer_get_length(c->got), 0);
    assert_int_equal(w.rec->links, 0);
    world_done(&w);
}

/* ---- the inbounds, byte by byte and pipelined ------------------------------------------- */

static size_t vless_request(uint8_t *out, size_t cap, const uint8_t *id, const char *payload)
{
    struct vrev__addr t;
    assert_int_equal(vrev__addr_from_text(&t, TARGET_HOST, TARGET_PORT), 0);
    int n = vrev__vless_request_encode(out, cap, id, VREV_VLESS_TCP, &t, NULL, 0);
    assert_true(n > 0);
    memcpy(out + n, payload, strlen(payload));
    return (size_t)n + strlen(payload);
}

static void test_vless_in_split_request(void **state)
{
    (void)state;
    uint8_t req[VREV_VLESS_REQUEST_MAX + 16];
    size_t n = vless_request(req, sizeof(req), uuid, "hello");
    for (size_t chunk = 1; chunk <= 2; chunk++) { /* byte by byte, then all at once */
        struct world w;
        world_init(&w);
        server_vless(&w, 60000);
        struct peer *c = connect_client(&w, server_port(&w), req, n, chunk == 1 ? 1 : 0, false);
        w.want = 2 + 5;
        world_run(&w, 5000);
        assert_got(c, "\0\0hello", 7);
        assert_recorded(&w, "vless@test");
        world_done(&w);
    }
}

static const uint8_t socks_script[] = {
    5,   2,   0,   2, /* greeting: no auth, password */
    1,   3,   'f', 'w', 'd', 8,   's', 'e', 'c', 'r', 'e', 't', ' ', '1', /* credentials */
    5,   1,   0,   3,   9,   'v', 'r', 'e', 'v', '.', 't', 'e', 's', 't', 0x10, 0x92, /* CONNECT */
    'h', 'e', 'l', 'l', 'o'};

static void test_socks_in_split_and_pipelined(void **state)
{
    (void)state;
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct world w;
        world_init(&w);
        server_socks(&w, true);
        uint16_t port = server_port(&w);
        struct peer *c = connect_client(&w, port, socks_script, sizeof(socks_script), chunk, false);
        const uint8_t want[] = {
            5,   2,   1,   0,   5,  0, 0, 1, 127, 0, 0, 1, (uint8_t)(port >> 8), (uint8_t)port,
            'h', 'e', 'l', 'l', 'o'};
        w.want = sizeof(want);
        world_run(&w, 5000);
        assert_got(c, want, sizeof(want));
        assert_recorded(&w, "fwd");
        world_done(&w);
    }
}

static void socks_refusal(const uint8_t *script, size_t len, const uint8_t *want, size_t want_len,
                          bool password)
{
    struct world w;
    world_init(&w);
    server_socks(&w, password);
    struct peer *c = connect_client(&w, server_port(&w), script, len, 0, false);
    world_run(&w, 5000);
    assert_true(c->eof); /* the reply, then a clean close */
    assert_got(c, want, want_len);
    assert_int_equal(w.rec->links, 0);
    world_done(&w);
}

static void test_socks_in_refusals(void **state)
{
    (void)state;
    const uint8_t udp[] = {5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, 0, 53};
    const uint8_t bind[] = {5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 53};
    const uint8_t not_supported[] = {5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0};
    socks_refusal(udp, sizeof(udp), not_supported, sizeof(not_supported), false);
    socks_refusal(bind, sizeof(bind), not_supported, sizeof(not_supported), false);
    const uint8_t bad_atyp[] = {5, 1, 0, 5, 1, 0, 9, 1, 2};
    const uint8_t atyp_unsupported[] = {5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0};
    socks_refusal(bad_atyp, sizeof(bad_atyp), atyp_unsupported, sizeof(atyp_unsupported), false);
    const uint8_t only_noauth[] = {5, 1, 0};
    const uint8_t no_method[] = {5, 0xff};
    socks_refusal(only_noauth, sizeof(only_noauth), no_method, sizeof(no_method), true);
    const uint8_t wrong_pass[] = {5, 1, 2, 1, 3, 'f', 'w', 'd', 1, 'x'};
    const uint8_t refused[] = {5, 2, 1, 0xff};
    socks_refusal(wrong_pass, sizeof(wrong_pass), refused, sizeof(refused), true);
}

/* ---- the outbounds against fake servers --------------------------------------------------- */

static void test_vless_out_split_response(void **state)
{
    (void)state;
    uint8_t req[VREV_VLESS_REQUEST_MAX + 16];
    size_t n = vless_request(req, sizeof(req), uuid, PING);
    /* a response header with addons (flow = ""), one byte per tick, then the payload */
    static const uint8_t resp[] = {0, 2, 0x0a, 0, 'p', 'o', 'n', 'g'};
    struct world w;
    world_init(&w);
    w.fake_tpl.expect = n;
    w.fake_tpl.script = resp;
    w.fake_tpl.script_len = sizeof(resp);
    w.fake_tpl.chunk = 1;
    world_client(&w, vless_out(&w, vrev__listener_port(w.fake), uuid));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    w.want = 4;
    world_run(&w, 5000);
    assert_got(c, "pong", 4);
    struct peer *server = w.peers[1];
    assert_got(server, req, n); /* header (sent early) and payload, as one stream */
    world_done(&w);
}

static void test_vless_out_bad_response(void **state)
{
    (void)state;
    static const uint8_t resp[] = {1, 0, 'p', 'o', 'n', 'g'};
    struct world w;
    world_init(&w);
    w.fake_tpl.script = resp;
    w.fake_tpl.script_len = sizeof(resp);
    world_client(&w, vless_out(&w, vrev__listener_port(w.fake), uuid));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    world_run(&w, 5000);
    assert_true(c->eof || c->error);
    assert_int_equal(evbuffer_get_length(c->got), 0); /* no byte of a bad stream */
    assert_int_equal(w.client_engine.stats.relays_failed, 1);
    world_done(&w);
}

static void test_socks_out_split_replies(void **state)
{
    (void)state;
    /* what a 4.34 client sends first: greeting and credentials in one write */
    static const uint8_t hello[] = {5,   1,   2,   1,   3,   'f', 'w', 'd', 8,
                                    's', 'e', 'c', 'r', 'e', 't', ' ', '1'};
    static const uint8_t request[] = {5,   1,   0,   3,   9,   'v', 'r',  'e',
                                      'v', '.', 't', 'e', 's', 't', 0x10, 0x92};
    static const uint8_t replies[] = {5,   2,   1,   0, 5,  0,   0,   3,   4,  'h',
                                      'o', 's', 't', 0, 80, 'p', 'o', 'n', 'g'};
    struct world w;
    world_init(&w);
    w.fake_tpl.expect = sizeof(hello);
    w.fake_tpl.script = replies;
    w.fake_tpl.script_len = sizeof(replies);
    w.fake_tpl.chunk = 1;
    world_client(&w, socks_out(&w, vrev__listener_port(w.fake), "fwd", "secret 1"));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    w.want = 4;
    world_run(&w, 5000);
    assert_got(c, "pong", 4);
    struct peer *server = w.peers[1];
    uint8_t want[sizeof(hello) + sizeof(request) + sizeof(PING) - 1];
    memcpy(want, hello, sizeof(hello));
    memcpy(want + sizeof(hello), request, sizeof(request));
    memcpy(want + sizeof(hello) + sizeof(request), PING, strlen(PING));
    w.client = NULL;
    world_run(&w, 50); /* the payload follows the reply */
    assert_got(server, want, sizeof(want));
    world_done(&w);
}

static void test_socks_out_refused(void **state)
{
    (void)state;
    static const uint8_t replies[] = {5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0}; /* conn refused */
    struct world w;
    world_init(&w);
    w.fake_tpl.expect = 3;
    w.fake_tpl.script = replies;
    w.fake_tpl.script_len = sizeof(replies);
    world_client(&w, socks_out(&w, vrev__listener_port(w.fake), NULL, NULL));
    struct peer *c = connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);
    world_run(&w, 5000);
    assert_true(c->eof || c->error);
    assert_int_equal(evbuffer_get_length(c->got), 0);
    world_done(&w);
}

/* Stopping both engines with handshakes in every state frees everything (ASan checks). */
static void test_stop_mid_handshake(void **state)
{
    (void)state;
    uint8_t req[VREV_VLESS_REQUEST_MAX + 16];
    size_t n = vless_request(req, sizeof(req), uuid, "");
    struct world w;
    world_init(&w);
    server_vless(&w, 60000);
    struct vrev__inbound *vless_in = w.server_in;
    server_socks(&w, true);
    w.fake_tpl.expect = 1000; /* never answers */
    world_client(&w, socks_out(&w, vrev__listener_port(w.fake), NULL, NULL));
    connect_client(&w, vrev__inbound_port(vless_in), req, n - 3, 0, false); /* partial */
    connect_client(&w, server_port(&w), socks_script, 10, 0, false);        /* mid-credentials */
    connect_client(&w, door_port(&w), PING, strlen(PING), 0, false);        /* waits for the fake */
    static const uint8_t unknown[16] = {9};
    uint8_t bad[VREV_VLESS_REQUEST_MAX + 16];
    size_t bn = vless_request(bad, sizeof(bad), unknown, "probe");
    connect_client(&w, vrev__inbound_port(vless_in), bad, bn, 0, false); /* draining */
    w.client = NULL;
    world_run(&w, 200);
    assert_int_equal(w.rec->links, 0);
    vrev__inbound_free(vless_in);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vless_chain),
        cmocka_unit_test(test_vless_chain_bulk),
        cmocka_unit_test(test_socks_chain_noauth),
        cmocka_unit_test(test_socks_chain_password),
        cmocka_unit_test(test_vless_wrong_uuid),
        cmocka_unit_test(test_socks_wrong_password),
        cmocka_unit_test(test_vless_in_split_request),
        cmocka_unit_test(test_socks_in_split_and_pipelined),
        cmocka_unit_test(test_socks_in_refusals),
        cmocka_unit_test(test_vless_out_split_response),
        cmocka_unit_test(test_vless_out_bad_response),
        cmocka_unit_test(test_socks_out_split_replies),
        cmocka_unit_test(test_socks_out_refused),
        cmocka_unit_test(test_stop_mid_handshake),
    };
    return cmocka_run_group_tests_name("proxy_vless_socks", tests, NULL, NULL);
}
