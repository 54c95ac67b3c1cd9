/* lib/codec/h2: the HTTP/2 carrier. Our client and server in memory (bulk both ways with flow
 * control, backpressure from an upper layer that does not read, END_STREAM and RST mapped to
 * EOF and reset, many streams on one connection); V2Ray 4.34's own bytes
 * (tests/vectors/h2/, decrypted from its TLS) into ours: its client's request, data and
 * RST CANCEL into our server, its server's answers (200, 404 for path and host, prefix match)
 * into our client; our client's SETTINGS and window are V2Ray's byte for byte and its request
 * headers are V2Ray's; host and path checks; floods (PING, SETTINGS, empty DATA, rapid
 * reset), oversized header lists, stream limits, bad prefaces; allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "codec/h2.h"
#include "core/core.h"
#include "testutil.h"

#define MAX_SIDS 16

/* One end: what its callbacks saw. */
struct end {
    struct vrev__h2 *h2;
    bool auto_consume; /* the upper layer takes input at once */
    int refuse;        /* on_open's answer */
    int opens, ends, closes;
    int32_t last_open;
    int close_err[MAX_SIDS * 2 + 2];
    bool closed[MAX_SIDS * 2 + 2];
    bool ended[MAX_SIDS * 2 + 2];
    char method[16], authority[64], path[64], forwarded[64];
    uint8_t *got;
    size_t got_len, got_cap;
    size_t got_by[MAX_SIDS * 2 + 2];
};

static size_t slot(int32_t sid)
{
    assert_true(sid > 0 && sid < MAX_SIDS * 2 + 2);
    return (size_t)sid;
}

static int on_open(void *u, int32_t sid, const struct vrev__h2_request *req)
{
    struct end *e = u;
    e->opens++;
    e->last_open = sid;
    if (req) {
        snprintf(e->method, sizeof(e->method), "%s", req->method);
        snprintf(e->authority, sizeof(e->authority), "%s", req->authority);
        snprintf(e->path, sizeof(e->path), "%s", req->path);
        snprintf(e->forwarded, sizeof(e->forwarded), "%s", req->forwarded);
    }
    return e->refuse;
}

static int on_data(void *u, int32_t sid, const uint8_t *p, size_t n)
{
    struct end *e = u;
    if (e->got_len + n > e->got_cap) {
        e->got_cap = (e->got_len + n) * 2;
        e->got = realloc(e->got, e->got_cap);
        assert_non_null(e->got);
    }
    memcpy(e->got + e->got_len, p, n);
    e->got_len += n;
    e->got_by[slot(sid)] += n;
    if (e->auto_consume)
        vrev__h2_consumed(e->h2, sid, n);
    return 0;
}

static void on_end(void *u, int32_t sid)
{
    struct end *e = u;
    e->ends++;
    e->ended[slot(sid)] = true;
}

static void on_close(void *u, int32_t sid, int err)
{
    struct end *e = u;
    e->closes++;
    e->closed[slot(sid)] = true;
    e->close_err[slot(sid)] = err;
}

static const struct vrev__h2_callbacks CB = {
    .on_open = on_open, .on_data = on_data, .on_end = on_end, .on_close = on_close};

static vrev_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    return vrev_ctx_new(&ctx, NULL);
}

static int teardown(void **state)
{
    (void)state;
    vrev_ctx_free(ctx);
    return 0;
}

static const char *const H2_HOSTS[] = {"h2.example.com"};

static void end_new(struct end *e, bool client, const struct vrev__h2_opts *base)
{
    memset(e, 0, sizeof(*e));
    e->auto_consume = true;
    struct vrev__h2_opts o = {0};
    if (base) {
        o = *base;
    } else {
        o.path = "/h2";
        o.authority = "h2.example.com";
        o.hosts = H2_HOSTS;
        o.n_hosts = 1;
    }
    o.client = client;
    assert_int_equal(vrev__h2_new(ctx, &e->h2, &o, &CB, e), 0);
}

static void end_free(struct end *e)
{
    vrev__h2_free(e->h2);
    free(e->got);
}

/* Move a's output to b; returns bytes moved, or b's error (< 0). */
static long move(struct end *a, struct end *b)
{
    const uint8_t *p;
    size_t n = vrev__h2_pending(a->h2, &p);
    if (n == 0)
        return 0;
    uint8_t *copy = tu_dup(p, n);
    vrev__h2_consume(a->h2, n);
    int rc = vrev__h2_feed(b->h2, copy, n);
    free(copy);
    return rc < 0 ? rc : (long)n;
}

/* Until neither side has anything to say (bounded). Returns 0 or the first error. */
static int pump(struct end *c, struct end *s)
{
    for (int i = 0; i < 100000; i++) {
        long x = move(c, s);
        if (x < 0)
            return (int)x;
        long y = move(s, c);
        if (y < 0)
            return (int)y;
        if (x == 0 && y == 0)
            return 0;
    }
    fail_msg("pump did not settle");
    return -1;
}

static uint8_t *pattern(size_t n, size_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = tu_pattern(i + seed);
    return p;
}

static void test_round_trip_bulk(void **state)
{
    (void)state;
    struct end c, s;
    end_new(&c, true, NULL);
    end_new(&s, false, NULL);
    int32_t sid;
    assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
    assert_int_equal(sid, 1);
    const size_t n = 20u << 20; /* five times the stream window */
    uint8_t *up = pattern(n, 1), *down = pattern(n, 2);
    assert_int_equal(vrev__h2_send(c.h2, sid, up, n), 0);
    assert_int_equal(vrev__h2_end(c.h2, sid), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(s.opens, 1);
    assert_string_equal(s.method, "PUT");
    assert_string_equal(s.authority, "h2.example.com");
    assert_string_equal(s.path, "/h2");
    assert_string_equal(s.forwarded, "");
    assert_int_equal(c.opens, 1); /* the 200 arrived */
    assert_int_equal(s.got_len, n);
    assert_memory_equal(s.got, up, n);
    assert_true(s.ended[1]);
    assert_int_equal(s.closes, 0); /* half-closed: the answer may still stream */
    assert_int_equal(vrev__h2_send(c.h2, sid, up, 1), VREV_ERR_STATE); /* ended */
    assert_int_equal(vrev__h2_send(s.h2, s.last_open, down, n), 0);
    assert_int_equal(vrev__h2_end(s.h2, s.last_open), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(c.got_len, n);
    assert_memory_equal(c.got, down, n);
    assert_true(c.ended[1]);
    assert_int_equal(c.closes, 1);
    assert_int_equal(c.close_err[1], 0);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_err[1], 0);
    assert_int_equal(vrev__h2_send(c.h2, sid, up, 1), VREV_ERR_STATE); /* gone */
    assert_int_equal(vrev__h2_shutdown(c.h2), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_true(vrev__h2_done(c.h2));
    assert_int_equal(vrev__h2_open(c.h2, &sid), VREV_ERR_STATE);
    free(up);
    free(down);
    end_free(&c);
    end_free(&s);
}

/* An upper layer that does not read holds the peer to the stream window. */
static void test_backpressure(void **state)
{
    (void)state;
    struct vrev__h2_opts o = {.path = "/h2",
                              .authority = "h2.example.com",
                              .hosts = H2_HOSTS,
                              .n_hosts = 1,
                              .stream_window = 65536};
    struct end c, s;
    end_new(&c, true, &o);
    end_new(&s, false, &o);
    c.auto_consume = false;
    int32_t sid;
    assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
    assert_int_equal(pump(&c, &s), 0);
    const size_t n = 1u << 20;
    uint8_t *down = pattern(n, 3);
    assert_int_equal(vrev__h2_send(s.h2, s.last_open, down, n), 0);
    assert_int_equal(vrev__h2_buffered(s.h2, s.last_open), n);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(c.got_len, 65536); /* exactly the window */
    assert_int_equal(vrev__h2_buffered(s.h2, s.last_open), n - 65536);
    for (int round = 0; c.got_len < n && round < 100; round++) {
        vrev__h2_consumed(c.h2, sid, 40000); /* more than it holds is clamped */
        vrev__h2_consumed(c.h2, sid, 40000);
        assert_int_equal(pump(&c, &s), 0);
    }
    assert_int_equal(c.got_len, n);
    assert_memory_equal(c.got, down, n);
    assert_int_equal(vrev__h2_buffered(s.h2, s.last_open), 0);
    assert_int_equal(vrev__h2_buffered(s.h2, 99), 0);
    free(down);
    end_free(&c);
    end_free(&s);
}

static void test_reset_and_cancel(void **state)
{
    (void)state;
    struct end c, s;
    end_new(&c, true, NULL);
    end_new(&s, false, NULL);
    int32_t a, b;
    assert_int_equal(vrev__h2_open(c.h2, &a), 0);
    assert_int_equal(vrev__h2_open(c.h2, &b), 0);
    assert_int_equal(vrev__h2_send(c.h2, a, (const uint8_t *)"aa", 2), 0);
    assert_int_equal(vrev__h2_send(c.h2, b, (const uint8_t *)"bb", 2), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(s.opens, 2); /* two streams on one connection, as V2Ray's client does */
    /* the client ends a stream V2Ray's way: RST_STREAM CANCEL; for the server a normal end */
    assert_int_equal(vrev__h2_reset(c.h2, a), 0);
    assert_int_equal(vrev__h2_reset(c.h2, a), VREV_ERR_STATE);
    assert_int_equal(pump(&c, &s), 0);
    assert_true(c.closed[a]);
    assert_int_equal(c.close_err[a], VREV_ERR_H2_RESET);
    assert_true(s.closed[a]);
    assert_int_equal(s.close_err[a], 0);
    /* the server resets the other: the client sees a reset */
    assert_int_equal(vrev__h2_reset(s.h2, b), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(c.close_err[b], 0); /* CANCEL: an end, not an error */
    assert_int_equal(s.close_err[b], VREV_ERR_H2_RESET);
    assert_int_equal(vrev__h2_send(s.h2, b, (const uint8_t *)"x", 1), VREV_ERR_STATE);
    assert_int_equal(vrev__h2_end(s.h2, b), VREV_ERR_STATE);
    assert_int_equal(vrev__h2_reset(s.h2, b), VREV_ERR_STATE);
    end_free(&c);
    end_free(&s);
}

/* Requests a V2Ray server takes or answers 404, against ours. */
static void test_host_and_path_checks(void **state)
{
    (void)state;
    static const struct {
        const char *path, *authority;
        bool ok;
    } cases[] = {
        {"/h2", "h2.example.com", true},     {"/h2/sub", "h2.example.com", true},
        {"/h2x", "h2.example.com", true},    {"/h2?q=1", "h2.example.com", true},
        {"/%68%32", "h2.example.com", true}, {"/h", "h2.example.com", false},
        {"/other", "h2.example.com", false}, {"/h2", "other.example.com", false},
        {"/h2", "H2.example.com", false},    {"/h2", "h2.example.com:443", false},
        {"/%zz", "h2.example.com", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vrev__h2_opts co = {.path = cases[i].path, .authority = cases[i].authority};
        struct end c, s;
        end_new(&c, true, &co);
        end_new(&s, false, NULL);
        int32_t sid;
        assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
        assert_int_equal(vrev__h2_send(c.h2, sid, (const uint8_t *)"x", 1), 0);
        assert_int_equal(pump(&c, &s), 0);
        if (s.opens != (cases[i].ok ? 1 : 0) || c.opens != s.opens)
            fail_msg("case %zu: server opens %d, client %d", i, s.opens, c.opens);
        if (!cases[i].ok) {
            assert_int_equal(c.close_err[sid], VREV_ERR_H2_REFUSED);
            assert_int_equal(s.got_len, 0);
            assert_int_equal(vrev__h2_send(s.h2, sid, (const uint8_t *)"x", 1), VREV_ERR_STATE);
        }
        end_free(&c);
        end_free(&s);
    }
    /* V2Ray's defaults: path "/", host www.example.com on both sides */
    struct vrev__h2_opts none = {0};
    struct end c, s;
    end_new(&c, true, &none);
    end_new(&s, false, &none);
    int32_t sid;
    assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(s.opens, 1);
    assert_string_equal(s.authority, "www.example.com");
    assert_string_equal(s.path, "/");
    /* the upper layer refuses a stream: RST_STREAM REFUSED_STREAM, a reset for the client */
    s.refuse = VREV_ERR_STATE;
    assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(c.close_err[sid], VREV_ERR_H2_RESET);
    end_free(&c);
    end_free(&s);
}

/* --- raw frames ---------------------------------------------------------------------------- */

static size_t raw_frame(uint8_t *out, uint8_t type, uint8_t flags, int32_t sid, const void *p,
                        size_t n)
{
    out[0] = (uint8_t)(n >> 16);
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    out[3] = type;
    out[4] = flags;
    vrev__put_u32(out + 5, (uint32_t)sid);
    if (n)
        memcpy(out + 9, p, n);
    return 9 + n;
}

/* HPACK literal without indexing, new name, no Huffman (lengths < 127). */
static size_t literal(uint8_t *out, const char *name, const char *value)
{
    size_t a = strlen(name), b = strlen(value), n = 0;
    out[n++] = 0;
    out[n++] = (uint8_t)a;
    memcpy(out + n, name, a);
    n += a;
    out[n++] = (uint8_t)b;
    memcpy(out + n, value, b);
    return n + b;
}

static size_t request(uint8_t *out, int32_t sid, bool end_stream)
{
    uint8_t block[256];
    size_t n = literal(block, ":method", "PUT");
    n += literal(block + n, ":scheme", "https");
    n += literal(block + n, ":path", "/h2");
    n += literal(block + n, ":authority", "h2.example.com");
    return raw_frame(out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (end_stream ? 1 : 0), sid,
                     block, n);
}

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static size_t preface(uint8_t *out)
{
    memcpy(out, PREFACE, 24);
    return 24 + raw_frame(out + 24, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
}

/* The GOAWAY error code in a server's output (-1: none). */
static long goaway_code(struct end *s)
{
    const uint8_t *p;
    size_t n = vrev__h2_pending(s->h2, &p);
    for (size_t at = 0; at + 9 <= n;) {
        size_t len = (size_t)p[at] << 16 | (size_t)p[at + 1] << 8 | p[at + 2];
        if (p[at + 3] == NGHTTP2_GOAWAY && at + 9 + 8 <= n)
            return (long)vrev__get_u32(p + at + 13);
        at += 9 + len;
    }
    return -1;
}

/* Feed `n` copies of a frame, ticking every `tick` frames (0: never); returns the result. */
static int flood(struct end *s, const uint8_t *f, size_t flen, unsigned n, unsigned tick)
{
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        if (tick && i % tick == 0)
            vrev__h2_tick(s->h2);
        rc = vrev__h2_feed(s->h2, f, flen);
        const uint8_t *p;
        vrev__h2_consume(s->h2, vrev__h2_pending(s->h2, &p)); /* a peer that reads */
    }
    return rc;
}

static void test_floods(void **state)
{
    (void)state;
    uint8_t b[512];
    uint8_t ping[17], settings[9], prio[14], empty[9];
    raw_frame(ping, NGHTTP2_PING, 0, 0, "12345678", 8);
    raw_frame(settings, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    raw_frame(prio, NGHTTP2_PRIORITY, 0, 3, "\x00\x00\x00\x00\x10", 5);
    raw_frame(empty, NGHTTP2_DATA, 0, 1, NULL, 0);
    const uint8_t *frames[] = {ping, settings, prio, empty};
    size_t lens[] = {17, 9, 14, 9};
    for (size_t k = 0; k < 4; k++) {
        struct end s;
        end_new(&s, false, NULL);
        size_t n = preface(b);
        n += request(b + n, 1, false);
        assert_int_equal(vrev__h2_feed(s.h2, b, n), 0);
        /* fine when spread over ticks */
        assert_int_equal(flood(&s, frames[k], lens[k], 4 * VREV_H2_MAX_CONTROL, 64), 0);
        /* past the bound within one tick: GOAWAY ENHANCE_YOUR_CALM */
        vrev__h2_tick(s.h2);
        int rc = flood(&s, frames[k], lens[k], VREV_H2_MAX_CONTROL + 1, 0);
        if (rc == 0) /* the GOAWAY shows when framed */
            rc = vrev__h2_feed(s.h2, frames[k], lens[k]);
        if (rc != VREV_ERR_H2_FLOOD)
            fail_msg("frame kind %zu: %d", k, rc);
        assert_int_equal(vrev__h2_feed(s.h2, frames[k], lens[k]), VREV_ERR_H2_FLOOD);
        end_free(&s);
    }
    /* rapid reset: streams opened and reset faster than the rate allows */
    struct vrev__h2_opts o = {
        .path = "/h2", .hosts = H2_HOSTS, .n_hosts = 1, .reset_burst = 10, .reset_rate = 1};
    struct end s;
    end_new(&s, false, &o);
    size_t n = preface(b);
    assert_int_equal(vrev__h2_feed(s.h2, b, n), 0);
    int rc = 0;
    for (int32_t sid = 1; rc == 0 && sid < 200; sid += 2) {
        n = request(b, sid, false);
        n += raw_frame(b + n, NGHTTP2_RST_STREAM, 0, sid, "\x00\x00\x00\x08", 4);
        rc = vrev__h2_feed(s.h2, b, n);
    }
    assert_int_equal(rc, VREV_ERR_H2_PROTOCOL); /* nghttp2 sends GOAWAY INTERNAL_ERROR */
    assert_int_equal(goaway_code(&s), NGHTTP2_INTERNAL_ERROR);
    assert_true(s.opens <= 12);
    end_free(&s);
}

/* A peer that never reads our acknowledgements cannot make us queue them without bound. */
static void test_unread_acks(void **state)
{
    (void)state;
    struct end s;
    end_new(&s, false, NULL);
    uint8_t b[64];
    size_t n = preface(b);
    assert_int_equal(vrev__h2_feed(s.h2, b, n), 0);
    uint8_t ping[17 * 100];
    for (int i = 0; i < 100; i++)
        raw_frame(ping + 17 * i, NGHTTP2_PING, 0, 0, "12345678", 8);
    int rc = 0;
    for (int i = 0; rc == 0 && i < 10000; i++) {
        vrev__h2_tick(s.h2);
        rc = vrev__h2_feed(s.h2, ping, sizeof(ping));
    }
    assert_int_equal(rc, VREV_ERR_H2_FLOOD);
    assert_true(vrev__h2_out_buffered(s.h2) < VREV_H2_OUT_CHUNK + 17 * 300);
    end_free(&s);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct end s;
    end_new(&s, false, NULL);
    const char *http1 = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(vrev__h2_feed(s.h2, (const uint8_t *)http1, strlen(http1)),
                     VREV_ERR_H2_PROTOCOL);
    end_free(&s);
    /* a frame on stream 0 that must not be there */
    uint8_t b[256];
    end_new(&s, false, NULL);
    size_t n = preface(b);
    n += raw_frame(b + n, NGHTTP2_DATA, 0, 0, "x", 1);
    assert_int_equal(vrev__h2_feed(s.h2, b, n), VREV_ERR_H2_PROTOCOL);
    assert_int_equal(goaway_code(&s), NGHTTP2_PROTOCOL_ERROR);
    assert_int_equal(vrev__h2_feed(s.h2, b, n), VREV_ERR_H2_PROTOCOL); /* sticky */
    const uint8_t *p;
    vrev__h2_consume(s.h2, vrev__h2_pending(s.h2, &p));
    assert_true(vrev__h2_done(s.h2));
    end_free(&s);
    /* a header list over the bound: that stream is reset, the connection lives */
    end_new(&s, false, NULL);
    n = preface(b);
    assert_int_equal(vrev__h2_feed(s.h2, b, n), 0);
    uint8_t *block = malloc(40000), *big = malloc(40000);
    assert_non_null(block);
    assert_non_null(big);
    char value[100];
    memset(value, 'v', 99);
    value[99] = '\0';
    size_t bl = request(block, 1, false) - 9;
    memmove(block, block + 9, bl);
    for (int i = 0; i < 200; i++) /* 200 * 137 bytes: over 16 KiB */
        bl += literal(block + bl, "x-pad", value);
    /* HEADERS and CONTINUATION frames of 8000 bytes */
    size_t bn = 0;
    for (size_t off = 0; off < bl; off += 8000) {
        size_t k = bl - off < 8000 ? bl - off : 8000;
        uint8_t flags = off + k == bl ? NGHTTP2_FLAG_END_HEADERS : 0;
        bn += raw_frame(big + bn, off == 0 ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags, 1,
                        block + off, k);
    }
    assert_int_equal(vrev__h2_feed(s.h2, big, bn), 0);
    assert_int_equal(s.opens, 0);
    n = request(b, 3, false);
    assert_int_equal(vrev__h2_feed(s.h2, b, n), 0);
    assert_int_equal(s.opens, 1);
    free(big);
    free(block);
    end_free(&s);
}

static void test_stream_limit(void **state)
{
    (void)state;
    struct vrev__h2_opts o = {.path = "/h2",
                              .authority = "h2.example.com",
                              .hosts = H2_HOSTS,
                              .n_hosts = 1,
                              .max_streams = 2};
    struct end c, s;
    end_new(&c, true, &o);
    end_new(&s, false, &o);
    int32_t sid[3];
    for (int i = 0; i < 3; i++) /* all three go out before the server's SETTINGS arrive */
        assert_int_equal(vrev__h2_open(c.h2, &sid[i]), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(s.opens, 2);
    assert_true(c.closed[sid[2]]);
    assert_int_equal(c.close_err[sid[2]], VREV_ERR_H2_RESET);
    /* once one ends, a new one fits */
    assert_int_equal(vrev__h2_reset(c.h2, sid[0]), 0);
    assert_int_equal(pump(&c, &s), 0);
    int32_t next;
    assert_int_equal(vrev__h2_open(c.h2, &next), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(s.opens, 3);
    end_free(&c);
    end_free(&s);
    /* a server cannot open streams */
    end_new(&s, false, NULL);
    assert_int_equal(vrev__h2_open(s.h2, &next), VREV_ERR_STATE);
    end_free(&s);
}

/* --- V2Ray's bytes ------------------------------------------------------------------------- */

/* V2Ray's client (request, "hello from client", RST CANCEL) into our server, in every split. */
static void test_v2ray_client_into_our_server(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v2 = tu_load("h2/client.bin", &n);
    for (size_t cut = 0; cut <= n; cut += (cut < 200 ? 1 : 7)) {
        struct end s;
        end_new(&s, false, NULL);
        assert_int_equal(vrev__h2_feed(s.h2, v2, cut), 0);
        for (size_t i = cut; i < n; i++)
            assert_int_equal(vrev__h2_feed(s.h2, v2 + i, 1), 0);
        assert_int_equal(s.opens, 1);
        assert_string_equal(s.method, "PUT");
        assert_string_equal(s.authority, "h2.example.com");
        assert_string_equal(s.path, "/h2");
        assert_int_equal(s.got_len, 17);
        assert_memory_equal(s.got, "hello from client", 17);
        assert_int_equal(s.closes, 1); /* RST_STREAM CANCEL: the stream's normal end */
        assert_int_equal(s.close_err[1], 0);
        end_free(&s);
    }
    free(v2);
}

/* Our server's answer: a 200 with cache-control no-store, as V2Ray's. */
static void test_our_server_answers_as_v2ray(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v2 = tu_load("h2/client.bin", &n);
    struct end s;
    end_new(&s, false, NULL);
    assert_int_equal(vrev__h2_feed(s.h2, v2, 24 + 27 + 13 + 55), 0); /* up to its HEADERS */
    const uint8_t *p;
    size_t len = vrev__h2_pending(s.h2, &p);
    nghttp2_hd_inflater *inf;
    assert_int_equal(nghttp2_hd_inflate_new(&inf), 0);
    char seen[256] = "";
    for (size_t at = 0; at + 9 <= len;) {
        size_t flen = (size_t)p[at] << 16 | (size_t)p[at + 1] << 8 | p[at + 2];
        if (p[at + 3] == NGHTTP2_HEADERS) {
            const uint8_t *in = p + at + 9;
            size_t left = flen;
            for (;;) {
                nghttp2_nv h;
                int fl = 0;
                ssize_t r = nghttp2_hd_inflate_hd2(inf, &h, &fl, in, left, 1);
                assert_true(r >= 0);
                in += r;
                left -= (size_t)r;
                if (fl & NGHTTP2_HD_INFLATE_EMIT)
                    snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%.*s=%.*s;",
                             (int)h.namelen, h.name, (int)h.valuelen, h.value);
                if (fl & NGHTTP2_HD_INFLATE_FINAL)
                    break;
            }
        }
        at += 9 + flen;
    }
    nghttp2_hd_inflate_del(inf);
    assert_string_equal(seen, ":status=200;cache-control=no-store;");
    end_free(&s);
    free(v2);
}

/* V2Ray's server answers (200 for /h2 and /h2/sub, 404 for a wrong path and host, the echo,
 * END_STREAM) into our client, whose streams 1, 3, 5, 7 asked for them. */
static void test_v2ray_server_into_our_client(void **state)
{
    (void)state;
    static const char *const files[] = {"h2/server.bin", "h2/server-h2c.bin"};
    for (size_t f = 0; f < 2; f++) {
        size_t n;
        uint8_t *v2 = tu_load(files[f], &n);
        for (size_t cut = 0; cut <= n; cut += 5) {
            struct end c;
            end_new(&c, true, NULL);
            int32_t sid;
            for (int i = 0; i < 4; i++)
                assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
            const uint8_t *p;
            vrev__h2_consume(c.h2, vrev__h2_pending(c.h2, &p));
            assert_int_equal(vrev__h2_feed(c.h2, v2, cut), 0);
            assert_int_equal(vrev__h2_feed(c.h2, v2 + cut, n - cut), 0);
            assert_int_equal(c.got_by[1], 17);
            assert_memory_equal(c.got, "hello from client", 17);
            if (f == 0) {
                assert_int_equal(c.opens, 2); /* streams 1 and 7 */
                assert_int_equal(c.close_err[3], VREV_ERR_H2_REFUSED);
                assert_int_equal(c.close_err[5], VREV_ERR_H2_REFUSED);
                assert_false(c.closed[7]);
                assert_true(c.ended[1]);
            } else {
                assert_int_equal(c.opens, 1);
            }
            end_free(&c);
        }
        free(v2);
    }
}

/* Our client's first bytes are V2Ray's: preface, SETTINGS, WINDOW_UPDATE byte for byte, then a
 * HEADERS frame with V2Ray's header list. */
static void test_our_client_speaks_as_v2ray(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v2 = tu_load("h2/client.bin", &n);
    struct end c;
    end_new(&c, true, NULL);
    int32_t sid;
    assert_int_equal(vrev__h2_open(c.h2, &sid), 0);
    const uint8_t *p;
    size_t len = vrev__h2_pending(c.h2, &p);
    const size_t fixed = 24 + 9 + 18 + 9 + 4; /* preface, SETTINGS, WINDOW_UPDATE */
    assert_true(len > fixed + 9);
    assert_memory_equal(p, v2, fixed);
    assert_int_equal(p[fixed + 3], NGHTTP2_HEADERS);
    /* decode both header blocks and compare */
    char lists[2][512];
    const uint8_t *blocks[2] = {p + fixed, v2 + fixed};
    for (int k = 0; k < 2; k++) {
        nghttp2_hd_inflater *inf;
        assert_int_equal(nghttp2_hd_inflate_new(&inf), 0);
        size_t left = (size_t)blocks[k][0] << 16 | (size_t)blocks[k][1] << 8 | blocks[k][2];
        const uint8_t *in = blocks[k] + 9;
        lists[k][0] = '\0';
        for (;;) {
            nghttp2_nv h;
            int fl = 0;
            ssize_t r = nghttp2_hd_inflate_hd2(inf, &h, &fl, in, left, 1);
            assert_true(r >= 0);
            in += r;
            left -= (size_t)r;
            if (fl & NGHTTP2_HD_INFLATE_EMIT)
                snprintf(lists[k] + strlen(lists[k]), sizeof(lists[k]) - strlen(lists[k]),
                         "%.*s=%.*s;", (int)h.namelen, h.name, (int)h.valuelen, h.value);
            if (fl & NGHTTP2_HD_INFLATE_FINAL)
                break;
        }
        nghttp2_hd_inflate_del(inf);
    }
    assert_string_equal(lists[0], lists[1]);
    assert_string_equal(lists[0], ":authority=h2.example.com;:method=PUT;:path=/h2;:scheme=https;"
                                  "accept-encoding=identity;user-agent=Go-http-client/2.0;");
    end_free(&c);
    free(v2);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct vrev__h2 *h2;
    struct vrev__h2_opts o = {.path = "no-slash"};
    assert_int_equal(vrev__h2_new(ctx, &h2, &o, &CB, NULL), VREV_ERR_INVAL);
    o = (struct vrev__h2_opts){.client = true, .authority = "a b"};
    assert_int_equal(vrev__h2_new(ctx, &h2, &o, &CB, NULL), VREV_ERR_INVAL);
    const char *const bad_hosts[] = {NULL};
    o = (struct vrev__h2_opts){.hosts = bad_hosts, .n_hosts = 1};
    assert_int_equal(vrev__h2_new(ctx, &h2, &o, &CB, NULL), VREV_ERR_INVAL);
    struct vrev__h2_callbacks none = {0};
    o = (struct vrev__h2_opts){0};
    assert_int_equal(vrev__h2_new(ctx, &h2, &o, &none, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev__h2_new(ctx, &h2, NULL, &CB, NULL), VREV_ERR_INVAL);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    for (unsigned k = 1;; k++) {
        struct tu_failing_alloc fa = {k, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *fctx = NULL;
        struct end c = {.auto_consume = true}, s = {.auto_consume = true};
        struct vrev__h2_opts o = {
            .path = "/h2", .authority = "h2.example.com", .hosts = H2_HOSTS, .n_hosts = 1};
        int rc = vrev_ctx_new2(&fctx, NULL, &a);
        if (rc == 0) {
            o.client = true;
            rc = vrev__h2_new(fctx, &c.h2, &o, &CB, &c);
        }
        if (rc == 0) {
            o.client = false;
            rc = vrev__h2_new(fctx, &s.h2, &o, &CB, &s);
        }
        int32_t sid;
        if (rc == 0)
            rc = vrev__h2_open(c.h2, &sid);
        if (rc == 0)
            rc = vrev__h2_send(c.h2, sid, (const uint8_t *)"hello", 5);
        if (rc == 0)
            rc = pump(&c, &s);
        if (rc == 0 && s.got_len != 5)
            rc = VREV_ERR_NOMEM; /* a stream lost to a failed allocation inside nghttp2 */
        /* nghttp2 answers some of its own allocation failures with GOAWAY INTERNAL_ERROR */
        if (rc < 0 && rc != VREV_ERR_NOMEM && rc != VREV_ERR_H2_PROTOCOL)
            fail_msg("allocation %u: %d", k, rc);
        end_free(&c);
        end_free(&s);
        vrev_ctx_free(fctx);
        assert_int_equal(fa.live, 0);
        if (rc == 0)
            break;
        assert_true(k < 400);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bulk),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_reset_and_cancel),
        cmocka_unit_test(test_host_and_path_checks),
        cmocka_unit_test(test_floods),
        cmocka_unit_test(test_unread_acks),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_stream_limit),
        cmocka_unit_test(test_v2ray_client_into_our_server),
        cmocka_unit_test(test_our_server_answers_as_v2ray),
        cmocka_unit_test(test_v2ray_server_into_our_client),
        cmocka_unit_test(test_our_client_speaks_as_v2ray),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests_name("h2", tests, setup, teardown);
}
