/* lib/codec/vmess_response: the AEAD response header against WIRE-SPEC §10.5 byte for byte
 * (keys, intermediate KDF outputs, the 38 bytes), the client reader at every split, a wrong
 * authenticator V and every 1-bit flip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/vmess.h"
#include "testutil.h"
#include "vrev.h"

static void expect_hex(const uint8_t *got, size_t len, const char *hex)
{
    size_t n;
    uint8_t *want = tu_hex(hex, &n);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    free(want);
}

static int setup(void **state)
{
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    vrev_ctx_free(*state);
    return 0;
}

/* ---- §10.5 response header ---------------------------------------------------------------- */

static const char response_hex[] =
    "9bdfb1639712b6a6348d0087b8d1af379ecf68afb5ebda5d6e4dc9c0f1e136aaf13fa36c72e1";

/* For the §10.4 request: body IV 00..0f, body key 10..1f. */
static void response_keys(uint8_t key[16], uint8_t iv[16])
{
    uint8_t req_iv[16], req_key[16];
    for (int i = 0; i < 16; i++) {
        req_iv[i] = (uint8_t)i;
        req_key[i] = (uint8_t)(16 + i);
    }
    assert_int_equal(vrev__vmess_response_keys(req_key, req_iv, key, iv), 0);
}

static void test_response_vector(void **state)
{
    vrev_ctx *ctx = *state;
    uint8_t key[16], iv[16], out[64];
    response_keys(key, iv);
    expect_hex(key, 16, "fc2e2c73072bfa2bda03ff9307472deb");
    expect_hex(iv, 16, "be45cb2605bf36bebde684841a28f0fd");
    assert_int_equal(vrev__vmess_response_seal(ctx, key, iv, 0x5a, out, sizeof(out)), 38);
    expect_hex(out, 38, response_hex);
    assert_int_equal(vrev__vmess_response_seal(ctx, key, iv, 0x5a, out, 37), VREV_ERR_NOSPACE);
    /* the intermediate keys of §10.5 */
    struct vrev__iov s[4] = {
        VREV_VMESS_SALT("AEAD Resp Header Len Key"), VREV_VMESS_SALT("AEAD Resp Header Len IV"),
        VREV_VMESS_SALT("AEAD Resp Header Key"), VREV_VMESS_SALT("AEAD Resp Header IV")};
    const char *want[4] = {"1924d3bc33b00e264bafae855349732f", "a1ef50805a0ef8cb041cd3b6",
                           "450a4332c55d2ca12599d711c3176af2", "a910cf077b787585681a4ff1"};
    for (int i = 0; i < 4; i++) {
        uint8_t k[32];
        assert_int_equal(vrev__vmess_kdf(i % 2 ? iv : key, 16, &s[i], 1, k), 0);
        expect_hex(k, strlen(want[i]) / 2, want[i]);
    }
}

static void test_response_reader(void **state)
{
    vrev_ctx *ctx = *state;
    uint8_t key[16], iv[16];
    response_keys(key, iv);
    size_t n;
    uint8_t *hex = tu_hex(response_hex, &n);
    uint8_t in[38 + 3];
    memcpy(in, hex, 38);
    memcpy(in + 38, "\x93\xab\x00", 3);
    free(hex);
    for (size_t cut = 0; cut <= sizeof(in); cut++) {
        struct vrev__vmess_resp_reader r;
        vrev__vmess_resp_reader_init(&r, ctx, key, iv, 0x5a);
        uint8_t *a = tu_dup(in, cut), *b = tu_dup(in + cut, sizeof(in) - cut);
        size_t u1, u2 = 0;
        int rc = vrev__vmess_resp_reader_feed(&r, a, cut, &u1);
        if (cut < 38) {
            assert_int_equal(rc, 0);
            rc = vrev__vmess_resp_reader_feed(&r, b, sizeof(in) - cut, &u2);
        }
        assert_int_equal(rc, 1);
        assert_int_equal(u1 + u2, 38);
        free(a);
        free(b);
    }
    /* wrong V, and every bit flip */
    struct vrev__vmess_resp_reader r;
    size_t used;
    vrev__vmess_resp_reader_init(&r, ctx, key, iv, 0x5b);
    assert_int_equal(vrev__vmess_resp_reader_feed(&r, in, 38, &used), VREV_ERR_VMESS_RESPONSE);
    assert_int_equal(vrev__vmess_resp_reader_feed(&r, in, 38, &used), VREV_ERR_VMESS_RESPONSE);
    for (size_t bit = 0; bit < 38 * 8; bit++) {
        in[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        vrev__vmess_resp_reader_init(&r, ctx, key, iv, 0x5a);
        int rc = vrev__vmess_resp_reader_feed(&r, in, 38, &used);
        in[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        /* a flip in the length may leave the reader waiting for more; never success */
        assert_true(rc == VREV_ERR_VMESS_RESPONSE || rc == 0);
    }
    vrev__vmess_resp_reader_wipe(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_response_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_reader, setup, teardown),
    };
    return cmocka_run_group_tests_name("vmess_response", tests, NULL, NULL);
}
