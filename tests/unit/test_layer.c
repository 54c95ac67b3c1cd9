/* Layers (lib/net/layer.h): a stack of tcp, TLS and a carrier or a plain filter answers through
 * one interface (what is below, the socket, ALPN, how a free ends the connection), an end of
 * stream and an abort from the top reach the bottom, and the context closes the TLS sockets
 * still lingering when it is freed. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_world.h"

#include "net/carrier_layer.h"
#include "net/layer.h"

static struct linger linger_of(int fd)
{
    struct linger lg = {0, 0};
    socklen_t len = sizeof(lg);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    return lg;
}

/* tcp -> TLS -> ws, built on one end of a socket pair (nothing answers on the other end). */
static void test_stack_answers(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    client_ctx(&w, NULL, true, NULL, 0);
    int sv[2], sv2[2], err;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
    struct bufferevent *sock = vrev__bev_socket(w.ctx, sv[0]);
    struct bufferevent *tls = vrev__tls_wrap(w.ctls, sock, "localhost", 0, &err);
    assert_non_null(tls);
    struct vrev__carrier_opts o = {.kind = VREV_CARRIER_WS, .path = "/"};
    struct bufferevent *ws = vrev__carrier_client(w.ctx, tls, &o, "localhost", &err);
    assert_non_null(ws);

    /* what is below each layer: TLS's own answer (libevent sees a pair under it) */
    assert_ptr_equal(vrev__layer_lower(ws), tls);
    assert_ptr_equal(vrev__layer_lower(tls), sock);
    assert_null(vrev__layer_lower(sock));
    assert_null(vrev__layer_of(ws)); /* a plain filter: libevent answers for it */
    assert_null(vrev__layer_of(sock));
    struct vrev__layer *l = vrev__layer_of(tls);
    assert_non_null(l);
    assert_string_equal(l->ops->name, "tls");

    /* the socket for socket options, from the top; arming reaches it */
    assert_int_equal(vrev__bev_tcp_fd(ws), sv[0]);
    assert_false(linger_of(sv[0]).l_onoff);
    vrev__bev_arm_abort(ws);
    assert_true(linger_of(sv[0]).l_onoff && linger_of(sv[0]).l_linger == 0);

    /* ALPN: TLS negotiates it (nothing yet), ws does not */
    const char *alpn = "x";
    assert_false(vrev__layer_alpn(ws, &alpn));
    assert_null(alpn);
    assert_true(vrev__layer_alpn(tls, &alpn));
    assert_null(alpn);

    /* TLS closes its socket itself (close_notify, or a reset): the socket is not told */
    assert_int_equal(vrev__layer_closing(ws, false), -1);
    assert_true(linger_of(sv[0]).l_onoff); /* still armed */
    char why[64];
    assert_null(vrev__layer_failure(ws, why, sizeof(why)));
    assert_string_equal(why, "");
    assert_true(vrev__layer_set_linger(ws, 0)); /* TLS's, below the carrier */

    /* without TLS the socket itself is told, through the carrier */
    struct bufferevent *ws2 =
        vrev__carrier_client(w.ctx, vrev__bev_socket(w.ctx, sv2[0]), &o, "localhost", &err);
    assert_non_null(ws2);
    assert_int_equal(vrev__layer_closing(ws2, true), sv2[0]);
    assert_false(vrev__layer_alpn(ws2, &alpn));
    assert_false(vrev__layer_set_linger(ws2, 0));
    assert_true(vrev__layer_queued(ws2) > 0); /* the upgrade request, in the socket's output */

    vrev__bev_close(ws, 1);
    vrev__bev_close(ws2, 1);
    close(sv[1]);
    close(sv2[1]);
    world_done(&w);
}

/* The client's stack: tcp -> TLS -> a plain filter (a protocol layer with a half-close). */
static bool keep_open;

static void on_dialed_filter(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    int fd = bufferevent_getfd(bev);
    struct bufferevent *tls = vrev__tls_wrap(w->ctls, bev, w->name, 0, &w->wrap_err);
    assert_non_null(tls);
    if (keep_open)
        vrev__layer_keep_open(tls);
    struct bufferevent *top = vrev__layer_filter_new(tls, NULL, NULL, NULL, NULL);
    assert_non_null(top);
    assert_int_equal(vrev__bev_tcp_fd(top), fd);
    peer_start(&w->c, top);
}

static void filter_world(struct world *w)
{
    world_init(w);
    server_ctx(w, "server.crt", "server.key", NULL, 0);
    client_ctx(w, NULL, true, NULL, 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, on_accept, w, &w->lst), 0);
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__listener_port(w->lst)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, on_dialed_filter, w, NULL), 0);
}

/* An end of stream from the top passes the filter and TLS (close_notify, then the socket's
 * write direction): the server sees a clean end and still answers (half-close). */
static void test_end_of_stream_reaches_the_bottom(void **state)
{
    (void)state;
    struct world w;
    keep_open = false;
    filter_world(&w);
    w.c.send_total = 65536;
    w.s.check = true;
    w.s.reply = "bye";
    world_loop(&w, 10);
    assert_int_equal(w.s.end, 1);
    assert_int_equal(w.s.received, 65536);
    assert_int_equal(w.c.end, 1);
    assert_string_equal(w.c.text, "bye");
    world_done(&w);
}

/* A layer with no half-close keeps TLS from ending on the end of stream above it: the server
 * sees no end until the stack is freed (then close_notify). */
static void test_keep_open_holds_the_end(void **state)
{
    (void)state;
    struct world w;
    keep_open = true;
    filter_world(&w);
    w.c.send_total = 4096;
    w.s.check = true;
    w.expect = 1; /* the server's end */
    world_loop(&w, 1);
    assert_int_equal(w.s.received, 4096);
    assert_true(w.c.shut);
    assert_int_equal(w.s.end, 0);
    bufferevent_free(w.c.bev);
    w.c.bev = NULL;
    world_loop(&w, 5);
    assert_int_equal(w.s.end, 1);
    keep_open = false;
    world_done(&w);
}

/* An abort of the top reaches TLS through the filter: no close_notify, a reset. */
static void test_abort_reaches_the_bottom(void **state)
{
    (void)state;
    struct world w;
    keep_open = false;
    filter_world(&w);
    w.c.send_total = 4096;
    w.c.no_shut = true;
    w.c.stop_at = 4096;
    w.s.echo = true;
    world_loop(&w, 5);
    assert_int_equal(w.c.received, 4096);
    vrev__bev_close(w.c.bev, 1);
    w.c.bev = NULL;
    w.expect = 1;
    world_loop(&w, 5);
    assert_int_equal(w.s.end, -1);
    world_done(&w);
}

/* A connected loopback TCP pair: *cli (non-blocking) and the server's end *srv. */
static void tcp_pair(int *cli, int *srv)
{
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(lst, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lst, 1), 0);
    assert_int_equal(getsockname(lst, (struct sockaddr *)&sa, &sl), 0);
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *srv = accept(lst, NULL, NULL);
    assert_true(*srv >= 0);
    close(lst);
    evutil_make_socket_nonblocking(*cli);
}

/* The server's end saw a graceful close: a FIN after whatever came (the ClientHello). */
static void expect_fin(int srv)
{
    char buf[4096];
    ssize_t n;
    while ((n = recv(srv, buf, sizeof(buf), 0)) > 0)
        ;
    assert_int_equal(n, 0);
    close(srv);
}

/* A TLS connection freed while its peer (a server that neither reads nor ends) has not ended
 * lingers in the loop; the context owns it: freeing a context with its own loop closes the
 * socket, and one freed just before the context (its layer is finalized in the loop's last
 * pass) closes at once rather than lingering then; on a loop of the program's own,
 * vrev_ctx_close_lingering() does it (ctx.h's order). No descriptor is left behind. */
static void ctx_closes_lingering(bool own_loop)
{
    int before = tu_count_fds();
    vrev_ctx *ctx;
    struct event_base *base = own_loop ? NULL : event_base_new();
    if (own_loop)
        assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    else
        assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    struct vrev__tls_client_opts o = {.allow_insecure = true, .disable_system_root = true};
    struct vrev__tls_ctx *ctls;
    char msg[256];
    assert_int_equal(vrev__tls_client_ctx_new(ctx, &o, &ctls, msg, sizeof(msg)), 0);
    int cli[2], srv[2], err;
    struct bufferevent *tls[2];
    for (int i = 0; i < 2; i++) {
        tcp_pair(&cli[i], &srv[i]);
        tls[i] = vrev__tls_wrap(ctls, vrev__bev_socket(ctx, cli[i]), "localhost", 0, &err);
        assert_non_null(tls[i]);
    }
    vrev__tls_ctx_free(ctls);                   /* the connections hold references */
    assert_int_equal(vrev_ctx_run(ctx, 50), 0); /* the ClientHellos go out */
    bufferevent_free(tls[0]);
    assert_int_equal(vrev_ctx_run(ctx, 50), 0);
    assert_non_null(ctx->lingering); /* waiting for the server's end */
    assert_int_equal(fcntl(cli[0], F_GETFD), 0);
    bufferevent_free(tls[1]);

    if (!own_loop) {
        vrev_ctx_close_lingering(ctx);
        event_base_loop(base, EVLOOP_NONBLOCK);
        event_base_free(base);
    }
    vrev_ctx_free(ctx);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fcntl(cli[i], F_GETFD), -1);
        assert_int_equal(errno, EBADF);
        expect_fin(srv[i]); /* nothing was left unsent */
    }
    assert_int_equal(tu_count_fds(), before);
}

static void test_ctx_closes_lingering(void **state)
{
    (void)state;
    ctx_closes_lingering(true);
}

static void test_ctx_closes_lingering_program_loop(void **state)
{
    (void)state;
    ctx_closes_lingering(false);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stack_answers),
        cmocka_unit_test(test_end_of_stream_reaches_the_bottom),
        cmocka_unit_test(test_keep_open_holds_the_end),
        cmocka_unit_test(test_abort_reaches_the_bottom),
        cmocka_unit_test(test_ctx_closes_lingering),
        cmocka_unit_test(test_ctx_closes_lingering_program_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
