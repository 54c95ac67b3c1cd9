/* lib/codec/socks5: SOCKS5 both sides (RFC 1928/1929; WIRE-SPEC §5.3, captures §10.10).
 *
 * Every parsed input is an exactly-sized malloc copy (ASan catches over-reads); every message
 * is also parsed at every prefix, fed byte by byte and fed in two pieces split at every
 * offset, all of which must agree with parsing it whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/socks5.h"
#include "core/core.h"
#include "testutil.h"
#include "vrev.h"

#define CAP_GREETING "050100"
#define CAP_REQUEST "050100030e746573742e7632666c792e6f72670000"
#define CAP_METHOD "0500"
#define CAP_REPLY "050000017f0000012800"

/* --- a message kind: its parser, its reader feed and its comparison --------------------- */

union msg {
    struct vrev__socks5_greeting greeting;
    struct vrev__socks5_auth auth;
    struct vrev__socks5_request req;
    uint8_t byte;
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
}

static int greeting_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__socks5_greeting_parse(p, n, &m->greeting, need);
}
static int greeting_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                         size_t *used)
{
    return vrev__socks5_greeting_feed(r, &m->greeting, p, n, used);
}
static void greeting_equal(const union msg *a, const union msg *b)
{
    check_bytes(a->greeting.methods, a->greeting.n_methods, b->greeting.methods,
                b->greeting.n_methods);
}

static int auth_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__socks5_auth_parse(p, n, &m->auth, need);
}
static int auth_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                     size_t *used)
{
    return vrev__socks5_auth_feed(r, &m->auth, p, n, used);
}
static void auth_equal(const union msg *a, const union msg *b)
{
    check_bytes(a->auth.user, a->auth.user_len, b->auth.user, b->auth.user_len);
    check_bytes(a->auth.pass, a->auth.pass_len, b->auth.pass, b->auth.pass_len);
}

static int request_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__socks5_request_parse(p, n, &m->req, need);
}
static int request_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                        size_t *used)
{
    return vrev__socks5_request_feed(r, &m->req, p, n, used);
}
static void request_equal(const union msg *a, const union msg *b)
{
    assert_int_equal(a->req.code, b->req.code);
    assert_true(vrev__addr_equal(&a->req.addr, &b->req.addr));
}

static int method_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__socks5_method_parse(p, n, &m->byte, need);
}
static int method_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                       size_t *used)
{
    return vrev__socks5_method_feed(r, &m->byte, p, n, used);
}
static void byte_equal(const union msg *a, const union msg *b)
{
    assert_int_equal(a->byte, b->byte);
}

static int status_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__socks5_auth_status_parse(p, n, &m->byte, need);
}
static int status_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                       size_t *used)
{
    return vrev__socks5_auth_status_feed(r, &m->byte, p, n, used);
}

static int reply_parse(const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return vrev__socks5_reply_parse(p, n, &m->req, need);
}
static int reply_feed(struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                      size_t *used)
{
    return vrev__socks5_reply_feed(r, &m->req, p, n, used);
}

static const struct kind GREETING = {greeting_parse, greeting_feed, greeting_equal};
static const struct kind AUTH = {auth_parse, auth_feed, auth_equal};
static const struct kind REQUEST = {request_parse, request_feed, request_equal};
static const struct kind METHOD = {method_parse, method_feed, byte_equal};
static const struct kind STATUS = {status_parse, status_feed, byte_equal};
static const struct kind REPLY = {reply_parse, reply_feed, request_equal};

/* --- whole vs. split -------------------------------------------------------------------- */

static int parse_exact(const struct kind *k, const uint8_t *in, size_t len, union msg *m,
                       size_t *need)
{
    uint8_t *b = tu_dup(in, len);
    int rc = k->parse(b, len, m, need);
    free(b);
    return rc;
}

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
            assert_int_equal(rc, expect);
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

static void check_encoded(const uint8_t *out, int n, const char *hex)
{
    size_t len;
    uint8_t *want = tu_hex(hex, &len);
    assert_int_equal(n, (int)len);
    assert_memory_equal(out, want, len);
    free(want);
}

/* --- the captured 4.34 exchange ---------------------------------------------------------- */

static void test_capture_client_side(void **state)
{
    (void)state;
    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    const uint8_t none = VREV_SOCKS5_METHOD_NONE;
    struct vrev__addr target;
    check_encoded(out, vrev__socks5_greeting_encode(out, sizeof(out), &none, 1), CAP_GREETING);
    assert_int_equal(vrev__addr_from_text(&target, "test.v2fly.org", 0), 0);
    check_encoded(out, vrev__socks5_request_encode(out, sizeof(out), VREV_SOCKS5_CONNECT, &target),
                  CAP_REQUEST);
    for (size_t cap = 0; cap < 21; cap++)
        assert_int_equal(vrev__socks5_request_encode(out, cap, VREV_SOCKS5_CONNECT, &target),
                         VREV_ERR_NOSPACE);

    size_t len, need = 0;
    uint8_t method = 0xee;
    uint8_t *in = tu_hex(CAP_METHOD, &len);
    assert_int_equal(vrev__socks5_method_parse(in, len, &method, &need), 2);
    assert_int_equal(method, VREV_SOCKS5_METHOD_NONE);
    free(in);
    struct vrev__socks5_request reply;
    char text[64];
    in = tu_hex(CAP_REPLY, &len);
    assert_int_equal(vrev__socks5_reply_parse(in, len, &reply, &need), 10);
    assert_int_equal(reply.code, VREV_SOCKS5_REP_SUCCEEDED);
    vrev__addr_target_text(&reply.addr, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:10240");
    free(in);
    check_splits_hex(&METHOD, CAP_METHOD, 2);
    check_splits_hex(&REPLY, CAP_REPLY, 10);
}

static void test_capture_server_side(void **state)
{
    (void)state;
    size_t len, need = 0;
    struct vrev__socks5_greeting g;
    uint8_t *in = tu_hex(CAP_GREETING, &len);
    assert_int_equal(vrev__socks5_greeting_parse(in, len, &g, &need), 3);
    assert_int_equal(g.n_methods, 1);
    assert_int_equal(vrev__socks5_choose_method(&g, VREV_SOCKS5_METHOD_NONE),
                     VREV_SOCKS5_METHOD_NONE);
    assert_int_equal(vrev__socks5_choose_method(&g, VREV_SOCKS5_METHOD_PASSWORD),
                     VREV_SOCKS5_METHOD_UNACCEPTABLE);
    free(in);
    struct vrev__socks5_request req;
    char text[64];
    in = tu_hex(CAP_REQUEST, &len);
    assert_int_equal(vrev__socks5_request_parse(in, len, &req, &need), 21);
    assert_int_equal(req.code, VREV_SOCKS5_CONNECT);
    assert_int_equal(req.addr.type, VREV_ADDR_DOMAIN);
    vrev__addr_target_text(&req.addr, text, sizeof(text));
    assert_string_equal(text, "test.v2fly.org:0");
    free(in);

    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    struct vrev__addr bound;
    check_encoded(out, vrev__socks5_method_encode(out, sizeof(out), 0), CAP_METHOD);
    assert_int_equal(vrev__addr_from_text(&bound, "127.0.0.1", 10240), 0);
    check_encoded(out, vrev__socks5_reply_encode(out, sizeof(out), 0, &bound), CAP_REPLY);
    check_splits_hex(&GREETING, CAP_GREETING, 3);
    check_splits_hex(&REQUEST, CAP_REQUEST, 21);
}

/* The captured streams start with the SOCKS preamble (24 bytes up, 12 down), then Mux.Cool:
 * the readers must stop exactly there. */
static void test_capture_streams(void **state)
{
    (void)state;
    size_t len, used;
    struct vrev__hdr_reader r;
    struct vrev__socks5_greeting g;
    struct vrev__socks5_request req;
    uint8_t method;
    uint8_t *up = tu_load("v2ray-4.34/A-basic/conn1.up.bin", &len);
    vrev__hdr_reader_init(&r);
    assert_int_equal(vrev__socks5_greeting_feed(&r, &g, up, len, &used), 3);
    assert_int_equal(used, 3);
    vrev__hdr_reader_init(&r);
    assert_int_equal(vrev__socks5_request_feed(&r, &req, up + 3, len - 3, &used), 21);
    assert_int_equal(used, 21);
    assert_int_equal(vrev__get_u16(up + 24), 4); /* a Mux.Cool metaLen follows */
    free(up);
    uint8_t *down = tu_load("v2ray-4.34/A-basic/conn1.down.bin", &len);
    vrev__hdr_reader_init(&r);
    assert_int_equal(vrev__socks5_method_feed(&r, &method, down, len, &used), 2);
    vrev__hdr_reader_init(&r);
    assert_int_equal(vrev__socks5_reply_feed(&r, &req, down + 2, len - 2, &used), 10);
    assert_int_equal(used, 10);
    free(down);
}

/* --- authentication ---------------------------------------------------------------------- */

static void test_auth(void **state)
{
    (void)state;
    uint8_t out[VREV_SOCKS5_AUTH_MAX], big[256];
    size_t need = 0;
    struct vrev__socks5_auth a;
    int n = vrev__socks5_auth_encode(out, sizeof(out), (const uint8_t *)"user", 4,
                                     (const uint8_t *)"pass", 4);
    check_encoded(out, n, "01 04 75736572 04 70617373");
    uint8_t *in = tu_dup(out, (size_t)n);
    assert_int_equal(vrev__socks5_auth_parse(in, (size_t)n, &a, &need), n);
    assert_int_equal(a.user_len, 4);
    assert_memory_equal(a.user, "user", 4);
    assert_memory_equal(a.pass, "pass", 4);
    free(in);
    check_splits(&AUTH, out, (size_t)n, n);
    check_splits_hex(&AUTH, "01 00 00", 3); /* empty user and password parse (as V2Ray) */
    /* largest */
    memset(big, 'x', sizeof(big));
    n = vrev__socks5_auth_encode(out, sizeof(out), big, 255, big, 255);
    assert_int_equal(n, VREV_SOCKS5_AUTH_MAX);
    check_splits(&AUTH, out, (size_t)n, n);
    /* oversized, missing, no room */
    assert_int_equal(vrev__socks5_auth_encode(out, sizeof(out), big, 256, big, 1), VREV_ERR_RANGE);
    assert_int_equal(vrev__socks5_auth_encode(out, sizeof(out), big, 1, big, 256), VREV_ERR_RANGE);
    assert_int_equal(vrev__socks5_auth_encode(out, sizeof(out), NULL, 1, big, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev__socks5_auth_encode(out, 4, big, 1, big, 1), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__socks5_auth_encode(out, 5, big, 1, big, 1), 5);
    /* wrong sub-negotiation version */
    check_splits_hex(&AUTH, "05 04 75736572 04 70617373", VREV_ERR_SOCKS_AUTH_VERSION);
    check_splits_hex(&AUTH, "00", VREV_ERR_SOCKS_AUTH_VERSION);
}

static void test_auth_status(void **state)
{
    (void)state;
    uint8_t out[2];
    check_encoded(out, vrev__socks5_auth_status_encode(out, sizeof(out), 0), "0100");
    assert_int_equal(vrev__socks5_auth_status_encode(out, 1, 0), VREV_ERR_NOSPACE);
    check_splits_hex(&STATUS, "0100", 2);
    check_splits_hex(&STATUS, "0100 05", 2);
    check_splits_hex(&STATUS, "0500", 2); /* version not checked, as V2Ray's client */
    check_splits_hex(&STATUS, "0101", VREV_ERR_AUTH);
    check_splits_hex(&STATUS, "01ff", VREV_ERR_AUTH);
}

/* --- greeting and method selection ------------------------------------------------------ */

static void test_greeting(void **state)
{
    (void)state;
    uint8_t out[VREV_SOCKS5_GREETING_MAX], methods[256];
    for (size_t i = 0; i < sizeof(methods); i++)
        methods[i] = (uint8_t)i;
    int n = vrev__socks5_greeting_encode(out, sizeof(out), methods, 255);
    assert_int_equal(n, 257);
    check_splits(&GREETING, out, (size_t)n, n);
    check_encoded(out, vrev__socks5_greeting_encode(out, sizeof(out), methods, 3), "0503 000102");
    check_splits_hex(&GREETING, "0503 000102 0501", 5);
    assert_int_equal(vrev__socks5_greeting_encode(out, sizeof(out), methods, 0), VREV_ERR_RANGE);
    assert_int_equal(vrev__socks5_greeting_encode(out, sizeof(out), methods, 256), VREV_ERR_RANGE);
    assert_int_equal(vrev__socks5_greeting_encode(out, sizeof(out), NULL, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev__socks5_greeting_encode(out, 4, methods, 3), VREV_ERR_NOSPACE);
    /* no methods: parsed (V2Ray answers 05 FF), and nothing can be chosen */
    size_t len, need;
    struct vrev__socks5_greeting g;
    uint8_t *in = tu_hex("0500", &len);
    assert_int_equal(vrev__socks5_greeting_parse(in, len, &g, &need), 2);
    assert_int_equal(vrev__socks5_choose_method(&g, 0), VREV_SOCKS5_METHOD_UNACCEPTABLE);
    free(in);
    /* SOCKS4 and garbage */
    check_splits_hex(&GREETING, "04 01 0050 7f000001 00", VREV_ERR_SOCKS_VERSION);
    check_splits_hex(&GREETING, "16 0301", VREV_ERR_SOCKS_VERSION);
}

static void test_method(void **state)
{
    (void)state;
    size_t len, need;
    uint8_t method = 0;
    check_splits_hex(&METHOD, "0502", 2);
    check_splits_hex(&METHOD, "05ff", VREV_ERR_SOCKS_NO_METHOD);
    check_splits_hex(&METHOD, "0400", VREV_ERR_SOCKS_VERSION);
    uint8_t *in = tu_hex("05ff", &len);
    assert_int_equal(vrev__socks5_method_parse(in, len, &method, &need), VREV_ERR_SOCKS_NO_METHOD);
    assert_int_equal(method, 0xff);
    free(in);
    uint8_t out[2];
    check_encoded(out, vrev__socks5_method_encode(out, 2, 0xff), "05ff");
    assert_int_equal(vrev__socks5_method_encode(out, 1, 0), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__socks5_method_encode(NULL, 2, 0), VREV_ERR_INVAL);
}

/* --- requests and replies ---------------------------------------------------------------- */

struct round_trip {
    uint8_t cmd;
    const char *host;
    uint16_t port;
    const char *hex;
};

static void test_request_round_trips(void **state)
{
    (void)state;
    const struct round_trip cases[] = {
        {VREV_SOCKS5_CONNECT, "1.2.3.4", 80, "05 01 00 01 01020304 0050"},
        {VREV_SOCKS5_UDP_ASSOCIATE, "0.0.0.0", 0, "05 03 00 01 00000000 0000"},
        {VREV_SOCKS5_CONNECT, "2001:db8::1", 443,
         "05 01 00 04 20010db8000000000000000000000001 01bb"},
        {VREV_SOCKS5_BIND, "example.com", 65535, "05 02 00 03 0b 6578616d706c652e636f6d ffff"},
        {VREV_SOCKS5_TOR_RESOLVE, "a", 0, "05 f0 00 03 01 61 0000"},
        {VREV_SOCKS5_TOR_RESOLVE_PTR, "::1", 0,
         "05 f1 00 04 00000000000000000000000000000001 0000"},
    };
    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vrev__addr a;
        size_t need;
        assert_int_equal(vrev__addr_from_text(&a, cases[i].host, cases[i].port), 0);
        int n = vrev__socks5_request_encode(out, sizeof(out), cases[i].cmd, &a);
        check_encoded(out, n, cases[i].hex);
        check_splits(&REQUEST, out, (size_t)n, n);
        struct vrev__socks5_request req;
        uint8_t *in = tu_dup(out, (size_t)n);
        assert_int_equal(vrev__socks5_request_parse(in, (size_t)n, &req, &need), n);
        assert_int_equal(req.code, cases[i].cmd);
        assert_true(vrev__addr_equal(&req.addr, &a));
        free(in);
        /* the same address in a success reply */
        n = vrev__socks5_reply_encode(out, sizeof(out), 0, &a);
        assert_true(n > 0);
        check_splits(&REPLY, out, (size_t)n, n);
    }
}

static void test_request_max_domain(void **state)
{
    (void)state;
    char host[256];
    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    struct vrev__addr a;
    memset(host, 'z', 255);
    host[255] = '\0';
    assert_int_equal(vrev__addr_from_text(&a, host, 1), 0);
    int n = vrev__socks5_request_encode(out, sizeof(out), VREV_SOCKS5_CONNECT, &a);
    assert_int_equal(n, VREV_SOCKS5_REQUEST_MAX);
    check_splits(&REQUEST, out, (size_t)n, n);
}

static void test_request_normalises_like_v2ray(void **state)
{
    (void)state;
    size_t len, need;
    struct vrev__socks5_request req;
    char text[64];
    uint8_t *in = tu_hex("05 01 00 03 08 31302e302e302e31 0050", &len);
    assert_int_equal(vrev__socks5_request_parse(in, len, &req, &need), (int)len);
    assert_int_equal(req.addr.type, VREV_ADDR_IPV4);
    vrev__addr_target_text(&req.addr, text, sizeof(text));
    assert_string_equal(text, "10.0.0.1:80");
    free(in);
    in = tu_hex("05 01 00 04 00000000000000000000ffff01020304 0035", &len);
    assert_int_equal(vrev__socks5_request_parse(in, len, &req, &need), (int)len);
    assert_int_equal(req.addr.type, VREV_ADDR_IPV4);
    free(in);
    /* RSV is ignored, as V2Ray does */
    check_splits_hex(&REQUEST, "05 01 ff 01 01020304 0050", 10);
}

static void test_request_malformed(void **state)
{
    (void)state;
    size_t len, need;
    struct vrev__socks5_request req;
    check_splits_hex(&REQUEST, "04 01 00 01 01020304 0050", VREV_ERR_SOCKS_VERSION);
    check_splits_hex(&REQUEST, "05 00 00 01 01020304 0050", VREV_ERR_SOCKS_COMMAND);
    check_splits_hex(&REQUEST, "05 04 00 01 01020304 0050", VREV_ERR_SOCKS_COMMAND);
    check_splits_hex(&REQUEST, "05 09", VREV_ERR_SOCKS_COMMAND);
    uint8_t *in = tu_hex("05 09", &len);
    assert_int_equal(vrev__socks5_request_parse(in, len, &req, &need), VREV_ERR_SOCKS_COMMAND);
    assert_int_equal(req.code, 9); /* so the server can answer REP 7 */
    free(in);
    /* the port-first type codes 2 and 3 are not SOCKS codes (3 is a domain here) */
    check_splits_hex(&REQUEST, "05 01 00 02 0b 6578616d706c652e636f6d 0050", VREV_ERR_ADDR_TYPE);
    check_splits_hex(&REQUEST, "05 01 00 00", VREV_ERR_ADDR_TYPE);
    check_splits_hex(&REQUEST, "05 01 00 05 01020304 0050", VREV_ERR_ADDR_TYPE);
    check_splits_hex(&REQUEST, "05 01 00 03 00 0050", VREV_ERR_ADDR_DOMAIN);
    check_splits_hex(&REQUEST, "05 01 00 03 00", VREV_ERR_ADDR_DOMAIN);
    check_splits_hex(&REQUEST, "05 01 00 03 03 612062 0050", VREV_ERR_ADDR_DOMAIN);
    /* cut short: need more, not an error */
    check_splits_hex(&REQUEST, "05 01 00 03 0b 6578616d706c65", 0);
    in = tu_hex("05 01 00 03 0b 6578616d706c65", &len);
    assert_int_equal(vrev__socks5_request_parse(in, len, &req, &need), 0);
    assert_int_equal(need, 5 + 11 + 2);
    free(in);
}

static void test_request_encode_errors(void **state)
{
    (void)state;
    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "1.2.3.4", 1), 0);
    assert_int_equal(vrev__socks5_request_encode(out, sizeof(out), 9, &a), VREV_ERR_SOCKS_COMMAND);
    assert_int_equal(vrev__socks5_request_encode(out, sizeof(out), 1, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev__socks5_request_encode(NULL, 10, 1, &a), VREV_ERR_INVAL);
    assert_int_equal(vrev__socks5_request_encode(out, 9, 1, &a), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__socks5_request_encode(out, 10, 1, &a), 10);
    a.type = 7;
    assert_int_equal(vrev__socks5_request_encode(out, sizeof(out), 1, &a), VREV_ERR_ADDR_TYPE);
    a.type = VREV_ADDR_IPV6;
    a.len = 4;
    assert_int_equal(vrev__socks5_request_encode(out, sizeof(out), 1, &a), VREV_ERR_ADDR_TYPE);
    a.type = VREV_ADDR_DOMAIN;
    a.len = 0;
    assert_int_equal(vrev__socks5_request_encode(out, sizeof(out), 1, &a), VREV_ERR_ADDR_DOMAIN);
    memcpy(a.host, "a\nb", 3);
    a.len = 3;
    assert_int_equal(vrev__socks5_request_encode(out, sizeof(out), 1, &a), VREV_ERR_ADDR_DOMAIN);
}

static void test_reply_errors(void **state)
{
    (void)state;
    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    for (int rep = 1; rep <= 8; rep++) {
        int n = vrev__socks5_reply_encode(out, sizeof(out), (uint8_t)rep, NULL);
        assert_int_equal(n, 10);
        assert_int_equal(out[1], rep);
        assert_memory_equal(out + 3, "\x01\0\0\0\0\0\0", 7); /* 0.0.0.0:0 */
        check_splits(&REPLY, out, (size_t)n, VREV_ERR_SOCKS_REFUSED);
        /* the REP code is known from the first two bytes, without the address */
        struct vrev__socks5_request r;
        size_t need;
        uint8_t *in = tu_dup(out, 2);
        assert_int_equal(vrev__socks5_reply_parse(in, 2, &r, &need), VREV_ERR_SOCKS_REFUSED);
        assert_int_equal(r.code, rep);
        free(in);
    }
    check_splits_hex(&REPLY, "04 00 00 01 00000000 0000", VREV_ERR_SOCKS_VERSION);
    check_splits_hex(&REPLY, "05 00 00 02 00000000 0000", VREV_ERR_ADDR_TYPE);
    assert_int_equal(vrev__socks5_rep_for_error(VREV_ERR_SOCKS_COMMAND),
                     VREV_SOCKS5_REP_CMD_UNSUPPORTED);
    assert_int_equal(vrev__socks5_rep_for_error(VREV_ERR_ADDR_TYPE),
                     VREV_SOCKS5_REP_ATYP_UNSUPPORTED);
    assert_int_equal(vrev__socks5_rep_for_error(VREV_ERR_ADDR_DOMAIN), VREV_SOCKS5_REP_FAILURE);
    assert_int_equal(vrev__socks5_reply_encode(out, 9, 0, NULL), VREV_ERR_NOSPACE);
}

/* --- UDP ASSOCIATE datagrams ------------------------------------------------------------- */

static void test_udp(void **state)
{
    (void)state;
    uint8_t out[VREV_SOCKS5_UDP_HEADER_MAX + 8];
    struct vrev__addr a;
    struct vrev__socks5_udp u;
    assert_int_equal(vrev__addr_from_text(&a, "1.1.1.1", 53), 0);
    int n = vrev__socks5_udp_encode(out, sizeof(out), &a, (const uint8_t *)"abc", 3);
    check_encoded(out, n, "0000 00 01 01010101 0035 616263");
    assert_int_equal(vrev__socks5_udp_header_encode(out, sizeof(out), &a), 10);
    uint8_t *in = tu_dup(out, 13);
    memcpy(in + 10, "abc", 3);
    assert_int_equal(vrev__socks5_udp_parse(in, 13, &u), 10);
    assert_true(vrev__addr_equal(&u.addr, &a));
    assert_int_equal(u.data_len, 3);
    assert_memory_equal(u.data, "abc", 3);
    /* a datagram is whole: every shorter header is truncated, an empty payload is fine */
    for (size_t len = 0; len < 10; len++) {
        uint8_t *cut = tu_dup(in, len);
        assert_int_equal(vrev__socks5_udp_parse(cut, len, &u), VREV_ERR_TRUNCATED);
        free(cut);
    }
    uint8_t *hdr = tu_dup(in, 10);
    assert_int_equal(vrev__socks5_udp_parse(hdr, 10, &u), 10);
    assert_int_equal(u.data_len, 0);
    free(hdr);
    in[2] = 1;
    assert_int_equal(vrev__socks5_udp_parse(in, 13, &u), VREV_ERR_SOCKS_FRAGMENT);
    in[2] = 0;
    in[3] = 2;
    assert_int_equal(vrev__socks5_udp_parse(in, 13, &u), VREV_ERR_ADDR_TYPE);
    free(in);
    /* domain target */
    assert_int_equal(vrev__addr_from_text(&a, "dns.example", 53), 0);
    n = vrev__socks5_udp_encode(out, sizeof(out), &a, NULL, 0);
    check_encoded(out, n, "0000 00 03 0b 646e732e6578616d706c65 0035");
    /* limits */
    assert_int_equal(vrev__socks5_udp_encode(out, 12, &a, NULL, 0), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__socks5_udp_encode(out, sizeof(out), &a, NULL, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev__socks5_udp_encode(out, sizeof(out), &a, out, SIZE_MAX), VREV_ERR_RANGE);
    assert_int_equal(vrev__socks5_udp_encode(out, sizeof(out), &a, out, sizeof(out)),
                     VREV_ERR_NOSPACE);
}

static void test_error_names(void **state)
{
    (void)state;
    static const int codes[] = {VREV_ERR_SOCKS_VERSION, VREV_ERR_SOCKS_AUTH_VERSION,
                                VREV_ERR_SOCKS_COMMAND, VREV_ERR_SOCKS_NO_METHOD,
                                VREV_ERR_SOCKS_REFUSED, VREV_ERR_SOCKS_FRAGMENT};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_string_not_equal(vrev_strerror(codes[i]), "unknown error");
        assert_memory_equal(vrev_err_name(codes[i]), "SOCKS_", 6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_client_side),
        cmocka_unit_test(test_capture_server_side),
        cmocka_unit_test(test_capture_streams),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_auth_status),
        cmocka_unit_test(test_greeting),
        cmocka_unit_test(test_method),
        cmocka_unit_test(test_request_round_trips),
        cmocka_unit_test(test_request_max_domain),
        cmocka_unit_test(test_request_normalises_like_v2ray),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_request_encode_errors),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests_name("socks5", tests, NULL, NULL);
}
