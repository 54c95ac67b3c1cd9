/* lib/proxy on loopback: dokodemo-door -> dispatcher -> freedom (with redirect) -> echo
 * server; blackhole; dial failure; stopping the engine with live connections or with dials
 * under way; live links armed to reset if the process dies. Every test ends with nothing left
 * allocated through the context. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "proxy/inbound.h"
#include "proxy/proxy.h"
#include "testutil.h"

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__engine engine;
    struct vrev__listener *echo;
    struct vrev__inbound *in;
    struct bufferevent *client;
    struct evbuffer *got;
    int eof, error;
    size_t want;
    struct tu_failing_alloc fa; /* counts what is allocated through the context */
};

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static struct bufferevent *echo_conns[16];
static int n_echo_conns;

static void echo_forget(struct bufferevent *bev)
{
    for (int i = 0; i < n_echo_conns; i++)
        if (echo_conns[i] == bev)
            echo_conns[i] = NULL;
    bufferevent_free(bev);
}

/* After the client's end of stream: finish echoing, then close. */
static void echo_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (!(bufferevent_get_enabled(bev) & EV_READ) &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        echo_forget(bev);
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_EOF) {
        echo_read(bev, arg);
        bufferevent_disable(bev, EV_READ);
        echo_write(bev, arg);
        return;
    }
    echo_forget(bev);
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    struct bufferevent *bev = vrev__bev_socket(w->ctx, fd);
    bufferevent_setcb(bev, echo_read, echo_write, echo_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    assert_true(n_echo_conns < 16);
    echo_conns[n_echo_conns++] = bev;
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    evbuffer_add_buffer(w->got, bufferevent_get_input(bev));
    if (w->want && evbuffer_get_length(w->got) >= w->want)
        event_base_loopexit(w->base, NULL);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    struct world *w = arg;
    client_read(bev, arg);
    if (what & BEV_EVENT_EOF)
        w->eof = 1;
    if (what & BEV_EVENT_ERROR)
        w->error = 1;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        event_base_loopexit(w->base, NULL);
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev;
    bufferevent_setcb(bev, client_read, NULL, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_write(bev, "ping through the engine", 23);
}

static void world_init(struct world *w, struct vrev__outbound *(*make)(struct world *))
{
    memset(w, 0, sizeof(*w));
    n_echo_conns = 0;
    w->base = event_base_new();
    vrev_allocator a;
    tu_failing_allocator(&a, &w->fa);
    assert_int_equal(vrev_ctx_new2(&w->ctx, w->base, &a), 0);
    assert_int_equal(vrev__engine_init(&w->engine, w->ctx), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, echo_accept, w, &w->echo), 0);
    assert_int_equal(vrev__engine_add_outbound(&w->engine, make(w)), 0);
    /* the dokodemo target is deliberately wrong: freedom's redirect must fix it */
    struct vrev__dokodemo_opts o = {"127.0.0.1", 0, "192.0.2.1", 9, VREV_ROUTE_TCP};
    assert_int_equal(vrev__dokodemo_new(&w->engine, "external", &o, &w->in), 0);
    w->got = evbuffer_new();
}

static void world_connect(struct world *w)
{
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__inbound_port(w->in)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, client_dialed, w, NULL), 0);
}

static void world_run(struct world *w, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

static void world_done(struct world *w)
{
    if (w->client)
        bufferevent_free(w->client);
    vrev__inbound_free(w->in);
    vrev__engine_cleanup(&w->engine);
    for (int i = 0; i < n_echo_conns; i++)
        if (echo_conns[i])
            bufferevent_free(echo_conns[i]);
    vrev__listener_free(w->echo);
    evbuffer_free(w->got);
    event_base_loop(w->base, EVLOOP_NONBLOCK); /* deferred callbacks release their refs */
    event_base_free(w->base); /* runs libevent's deferred frees, which may use the ctx */
    vrev_ctx_free(w->ctx);
    assert_int_equal(w->fa.live, 0); /* no leak */
}

static uint16_t echo_port;

static struct vrev__outbound *make_freedom(struct world *w)
{
    struct vrev__outbound *ob;
    echo_port = vrev__listener_port(w->echo);
    struct vrev__freedom_opts f = {"127.0.0.1", echo_port, VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(&w->engine, "out", &f, &ob), 0);
    return ob;
}

/* A world whose client sent its ping through freedom to the echo server and got 23 bytes back. */
static void freedom_world_echoed(struct world *w)
{
    world_init(w, make_freedom);
    w->want = 23;
    world_connect(w);
    world_run(w, 5);
    assert_int_equal(evbuffer_get_length(w->got), 23);
}

static void test_dokodemo_to_freedom(void **state)
{
    (void)state;
    struct world w;
    freedom_world_echoed(&w);
    assert_memory_equal(evbuffer_pullup(w.got, -1), "ping through the engine", 23);
    assert_int_equal(w.engine.stats.links, 1);
    /* stop with the connection still up: everything is freed (ASan checks) */
    world_done(&w);
}

/* The descriptor of our TCP socket whose peer is at `port` on loopback (-1 if none). */
static int socket_to(uint16_t port, int skip)
{
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);
        if (fd != skip && getpeername(fd, (struct sockaddr *)&sin, &sl) == 0 &&
            sin.sin_family == AF_INET && ntohs(sin.sin_port) == port)
            return fd;
    }
    return -1;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    return ntohs(sin.sin_port);
}

static bool reset_on_close(int fd)
{
    struct linger lg = {0, 0};
    socklen_t len = sizeof(lg);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    return lg.l_onoff && lg.l_linger == 0;
}

/* While a link is relayed, both of the engine's sockets (the accepted client, the target it
 * dialed) are armed to reset if the process dies (vrev__bev_arm_abort); the test's own ends
 * are not. Then the client ends its stream: the echo finishes and the client gets a clean
 * end, not a reset, through the armed sockets. */
static void test_live_links_are_armed(void **state)
{
    (void)state;
    struct world w;
    freedom_world_echoed(&w);
    int client = bufferevent_getfd(w.client);
    int accepted = socket_to(local_port(client), client);
    int dialed = socket_to(echo_port, -1);
    assert_true(accepted >= 0 && dialed >= 0);
    assert_true(reset_on_close(accepted));
    assert_true(reset_on_close(dialed));
    assert_false(reset_on_close(client));
    w.want = 0;
    vrev__bev_shutdown_write(w.client);
    world_run(&w, 5);
    assert_int_equal(w.eof, 1);
    assert_int_equal(w.error, 0);
    world_done(&w);
}

static struct vrev__outbound *make_blackhole_http(struct world *w)
{
    struct vrev__outbound *ob;
    assert_int_equal(vrev__blackhole_new(&w->engine, "block", true, &ob), 0);
    return ob;
}

static void test_blackhole(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, make_blackhole_http);
    world_connect(&w);
    world_run(&w, 5);
    assert_int_equal(w.eof, 1);
    size_t n = evbuffer_get_length(w.got);
    assert_true(n > 12);
    assert_memory_equal(evbuffer_pullup(w.got, -1), "HTTP/1.1 403", 12);
    world_done(&w);
}

/* A loopback port nothing listens on (connections to it are refused). */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sin);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    return ntohs(sin.sin_port);
}

static struct vrev__outbound *make_freedom_to_closed_port(struct world *w)
{
    struct vrev__outbound *ob;
    struct vrev__freedom_opts f = {"127.0.0.1", closed_port(), VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(&w->engine, "out", &f, &ob), 0);
    return ob;
}

/* A proxy outbound (0 VMess, 1 VLESS, 2 SOCKS) whose server refuses connections. */
static int stop_proto;

static struct vrev__outbound *make_proxy_to_closed_port(struct world *w)
{
    struct vrev__outbound *ob = NULL;
    uint16_t port = closed_port();
    if (stop_proto == 0) {
        struct vrev__user_out_opts o = {"127.0.0.1", port, {1}, VREV_VMESS_SEC_AES_128_GCM};
        assert_int_equal(vrev__vmess_out_new(&w->engine, "out", &o, 1, &ob), 0);
    } else if (stop_proto == 1) {
        struct vrev__user_out_opts o = {"127.0.0.1", port, {1}, 0};
        assert_int_equal(vrev__vless_out_new(&w->engine, "out", &o, 1, &ob), 0);
    } else {
        struct vrev__socks_out_opts o = {.address = "127.0.0.1", .port = port};
        assert_int_equal(vrev__socks_out_new(&w->engine, "out", &o, 1, &ob), 0);
    }
    return ob;
}

/* The engine stops while a proxy outbound's dial waits for its next attempt (200 ms after a
 * refusal): the outbound's request goes with it (world_done counts the context's blocks). */
static void test_stop_while_dialing(void **state)
{
    (void)state;
    for (stop_proto = 0; stop_proto < 3; stop_proto++) {
        struct world w;
        world_init(&w, make_proxy_to_closed_port);
        world_connect(&w);
        struct timeval tv = {0, 80 * 1000};
        event_base_loopexit(w.base, &tv);
        event_base_dispatch(w.base);
        assert_int_equal(w.engine.stats.links, 1);
        assert_int_equal(w.engine.stats.dial_failures, 0); /* still trying */
        world_done(&w);
    }
}

static void test_freedom_gives_up(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, make_freedom_to_closed_port);
    world_connect(&w);
    world_run(&w, 5);
    /* 5 attempts over ~1 s, then the client is reset */
    assert_true(w.error || w.eof);
    assert_int_equal(evbuffer_get_length(w.got), 0);
    assert_int_equal(w.engine.stats.dial_failures, 1);
    world_done(&w);
}

/* dokodemo -> vmess out ==(VMess AEAD over TCP)==> vmess in -> freedom -> echo */
static int chain_security;
static struct vrev__inbound *chain_server;

static struct vrev__outbound *make_vmess_chain(struct world *w)
{
    static const uint8_t uuid[16] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38,
                                     0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b};
    /* the server side lives in the same engine: its links go through the router-less
     * dispatcher to outbound 0... so give it an engine of its own */
    static struct vrev__engine server;
    assert_int_equal(vrev__engine_init(&server, w->ctx), 0);
    struct vrev__outbound *fr;
    echo_port = vrev__listener_port(w->echo);
    struct vrev__freedom_opts f = {"127.0.0.1", echo_port, VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(&server, "direct", &f, &fr), 0);
    assert_int_equal(vrev__engine_add_outbound(&server, fr), 0);
    struct vrev__in_user u;
    memcpy(u.uuid, uuid, 16);
    u.email = "bridge@example.com";
    struct vrev__in_user_opts in = {"127.0.0.1", 0, &u, 1};
    assert_int_equal(vrev__vmess_in_new(&server, "interconn", &in, &chain_server), 0);
    struct vrev__user_out_opts o = {
        "127.0.0.1", vrev__inbound_port(chain_server), {0}, chain_security};
    memcpy(o.uuid, uuid, 16);
    struct vrev__outbound *ob;
    assert_int_equal(vrev__vmess_out_new(&w->engine, "interconn", &o, 1, &ob), 0);
    return ob;
}

static void run_vmess_chain(int security)
{
    struct world w;
    chain_security = security;
    world_init(&w, make_vmess_chain);
    w.want = 23;
    world_connect(&w);
    world_run(&w, 5);
    assert_int_equal(evbuffer_get_length(w.got), 23);
    assert_memory_equal(evbuffer_pullup(w.got, -1), "ping through the engine", 23);
    struct vrev__engine *server = chain_server->engine;
    assert_int_equal(server->stats.links, 1);
    vrev__inbound_free(chain_server);
    vrev__engine_cleanup(server);
    world_done(&w);
}

static void test_vmess_chain_aes(void **state)
{
    (void)state;
    run_vmess_chain(VREV_VMESS_SEC_AES_128_GCM);
}

static void test_vmess_chain_chacha(void **state)
{
    (void)state;
    run_vmess_chain(VREV_VMESS_SEC_CHACHA20_POLY1305);
}

static void test_vmess_chain_none(void **state)
{
    (void)state;
    run_vmess_chain(VREV_VMESS_SEC_NONE);
}

/* 2 MiB out, then our end of stream: the end travels as VMess end-of-stream chunks through
 * both layers, the echo finishes, and every byte comes back before the clean end. */
#define HALF_CLOSE_BYTES (2u << 20)

/* Our end of stream once everything queued has gone out. */
static void half_close_written(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        vrev__bev_shutdown_write(bev);
        bufferevent_setcb(bev, client_read, NULL, client_event, arg);
    }
}

static void half_close_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev;
    bufferevent_setcb(bev, client_read, half_close_written, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    uint8_t *data = malloc(HALF_CLOSE_BYTES);
    for (size_t i = 0; i < HALF_CLOSE_BYTES; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 16));
    bufferevent_write(bev, data, HALF_CLOSE_BYTES);
    free(data);
}

static void test_vmess_half_close(void **state)
{
    (void)state;
    struct world w;
    chain_security = VREV_VMESS_SEC_AES_128_GCM;
    world_init(&w, make_vmess_chain);
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__inbound_port(w.in)), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &a, 2000, half_close_dialed, &w, NULL), 0);
    world_run(&w, 10); /* client_event ends the loop at the end of the echo */
    assert_int_equal(w.eof, 1);
    assert_int_equal(evbuffer_get_length(w.got), HALF_CLOSE_BYTES);
    const uint8_t *p = evbuffer_pullup(w.got, -1);
    for (size_t i = 0; i < HALF_CLOSE_BYTES; i++)
        if (p[i] != (uint8_t)(i * 31 + (i >> 16)))
            fail_msg("byte %zu differs", i);
    struct vrev__engine *server = chain_server->engine;
    vrev__inbound_free(chain_server);
    vrev__engine_cleanup(server);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dokodemo_to_freedom), cmocka_unit_test(test_live_links_are_armed),
        cmocka_unit_test(test_blackhole),           cmocka_unit_test(test_freedom_gives_up),
        cmocka_unit_test(test_stop_while_dialing),  cmocka_unit_test(test_vmess_chain_aes),
        cmocka_unit_test(test_vmess_chain_chacha),  cmocka_unit_test(test_vmess_chain_none),
        cmocka_unit_test(test_vmess_half_close),
    };
    return cmocka_run_group_tests_name("proxy", tests, NULL, NULL);
}
