/* lib/codec/proxy_proto: PROXY protocol v1/v2 headers. Vectors are parsed whole and at every
 * split (a prefix never errs and never claims a header), each from an exactly-sized copy so
 * that a read past the end trips ASan; bad headers are refused; the encoder's bytes are
 * checked exactly and parse back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/proxy_proto.h"
#include "core/core.h"
#include "testutil.h"

/* Parse p[0..n) from an exactly-sized copy. */
static int parse(const void *p, size_t n, struct vrev__pp_header *h, size_t *need)
{
    uint8_t *c = tu_dup(p, n);
    int rc = vrev__pp_parse(c, n, h, need);
    free(c);
    return rc;
}

/* Every prefix shorter than `needed` asks for more (need > prefix), none errs; from `needed`
 * bytes on, the header of length `len` is returned. */
static void check_splits(const uint8_t *p, size_t n, size_t needed, int len)
{
    struct vrev__pp_header h;
    for (size_t k = 0; k <= n; k++) {
        size_t need = 0;
        int rc = parse(p, k, &h, &need);
        if (k < needed) {
            assert_int_equal(rc, 0);
            assert_true(need > k && need <= VREV_PP_PARSE_MAX);
        } else {
            assert_int_equal(rc, len);
        }
    }
}

static void assert_ip(const struct vrev__addr *a, const char *text, uint16_t port)
{
    char buf[VREV_MUX_TARGET_MAX];
    assert_true(vrev__addr_target_text(a, buf, sizeof(buf)) > 0);
    char want[VREV_MUX_TARGET_MAX];
    snprintf(want, sizeof(want), strchr(text, ':') ? "[%s]:%u" : "%s:%u", text, port);
    assert_string_equal(buf, want);
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    static const char v[] = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n";
    size_t hl = strlen("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
    struct vrev__pp_header h;
    size_t need;
    assert_int_equal(parse(v, sizeof(v) - 1, &h, &need), (int)hl);
    assert_int_equal(h.version, 1);
    assert_true(h.has_addr);
    assert_ip(&h.src, "192.0.2.1", 56324);
    assert_ip(&h.dst, "198.51.100.7", 443);
    check_splits((const uint8_t *)v, sizeof(v) - 1, hl, (int)hl);
}

static void test_v1_tcp6_and_unknown(void **state)
{
    (void)state;
    static const char v6[] = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n";
    struct vrev__pp_header h;
    size_t need;
    assert_int_equal(parse(v6, sizeof(v6) - 1, &h, &need), (int)sizeof(v6) - 1);
    assert_ip(&h.src, "2001:db8::1", 1);
    assert_ip(&h.dst, "10.0.0.1", 65535); /* mapped: taken as IPv4 */
    check_splits((const uint8_t *)v6, sizeof(v6) - 1, sizeof(v6) - 1, (int)sizeof(v6) - 1);
    static const char u[] = "PROXY UNKNOWN\r\n";
    assert_int_equal(parse(u, sizeof(u) - 1, &h, &need), 15);
    assert_int_equal(h.version, 1);
    assert_false(h.has_addr);
    static const char u2[] = "PROXY UNKNOWN ffff:: ffff:: 1 2\r\nxyz";
    assert_int_equal(parse(u2, sizeof(u2) - 1, &h, &need), (int)sizeof(u2) - 4);
    assert_false(h.has_addr);
    check_splits((const uint8_t *)u2, sizeof(u2) - 1, sizeof(u2) - 4, (int)sizeof(u2) - 4);
    /* the longest there is: 104 bytes */
    static const char longest[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\n";
    assert_int_equal(parse(longest, sizeof(longest) - 1, &h, &need), (int)sizeof(longest) - 1);
}

static void test_v1_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\n",     /* no CR */
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 \r\n",  /* trailing space */
        "PROXY TCP4  192.0.2.1 198.51.100.7 56324 443\r\n",  /* two spaces */
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",       /* no port */
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 65536\r\n", /* port */
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 44a\r\n",   /* port */
        "PROXY TCP4 192.0.2 198.51.100.7 56324 443\r\n",     /* address */
        "PROXY TCP4 2001:db8::1 2001:db8::2 56324 443\r\n",  /* family */
        "PROXY TCP6 192.0.2.1 198.51.100.7 56324 443\r\n",   /* family */
        "PROXY UDP4 192.0.2.1 198.51.100.7 56324 443\r\n",   /* protocol */
        "PROXY UNKNOWNX\r\n",                                /* protocol */
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2 3\r\n",       /* extra field */
        "PROXY \r\n",                                        /* empty */
        "PROXY UNKNOWN a\rb\r\n",                            /* CR inside */
        "proxy TCP4 192.0.2.1 198.51.100.7 56324 443\r\n",   /* case */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vrev__pp_header h;
        size_t need;
        int rc = parse(bad[i], strlen(bad[i]), &h, &need);
        if (rc != VREV_ERR_PROXY_HEADER)
            fail_msg("accepted (%d): %s", rc, bad[i]);
    }
    /* no CRLF within 107 bytes: refused at 107, not before */
    char lng[200] = "PROXY UNKNOWN ";
    memset(lng + 14, 'a', sizeof(lng) - 14);
    struct vrev__pp_header h;
    size_t need;
    assert_int_equal(parse(lng, 106, &h, &need), 0);
    assert_int_equal(need, 107);
    assert_int_equal(parse(lng, 107, &h, &need), VREV_ERR_PROXY_HEADER);
    assert_int_equal(parse(lng, 200, &h, &need), VREV_ERR_PROXY_HEADER);
    /* a CRLF at 108 is too late */
    lng[106] = '\r';
    lng[107] = '\n';
    assert_int_equal(parse(lng, 108, &h, &need), VREV_ERR_PROXY_HEADER);
    lng[105] = '\r';
    lng[106] = '\n';
    assert_int_equal(parse(lng, 108, &h, &need), 107);
}

#define SIG "0d0a0d0a000d0a515549540a"

static void test_v2_tcp4_with_tlvs(void **state)
{
    (void)state;
    size_t n;
    /* PROXY, INET STREAM, len 12 + 7 (a NOOP TLV of 4 bytes, then an unknown one of 0) */
    uint8_t *v = tu_hex(SIG "21 11 0013 c0000201 c6336407 dc04 01bb"
                            "04 0004 00000000  ee 0000   474554",
                        &n);
    struct vrev__pp_header h;
    size_t need;
    assert_int_equal(parse(v, n, &h, &need), 16 + 19);
    assert_int_equal(h.version, 2);
    assert_true(h.has_addr);
    assert_ip(&h.src, "192.0.2.1", 56324);
    assert_ip(&h.dst, "198.51.100.7", 443);
    /* the address block is all it needs: TLVs are skipped unread */
    check_splits(v, n, 28, 35);
    free(v);
}

static void test_v2_tcp6_local_unix(void **state)
{
    (void)state;
    size_t n;
    uint8_t *v = tu_hex(SIG "21 21 0024 20010db8000000000000000000000001"
                            "00000000000000000000ffff0a000001 0050 1f90",
                        &n);
    struct vrev__pp_header h;
    size_t need;
    assert_int_equal(parse(v, n, &h, &need), 52);
    assert_ip(&h.src, "2001:db8::1", 80);
    assert_ip(&h.dst, "10.0.0.1", 8080);
    check_splits(v, n, 52, 52);
    free(v);
    /* LOCAL with an address block anyway: no address, the whole length skipped */
    v = tu_hex(SIG "20 11 000c c0000201 c6336407 dc04 01bb", &n);
    assert_int_equal(parse(v, n, &h, &need), 28);
    assert_false(h.has_addr);
    check_splits(v, n, 16, 28);
    free(v);
    v = tu_hex(SIG "20 00 0000", &n);
    assert_int_equal(parse(v, n, &h, &need), 16);
    assert_false(h.has_addr);
    free(v);
    /* UNIX: read, no address taken (the block is skipped, not needed) */
    v = tu_hex(SIG "21 31 00d8", &n);
    assert_int_equal(parse(v, n, &h, &need), 16 + 216);
    assert_false(h.has_addr);
    free(v);
    /* UNSPEC with PROXY: the connection's own address (no block) */
    v = tu_hex(SIG "21 00 0003 010203", &n);
    assert_int_equal(parse(v, n, &h, &need), 19);
    assert_false(h.has_addr);
    free(v);
}

static void test_v2_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        SIG "11 11 000c c0000201 c6336407 dc04 01bb", /* version 1 */
        SIG "22 11 000c c0000201 c6336407 dc04 01bb", /* command 2 */
        SIG "21 41 000c c0000201 c6336407 dc04 01bb", /* family 4 */
        SIG "21 13 000c c0000201 c6336407 dc04 01bb", /* transport 3 */
        SIG "21 11 000b c0000201 c6336407 dc04 01",   /* shorter than its block */
        SIG "21 21 000c c0000201 c6336407 dc04 01bb", /* INET6, 12 bytes */
        "0d0a0d0a000d0a515549540b 21 11 000c",        /* signature */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        uint8_t *v = tu_hex(bad[i], &n);
        struct vrev__pp_header h;
        size_t need;
        int rc = parse(v, n, &h, &need);
        if (rc != VREV_ERR_PROXY_HEADER)
            fail_msg("accepted (%d): vector %zu", rc, i);
        free(v);
    }
}

static void encode_check(int version, const char *src, uint16_t sp, const char *dst, uint16_t dp,
                         const char *want_hex_or_text)
{
    struct vrev__addr s, d;
    assert_int_equal(vrev__addr_from_text(&s, src, sp), 0);
    assert_int_equal(vrev__addr_from_text(&d, dst, dp), 0);
    uint8_t out[VREV_PP_V1_MAX];
    int n = vrev__pp_encode(out, sizeof(out), version, &s, &d);
    assert_true(n > 0);
    if (version == 1) {
        assert_int_equal((size_t)n, strlen(want_hex_or_text));
        assert_memory_equal(out, want_hex_or_text, (size_t)n);
    } else {
        size_t wn;
        uint8_t *w = tu_hex(want_hex_or_text, &wn);
        assert_int_equal((size_t)n, wn);
        assert_memory_equal(out, w, wn);
        free(w);
    }
    struct vrev__pp_header h;
    size_t need;
    assert_int_equal(parse(out, (size_t)n, &h, &need), n);
    assert_true(h.has_addr);
    assert_true(vrev__addr_equal(&h.src, &s));
    assert_true(vrev__addr_equal(&h.dst, &d));
    /* one byte short of room: refused, nothing promised */
    assert_int_equal(vrev__pp_encode(out, (size_t)n - 1, version, &s, &d), VREV_ERR_NOSPACE);
}

static void test_encode(void **state)
{
    (void)state;
    encode_check(1, "192.0.2.1", 56324, "198.51.100.7", 443,
                 "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
    encode_check(1, "2001:db8::1", 1, "2001:db8::2", 2,
                 "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
    encode_check(2, "192.0.2.1", 56324, "198.51.100.7", 443,
                 SIG "21 11 000c c0000201 c6336407 dc04 01bb");
    encode_check(2, "2001:db8::1", 80, "2001:db8::2", 8080,
                 SIG "21 21 0024 20010db8000000000000000000000001"
                     "20010db8000000000000000000000002 0050 1f90");
    /* families differ: both IPv6, the IPv4 one mapped (parsed back as IPv4) */
    struct vrev__addr s, d;
    vrev__addr_from_text(&s, "2001:db8::1", 5);
    vrev__addr_from_text(&d, "127.0.0.1", 6);
    uint8_t out[VREV_PP_V1_MAX];
    int n = vrev__pp_encode(out, sizeof(out), 1, &s, &d);
    assert_int_equal(n, (int)strlen("PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 5 6\r\n"));
    assert_memory_equal(out, "PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 5 6\r\n", (size_t)n);
    n = vrev__pp_encode(out, sizeof(out), 2, &s, &d);
    assert_int_equal(n, 52);
    assert_int_equal(out[13], 0x21);
    /* nothing known: UNKNOWN / LOCAL */
    n = vrev__pp_encode(out, sizeof(out), 1, NULL, &d);
    assert_int_equal(n, 15);
    assert_memory_equal(out, "PROXY UNKNOWN\r\n", 15);
    struct vrev__addr name;
    vrev__addr_from_text(&name, "example.com", 80);
    n = vrev__pp_encode(out, sizeof(out), 2, &name, &d);
    size_t wn;
    uint8_t *w = tu_hex(SIG "20 00 0000", &wn);
    assert_int_equal((size_t)n, wn);
    assert_memory_equal(out, w, wn);
    free(w);
    assert_int_equal(vrev__pp_encode(out, sizeof(out), 3, &s, &d), VREV_ERR_INVAL);
    assert_int_equal(vrev__pp_encode(out, 14, 1, NULL, NULL), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__pp_encode(out, 15, 2, NULL, NULL), VREV_ERR_NOSPACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6_and_unknown),
        cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_v2_tcp4_with_tlvs),
        cmocka_unit_test(test_v2_tcp6_local_unix),
        cmocka_unit_test(test_v2_bad),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
