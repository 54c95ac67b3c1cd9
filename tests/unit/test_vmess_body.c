/* lib/codec/vmess_body: VMess body chunks against WIRE-SPEC §10.6 byte for byte (both
 * directions, end-of-stream chunk, ChaCha20-Poly1305, none), round trips for every option
 * combination a 4.34 server accepts x each security x each command, every split offset,
 * bit flips, malformed lengths, sticky errors and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/vmess.h"
#include "codec/vmess_body.h"
#include "testutil.h"
#include "vrev.h"

static const uint8_t req_iv[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t req_key[16] = {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static const char mux_new_hex[] = "002300010101020000021a726576657273652e696e7465726e616c2e76327261"
                                  "792e636f6d000b9a06081112131415161718";

static int zeros(void *user, uint8_t *out, size_t len)
{
    (void)user;
    memset(out, 0, len);
    return 0;
}

static int failing_rand(void *user, uint8_t *out, size_t len)
{
    (void)user;
    (void)out;
    (void)len;
    return VREV_ERR_IO;
}

static vrev_ctx *new_ctx(void)
{
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    return ctx;
}

static void init(struct vrev__vmess_body *b, vrev_ctx *ctx, int sec, int opt, int cmd,
                 const uint8_t *key, const uint8_t *iv)
{
    assert_int_equal(vrev__vmess_body_init(b, ctx, sec, opt, cmd, key, iv), 0);
    vrev__vmess_body_set_rand(b, zeros, NULL);
}

static void expect_buf(const struct vrev__buf *b, const char *hex)
{
    size_t n;
    uint8_t *want = tu_hex(hex, &n);
    assert_int_equal(vrev__buf_len(b), n);
    assert_memory_equal(b->data + b->start, want, n);
    free(want);
}

/* ---- a decoded stream --------------------------------------------------------------------- */

struct decoded {
    uint8_t *data;
    size_t len;
    size_t chunks;
    int end; /* VREV_VMESS_BODY_EOF, VREV_VMESS_BODY_MORE or an error */
    size_t used;
};

/* Feed p in pieces of the given sizes (0-terminated list; the rest in one piece). Every
 * piece is an exact-size copy so over-reads are caught by ASan. */
static void decode(struct vrev__vmess_body *b, const uint8_t *p, size_t n, const size_t *pieces,
                   struct decoded *d)
{
    memset(d, 0, sizeof(*d));
    d->data = malloc(n + 1);
    assert_non_null(d->data);
    d->end = VREV_VMESS_BODY_MORE;
    size_t off = 0;
    while (off < n && d->end == VREV_VMESS_BODY_MORE) {
        size_t k = (pieces && *pieces) ? *pieces++ : n - off;
        if (k > n - off)
            k = n - off;
        uint8_t *piece = tu_dup(p + off, k);
        size_t at = 0;
        for (;;) {
            size_t used;
            const uint8_t *out;
            size_t out_len;
            int rc = vrev__vmess_body_open(b, piece + at, k - at, &used, &out, &out_len);
            assert_true(used <= k - at);
            at += used;
            if (rc == VREV_VMESS_BODY_CHUNK) {
                assert_true(out_len > 0);
                memcpy(d->data + d->len, out, out_len);
                d->len += out_len;
                d->chunks++;
                continue;
            }
            d->end = rc;
            if (rc == VREV_VMESS_BODY_MORE)
                assert_int_equal(at, k);
            break;
        }
        d->used += at;
        off += k;
        free(piece);
    }
}

/* ---- §10.6 vectors ------------------------------------------------------------------------ */

static void test_request_vector(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body enc, dec;
    struct vrev__buf out = {0};
    init(&enc, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(vrev__vmess_body_seal(&enc, (const uint8_t *)"hello", 5, &out), 0);
    assert_int_equal(vrev__vmess_body_seal_eof(&enc, &out), 0);
    expect_buf(&out, "195b c76e58df1d1b6686ac14fce9bcc0f768b9c8beb10f 0000000000000000"
                     "c665 6334ec174d7c6cd918a0ee0a87d3d8a9 0000000000");
    init(&dec, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    struct decoded d;
    decode(&dec, out.data + out.start, vrev__buf_len(&out), NULL, &d);
    assert_int_equal(d.end, VREV_VMESS_BODY_EOF);
    assert_int_equal(d.len, 5);
    assert_memory_equal(d.data, "hello", 5);
    assert_int_equal(d.used, vrev__buf_len(&out) - 5); /* the end chunk's padding is not read */
    free(d.data);
    vrev__buf_free(ctx, &out);
    vrev__vmess_body_cleanup(&enc);
    vrev__vmess_body_cleanup(&dec);
    vrev_ctx_free(ctx);
}

/* The portal's first flight to the bridge: response header (test_vmess.c) then chunk 0. */
static void test_response_vector(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    uint8_t key[16], iv[16], hdr[38];
    assert_int_equal(vrev__vmess_response_keys(req_key, req_iv, key, iv), 0);
    size_t n;
    uint8_t *frame = tu_hex(mux_new_hex, &n);
    assert_int_equal(n, 50);
    struct vrev__vmess_body enc;
    struct vrev__buf out = {0};
    init(&enc, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x0d, VREV_VMESS_CMD_TCP, key, iv);
    assert_int_equal(vrev__vmess_response_seal(ctx, key, iv, 0x5a, hdr, sizeof(hdr)), 38);
    assert_int_equal(vrev__buf_append(ctx, &out, hdr, sizeof(hdr)), 0);
    assert_int_equal(vrev__vmess_body_seal(&enc, frame, n, &out), 0);
    expect_buf(
        &out, "9bdfb1639712b6a6348d0087b8d1af379ecf68afb5ebda5d6e4dc9c0f1e136aaf13fa36c72e1"
              "93ab"
              "008a24b2d8b338d6e0093ae1cdc4b3af7dc0d85b8dfd06d62f1afc622c8429c0e5a1fab328d9810eb121"
              "08f66579fa6174ce60c03a1c3910f246267d8e608342ca48"
              "0000000000000000000000000000000000000000000000000000");
    vrev__buf_consume(&out, vrev__buf_len(&out));
    assert_int_equal(vrev__vmess_body_seal_eof(&enc, &out), 0);
    expect_buf(&out, "912b 8e4463f014dda698f74faab7eea32090"
                     "000000000000000000000000000000000000000000000000000000000000000000000000"
                     "000000000000000000000000000000000000");
    free(frame);
    vrev__buf_free(ctx, &out);
    vrev__vmess_body_cleanup(&enc);
    vrev_ctx_free(ctx);
}

static void test_chacha_vector(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body enc, dec;
    struct vrev__buf out = {0};
    init(&enc, ctx, VREV_VMESS_SEC_CHACHA20_POLY1305, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(vrev__vmess_body_seal(&enc, (const uint8_t *)"hello", 5, &out), 0);
    expect_buf(&out, "195b 8aa8b3dd9185f30769fd06639baa587ae610a3c4d5 0000000000000000");
    assert_int_equal(vrev__vmess_body_seal_eof(&enc, &out), 0);
    init(&dec, ctx, VREV_VMESS_SEC_CHACHA20_POLY1305, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    struct decoded d;
    decode(&dec, out.data + out.start, vrev__buf_len(&out), NULL, &d);
    assert_int_equal(d.end, VREV_VMESS_BODY_EOF);
    assert_int_equal(d.len, 5);
    free(d.data);
    vrev__buf_free(ctx, &out);
    vrev__vmess_body_cleanup(&enc);
    vrev__vmess_body_cleanup(&dec);
    vrev_ctx_free(ctx);
}

static void test_none_vector(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body enc, dec;
    struct vrev__buf out = {0};
    init(&enc, ctx, VREV_VMESS_SEC_NONE, 0x05, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(vrev__vmess_body_seal(&enc, (const uint8_t *)"hello", 5, &out), 0);
    assert_int_equal(vrev__vmess_body_seal_eof(&enc, &out), 0);
    expect_buf(&out, "984d 68656c6c6f 1946");
    init(&dec, ctx, VREV_VMESS_SEC_NONE, 0x05, VREV_VMESS_CMD_TCP, req_key, req_iv);
    struct decoded d;
    const size_t bytewise[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    decode(&dec, out.data + out.start, vrev__buf_len(&out), bytewise, &d);
    assert_int_equal(d.end, VREV_VMESS_BODY_EOF);
    assert_int_equal(d.len, 5);
    assert_int_equal(d.chunks, 5); /* stream mode hands payload out as it arrives */
    assert_memory_equal(d.data, "hello", 5);
    free(d.data);
    /* with GlobalPadding (only possible with the v2ray.vmess.padding env) TCP none still does
     * not pad and draws only the mask */
    vrev__vmess_body_cleanup(&enc);
    vrev__buf_consume(&out, vrev__buf_len(&out));
    init(&enc, ctx, VREV_VMESS_SEC_NONE, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(vrev__vmess_body_seal(&enc, (const uint8_t *)"hello", 5, &out), 0);
    expect_buf(&out, "984d 68656c6c6f");
    vrev__buf_free(ctx, &out);
    vrev__vmess_body_cleanup(&enc);
    vrev__vmess_body_cleanup(&dec);
    vrev_ctx_free(ctx);
}

/* The masking streams of §10.6: SHAKE128 of each direction's IV. */
static void test_shake_streams(void **state)
{
    (void)state;
    uint8_t key[16], iv[16], out[16];
    struct vrev__shake128 sh;
    vrev__shake128_init(&sh, req_iv, 16);
    vrev__shake128_squeeze(&sh, out, 16);
    size_t n;
    uint8_t *want = tu_hex("98481946de85c670a7a84432ab4091a8", &n);
    assert_memory_equal(out, want, 16);
    free(want);
    assert_int_equal(vrev__vmess_response_keys(req_key, req_iv, key, iv), 0);
    vrev__shake128_init(&sh, iv, 16);
    vrev__shake128_squeeze(&sh, out, 16);
    want = tu_hex("1a5a93f79db6916dfb99b094de46cc59", &n);
    assert_memory_equal(out, want, 16);
    free(want);
}

/* ---- round trips -------------------------------------------------------------------------- */

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
    return p;
}

/* Every option byte a 4.34 server accepts, reduced to the bits that matter (0x10 and 0x08
 * without 0x04 are refused). */
static const uint8_t accepted_opts[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                                        0x06, 0x07, 0x0c, 0x0d, 0x0e, 0x0f};
static const int secs[] = {VREV_VMESS_SEC_AES_128_GCM, VREV_VMESS_SEC_CHACHA20_POLY1305,
                           VREV_VMESS_SEC_NONE};
static const int cmds[] = {VREV_VMESS_CMD_TCP, VREV_VMESS_CMD_UDP, VREV_VMESS_CMD_MUX};

struct stream {
    struct vrev__buf wire;
    uint8_t *plain;
    size_t plain_len;
};

static void make_stream(vrev_ctx *ctx, int sec, int opt, int cmd, const size_t *sizes,
                        size_t nsizes, struct stream *s)
{
    struct vrev__vmess_body enc;
    init(&enc, ctx, sec, opt, cmd, req_key, req_iv);
    memset(s, 0, sizeof(*s));
    size_t total = 0;
    for (size_t i = 0; i < nsizes; i++)
        total += sizes[i];
    s->plain = malloc(total + 1);
    for (size_t i = 0; i < nsizes; i++) {
        uint8_t *p = pattern(sizes[i], (unsigned)i);
        assert_int_equal(vrev__vmess_body_seal(&enc, p, sizes[i], &s->wire), 0);
        memcpy(s->plain + s->plain_len, p, sizes[i]);
        s->plain_len += sizes[i];
        free(p);
    }
    assert_int_equal(vrev__vmess_body_seal_eof(&enc, &s->wire), 0);
    vrev__vmess_body_cleanup(&enc);
}

static void check_decode(vrev_ctx *ctx, int sec, int opt, int cmd, const struct stream *s,
                         const size_t *pieces)
{
    struct vrev__vmess_body dec;
    init(&dec, ctx, sec, opt, cmd, req_key, req_iv);
    struct decoded d;
    decode(&dec, s->wire.data + s->wire.start, vrev__buf_len(&s->wire), pieces, &d);
    bool raw = sec == VREV_VMESS_SEC_NONE && !(opt & VREV_VMESS_OPT_CHUNK_STREAM);
    assert_int_equal(d.end, raw ? VREV_VMESS_BODY_MORE : VREV_VMESS_BODY_EOF);
    assert_int_equal(d.len, s->plain_len);
    if (d.len)
        assert_memory_equal(d.data, s->plain, d.len);
    free(d.data);
    vrev__vmess_body_cleanup(&dec);
}

static void stream_free(vrev_ctx *ctx, struct stream *s)
{
    vrev__buf_free(ctx, &s->wire);
    free(s->plain);
}

static void test_round_trips(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    const size_t stream_sizes[] = {1, 5, 1000, 1966, 1967, 2030, 2031, 8192, 8193, 70000};
    const size_t packet_sizes[] = {1, 5, 1000, 1966};
    for (size_t o = 0; o < sizeof(accepted_opts); o++)
        for (size_t s = 0; s < 3; s++)
            for (size_t c = 0; c < 3; c++) {
                bool udp = cmds[c] == VREV_VMESS_CMD_UDP;
                struct stream st;
                make_stream(ctx, secs[s], accepted_opts[o], cmds[c],
                            udp ? packet_sizes : stream_sizes, udp ? 4 : 10, &st);
                const size_t odd[] = {1, 2, 3, 17, 1000, 5, 4096, 7, 1, 1, 33333, 0};
                check_decode(ctx, secs[s], accepted_opts[o], cmds[c], &st, NULL);
                check_decode(ctx, secs[s], accepted_opts[o], cmds[c], &st, odd);
                stream_free(ctx, &st);
            }
    vrev_ctx_free(ctx);
}

/* Split a small stream (3 chunks + end) at every offset, for every mode. */
static void test_every_split(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    const size_t sizes[] = {1, 40, 3};
    for (size_t o = 0; o < sizeof(accepted_opts); o++)
        for (size_t s = 0; s < 3; s++)
            for (size_t c = 0; c < 3; c++) {
                struct stream st;
                make_stream(ctx, secs[s], accepted_opts[o], cmds[c], sizes, 3, &st);
                size_t n = vrev__buf_len(&st.wire);
                for (size_t cut = 1; cut < n; cut++) {
                    const size_t pieces[] = {cut, 0};
                    check_decode(ctx, secs[s], accepted_opts[o], cmds[c], &st, pieces);
                }
                size_t ones[1024];
                assert_true(n < 1024);
                for (size_t i = 0; i < n; i++)
                    ones[i] = 1;
                ones[n] = 0;
                check_decode(ctx, secs[s], accepted_opts[o], cmds[c], &st, ones);
                stream_free(ctx, &st);
            }
    vrev_ctx_free(ctx);
}

/* Every bit flip outside the (unauthenticated) padding breaks an AEAD stream. */
static void test_bit_flips(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    for (size_t s = 0; s < 2; s++) {
        for (int opt = 0x05; opt <= 0x0d; opt += 8) {
            struct vrev__vmess_body enc;
            struct vrev__buf w = {0};
            init(&enc, ctx, secs[s], opt, VREV_VMESS_CMD_TCP, req_key, req_iv);
            assert_int_equal(vrev__vmess_body_seal(&enc, (const uint8_t *)"hello", 5, &w), 0);
            size_t pad0 = vrev__buf_len(&w) - (2 + 5 + 16);
            assert_int_equal(vrev__vmess_body_seal_eof(&enc, &w), 0);
            uint8_t *p = w.data + w.start;
            size_t n = vrev__buf_len(&w);
            for (size_t bit = 0; bit < n * 8; bit++) {
                size_t byte = bit / 8;
                bool in_pad0 = byte >= 23 && byte < 23 + pad0;
                if (in_pad0 || byte >= 23 + pad0 + 18)
                    continue; /* padding content is not authenticated (nor checked by V2Ray) */
                p[byte] ^= (uint8_t)(1u << (bit % 8));
                struct vrev__vmess_body dec;
                init(&dec, ctx, secs[s], opt, VREV_VMESS_CMD_TCP, req_key, req_iv);
                struct decoded d;
                decode(&dec, p, n, NULL, &d);
                p[byte] ^= (uint8_t)(1u << (bit % 8));
                bool intact = d.end == VREV_VMESS_BODY_EOF && d.len == 5;
                if (intact)
                    fail_msg("sec %d opt %02x bit %zu accepted", secs[s], opt, bit);
                assert_true(d.end < 0 || d.end == VREV_VMESS_BODY_MORE);
                free(d.data);
                vrev__vmess_body_cleanup(&dec);
            }
            vrev__buf_free(ctx, &w);
            vrev__vmess_body_cleanup(&enc);
        }
    }
    vrev_ctx_free(ctx);
}

/* ---- malformed input, state, limits ------------------------------------------------------- */

static int open_all(struct vrev__vmess_body *b, const char *hex)
{
    size_t n, used;
    uint8_t *p = tu_hex(hex, &n);
    const uint8_t *out;
    size_t out_len;
    int rc = vrev__vmess_body_open(b, p, n, &used, &out, &out_len);
    if (rc < 0)
        assert_int_equal(used, n);
    free(p);
    return rc;
}

static void test_bad_lengths(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body b;
    /* GCM with 0x0d: first Pad 8, Mask 0x1946, so L = 10 < 16 + 8 */
    init(&b, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(open_all(&b, "194c"), VREV_ERR_VMESS_CHUNK_LEN);
    assert_int_equal(open_all(&b, "195b"), VREV_ERR_VMESS_CHUNK_LEN); /* sticky */
    vrev__vmess_body_cleanup(&b);
    /* L = 23 = 16 + 8 - 1 */
    init(&b, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(open_all(&b, "1951"), VREV_ERR_VMESS_CHUNK_LEN);
    vrev__vmess_body_cleanup(&b);
    /* no masking, no padding: L 15 */
    init(&b, ctx, VREV_VMESS_SEC_CHACHA20_POLY1305, 0x01, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(open_all(&b, "000f"), VREV_ERR_VMESS_CHUNK_LEN);
    vrev__vmess_body_cleanup(&b);
    /* a bad tag on a well-formed chunk */
    init(&b, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x01, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(open_all(&b, "0015 0000000000 00000000000000000000000000000000"),
                     VREV_ERR_VMESS_CHUNK_AUTH);
    vrev__vmess_body_cleanup(&b);
    /* a forged end-of-stream chunk (L = 16, zero tag) is not accepted as the end */
    init(&b, ctx, VREV_VMESS_SEC_AES_128_GCM, 0x01, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(open_all(&b, "0010 00000000000000000000000000000000"),
                     VREV_ERR_VMESS_CHUNK_AUTH);
    vrev__vmess_body_cleanup(&b);
    /* UDP none with padding: Pad 8; L 7 < Pad; L == Pad is the end */
    init(&b, ctx, VREV_VMESS_SEC_NONE, 0x0d, VREV_VMESS_CMD_UDP, req_key, req_iv);
    assert_int_equal(open_all(&b, "1941"), VREV_ERR_VMESS_CHUNK_LEN);
    vrev__vmess_body_cleanup(&b);
    init(&b, ctx, VREV_VMESS_SEC_NONE, 0x0d, VREV_VMESS_CMD_UDP, req_key, req_iv);
    assert_int_equal(open_all(&b, "194e"), VREV_VMESS_BODY_EOF);
    assert_int_equal(open_all(&b, "00"), VREV_VMESS_BODY_EOF); /* and stays there */
    vrev__vmess_body_cleanup(&b);
    vrev_ctx_free(ctx);
}

static void test_init_refusals(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body b;
    const int bad_opts[] = {0x08, 0x09, 0x10, 0x15, 0x1d};
    for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++)
        assert_int_equal(vrev__vmess_body_init(&b, ctx, 3, bad_opts[i], 1, req_key, req_iv),
                         VREV_ERR_VMESS_OPTIONS);
    const int bad_secs[] = {0, 1, 2, 6};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(vrev__vmess_body_init(&b, ctx, bad_secs[i], 0x0d, 1, req_key, req_iv),
                         VREV_ERR_VMESS_SECURITY);
    assert_int_equal(vrev__vmess_body_init(&b, ctx, 3, 0x0d, 4, req_key, req_iv),
                     VREV_ERR_VMESS_COMMAND);
    vrev_ctx_free(ctx);
}

static void test_raw_mode(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body b;
    struct vrev__buf w = {0};
    init(&b, ctx, VREV_VMESS_SEC_NONE, 0x00, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(b.mode, VREV_VMESS_BODY_RAW);
    uint8_t *big = pattern(100000, 3);
    assert_int_equal(vrev__vmess_body_seal(&b, big, 100000, &w), 0);
    assert_int_equal(vrev__vmess_body_seal_eof(&b, &w), 0);
    assert_int_equal(vrev__buf_len(&w), 100000);
    assert_memory_equal(w.data + w.start, big, 100000);
    size_t used, out_len;
    const uint8_t *out;
    assert_int_equal(vrev__vmess_body_open(&b, big, 7, &used, &out, &out_len),
                     VREV_VMESS_BODY_CHUNK);
    assert_ptr_equal(out, big);
    assert_int_equal(out_len, 7);
    assert_int_equal(used, 7);
    assert_int_equal(vrev__vmess_body_open(&b, big, 0, &used, &out, &out_len),
                     VREV_VMESS_BODY_MORE);
    free(big);
    vrev__buf_free(ctx, &w);
    vrev__vmess_body_cleanup(&b);
    vrev_ctx_free(ctx);
}

static void test_limits(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__vmess_body b;
    struct vrev__buf w = {0};
    uint8_t *big = pattern(70000, 1);
    /* 4.34's writer sizes */
    const struct {
        int sec, opt, cmd;
        size_t max;
    } lim[] = {{3, 0x0d, 1, 1966}, {3, 0x05, 1, 2030}, {4, 0x0d, 2, 1966},
               {5, 0x05, 1, 8192}, {5, 0x0d, 2, 1982}, {5, 0x05, 2, 2046}};
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        init(&b, ctx, lim[i].sec, lim[i].opt, lim[i].cmd, req_key, req_iv);
        assert_int_equal(vrev__vmess_body_max_payload(&b), lim[i].max);
        vrev__vmess_body_cleanup(&b);
    }
    /* a datagram that does not fit is refused whole, and nothing is written */
    init(&b, ctx, 3, 0x0d, VREV_VMESS_CMD_UDP, req_key, req_iv);
    assert_int_equal(vrev__vmess_body_seal(&b, big, 1967, &w), VREV_ERR_VMESS_PACKET_SIZE);
    assert_int_equal(vrev__buf_len(&w), 0);
    assert_int_equal(vrev__vmess_body_set_max_payload(&b, 4000), VREV_ERR_RANGE);
    assert_int_equal(vrev__vmess_body_seal(&b, big, 1966, &w), 0);
    vrev__vmess_body_cleanup(&b);
    vrev__buf_consume(&w, vrev__buf_len(&w));
    /* a stream may use chunks up to 65535 bytes, which decoders accept */
    init(&b, ctx, 3, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    assert_int_equal(vrev__vmess_body_set_max_payload(&b, 65535 - 16 - 63 + 1), VREV_ERR_RANGE);
    assert_int_equal(vrev__vmess_body_set_max_payload(&b, 0), VREV_ERR_RANGE);
    assert_int_equal(vrev__vmess_body_set_max_payload(&b, 65535 - 16 - 63), 0);
    assert_int_equal(vrev__vmess_body_seal(&b, big, 70000, &w), 0);
    assert_int_equal(vrev__vmess_body_seal_eof(&b, &w), 0);
    uint8_t small[8];
    assert_int_equal(vrev__vmess_body_seal_chunk(&b, big, 65535, small, sizeof(small)),
                     VREV_ERR_RANGE);
    assert_int_equal(vrev__vmess_body_seal_chunk(&b, big, 1, small, sizeof(small)),
                     VREV_ERR_NOSPACE);
    vrev__vmess_body_cleanup(&b);
    init(&b, ctx, 3, 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
    struct decoded d;
    decode(&b, w.data + w.start, vrev__buf_len(&w), NULL, &d);
    assert_int_equal(d.end, VREV_VMESS_BODY_EOF);
    assert_int_equal(d.chunks, 2);
    assert_int_equal(d.len, 70000);
    assert_memory_equal(d.data, big, 70000);
    free(d.data);
    vrev__vmess_body_cleanup(&b);
    /* a failing random source is reported */
    assert_int_equal(vrev__vmess_body_init(&b, ctx, 3, 0x0d, 1, req_key, req_iv), 0);
    vrev__vmess_body_set_rand(&b, failing_rand, NULL);
    assert_int_equal(vrev__vmess_body_seal(&b, big, 10, &w), VREV_ERR_IO);
    vrev__vmess_body_cleanup(&b);
    /* the default (OS) source works */
    assert_int_equal(vrev__vmess_body_init(&b, ctx, 3, 0x0d, 1, req_key, req_iv), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(vrev__vmess_body_seal(&b, big, 10, &w), 0);
    vrev__vmess_body_cleanup(&b);
    free(big);
    vrev__buf_free(ctx, &w);
    vrev_ctx_free(ctx);
}

/* ---- _open_to and _seal_chunk_iov (the zero-copy paths of the stream glue) ----------------- */

/* Decode with _open_to, feeding pieces as decode() does, offering `room` bytes (grown when
 * the decoder asks with VREV_VMESS_BODY_ROOM). Counts the ROOM answers; checks AEAD chunks
 * land in the offered buffer. */
static void decode_to(struct vrev__vmess_body *b, const uint8_t *p, size_t n, const size_t *pieces,
                      size_t room, struct decoded *d, size_t *asks)
{
    memset(d, 0, sizeof(*d));
    d->data = malloc(n + 1);
    d->end = VREV_VMESS_BODY_MORE;
    *asks = 0;
    size_t off = 0;
    while (off < n && d->end == VREV_VMESS_BODY_MORE) {
        size_t k = (pieces && *pieces) ? *pieces++ : n - off;
        if (k > n - off)
            k = n - off;
        uint8_t *piece = tu_dup(p + off, k);
        size_t at = 0;
        for (;;) {
            uint8_t *dst = room ? malloc(room) : NULL; /* exact size: ASan sees overruns */
            size_t used, out_len;
            const uint8_t *out;
            int rc =
                vrev__vmess_body_open_to(b, piece + at, k - at, &used, dst, room, &out, &out_len);
            assert_true(used <= k - at);
            at += used;
            if (rc == VREV_VMESS_BODY_ROOM) {
                assert_true(out_len > room);
                assert_null(out);
                room = out_len;
                (*asks)++;
            } else if (rc == VREV_VMESS_BODY_CHUNK) {
                if (b->mode == VREV_VMESS_BODY_AEAD)
                    assert_ptr_equal(out, dst);
                memcpy(d->data + d->len, out, out_len);
                d->len += out_len;
                d->chunks++;
            }
            free(dst);
            if (rc == VREV_VMESS_BODY_ROOM || rc == VREV_VMESS_BODY_CHUNK)
                continue;
            d->end = rc;
            break;
        }
        d->used += at;
        off += k;
        free(piece);
    }
}

/* 16 KiB chunks (what our streams write) and the largest chunk 4.34 reads (L = 65535), fed
 * whole and split, through _open_to: same plaintext as _open, room asked for exactly, and no
 * decoder buffer when every chunk arrives whole. */
static void test_open_to(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    const size_t big = 65535 - 16 - 63, ours = 16384 - 256;
    uint8_t *plain = pattern(200000, 3);
    for (size_t s = 0; s < 3; s++) {
        struct vrev__vmess_body enc, dec;
        struct vrev__buf w = {0};
        init(&enc, ctx, secs[s], 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
        assert_int_equal(vrev__vmess_body_set_max_payload(&enc, ours), 0);
        assert_int_equal(vrev__vmess_body_seal(&enc, plain, 3 * ours + 100, &w), 0);
        assert_int_equal(vrev__vmess_body_set_max_payload(&enc, big), 0);
        assert_int_equal(vrev__vmess_body_seal(&enc, plain + 3 * ours + 100, big, &w), 0);
        assert_int_equal(vrev__vmess_body_seal(&enc, plain + 3 * ours + 100 + big, 7, &w), 0);
        assert_int_equal(vrev__vmess_body_seal_eof(&enc, &w), 0);
        size_t total = 3 * ours + 107 + big;
        const size_t odd[] = {1, 2, 3, 16000, 300, 5, 17000, 1, 65000, 9, 0};
        const size_t rooms[] = {0, ours, 70000};
        for (size_t r = 0; r < 3; r++)
            for (int split = 0; split < 2; split++) {
                init(&dec, ctx, secs[s], 0x0d, VREV_VMESS_CMD_TCP, req_key, req_iv);
                struct decoded d;
                size_t asks;
                decode_to(&dec, w.data + w.start, vrev__buf_len(&w), split ? odd : NULL, rooms[r],
                          &d, &asks);
                assert_int_equal(d.end, VREV_VMESS_BODY_EOF);
                assert_int_equal(d.len, total);
                assert_memory_equal(d.data, plain, total);
                if (secs[s] != VREV_VMESS_SEC_NONE) {
                    assert_int_equal(asks, r == 0 ? 2 : r == 1 ? 1 : 0); /* ours, then big */
                    if (!split)
                        assert_null(dec.buf);
                }
                free(d.data);
                vrev__vmess_body_cleanup(&dec);
            }
        vrev__buf_free(ctx, &w);
        vrev__vmess_body_cleanup(&enc);
    }
    free(plain);
    vrev_ctx_free(ctx);
}

/* A payload in pieces seals to the same bytes as the payload in one piece. */
static void test_seal_iov(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    uint8_t *plain = pattern(20000, 5);
    for (size_t s = 0; s < 3; s++)
        for (size_t c = 0; c < 3; c++) {
            struct vrev__vmess_body a, b;
            init(&a, ctx, secs[s], 0x0d, cmds[c], req_key, req_iv);
            init(&b, ctx, secs[s], 0x0d, cmds[c], req_key, req_iv);
            size_t n = vrev__vmess_body_max_payload(&a);
            size_t cap = n + VREV_VMESS_BODY_OVERHEAD_MAX;
            uint8_t *x = malloc(cap), *y = malloc(cap);
            const size_t cuts[][2] = {{0, 0}, {1, 2}, {100, 100}, {n / 2, n / 2 + 1}};
            for (size_t i = 0; i < 4; i++) {
                size_t c0 = cuts[i][0], c1 = cuts[i][1];
                struct vrev__iov v[3] = {{plain, c0}, {plain + c0, c1 - c0}, {plain + c1, n - c1}};
                int wx = vrev__vmess_body_seal_chunk(&a, plain, n, x, cap);
                int wy = vrev__vmess_body_seal_chunk_iov(&b, v, 3, y, cap);
                assert_true(wx > 0);
                assert_int_equal(wx, wy);
                assert_memory_equal(x, y, (size_t)wx);
            }
            struct vrev__iov over[2] = {{plain, n}, {plain, 1}};
            assert_int_equal(vrev__vmess_body_seal_chunk_iov(&b, over, 2, y, cap + 1),
                             VREV_ERR_RANGE);
            free(x), free(y);
            vrev__vmess_body_cleanup(&a);
            vrev__vmess_body_cleanup(&b);
        }
    free(plain);
    vrev_ctx_free(ctx);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    for (unsigned fail = 1; fail < 12; fail++) {
        struct tu_failing_alloc fa = {0, 0, 0};
        vrev_allocator a;
        vrev_ctx *ctx;
        tu_failing_allocator(&a, &fa);
        assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
        fa.fail_at = fa.calls + fail;
        struct vrev__vmess_body enc, dec;
        struct vrev__buf w = {0};
        int rc = vrev__vmess_body_init(&enc, ctx, 3, 0x0d, 1, req_key, req_iv);
        if (rc == 0) {
            vrev__vmess_body_set_rand(&enc, zeros, NULL);
            rc = vrev__vmess_body_seal(&enc, req_key, 16, &w);
            vrev__vmess_body_cleanup(&enc);
        }
        if (rc == 0)
            rc = vrev__vmess_body_init(&dec, ctx, 3, 0x0d, 1, req_key, req_iv);
        if (rc == 0) {
            size_t used, out_len;
            const uint8_t *out;
            rc = vrev__vmess_body_open(&dec, w.data + w.start, vrev__buf_len(&w), &used, &out,
                                       &out_len);
            assert_true(rc == VREV_VMESS_BODY_CHUNK || rc == VREV_ERR_NOMEM);
            vrev__vmess_body_cleanup(&dec);
        } else {
            assert_int_equal(rc, VREV_ERR_NOMEM);
        }
        vrev__buf_free(ctx, &w);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_vector), cmocka_unit_test(test_response_vector),
        cmocka_unit_test(test_chacha_vector),  cmocka_unit_test(test_none_vector),
        cmocka_unit_test(test_shake_streams),  cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_every_split),    cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_bad_lengths),    cmocka_unit_test(test_init_refusals),
        cmocka_unit_test(test_raw_mode),       cmocka_unit_test(test_limits),
        cmocka_unit_test(test_alloc_failure),  cmocka_unit_test(test_open_to),
        cmocka_unit_test(test_seal_iov),
    };
    return cmocka_run_group_tests_name("vmess_body", tests, NULL, NULL);
}
