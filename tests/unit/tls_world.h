/* Loopback worlds for the TLS tests (test_tls.c, test_tls_verify.c): a TLS server behind a
 * listener and a TLS client dialing it, each a "peer" that sends a pattern, echoes, or answers
 * after the other's end; a world runs until both peers are done, with a hard deadline.
 * Certificates: tests/vectors/tls/make-certs.sh. Included by each test file (static helpers). */
#ifndef VREV_TESTS_TLS_WORLD_H
#define VREV_TESTS_TLS_WORLD_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "net/net.h"
#include "net/tls.h"
#include "testutil.h"

/* not every includer uses every helper */
#define TW static __attribute__((unused))

#define BULK (4u << 20)

struct world;

struct peer {
    struct world *w;
    struct bufferevent *bev;
    bool echo;         /* write back what arrives; end after the peer has ended */
    const char *reply; /* after the peer's end: write this, then close */
    size_t send_total; /* pattern bytes to send, then end the stream */
    bool no_shut;      /* ... or not */
    bool arm;          /* its socket resets if closed without a graceful end */
    bool check;        /* incoming bytes must follow the pattern */
    unsigned pause_ms; /* stop reading this long after the first bytes */
    unsigned chaos;
    size_t stop_at; /* break the loop once this much has arrived (0: never) */
    size_t sent, received;
    bool shut, closing, paused_once, finished;
    char text[64]; /* the first bytes received */
    int end;       /* 0 running, 1 EOF, -1 error */
    char err[256];
    struct event *timer;
};

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__listener *lst;
    struct vrev__tls_ctx *stls, *ctls;
    const char *name; /* what the client passes to wrap */
    struct peer s, c;
    int finished, expect;
    int dial_err, wrap_err;
};

TW uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 12));
}

TW const char *vec(const char *rel)
{
    static char bufs[8][512];
    static int next;
    const char *dir = getenv("VREV_VECTORS");
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/tls/%s", dir ? dir : "tests/vectors", rel);
    return b;
}

TW char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *b = calloc(1, 65536);
    size_t n = fread(b, 1, 65535, f);
    fclose(f);
    assert_true(n > 0);
    return b;
}

/* --- peers ---------------------------------------------------------------------------------- */

TW void finished(struct peer *p)
{
    if (p->finished)
        return;
    p->finished = true;
    if (++p->w->finished >= p->w->expect)
        event_base_loopbreak(p->w->base);
}

TW void peer_close(struct peer *p)
{
    vrev__bev_shutdown_write(p->bev);
    bufferevent_free(p->bev); /* a close: what was written still goes out, then close_notify */
    p->bev = NULL;
    finished(p);
}

TW void fill(struct peer *p)
{
    struct evbuffer *out = bufferevent_get_output(p->bev);
    uint8_t chunk[16384];
    while (p->sent < p->send_total && evbuffer_get_length(out) < 256 * 1024) {
        size_t n =
            p->send_total - p->sent < sizeof(chunk) ? p->send_total - p->sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(p->sent + i);
        evbuffer_add(out, chunk, n);
        p->sent += n;
    }
}

TW void resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct peer *p = arg;
    if (p->bev)
        bufferevent_enable(p->bev, EV_READ);
}

TW void peer_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (p->echo) {
        p->received += evbuffer_get_length(in);
        evbuffer_add_buffer(bufferevent_get_output(bev), in);
    }
    uint8_t chunk[16384];
    int n;
    while ((n = evbuffer_remove(in, chunk, sizeof(chunk))) > 0) {
        size_t have = strlen(p->text);
        for (int i = 0; have + 1 < sizeof(p->text) && i < n; i++)
            p->text[have++] = (char)chunk[i];
        for (int i = 0; p->check && i < n; i++)
            if (chunk[i] != pattern(p->received + (size_t)i))
                fail_msg("byte %zu differs", p->received + (size_t)i);
        p->received += (size_t)n;
    }
    if (p->stop_at && p->received >= p->stop_at)
        event_base_loopbreak(p->w->base);
    if (p->pause_ms && !p->paused_once) {
        p->paused_once = true;
        bufferevent_disable(bev, EV_READ);
        struct timeval tv = {0, (suseconds_t)p->pause_ms * 1000};
        p->timer = evtimer_new(p->w->base, resume, p);
        evtimer_add(p->timer, &tv);
    }
}

TW void peer_write(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));
    if (p->sent < p->send_total) {
        fill(p);
    } else if (p->send_total && !p->shut && !p->no_shut && left == 0) {
        vrev__bev_shutdown_write(bev);
        p->shut = true;
    }
    if (p->closing && left == 0)
        peer_close(p);
}

TW void peer_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    if (p->end)
        return;
    if (what & BEV_EVENT_EOF) {
        peer_read(bev, p);
        p->end = 1;
        if (!p->echo && !p->reply) {
            finished(p);
            return;
        }
        if (p->reply)
            evbuffer_add(bufferevent_get_output(bev), p->reply, strlen(p->reply));
        p->closing = true;
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            peer_close(p);
        return;
    }
    p->end = -1;
    vrev__tls_last_error(bev, p->err, sizeof(p->err));
    finished(p);
}

TW void peer_start(struct peer *p, struct bufferevent *bev)
{
    p->bev = bev;
    if (p->chaos)
        vrev__tls_set_chaos(bev, p->chaos);
    if (p->arm) { /* on the socket below the TLS layer */
        struct linger lg = {0, 0};
        socklen_t len = sizeof(lg);
        vrev__bev_arm_abort(bev);
        assert_int_equal(getsockopt(vrev__bev_tcp_fd(bev), SOL_SOCKET, SO_LINGER, &lg, &len), 0);
        assert_true(lg.l_onoff && lg.l_linger == 0);
    }
    bufferevent_setcb(bev, peer_read, peer_write, peer_event, p);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    fill(p);
}

TW void on_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    assert_null(w->s.bev);
    int err;
    struct bufferevent *bev = vrev__tls_wrap(w->stls, vrev__bev_socket(w->ctx, fd), NULL, 0, &err);
    assert_non_null(bev);
    peer_start(&w->s, bev);
}

TW void on_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    if (err) {
        w->dial_err = err;
        event_base_loopbreak(w->base);
        return;
    }
    struct bufferevent *tls = vrev__tls_wrap(w->ctls, bev, w->name, 0, &w->wrap_err);
    if (!tls) {
        event_base_loopbreak(w->base);
        return;
    }
    peer_start(&w->c, tls);
}

/* --- worlds --------------------------------------------------------------------------------- */

TW void log_line(int level, const char *component, const char *line, void *user)
{
    (void)user;
    fprintf(stderr, "[%d %s] %s\n", level, component, line);
}

TW void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_non_null(w->base);
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    if (getenv("TLS_DEBUG"))
        vrev_ctx_set_log(w->ctx, VREV_LOG_DEBUG, log_line, NULL);
    w->s.w = w->c.w = w;
    w->expect = 2;
    w->name = "localhost";
}

TW void server_ctx(struct world *w, const char *crt, const char *key, const char *const *alpn,
                   size_t n_alpn)
{
    struct vrev__tls_server_opts o = {
        .cert_file = vec(crt), .key_file = vec(key), .alpn = alpn, .n_alpn = n_alpn};
    char err[256];
    int rc = vrev__tls_server_ctx_new(w->ctx, &o, &w->stls, err, sizeof(err));
    if (rc)
        fail_msg("server ctx: %s", err);
}

TW void client_ctx(struct world *w, const char *ca, bool insecure, const char *const *alpn,
                   size_t n_alpn)
{
    const char *files[1] = {ca ? vec(ca) : NULL};
    struct vrev__tls_client_opts o = {.allow_insecure = insecure,
                                      .disable_system_root = true,
                                      .ca_files = files,
                                      .n_ca_files = ca ? 1 : 0,
                                      .alpn = alpn,
                                      .n_alpn = n_alpn};
    char err[256];
    int rc = vrev__tls_client_ctx_new(w->ctx, &o, &w->ctls, err, sizeof(err));
    if (rc)
        fail_msg("client ctx: %s", err);
}

TW void stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* Run until the peers are done or `seconds` have passed (a timer of our own: loopexit's would
 * stay pending and keep world_done waiting). */
TW void world_loop(struct world *w, int seconds)
{
    struct timeval tv = {seconds, 0};
    struct event *deadline = evtimer_new(w->base, stop, w->base);
    evtimer_add(deadline, &tv);
    event_base_dispatch(w->base);
    event_free(deadline);
}

/* Listen, dial, wrap both ends, run until both peers are done (or `seconds`). */
TW void world_run(struct world *w, int seconds)
{
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, on_accept, w, &w->lst), 0);
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__listener_port(w->lst)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, on_dialed, w, NULL), 0);
    world_loop(w, seconds);
}

TW void world_done(struct world *w)
{
    struct peer *ps[2] = {&w->s, &w->c};
    for (int i = 0; i < 2; i++) {
        if (ps[i]->bev)
            bufferevent_free(ps[i]->bev);
        if (ps[i]->timer)
            event_free(ps[i]->timer);
    }
    vrev__listener_free(w->lst);
    vrev__tls_ctx_free(w->stls); /* connections keep their own references */
    vrev__tls_ctx_free(w->ctls);
    /* closed sockets may linger a moment (all sent, the peer's end read) */
    for (int i = 0; i < 200 && event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED); i++)
        event_base_loop(w->base, EVLOOP_ONCE);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

TW void echo_world(struct world *w, size_t total)
{
    w->s.echo = true;
    w->c.send_total = total;
    w->c.check = true;
}

TW void expect_echo(struct world *w, size_t total)
{
    assert_int_equal(w->dial_err, 0);
    assert_int_equal(w->wrap_err, 0);
    if (w->c.end != 1)
        fail_msg("client ended with %d: %s (server: %s)", w->c.end, w->c.err, w->s.err);
    assert_int_equal(w->c.received, total);
    assert_int_equal(w->s.received, total);
    assert_int_equal(w->s.end, 1);
}

#endif
