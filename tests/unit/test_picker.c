/* Several servers and users on one outbound (lib/proxy/picker.c): consecutive entries of one
 * server are its users; servers are used in turn, a user of the server at random. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/proxy.h"
#include "testutil.h"

struct entry {
    struct vrev__addr server; /* first, as the picker wants */
    int user;
};

static void set(struct entry *e, const char *host, uint16_t port, int user)
{
    assert_int_equal(vrev__addr_from_text(&e->server, host, port), 0);
    e->user = user;
}

static void test_in_turn_with_random_users(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct entry e[6];
    set(&e[0], "127.0.0.1", 1000, 0); /* server A: users 0, 1, 2 */
    set(&e[1], "127.0.0.1", 1000, 1);
    set(&e[2], "127.0.0.1", 1000, 2);
    set(&e[3], "127.0.0.1", 2000, 3);    /* server B: user 3 */
    set(&e[4], "example.test", 1000, 4); /* server C: user 4 */
    set(&e[5], "127.0.0.1", 1000, 5);    /* A again, listed apart: a server of its own */
    struct vrev__picker p;
    assert_int_equal(vrev__picker_init(&p, ctx, e, 6, sizeof(e[0])), 0);
    assert_int_equal(p.n_servers, 4);
    int seen[6] = {0};
    for (int round = 0; round < 200; round++) {
        size_t a = vrev__picker_pick(&p), b = vrev__picker_pick(&p);
        size_t c = vrev__picker_pick(&p), d = vrev__picker_pick(&p);
        assert_true(a <= 2); /* in turn: A, B, C, A' */
        assert_int_equal(b, 3);
        assert_int_equal(c, 4);
        assert_int_equal(d, 5);
        seen[a]++;
    }
    for (int u = 0; u < 3; u++) /* each of A's users is picked (200 draws of 3) */
        assert_true(seen[u] > 20);
    vrev__picker_cleanup(&p, ctx);
    assert_int_equal(vrev__picker_init(&p, ctx, e, 0, sizeof(e[0])), VREV_ERR_INVAL);
    vrev_ctx_free(ctx);
}

static void test_one_entry(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct entry e;
    set(&e, "::1", 443, 0);
    struct vrev__picker p;
    assert_int_equal(vrev__picker_init(&p, ctx, &e, 1, sizeof(e)), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(vrev__picker_pick(&p), 0);
    vrev__picker_cleanup(&p, ctx);
    vrev_ctx_free(ctx);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    struct tu_failing_alloc fa = {2, 0, 0}; /* the ctx, then the picker's table */
    vrev_allocator a;
    tu_failing_allocator(&a, &fa);
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
    struct entry e;
    set(&e, "127.0.0.1", 1, 0);
    struct vrev__picker p;
    assert_int_equal(vrev__picker_init(&p, ctx, &e, 1, sizeof(e)), VREV_ERR_NOMEM);
    vrev_ctx_free(ctx);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_turn_with_random_users),
        cmocka_unit_test(test_one_entry),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests_name("picker", tests, NULL, NULL);
}
