/* lib/codec/http1: HTTP/1.1 heads and the WebSocket upgrade. Replays what Debian's V2Ray 4.34
 * sent and answered (tests/vectors/ws/, from capture.py there): its request parses and passes
 * our server's checks; our client request is byte for byte V2Ray's; our error answers are
 * byte for byte its answers (given the same Date). Plus SHA-1 and base64 known answers, every
 * refusal, the limits, and heads fed in every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/http1.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "testutil.h"

static const char RFC_KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

/* A vector as a C string (a NUL after its bytes); *len gets its length. */
static char *load_text(const char *path, size_t *len)
{
    uint8_t *p = tu_load(path, len);
    char *s = malloc(*len + 1);
    assert_non_null(s);
    memcpy(s, p, *len);
    s[*len] = '\0';
    free(p);
    return s;
}

static void assert_hex20(const uint8_t *got, const char *want)
{
    char hex[41];
    for (size_t i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    assert_string_equal(hex, want);
}

static void test_sha1(void **state)
{
    (void)state;
    /* FIPS 180-2 appendix A and the empty message */
    static const struct {
        const char *msg, *digest;
    } kat[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    };
    uint8_t out[20];
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        struct vrev__iov v = {kat[i].msg, strlen(kat[i].msg)};
        assert_int_equal(vrev__sha1(&v, 1, out), 0);
        assert_hex20(out, kat[i].digest);
        /* the same in two pieces, split everywhere */
        for (size_t k = 0; k <= v.len; k++) {
            struct vrev__iov two[2] = {{kat[i].msg, k}, {kat[i].msg + k, v.len - k}};
            assert_int_equal(vrev__sha1(two, 2, out), 0);
            assert_hex20(out, kat[i].digest);
        }
    }
    /* a million 'a' (FIPS 180-2 A.3) */
    char *m = malloc(1000000);
    assert_non_null(m);
    memset(m, 'a', 1000000);
    struct vrev__iov v = {m, 1000000};
    assert_int_equal(vrev__sha1(&v, 1, out), 0);
    assert_hex20(out, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(m);
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 §10 */
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    char enc[16];
    uint8_t dec[16];
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        vrev__base64_encode((const uint8_t *)vec[i][0], strlen(vec[i][0]), enc);
        assert_string_equal(enc, vec[i][1]);
        int n = vrev__base64_decode(vec[i][1], strlen(vec[i][1]), dec, sizeof(dec), false);
        assert_int_equal(n, (int)strlen(vec[i][0]));
        assert_memory_equal(dec, vec[i][0], (size_t)n);
    }
    static const char *const bad[] = {
        "Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v=", "====", "Z*==", "=Zg="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vrev__base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), false),
                         VREV_ERR_INVAL);
    assert_int_equal(vrev__base64_decode("Zm9vYmFy", 8, dec, 5, false), VREV_ERR_NOSPACE);
}

static void test_accept_rfc6455(void **state)
{
    (void)state;
    char accept[VREV_WS_ACCEPT_LEN + 1];
    assert_int_equal(vrev__ws_accept(RFC_KEY, strlen(RFC_KEY), accept), 0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
}

/* Feed a head in two pieces split at `cut`, then the rest byte by byte. */
static int feed_split(struct vrev__http1_reader *r, const uint8_t *p, size_t n, size_t cut,
                      size_t *total_used)
{
    size_t used = 0;
    int rc = vrev__http1_reader_feed(r, p, cut, &used);
    *total_used = used;
    for (size_t i = cut; rc == 0 && i < n; i++) {
        rc = vrev__http1_reader_feed(r, p + i, 1, &used);
        *total_used += used;
    }
    return rc;
}

static void test_v2ray_request_every_split(void **state)
{
    (void)state;
    size_t n;
    uint8_t *req = tu_load("ws/client-request.txt", &n);
    /* followed by a frame's first bytes, which the reader must leave alone */
    uint8_t *more = malloc(n + 4);
    assert_non_null(more);
    memcpy(more, req, n);
    memcpy(more + n, "\x82\x91\x21\x0b", 4);
    struct vrev__http1_reader *r = malloc(sizeof(*r));
    assert_non_null(r);
    for (size_t cut = 0; cut <= n + 4; cut++) {
        vrev__http1_reader_init(r, false);
        size_t used;
        int rc = cut == n + 4 ? vrev__http1_reader_feed(r, more, n + 4, &used)
                              : feed_split(r, more, n + 4, cut, &used);
        assert_int_equal(rc, (int)n);
        assert_int_equal(used, n);
        assert_int_equal(vrev__http1_reader_feed(r, more + n, 4, &used), (int)n); /* again */
        assert_int_equal(used, 0);
    }
    struct vrev__http1_head *h = &r->head;
    assert_int_equal(h->minor, 1);
    assert_int_equal(h->n_headers, 6);
    assert_memory_equal(h->method.p, "GET", 3);
    assert_memory_equal(h->target.p, "/ray", 4);
    const struct vrev__http1_str *host = vrev__http1_get(h, "host");
    assert_non_null(host);
    assert_int_equal(host->len, 14);
    assert_memory_equal(host->p, "ws.example.com", 14);

    struct vrev__ws_server_opts o = {.path = "/ray"};
    struct vrev__ws_request w;
    assert_int_equal(vrev__ws_check_request(h, &o, &w), 101);
    o.host = "ws.example.com";
    assert_int_equal(vrev__ws_check_request(h, &o, &w), 101);
    o.host = "WS.Example.COM";
    assert_int_equal(vrev__ws_check_request(h, &o, &w), 101);
    assert_int_equal(w.key.len, VREV_WS_KEY_LEN);
    assert_int_equal(w.forwarded.len, 0);

    /* our answer is accepted by our client check for V2Ray's key */
    char key[VREV_WS_KEY_LEN + 1], out[512];
    memcpy(key, w.key.p, VREV_WS_KEY_LEN);
    key[VREV_WS_KEY_LEN] = '\0';
    int len = vrev__ws_write_101(out, sizeof(out), &w);
    assert_true(len > 0);
    struct vrev__http1_reader *a = malloc(sizeof(*a));
    assert_non_null(a);
    vrev__http1_reader_init(a, true);
    size_t used;
    assert_int_equal(vrev__http1_reader_feed(a, (uint8_t *)out, (size_t)len, &used), len);
    assert_int_equal(vrev__ws_check_response(&a->head, key), 0);
    assert_int_equal(vrev__ws_check_response(&a->head, RFC_KEY), VREV_ERR_WS_HANDSHAKE);
    for (int cap = 0; cap < len; cap++)
        assert_int_equal(vrev__ws_write_101(out, (size_t)cap, &w), VREV_ERR_NOSPACE);
    free(a);
    free(r);
    free(more);
    free(req);
}

/* Our client's request is V2Ray's, byte for byte, given its key. */
static void test_request_is_v2rays(void **state)
{
    (void)state;
    size_t n;
    char *want = load_text("ws/client-request.txt", &n);
    const char *k = strstr(want, "Sec-WebSocket-Key: ");
    assert_non_null(k);
    uint8_t key[16];
    assert_int_equal(vrev__base64_decode(k + 19, VREV_WS_KEY_LEN, key, sizeof(key), false), 16);
    char out[1024], key_out[VREV_WS_KEY_LEN + 1];
    int len =
        vrev__ws_write_request(out, sizeof(out), "ws.example.com", "/ray", NULL, 0, key, key_out);
    assert_int_equal(len, (int)n);
    assert_memory_equal(out, want, n);
    assert_memory_equal(key_out, k + 19, VREV_WS_KEY_LEN);
    for (int cap = 0; cap < len; cap++)
        assert_int_equal(vrev__ws_write_request(out, (size_t)cap, "ws.example.com", "/ray", NULL, 0,
                                                key, key_out),
                         VREV_ERR_NOSPACE);
    free(want);
}

static struct vrev__http1_header hdr(const char *name, const char *value)
{
    return (struct vrev__http1_header){{name, strlen(name)}, {value, strlen(value)}};
}

static void test_request_headers_as_go_writes_them(void **state)
{
    (void)state;
    uint8_t key[16] = {0};
    char out[1024], k[VREV_WS_KEY_LEN + 1];
    struct vrev__http1_header h[] = {
        hdr("x-b", "2"), hdr("user-agent", "curl/8"),  hdr("accept-LANGUAGE", "en"),
        hdr("X-B", "3"), hdr("user-agent", "ignored"), hdr("zz", "")};
    int len = vrev__ws_write_request(out, sizeof(out), "h:8080", "/p?ed=2048", h, 6, key, k);
    assert_true(len > 0);
    out[len] = '\0';
    assert_string_equal(out, "GET /p?ed=2048 HTTP/1.1\r\n"
                             "Host: h:8080\r\n"
                             "User-Agent: curl/8\r\n"
                             "Accept-Language: en\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "Upgrade: websocket\r\n"
                             "X-B: 2\r\n"
                             "X-B: 3\r\n"
                             "Zz: \r\n"
                             "\r\n");
    /* an empty User-Agent: Go writes none */
    struct vrev__http1_header empty_ua = hdr("User-Agent", "");
    len = vrev__ws_write_request(out, sizeof(out), "h", "/", &empty_ua, 1, key, k);
    out[len] = '\0';
    assert_null(strstr(out, "User-Agent"));
    /* refused: the handshake's own headers, bad names and values, bad host or path */
    static const char *const own[] = {"Host",
                                      "upgrade",
                                      "Connection",
                                      "Sec-WebSocket-Key",
                                      "sec-websocket-version",
                                      "Sec-WebSocket-Extensions"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        struct vrev__http1_header x = hdr(own[i], "v");
        assert_int_equal(vrev__ws_write_request(out, sizeof(out), "h", "/", &x, 1, key, k),
                         VREV_ERR_INVAL);
    }
    struct vrev__http1_header bad[] = {hdr("a b", "v"), hdr("", "v"), hdr("a", "x\r\nY: z"),
                                       hdr("a:", "v")};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vrev__ws_write_request(out, sizeof(out), "h", "/", &bad[i], 1, key, k),
                         VREV_ERR_INVAL);
    assert_int_equal(vrev__ws_write_request(out, sizeof(out), "", "/", NULL, 0, key, k),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev__ws_write_request(out, sizeof(out), "a b", "/", NULL, 0, key, k),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev__ws_write_request(out, sizeof(out), "h", "p", NULL, 0, key, k),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev__ws_write_request(out, sizeof(out), "h", "/a b", NULL, 0, key, k),
                     VREV_ERR_INVAL);
}

/* Parse a NUL-terminated request and check it against path "/ray". */
static int check(const char *text, const char *host, struct vrev__ws_request *w)
{
    struct vrev__http1_head h;
    int rc = vrev__http1_parse(text, strlen(text), false, &h);
    if (rc < 0)
        return rc;
    struct vrev__ws_server_opts o = {"/ray", host};
    return vrev__ws_check_request(&h, &o, w);
}

#define GOOD_TAIL                                                                                  \
    "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"                                    \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

static void test_server_checks(void **state)
{
    (void)state;
    struct vrev__ws_request w;
    static const struct {
        const char *req, *host;
        int status;
    } cases[] = {
        {"GET /ray HTTP/1.1\r\nHost: a\r\n" GOOD_TAIL, NULL, 101},
        {"GET /ray?ed=2048 HTTP/1.1\r\n" GOOD_TAIL, NULL, 101},
        {"GET /r%61y HTTP/1.1\r\n" GOOD_TAIL, NULL, 101},
        {"GET /r%61 HTTP/1.1\r\n" GOOD_TAIL, NULL, 404},
        {"GET /r%6 HTTP/1.1\r\n" GOOD_TAIL, NULL, 400},
        {"GET /r%zzy HTTP/1.1\r\n" GOOD_TAIL, NULL, 400},
        {"GET http://a.example/ray HTTP/1.1\r\n" GOOD_TAIL, NULL, 101},
        {"GET http://a.example HTTP/1.1\r\n" GOOD_TAIL, NULL, 404},
        {"GET * HTTP/1.1\r\n" GOOD_TAIL, NULL, 404},
        {"GET /ray/ HTTP/1.1\r\n" GOOD_TAIL, NULL, 404},
        {"GET /ra HTTP/1.1\r\n" GOOD_TAIL, NULL, 404},
        {"GET / HTTP/1.1\r\n\r\n", NULL, 404}, /* a probe: a web server without that page */
        {"POST /ray HTTP/1.1\r\n" GOOD_TAIL, NULL, 405},
        {"POST /other HTTP/1.1\r\n" GOOD_TAIL, NULL, 404}, /* path first, as V2Ray */
        {"GET /ray HTTP/1.0\r\n" GOOD_TAIL, NULL, 400},
        {"GET /ray HTTP/1.1\r\nHost: a\r\nHost: b\r\n" GOOD_TAIL, NULL, 400},
        {"GET /ray HTTP/1.1\r\nHost: a.example\r\n" GOOD_TAIL, "a.example", 101},
        {"GET /ray HTTP/1.1\r\nHost: A.Example:8443\r\n" GOOD_TAIL, "a.example", 101},
        {"GET /ray HTTP/1.1\r\nHost: a.example:\r\n" GOOD_TAIL, "a.example", 404},
        {"GET /ray HTTP/1.1\r\nHost: a.example:80\r\n" GOOD_TAIL, "a.example:443", 404},
        {"GET /ray HTTP/1.1\r\nHost: b.example\r\n" GOOD_TAIL, "a.example", 404},
        {"GET /ray HTTP/1.1\r\n" GOOD_TAIL, "a.example", 404},
        {"GET /ray HTTP/1.1\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
         "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
         "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: "
         "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         NULL, 400},
        {"GET /ray HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         NULL, 426},
        {"GET /ray HTTP/1.1\r\nupgrade: WebSocket\r\nCONNECTION: upgrade\r\n"
         "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8, 13\r\n\r\n",
         NULL, 101},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = check(cases[i].req, cases[i].host, &w);
        if (got != cases[i].status)
            fail_msg("case %zu: %d, want %d", i, got, cases[i].status);
    }
}

static void test_forwarded_for(void **state)
{
    (void)state;
    struct vrev__ws_request w;
    assert_int_equal(check("GET /ray HTTP/1.1\r\nX-Forwarded-For:  203.0.113.7 , 10.0.0.1\r\n"
                           "X-Forwarded-For: 10.9.9.9\r\n" GOOD_TAIL,
                           NULL, &w),
                     101);
    assert_int_equal(w.forwarded.len, 22);
    struct vrev__http1_str first = vrev__http1_xff_first(w.forwarded);
    assert_int_equal(first.len, 11);
    assert_memory_equal(first.p, "203.0.113.7", 11);
    first = vrev__http1_xff_first((struct vrev__http1_str){"2001:db8::1", 11});
    assert_int_equal(first.len, 11);
    first = vrev__http1_xff_first((struct vrev__http1_str){" , x", 4});
    assert_int_equal(first.len, 0);
    /* answered too when refused: the glue may log who was turned away */
    assert_int_equal(check("GET /x HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", NULL, &w), 404);
    assert_int_equal(w.forwarded.len, 7);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct vrev__http1_head h;
    static const char *const bad_requests[] = {
        "GET /ray HTTP/2.0\r\n\r\n",
        "GET /ray http/1.1\r\n\r\n",
        "GET  /ray HTTP/1.1\r\n\r\n",
        "GET /ray  HTTP/1.1\r\n\r\n",
        "GET /ray\r\n\r\n",
        " GET /ray HTTP/1.1\r\n\r\n",
        "G(T /ray HTTP/1.1\r\n\r\n",
        "GET /r\x01y HTTP/1.1\r\n\r\n",
        "GET /ray HTTP/1.1 \r\n\r\n",
        "GET /ray HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET /ray HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET /ray HTTP/1.1\r\n: a\r\n\r\n",
        "GET /ray HTTP/1.1\r\nA: b\x7f\r\n\r\n",
        "GET /ray HTTP/1.1\r\nA: b\rc\r\n\r\n",
        "GET /ray HTTP/1.1\r\nNoColon\r\n\r\n",
        "\r\n\r\n",
        "GET /ray HTTP/1.1\r\n\r\nextra",
        "GET /ray HTTP/1.1\r\nA: b\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        int rc = vrev__http1_parse(bad_requests[i], strlen(bad_requests[i]), false, &h);
        if (rc != VREV_ERR_HTTP_HEAD)
            fail_msg("request %zu: %d", i, rc);
    }
    /* a NUL in a value */
    assert_int_equal(vrev__http1_parse("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26, false, &h),
                     VREV_ERR_HTTP_HEAD);
    static const char *const bad_responses[] = {
        "HTTP/1.1 10 Hi\r\n\r\n",      "HTTP/1.1 1011 Hi\r\n\r\n", "HTTP/1.1 099 Hi\r\n\r\n",
        "HTTP/1.1 101\tHi\r\n\r\n",    "HTTP/1.1  101 Hi\r\n\r\n", "HTTP/2 101 Hi\r\n\r\n",
        "HTTP/1.1 101 H\x01i\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad_responses) / sizeof(bad_responses[0]); i++) {
        int rc = vrev__http1_parse(bad_responses[i], strlen(bad_responses[i]), true, &h);
        if (rc != VREV_ERR_HTTP_HEAD)
            fail_msg("response %zu: %d", i, rc);
    }
    /* accepted: LF line ends, an empty reason, no reason, tabs around a value, obs-text */
    assert_int_equal(vrev__http1_parse("GET / HTTP/1.1\nA:\t b \t\n\n", 24, false, &h), 0);
    assert_int_equal(h.headers[0].value.len, 1);
    assert_int_equal(vrev__http1_parse("HTTP/1.1 101 \r\n\r\n", 17, true, &h), 0);
    assert_int_equal(vrev__http1_parse("HTTP/1.1 101\r\n\r\n", 16, true, &h), 0);
    assert_int_equal(h.status, 101);
    const char *utf8 = "GET / HTTP/1.1\r\nA: \xc3\xa9\r\n\r\n";
    assert_int_equal(vrev__http1_parse(utf8, strlen(utf8), false, &h), 0);
}

static void test_limits(void **state)
{
    (void)state;
    struct vrev__http1_reader *r = malloc(sizeof(*r));
    assert_non_null(r);
    size_t used;
    /* a head that never ends: refused at exactly the limit, having taken it all */
    char *big = malloc(VREV_HTTP1_HEAD_MAX + 100);
    assert_non_null(big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', VREV_HTTP1_HEAD_MAX + 100 - 19);
    vrev__http1_reader_init(r, false);
    assert_int_equal(vrev__http1_reader_feed(r, (uint8_t *)big, VREV_HTTP1_HEAD_MAX - 1, &used), 0);
    assert_int_equal(vrev__http1_reader_feed(r, (uint8_t *)big, 100, &used),
                     VREV_ERR_HTTP_HEAD_SIZE);
    assert_int_equal(used, 1);
    assert_int_equal(vrev__http1_reader_feed(r, (uint8_t *)big, 1, &used),
                     VREV_ERR_HTTP_HEAD_SIZE); /* sticky */
    /* a head of exactly the limit is fine */
    memcpy(big + VREV_HTTP1_HEAD_MAX - 4, "\r\n\r\n", 4);
    vrev__http1_reader_init(r, false);
    assert_int_equal(vrev__http1_reader_feed(r, (uint8_t *)big, VREV_HTTP1_HEAD_MAX + 100, &used),
                     VREV_HTTP1_HEAD_MAX);
    assert_int_equal(used, VREV_HTTP1_HEAD_MAX);
    /* 64 headers pass, 65 do not */
    for (int n = 64; n <= 65; n++) {
        size_t len = (size_t)sprintf(big, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < n; i++)
            len += (size_t)sprintf(big + len, "H%d: v\r\n", i);
        len += (size_t)sprintf(big + len, "\r\n");
        vrev__http1_reader_init(r, false);
        assert_int_equal(vrev__http1_reader_feed(r, (uint8_t *)big, len, &used),
                         n == 64 ? (int)len : VREV_ERR_HTTP_HEAD_SIZE);
    }
    /* a malformed head is refused as soon as it is complete, and stays refused */
    vrev__http1_reader_init(r, false);
    assert_int_equal(vrev__http1_reader_feed(r, (const uint8_t *)"BAD\r\n\r\nGET", 10, &used),
                     VREV_ERR_HTTP_HEAD);
    assert_int_equal(vrev__http1_reader_feed(r, (const uint8_t *)"x", 1, &used),
                     VREV_ERR_HTTP_HEAD);
    assert_int_equal(used, 0);
    free(big);
    free(r);
}

/* The date string of a captured answer, or NULL. */
static char *date_of(const char *p, size_t n, char out[30])
{
    const char *d = strstr(p, "Date: ");
    if (!d || (size_t)(d - p) + 35 > n)
        return NULL;
    memcpy(out, d + 6, 29);
    out[29] = '\0';
    return out;
}

static void expect_answer(const char *file, int status, bool unreadable)
{
    size_t n;
    char *want = load_text(file, &n);
    char date_buf[30], out[1024];
    const char *date = date_of(want, n, date_buf);
    int len = unreadable ? vrev__http1_write_unreadable(out, sizeof(out), status)
                         : vrev__http1_write_error(out, sizeof(out), status, date);
    if (len != (int)n || memcmp(out, want, n) != 0)
        fail_msg("%s: ours differs:\n%.*s", file, len > 0 ? len : 0, out);
    for (int cap = 0; cap < len; cap++)
        assert_int_equal(unreadable ? vrev__http1_write_unreadable(out, (size_t)cap, status)
                                    : vrev__http1_write_error(out, (size_t)cap, status, date),
                         VREV_ERR_NOSPACE);
    free(want);
}

static void test_answers_are_v2rays(void **state)
{
    (void)state;
    expect_answer("ws/server-404.txt", 404, false);
    expect_answer("ws/server-400-upgrade.txt", 400, false);
    expect_answer("ws/server-400-key.txt", 400, false);
    expect_answer("ws/server-405-post.txt", 405, false);
    expect_answer("ws/server-431.txt", VREV_ERR_HTTP_HEAD_SIZE, true);
    expect_answer("ws/server-400-garbage.txt", VREV_ERR_HTTP_HEAD, true);
    char out[512];
    assert_int_equal(vrev__http1_write_error(out, sizeof(out), 399, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev__http1_write_error(out, sizeof(out), 600, NULL), VREV_ERR_INVAL);
    int len = vrev__http1_write_error(out, sizeof(out), 426, NULL);
    assert_true(len > 0);
    out[len] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 426 Upgrade Required\r\n"));
    assert_non_null(strstr(out, "Sec-Websocket-Version: 13\r\n"));
}

/* V2Ray's answers to our requests: its 101 checks out for the RFC key our capture sent. */
static void test_v2ray_answers_parse(void **state)
{
    (void)state;
    static const char *const files[] = {"ws/server-101.txt", "ws/server-101-query.txt",
                                        "ws/server-101-escaped.txt", "ws/server-101-http10.txt"};
    struct vrev__http1_reader *r = malloc(sizeof(*r));
    assert_non_null(r);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t n, used;
        uint8_t *p = tu_load(files[i], &n);
        for (size_t cut = 0; cut <= n; cut++) {
            vrev__http1_reader_init(r, true);
            assert_int_equal(feed_split(r, p, n, cut, &used), (int)n);
            assert_int_equal(vrev__ws_check_response(&r->head, RFC_KEY), 0);
        }
        free(p);
    }
    static const char *const refused[] = {"ws/server-404.txt", "ws/server-400-key.txt",
                                          "ws/server-405-post.txt"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        size_t n, used;
        uint8_t *p = tu_load(refused[i], &n);
        vrev__http1_reader_init(r, true);
        assert_true(vrev__http1_reader_feed(r, p, n, &used) > 0);
        assert_int_equal(vrev__ws_check_response(&r->head, RFC_KEY), VREV_ERR_WS_HANDSHAKE);
        free(p);
    }
    free(r);
}

static void test_response_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 101 S\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 101 S\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n",
        "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    };
    struct vrev__http1_head h;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vrev__http1_parse(bad[i], strlen(bad[i]), true, &h), 0);
        assert_int_equal(vrev__ws_check_response(&h, RFC_KEY), VREV_ERR_WS_HANDSHAKE);
    }
    /* a request is no answer */
    const char *req = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(vrev__http1_parse(req, strlen(req), false, &h), 0);
    assert_int_equal(vrev__ws_check_response(&h, RFC_KEY), VREV_ERR_WS_HANDSHAKE);
}

static void test_date(void **state)
{
    (void)state;
    char d[30];
    vrev__http1_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    vrev__http1_date(951782400, d);
    assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    vrev__http1_date(1796545882, d);
    assert_string_equal(d, "Sun, 06 Dec 2026 08:31:22 GMT");
    vrev__http1_date(253402300799, d);
    assert_string_equal(d, "Fri, 31 Dec 9999 23:59:59 GMT");
    vrev__http1_date(-5, d); /* out of range: the epoch, never garbage */
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_accept_rfc6455),
        cmocka_unit_test(test_v2ray_request_every_split),
        cmocka_unit_test(test_request_is_v2rays),
        cmocka_unit_test(test_request_headers_as_go_writes_them),
        cmocka_unit_test(test_server_checks),
        cmocka_unit_test(test_forwarded_for),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_answers_are_v2rays),
        cmocka_unit_test(test_v2ray_answers_parse),
        cmocka_unit_test(test_response_refusals),
        cmocka_unit_test(test_date),
    };
    return cmocka_run_group_tests_name("http1", tests, NULL, NULL);
}
