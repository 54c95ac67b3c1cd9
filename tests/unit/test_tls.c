/* lib/net TLS layer on loopback, our own client and server (whichever backend is built): bulk
 * echo both ways, half-close, close on free, abort, backpressure with paused readers, a bad
 * transport (short reads and writes, spurious would-block), TLS over a pair and through a
 * relay. test_tls_verify.c: verification, ALPN, contexts; test_tls_peer.c: the openssl CLI. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_world.h"

/* world_init() with the usual contexts: the server on server.crt, a client trusting ca.crt. */
static void tls_world_init(struct world *w)
{
    world_init(w);
    server_ctx(w, "server.crt", "server.key", NULL, 0);
    client_ctx(w, "ca.crt", false, NULL, 0);
}

/* BULK bytes echoed both ways; `arm`: both peers' sockets armed to reset (vrev__bev_arm_abort). */
static void bulk_echo(bool arm)
{
    struct world w;
    tls_world_init(&w);
    echo_world(&w, BULK);
    w.s.arm = w.c.arm = arm;
    world_run(&w, 30);
    expect_echo(&w, BULK);
    world_done(&w);
}

/* --- data ----------------------------------------------------------------------------------- */

static void test_echo_bulk(void **state)
{
    (void)state;
    bulk_echo(false);
}

static void test_echo_rsa(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server-rsa.crt", "server-rsa.key", NULL, 0);
    client_ctx(&w, "ca.crt", false, NULL, 0);
    echo_world(&w, 256 * 1024);
    world_run(&w, 10);
    expect_echo(&w, 256 * 1024);
    world_done(&w);
}

/* The server writes only after the client's end of stream: a write after the peer's
 * close_notify, then the server's own end arrives as a clean EOF. */
static void test_half_close(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    w.s.reply = "world";
    w.c.send_total = 5;
    world_run(&w, 10);
    assert_int_equal(w.c.end, 1);
    assert_int_equal(w.s.end, 1);
    assert_int_equal(w.s.received, 5);
    assert_string_equal(w.c.text, "world");
    world_done(&w);
}

/* The reader pauses with megabytes in flight: every stage fills and stops its source, and all
 * resumes when reading does. */
static void test_backpressure(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    echo_world(&w, BULK);
    w.s.pause_ms = 300;
    w.c.pause_ms = 300;
    world_run(&w, 30);
    expect_echo(&w, BULK);
    world_done(&w);
}

/* Short reads and writes and spurious would-block on both sides, both roles. */
static void test_chaos(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 3; seed++) {
        struct world w;
        tls_world_init(&w);
        echo_world(&w, 512 * 1024 + seed);
        w.s.chaos = seed * 7919;
        w.c.chaos = seed * 104729;
        world_run(&w, 30);
        expect_echo(&w, 512 * 1024 + seed);
        world_done(&w);
    }
}

/* Freeing without an explicit end is a close: the bytes written before arrive, then EOF. */
static void test_free_is_close(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    w.s.reply = "bye";
    w.c.send_total = 1;
    world_run(&w, 10);
    assert_int_equal(w.c.end, 1);
    assert_string_equal(w.c.text, "bye");
    world_done(&w);
}

/* vrev__bev_arm_abort on a TLS layer arms the socket below it (peer_start checks), and armed
 * sockets still end cleanly through TLS's graceful ends (close_notify, then the end of the
 * write direction, then the close). */
static void test_armed_ends_are_clean(void **state)
{
    (void)state;
    bulk_echo(true);
}

static void abort_on_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    peer_read(bev, p);
    assert_int_equal(vrev__layer_closing(bev, true), -1); /* TLS resets it itself */
    bufferevent_free(bev);
    p->bev = NULL;
    finished(p);
}

/* An abort is never a clean end for the peer. */
static void test_abort_is_error(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    w.c.send_total = 10;
    w.c.no_shut = true;
    w.s.stop_at = 10;
    world_run(&w, 5); /* the server is up and has read */
    assert_non_null(w.s.bev);
    w.s.stop_at = 0;
    bufferevent_setcb(w.s.bev, abort_on_read, NULL, peer_event, &w.s);
    evbuffer_add(bufferevent_get_output(w.c.bev), "x", 1);
    world_loop(&w, 10);
    assert_int_equal(w.c.end, -1);
    assert_true(strlen(w.c.err) > 0);
    world_done(&w);
}

/* --- TLS over a bufferevent pair (no socket below), and through a relay ---------------------- */

static void test_over_pair(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    echo_world(&w, 1u << 20);
    w.c.chaos = 99;
    struct bufferevent *pair[2];
    assert_int_equal(
        bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair), 0);
    int err;
    struct bufferevent *c = vrev__tls_wrap(w.ctls, pair[0], "localhost", 0, &err);
    struct bufferevent *s = vrev__tls_wrap(w.stls, pair[1], NULL, 0, &err);
    assert_non_null(c);
    assert_non_null(s);
    assert_int_equal(vrev__bev_tcp_fd(c), -1); /* a pair below: no socket */
    peer_start(&w.s, s);
    peer_start(&w.c, c);
    world_loop(&w, 20);
    expect_echo(&w, 1u << 20);
    /* no name and no socket to take the peer's address from */
    struct bufferevent *pair2[2];
    assert_int_equal(bufferevent_pair_new(w.base, 0, pair2), 0);
    assert_null(vrev__tls_wrap(w.ctls, pair2[0], NULL, 0, &err));
    assert_int_equal(err, VREV_ERR_INVAL);
    bufferevent_free(pair2[1]);
    world_done(&w);
}

/* The connection below ends without close_notify: an error, never a clean EOF, and the bytes
 * before it still arrive. */
static void test_truncation(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    struct bufferevent *pair[2];
    assert_int_equal(
        bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair), 0);
    int err;
    peer_start(&w.c, vrev__tls_wrap(w.ctls, pair[0], "localhost", 0, &err));
    peer_start(&w.s, vrev__tls_wrap(w.stls, pair[1], NULL, 0, &err));
    w.s.send_total = 1000;
    w.s.no_shut = true;
    fill(&w.s);
    w.c.check = true;
    w.c.stop_at = 1000;
    world_loop(&w, 10);
    assert_int_equal(w.c.received, 1000);
    w.c.stop_at = 0;
    /* a transport-level end under the server's TLS (test only: the layer owns pair[1]) */
    bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);
    w.expect = 1;
    world_loop(&w, 10);
    assert_int_equal(w.c.end, -1);
    assert_non_null(strstr(w.c.err, "without TLS close_notify"));
    world_done(&w);
}

static void relay_done(int result, uint64_t up, uint64_t down, void *arg)
{
    struct world *w = arg;
    assert_int_equal(result, 0);
    assert_int_equal(up, BULK);
    assert_int_equal(down, BULK);
    finished(&w->s);
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    static struct peer echo;
    memset(&echo, 0, sizeof(echo));
    echo.w = w;
    echo.echo = true;
    echo.finished = true; /* not counted */
    struct bufferevent *bev = vrev__bev_socket(w->ctx, fd);
    echo.bev = bev;
    bufferevent_setcb(bev, peer_read, peer_write, peer_event, &echo);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct bufferevent *relay_target;

static void relay_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    int err;
    struct bufferevent *tls = vrev__tls_wrap(w->stls, vrev__bev_socket(w->ctx, fd), NULL, 0, &err);
    assert_non_null(tls);
    assert_int_equal(vrev__bev_tcp_fd(tls), fd); /* through the TLS layer */
    assert_int_equal(vrev__tcp_set_user_timeout(fd, 10000), 0);
    struct vrev__policy pol;
    vrev__policy_default(&pol);
    pol.buffer_bytes = 64 * 1024;
    assert_int_equal(vrev__relay_start(w->ctx, tls, relay_target, &pol, relay_done, w, NULL), 0);
}

static void relay_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    assert_int_equal(err, 0);
    relay_target = bev;
    struct world *w = arg;
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__listener_port(w->lst)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, on_dialed, w, NULL), 0);
}

/* client --TLS--> relay --TCP--> echo: the relay's half-close and close reach the client as a
 * clean TLS end (close_notify), after every byte. */
static void test_relay(void **state)
{
    (void)state;
    struct world w;
    tls_world_init(&w);
    w.c.send_total = BULK;
    w.c.check = true;
    struct vrev__listener *echo;
    assert_int_equal(vrev__listener_new(w.ctx, "127.0.0.1", 0, echo_accept, &w, &echo), 0);
    assert_int_equal(vrev__listener_new(w.ctx, "127.0.0.1", 0, relay_accept, &w, &w.lst), 0);
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__listener_port(echo)), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &a, 2000, relay_dialed, &w, NULL), 0);
    world_loop(&w, 30);
    assert_int_equal(w.c.end, 1);
    assert_int_equal(w.c.received, BULK);
    assert_true(w.s.finished);
    vrev__listener_free(echo);
    world_done(&w);
}

/* --- lingering close, bounded (issue M7) ------------------------------------------------------ */

/* A TLS server layer over an accepted loopback socket; *client_fd: the raw client end. */
static struct bufferevent *raw_server(struct world *w, int *client_fd)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &len), 0);
    *client_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*client_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    evutil_make_socket_nonblocking(*client_fd);
    int fd = accept(ls, NULL, NULL);
    close(ls);
    assert_true(fd >= 0);
    evutil_make_socket_nonblocking(fd);
    int err;
    struct bufferevent *tls = vrev__tls_wrap(w->stls, vrev__bev_socket(w->ctx, fd), NULL, 0, &err);
    assert_non_null(tls);
    return tls;
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* A peer that trickles a byte now and then (a TLS record that never completes) does not keep a
 * closed layer's socket past its linger bound: the bound is a time from the close, not an idle
 * timer every byte restarts (which let such a client hold a socket for days). */
static void test_linger_is_bounded_in_time(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    int before = open_fds(), client;
    struct bufferevent *tls = raw_server(&w, &client);
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    assert_int_equal(send(client, hello, sizeof(hello), 0), (ssize_t)sizeof(hello));
    run_ms(&w, 50);
    assert_true(vrev__layer_set_linger(tls, 300));
    int64_t freed = tu_now_ms();
    bufferevent_free(tls); /* graceful: it lingers, reading and dropping what comes */
    assert_int_equal(open_fds(), before + 2);
    bool closed = false;
    for (int i = 0; i < 20 && !closed; i++) { /* a byte every 50 ms for up to 1 s */
        (void)send(client, "x", 1, MSG_NOSIGNAL);
        run_ms(&w, 50);
        closed = open_fds() == before + 1;
        if (tu_now_ms() - freed < 280) /* by the clock: a loaded machine makes turns longer */
            assert_false(closed);      /* not before the bound either */
    }
    assert_true(closed);
    close(client);
    world_done(&w);
}

/* Linger 0 (a handshake deadline): the socket is closed at once, whatever the peer does. */
static void test_linger_zero_closes_at_once(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    int before = open_fds(), client;
    struct bufferevent *tls = raw_server(&w, &client);
    assert_int_equal(send(client, "\x16\x03", 2, 0), 2);
    run_ms(&w, 20);
    assert_true(vrev__layer_set_linger(tls, 0));
    bufferevent_free(tls);
    run_ms(&w, 1);
    assert_int_equal(open_fds(), before + 1);
    char b;
    assert_true(recv(client, &b, 1, 0) <= 0); /* an end or a reset, at once */
    close(client);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_bulk),
        cmocka_unit_test(test_echo_rsa),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_chaos),
        cmocka_unit_test(test_free_is_close),
        cmocka_unit_test(test_abort_is_error),
        cmocka_unit_test(test_over_pair),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_relay),
        cmocka_unit_test(test_armed_ends_are_clean),
        cmocka_unit_test(test_linger_is_bounded_in_time),
        cmocka_unit_test(test_linger_zero_closes_at_once),
    };
    if (getenv("TLS_TEST")) /* run one: TLS_TEST=test_name */
        cmocka_set_test_filter(getenv("TLS_TEST"));
    return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
