/* lib/net on loopback: dial, listen, relay (bulk both ways, half-close, idle timeout,
 * refused dials, a dial that meets itself), large socket reads, writes in the pass that queued
 * them, reading at accept. Every test runs its own event_base with a hard deadline. */
#define _GNU_SOURCE /* unshare */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>

#include "net/net.h"
#include "testutil.h"

#define BULK (4u << 20)

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__listener *echo, *proxy;
    struct vrev__policy policy;
    int relay_result, relay_done;
    uint64_t up, down;
    /* client */
    struct bufferevent *client;
    size_t sent, received;
    int client_eof;
    int dial_err;
};

/* --- echo server: writes back what it reads, ends when its peer has ended ------------------- */

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (!(bufferevent_get_enabled(bev) & EV_READ)) /* peer ended and all is echoed */
        bufferevent_free(bev);
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & BEV_EVENT_EOF) {
        echo_read(bev, arg);
        bufferevent_disable(bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            bufferevent_free(bev);
        return;
    }
    bufferevent_free(bev);
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    struct bufferevent *bev = vrev__bev_socket(w->ctx, fd);
    assert_non_null(bev);
    bufferevent_setcb(bev, echo_read, echo_write, echo_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* --- proxy: accept, dial the echo server, relay -------------------------------------------- */

struct pending {
    struct world *w;
    struct bufferevent *inbound;
};

static void relay_done(int result, uint64_t up, uint64_t down, void *arg)
{
    struct world *w = arg;
    w->relay_done++;
    w->relay_result = result;
    w->up = up;
    w->down = down;
}

static void proxy_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct pending *p = arg;
    struct world *w = p->w;
    if (err) {
        w->dial_err = err;
        bufferevent_free(p->inbound);
    } else {
        assert_int_equal(
            vrev__relay_start(w->ctx, p->inbound, bev, &w->policy, relay_done, w, NULL), 0);
    }
    free(p);
}

static uint16_t target_port;

static void proxy_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    struct pending *p = malloc(sizeof(*p));
    p->w = w;
    p->inbound = vrev__bev_socket(w->ctx, fd);
    struct vrev__addr t;
    assert_int_equal(vrev__addr_from_text(&t, "127.0.0.1", target_port), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &t, 2000, proxy_dialed, p, NULL), 0);
}

/* --- client: send BULK bytes, half-close, read everything back ---------------------------- */

static void client_fill(struct world *w)
{
    tu_pattern_fill(bufferevent_get_output(w->client), &w->sent, BULK, 256 * 1024);
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    tu_pattern_check(bufferevent_get_input(bev), &w->received);
}

static void client_write(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    if (w->sent < BULK) {
        client_fill(w);
    } else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && w->sent == BULK) {
        vrev__bev_shutdown_write(bev);
        w->sent++; /* shut once */
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    struct world *w = arg;
    if (what & BEV_EVENT_EOF) {
        client_read(bev, arg);
        w->client_eof = 1;
    } else {
        w->client_eof = -1;
    }
    event_base_loopexit(w->base, NULL);
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    if (err) {
        w->dial_err = err;
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->client = bev;
    bufferevent_setcb(bev, client_read, client_write, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    client_fill(w);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_non_null(w->base);
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    vrev__policy_default(&w->policy);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, echo_accept, w, &w->echo), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, proxy_accept, w, &w->proxy), 0);
    target_port = vrev__listener_port(w->echo);
    assert_int_not_equal(target_port, 0);
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
    vrev__listener_free(w->echo);
    vrev__listener_free(w->proxy);
    event_base_loop(w->base, EVLOOP_NONBLOCK); /* deferred callbacks release their refs */
    event_base_free(w->base); /* runs libevent's deferred frees, which may use the ctx */
    vrev_ctx_free(w->ctx);
}

static void test_relay_bulk_and_half_close(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    w.policy.buffer_bytes = 64 * 1024; /* small, to exercise backpressure */
    struct vrev__addr p;
    assert_int_equal(vrev__addr_from_text(&p, "127.0.0.1", vrev__listener_port(w.proxy)), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &p, 2000, client_dialed, &w, NULL), 0);
    world_run(&w, 20);
    assert_int_equal(w.dial_err, 0);
    assert_int_equal(w.client_eof, 1);
    assert_int_equal(w.received, BULK); /* everything, after our half-close */
    /* let the relay see both ends */
    world_run(&w, 1);
    assert_int_equal(w.relay_done, 1);
    assert_int_equal(w.relay_result, 0);
    assert_int_equal(w.up, BULK);
    assert_int_equal(w.down, BULK);
    world_done(&w);
}

static void test_dial_refused(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    /* a port that was just free: bind, read the port, close */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    struct vrev__addr t;
    assert_int_equal(vrev__addr_from_text(&t, "127.0.0.1", ntohs(sin.sin_port)), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &t, 2000, client_dialed, &w, NULL), 0);
    world_run(&w, 5);
    assert_int_equal(w.dial_err, VREV_ERR_CONNREFUSED);
    /* a domain needs a resolver */
    assert_int_equal(vrev__addr_from_text(&t, "example.invalid", 80), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &t, 2000, client_dialed, &w, NULL),
                     VREV_ERR_INVAL);
    world_done(&w);
}

static void idle_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev; /* connected, never sends */
    bufferevent_setcb(bev, NULL, NULL, client_event, w);
    bufferevent_enable(bev, EV_READ);
}

static void test_relay_idle_timeout(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    w.policy.conn_idle_ms = 200;
    struct vrev__addr p;
    assert_int_equal(vrev__addr_from_text(&p, "127.0.0.1", vrev__listener_port(w.proxy)), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &p, 2000, idle_dialed, &w, NULL), 0);
    world_run(&w, 5);
    assert_int_equal(w.relay_done, 1);
    assert_int_equal(w.relay_result, VREV_ERR_TIMEOUT);
    assert_int_equal(w.client_eof, -1); /* closed with RST: an error, not a clean end */
    world_done(&w);
}

/* --- a target that ends while its bytes still wait for the client ------------------------- */

static void sender_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        vrev__bev_close(bev, 0); /* all written: a clean end */
}

static void sender_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len, (void)arg;
    struct bufferevent *bev = vrev__bev_socket(((struct world *)arg)->ctx, fd);
    assert_non_null(bev);
    size_t sent = 0;
    tu_pattern_fill(bufferevent_get_output(bev), &sent, BULK, BULK);
    bufferevent_setcb(bev, NULL, sender_write, NULL, NULL);
    bufferevent_enable(bev, EV_WRITE);
}

static void late_reader_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev; /* reads nothing until the test says so */
    int small = 16384;
    setsockopt(vrev__bev_tcp_fd(bev), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    bufferevent_setcb(bev, client_read, NULL, client_event, w);
}

/* The target sends its reply and ends while the client is not reading: the relay holds what
 * the client has not taken, and the half-close timer (uplinkOnly, here 100 ms) must not start
 * before that has been passed on. It did, and cut replies that waited behind a stalled tunnel
 * (the bridge's relay to its local service). */
static void test_relay_half_close_timer_waits_for_queued_bytes(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vrev__listener *sender;
    assert_int_equal(vrev__listener_new(w.ctx, "127.0.0.1", 0, sender_accept, &w, &sender), 0);
    target_port = vrev__listener_port(sender);
    w.policy.uplink_only_ms = w.policy.downlink_only_ms = 100;
    w.policy.buffer_bytes = 64 * 1024;
    struct vrev__addr p;
    assert_int_equal(vrev__addr_from_text(&p, "127.0.0.1", vrev__listener_port(w.proxy)), 0);
    assert_int_equal(vrev__tcp_dial(w.ctx, NULL, &p, 2000, late_reader_dialed, &w, NULL), 0);
    world_run(&w, 1); /* the target has sent all it could and ended; the client read nothing */
    assert_int_equal(w.relay_done, 0);
    assert_int_equal(w.client_eof, 0);
    vrev__bev_enable(w.client, EV_READ);
    world_run(&w, 10);
    assert_int_equal(w.client_eof, 1); /* the whole reply and a clean end, no reset */
    assert_int_equal(w.received, BULK);
    vrev__listener_free(sender);
    world_done(&w);
}

static void test_listener_errors(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vrev__listener *l;
    assert_int_equal(
        vrev__listener_new(w.ctx, "127.0.0.1", vrev__listener_port(w.echo), NULL, NULL, &l),
        VREV_ERR_ADDRINUSE);
    assert_int_equal(vrev__listener_new(w.ctx, "localhost", 0, NULL, NULL, &l),
                     VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__listener_new(w.ctx, "::1", 0, echo_accept, &w, &l), 0);
    assert_int_not_equal(vrev__listener_port(l), 0);
    vrev__listener_free(l);
    world_done(&w);
}

/* --- large reads: a socket bufferevent takes what the socket holds, not 4 KiB at a time ---- */

struct reader {
    struct event_base *base;
    size_t calls, total, largest, high_seen;
    short event;
};

static void reader_read(struct bufferevent *bev, void *arg)
{
    struct reader *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    r->calls++;
    if (n > r->largest)
        r->largest = n;
    size_t high = 0;
    bufferevent_getwatermark(bev, EV_READ, NULL, &high);
    if (high && n > r->high_seen)
        r->high_seen = n;
    tu_pattern_check(in, &r->total);
}

static void reader_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct reader *r = arg;
    r->event = what;
    event_base_loopexit(r->base, NULL);
}

/* Fill the peer end of a socket pair with up to `max` pattern bytes (non-blocking). */
static size_t fill_socket(int fd, size_t from, size_t max)
{
    uint8_t chunk[16384];
    size_t sent = 0;
    while (sent < max) {
        size_t n = max - sent < sizeof(chunk) ? max - sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = tu_pattern(from + sent + i);
        ssize_t w = write(fd, chunk, n);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    return sent;
}

/* A plain event_base and a context on it. */
static struct event_base *new_base_ctx(vrev_ctx **ctx)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    assert_int_equal(vrev_ctx_new(ctx, base), 0);
    return base;
}

/* A socket pair: sv[0] non-blocking under the returned bufferevent, sv[1] the test's end. */
static struct bufferevent *socket_pair_bev(vrev_ctx *ctx, int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *bev = vrev__bev_socket(ctx, sv[0]);
    assert_non_null(bev);
    return bev;
}

static void test_socket_large_reads(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct event_base *base = new_base_ctx(&ctx);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    evutil_make_socket_nonblocking(sv[0]);
    struct reader r = {.base = base};
    struct bufferevent *bev = vrev__bev_socket(ctx, sv[0]);
    assert_non_null(bev);
    bufferevent_setcb(bev, reader_read, NULL, reader_event, &r);
    bufferevent_enable(bev, EV_READ);
    size_t sent = fill_socket(sv[1], 0, 200 * 1024);
    assert_true(sent > 64 * 1024);
    struct timeval tv = {5, 0};
    event_base_loopexit(base, &tv);
    while (r.total < sent && !r.event)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(r.total, sent);
    assert_true(r.largest > 16384); /* libevent 2.1 alone reads 4096 per readiness */

    /* the read high-water mark still bounds the input buffer */
    bufferevent_setwatermark(bev, EV_READ, 0, 10000);
    bufferevent_setcb(bev, NULL, NULL, reader_event, &r);
    size_t more = fill_socket(sv[1], sent, 100 * 1024);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_true(evbuffer_get_length(bufferevent_get_input(bev)) <= 10000);
    bufferevent_setcb(bev, reader_read, NULL, reader_event, &r);
    reader_read(bev, &r); /* draining resumes reading */

    /* the rest, then the end of stream */
    close(sv[1]);
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(r.total, sent + more);
    assert_int_equal(r.event, BEV_EVENT_EOF | BEV_EVENT_READING);
    bufferevent_free(bev);

    /* a read timeout still fires on a socket that sends nothing */
    bev = socket_pair_bev(ctx, sv);
    r.event = 0;
    bufferevent_setcb(bev, reader_read, NULL, reader_event, &r);
    struct timeval rto = {0, 100 * 1000};
    bufferevent_set_timeouts(bev, &rto, NULL);
    bufferevent_enable(bev, EV_READ);
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(r.event, BEV_EVENT_TIMEOUT | BEV_EVENT_READING);
    bufferevent_free(bev);
    close(sv[1]);

    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

/* --- writes in the pass that queued them (tcp.c eager_write) ------------------------------ */

struct drain {
    int fd;
    size_t got;
    int bad;
};

static void drain_peer(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct drain *d = arg;
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            d->bad += buf[i] != tu_pattern(d->got + (size_t)i);
        d->got += (size_t)n;
    }
}

/* Megabytes queued in one pass on an idle socket whose buffer holds far less: the first write
 * is partial and the rest must follow as the peer reads (a write event left unarmed stalled
 * it). */
static void eager_bulk(struct event_base *base, vrev_ctx *ctx)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 16384;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_nonblocking(sv[1]);
    struct bufferevent *bev = vrev__bev_socket(ctx, sv[0]);
    assert_non_null(bev);
    vrev__bev_enable(bev, EV_READ | EV_WRITE);
    assert_false(event_pending(&bev->ev_write, EV_WRITE, NULL)); /* nothing to write yet */
    uint8_t *data = malloc(BULK);
    assert_non_null(data);
    for (size_t i = 0; i < BULK; i++)
        data[i] = tu_pattern(i);
    for (int round = 0; round < 2; round++) { /* twice: after the output has drained too */
        struct drain d = {.fd = sv[1]};
        struct event *peer = event_new(base, sv[1], EV_READ | EV_PERSIST, drain_peer, &d);
        event_add(peer, NULL);
        for (size_t off = 0; off < BULK; off += 4096) /* small pieces: written in this pass */
            assert_int_equal(bufferevent_write(bev, data + off, 4096), 0);
        struct timeval tv = {5, 0};
        event_base_loopexit(base, &tv);
        while (d.got < BULK && !event_base_got_exit(base))
            event_base_loop(base, EVLOOP_ONCE);
        assert_int_equal(d.got, BULK);
        assert_int_equal(d.bad, 0);
        assert_int_equal(evbuffer_get_length(bufferevent_get_output(bev)), 0);
        event_free(peer);
    }
    free(data);
    bufferevent_free(bev);
    close(sv[1]);
    event_base_loop(base, EVLOOP_NONBLOCK);
}

static void test_socket_eager_writes(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct event_base *base = new_base_ctx(&ctx); /* a loop of the embedder's */
    eager_bulk(base, ctx);
    vrev_ctx_free(ctx);
    event_base_free(base);
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0); /* our own, with epoll's change list */
    eager_bulk(vrev_ctx_base(ctx), ctx);
    vrev_ctx_free(ctx);
}

/* --- a dial's bound ends with the connect ------------------------------------------------- */

struct stalled_dial {
    struct event_base *base;
    struct bufferevent *bev;
    int err;
    short event;
};

static void stalled_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct stalled_dial *s = arg;
    s->event = what;
}

static void stalled_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct stalled_dial *s = arg;
    s->err = err;
    s->bev = bev;
    if (bev) {
        bufferevent_setcb(bev, NULL, NULL, stalled_event, s);
        vrev__bev_enable(bev, EV_READ | EV_WRITE);
    }
}

/* A connection dialed with a 100 ms bound whose peer stops reading for far longer: its writes
 * wait and then go on. libevent 2.1 kept the connect's write timeout on the socket's write
 * event and re-armed it at every partial write, so writing stopped for good after 100 ms of a
 * full socket (BEV_EVENT_TIMEOUT, EV_WRITE disabled): a bridge's tunnel whose portal paused
 * for 4 s (the dial bound) never wrote again. */
static void test_dial_bound_ends_with_connect(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct event_base *base = new_base_ctx(&ctx);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sin);
    int small = 16384;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)); /* inherited at accept */
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    getsockname(lfd, (struct sockaddr *)&sin, &sl);
    struct vrev__addr t;
    assert_int_equal(vrev__addr_from_text(&t, "127.0.0.1", ntohs(sin.sin_port)), 0);
    struct stalled_dial s = {.base = base};
    assert_int_equal(vrev__tcp_dial(ctx, NULL, &t, 100, stalled_dialed, &s, NULL), 0);
    while (!s.bev && !s.err)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.err, 0);
    int peer = accept(lfd, NULL, NULL);
    assert_true(peer >= 0);
    evutil_make_socket_nonblocking(peer);
    setsockopt(vrev__bev_tcp_fd(s.bev), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    size_t total = 2u << 20;
    uint8_t *data = malloc(total);
    assert_non_null(data);
    for (size_t i = 0; i < total; i++)
        data[i] = tu_pattern(i);
    assert_int_equal(bufferevent_write(s.bev, data, total), 0);
    free(data);
    struct timeval pause = {0, 400 * 1000}; /* the peer reads nothing for 4 times the bound */
    event_base_loopexit(base, &pause);
    event_base_dispatch(base);
    assert_true(evbuffer_get_length(bufferevent_get_output(s.bev)) > 0); /* still waiting */
    struct drain d = {.fd = peer};
    struct event *reader = event_new(base, peer, EV_READ | EV_PERSIST, drain_peer, &d);
    event_add(reader, NULL);
    struct timeval tv = {5, 0};
    event_base_loopexit(base, &tv);
    do /* got_exit still tells of the pause's loopexit until the loop runs again */
        event_base_loop(base, EVLOOP_ONCE);
    while (d.got < total && !s.event && !event_base_got_exit(base));
    assert_int_equal(s.event, 0); /* no timeout, no error */
    assert_int_equal(d.got, total);
    assert_int_equal(d.bad, 0);
    event_free(reader);
    bufferevent_free(s.bev);
    close(peer);
    close(lfd);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

/* --- reading what an accepted socket already holds (vrev__bev_read_now) -------------------- */

static void test_socket_read_now(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct event_base *base = new_base_ctx(&ctx);
    int sv[2];
    struct reader r = {.base = base};
    struct bufferevent *bev = socket_pair_bev(ctx, sv);
    vrev__bev_read_now(bev); /* nothing there yet: nothing happens */
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev)), 0);
    assert_int_equal(fill_socket(sv[1], 0, 1000), 1000);
    close(sv[1]); /* the end comes right behind the bytes */
    vrev__bev_read_now(bev);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev)), 1000);
    event_base_loop(base, EVLOOP_NONBLOCK); /* no callback was set: none may be pending */
    bufferevent_setcb(bev, reader_read, NULL, reader_event, &r);
    reader_read(bev, &r); /* the consumer takes what is there itself */
    assert_int_equal(r.total, 1000);
    bufferevent_enable(bev, EV_READ); /* then the end of stream, once */
    struct timeval tv = {5, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(r.event, BEV_EVENT_EOF | BEV_EVENT_READING);
    assert_int_equal(r.total, 1000);
    bufferevent_free(bev);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

/* The socket below a stack of layers, and none below a pair. */
static void test_bev_tcp_fd(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct event_base *base = new_base_ctx(&ctx);
    int sv[2];
    struct bufferevent *sock = socket_pair_bev(ctx, sv);
    struct bufferevent *f1 =
        bufferevent_filter_new(sock, NULL, NULL, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
    struct bufferevent *f2 =
        bufferevent_filter_new(f1, NULL, NULL, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
    assert_non_null(f2);
    assert_int_equal(vrev__bev_tcp_fd(sock), sv[0]);
    assert_int_equal(vrev__bev_tcp_fd(f2), sv[0]);
    /* not a TCP socket: the option cannot be set, and says so */
    assert_int_equal(vrev__tcp_set_user_timeout(sv[0], 1000), VREV_ERR_IO);
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(base, 0, pair), 0);
    struct bufferevent *f3 = bufferevent_filter_new(pair[0], NULL, NULL, 0, NULL, NULL);
    assert_int_equal(vrev__bev_tcp_fd(f3), -1);
    assert_int_equal(vrev__bev_tcp_fd(pair[1]), -1);
    assert_int_equal(vrev__bev_tcp_fd(NULL), -1);
    bufferevent_free(f3);
    bufferevent_free(pair[0]);
    bufferevent_free(pair[1]);
    bufferevent_free(f2); /* and the layers and the socket below it */
    close(sv[1]);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

/* --- caps on a listener's live connections (issue M7) ---------------------------------------- */

struct capped {
    int fds[16]; /* what the owner holds (accepted sockets, as an inbound would) */
    int n;
};

static void capped_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct capped *c = arg;
    assert_true(c->n < 16);
    c->fds[c->n++] = fd;
}

static int connect_from(const char *from, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    assert_true(rc == 0 || errno == EINPROGRESS);
    return fd;
}

/* Closed by the listener (an end of stream or a reset), rather than still open? */
static bool was_closed(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void spin_base(struct event_base *base)
{
    for (int i = 0; i < 5; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

/* Four live connections in all, two from one address: more are closed at accept; a connection
 * counts until its socket is closed by whoever holds it, whether accept() then reuses its
 * number or the number is taken by something else (then SO_COOKIE tells). */
static void test_listener_caps(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct event_base *base = new_base_ctx(&ctx);
    struct capped owner = {.n = 0};
    struct vrev__listener *l;
    assert_int_equal(vrev__listener_new(ctx, "127.0.0.1", 0, capped_accept, &owner, &l), 0);
    assert_int_equal(vrev__listener_set_caps(l, 4, 2), 0);
    uint16_t port = vrev__listener_port(l);
    int before = tu_count_fds();
    int cl[6];
    const char *from[6] = {"127.0.0.2", "127.0.0.2", "127.0.0.2",
                           "127.0.0.3", "127.0.0.3", "127.0.0.4"};
    for (int i = 0; i < 6; i++) {
        cl[i] = connect_from(from[i], port);
        spin_base(base);
    }
    /* .2's third over its cap; .4 over the listener's */
    assert_int_equal(owner.n, 4);
    assert_int_equal(vrev__listener_live(l), 4);
    assert_int_equal(vrev__listener_refused(l), 2);
    for (int i = 0; i < 6; i++)
        assert_int_equal(was_closed(cl[i]), i == 2 || i == 5);
    assert_int_equal(tu_count_fds(), before + 6 + 4); /* the clients', and at most the caps */
    /* the owner closes one of .2's; its number is taken by something else at once */
    close(owner.fds[0]);
    int other = open("/dev/null", O_RDONLY);
    assert_int_equal(other, owner.fds[0]);
    int again = connect_from("127.0.0.2", port);
    spin_base(base);
    assert_int_equal(owner.n, 5);
    assert_false(was_closed(again));
    assert_int_equal(vrev__listener_live(l), 4);
    /* the owner closes one of .3's: accept() hands its number out again */
    int more = connect_from("127.0.0.3", port); /* (its own socket first: not that number) */
    int freed = owner.fds[2];
    close(freed);
    spin_base(base);
    assert_int_equal(owner.n, 6);
    assert_int_equal(owner.fds[5], freed);
    assert_false(was_closed(more));
    assert_int_equal(vrev__listener_live(l), 4);
    assert_int_equal(vrev__listener_refused(l), 2);
    int over = connect_from("127.0.0.5", port); /* still full */
    spin_base(base);
    assert_true(was_closed(over));
    assert_int_equal(vrev__listener_refused(l), 3);
    close(over);
    close(other);
    close(again);
    close(more);
    for (int i = 0; i < 6; i++)
        close(cl[i]);
    for (int i = 1; i < owner.n; i++)
        if (i != 2)
            close(owner.fds[i]);
    vrev__listener_free(l);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

/* --- a dial that meets itself ------------------------------------------------------------ */

static void self_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    int *out = arg;
    *out = err ? err : 1;
    if (bev)
        bufferevent_free(bev);
}

/* In a network namespace of its own (exit 77 when one cannot be made): the only source port
 * is the target's, so the kernel's pick makes TCP's simultaneous open connect the socket to
 * itself. The dial must fail as refused and leave the port free to listen on. */
static int self_dial_child(void)
{
    const unsigned port = 40001;
    if (unshare(CLONE_NEWNET) < 0)
        return 77;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return 77;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return 77;
    close(s);
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "w");
    if (!f || fprintf(f, "%u %u\n", port, port) < 0 || fclose(f) != 0)
        return 77;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    if (!base || vrev_ctx_new(&ctx, base) < 0)
        return 2;
    struct vrev__addr t;
    int got = 0;
    if (vrev__addr_from_text(&t, "127.0.0.1", port) < 0 ||
        vrev__tcp_dial(ctx, NULL, &t, 2000, self_dialed, &got, NULL) < 0)
        return 3;
    for (int i = 0; i < 2000 && !got; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    if (got != VREV_ERR_CONNREFUSED)
        return got == 1 ? 4 : 5;            /* 4: connected (to itself) */
    event_base_loop(base, EVLOOP_NONBLOCK); /* the socket's deferred close */
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0)
        return 6; /* the port is still held */
    close(l);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
    return 0;
}

static void test_dial_never_meets_itself(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(self_dial_child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip(); /* no network namespace here (not root) */
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_bulk_and_half_close),
        cmocka_unit_test(test_dial_refused),
        cmocka_unit_test(test_relay_idle_timeout),
        cmocka_unit_test(test_relay_half_close_timer_waits_for_queued_bytes),
        cmocka_unit_test(test_listener_errors),
        cmocka_unit_test(test_socket_large_reads),
        cmocka_unit_test(test_socket_eager_writes),
        cmocka_unit_test(test_socket_read_now),
        cmocka_unit_test(test_dial_bound_ends_with_connect),
        cmocka_unit_test(test_bev_tcp_fd),
        cmocka_unit_test(test_listener_caps),
        cmocka_unit_test(test_dial_never_meets_itself),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
