/* lib/codec/control: the reverse Control protobuf, against WIRE-SPEC §3.3/§10.9 and the
 * heartbeats and DRAIN captured from V2Ray 4.34. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "vrev.h"

static void expect_encoding(int st, const char *random_hex, const char *want_hex)
{
    size_t rlen, wlen;
    uint8_t *random = tu_hex(random_hex, &rlen);
    uint8_t *want = tu_hex(want_hex, &wlen);
    uint8_t out[128];
    int n = vrev_control_encode(out, sizeof(out), st, rlen ? random : NULL, rlen);
    assert_int_equal(n, (int)wlen);
    assert_memory_equal(out, want, wlen);
    int got = -1;
    assert_int_equal(vrev_control_decode(out, (size_t)n, &got), 0);
    assert_int_equal(got, st);
    free(random);
    free(want);
}

static void test_hand_vectors(void **state)
{
    (void)state;
    expect_encoding(VREV_CONTROL_ACTIVE, "1112131415161718", "9a06081112131415161718");
    expect_encoding(VREV_CONTROL_DRAIN, "deadbeef", "08019a0604deadbeef");
    expect_encoding(VREV_CONTROL_DRAIN, "", "0801");
    expect_encoding(VREV_CONTROL_ACTIVE, "", ""); /* empty: V2Ray drops such a heartbeat */
}

static void test_captured_drain(void **state)
{
    (void)state;
    size_t n;
    uint8_t *m = tu_hex("08019a062ebe0b5774732c8c6082bdadfebc491122f876a0b493741cc5134229a6e4"
                        "25cb255b122f6a62cf297807b413d9a27d",
                        &n);
    int st = -1;
    assert_int_equal(vrev_control_decode(m, n, &st), 0);
    assert_int_equal(st, VREV_CONTROL_DRAIN);
    assert_string_equal(vrev_control_state_name(st), "DRAIN");
    free(m);
}

/* Walk a captured portal->bridge stream and decode every control-session payload. */
struct walk {
    int heartbeats;
    int drains;
    int last;
};

static int on_frame(vrev_mux *m, const vrev_mux_frame *f, void *user)
{
    (void)m;
    struct walk *w = user;
    size_t len;
    const uint8_t *d = vrev_mux_frame_data(f, &len);
    if (vrev_mux_frame_sid(f) != 1 || !d || vrev_mux_frame_status(f) == VREV_MUX_END)
        return 0;
    int st = -1;
    assert_int_equal(vrev_control_decode(d, len, &st), 0);
    w->heartbeats++;
    if (st == VREV_CONTROL_DRAIN)
        w->drains++;
    w->last = st;
    return 0;
}

static struct walk walk_capture(const char *path)
{
    struct walk w = {0, 0, -1};
    size_t n;
    uint8_t *raw = tu_load(path, &n);
    vrev_ctx *ctx;
    vrev_mux *m;
    vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI, .on_frame = on_frame};
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    assert_int_equal(vrev_mux_new(&m, ctx, VREV_MUX_SERVER, &cb, &w), 0);
    assert_int_equal(vrev_mux_feed(m, raw + 12, n - 12, NULL), 0); /* after SOCKS5 bytes */
    vrev_mux_free(m);
    vrev_ctx_free(ctx);
    free(raw);
    return w;
}

static void test_captured_heartbeats(void **state)
{
    (void)state;
    struct walk a = walk_capture("v2ray-4.34/A-basic/conn1.down.bin");
    assert_int_equal(a.heartbeats, 4); /* in the New frame, then at t+2, t+4, t+6 s */
    assert_int_equal(a.drains, 0);
    struct walk b = walk_capture("v2ray-4.34/B-drain/conn1.down.bin");
    assert_true(b.heartbeats >= 2);
    assert_int_equal(b.drains, 1);
    assert_int_equal(b.last, VREV_CONTROL_DRAIN);
    struct walk c = walk_capture("v2ray-4.34/B-drain/conn2.down.bin");
    assert_int_equal(c.drains, 0);
    assert_true(c.heartbeats >= 1);
}

static int decode_hex(const char *hex, int *st)
{
    size_t n;
    uint8_t *m = tu_hex(hex, &n);
    int rc = vrev_control_decode(m, n, st);
    free(m);
    return rc;
}

static void test_decoder_rules(void **state)
{
    (void)state;
    int st = -1;
    /* unknown fields of every skippable wire type, and the last state wins */
    assert_int_equal(decode_hex("0801 1005 190102030405060708 220161 2d01020304 0800", &st), 0);
    assert_int_equal(st, VREV_CONTROL_ACTIVE);
    assert_int_equal(decode_hex("0802", &st), 0);
    assert_int_equal(st, 2); /* not ACTIVE: a bridge treats it as inactive */
    assert_int_equal(decode_hex("08ffffffffffffffffff01", &st), 0); /* 10-byte varint */
    assert_int_equal(st, INT32_MAX);
    /* state with a non-varint wire type is an unknown field, skipped */
    assert_int_equal(decode_hex("0a0101", &st), 0);
    assert_int_equal(st, VREV_CONTROL_ACTIVE);
    assert_int_equal(decode_hex("08ffffffffffffffffff02", &st), VREV_ERR_PROTO_VARINT);
    assert_int_equal(decode_hex("08ffffffffffffffffffff01", &st), VREV_ERR_PROTO_VARINT);
    assert_int_equal(decode_hex("08", &st), VREV_ERR_PROTO_VARINT);
    assert_int_equal(decode_hex("0880", &st), VREV_ERR_PROTO_VARINT);
    assert_int_equal(decode_hex("9a0605dead", &st), VREV_ERR_PROTO_TRUNCATED);
    assert_int_equal(decode_hex("9a06ffffffff0f", &st), VREV_ERR_PROTO_TRUNCATED);
    assert_int_equal(decode_hex("1901", &st), VREV_ERR_PROTO_TRUNCATED);
    assert_int_equal(decode_hex("2d01", &st), VREV_ERR_PROTO_TRUNCATED);
    assert_int_equal(decode_hex("0b", &st), VREV_ERR_PROTO_WIRETYPE); /* group start */
    assert_int_equal(decode_hex("0e", &st), VREV_ERR_PROTO_WIRETYPE);
    assert_int_equal(decode_hex("0001", &st), VREV_ERR_PROTO_WIRETYPE); /* field 0 */
    uint8_t big[VREV_CONTROL_MAX + 1] = {0};
    assert_int_equal(vrev_control_decode(big, sizeof(big), &st), VREV_ERR_PROTO_TOO_LARGE);
    assert_int_equal(vrev_control_decode(NULL, 0, &st), 0);
    assert_int_equal(vrev_control_decode(big, 1, NULL), VREV_ERR_INVAL);
}

static void test_encoder_limits(void **state)
{
    (void)state;
    uint8_t random[200], out[300];
    memset(random, 0x5a, sizeof(random));
    /* a 200-byte random field needs a two-byte length varint */
    int n = vrev_control_encode(out, sizeof(out), VREV_CONTROL_DRAIN, random, 200);
    assert_int_equal(n, 2 + 2 + 2 + 200);
    assert_memory_equal(out, "\x08\x01\x9a\x06\xc8\x01", 6);
    assert_int_equal(vrev_control_encode(out, 10, VREV_CONTROL_DRAIN, random, 200),
                     VREV_ERR_NOSPACE);
    assert_int_equal(vrev_control_encode(out, sizeof(out), -1, NULL, 0), VREV_ERR_INVAL);
    assert_int_equal(vrev_control_encode(out, sizeof(out), 0, NULL, 3), VREV_ERR_INVAL);
    static uint8_t huge[VREV_CONTROL_MAX];
    assert_int_equal(vrev_control_encode(out, sizeof(out), 0, huge, sizeof(huge)),
                     VREV_ERR_PROTO_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_vectors),        cmocka_unit_test(test_captured_drain),
        cmocka_unit_test(test_captured_heartbeats), cmocka_unit_test(test_decoder_rules),
        cmocka_unit_test(test_encoder_limits),
    };
    return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
