/* lib/codec/vmess against bytes captured from the real peer (Debian v2ray 4.34.0), made by
 * tests/vectors/gen-vmess.sh and committed under tests/vectors/vmess/:
 *   <security>.bin        what a v2ray VMess client wrote (TCP, and UDP for aes-128-gcm),
 *                         decoded with the clock set to the capture time;
 *   server-<security>.*   a request made by our client codec, and what a v2ray VMess server
 *                         answered (response header + echoed body).
 * Every 1-bit flip of a captured header is refused; every flip of an AEAD body outside its
 * padding is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "codec/vmess.h"
#include "codec/vmess_body.h"
#include "testutil.h"
#include "vrev.h"

struct capture {
    uint8_t *wire;
    size_t len;
    json_t *meta;
    struct vrev__vmess_user user;
    int64_t time;
    uint8_t *plain;
    size_t plain_len;
};

static void load(struct capture *c, const char *name, const char *bin)
{
    char path[256];
    snprintf(path, sizeof(path), "vmess/%s%s", name, bin);
    c->wire = tu_load(path, &c->len);
    snprintf(path, sizeof(path), "vmess/%s.json", name);
    size_t jlen;
    uint8_t *j = tu_load(path, &jlen);
    json_error_t err;
    c->meta = json_loadb((const char *)j, jlen, 0, &err);
    free(j);
    assert_non_null(c->meta);
    const char *uuid = json_string_value(json_object_get(c->meta, "uuid"));
    assert_non_null(uuid);
    uint8_t id[16];
    assert_int_equal(vrev__vmess_uuid_parse(uuid, strlen(uuid), id), 0);
    assert_int_equal(vrev__vmess_user_init(&c->user, id), 0);
    c->time = json_integer_value(json_object_get(c->meta, "time"));
    assert_true(c->time > 1600000000);
    c->plain = tu_hex(json_string_value(json_object_get(c->meta, "plaintext_hex")), &c->plain_len);
}

static void release(struct capture *c)
{
    free(c->wire);
    free(c->plain);
    json_decref(c->meta);
}

static const char *meta_str(const struct capture *c, const char *key)
{
    const char *s = json_string_value(json_object_get(c->meta, key));
    assert_non_null(s);
    return s;
}

static int security_of(const char *s)
{
    if (!strcmp(s, "aes-128-gcm"))
        return VREV_VMESS_SEC_AES_128_GCM;
    if (!strcmp(s, "chacha20-poly1305"))
        return VREV_VMESS_SEC_CHACHA20_POLY1305;
    assert_string_equal(s, "none");
    return VREV_VMESS_SEC_NONE;
}

struct body_result {
    int end;
    size_t chunks;
    size_t len;
    uint8_t *data;
};

/* Decode p[0..n) as one direction's body; in pieces of `piece` bytes (0: all at once). */
static void decode_body(vrev_ctx *ctx, int sec, int opt, int cmd, const uint8_t key[16],
                        const uint8_t iv[16], const uint8_t *p, size_t n, size_t piece,
                        struct body_result *r)
{
    struct vrev__vmess_body b;
    assert_int_equal(vrev__vmess_body_init(&b, ctx, sec, opt, cmd, key, iv), 0);
    memset(r, 0, sizeof(*r));
    r->data = malloc(n + 1);
    r->end = VREV_VMESS_BODY_MORE;
    size_t off = 0;
    while (off < n && r->end == VREV_VMESS_BODY_MORE) {
        size_t k = piece && piece < n - off ? piece : n - off;
        size_t at = 0, used, out_len;
        const uint8_t *out;
        int rc;
        while ((rc = vrev__vmess_body_open(&b, p + off + at, k - at, &used, &out, &out_len)) ==
               VREV_VMESS_BODY_CHUNK) {
            at += used;
            memcpy(r->data + r->len, out, out_len);
            r->len += out_len;
            r->chunks++;
        }
        r->end = rc;
        off += k;
    }
    vrev__vmess_body_cleanup(&b);
}

/* ---- v2ray as the client -------------------------------------------------------------- */

static size_t read_header(vrev_ctx *ctx, struct capture *c, int64_t now,
                          struct vrev__vmess_request *req, int *rc_out, int64_t *ts)
{
    struct vrev__vmess_replay *ids;
    assert_int_equal(vrev__vmess_replay_new(ctx, &ids, 16), 0);
    struct vrev__vmess_hdr_reader r;
    vrev__vmess_hdr_reader_init(&r, ctx, &c->user, 1, ids, NULL);
    size_t used;
    *rc_out = vrev__vmess_hdr_reader_feed(&r, now, c->wire, c->len, &used, req);
    if (ts)
        *ts = r.timestamp;
    vrev__vmess_hdr_reader_wipe(&r);
    vrev__vmess_replay_free(ids);
    return used;
}

static void check_client_capture(const char *name)
{
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct capture c;
    load(&c, name, ".bin");
    bool udp = !strcmp(meta_str(&c, "network"), "udp");
    int sec = security_of(meta_str(&c, "security"));
    struct vrev__vmess_request req;
    int rc;
    int64_t ts;
    size_t hlen = read_header(ctx, &c, c.time, &req, &rc, &ts);
    assert_int_equal(rc, 1);
    assert_true(ts >= c.time - 2 && ts <= c.time); /* recorded just after sending */
    /* what 4.34 sends (WIRE-SPEC §4.6) */
    assert_int_equal(req.version, 1);
    assert_int_equal(req.security, sec);
    assert_int_equal(req.options, sec == VREV_VMESS_SEC_NONE ? 0x05 : 0x0d);
    assert_int_equal(req.command, udp ? VREV_VMESS_CMD_UDP : VREV_VMESS_CMD_TCP);
    struct vrev__addr want;
    assert_int_equal(
        vrev__addr_from_text(&want, meta_str(&c, "target_host"),
                             (uint16_t)json_integer_value(json_object_get(c.meta, "target_port"))),
        0);
    assert_true(vrev__addr_equal(&req.target, &want));
    assert_int_equal(hlen, VREV_VMESS_REQUEST_PREFIX + VREV_VMESS_HEADER_FIXED +
                               vrev__addr_encoded_len(&want) + req.padding_len + 4 + 16);
    /* the clock window around the client's own timestamp */
    const int64_t skew[] = {120, -120, 121, -121};
    for (int i = 0; i < 4; i++) {
        read_header(ctx, &c, ts + skew[i], &req, &rc, NULL);
        assert_int_equal(rc, i < 2 ? 1 : VREV_ERR_VMESS_AUTH);
    }
    read_header(ctx, &c, c.time, &req, &rc, NULL);
    /* the body, whole and in small pieces */
    const size_t pieces[] = {0, 1, 7, 1000};
    struct body_result b;
    for (size_t i = 0; i < 4; i++) {
        decode_body(ctx, sec, req.options, req.command, req.body_key, req.body_iv, c.wire + hlen,
                    c.len - hlen, pieces[i], &b);
        assert_int_equal(b.end, udp ? VREV_VMESS_BODY_MORE : VREV_VMESS_BODY_EOF);
        assert_int_equal(b.len, c.plain_len);
        assert_memory_equal(b.data, c.plain, c.plain_len);
        if (udp)
            assert_int_equal(b.chunks, 1); /* one datagram, one chunk */
        free(b.data);
    }
    release(&c);
    vrev_ctx_free(ctx);
}

static void test_client_aes_128_gcm(void **state)
{
    (void)state;
    check_client_capture("aes-128-gcm");
}

static void test_client_chacha20_poly1305(void **state)
{
    (void)state;
    check_client_capture("chacha20-poly1305");
}

static void test_client_none(void **state)
{
    (void)state;
    check_client_capture("none");
}

static void test_client_udp_aes_128_gcm(void **state)
{
    (void)state;
    check_client_capture("udp-aes-128-gcm");
}

/* Every bit of the header part: refused. Every bit of an AEAD body: refused, except the
 * padding bytes, which carry no authentication (and the count of those must match). */
static void flip_capture(const char *name)
{
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct capture c;
    load(&c, name, ".bin");
    int sec = security_of(meta_str(&c, "security"));
    struct vrev__vmess_request req;
    int rc;
    size_t hlen = read_header(ctx, &c, c.time, &req, &rc, NULL);
    assert_int_equal(rc, 1);
    for (size_t bit = 0; bit < hlen * 8; bit++) {
        struct vrev__vmess_request r2;
        c.wire[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        read_header(ctx, &c, c.time, &r2, &rc, NULL);
        c.wire[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(rc == VREV_ERR_VMESS_AUTH);
    }
    struct body_result clean;
    uint8_t *body = c.wire + hlen;
    size_t blen = c.len - hlen;
    decode_body(ctx, sec, req.options, req.command, req.body_key, req.body_iv, body, blen, 0,
                &clean);
    if (sec != VREV_VMESS_SEC_NONE) {
        size_t framed = (clean.chunks + (clean.end == VREV_VMESS_BODY_EOF)) * 18 + clean.len;
        size_t padding = blen - framed, intact = 0;
        for (size_t bit = 0; bit < blen * 8; bit++) {
            struct body_result b;
            body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            decode_body(ctx, sec, req.options, req.command, req.body_key, req.body_iv, body, blen,
                        0, &b);
            body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (b.end == clean.end && b.len == clean.len && !memcmp(b.data, clean.data, b.len))
                intact++;
            else
                assert_true(b.end < 0 || b.end == VREV_VMESS_BODY_MORE);
            free(b.data);
        }
        assert_int_equal(intact, padding * 8);
    }
    free(clean.data);
    release(&c);
    vrev_ctx_free(ctx);
}

static void test_flips_aes_128_gcm(void **state)
{
    (void)state;
    flip_capture("aes-128-gcm");
}

static void test_flips_chacha20_poly1305(void **state)
{
    (void)state;
    flip_capture("chacha20-poly1305");
}

static void test_flips_none(void **state)
{
    (void)state;
    flip_capture("none");
}

/* ---- v2ray as the server -------------------------------------------------------------- */

static void check_server_capture(const char *sec_name)
{
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    char name[64];
    snprintf(name, sizeof(name), "server-%s", sec_name);
    struct capture c;
    load(&c, name, ".resp.bin");
    int sec = security_of(sec_name);
    int opt = sec == VREV_VMESS_SEC_NONE ? VREV_VMESS_OPT_DEFAULT_NONE : VREV_VMESS_OPT_DEFAULT;
    uint8_t iv[16], key[16], rkey[16], riv[16];
    for (int i = 0; i < 16; i++) {
        iv[i] = (uint8_t)i;
        key[i] = (uint8_t)(16 + i);
    }
    assert_int_equal(vrev__vmess_response_keys(key, iv, rkey, riv), 0);
    /* the response header, whole and byte by byte */
    struct vrev__vmess_resp_reader r;
    size_t used = 0, total = 0;
    vrev__vmess_resp_reader_init(&r, ctx, rkey, riv, 0x5a);
    assert_int_equal(vrev__vmess_resp_reader_feed(&r, c.wire, c.len, &used), 1);
    assert_int_equal(used, VREV_VMESS_RESPONSE_LEN); /* 4.34 sends no command: 38 bytes */
    vrev__vmess_resp_reader_init(&r, ctx, rkey, riv, 0x5a);
    for (size_t i = 0; i < VREV_VMESS_RESPONSE_LEN; i++) {
        int rc = vrev__vmess_resp_reader_feed(&r, c.wire + i, 1, &used);
        assert_int_equal(rc, i + 1 == VREV_VMESS_RESPONSE_LEN ? 1 : 0);
        total += used;
    }
    assert_int_equal(total, VREV_VMESS_RESPONSE_LEN);
    vrev__vmess_resp_reader_init(&r, ctx, rkey, riv, 0x5b);
    assert_int_equal(vrev__vmess_resp_reader_feed(&r, c.wire, c.len, &used),
                     VREV_ERR_VMESS_RESPONSE);
    /* the echoed body, then the end-of-stream chunk */
    struct body_result b;
    decode_body(ctx, sec, opt, VREV_VMESS_CMD_TCP, rkey, riv, c.wire + 38, c.len - 38, 0, &b);
    assert_int_equal(b.end, VREV_VMESS_BODY_EOF);
    assert_int_equal(b.len, c.plain_len);
    assert_memory_equal(b.data, c.plain, c.plain_len);
    free(b.data);
    release(&c);
    vrev_ctx_free(ctx);
}

static void test_server_aes_128_gcm(void **state)
{
    (void)state;
    check_server_capture("aes-128-gcm");
}

static void test_server_chacha20_poly1305(void **state)
{
    (void)state;
    check_server_capture("chacha20-poly1305");
}

static void test_server_none(void **state)
{
    (void)state;
    check_server_capture("none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_aes_128_gcm),
        cmocka_unit_test(test_client_chacha20_poly1305),
        cmocka_unit_test(test_client_none),
        cmocka_unit_test(test_client_udp_aes_128_gcm),
        cmocka_unit_test(test_flips_aes_128_gcm),
        cmocka_unit_test(test_flips_chacha20_poly1305),
        cmocka_unit_test(test_flips_none),
        cmocka_unit_test(test_server_aes_128_gcm),
        cmocka_unit_test(test_server_chacha20_poly1305),
        cmocka_unit_test(test_server_none),
    };
    return cmocka_run_group_tests_name("vmess_peer", tests, NULL, NULL);
}
