/* lib/codec/mux_table and lib/crypto/siphash: SipHash-2-4 against the reference vectors of
 * its paper; a session's slot depends on the table's key, so ids a peer picks to share one
 * probe run under one key (which it cannot know) spread out under another; and a table with
 * a random key still finds, keeps and removes exactly what it should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/mux_table.h"
#include "crypto/siphash.h"
#include "testutil.h"

/* key 00 01 .. 0f, message 00 01 .. (n-1): the paper's appendix and its test-vector file */
static void test_siphash_vectors(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        uint64_t h;
    } v[] = {{0, 0x726fdb47dd0e0e31ull}, {1, 0x74f839c593dc67fdull}, {2, 0x0d6c8009d9a94f5aull},
             {7, 0xab0200f58b01d137ull}, {8, 0x93f5f5799a932462ull}, {15, 0xa129ca6149be45e5ull},
             {63, 0x958a324ceb064572ull}};
    struct vrev__siphash_key k = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    uint8_t m[64];
    for (int i = 0; i < 64; i++)
        m[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_true(vrev__siphash24(&k, m, v[i].n) == v[i].h);
}

/* The longest run of used slots (a lookup for an absent id may walk all of it). */
static uint32_t longest_run(const struct vrev__mux_table *t)
{
    uint32_t best = 0, run = 0;
    for (uint32_t i = 0; i < 2 * t->cap; i++) {
        run = t->slots[i & (t->cap - 1)].used ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

static void test_placement_depends_on_key(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct vrev__mux_table a = {0}, b = {0};
    a.keyed = b.keyed = true;
    a.key = (struct vrev__siphash_key){1, 2};
    b.key = (struct vrev__siphash_key){3, 4};
    /* the same id goes to different homes under different keys (for most ids) */
    unsigned differ = 0;
    for (uint32_t sid = 1; sid <= 1000; sid++)
        differ += vrev__mux_table_home(&a, (uint16_t)sid, 2048) !=
                  vrev__mux_table_home(&b, (uint16_t)sid, 2048);
    assert_true(differ > 990);
    /* 1000 ids that key a sends to 64 homes of a 2048-slot table: what an attacker who knew
     * the hash would send. Under key a they form one long run; under key b they spread. */
    uint16_t ids[1000];
    size_t n = 0;
    for (uint32_t sid = 1; sid <= 0xffff && n < 1000; sid++)
        if (vrev__mux_table_home(&a, (uint16_t)sid, 2048) < 64)
            ids[n++] = (uint16_t)sid;
    assert_int_equal(n, 1000);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(vrev__mux_table_insert(ctx, &a, ids[i], 1));
        assert_non_null(vrev__mux_table_insert(ctx, &b, ids[i], 1));
    }
    assert_int_equal(a.cap, 2048);
    assert_int_equal(b.cap, 2048);
    assert_true(longest_run(&a) >= 1000);
    assert_true(longest_run(&b) < 64);
    vrev__mux_table_free(ctx, &a);
    vrev__mux_table_free(ctx, &b);
    vrev_ctx_free(ctx);
}

/* Two tables keyed at random: their keys differ, and each keeps the same sessions. */
static void test_random_keys(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct vrev__mux_table t[2] = {{0}, {0}};
    for (int k = 0; k < 2; k++) {
        for (uint32_t sid = 1; sid <= 3000; sid++)
            vrev__mux_table_insert(ctx, &t[k], (uint16_t)(sid * 7), 1)->user =
                (void *)(uintptr_t)sid;
        for (uint32_t sid = 1; sid <= 3000; sid += 2)
            assert_true(vrev__mux_table_remove(&t[k], (uint16_t)(sid * 7)));
        assert_false(vrev__mux_table_remove(&t[k], 1));
        assert_int_equal(t[k].count, 1500);
        for (uint32_t sid = 1; sid <= 3000; sid++) {
            struct vrev__mux_session *s = vrev__mux_table_find(&t[k], (uint16_t)(sid * 7));
            if (sid % 2)
                assert_null(s);
            else
                assert_int_equal((uintptr_t)s->user, sid);
        }
    }
    assert_true(t[0].keyed && t[1].keyed);
    assert_false(t[0].key.k0 == t[1].key.k0 && t[0].key.k1 == t[1].key.k1);
    vrev__mux_table_free(ctx, &t[0]);
    vrev__mux_table_free(ctx, &t[1]);
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_placement_depends_on_key),
        cmocka_unit_test(test_random_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
