/* lib/net carrier layers (ws) over real loopback sockets: both roles against each other, with
 * and without TLS, bulk both ways; the server's refusal of a wrong path; the ends of a stream
 * (close 1000 out, the peer's close or TCP end in) against a hand-driven peer built on the
 * codecs; bounded buffering under a reader that does not read. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "codec/h2.h"
#include "codec/http1.h"
#include "codec/ws.h"
#include "net/carrier_layer.h"
#include "net/net.h"
#include "net/tls.h"
#include "proxy/inbound.h"
#include "proxy/proxy.h"
#include "testutil.h"

#define BULK (3u << 20)

static const struct vrev__carrier_opts ws_opts = {.kind = VREV_CARRIER_WS, .path = "/tunnel"};

/* A connected pair of loopback TCP sockets, non-blocking. */
static void socket_pair(int fds[2])
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
    fds[1] = accept(l, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(l);
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
}

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__tls_ctx *stls, *ctls;
};

/* ALPN the next world's TLS contexts offer (NULL: none), as an h2 configuration must. */
static const char *const *world_alpn;

static void world_init(struct world *w, bool tls)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    if (!tls)
        return;
    const char *dir = getenv("VREV_VECTORS") ? getenv("VREV_VECTORS") : "tests/vectors";
    char crt[512], key[512], ca[512], err[256];
    snprintf(crt, sizeof(crt), "%s/tls/server.crt", dir);
    snprintf(key, sizeof(key), "%s/tls/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/tls/ca.crt", dir);
    struct vrev__tls_server_opts so = {
        .cert_file = crt, .key_file = key, .alpn = world_alpn, .n_alpn = world_alpn ? 1 : 0};
    const char *cas[1] = {ca};
    struct vrev__tls_client_opts co = {.disable_system_root = true,
                                       .ca_files = cas,
                                       .n_ca_files = 1,
                                       .alpn = world_alpn,
                                       .n_alpn = world_alpn ? 1 : 0};
    if (vrev__tls_server_ctx_new(w->ctx, &so, &w->stls, err, sizeof(err)) < 0 ||
        vrev__tls_client_ctx_new(w->ctx, &co, &w->ctls, err, sizeof(err)) < 0)
        fail_msg("tls: %s", err);
}

static void world_done(struct world *w)
{
    vrev__tls_ctx_free(w->stls);
    vrev__tls_ctx_free(w->ctls);
    /* let lingering closes finish */
    struct timeval tv = {0, 50000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
    event_base_free(w->base); /* runs libevent's deferred frees, which may use the ctx */
    vrev_ctx_free(w->ctx);
}

static void run(struct world *w, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* socket, TLS if the world has it, then the ws layer of the role */
static struct bufferevent *stack(struct world *w, int fd, bool client,
                                 const struct vrev__carrier_opts *o)
{
    int err = 0;
    struct bufferevent *bev = vrev__bev_socket(w->ctx, fd);
    assert_non_null(bev);
    if (w->stls)
        bev = vrev__tls_wrap(client ? w->ctls : w->stls, bev, client ? "localhost" : NULL, 0, &err);
    assert_non_null(bev);
    bev = client ? vrev__carrier_client(w->ctx, bev, o, "localhost", &err)
                 : vrev__carrier_server(w->ctx, bev, o, &err);
    assert_int_equal(err, 0);
    assert_non_null(bev);
    return bev;
}

/* --- a peer that sends a pattern and checks the other's ----------------------------------------
 */

struct peer {
    struct bufferevent *bev;
    size_t total, sent, received, expect;
    bool shut, no_read, closes;
    bool shut_early; /* end the stream once sent, whatever is still to come */
    bool saw_eof;
    int end; /* 0 running, 1 EOF, -1 error or timeout, 2 closed by us */
};

/* Once everything is sent and received: end the stream (which puts nothing on a ws wire), or
 * close the connection (`closes`). */
static void maybe_shut(struct peer *p)
{
    if (!p->shut && p->sent == p->total && (p->shut_early || p->received >= p->expect) &&
        evbuffer_get_length(bufferevent_get_output(p->bev)) == 0 &&
        (!p->closes || /* a free drops what the socket below has not written yet */
         evbuffer_get_length(bufferevent_get_output(bufferevent_get_underlying(p->bev))) == 0)) {
        p->shut = true;
        vrev__bev_shutdown_write(p->bev);
        if (p->closes) {
            vrev__bev_close(p->bev, 0);
            p->bev = NULL;
            p->end = 2;
        }
    }
}

static void peer_write(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    tu_pattern_fill(bufferevent_get_output(bev), &p->sent, p->total, 256 * 1024);
    maybe_shut(p);
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    if (p->no_read)
        return;
    tu_pattern_check(bufferevent_get_input(bev), &p->received);
    maybe_shut(p);
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    if (what & BEV_EVENT_EOF) {
        peer_read(bev, p);
        p->end = 1;
        p->saw_eof = true;
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        p->end = -1;
    }
}

static void peer_start(struct peer *p, struct bufferevent *bev, size_t total, size_t expect)
{
    p->bev = bev;
    p->total = total;
    p->expect = expect;
    bufferevent_setcb(bev, peer_read, peer_write, peer_event, p);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    peer_write(bev, p);
}

static void bulk(bool tls)
{
    struct world w;
    int fds[2];
    world_init(&w, tls);
    socket_pair(fds);
    struct peer c = {0}, s = {0};
    /* the server ends its stream at once: nothing on the wire (no close frame, no close_notify:
     * either would end V2Ray's reading too); the client goes on until it has all, then closes:
     * the server's EOF */
    c.closes = true;
    s.shut_early = true;
    peer_start(&c, stack(&w, fds[0], true, &ws_opts), BULK, 1000);
    peer_start(&s, stack(&w, fds[1], false, &ws_opts), 1000, BULK);
    for (int i = 0; i < 500 && (c.end == 0 || s.end == 0); i++) {
        run(&w, 20);
        maybe_shut(&c);
    }
    assert_int_equal(c.received, 1000);
    assert_int_equal(s.received, BULK);
    assert_int_equal(c.end, 2);
    assert_false(c.saw_eof);
    assert_int_equal(s.end, 1); /* a clean end, not an error */
    bufferevent_free(s.bev);
    world_done(&w);
}

static void test_bulk_both_ways(void **state)
{
    (void)state;
    bulk(false);
}

static void test_bulk_over_tls(void **state)
{
    (void)state;
    bulk(true);
}

/* A reader that never reads: what the layers and sockets hold stays bounded, whatever the
 * writer pushes. */
static void test_slow_reader_bounded(void **state)
{
    (void)state;
    struct world w;
    int fds[2];
    world_init(&w, false);
    socket_pair(fds);
    struct peer c = {0}, s = {0};
    s.no_read = true;
    c.shut = s.shut = true; /* no end here */
    peer_start(&c, stack(&w, fds[0], true, &ws_opts), 256u << 20, 0);
    peer_start(&s, stack(&w, fds[1], false, &ws_opts), 0, 0);
    bufferevent_setwatermark(s.bev, EV_READ, 0, 64 * 1024);
    for (int i = 0; i < 30; i++)
        run(&w, 10);
    size_t taken = c.sent - evbuffer_get_length(bufferevent_get_output(c.bev));
    size_t held = evbuffer_get_length(bufferevent_get_input(s.bev));
    if (getenv("CARRIER_DEBUG"))
        fprintf(stderr, "taken %zu held %zu below %zu client below out %zu\n", taken, held,
                evbuffer_get_length(bufferevent_get_input(bufferevent_get_underlying(s.bev))),
                evbuffer_get_length(bufferevent_get_output(bufferevent_get_underlying(c.bev))));
    /* kernel buffers on loopback take a few MiB; the layers add their marks */
    assert_true(taken < (24u << 20));
    assert_true(held <= 64 * 1024 + VREV_WS_SEND_FRAME + 4096);
    /* and the stream resumes intact once the reader reads */
    s.no_read = false;
    c.total = c.sent; /* stop sending more */
    s.expect = SIZE_MAX;
    peer_read(s.bev, &s);
    for (int i = 0; i < 300 && s.received < taken; i++)
        run(&w, 10);
    assert_true(s.received >= taken);
    bufferevent_free(c.bev);
    bufferevent_free(s.bev);
    world_done(&w);
}

/* --- a hand-driven peer on a plain socket ------------------------------------------------------
 */

/* Read what the raw socket has (non-blocking) into buf, looping the event loop meanwhile,
 * until `until` returns true or the peer ends. Returns the bytes held; *eof set on its end. */
static size_t raw_read(struct world *w, int fd, uint8_t *buf, size_t cap, size_t have,
                       bool (*until)(const uint8_t *b, size_t n, void *arg), void *arg, bool *eof)
{
    *eof = false;
    for (int i = 0; i < 300 && !until(buf, have, arg); i++) {
        run(w, 10);
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r == 0) {
            *eof = true;
            break;
        }
        if (r > 0)
            have += (size_t)r;
        else
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return have;
}

static bool never(const uint8_t *b, size_t n, void *arg)
{
    (void)b, (void)n, (void)arg;
    return false;
}

static bool has_head(const uint8_t *b, size_t n, void *arg)
{
    (void)arg;
    for (size_t i = 3; i < n; i++)
        if (memcmp(b + i - 3, "\r\n\r\n", 4) == 0)
            return true;
    return false;
}

static void raw_write(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, 0), (ssize_t)n);
}

static void close_on_error(struct bufferevent *bev, short what, void *arg)
{
    int *seen = arg;
    *seen |= what;
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        vrev__bev_close(bev, 0); /* as an inbound's handshake does */
}

static void nothing_read(struct bufferevent *bev, void *arg)
{
    (void)bev, (void)arg;
    fail_msg("the server layer delivered bytes of a refused request");
}

/* A wrong path gets V2Ray's bare 404, then the connection closes. */
static void test_wrong_path_404(void **state)
{
    (void)state;
    struct world w;
    int fds[2], seen = 0;
    world_init(&w, false);
    socket_pair(fds);
    struct bufferevent *s = stack(&w, fds[1], false, &ws_opts);
    bufferevent_setcb(s, nothing_read, NULL, close_on_error, &seen);
    bufferevent_enable(s, EV_READ | EV_WRITE);
    char req[1024], key_b64[VREV_WS_KEY_LEN + 1];
    uint8_t key[16] = {1, 2, 3};
    int n =
        vrev__ws_write_request(req, sizeof(req), "localhost", "/elsewhere", NULL, 0, key, key_b64);
    assert_true(n > 0);
    raw_write(fds[0], req, (size_t)n);
    uint8_t got[4096];
    bool eof;
    size_t have = raw_read(&w, fds[0], got, sizeof(got), 0, never, NULL, &eof);
    assert_true(eof);
    assert_true(have > 24);
    assert_memory_equal(got, "HTTP/1.1 404 Not Found\r\n", 24);
    assert_true(seen & BEV_EVENT_ERROR);
    close(fds[0]);
    world_done(&w);
}

/* The server side of the handshake, by hand: read the request, answer 101. Returns the bytes
 * of `got` after the head (frames already sent). */
static size_t raw_accept(struct world *w, int fd, uint8_t *got, size_t cap, const char *path)
{
    bool eof;
    size_t have = raw_read(w, fd, got, cap, 0, has_head, NULL, &eof);
    struct vrev__http1_reader *r = malloc(sizeof(*r));
    vrev__http1_reader_init(r, false);
    size_t used;
    assert_true(vrev__http1_reader_feed(r, got, have, &used) > 0);
    struct vrev__ws_server_opts so = {.path = path};
    struct vrev__ws_request req;
    assert_int_equal(vrev__ws_check_request(&r->head, &so, &req), 101);
    assert_non_null(vrev__http1_get(&r->head, "Host"));
    assert_true(vrev__http1_get(&r->head, "Host")->len == 9); /* "localhost" as passed */
    char ans[512];
    int n = vrev__ws_write_101(ans, sizeof(ans), &req);
    assert_true(n > 0);
    raw_write(fd, ans, (size_t)n);
    free(r);
    memmove(got, got + used, have - used);
    return have - used;
}

struct collect {
    uint8_t data[256];
    size_t n;
};

static int collect(void *user, const uint8_t *p, size_t n)
{
    struct collect *c = user;
    assert_true(c->n + n <= sizeof(c->data));
    memcpy(c->data + c->n, p, n);
    c->n += n;
    return 0;
}

/* Feed what the raw socket receives to `ws` until its peer's close frame (or the end), at most
 * `rounds` times 10 ms. */
static void feed_until_closed(struct world *w, int fd, struct vrev__ws *ws, int rounds)
{
    uint8_t buf[4096];
    for (int i = 0; i < rounds && !vrev__ws_peer_closed(ws); i++) {
        run(w, 10);
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            break;
        if (r > 0)
            assert_int_equal(vrev__ws_feed(ws, buf, (size_t)r), 0);
    }
}

static void send_frames(struct vrev__ws *ws, int fd)
{
    const uint8_t *p;
    size_t k;
    while ((k = vrev__ws_pending(ws, &p)) > 0) {
        raw_write(fd, p, k);
        vrev__ws_consume(ws, k);
    }
}

/* Client: bytes written before the 101 wait for it; the upper layer's end of stream puts
 * nothing on the wire (no close frame: the other direction goes on, as with V2Ray, whose close
 * frame would end both); the server's close frame is an EOF after the payload before it, and is
 * answered. */
static void test_client_end_and_peer_close(void **state)
{
    (void)state;
    struct world w;
    int fds[2];
    world_init(&w, false);
    socket_pair(fds);
    struct peer c = {0};
    struct bufferevent *bev = stack(&w, fds[0], true, &ws_opts);
    peer_start(&c, bev, 0, 5000);
    c.shut = true; /* ends by hand below */
    bufferevent_write(bev, "hello", 5);
    vrev__bev_shutdown_write(bev); /* before the 101: held, then sent in order */
    uint8_t got[8192];
    size_t have = raw_accept(&w, fds[1], got, sizeof(got), "/tunnel");
    struct collect col = {{0}, 0};
    struct vrev__ws *ws;
    assert_int_equal(vrev__ws_new(w.ctx, &ws, NULL, collect, &col), 0);
    assert_int_equal(vrev__ws_feed(ws, got, have), 0);
    feed_until_closed(&w, fds[1], ws, 30); /* runs until its bound: no close comes */
    assert_false(vrev__ws_peer_closed(ws));
    assert_int_equal(col.n, 5);
    assert_memory_equal(col.data, "hello", 5);
    uint8_t pat[5000];
    for (size_t i = 0; i < sizeof(pat); i++)
        pat[i] = tu_pattern(i);
    assert_int_equal(vrev__ws_send(ws, pat, sizeof(pat)), 0);
    assert_int_equal(vrev__ws_close(ws, VREV_WS_CLOSE_NORMAL), 0);
    send_frames(ws, fds[1]);
    for (int i = 0; i < 100 && c.end == 0; i++)
        run(&w, 10);
    assert_int_equal(c.received, 5000); /* after our end of stream */
    assert_int_equal(c.end, 1);
    feed_until_closed(&w, fds[1], ws, 300); /* the client's answer */
    assert_true(vrev__ws_peer_closed(ws));
    assert_int_equal(vrev__ws_peer_status(ws), VREV_WS_CLOSE_NORMAL);
    vrev__ws_free(ws);
    bufferevent_free(bev);
    close(fds[1]);
    world_done(&w);
}

/* Client: the server ending TCP without a close frame is an EOF too (V2Ray's way), after the
 * payload before it. */
static void test_client_tcp_end_is_eof(void **state)
{
    (void)state;
    struct world w;
    int fds[2];
    world_init(&w, false);
    socket_pair(fds);
    struct peer c = {0};
    struct bufferevent *bev = stack(&w, fds[0], true, &ws_opts);
    peer_start(&c, bev, 0, 5000);
    uint8_t got[8192];
    raw_accept(&w, fds[1], got, sizeof(got), "/tunnel");
    struct vrev__ws *ws;
    assert_int_equal(vrev__ws_new(w.ctx, &ws, NULL, collect, NULL), 0);
    uint8_t pat[5000];
    for (size_t i = 0; i < sizeof(pat); i++)
        pat[i] = tu_pattern(i);
    assert_int_equal(vrev__ws_send(ws, pat, sizeof(pat)), 0);
    send_frames(ws, fds[1]);
    close(fds[1]);
    for (int i = 0; i < 100 && c.end == 0; i++)
        run(&w, 10);
    assert_int_equal(c.received, 5000);
    assert_int_equal(c.end, 1);
    vrev__ws_free(ws);
    bufferevent_free(bev);
    world_done(&w);
}

/* Client: an answer other than 101 is an error. */
static void test_client_refused(void **state)
{
    (void)state;
    struct world w;
    int fds[2];
    world_init(&w, false);
    socket_pair(fds);
    struct peer c = {0};
    struct bufferevent *bev = stack(&w, fds[0], true, &ws_opts);
    peer_start(&c, bev, 0, 0);
    uint8_t got[8192];
    bool eof;
    raw_read(&w, fds[1], got, sizeof(got), 0, has_head, NULL, &eof);
    const char *ans = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    raw_write(fds[1], ans, strlen(ans));
    for (int i = 0; i < 100 && c.end == 0; i++)
        run(&w, 10);
    assert_int_equal(c.end, -1);
    bufferevent_free(bev);
    close(fds[1]);
    world_done(&w);
}

/* --- through the engine: dokodemo -> vmess out =(VMess over ws)=> vmess in -> freedom -> echo --
 */

#define CHAIN_BYTES (2u << 20)

static struct bufferevent *echo_bev;

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

/* After the client's end of stream: finish echoing, then close. */
static void echo_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (!(bufferevent_get_enabled(bev) & EV_READ) &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        bufferevent_free(bev);
        echo_bev = NULL;
    }
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_EOF) {
        echo_read(bev, arg);
        bufferevent_disable(bev, EV_READ);
        echo_write(bev, arg);
        return;
    }
    bufferevent_free(bev);
    echo_bev = NULL;
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    assert_null(echo_bev);
    echo_bev = vrev__bev_socket(arg, fd);
    bufferevent_setcb(echo_bev, echo_read, echo_write, echo_event, NULL);
    bufferevent_enable(echo_bev, EV_READ | EV_WRITE);
}

/* 2 MiB out, then our end of stream (a VMess end-of-stream chunk inside the ws stream): the
 * echo finishes and every byte comes back before the clean end. */
static const struct vrev__carrier_opts h2_opts;
static const struct vrev__carrier_opts *chain_carrier = &ws_opts;

static void run_chain(bool tls, const char *client_path)
{
    static const uint8_t uuid[16] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38,
                                     0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b};
    struct world w;
    world_init(&w, tls);
    struct vrev__listener *echo;
    assert_int_equal(vrev__listener_new(w.ctx, "127.0.0.1", 0, echo_accept, w.ctx, &echo), 0);
    struct vrev__engine server, client;
    assert_int_equal(vrev__engine_init(&server, w.ctx), 0);
    assert_int_equal(vrev__engine_init(&client, w.ctx), 0);
    struct vrev__outbound *fr, *ob;
    struct vrev__freedom_opts f = {"127.0.0.1", vrev__listener_port(echo), VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(&server, "direct", &f, &fr), 0);
    assert_int_equal(vrev__engine_add_outbound(&server, fr), 0);
    struct vrev__in_user u;
    memcpy(u.uuid, uuid, 16);
    u.email = NULL;
    struct vrev__in_user_opts vi = {"127.0.0.1", 0, &u, 1};
    struct vrev__inbound *vin, *door;
    assert_int_equal(vrev__vmess_in_new(&server, "in", &vi, &vin), 0);
    assert_int_equal(vrev__inbound_set_carrier(vin, chain_carrier), 0);
    struct vrev__user_out_opts vo = {
        tls ? "localhost" : "127.0.0.1", vrev__inbound_port(vin), {0}, VREV_VMESS_SEC_AES_128_GCM};
    memcpy(vo.uuid, uuid, 16);
    assert_int_equal(vrev__vmess_out_new(&client, "out", &vo, 1, &ob), 0);
    struct vrev__carrier_opts co = *chain_carrier;
    co.path = client_path;
    assert_int_equal(vrev__outbound_set_carrier(ob, &co), 0);
    if (tls) { /* the contexts pass to the inbound and outbound */
        vrev__inbound_set_tls(vin, w.stls);
        vrev__outbound_set_tls(ob, w.ctls);
        w.stls = w.ctls = NULL;
    }
    assert_int_equal(vrev__engine_add_outbound(&client, ob), 0);
    struct vrev__dokodemo_opts d = {"127.0.0.1", 0, "192.0.2.1", 9, VREV_ROUTE_TCP};
    assert_int_equal(vrev__dokodemo_new(&client, "door", &d, &door), 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(vrev__inbound_port(door));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    evutil_make_socket_nonblocking(fd);
    struct peer c = {0};
    peer_start(&c, vrev__bev_socket(w.ctx, fd), CHAIN_BYTES, 0);
    c.shut_early = true;
    maybe_shut(&c);
    for (int i = 0; i < 500 && c.end == 0; i++)
        run(&w, 10);
    bool right = strcmp(client_path, chain_carrier->path) == 0;
    assert_int_equal(c.received, right ? CHAIN_BYTES : 0);
    if (right)
        assert_int_equal(c.end, 1);
    else /* a wrong path: 404, and the client's link ends */
        assert_int_not_equal(c.end, 0);
    assert_int_equal(server.stats.links, right ? 1 : 0);
    bufferevent_free(c.bev);
    vrev__inbound_free(door);
    vrev__engine_cleanup(&client);
    vrev__inbound_free(vin);
    vrev__engine_cleanup(&server);
    if (echo_bev)
        bufferevent_free(echo_bev);
    echo_bev = NULL;
    vrev__listener_free(echo);
    world_done(&w);
}

static void test_vmess_over_ws_chain(void **state)
{
    (void)state;
    run_chain(false, "/tunnel");
}

static void test_vmess_over_tls_ws_chain(void **state)
{
    (void)state;
    run_chain(true, "/tunnel");
}

/* Both ends do put their carrier on: the inbound refuses the outbound's other path. */
static void test_chain_wrong_path(void **state)
{
    (void)state;
    run_chain(false, "/other");
}

/* --- h2 client against a server driven by the codec ------------------------------------------ */

static const struct vrev__carrier_opts h2_opts = {.kind = VREV_CARRIER_H2, .path = "/h2"};

/* The same chain over h2: each stream of the inbound's h2 connection is a connection of its
 * own; a path that is not ours gets 404 and the client's link ends. */
static void test_vmess_over_h2_chain(void **state)
{
    (void)state;
    chain_carrier = &h2_opts;
    run_chain(false, "/h2");
    run_chain(false, "/other");
    chain_carrier = &ws_opts;
}

/* Over TLS with ALPN h2 on both sides. */
static void test_vmess_over_tls_h2_chain(void **state)
{
    (void)state;
    static const char *const h2[] = {"h2"};
    world_alpn = h2;
    chain_carrier = &h2_opts;
    run_chain(true, "/h2");
    chain_carrier = &ws_opts;
    world_alpn = NULL;
}

struct h2srv {
    struct bufferevent *bev;
    struct vrev__h2 *h2;
    int32_t sid;
    size_t total, sent, received;
    bool got_end, ended;
    int closed; /* 0 open, 1 closed cleanly, -1 reset */
};

static void h2srv_flush(struct h2srv *v)
{
    const uint8_t *p;
    size_t n;
    while ((n = vrev__h2_pending(v->h2, &p)) > 0) {
        assert_int_equal(bufferevent_write(v->bev, p, n), 0);
        vrev__h2_consume(v->h2, n);
    }
}

static void h2srv_push(struct h2srv *v)
{
    uint8_t chunk[16384];
    while (v->sid > 0 && v->sent < v->total && vrev__h2_buffered(v->h2, v->sid) < (256u << 10)) {
        size_t n = v->total - v->sent < sizeof(chunk) ? v->total - v->sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = tu_pattern(v->sent + i);
        assert_int_equal(vrev__h2_send(v->h2, v->sid, chunk, n), 0);
        v->sent += n;
    }
    if (v->sid > 0 && v->sent == v->total && v->got_end && !v->ended) {
        v->ended = true; /* our end after the client's: END_STREAM */
        assert_int_equal(vrev__h2_end(v->h2, v->sid), 0);
    }
    h2srv_flush(v);
}

static int h2srv_open(void *user, int32_t sid, const struct vrev__h2_request *req)
{
    struct h2srv *v = user;
    assert_string_equal(req->method, "PUT");
    assert_string_equal(req->path, "/h2");
    v->sid = sid;
    return 0;
}

static int h2srv_data(void *user, int32_t sid, const uint8_t *p, size_t n)
{
    struct h2srv *v = user;
    for (size_t i = 0; i < n; i++)
        if (p[i] != tu_pattern(v->received + i))
            fail_msg("byte %zu differs", v->received + i);
    v->received += n;
    vrev__h2_consumed(v->h2, sid, n);
    return 0;
}

static void h2srv_end(void *user, int32_t sid)
{
    (void)sid;
    ((struct h2srv *)user)->got_end = true;
}

static void h2srv_close(void *user, int32_t sid, int err)
{
    (void)sid;
    struct h2srv *v = user;
    v->closed = err ? -1 : 1;
    v->sid = -1;
}

static void h2srv_read(struct bufferevent *bev, void *arg)
{
    struct h2srv *v = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    assert_int_equal(vrev__h2_feed(v->h2, evbuffer_pullup(in, -1), n), 0);
    evbuffer_drain(in, n);
    h2srv_push(v);
}

static void h2srv_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    h2srv_push(arg);
}

/* Client: the request as V2Ray's, 3 MiB up then END_STREAM, 6 MiB down (more than the
 * stream's 4 MiB window: the credit must come back as the upper layer reads), then the
 * server's END_STREAM is the client's EOF. */
static void test_h2_client(void **state)
{
    (void)state;
    static const struct vrev__h2_callbacks cb = {
        .on_open = h2srv_open, .on_data = h2srv_data, .on_end = h2srv_end, .on_close = h2srv_close};
    struct world w;
    int fds[2];
    world_init(&w, false);
    socket_pair(fds);
    struct h2srv srv = {0};
    srv.total = 6u << 20;
    struct vrev__h2_opts so = {.client = false, .path = "/h2"};
    assert_int_equal(vrev__h2_new(w.ctx, &srv.h2, &so, &cb, &srv), 0);
    srv.bev = vrev__bev_socket(w.ctx, fds[1]);
    bufferevent_setcb(srv.bev, h2srv_read, h2srv_write, NULL, &srv);
    bufferevent_enable(srv.bev, EV_READ | EV_WRITE);
    h2srv_flush(&srv);
    struct peer c = {0};
    c.shut_early = true;
    peer_start(&c, stack(&w, fds[0], true, &h2_opts), BULK, srv.total);
    for (int i = 0; i < 500 && c.end == 0; i++) {
        run(&w, 10);
        h2srv_push(&srv);
    }
    assert_int_equal(srv.received, BULK);
    assert_true(srv.got_end);
    assert_int_equal(c.received, srv.total);
    assert_int_equal(c.end, 1);
    bufferevent_free(c.bev);
    for (int i = 0; i < 20 && srv.closed == 0; i++)
        run(&w, 10);
    bufferevent_free(srv.bev);
    vrev__h2_free(srv.h2);
    world_done(&w);
}

/* --- h2 server: streams handed out one by one ---------------------------------------------------
 */

struct served {
    struct world *w;
    struct peer peers[4];
    int n;
    size_t total; /* what each stream sends back */
};

static void on_stream(struct bufferevent *stream, const struct vrev__h2_request *req, void *user)
{
    struct served *sv = user;
    assert_string_equal(req->path, "/h2");
    assert_true(sv->n < 4);
    struct peer *p = &sv->peers[sv->n++];
    p->shut_early = true;
    peer_start(p, stream, sv->total, BULK);
}

static void serve_on(struct world *w, int fd, struct served *sv)
{
    struct bufferevent *lower = vrev__bev_socket(w->ctx, fd);
    int err = 0;
    if (w->stls)
        lower = vrev__tls_wrap(w->stls, lower, NULL, 0, &err);
    assert_non_null(lower);
    assert_non_null(vrev__h2_serve(w->ctx, lower, &h2_opts, 0, 0, on_stream, NULL, sv, &err));
}

/* Our h2 client layer to our h2 server, bulk both ways (more than a stream window down), each
 * side ending with END_STREAM, which the other sees as its EOF. */
static void h2_pair(bool tls)
{
    struct world w;
    int fds[2];
    world_init(&w, tls);
    socket_pair(fds);
    struct served sv = {&w, {{0}}, 0, 5u << 20};
    serve_on(&w, fds[1], &sv);
    struct peer c = {0};
    c.shut_early = true;
    peer_start(&c, stack(&w, fds[0], true, &h2_opts), BULK, sv.total);
    for (int i = 0; i < 500 && (c.end == 0 || sv.n == 0 || sv.peers[0].end == 0); i++)
        run(&w, 10);
    assert_int_equal(sv.n, 1);
    assert_int_equal(c.received, sv.total);
    assert_int_equal(c.end, 1);
    assert_int_equal(sv.peers[0].received, BULK);
    assert_int_equal(sv.peers[0].end, 1);
    bufferevent_free(c.bev);
    bufferevent_free(sv.peers[0].bev);
    world_done(&w);
}

static void test_h2_server(void **state)
{
    (void)state;
    h2_pair(false);
}

/* Under TLS the h2 client insists on ALPN h2, as V2Ray's: a server that chose none fails it. */
static void test_h2_client_needs_alpn(void **state)
{
    (void)state;
    struct world w;
    int fds[2];
    world_init(&w, true); /* no ALPN */
    socket_pair(fds);
    struct served sv = {&w, {{0}}, 0, 1000};
    serve_on(&w, fds[1], &sv);
    struct peer c = {0};
    peer_start(&c, stack(&w, fds[0], true, &h2_opts), 1000, 1000);
    for (int i = 0; i < 200 && c.end == 0; i++)
        run(&w, 10);
    assert_int_equal(c.end, -1);
    assert_int_equal(c.received, 0);
    bufferevent_free(c.bev);
    for (int i = 0; i < sv.n; i++)
        bufferevent_free(sv.peers[i].bev);
    world_done(&w);
}

/* An HTTP/2 connection that opens no stream is closed after its bound (an inbound passes its
 * handshake deadline): unauthenticated connections do not stay. */
static void test_h2_server_idle_closed(void **state)
{
    (void)state;
    struct world w;
    int fds[2], err;
    world_init(&w, false);
    socket_pair(fds);
    assert_non_null(vrev__h2_serve(w.ctx, vrev__bev_socket(w.ctx, fds[1]), &h2_opts, 1000, 0,
                                   on_stream, NULL, NULL, &err));
    uint8_t got[4096];
    bool eof;
    raw_read(&w, fds[0], got, sizeof(got), 0, never, NULL, &eof);
    assert_true(eof); /* within raw_read's 3 s */
    close(fds[0]);
    world_done(&w);
}

static void test_options_copied(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    char path[8] = "ws", host[16] = "cdn.example", name[8] = "X-A", value[8] = "1";
    const char *hosts[1] = {host}, *names[1] = {name}, *values[1] = {value};
    struct vrev__carrier_opts o = {.kind = VREV_CARRIER_WS,
                                   .path = path,
                                   .hosts = hosts,
                                   .n_hosts = 1,
                                   .header_names = names,
                                   .header_values = values,
                                   .n_headers = 1};
    struct vrev__carrier c = {0};
    assert_int_equal(vrev__carrier_set(ctx, &c, &o), 0);
    memset(path, 0, sizeof(path));
    memset(host, 0, sizeof(host));
    memset(name, 0, sizeof(name));
    assert_string_equal(c.o.path, "/ws"); /* normalised as V2Ray does */
    assert_string_equal(c.o.hosts[0], "cdn.example");
    assert_string_equal(c.o.header_names[0], "X-A");
    assert_string_equal(c.o.header_values[0], "1");
    o.path = NULL;
    o.n_hosts = o.n_headers = 0;
    assert_int_equal(vrev__carrier_set(ctx, &c, &o), 0);
    assert_string_equal(c.o.path, "/");
    assert_null(c.o.hosts);
    o.kind = 7;
    assert_int_equal(vrev__carrier_set(ctx, &c, &o), VREV_ERR_INVAL);
    vrev__carrier_clear(ctx, &c);
    char out[64];
    assert_true(vrev__ws_default_host("example.com", 80, false, out, sizeof(out)) > 0);
    assert_string_equal(out, "example.com");
    assert_true(vrev__ws_default_host("example.com", 443, false, out, sizeof(out)) > 0);
    assert_string_equal(out, "example.com:443");
    assert_true(vrev__ws_default_host("::1", 443, true, out, sizeof(out)) > 0);
    assert_string_equal(out, "[::1]");
    assert_true(vrev__ws_default_host("::1", 8443, true, out, sizeof(out)) > 0);
    assert_string_equal(out, "[::1]:8443");
    vrev_ctx_free(ctx);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_copied),
        cmocka_unit_test(test_bulk_both_ways),
        cmocka_unit_test(test_bulk_over_tls),
        cmocka_unit_test(test_slow_reader_bounded),
        cmocka_unit_test(test_wrong_path_404),
        cmocka_unit_test(test_client_end_and_peer_close),
        cmocka_unit_test(test_client_tcp_end_is_eof),
        cmocka_unit_test(test_client_refused),
        cmocka_unit_test(test_vmess_over_ws_chain),
        cmocka_unit_test(test_vmess_over_tls_ws_chain),
        cmocka_unit_test(test_chain_wrong_path),
        cmocka_unit_test(test_h2_client),
        cmocka_unit_test(test_h2_server),
        cmocka_unit_test(test_vmess_over_h2_chain),
        cmocka_unit_test(test_vmess_over_tls_h2_chain),
        cmocka_unit_test(test_h2_client_needs_alpn),
        cmocka_unit_test(test_h2_server_idle_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
