/* lib/codec/vless: VLESS request/response headers (WIRE-SPEC §5.1, vectors §10.10).
 *
 * Every parsed input is an exactly-sized malloc copy (ASan catches over-reads); every valid
 * input is also parsed at every prefix, fed byte by byte and fed in two pieces split at every
 * offset, all of which must agree with parsing it whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/vless.h"
#include "testutil.h"
#include "vrev.h"

#define UUID_HEX "278487397e6241389fd3098a63964b6b"
#define REQ_VECTOR "00 " UUID_HEX " 00 01 0000 02 0e 746573742e7632666c792e6f7267"

/* Index 1 is the vector's UUID; index 2 differs from it in the last byte only. */
static uint8_t user_ids[3 * 16];
static struct vrev__vless_users users = {user_ids, 3};

static int setup(void **state)
{
    (void)state;
    size_t n;
    uint8_t *id = tu_hex(UUID_HEX, &n);
    memset(user_ids, 0x11, 16);
    memcpy(user_ids + 16, id, 16);
    memcpy(user_ids + 32, id, 16);
    user_ids[47] ^= 1;
    free(id);
    return 0;
}

/* --- a message kind: its parser, its reader feed and its comparison --------------------- */

union msg {
    struct vrev__vless_request req;
    struct vrev__vless_addons resp;
};

struct kind {
    int (*parse)(const uint8_t *p, size_t n, union msg *m, size_t *need);
    int (*feed)(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n, size_t *used);
    void (*check_equal)(const union msg *a, const union msg *b);
};

static void check_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    assert_int_equal(alen, blen);
    assert_true(alen == 0 || memcmp(a, b, alen) == 0);
    assert_true((a == NULL) == (b == NULL));
}

static void check_addons(const struct vrev__vless_addons *a, const struct vrev__vless_addons *b)
{
    check_bytes(a->raw, a->raw_len, b->raw, b->raw_len);
    check_bytes(a->flow, a->flow_len, b->flow, b->flow_len);
    check_bytes(a->seed, a->seed_len, b->seed, b->seed_len);
}

static int req_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__vless_request_parse(p, n, &users, &m->req, need);
}

static int req_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                    size_t *used)
{
    return vrev__vless_request_feed(r, &users, &m->req, p, n, used);
}

static void req_equal(const union msg *a, const union msg *b)
{
    assert_int_equal(a->req.user, b->req.user);
    assert_int_equal(a->req.command, b->req.command);
    assert_true(vrev__addr_equal(&a->req.target, &b->req.target));
    check_addons(&a->req.addons, &b->req.addons);
}

static int resp_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__vless_response_parse(p, n, &m->resp, need);
}

static int resp_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                     size_t *used)
{
    return vrev__vless_response_feed(r, &m->resp, p, n, used);
}

static void resp_equal(const union msg *a, const union msg *b)
{
    check_addons(&a->resp, &b->resp);
}

static const struct kind REQUEST = {req_parse, req_feed, req_equal};
static const struct kind RESPONSE = {resp_parse, resp_feed, resp_equal};

/* Parse an exact copy of in[0..len). */
static int parse_exact(const struct kind *k, const uint8_t *in, size_t len, union msg *m,
                       size_t *need)
{
    uint8_t *b = tu_dup(in, len);
    int rc = k->parse(b, len, m, need);
    free(b);
    return rc;
}

/* Feed exact copies of in[0..a) and in[a..len) to a fresh reader. */
static int feed_two(const struct kind *k, struct vrev__hdr_reader *r, const uint8_t *in, size_t len,
                    size_t a, union msg *m, size_t *used)
{
    size_t u1 = 0, u2 = 0;
    uint8_t *p1 = tu_dup(in, a), *p2 = tu_dup(in + a, len - a);
    vrev__hdr_reader_init(r);
    int rc = k->feed(r, m, p1, a, &u1);
    if (rc == 0) {
        assert_int_equal(u1, a);
        rc = k->feed(r, m, p2, len - a, &u2);
    }
    free(p1);
    free(p2);
    *used = u1 + u2;
    return rc;
}

static void check_prefixes(const struct kind *k, const uint8_t *in, size_t len, int expect)
{
    for (size_t i = 0; i < len; i++) {
        union msg m;
        size_t need = 0;
        int rc = parse_exact(k, in, i, &m, &need);
        if (expect > 0 && i >= (size_t)expect) {
            assert_int_equal(rc, expect);
        } else if (rc == 0) {
            assert_true(need > i);
            assert_true(expect <= 0 || need <= (size_t)expect);
        } else {
            assert_int_equal(rc, expect); /* an error on a prefix is the whole input's error */
        }
    }
}

static void check_byte_by_byte(const struct kind *k, const uint8_t *in, size_t len, int expect,
                               const union msg *whole)
{
    struct vrev__hdr_reader r;
    union msg m;
    size_t total = 0, used = 0;
    int rc = 0;
    vrev__hdr_reader_init(&r);
    for (size_t i = 0; i < len && rc == 0; i++) {
        uint8_t *b = tu_dup(in + i, 1);
        rc = k->feed(&r, &m, b, 1, &used);
        free(b);
        total += used;
    }
    assert_int_equal(rc, expect);
    if (expect > 0) {
        assert_int_equal(total, (size_t)expect);
        k->check_equal(whole, &m);
    }
}

/* Whole, every prefix, byte by byte, two pieces at every offset: all must agree. */
static void check_splits(const struct kind *k, const uint8_t *in, size_t len, int expect)
{
    union msg whole;
    size_t need = 0;
    uint8_t *copy = tu_dup(in, len);
    assert_int_equal(k->parse(copy, len, &whole, &need), expect);
    check_prefixes(k, in, len, expect);
    check_byte_by_byte(k, in, len, expect, &whole);
    for (size_t a = 0; a <= len; a++) {
        struct vrev__hdr_reader r;
        union msg m;
        size_t used;
        assert_int_equal(feed_two(k, &r, in, len, a, &m, &used), expect);
        if (expect > 0) {
            assert_int_equal(used, (size_t)expect);
            k->check_equal(&whole, &m);
        }
    }
    free(copy);
}

static void check_splits_hex(const struct kind *k, const char *hex, int expect)
{
    size_t len;
    uint8_t *in = tu_hex(hex, &len);
    check_splits(k, in, len, expect);
    free(in);
}

/* --- vectors ---------------------------------------------------------------------------- */

static void test_request_vector_decode(void **state)
{
    (void)state;
    size_t len, need = 0;
    char text[300];
    uint8_t *in = tu_hex(REQ_VECTOR, &len);
    struct vrev__vless_request req;
    assert_int_equal(len, 37);
    assert_int_equal(vrev__vless_request_parse(in, len, &users, &req, &need), 37);
    assert_int_equal(req.user, 1);
    assert_int_equal(req.command, VREV_VLESS_TCP);
    assert_int_equal(req.addons.raw_len, 0);
    assert_null(req.addons.raw);
    assert_null(req.addons.flow);
    assert_int_equal(vrev__addr_target_text(&req.target, text, sizeof(text)), 16);
    assert_string_equal(text, "test.v2fly.org:0");
    free(in);
    check_splits_hex(&REQUEST, REQ_VECTOR, 37);
    /* payload after the header is not part of it */
    check_splits_hex(&REQUEST, REQ_VECTOR " 17030300", 37);
}

static void test_request_vector_encode(void **state)
{
    (void)state;
    size_t len, idlen;
    uint8_t *want = tu_hex(REQ_VECTOR, &len);
    uint8_t *id = tu_hex(UUID_HEX, &idlen);
    struct vrev__addr target;
    uint8_t out[VREV_VLESS_REQUEST_MAX];
    assert_int_equal(vrev__addr_from_text(&target, "test.v2fly.org", 0), 0);
    assert_int_equal(
        vrev__vless_request_encode(out, sizeof(out), id, VREV_VLESS_TCP, &target, NULL, 0), 37);
    assert_memory_equal(out, want, 37);
    /* exactly sized output works, one byte less does not */
    for (size_t cap = 0; cap < 37; cap++)
        assert_int_equal(vrev__vless_request_encode(out, cap, id, VREV_VLESS_TCP, &target, NULL, 0),
                         VREV_ERR_NOSPACE);
    uint8_t *exact = malloc(37);
    assert_non_null(exact);
    assert_int_equal(vrev__vless_request_encode(exact, 37, id, VREV_VLESS_TCP, &target, NULL, 0),
                     37);
    free(exact);
    free(want);
    free(id);
}

static void test_response_vector(void **state)
{
    (void)state;
    uint8_t out[4];
    size_t need = 0;
    struct vrev__vless_addons a;
    assert_int_equal(vrev__vless_response_encode(out, sizeof(out), NULL, 0), 2);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
    assert_int_equal(vrev__vless_response_encode(out, 1, NULL, 0), VREV_ERR_NOSPACE);
    uint8_t *in = tu_dup("\0\0", 2);
    assert_int_equal(vrev__vless_response_parse(in, 2, &a, &need), 2);
    assert_int_equal(a.raw_len, 0);
    free(in);
    check_splits_hex(&RESPONSE, "00 00", 2);
    check_splits_hex(&RESPONSE, "00 00 48545450", 2);
    /* non-empty addons are parsed as protobuf: Flow "xtls" */
    check_splits_hex(&RESPONSE, "00 06 0a04 78746c73", 8);
}

/* --- round trips ----------------------------------------------------------------------- */

struct round_trip {
    uint8_t command;
    const char *host; /* NULL for Mux */
    uint16_t port;
    const char *addons_hex;
};

static void check_round_trip(const struct round_trip *t)
{
    struct vrev__addr target;
    size_t alen = 0, need = 0;
    uint8_t *addons = tu_hex(t->addons_hex, &alen);
    if (t->host)
        assert_int_equal(vrev__addr_from_text(&target, t->host, t->port), 0);
    uint8_t out[VREV_VLESS_REQUEST_MAX], again[VREV_VLESS_REQUEST_MAX];
    int n = vrev__vless_request_encode(out, sizeof(out), user_ids + 32, t->command,
                                       t->host ? &target : NULL, addons, alen);
    assert_true(n > 0);
    struct vrev__vless_request req;
    uint8_t *in = tu_dup(out, (size_t)n);
    assert_int_equal(vrev__vless_request_parse(in, (size_t)n, &users, &req, &need), n);
    assert_int_equal(req.user, 2);
    assert_int_equal(req.command, t->command);
    if (t->host)
        assert_true(vrev__addr_equal(&req.target, &target));
    else
        assert_int_equal(req.target.type, 0);
    check_bytes(req.addons.raw, req.addons.raw_len, alen ? addons : NULL, alen);
    /* decode -> encode gives the same bytes */
    assert_int_equal(vrev__vless_request_encode(again, sizeof(again), user_ids + 32, req.command,
                                                &req.target, req.addons.raw, req.addons.raw_len),
                     n);
    assert_memory_equal(again, out, (size_t)n);
    check_splits(&REQUEST, out, (size_t)n, n);
    free(in);
    free(addons);
}

static void test_request_round_trips(void **state)
{
    (void)state;
    char dom255[256];
    memset(dom255, 'a', 253);
    memcpy(dom255 + 253, ".c", 3);
    const struct round_trip cases[] = {
        {VREV_VLESS_MUX, NULL, 0, ""},
        {VREV_VLESS_TCP, "test.v2fly.org", 0, ""},
        {VREV_VLESS_UDP, "1.2.3.4", 53, ""},
        {VREV_VLESS_TCP, "2001:db8::1", 443, ""},
        {VREV_VLESS_TCP, dom255, 65535, ""},
        /* Flow "xtls-rprx-direct" */
        {VREV_VLESS_TCP, "example.com", 443, "0a10 78746c732d727072782d646972656374"},
        /* Seed, an unknown varint field 3 and an unknown fixed32 field 4 */
        {VREV_VLESS_MUX, NULL, 0, "1203 010203 18ff01 25 01020304"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_round_trip(&cases[i]);
}

static void test_addons_fields(void **state)
{
    (void)state;
    size_t len;
    struct vrev__vless_addons a;
    /* flow twice (last wins), seed, field 1 as a varint (kept as unknown, like protobuf-go) */
    uint8_t *in = tu_hex("0a01 41 0a02 4243 1201 ff 0805", &len);
    assert_int_equal(vrev__vless_addons_parse(in, len, &a), 0);
    assert_int_equal(a.flow_len, 2);
    assert_memory_equal(a.flow, "BC", 2);
    assert_int_equal(a.seed_len, 1);
    assert_int_equal(a.seed[0], 0xff);
    assert_int_equal(a.raw_len, len);
    free(in);
    /* an empty string field is present with length 0 */
    in = tu_hex("0a00", &len);
    assert_int_equal(vrev__vless_addons_parse(in, len, &a), 0);
    assert_non_null(a.flow);
    assert_int_equal(a.flow_len, 0);
    free(in);
    assert_int_equal(vrev__vless_addons_parse(NULL, 0, &a), 0);
    assert_null(a.raw);
}

static void test_request_normalises_like_v2ray(void **state)
{
    (void)state;
    struct vrev__vless_request req;
    size_t len, need;
    char text[64];
    /* a "domain" that is an IP literal, and an IPv4-mapped IPv6 address, are IPv4 */
    uint8_t *in = tu_hex("00" UUID_HEX "00 01 0050 02 09 3132372e302e302e31", &len);
    assert_int_equal(vrev__vless_request_parse(in, len, &users, &req, &need), (int)len);
    assert_int_equal(req.target.type, VREV_ADDR_IPV4);
    vrev__addr_target_text(&req.target, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:80");
    free(in);
    in = tu_hex("00" UUID_HEX "00 02 0035 03 00000000000000000000ffff01020304", &len);
    assert_int_equal(vrev__vless_request_parse(in, len, &users, &req, &need), (int)len);
    assert_int_equal(req.target.type, VREV_ADDR_IPV4);
    assert_int_equal(req.command, VREV_VLESS_UDP);
    free(in);
}

/* --- malformed input ------------------------------------------------------------------- */

static void test_request_bad_version(void **state)
{
    (void)state;
    check_splits_hex(&REQUEST, "01" UUID_HEX "00 01 0000 02 0e 746573742e7632666c792e6f7267",
                     VREV_ERR_VLESS_VERSION);
    check_splits_hex(&REQUEST, "ff", VREV_ERR_VLESS_VERSION);
}

static void test_request_unknown_user(void **state)
{
    (void)state;
    size_t len, need;
    struct vrev__vless_request req;
    check_splits_hex(&REQUEST, "00 278487397e6241389fd3098a63964b6c 00 03", VREV_ERR_VLESS_USER);
    check_splits_hex(&REQUEST, "00 378487397e6241389fd3098a63964b6b 00 03", VREV_ERR_VLESS_USER);
    uint8_t *in = tu_hex(REQ_VECTOR, &len);
    struct vrev__vless_users none = {user_ids, 0};
    assert_int_equal(vrev__vless_request_parse(in, len, &none, &req, &need), VREV_ERR_VLESS_USER);
    assert_int_equal(vrev__vless_request_parse(in, len, NULL, &req, &need), VREV_ERR_VLESS_USER);
    /* the UUID is judged once it is complete, not before */
    assert_int_equal(vrev__vless_request_parse(in, 16, &none, &req, &need), 0);
    assert_int_equal(need, 17);
    free(in);
}

static void test_request_bad_command(void **state)
{
    (void)state;
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 00 0050 01 7f000001", VREV_ERR_VLESS_COMMAND);
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 04", VREV_ERR_VLESS_COMMAND);
    check_splits_hex(&REQUEST, "00" UUID_HEX "02 0800 ff", VREV_ERR_VLESS_COMMAND);
}

static void test_request_bad_addons(void **state)
{
    (void)state;
    /* Flow's length (5) runs past the end of the addons (3 bytes) */
    check_splits_hex(&REQUEST, "00" UUID_HEX "03 0a0541 03", VREV_ERR_VLESS_ADDONS);
    /* a varint cut by the end of the addons, an over-long varint, field 0, a group */
    check_splits_hex(&REQUEST, "00" UUID_HEX "02 08ff 03", VREV_ERR_VLESS_ADDONS);
    check_splits_hex(&REQUEST, "00" UUID_HEX "0b 08ffffffffffffffffff02 03", VREV_ERR_VLESS_ADDONS);
    check_splits_hex(&REQUEST, "00" UUID_HEX "02 0201 03", VREV_ERR_VLESS_ADDONS);
    check_splits_hex(&REQUEST, "00" UUID_HEX "02 0b0c 03", VREV_ERR_VLESS_ADDONS);
    check_splits_hex(&REQUEST, "00" UUID_HEX "03 0d0102 03", VREV_ERR_VLESS_ADDONS);
    check_splits_hex(&RESPONSE, "00 02 0a05", VREV_ERR_VLESS_ADDONS);
}

static void test_request_truncated(void **state)
{
    (void)state;
    size_t len, need = 0;
    struct vrev__vless_request req;
    /* the addons length promises 200 bytes; only 3 are here: need more, not an error */
    uint8_t *in = tu_hex("00" UUID_HEX "c8 0a0141", &len);
    assert_int_equal(vrev__vless_request_parse(in, len, &users, &req, &need), 0);
    assert_int_equal(need, 18 + 200);
    free(in);
    check_splits_hex(&REQUEST, "00" UUID_HEX "c8 0a0141", 0);
    /* the address is waited for field by field */
    in = tu_hex("00" UUID_HEX "00 01 0050 02 05 6162", &len);
    assert_int_equal(vrev__vless_request_parse(in, len, &users, &req, &need), 0);
    assert_int_equal(need, len + 3);
    free(in);
}

static void test_request_bad_address(void **state)
{
    (void)state;
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 01 0050 00 7f000001", VREV_ERR_ADDR_TYPE);
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 02 0050 04 7f000001", VREV_ERR_ADDR_TYPE);
    /* a zero-length domain crashes a 4.34 peer: rejected as soon as its length is read */
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 01 0050 02 00", VREV_ERR_ADDR_DOMAIN);
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 01 0050 02 00 41414141", VREV_ERR_ADDR_DOMAIN);
    check_splits_hex(&REQUEST, "00" UUID_HEX "00 01 0050 02 03 612f62", VREV_ERR_ADDR_DOMAIN);
}

static void test_response_bad(void **state)
{
    (void)state;
    check_splits_hex(&RESPONSE, "01 00", VREV_ERR_VLESS_VERSION);
    check_splits_hex(&RESPONSE, "05 01 02", VREV_ERR_VLESS_VERSION);
    check_splits_hex(&RESPONSE, "00 05 0a01", 0); /* still waiting for the addons */
}

/* --- encoder limits -------------------------------------------------------------------- */

static void test_encode_errors(void **state)
{
    (void)state;
    uint8_t out[VREV_VLESS_REQUEST_MAX + 8], addons[256];
    const uint8_t *id = user_ids + 16;
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "example.com", 80), 0);
    memset(addons, 0, sizeof(addons));
    for (size_t i = 0; i + 1 < sizeof(addons); i += 2)
        addons[i] = 0x08; /* field 1 varint 0, repeated */
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, addons, 256),
                     VREV_ERR_RANGE);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, addons, 254),
                     19 + 254 + 15);
    assert_int_equal(vrev__vless_response_encode(out, sizeof(out), addons, 256), VREV_ERR_RANGE);
    assert_int_equal(vrev__vless_response_encode(out, sizeof(out), addons, 254), 256);
    assert_int_equal(
        vrev__vless_request_encode(out, sizeof(out), id, 1, &a, (const uint8_t *)"\x0a\x05", 2),
        VREV_ERR_VLESS_ADDONS);
    assert_int_equal(vrev__vless_response_encode(out, sizeof(out), (const uint8_t *)"\x0a", 1),
                     VREV_ERR_VLESS_ADDONS);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 0, &a, NULL, 0),
                     VREV_ERR_VLESS_COMMAND);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 4, &a, NULL, 0),
                     VREV_ERR_VLESS_COMMAND);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, NULL, NULL, 0),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), NULL, 3, NULL, NULL, 0),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, NULL, 3),
                     VREV_ERR_INVAL);
    /* the Mux command carries no address, so a bad one does not matter */
    a.type = 9;
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 3, &a, NULL, 0), 19);
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, NULL, 0),
                     VREV_ERR_ADDR_TYPE);
    a.type = VREV_ADDR_IPV4;
    a.len = 16;
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, NULL, 0),
                     VREV_ERR_ADDR_TYPE);
    a.type = VREV_ADDR_DOMAIN;
    a.len = 0; /* never emit an empty domain */
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, NULL, 0),
                     VREV_ERR_ADDR_DOMAIN);
    memcpy(a.host, "a b", 3);
    a.len = 3;
    assert_int_equal(vrev__vless_request_encode(out, sizeof(out), id, 1, &a, NULL, 0),
                     VREV_ERR_ADDR_DOMAIN);
}

/* --- the reader ------------------------------------------------------------------------ */

static void test_reader_stops_at_header_end(void **state)
{
    (void)state;
    size_t len, used = 99;
    uint8_t *in = tu_hex(REQ_VECTOR " 474554", &len);
    struct vrev__hdr_reader r;
    struct vrev__vless_request req;
    vrev__hdr_reader_init(&r);
    assert_int_equal(vrev__vless_request_feed(&r, &users, &req, in, len, &used), 37);
    assert_int_equal(used, 37);
    assert_int_equal(r.len, 37);
    /* complete: later calls take nothing */
    assert_int_equal(vrev__vless_request_feed(&r, &users, &req, in + 37, 3, &used), 37);
    assert_int_equal(used, 0);
    assert_int_equal(vrev__vless_request_feed(&r, &users, &req, NULL, 0, &used), 37);
    vrev__hdr_reader_reset(&r);
    assert_int_equal(r.len, 0);
    for (size_t i = 0; i < 37; i++)
        assert_int_equal(r.buf[i], 0);
    /* an error reports how far it got */
    in[0] = 1;
    assert_int_equal(vrev__vless_request_feed(&r, &users, &req, in, len, &used),
                     VREV_ERR_VLESS_VERSION);
    assert_int_equal(used, 1);
    free(in);
}

static void test_error_names(void **state)
{
    (void)state;
    static const int codes[] = {VREV_ERR_VLESS_VERSION, VREV_ERR_VLESS_USER, VREV_ERR_VLESS_ADDONS,
                                VREV_ERR_VLESS_COMMAND};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_string_not_equal(vrev_strerror(codes[i]), "unknown error");
        assert_memory_equal(vrev_err_name(codes[i]), "VLESS_", 6);
    }
    assert_string_equal(vrev_err_name(VREV_ERR_VLESS_USER), "VLESS_USER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_vector_decode),
        cmocka_unit_test(test_request_vector_encode),
        cmocka_unit_test(test_response_vector),
        cmocka_unit_test(test_request_round_trips),
        cmocka_unit_test(test_addons_fields),
        cmocka_unit_test(test_request_normalises_like_v2ray),
        cmocka_unit_test(test_request_bad_version),
        cmocka_unit_test(test_request_unknown_user),
        cmocka_unit_test(test_request_bad_command),
        cmocka_unit_test(test_request_bad_addons),
        cmocka_unit_test(test_request_truncated),
        cmocka_unit_test(test_request_bad_address),
        cmocka_unit_test(test_response_bad),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_reader_stops_at_header_end),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests_name("vless", tests, setup, NULL);
}
