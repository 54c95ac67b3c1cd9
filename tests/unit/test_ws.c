/* lib/codec/ws: WebSocket framing. Our client and server talk to each other in memory (all
 * frame length forms, every split of the input); both replay what Debian's V2Ray 4.34 sent
 * (tests/vectors/ws/client-frames.bin, server-frames.bin: payload, then its close 1000) and our
 * server frames a payload exactly as V2Ray's does. Every refusal: bad opcode, RSV bits, wrong
 * masking, oversized frames and control frames, fragment order, bad close status, bad UTF-8,
 * ping floods (per tick and unanswered), on_data's error; the close handshake; output held
 * and released; allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/ws.h"
#include "core/core.h"
#include "testutil.h"

struct sink {
    uint8_t *p;
    size_t len, cap;
    int fail; /* on_data returns this (0: take the bytes) */
};

static int on_data(void *user, const uint8_t *p, size_t n)
{
    struct sink *s = user;
    if (s->fail)
        return s->fail;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->p = realloc(s->p, s->cap);
        assert_non_null(s->p);
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    return 0;
}

struct end {
    struct vrev__ws *ws;
    struct sink got;
};

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

static void end_new(struct end *e, bool client, const struct vrev__ws_opts *base)
{
    struct vrev__ws_opts o = base ? *base : (struct vrev__ws_opts){0};
    o.client = client;
    memset(&e->got, 0, sizeof(e->got));
    assert_int_equal(vrev__ws_new(ctx, &e->ws, &o, on_data, &e->got), 0);
}

static void end_free(struct end *e)
{
    vrev__ws_free(e->ws);
    free(e->got.p);
}

/* All of a's output, fed to b in pieces of `step` bytes (0: at once). Returns b's result. */
static int pass(struct end *a, struct end *b, size_t step)
{
    const uint8_t *p;
    size_t n = vrev__ws_pending(a->ws, &p);
    uint8_t *copy = tu_dup(p, n);
    vrev__ws_consume(a->ws, n);
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < n;) {
        size_t k = step && n - off > step ? step : n - off;
        rc = vrev__ws_feed(b->ws, copy + off, k);
        off += k;
    }
    free(copy);
    return rc;
}

/* The output as one exactly-sized copy (consumed). */
static uint8_t *take(struct vrev__ws *ws, size_t *n)
{
    const uint8_t *p;
    *n = vrev__ws_pending(ws, &p);
    uint8_t *copy = tu_dup(p, *n);
    vrev__ws_consume(ws, *n);
    return copy;
}

static void test_round_trip_every_length_form(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 125, 126, 127, 65535, 65536, 70000, 1 << 20};
    struct vrev__ws_opts big = {.send_frame = 1 << 20};
    for (int frame_opts = 0; frame_opts < 2; frame_opts++) {
        struct end c, s;
        end_new(&c, true, frame_opts ? &big : NULL);
        end_new(&s, false, frame_opts ? &big : NULL);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint8_t *msg = malloc(sizes[i]);
            assert_non_null(msg);
            for (size_t k = 0; k < sizes[i]; k++)
                msg[k] = tu_pattern(k + i);
            size_t before = s.got.len;
            assert_int_equal(vrev__ws_send(c.ws, msg, sizes[i]), 0);
            assert_true(vrev__ws_buffered(c.ws) > sizes[i]); /* header and payload held */
            assert_int_equal(pass(&c, &s, sizes[i] < 1000 ? 1 : 4093), 0);
            assert_int_equal(vrev__ws_buffered(c.ws), 0);
            assert_int_equal(s.got.len - before, sizes[i]);
            assert_memory_equal(s.got.p + before, msg, sizes[i]);
            before = c.got.len;
            assert_int_equal(vrev__ws_send(s.ws, msg, sizes[i]), 0);
            assert_int_equal(pass(&s, &c, sizes[i] < 1000 ? 1 : 7), 0);
            assert_memory_equal(c.got.p + before, msg, sizes[i]);
            free(msg);
        }
        assert_int_equal(vrev__ws_send(c.ws, (const uint8_t *)"", 0), 0);
        const uint8_t *p;
        assert_int_equal(vrev__ws_pending(c.ws, &p), 0);
        end_free(&c);
        end_free(&s);
    }
}

/* A frame our server writes is the frame V2Ray's server writes; our client's carries a mask. */
static void test_frames_as_v2ray_writes_them(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v2 = tu_load("ws/server-frames.bin", &n);
    struct end s, c;
    end_new(&s, false, NULL);
    end_new(&c, true, NULL);
    assert_int_equal(vrev__ws_send(s.ws, (const uint8_t *)"hello from client", 17), 0);
    size_t len;
    uint8_t *ours = take(s.ws, &len);
    assert_int_equal(len, 19);
    assert_memory_equal(ours, v2, 19);
    free(ours);
    assert_int_equal(vrev__ws_send(c.ws, (const uint8_t *)"hello from client", 17), 0);
    ours = take(c.ws, &len);
    assert_int_equal(len, 23);
    assert_int_equal(ours[0], 0x82);
    assert_int_equal(ours[1], 0x80 | 17);
    free(ours);
    end_free(&s);
    end_free(&c);
    free(v2);
}

/* V2Ray's client frames (masked payload, then close 1000) into our server, in every split. */
static void test_v2ray_client_frames(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v2 = tu_load("ws/client-frames.bin", &n);
    for (size_t cut = 0; cut <= n; cut++) {
        struct end s;
        end_new(&s, false, NULL);
        assert_int_equal(vrev__ws_feed(s.ws, v2, cut), 0);
        for (size_t i = cut; i < n; i++)
            assert_int_equal(vrev__ws_feed(s.ws, v2 + i, 1), 0);
        assert_int_equal(s.got.len, 17);
        assert_memory_equal(s.got.p, "hello from client", 17);
        assert_true(vrev__ws_peer_closed(s.ws));
        assert_int_equal(vrev__ws_peer_status(s.ws), 1000);
        assert_int_equal(vrev__ws_send(s.ws, (const uint8_t *)"x", 1), VREV_ERR_STATE);
        size_t len;
        uint8_t *reply = take(s.ws, &len);
        assert_int_equal(len, 4); /* the close answer, echoing 1000, as V2Ray's server */
        assert_memory_equal(reply, "\x88\x02\x03\xe8", 4);
        free(reply);
        assert_true(vrev__ws_done(s.ws));
        end_free(&s);
    }
    /* our client refuses them: a server's frames are never masked */
    struct end c;
    end_new(&c, true, NULL);
    assert_int_equal(vrev__ws_feed(c.ws, v2, n), VREV_ERR_WS_FRAME);
    end_free(&c);
    free(v2);
}

/* V2Ray's server frames (the echo, then its close answer) into our client, in every split. */
static void test_v2ray_server_frames(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v2 = tu_load("ws/server-frames.bin", &n);
    for (size_t cut = 0; cut <= n; cut++) {
        struct end c;
        end_new(&c, true, NULL);
        assert_int_equal(vrev__ws_close(c.ws, 1000), 0); /* we closed first, as the capture */
        assert_int_equal(vrev__ws_feed(c.ws, v2, cut), 0);
        for (size_t i = cut; i < n; i++)
            assert_int_equal(vrev__ws_feed(c.ws, v2 + i, 1), 0);
        assert_int_equal(c.got.len, 17);
        assert_memory_equal(c.got.p, "hello from client", 17);
        assert_true(vrev__ws_peer_closed(c.ws));
        size_t len;
        uint8_t *out = take(c.ws, &len);
        assert_int_equal(len, 8); /* our masked close 1000, and nothing after it */
        assert_int_equal(out[0], 0x88);
        assert_int_equal(out[1], 0x82);
        assert_int_equal((out[6] ^ out[2]) << 8 | (out[7] ^ out[3]), 1000);
        free(out);
        assert_true(vrev__ws_done(c.ws));
        end_free(&c);
    }
    struct end s;
    end_new(&s, false, NULL);
    assert_int_equal(vrev__ws_feed(s.ws, v2, n), VREV_ERR_WS_FRAME); /* unmasked: refused */
    end_free(&s);
    free(v2);
}

/* A masked client frame: FIN/opcode byte, payload; mask key 0 keeps payloads readable. */
static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
    size_t h = 0;
    out[h++] = b0;
    if (n < 126) {
        out[h++] = (uint8_t)(0x80 | n);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    }
    memset(out + h, 0, 4);
    memcpy(out + h + 4, payload, n);
    return h + 4 + n;
}

/* Feed `in` to a fresh server; expect `rc` and, when rc < 0, a close with `status`. */
static void expect_refused(const uint8_t *in, size_t n, const struct vrev__ws_opts *o, int rc,
                           int status)
{
    struct end s;
    end_new(&s, false, o);
    assert_int_equal(vrev__ws_feed(s.ws, in, n), rc);
    assert_int_equal(vrev__ws_feed(s.ws, in, n), rc); /* sticky */
    size_t len;
    uint8_t *out = take(s.ws, &len);
    assert_true(len >= 2);
    size_t at = len - 4; /* the close is the last frame */
    if (status == 0) {
        assert_memory_equal(out + len - 2, "\x88\x00", 2);
    } else {
        assert_int_equal(out[at], 0x88);
        assert_int_equal(out[at + 1], 2);
        assert_int_equal(out[at + 2] << 8 | out[at + 3], status);
    }
    assert_int_equal(vrev__ws_send(s.ws, (const uint8_t *)"x", 1), VREV_ERR_STATE);
    free(out);
    end_free(&s);
}

static void test_bad_frames(void **state)
{
    (void)state;
    uint8_t b[400];
    size_t n;
    n = frame(b, 0x83, "x", 1); /* reserved opcode */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 1002);
    n = frame(b, 0xc2, "x", 1); /* RSV1 without an extension */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 1002);
    n = frame(b, 0x80, "x", 1); /* a continuation with nothing to continue */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 1002);
    n = frame(b, 0x02, "a", 1); /* a new message inside a fragmented one */
    n += frame(b + n, 0x82, "b", 1);
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 1002);
    n = frame(b, 0x09, "x", 1); /* a fragmented ping */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 0);
    uint8_t big[200] = {0};
    n = frame(b, 0x89, big, 126); /* a control frame over 125 bytes */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 0);
    n = frame(b, 0x88, "\x03\xed", 2); /* close status 1005 may not be sent */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 1002);
    n = frame(b, 0x81, "\xc3\x28", 2); /* text that is not UTF-8 */
    expect_refused(b, n, NULL, VREV_ERR_WS_FRAME, 1007);
    /* 64-bit length with the top bit set */
    static const uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_refused(huge, sizeof(huge), NULL, VREV_ERR_WS_FRAME, 0);
    /* a frame over max_frame: refused from its header on */
    struct vrev__ws_opts small = {.max_frame = 100};
    n = frame(b, 0x82, big, 101);
    expect_refused(b, 8, &small, VREV_ERR_WS_TOO_BIG, 1009);
    n = frame(b, 0x82, big, 100);
    struct end s;
    end_new(&s, false, &small);
    assert_int_equal(vrev__ws_feed(s.ws, b, n), 0);
    assert_int_equal(s.got.len, 100);
    end_free(&s);
}

static void test_fragments_and_interleaved_ping(void **state)
{
    (void)state;
    uint8_t b[200];
    size_t n = frame(b, 0x02, "abc", 3);
    n += frame(b + n, 0x89, "p1", 2);
    n += frame(b + n, 0x00, "def", 3);
    n += frame(b + n, 0x8a, "unsolicited", 11); /* a pong nobody asked for: ignored */
    n += frame(b + n, 0x80, "g", 1);
    n += frame(b + n, 0x81, "\xc3\xa9", 2); /* text is payload too (V2Ray reads it) */
    for (size_t step = 1; step <= n; step++) {
        struct end s;
        end_new(&s, false, NULL);
        for (size_t off = 0; off < n; off += step)
            assert_int_equal(vrev__ws_feed(s.ws, b + off, n - off < step ? n - off : step), 0);
        assert_int_equal(s.got.len, 9);
        assert_memory_equal(s.got.p, "abcdefg\xc3\xa9", 9);
        size_t len;
        uint8_t *out = take(s.ws, &len);
        assert_int_equal(len, 4);
        assert_memory_equal(out, "\x8a\x02p1", 4); /* the pong, unmasked, same payload */
        free(out);
        end_free(&s);
    }
}

static size_t pings(uint8_t *b, unsigned count)
{
    size_t n = 0;
    for (unsigned i = 0; i < count; i++)
        n += frame(b + n, 0x89, "", 0);
    return n;
}

static void test_ping_flood(void **state)
{
    (void)state;
    uint8_t b[64 * 6];
    /* over max_pings within one tick: closed with 1008 (the pongs owed are drained each time) */
    struct end s;
    end_new(&s, false, NULL);
    size_t one = pings(b, 1), len;
    for (unsigned i = 0; i < VREV_WS_MAX_PINGS; i++) {
        assert_int_equal(vrev__ws_feed(s.ws, b, one), 0);
        free(take(s.ws, &len));
        assert_int_equal(len, 2);
    }
    assert_int_equal(vrev__ws_feed(s.ws, b, one), VREV_ERR_WS_FLOOD);
    uint8_t *out = take(s.ws, &len);
    assert_memory_equal(out + len - 4, "\x88\x02\x03\xf0", 4);
    free(out);
    end_free(&s);
    /* the same pings spread over ticks are fine */
    end_new(&s, false, NULL);
    for (unsigned i = 0; i < 10 * VREV_WS_MAX_PINGS; i++) {
        if (i % VREV_WS_MAX_PINGS == 0)
            vrev__ws_tick(s.ws);
        assert_int_equal(vrev__ws_feed(s.ws, b, one), 0);
        free(take(s.ws, &len));
    }
    end_free(&s);
    /* a peer that never reads its pongs: past max_unanswered, even with ticks */
    end_new(&s, false, NULL);
    for (unsigned i = 0; i < VREV_WS_MAX_UNANSWERED; i++) {
        vrev__ws_tick(s.ws);
        assert_int_equal(vrev__ws_feed(s.ws, b, one), 0);
    }
    const uint8_t *p;
    assert_int_equal(vrev__ws_pending(s.ws, &p), 2 * VREV_WS_MAX_UNANSWERED); /* not consumed */
    assert_int_equal(vrev__ws_buffered(s.ws), 2 * VREV_WS_MAX_UNANSWERED);
    vrev__ws_tick(s.ws);
    assert_int_equal(vrev__ws_feed(s.ws, b, one), VREV_ERR_WS_FLOOD);
    end_free(&s);
    /* a bulk sender whose output never empties still answers pings: no flood */
    end_new(&s, false, NULL);
    static uint8_t bulk[32768];
    assert_int_equal(vrev__ws_send(s.ws, bulk, sizeof(bulk)), 0);
    for (unsigned i = 0; i < 4 * VREV_WS_MAX_UNANSWERED; i++) {
        vrev__ws_tick(s.ws);
        assert_int_equal(vrev__ws_feed(s.ws, b, one), 0);
        assert_int_equal(vrev__ws_send(s.ws, bulk, sizeof(bulk)), 0);
        const uint8_t *q;
        size_t held = vrev__ws_pending(s.ws, &q);
        vrev__ws_consume(s.ws, held - sizeof(bulk) / 2); /* the writer always lags a little */
    }
    end_free(&s);
    /* a burst in one read stops at the bound: no pong queued for the rest */
    end_new(&s, false, NULL);
    size_t n = pings(b, 64);
    assert_int_equal(vrev__ws_feed(s.ws, b, n), VREV_ERR_WS_FLOOD);
    out = take(s.ws, &len);
    assert_true(len <= 2 * (VREV_WS_MAX_UNANSWERED + 1) + 4);
    free(out);
    end_free(&s);
}

static void test_close_handshake(void **state)
{
    (void)state;
    struct end c, s;
    end_new(&c, true, NULL);
    end_new(&s, false, NULL);
    assert_int_equal(vrev__ws_send(c.ws, (const uint8_t *)"last", 4), 0);
    assert_int_equal(vrev__ws_close(c.ws, 1000), 0);
    assert_int_equal(vrev__ws_close(c.ws, 1001), 0); /* idempotent */
    assert_int_equal(vrev__ws_send(c.ws, (const uint8_t *)"more", 4), VREV_ERR_STATE);
    /* the server may still send until it answers: data after our close still arrives */
    assert_int_equal(vrev__ws_send(s.ws, (const uint8_t *)"reply", 5), 0);
    assert_int_equal(pass(&c, &s, 0), 0);
    assert_memory_equal(s.got.p, "last", 4);
    assert_true(vrev__ws_peer_closed(s.ws));
    assert_int_equal(vrev__ws_peer_status(s.ws), 1000);
    assert_false(vrev__ws_done(c.ws));
    assert_int_equal(pass(&s, &c, 0), 0);
    assert_memory_equal(c.got.p, "reply", 5);
    assert_true(vrev__ws_peer_closed(c.ws));
    assert_true(vrev__ws_done(c.ws));
    assert_true(vrev__ws_done(s.ws));
    /* input after the close is ignored */
    uint8_t b[16];
    size_t n = frame(b, 0x82, "late", 4);
    assert_int_equal(vrev__ws_feed(s.ws, b, n), 0);
    assert_int_equal(s.got.len, 4);
    end_free(&c);
    end_free(&s);
    /* a close without status */
    end_new(&c, true, NULL);
    end_new(&s, false, NULL);
    assert_int_equal(vrev__ws_close(c.ws, 0), 0);
    assert_int_equal(pass(&c, &s, 0), 0);
    assert_int_equal(vrev__ws_peer_status(s.ws), 1005);
    end_free(&c);
    end_free(&s);
}

static void test_on_data_error_stops(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = frame(b, 0x82, "abc", 3);
    n += frame(b + n, 0x82, "def", 3);
    struct end s;
    end_new(&s, false, NULL);
    s.got.fail = VREV_ERR_NOMEM;
    assert_int_equal(vrev__ws_feed(s.ws, b, n), VREV_ERR_NOMEM);
    assert_int_equal(vrev__ws_feed(s.ws, b, n), VREV_ERR_NOMEM);
    size_t len;
    uint8_t *out = take(s.ws, &len);
    assert_memory_equal(out, "\x88\x02\x03\xf3", 4); /* 1011 */
    free(out);
    end_free(&s);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    for (unsigned k = 1;; k++) {
        struct tu_failing_alloc fa = {k, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *fctx = NULL;
        struct vrev__ws *ws = NULL;
        struct sink got = {0};
        int rc = vrev_ctx_new2(&fctx, NULL, &a);
        if (rc == 0)
            rc = vrev__ws_new(fctx, &ws, NULL, on_data, &got);
        for (int i = 0; rc == 0 && i < 12; i++) /* grows the output buffer */
            rc = vrev__ws_send(ws, (const uint8_t *)"0123456789abcdef0123456789abcdef", 32);
        if (rc < 0)
            assert_int_equal(rc, VREV_ERR_NOMEM);
        vrev__ws_free(ws);
        vrev_ctx_free(fctx);
        assert_int_equal(fa.live, 0);
        free(got.p);
        if (rc == 0)
            break;
        assert_true(k < 50);
    }
    assert_int_equal(vrev__ws_new(ctx, &(struct vrev__ws *){NULL}, NULL, NULL, NULL),
                     VREV_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_length_form),
        cmocka_unit_test(test_frames_as_v2ray_writes_them),
        cmocka_unit_test(test_v2ray_client_frames),
        cmocka_unit_test(test_v2ray_server_frames),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_fragments_and_interleaved_ping),
        cmocka_unit_test(test_ping_flood),
        cmocka_unit_test(test_close_handshake),
        cmocka_unit_test(test_on_data_error_stops),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests_name("ws", tests, setup, teardown);
}
