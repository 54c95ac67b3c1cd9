/* lib/codec/mux: Mux.Cool against the streams captured from V2Ray 4.34 (frame lists from
 * decoded.txt, byte-identical re-encoding, any input split), the WIRE-SPEC §10.8 vectors,
 * malformed input, and the session rules of WIRE-SPEC §2.8; the captures, malformed input and
 * session rules again with stream payload delivered in pieces (vrev__mux_set_partial_data),
 * and the pieces themselves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/mux_guard.h"
#include "codec/mux_internal.h"
#include "testutil.h"
#include "vrev.h"

/* ---- recording decoded frames --------------------------------------------------------------- */

struct frame_rec {
    unsigned sid, status, opt, net, port, atype;
    char host[256];
    int has_data;
    size_t data_len;
    uint8_t *data;
    size_t filled; /* pieces: payload bytes received so far */
};

/* Nonzero: every mux the tests make delivers stream payload in pieces. */
static int g_pieces;

struct rec {
    struct frame_rec *f;
    size_t n, cap;
};

static int record_frame(vrev_mux *m, const vrev_mux_frame *f, void *user)
{
    (void)m;
    struct rec *r = user;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->f = realloc(r->f, r->cap * sizeof(*r->f));
        assert_non_null(r->f);
    }
    struct frame_rec *x = &r->f[r->n++];
    memset(x, 0, sizeof(*x));
    x->sid = vrev_mux_frame_sid(f);
    x->status = (unsigned)vrev_mux_frame_status(f);
    x->opt = (unsigned)vrev_mux_frame_option(f);
    x->net = (unsigned)vrev_mux_frame_network(f);
    x->port = vrev_mux_frame_port(f);
    x->atype = (unsigned)vrev_mux_frame_addr_type(f);
    if (x->status == VREV_MUX_NEW)
        assert_true(vrev_mux_frame_host(f, x->host, sizeof(x->host)) > 0);
    const uint8_t *d = vrev_mux_frame_data(f, &x->data_len);
    x->has_data = (x->opt & VREV_MUX_OPT_DATA) != 0;
    if (g_pieces && x->has_data && !d && x->data_len) { /* its payload follows in pieces */
        x->data = calloc(1, x->data_len);
        return 0;
    }
    x->data = x->data_len ? tu_dup(d, x->data_len) : NULL;
    x->filled = x->data_len;
    assert_int_equal(d != NULL, x->has_data);
    return 0;
}

/* Pieces of the payload of the frame recorded last; whole datagrams were recorded already. */
static int record_piece(vrev_mux *m, uint16_t sid, const uint8_t *d, size_t n, void *user)
{
    (void)m;
    struct rec *r = user;
    assert_true(r->n > 0);
    struct frame_rec *x = &r->f[r->n - 1];
    if (x->filled == x->data_len)
        return 0;
    assert_int_equal(x->sid, sid);
    assert_true(n > 0 && x->filled + n <= x->data_len);
    memcpy(x->data + x->filled, d, n);
    x->filled += n;
    return 0;
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->f[i].data);
    free(r->f);
    memset(r, 0, sizeof(*r));
}

static void rec_equal(const struct rec *a, const struct rec *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct frame_rec *x = &a->f[i], *y = &b->f[i];
        assert_int_equal(x->sid, y->sid);
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->opt, y->opt);
        assert_int_equal(x->port, y->port);
        assert_string_equal(x->host, y->host);
        assert_int_equal(x->data_len, y->data_len);
        assert_int_equal(x->filled, x->data_len);
        assert_int_equal(y->filled, y->data_len);
        if (x->data_len)
            assert_memory_equal(x->data, y->data, x->data_len);
    }
}

/* Decode `len` bytes fed in pieces of `step` bytes, or split once at `split` (step 0). */
static int decode(const uint8_t *p, size_t len, int role, size_t step, size_t split, struct rec *r)
{
    vrev_ctx *ctx;
    vrev_mux *m;
    vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI,
                             .on_frame = record_frame,
                             .on_data = g_pieces ? record_piece : NULL};
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vrev_mux_new(&m, ctx, role, &cb, r), 0);
    assert_int_equal(vrev__mux_set_partial_data(m, g_pieces), 0);
    int rc = 0;
    if (step) {
        for (size_t off = 0; off < len && rc == 0; off += step) {
            size_t n = len - off < step ? len - off : step;
            uint8_t *piece = tu_dup(p + off, n);
            size_t used;
            rc = vrev_mux_feed(m, piece, n, &used);
            if (rc == 0)
                assert_int_equal(used, n);
            free(piece);
        }
    } else {
        uint8_t *a = tu_dup(p, split), *b = tu_dup(p + split, len - split);
        rc = vrev_mux_feed(m, a, split, NULL);
        if (rc == 0)
            rc = vrev_mux_feed(m, b, len - split, NULL);
        free(a);
        free(b);
    }
    if (rc == 0)
        assert_int_equal(vrev_mux_buffered(m), 0);
    vrev_mux_free(m);
    vrev_ctx_free(ctx);
    return rc;
}

/* ---- decoded.txt (the capture's independent decoding) -------------------------------------- */

static unsigned long field(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    assert_non_null(p);
    return strtoul(p + strlen(key), NULL, 0);
}

/* Parse the frames of one direction ("[down" or "[up") from a decoded.txt listing. */
static void load_listing(const char *path, const char *direction, struct rec *r)
{
    size_t n;
    char *text = (char *)tu_load(path, &n);
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, text, n);
    copy[n] = '\0';
    free(text);
    int in_section = 0;
    for (char *line = copy, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "===", 3)) {
            in_section = strstr(line, direction) != NULL;
            continue;
        }
        if (!in_section || strncmp(line, "off=", 4) || !strstr(line, "metalen="))
            continue;
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->f = realloc(r->f, r->cap * sizeof(*r->f));
        }
        struct frame_rec *x = &r->f[r->n++];
        memset(x, 0, sizeof(*x));
        x->sid = (unsigned)field(line, " sid=");
        x->status = (unsigned)field(line, " status=");
        x->opt = (unsigned)field(line, " opt=");
        if (x->status == VREV_MUX_NEW) {
            x->net = (unsigned)field(line, " net=");
            x->port = (unsigned)field(line, " port=");
            x->atype = (unsigned)field(line, " atype=");
            const char *a = strstr(line, " addr=") + 6;
            size_t l = strcspn(a, " ");
            memcpy(x->host, a, l);
        }
        x->has_data = strstr(line, " datalen=") != NULL;
        if (x->has_data)
            x->data_len = field(line, " datalen=");
    }
    free(copy);
}

struct capture {
    const char *bin;
    const char *listing;
    const char *direction;
    size_t preamble;
    int role; /* the receiver of this direction */
};

static const struct capture captures[] = {
    {"v2ray-4.34/A-basic/conn1.down.bin", "v2ray-4.34/A-basic/conn1.decoded.txt", "[down", 12,
     VREV_MUX_SERVER},
    {"v2ray-4.34/A-basic/conn1.up.bin", "v2ray-4.34/A-basic/conn1.decoded.txt", "[up", 24,
     VREV_MUX_CLIENT},
    {"v2ray-4.34/B-drain/conn1.down.bin", "v2ray-4.34/B-drain/conn1.decoded.txt", "[down", 12,
     VREV_MUX_SERVER},
    {"v2ray-4.34/B-drain/conn1.up.bin", "v2ray-4.34/B-drain/conn1.decoded.txt", "[up", 24,
     VREV_MUX_CLIENT},
    {"v2ray-4.34/B-drain/conn2.down.bin", "v2ray-4.34/B-drain/conn2.decoded.txt", "[down", 12,
     VREV_MUX_SERVER},
    {"v2ray-4.34/B-drain/conn2.up.bin", "v2ray-4.34/B-drain/conn2.decoded.txt", "[up", 24,
     VREV_MUX_CLIENT},
};

static uint8_t *load_stream(const struct capture *c, size_t *len)
{
    size_t n;
    uint8_t *raw = tu_load(c->bin, &n);
    assert_true(n > c->preamble);
    uint8_t *s = tu_dup(raw + c->preamble, n - c->preamble);
    *len = n - c->preamble;
    free(raw);
    return s;
}

static void test_captures_match_listing(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
        const struct capture *c = &captures[i];
        size_t len;
        uint8_t *s = load_stream(c, &len);
        struct rec got = {0}, want = {0};
        assert_int_equal(decode(s, len, c->role, len, 0, &got), 0);
        load_listing(c->listing, c->direction, &want);
        assert_true(want.n > 0);
        assert_int_equal(got.n, want.n);
        for (size_t k = 0; k < got.n; k++) {
            const struct frame_rec *x = &got.f[k], *y = &want.f[k];
            assert_int_equal(x->sid, y->sid);
            assert_int_equal(x->status, y->status);
            assert_int_equal(x->opt, y->opt);
            assert_int_equal(x->has_data, y->has_data);
            assert_int_equal(x->data_len, y->data_len);
            if (x->status == VREV_MUX_NEW) {
                assert_int_equal(x->net, y->net);
                assert_int_equal(x->port, y->port);
                assert_int_equal(x->atype, y->atype);
                assert_string_equal(x->host, y->host);
            }
        }
        rec_free(&got);
        rec_free(&want);
        free(s);
    }
}

/* Re-encoding every decoded frame with the public encoder gives the captured bytes. */
static void test_captures_reencode_identically(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
        size_t len;
        uint8_t *s = load_stream(&captures[i], &len);
        struct rec got = {0};
        assert_int_equal(decode(s, len, captures[i].role, len, 0, &got), 0);
        uint8_t *out = malloc(len);
        size_t off = 0;
        for (size_t k = 0; k < got.n; k++) {
            const struct frame_rec *x = &got.f[k];
            uint8_t hdr[VREV_MUX_HEADER_MAX];
            int hl =
                vrev__mux_encode_header_text(hdr, sizeof(hdr), (uint16_t)x->sid, (int)x->status,
                                             (int)(x->opt & ~VREV_MUX_OPT_DATA), (int)x->net,
                                             x->host, (uint16_t)x->port, x->has_data, x->data_len);
            assert_true(hl > 0);
            assert_true(off + (size_t)hl + x->data_len <= len);
            memcpy(out + off, hdr, (size_t)hl);
            if (x->data_len)
                memcpy(out + off + hl, x->data, x->data_len);
            off += (size_t)hl + x->data_len;
        }
        assert_int_equal(off, len);
        assert_memory_equal(out, s, len);
        free(out);
        rec_free(&got);
        free(s);
    }
}

static void test_captures_any_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
        const struct capture *c = &captures[i];
        size_t len;
        uint8_t *s = load_stream(c, &len);
        struct rec whole = {0};
        assert_int_equal(decode(s, len, c->role, len, 0, &whole), 0);
        if (g_pieces) { /* the same frames and bytes as whole frames give */
            struct rec frames = {0};
            g_pieces = 0;
            assert_int_equal(decode(s, len, c->role, len, 0, &frames), 0);
            g_pieces = 1;
            rec_equal(&frames, &whole);
            rec_free(&frames);
        }
        static const size_t steps[] = {1, 2, 3, 7, 100, 8191};
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            struct rec r = {0};
            assert_int_equal(decode(s, len, c->role, steps[k], 0, &r), 0);
            rec_equal(&whole, &r);
            rec_free(&r);
        }
        /* every split point of short streams; the first 2 KiB and a stride of long ones */
        for (size_t split = 0; split <= len; split += (split < 2048 ? 1 : 997)) {
            struct rec r = {0};
            assert_int_equal(decode(s, len, c->role, 0, split, &r), 0);
            rec_equal(&whole, &r);
            rec_free(&r);
        }
        rec_free(&whole);
        free(s);
    }
}

/* ---- encoder vectors (WIRE-SPEC §10.8) ------------------------------------------------------ */

static void expect_frame(const uint8_t *got, size_t got_len, const char *want_hex)
{
    size_t n;
    uint8_t *want = tu_hex(want_hex, &n);
    assert_int_equal(got_len, n);
    assert_memory_equal(got, want, n);
    free(want);
}

static void test_encode_vectors(void **state)
{
    (void)state;
    uint8_t h[VREV_MUX_HEADER_MAX];
    int n = vrev__mux_encode_header_text(h, sizeof(h), 1, VREV_MUX_NEW, 0, VREV_NET_UDP,
                                         "reverse.internal.v2ray.com", 0, 1, 11);
    expect_frame(h, (size_t)n,
                 "0023 0001 01 01 02 0000 02 1a 726576657273652e696e7465726e616c2e"
                 "76327261792e636f6d 000b");
    n = vrev__mux_encode_header_text(h, sizeof(h), 3, VREV_MUX_NEW, 0, VREV_NET_TCP, "example.com",
                                     443, 0, 0);
    expect_frame(h, (size_t)n, "0014 0003 01 00 01 01bb 02 0b 6578616d706c652e636f6d");
    n = vrev__mux_encode_header_text(h, sizeof(h), 4, VREV_MUX_NEW, 0, VREV_NET_UDP, "::1", 53, 0,
                                     0);
    expect_frame(h, (size_t)n, "0018 0004 01 00 02 0035 03 00000000000000000000000000000001");
    n = vrev__mux_encode_header_text(h, sizeof(h), 2, VREV_MUX_KEEP, 0, 0, NULL, 0, 1, 17);
    expect_frame(h, (size_t)n, "0004 0002 02 01 0011");
    n = vrev__mux_encode_header_text(h, sizeof(h), 2, VREV_MUX_END, 0, 0, NULL, 0, 0, 0);
    expect_frame(h, (size_t)n, "000400020300");
    n = vrev__mux_encode_header_text(h, sizeof(h), 2, VREV_MUX_END, VREV_MUX_OPT_ERROR, 0, NULL, 0,
                                     0, 0);
    expect_frame(h, (size_t)n, "000400020302");
    n = vrev__mux_encode_header_text(h, sizeof(h), 0, VREV_MUX_KEEPALIVE, 0, 0, NULL, 0, 0, 0);
    expect_frame(h, (size_t)n, "000400000400");
    assert_int_equal(vrev__mux_encode_header_text(h, 5, 2, VREV_MUX_END, 0, 0, NULL, 0, 0, 0),
                     VREV_ERR_NOSPACE);
    assert_int_equal(
        vrev__mux_encode_header_text(h, sizeof(h), 2, VREV_MUX_KEEP, 0, 0, NULL, 0, 1, 70000),
        VREV_ERR_RANGE);
    assert_int_equal(vrev__mux_encode_header_text(h, sizeof(h), 2, 9, 0, 0, NULL, 0, 0, 0),
                     VREV_ERR_INVAL);
    assert_int_equal(
        vrev__mux_encode_header_text(h, sizeof(h), 2, VREV_MUX_NEW, 0, VREV_NET_TCP, "", 1, 0, 0),
        VREV_ERR_ADDR_DOMAIN);
}

/* ---- a harness for session tests ------------------------------------------------------------ */

struct harness {
    vrev_ctx *ctx;
    vrev_mux *mux;
    int opens, closes, close_error, datas;
    size_t data_bytes;
    uint16_t last_sid;
    int free_in_close;
    int end_in_open;
    int pause_in_data;
    int end_in_data;
    void *close_user;
    const uint8_t *last_data; /* the last piece or chunk delivered */
    size_t last_len;
    uint8_t *collect; /* if set, every payload byte delivered is appended here */
};

static int h_open(vrev_mux *m, uint16_t sid, const vrev_mux_frame *f, void *user)
{
    (void)f;
    struct harness *h = user;
    h->opens++;
    h->last_sid = sid;
    if (h->end_in_open)
        assert_int_equal(vrev_mux_end(m, sid, 1), 0);
    return 0;
}

static int h_data(vrev_mux *m, uint16_t sid, const uint8_t *d, size_t n, void *user)
{
    struct harness *h = user;
    if (h->collect)
        memcpy(h->collect + h->data_bytes, d, n);
    h->last_data = d;
    h->last_len = n;
    if (h->end_in_data)
        assert_int_equal(vrev_mux_end(m, sid, 0), 0);
    h->datas++;
    h->data_bytes += n;
    h->last_sid = sid;
    if (h->pause_in_data)
        vrev__mux_pause(m);
    return 0;
}

static int h_close(vrev_mux *m, uint16_t sid, int error, void *session_user, void *user)
{
    struct harness *h = user;
    h->close_user = session_user;
    h->closes++;
    h->close_error = error;
    h->last_sid = sid;
    if (h->free_in_close) {
        vrev_mux_free(m);
        h->mux = NULL;
    }
    return 0;
}

static void h_init(struct harness *h, int role)
{
    memset(h, 0, sizeof(*h));
    vrev_mux_callbacks cb = {
        .abi = VREV_MUX_CALLBACKS_ABI, .on_open = h_open, .on_data = h_data, .on_close = h_close};
    assert_int_equal(vrev_ctx_new(&h->ctx, NULL), 0);
    assert_int_equal(vrev_mux_new(&h->mux, h->ctx, role, &cb, h), 0);
    assert_int_equal(vrev__mux_set_partial_data(h->mux, g_pieces), 0);
}

static void h_done(struct harness *h)
{
    vrev_mux_free(h->mux);
    vrev_ctx_free(h->ctx);
}

static int h_feed_hex(struct harness *h, const char *hex)
{
    size_t n;
    uint8_t *b = tu_hex(hex, &n);
    int rc = vrev_mux_feed(h->mux, b, n, NULL);
    free(b);
    return rc;
}

/* Take the queued output and compare it with hex. */
static void h_expect_out(struct harness *h, const char *hex)
{
    const uint8_t *p;
    size_t n = vrev_mux_pending(h->mux, &p);
    expect_frame(p, n, hex);
    vrev_mux_consume(h->mux, n);
}

/* ---- malformed input ------------------------------------------------------------------------ */

static void expect_fatal(int role, const char *hex, int err, uint64_t offset)
{
    struct harness h;
    h_init(&h, role);
    assert_int_equal(h_feed_hex(&h, hex), err);
    assert_int_equal(vrev_mux_error(h.mux), err);
    assert_int_equal(vrev_mux_error_offset(h.mux), offset);
    /* the mux is closed for good */
    assert_int_equal(h_feed_hex(&h, "000400000400"), VREV_ERR_MUX_CLOSED);
    assert_int_equal(vrev_mux_keepalive(h.mux), VREV_ERR_MUX_CLOSED);
    h_done(&h);
    /* and byte by byte the same error comes out at the same offset */
    size_t n;
    uint8_t *b = tu_hex(hex, &n);
    h_init(&h, role);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = vrev_mux_feed(h.mux, b + i, 1, NULL);
    assert_int_equal(rc, err);
    assert_int_equal(vrev_mux_error_offset(h.mux), offset);
    h_done(&h);
    free(b);
}

static void test_malformed(void **state)
{
    (void)state;
    const int S = VREV_MUX_SERVER, C = VREV_MUX_CLIENT;
    expect_fatal(S, "0000", VREV_ERR_MUX_META_LEN, 0);
    expect_fatal(S, "0003 000203", VREV_ERR_MUX_META_LEN, 0);
    expect_fatal(S, "000400020300 0201", VREV_ERR_MUX_META_LEN, 6);
    expect_fatal(C, "ffff", VREV_ERR_MUX_META_LEN, 0);
    /* 512 is the largest accepted: metadata beyond what is understood is ignored */
    char ok512[2 * 514 + 16];
    strcpy(ok512, "0200 0002 03 00");
    for (int i = 0; i < 508; i++)
        strcat(ok512, "00");
    struct harness h;
    h_init(&h, S);
    assert_int_equal(h_feed_hex(&h, ok512), 0);
    h_done(&h);
    expect_fatal(S, "0004 0002 00 00", VREV_ERR_MUX_STATUS, 0);
    expect_fatal(S, "0004 0002 05 00", VREV_ERR_MUX_STATUS, 0);
    expect_fatal(C, "000400020300 0004 0002 ff 00", VREV_ERR_MUX_STATUS, 6);
    expect_fatal(S, "000c 0002 01 00 01 0050 00 7f000001", VREV_ERR_ADDR_TYPE, 0);
    expect_fatal(S, "000c 0002 01 00 01 0050 04 7f000001", VREV_ERR_ADDR_TYPE, 0);
    expect_fatal(S, "000c 0002 01 00 01 0050 ff 7f000001", VREV_ERR_ADDR_TYPE, 0);
    expect_fatal(S, "0009 0002 01 00 01 0050 02 00", VREV_ERR_ADDR_DOMAIN, 0);
    expect_fatal(S, "000b 0002 01 00 01 0050 02 02 2f2f", VREV_ERR_ADDR_DOMAIN, 0);
    expect_fatal(S, "000c 0002 01 00 03 0050 01 7f000001", VREV_ERR_MUX_NETWORK, 0);
    expect_fatal(S, "000c 0002 01 00 00 0050 01 7f000001", VREV_ERR_MUX_NETWORK, 0);
    expect_fatal(S, "0005 0002 01 00 01", VREV_ERR_MUX_NEW_SHORT, 0);
    expect_fatal(S, "0009 0002 01 00 01 0050 01 7f00", VREV_ERR_MUX_NEW_SHORT, 0);
    expect_fatal(S, "0009 0002 01 00 01 0050 02 05", VREV_ERR_MUX_NEW_SHORT, 0);
    /* the same rules apply to New frames a client would ignore */
    expect_fatal(C, "000c 0002 01 00 01 0050 04 7f000001", VREV_ERR_ADDR_TYPE, 0);
}

static void test_truncated_data(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    /* dataLen says 16, only 3 bytes arrive: need more, nothing delivered, buffered */
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 01 01 0050 01 7f000001 0010 616263"), 0);
    assert_int_equal(h.opens, 0);
    assert_int_equal(vrev_mux_buffered(h.mux), 19);
    h_done(&h);
}

/* ---- session rules -------------------------------------------------------------------------- */

static void test_server_sessions(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    /* New with data: open, then data */
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 01 01 0050 01 7f000001 0003 616263"), 0);
    assert_int_equal(h.opens, 1);
    assert_int_equal(h.data_bytes, 3);
    assert_int_equal(vrev_mux_active_sessions(h.mux), 1);
    assert_int_equal(vrev_mux_session_network(h.mux, 2), VREV_NET_TCP);
    /* Keep without data: ignored; with data: delivered */
    assert_int_equal(h_feed_hex(&h, "000400020200 000400020201 0002 6465"), 0);
    assert_int_equal(h.datas, 2);
    assert_int_equal(h.data_bytes, 5);
    /* Keep+Data for an unknown id: one End reply; Keep without data: no reply */
    assert_int_equal(h_feed_hex(&h, "000400090201 0001 78 000400090200"), 0);
    h_expect_out(&h, "000400090300");
    /* End for an unknown id: nothing; KeepAlive with data: discarded */
    assert_int_equal(h_feed_hex(&h, "000400090300 000400000401 0002 0102"), 0);
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 0);
    assert_int_equal(h.closes, 0);
    /* End|Error for the live session: closed with the error flag, data discarded, and the
     * session's user pointer handed to on_close */
    assert_int_equal(vrev_mux_session_set_user(h.mux, 2, &h), 0);
    assert_int_equal(h_feed_hex(&h, "000400020303 0001 ff"), 0);
    assert_ptr_equal(h.close_user, &h);
    assert_int_equal(h.closes, 1);
    assert_int_equal(h.close_error, 1);
    assert_int_equal(h.data_bytes, 5);
    assert_int_equal(vrev_mux_active_sessions(h.mux), 0);
    assert_int_equal(vrev_mux_total_sessions(h.mux), 1);
    /* a server cannot open sessions */
    uint16_t sid;
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid), VREV_ERR_MUX_ROLE);
    /* New for id 0 is invalid */
    assert_int_equal(h_feed_hex(&h, "000c 0000 01 00 01 0050 01 7f000001"),
                     VREV_ERR_MUX_SESSION_ID);
    h_done(&h);
}

/* Keep with data for a dead id: End once, until the id is live again or a window begins
 * (RELIABILITY §2.5: "answer at most once per ID per window"). */
static void test_dead_id_answered_once(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(h_feed_hex(&h, "000400090201 0001 78 000400090201 0001 78"
                                    "000400090201 0001 78"),
                     0);
    h_expect_out(&h, "000400090300");
    assert_int_equal(h_feed_hex(&h, "000400090201 0001 78"), 0);
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 0);
    struct vrev__mux_guard_stats st;
    vrev__mux_guard_stats(h.mux, &st);
    assert_int_equal(st.replies_skipped, 3);
    assert_int_equal(st.reply_bytes, 6);
    vrev__mux_new_window(h.mux);
    assert_int_equal(h_feed_hex(&h, "000400090201 0001 78 000400090201 0001 78"), 0);
    h_expect_out(&h, "000400090300");
    /* live again, then ended: answered again */
    assert_int_equal(h_feed_hex(&h, "000c 0009 01 00 01 0050 01 7f000001 000400090300"
                                    "000400090201 0001 78"),
                     0);
    h_expect_out(&h, "000400090300");
    h_done(&h);
}

/* Empty frames past the cap of a window close the mux; a new window starts the count again.
 * Keep frames with data, or with an extension block, are not empty. */
static void test_empty_frame_cap(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    vrev__mux_set_empty_cap(h.mux, 3);
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 00 01 0050 01 7f000001"), 0);
    /* KeepAlive, Keep without data, Keep with 0 bytes of data: 3 empty frames */
    assert_int_equal(h_feed_hex(&h, "000400000400 000400020200 000400020201 0000"), 0);
    /* Keep with data and Keep with an extension block are not */
    assert_int_equal(h_feed_hex(&h, "000400020201 0001 61 0006 0002 0200 0102"), 0);
    vrev__mux_new_window(h.mux);
    assert_int_equal(h_feed_hex(&h, "000400000400 000400000400 000400000400"), 0);
    assert_int_equal(h_feed_hex(&h, "000400000400"), VREV_ERR_RANGE);
    struct vrev__mux_guard_stats st;
    vrev__mux_guard_stats(h.mux, &st);
    assert_int_equal(st.empty_frames, 7);
    h_done(&h);
}

static void test_server_duplicate_new(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 00 01 0050 01 7f000001"), 0);
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 00 01 0050 01 7f000001"),
                     VREV_ERR_MUX_DUP_SESSION);
    assert_int_equal(h.opens, 1);
    h_done(&h);
    /* after End the id may be opened again */
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 00 01 0050 01 7f000001 000400020300"
                                    "000c 0002 01 00 01 0050 01 7f000001"),
                     0);
    assert_int_equal(h.opens, 2);
    h_done(&h);
}

static void test_server_session_cap(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(vrev_mux_set_max_sessions(h.mux, 2), 0);
    assert_int_equal(vrev_mux_set_max_sessions(h.mux, 0), VREV_ERR_INVAL);
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 00 01 0050 01 7f000001"
                                    "000c 0003 01 00 01 0050 01 7f000001"
                                    "000c 0004 01 01 01 0050 01 7f000001 0001 61"),
                     0);
    assert_int_equal(h.opens, 2);
    assert_int_equal(h.datas, 0);
    assert_int_equal(vrev_mux_refused_sessions(h.mux), 1);
    h_expect_out(&h, "000400040302"); /* refused with End|Error, mux stays up */
    h_done(&h);
}

static void test_server_refuse_in_callback(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    h.end_in_open = 1;
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 01 01 0050 01 7f000001 0001 61"), 0);
    assert_int_equal(h.opens, 1);
    assert_int_equal(h.datas, 0); /* refused before its first data */
    h_expect_out(&h, "000400020302");
    /* later Keep frames for it get End back */
    assert_int_equal(h_feed_hex(&h, "000400020201 0001 61"), 0);
    h_expect_out(&h, "000400020300");
    h_done(&h);
}

static void test_udp_limits(void **state)
{
    (void)state;
    struct harness h;
    uint8_t big[VREV_MUX_PACKET_MAX + 1];
    memset(big, 'u', sizeof(big));
    /* receiving: a 2048-byte datagram passes, 2049 closes the mux */
    uint8_t frame[16 + sizeof(big)];
    uint8_t hdr[] = {0x00, 0x0c, 0x00, 0x04, 0x01, 0x01, 0x02, 0x00,
                     0x35, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x08, 0x00};
    memcpy(frame, hdr, sizeof(hdr));
    memcpy(frame + sizeof(hdr), big, VREV_MUX_PACKET_MAX);
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(vrev_mux_feed(h.mux, frame, sizeof(hdr) + VREV_MUX_PACKET_MAX, NULL), 0);
    assert_int_equal(h.data_bytes, VREV_MUX_PACKET_MAX);
    assert_int_equal(vrev_mux_session_network(h.mux, 4), VREV_NET_UDP);
    uint8_t keep[6 + 2 + sizeof(big)] = {0x00, 0x04, 0x00, 0x04, 0x02, 0x01, 0x08, 0x01};
    memcpy(keep + 8, big, sizeof(big));
    assert_int_equal(vrev_mux_feed(h.mux, keep, sizeof(keep), NULL), VREV_ERR_MUX_PACKET_SIZE);
    h_done(&h);
    frame[15] = 0x01; /* New carrying 2049 bytes */
    memcpy(frame + sizeof(hdr), big, sizeof(big));
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(vrev_mux_feed(h.mux, frame, sizeof(frame), NULL), VREV_ERR_MUX_PACKET_SIZE);
    h_done(&h);
    /* sending: one datagram per frame, never over 2048 */
    h_init(&h, VREV_MUX_CLIENT);
    uint16_t sid;
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_UDP, "127.0.0.1", 53, big, sizeof(big), &sid),
                     VREV_ERR_MUX_PACKET_SIZE);
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 0);
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_UDP, "127.0.0.1", 53, big, 10, &sid), 0);
    assert_int_equal(sid, 1);
    vrev_mux_consume(h.mux, vrev_mux_pending(h.mux, NULL));
    assert_int_equal(vrev_mux_send(h.mux, sid, big, sizeof(big)), VREV_ERR_MUX_PACKET_SIZE);
    assert_int_equal(vrev_mux_send(h.mux, sid, big, VREV_MUX_PACKET_MAX), 0);
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 8 + VREV_MUX_PACKET_MAX);
    h_done(&h);
}

static void test_client_open_and_send(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_CLIENT);
    uint16_t sid;
    size_t n;
    uint8_t *hb = tu_hex("9a06081112131415161718", &n);
    assert_int_equal(
        vrev_mux_open(h.mux, VREV_NET_UDP, "reverse.internal.v2ray.com", 0, hb, n, &sid), 0);
    free(hb);
    assert_int_equal(sid, 1);
    h_expect_out(&h, "0023 0001 01 01 02 0000 02 1a 726576657273652e696e7465726e616c2e7632726179"
                     "2e636f6d 000b 9a06081112131415161718");
    uint8_t *get = tu_hex("474554202f20485454502f312e300d0a0d0a", &n);
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "127.0.0.1", 80, get, n, &sid), 0);
    free(get);
    assert_int_equal(sid, 2);
    h_expect_out(&h,
                 "000c 0002 01 01 01 0050 01 7f000001 0012 474554202f20485454502f312e300d0a0d0a");
    /* no first payload: a New without the Data option */
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "example.com", 443, NULL, 0, &sid), 0);
    assert_int_equal(sid, 3);
    h_expect_out(&h, "0014 0003 01 00 01 01bb 02 0b 6578616d706c652e636f6d");
    /* stream data is cut into frames of at most 8192 bytes */
    static uint8_t big[20000];
    assert_int_equal(vrev_mux_send(h.mux, 2, big, sizeof(big)), 0);
    const uint8_t *p;
    n = vrev_mux_pending(h.mux, &p);
    assert_int_equal(n, 3 * 8 + sizeof(big));
    assert_memory_equal(p, "\x00\x04\x00\x02\x02\x01\x20\x00", 8);
    assert_memory_equal(p + 8 + 8192, "\x00\x04\x00\x02\x02\x01\x20\x00", 8);
    assert_memory_equal(p + 16 + 16384, "\x00\x04\x00\x02\x02\x01\x0e\x20", 8);
    vrev_mux_consume(h.mux, n);
    /* a large first payload: 8192 bytes ride in the New frame, the rest in Keep frames */
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "10.0.0.1", 22, big, 9000, &sid), 0);
    n = vrev_mux_pending(h.mux, &p);
    assert_int_equal(n, 16 + 8192 + 8 + 808);
    assert_memory_equal(p, "\x00\x0c\x00\x04\x01\x01\x01\x00\x16", 9);
    vrev_mux_consume(h.mux, n);
    assert_int_equal(vrev_mux_send(h.mux, 2, big, 0), 0); /* empty: nothing queued */
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 0);
    /* End drops the session at once: Mux.Cool has no half-close */
    assert_int_equal(vrev_mux_end(h.mux, 2, 0), 0);
    h_expect_out(&h, "000400020300");
    assert_int_equal(vrev_mux_send(h.mux, 2, big, 1), VREV_ERR_MUX_NO_SESSION);
    assert_int_equal(vrev_mux_end(h.mux, 2, 0), VREV_ERR_MUX_NO_SESSION);
    /* the server's replies: Keep data for a live session, End, New ignored */
    assert_int_equal(h_feed_hex(&h, "000400030201 0002 4f4b 000400030302"
                                    "000c 0009 01 01 01 0050 01 7f000001 0001 61"),
                     0);
    assert_int_equal(h.data_bytes, 2);
    assert_int_equal(h.closes, 1);
    assert_int_equal(h.close_error, 1);
    assert_int_equal(h.opens, 0);
    assert_int_equal(vrev_mux_active_sessions(h.mux), 2); /* 1 (control) and 4 */
    assert_int_equal(vrev_mux_total_sessions(h.mux), 4);
    assert_int_equal(vrev_mux_keepalive(h.mux), 0);
    h_expect_out(&h, "000400000400");
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a b", 1, NULL, 0, &sid),
                     VREV_ERR_ADDR_DOMAIN);
    assert_int_equal(vrev_mux_open(h.mux, 7, "a", 1, NULL, 0, &sid), VREV_ERR_INVAL);
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 0);
    h_done(&h);
}

/* Ids: 1, 2, ... never 0, never a live one, even after the 16-bit counter wraps. */
static void test_client_id_wrap(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_CLIENT);
    uint16_t sid, keep;
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &keep), 0);
    assert_int_equal(keep, 1);
    for (unsigned i = 0; i < 70000; i++) {
        assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid), 0);
        assert_int_not_equal(sid, 0);
        assert_int_not_equal(sid, keep);
        assert_int_equal(vrev_mux_end(h.mux, sid, 0), 0);
        vrev_mux_consume(h.mux, vrev_mux_pending(h.mux, NULL));
    }
    assert_int_equal(vrev_mux_total_sessions(h.mux), 70001);
    h_done(&h);
    /* the cap on live sessions holds for a client too */
    h_init(&h, VREV_MUX_CLIENT);
    assert_int_equal(vrev_mux_set_max_sessions(h.mux, 3), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid), 0);
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid),
                     VREV_ERR_MUX_TOO_MANY);
    h_done(&h);
}

/* Many live sessions: the table finds each one, removal keeps the others reachable. */
static void test_session_table(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_CLIENT);
    assert_int_equal(vrev_mux_set_max_sessions(h.mux, 5000), 0);
    uint16_t sid;
    for (int i = 1; i <= 5000; i++) {
        assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid), 0);
        assert_int_equal(vrev_mux_session_set_user(h.mux, sid, (void *)(uintptr_t)i), 0);
    }
    vrev_mux_consume(h.mux, vrev_mux_pending(h.mux, NULL));
    for (int i = 1; i <= 5000; i += 3)
        assert_int_equal(vrev_mux_end(h.mux, (uint16_t)i, 0), 0);
    for (int i = 1; i <= 5000; i++) {
        void *u = vrev_mux_session_user(h.mux, (uint16_t)i);
        if (i % 3 == 1)
            assert_null(u);
        else
            assert_int_equal((uintptr_t)u, (uintptr_t)i);
    }
    assert_int_equal(vrev_mux_session_set_user(h.mux, 1, NULL), VREV_ERR_MUX_NO_SESSION);
    h_done(&h);
}

static void test_free_inside_callback(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    h.free_in_close = 1;
    size_t used = 0;
    size_t n;
    uint8_t *b =
        tu_hex("000c 0002 01 00 01 0050 01 7f000001 000400020300 000400030201 0001 61", &n);
    assert_int_equal(vrev_mux_feed(h.mux, b, n, &used), 0);
    free(b);
    assert_null(h.mux); /* freed from on_close; feed stopped right there */
    assert_int_equal(used, 20);
    assert_int_equal(h.datas, 0);
    vrev_ctx_free(h.ctx);
}

static void test_pause(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    h.pause_in_data = 1;
    size_t n, used;
    uint8_t *b = tu_hex("000c 0002 01 01 01 0050 01 7f000001 0001 61 000400020201 0001 62"
                        "000400020201 0001 63",
                        &n);
    assert_int_equal(vrev_mux_feed(h.mux, b, n, &used), 0);
    assert_int_equal(used, 17);
    assert_int_equal(h.datas, 1);
    size_t off = used;
    assert_int_equal(vrev_mux_feed(h.mux, b + off, n - off, &used), 0);
    assert_int_equal(used, 9);
    off += used;
    assert_int_equal(vrev_mux_feed(h.mux, b + off, n - off, &used), 0);
    assert_int_equal(off + used, n);
    assert_int_equal(h.datas, 3);
    free(b);
    h_done(&h);
}

static int fail_cb(vrev_mux *m, const vrev_mux_frame *f, void *user)
{
    (void)m, (void)f, (void)user;
    return VREV_ERR_IO;
}

static void test_callback_error_closes(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    vrev_mux *m;
    vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI, .on_frame = fail_cb};
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vrev_mux_new(&m, ctx, VREV_MUX_SERVER, &cb, NULL), 0);
    assert_int_equal(vrev_mux_feed(m, (const uint8_t *)"\x00\x04\x00\x00\x04\x00", 6, NULL),
                     VREV_ERR_IO);
    assert_int_equal(vrev_mux_error(m), VREV_ERR_IO);
    vrev_mux_free(m);
    cb.abi = 99;
    assert_int_equal(vrev_mux_new(&m, ctx, VREV_MUX_SERVER, &cb, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_mux_new(&m, ctx, 5, NULL, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_mux_new(&m, NULL, VREV_MUX_SERVER, NULL, NULL), VREV_ERR_INVAL);
    vrev_mux_free(NULL);
    vrev_ctx_free(ctx);
}

/* Fail each allocation in turn on the setup and data paths: a clean error, no leak. */
static void test_allocation_failures(void **state)
{
    (void)state;
    size_t len;
    uint8_t *s = load_stream(&captures[0], &len);
    for (unsigned k = 1;; k++) {
        struct tu_failing_alloc fa = {k, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *ctx = NULL;
        vrev_mux *m = NULL;
        int rc = vrev_ctx_new2(&ctx, NULL, &a);
        if (rc == 0)
            rc = vrev_mux_new(&m, ctx, VREV_MUX_SERVER, NULL, NULL);
        for (size_t off = 0; rc == 0 && off < len; off += 50) /* split: reassembly allocates */
            rc = vrev_mux_feed(m, s + off, len - off < 50 ? len - off : 50, NULL);
        uint16_t sid;
        vrev_mux *c = NULL;
        if (rc == 0)
            rc = vrev_mux_new(&c, ctx, VREV_MUX_CLIENT, NULL, NULL);
        for (int i = 0; rc == 0 && i < 40; i++)
            rc = vrev_mux_open(c, VREV_NET_TCP, "127.0.0.1", 80, s, 100, &sid);
        if (rc < 0)
            assert_int_equal(rc, VREV_ERR_NOMEM);
        vrev_mux_free(c);
        vrev_mux_free(m);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
        if (fa.calls < k) /* every allocation has been failed once */
            break;
    }
    free(s);
}

/* ---- stream payload in pieces (vrev__mux_set_partial_data) ---------------------------------- */

static int pieces_on(void **state)
{
    (void)state;
    g_pieces = 1;
    return 0;
}

static int pieces_off(void **state)
{
    (void)state;
    g_pieces = 0;
    return 0;
}

#define BIG 20000

/* New TCP 127.0.0.1:80 for session 2 carrying BIG bytes: a 16-byte header, then the data. */
static uint8_t *big_new_frame(size_t *len)
{
    static const uint8_t hdr[] = {0x00, 0x0c, 0x00, 0x02, 0x01, 0x01, 0x01,     0x00,
                                  0x50, 0x01, 0x7f, 0x00, 0x00, 0x01, BIG >> 8, BIG & 0xff};
    *len = sizeof(hdr) + BIG;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    memcpy(b, hdr, sizeof(hdr));
    for (size_t i = 0; i < BIG; i++)
        b[sizeof(hdr) + i] = (uint8_t)(i * 31 + 7);
    return b;
}

static void test_pieces_delivery(void **state)
{
    (void)state;
    size_t n, used;
    uint8_t *b = big_new_frame(&n);
    uint8_t *got = malloc(BIG);
    struct harness h;

    /* fed whole: the header is acted on, then the payload is one piece, in place */
    h_init(&h, VREV_MUX_SERVER);
    assert_int_equal(vrev_mux_feed(h.mux, b, n, &used), 0);
    assert_int_equal(used, n);
    assert_int_equal(h.opens, 1);
    assert_int_equal(h.datas, 1);
    assert_ptr_equal(h.last_data, b + 16);
    assert_int_equal(h.last_len, BIG);
    assert_int_equal(vrev_mux_buffered(h.mux), 0);
    h_done(&h);

    /* split inside the header and inside the payload: pieces as they come, nothing copied */
    uint8_t *p1 = tu_dup(b, 10), *p2 = tu_dup(b + 10, 4990), *p3 = tu_dup(b + 5000, n - 5000);
    h_init(&h, VREV_MUX_SERVER);
    h.collect = got;
    assert_int_equal(vrev_mux_feed(h.mux, p1, 10, &used), 0);
    assert_int_equal(h.opens, 0);
    assert_int_equal(vrev_mux_buffered(h.mux), 10);
    assert_int_equal(vrev_mux_feed(h.mux, p2, 4990, &used), 0);
    assert_int_equal(h.opens, 1);
    assert_int_equal(h.datas, 1);
    assert_ptr_equal(h.last_data, p2 + 6);
    assert_int_equal(h.last_len, 4984);
    assert_true(vrev_mux_buffered(h.mux) > 0); /* inside the frame */
    assert_int_equal(vrev__mux_set_partial_data(h.mux, 0), VREV_ERR_STATE);
    assert_int_equal(vrev_mux_feed(h.mux, p3, n - 5000, &used), 0);
    assert_int_equal(h.datas, 2);
    assert_ptr_equal(h.last_data, p3);
    assert_int_equal(h.data_bytes, BIG);
    assert_memory_equal(got, b + 16, BIG);
    assert_int_equal(vrev_mux_buffered(h.mux), 0);
    assert_int_equal(vrev__mux_set_partial_data(h.mux, 0), 0);
    h_done(&h);
    free(p1), free(p2), free(p3);

    /* byte by byte */
    h_init(&h, VREV_MUX_SERVER);
    h.collect = got;
    memset(got, 0, BIG);
    for (size_t i = 0; i < n; i++) {
        uint8_t *one = tu_dup(b + i, 1);
        assert_int_equal(vrev_mux_feed(h.mux, one, 1, &used), 0);
        assert_int_equal(used, 1);
        free(one);
    }
    assert_int_equal(h.datas, BIG);
    assert_memory_equal(got, b + 16, BIG);
    h_done(&h);

    /* paused from on_data: the piece is the tail of what the feed consumed */
    uint8_t *two = malloc(n + 9);
    memcpy(two, b, n);
    memcpy(two + n, "\x00\x04\x00\x02\x02\x01\x00\x01\x61", 9);
    h_init(&h, VREV_MUX_SERVER);
    h.pause_in_data = 1;
    assert_int_equal(vrev_mux_feed(h.mux, two, 3000, &used), 0);
    assert_int_equal(used, 3000);
    assert_ptr_equal(h.last_data + h.last_len, two + used);
    assert_int_equal(vrev_mux_feed(h.mux, two + 3000, n + 9 - 3000, &used), 0);
    assert_int_equal(used, n - 3000);
    assert_ptr_equal(h.last_data + h.last_len, two + 3000 + used);
    assert_int_equal(vrev_mux_feed(h.mux, two + n, 9, &used), 0);
    assert_int_equal(used, 9);
    assert_int_equal(h.last_len, 1);
    assert_int_equal(h.data_bytes, BIG + 1);
    h_done(&h);
    free(two);
    free(got);
    free(b);
}

static void test_pieces_session_ends_midway(void **state)
{
    (void)state;
    size_t n, used;
    uint8_t *b = big_new_frame(&n);
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    h.end_in_data = 1; /* the application ends the session at its first piece */
    assert_int_equal(vrev_mux_feed(h.mux, b, 100, &used), 0);
    assert_int_equal(h.datas, 1);
    h_expect_out(&h, "000400020300");
    assert_int_equal(vrev_mux_feed(h.mux, b + 100, n - 100, &used), 0);
    assert_int_equal(used, n - 100);
    assert_int_equal(h.datas, 1); /* the rest of that frame goes nowhere */
    assert_int_equal(vrev_mux_pending(h.mux, NULL), 0);
    /* the frame boundary is kept: a later Keep for it gets End back */
    assert_int_equal(h_feed_hex(&h, "000400020201 0001 61"), 0);
    h_expect_out(&h, "000400020300");
    h_done(&h);
    free(b);
}

/* A frame is taken whole when its session was not live as its header completed, even if the
 * application opens that id before the rest arrives; and in pieces when the header completes
 * after the open. */
static void test_pieces_decided_at_header(void **state)
{
    (void)state;
    uint8_t frame[] = {0x00, 0x04, 0x00, 0x01, 0x02, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
    uint16_t sid;
    struct harness h;
    h_init(&h, VREV_MUX_CLIENT);
    assert_int_equal(vrev_mux_feed(h.mux, frame, 10, NULL), 0); /* header + 2 bytes */
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid), 0);
    assert_int_equal(sid, 1);
    assert_int_equal(vrev_mux_feed(h.mux, frame + 10, 3, NULL), 0);
    assert_int_equal(h.datas, 1);
    assert_int_equal(h.last_len, 5);
    assert_memory_equal(h.last_data, "hello", 5);
    h_done(&h);

    h_init(&h, VREV_MUX_CLIENT);
    assert_int_equal(vrev_mux_feed(h.mux, frame, 7, NULL), 0); /* header incomplete */
    assert_int_equal(vrev_mux_open(h.mux, VREV_NET_TCP, "a", 1, NULL, 0, &sid), 0);
    assert_int_equal(vrev_mux_feed(h.mux, frame + 7, 4, NULL), 0);
    assert_int_equal(h.datas, 1);
    assert_ptr_equal(h.last_data, frame + 8);
    assert_int_equal(h.last_len, 3);
    assert_int_equal(vrev_mux_feed(h.mux, frame + 11, 2, NULL), 0);
    assert_int_equal(h.datas, 2);
    assert_int_equal(h.data_bytes, 5);
    h_done(&h);
}

static void test_pieces_truncated(void **state)
{
    (void)state;
    struct harness h;
    h_init(&h, VREV_MUX_SERVER);
    /* dataLen says 16, 3 bytes arrive: the session is open, the 3 bytes delivered */
    assert_int_equal(h_feed_hex(&h, "000c 0002 01 01 01 0050 01 7f000001 0010 616263"), 0);
    assert_int_equal(h.opens, 1);
    assert_int_equal(h.data_bytes, 3);
    assert_true(vrev_mux_buffered(h.mux) > 0);
    h_done(&h);
    assert_int_equal(vrev__mux_set_partial_data(NULL, 1), VREV_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_match_listing),
        cmocka_unit_test(test_captures_reencode_identically),
        cmocka_unit_test(test_captures_any_split),
        cmocka_unit_test(test_encode_vectors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_data),
        cmocka_unit_test(test_server_sessions),
        cmocka_unit_test(test_server_duplicate_new),
        cmocka_unit_test(test_dead_id_answered_once),
        cmocka_unit_test(test_empty_frame_cap),
        cmocka_unit_test(test_server_session_cap),
        cmocka_unit_test(test_server_refuse_in_callback),
        cmocka_unit_test(test_udp_limits),
        cmocka_unit_test(test_client_open_and_send),
        cmocka_unit_test(test_client_id_wrap),
        cmocka_unit_test(test_session_table),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_callback_error_closes),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test_setup_teardown(test_captures_any_split, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_malformed, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_server_sessions, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_server_duplicate_new, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_server_session_cap, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_server_refuse_in_callback, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_udp_limits, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_pause, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_pieces_delivery, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_pieces_session_ends_midway, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_pieces_decided_at_header, pieces_on, pieces_off),
        cmocka_unit_test_setup_teardown(test_pieces_truncated, pieces_on, pieces_off),
    };
    return cmocka_run_group_tests_name("mux", tests, NULL, NULL);
}
