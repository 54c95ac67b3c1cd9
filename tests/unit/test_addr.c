/* lib/codec/addr: the port-first address codec and its V2Ray reading rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/addr.h"
#include "testutil.h"
#include "vrev.h"

static int decode_hex(const char *hex, struct vrev__addr *a, size_t *used)
{
    size_t n;
    uint8_t *b = tu_hex(hex, &n);
    int rc = vrev__addr_decode(b, n, a, used);
    free(b);
    return rc;
}

static void test_decode_types(void **state)
{
    (void)state;
    struct vrev__addr a;
    size_t used;
    char text[300];
    assert_int_equal(decode_hex("0050 01 7f000001", &a, &used), 0);
    assert_int_equal(used, 7);
    assert_int_equal(a.type, VREV_ADDR_IPV4);
    assert_int_equal(a.port, 80);
    assert_int_equal(vrev__addr_target_text(&a, text, sizeof(text)), 12);
    assert_string_equal(text, "127.0.0.1:80");

    assert_int_equal(decode_hex("0035 03 00000000000000000000000000000001", &a, &used), 0);
    assert_int_equal(used, 19);
    assert_int_equal(a.type, VREV_ADDR_IPV6);
    vrev__addr_target_text(&a, text, sizeof(text));
    assert_string_equal(text, "[::1]:53");
    vrev__addr_host_text(&a, text, sizeof(text));
    assert_string_equal(text, "::1");

    assert_int_equal(decode_hex("0000 02 0e 746573742e7632666c792e6f7267", &a, &used), 0);
    assert_int_equal(used, 18);
    assert_int_equal(a.type, VREV_ADDR_DOMAIN);
    vrev__addr_target_text(&a, text, sizeof(text));
    assert_string_equal(text, "test.v2fly.org:0");
}

static void test_decode_normalises_like_v2ray(void **state)
{
    (void)state;
    struct vrev__addr a;
    size_t used;
    char text[64];
    /* a "domain" that is an IP literal is that IP */
    assert_int_equal(decode_hex("0050 02 09 3132372e302e302e31", &a, &used), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV4);
    assert_int_equal(used, 13);
    /* bracketed IPv6 literal as a domain */
    assert_int_equal(decode_hex("0050 02 05 5b3a3a315d", &a, &used), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV6);
    /* IPv4-mapped IPv6 becomes IPv4 */
    assert_int_equal(decode_hex("0050 03 00000000000000000000ffff0a000001", &a, &used), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV4);
    vrev__addr_host_text(&a, text, sizeof(text));
    assert_string_equal(text, "10.0.0.1");
    /* digits first but not an IP: still a valid domain */
    assert_int_equal(decode_hex("0050 02 07 3132332e636f6d", &a, &used), 0);
    assert_int_equal(a.type, VREV_ADDR_DOMAIN);
}

static void test_decode_errors(void **state)
{
    (void)state;
    struct vrev__addr a;
    size_t used;
    assert_int_equal(decode_hex("0050 00 7f000001", &a, &used), VREV_ERR_ADDR_TYPE);
    assert_int_equal(decode_hex("0050 04 7f000001", &a, &used), VREV_ERR_ADDR_TYPE);
    assert_int_equal(decode_hex("0050 ff 7f000001", &a, &used), VREV_ERR_ADDR_TYPE);
    assert_int_equal(decode_hex("0050 02 00", &a, &used), VREV_ERR_ADDR_DOMAIN);
    assert_int_equal(decode_hex("0050 02 03 612062", &a, &used), VREV_ERR_ADDR_DOMAIN);
    assert_int_equal(decode_hex("0050 02 03 61ff62", &a, &used), VREV_ERR_ADDR_DOMAIN);
    assert_int_equal(decode_hex("0050 02 04 616263", &a, &used), VREV_ERR_ADDR_TRUNCATED);
    assert_int_equal(decode_hex("0050 01 7f0000", &a, &used), VREV_ERR_ADDR_TRUNCATED);
    assert_int_equal(decode_hex("0050 03 00", &a, &used), VREV_ERR_ADDR_TRUNCATED);
    assert_int_equal(decode_hex("0050", &a, &used), VREV_ERR_ADDR_TRUNCATED);
    assert_int_equal(decode_hex("0050 02", &a, &used), VREV_ERR_ADDR_TRUNCATED);
}

static void test_domain_lengths(void **state)
{
    (void)state;
    struct vrev__addr a, b;
    char name[257];
    memset(name, 'a', sizeof(name));
    name[255] = '\0';
    assert_int_equal(vrev__addr_from_text(&a, name, 443), 0);
    assert_int_equal(a.len, 255);
    uint8_t out[3 + 1 + 255];
    assert_int_equal(vrev__addr_encode(&a, out, sizeof(out)), 259);
    assert_int_equal(vrev__addr_encode(&a, out, sizeof(out) - 1), VREV_ERR_NOSPACE);
    size_t used;
    assert_int_equal(vrev__addr_decode(out, sizeof(out), &b, &used), 0);
    assert_true(vrev__addr_equal(&a, &b));
    name[255] = 'a';
    name[256] = '\0';
    assert_int_equal(vrev__addr_from_text(&a, name, 443), VREV_ERR_ADDR_DOMAIN);
    assert_int_equal(vrev__addr_from_text(&a, "", 443), VREV_ERR_ADDR_DOMAIN);
}

static void test_from_text(void **state)
{
    (void)state;
    struct vrev__addr a;
    char text[64];
    assert_int_equal(vrev__addr_from_text(&a, "::1", 53), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV6);
    assert_int_equal(vrev__addr_from_text(&a, "[2001:db8::5]", 53), 0);
    vrev__addr_target_text(&a, text, sizeof(text));
    assert_string_equal(text, "[2001:db8::5]:53");
    assert_int_equal(vrev__addr_from_text(&a, "::ffff:1.2.3.4", 1), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV4);
    assert_int_equal(vrev__addr_from_text(&a, "1.2.3.4", 1), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV4);
    assert_int_equal(vrev__addr_from_text(&a, "Example-host_1.COM", 1), 0);
    assert_int_equal(a.type, VREV_ADDR_DOMAIN);
    assert_int_equal(vrev__addr_from_text(&a, "bad:addr", 1), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_text(&a, "[::1", 1), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_text(&a, "a/b", 1), VREV_ERR_ADDR_DOMAIN);
    assert_int_equal(vrev__addr_from_text(NULL, "a", 1), VREV_ERR_INVAL);
    assert_int_equal(vrev__addr_from_text(&a, "example.com", 1), 0);
    assert_int_equal(vrev__addr_target_text(&a, text, 13), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__addr_target_text(&a, text, 14), 13);
}

static void test_from_hostport(void **state)
{
    (void)state;
    struct vrev__addr a;
    char text[64];
    assert_int_equal(vrev__addr_from_hostport(&a, "127.0.0.1:80"), 0);
    vrev__addr_target_text(&a, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:80");
    assert_int_equal(vrev__addr_from_hostport(&a, "[::1]:8080"), 0);
    assert_int_equal(a.type, VREV_ADDR_IPV6);
    assert_int_equal(a.port, 8080);
    assert_int_equal(vrev__addr_from_hostport(&a, "example.com:65535"), 0);
    assert_int_equal(a.type, VREV_ADDR_DOMAIN);
    assert_int_equal(vrev__addr_from_hostport(&a, "example.com:65536"), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_hostport(&a, "example.com"), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_hostport(&a, "example.com:"), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_hostport(&a, ":80"), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_hostport(&a, "::1:80"), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_hostport(&a, "a:8x"), VREV_ERR_ADDR_SYNTAX);
    assert_int_equal(vrev__addr_from_hostport(&a, "a b:80"), VREV_ERR_ADDR_DOMAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_types),  cmocka_unit_test(test_decode_normalises_like_v2ray),
        cmocka_unit_test(test_decode_errors), cmocka_unit_test(test_domain_lengths),
        cmocka_unit_test(test_from_text),     cmocka_unit_test(test_from_hostport),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
