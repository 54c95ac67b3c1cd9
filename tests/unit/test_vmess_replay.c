/* lib/codec/vmess_replay: the bounded replay filter keeps every key for at least 240 s,
 * fails closed when a 120 s generation is full, survives clock jumps and allocation failures.
 * (The header reader's use of it is tested in test_vmess.c.) */
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

#define T0 1700000000

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

/* ---- replay filter ------------------------------------------------------------------------ */

static void key_of(uint8_t k[16], unsigned i)
{
    memset(k, 0, 16);
    for (int b = 0; b < 4; b++)
        k[b] = (uint8_t)(i >> (8 * b));
    k[14] = 0x5a; /* never the all-zero key, which has its own test */
    k[15] = (uint8_t)(i * 131u);
}

static void test_replay_filter_fail_closed(void **state)
{
    vrev_ctx *ctx = *state;
    struct vrev__vmess_replay *r;
    uint8_t k[16];
    assert_int_equal(vrev__vmess_replay_new(ctx, &r, 4), 0);
    for (unsigned i = 0; i < 4; i++) {
        key_of(k, i);
        assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + i), 0);
    }
    key_of(k, 4);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 10), VREV_ERR_VMESS_REPLAY_FULL);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 119), VREV_ERR_VMESS_REPLAY_FULL);
    key_of(k, 2);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 11), VREV_ERR_VMESS_REPLAY);
    /* a new generation takes new keys and still remembers the old ones */
    key_of(k, 4);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 120), 0);
    assert_int_equal(vrev__vmess_replay_count(r), 5);
    for (unsigned i = 0; i < 5; i++) {
        key_of(k, i);
        assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 239), VREV_ERR_VMESS_REPLAY);
    }
    /* keys added at T0.. are forgotten once their generation is two periods old (T0 + 360) */
    key_of(k, 0);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 359), VREV_ERR_VMESS_REPLAY);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 360), 0);
    /* a clock that goes back keeps everything */
    key_of(k, 4);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 - 5000), VREV_ERR_VMESS_REPLAY);
    /* a jump far ahead forgets everything at once */
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 100000), 0);
    assert_int_equal(vrev__vmess_replay_count(r), 1);
    vrev__vmess_replay_free(r);
    vrev__vmess_replay_free(NULL);
    assert_int_equal(vrev__vmess_replay_new(ctx, &r, 0), VREV_ERR_INVAL);
}

/* Many keys: every one is remembered for 240 s, the table grows, the all-zero key works. */
static void test_replay_filter_retention(void **state)
{
    vrev_ctx *ctx = *state;
    struct vrev__vmess_replay *r;
    const unsigned n = 3000;
    uint8_t k[16];
    assert_int_equal(vrev__vmess_replay_new(ctx, &r, n), 0);
    for (unsigned i = 0; i < n; i++) {
        key_of(k, i);
        assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + (int64_t)(i % 120)), 0);
    }
    memset(k, 0, 16);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 130), 0);
    assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + 131), VREV_ERR_VMESS_REPLAY);
    /* added at T0 .. T0 + 119: all still known at T0 + 120 .. T0 + 359 */
    for (int64_t dt = 120; dt < 360; dt += 60)
        for (unsigned i = 0; i < n; i += 7) {
            key_of(k, i);
            assert_int_equal(vrev__vmess_replay_check_add(r, k, T0 + dt), VREV_ERR_VMESS_REPLAY);
        }
    vrev__vmess_replay_free(r);
}

static void test_replay_filter_alloc_failure(void **state)
{
    (void)state;
    for (unsigned fail = 1; fail < 40; fail++) {
        struct tu_failing_alloc fa = {fail, 0, 0};
        vrev_allocator a;
        vrev_ctx *ctx;
        tu_failing_allocator(&a, &fa);
        fa.fail_at = 0;
        assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
        fa.fail_at = fail + fa.calls;
        struct vrev__vmess_replay *r = NULL;
        int rc = vrev__vmess_replay_new(ctx, &r, 100);
        uint8_t k[16];
        for (unsigned i = 0; rc == 0 && i < 100; i++) {
            key_of(k, i);
            int x = vrev__vmess_replay_check_add(r, k, T0);
            assert_true(x == 0 || x == VREV_ERR_NOMEM);
            if (x == 0)
                assert_int_equal(vrev__vmess_replay_check_add(r, k, T0), VREV_ERR_VMESS_REPLAY);
        }
        vrev__vmess_replay_free(r);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_filter_fail_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_filter_retention, setup, teardown),
        cmocka_unit_test(test_replay_filter_alloc_failure),
    };
    return cmocka_run_group_tests_name("vmess_replay", tests, NULL, NULL);
}
