/* Log rate limits (vrev_ctx_set_log_rate): per component, a burst then a steady rate; what is
 * dropped is counted in the next line; debug lines are never limited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/core.h"
#include "testutil.h"

struct seen {
    int lines[3]; /* per component a, b, c */
    int notes;    /* "(N more lines ...)" */
    unsigned long long noted;
};

static void keep(int level, const char *component, const char *message, void *user)
{
    (void)level;
    struct seen *s = user;
    unsigned long long n;
    if (sscanf(message, "(%llu more lines of this kind were not logged)", &n) == 1) {
        s->notes++;
        s->noted += n;
        return;
    }
    s->lines[component[0] - 'a']++;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_burst_then_rate(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    vrev_ctx_set_log(ctx, VREV_LOG_DEBUG, keep, &s);
    for (int i = 0; i < 50; i++)
        vrev__log(ctx, VREV_LOG_WARN, "a", "refused %d", i);
    assert_int_equal(s.lines[0], VREV_LOG_BURST_DEFAULT); /* the burst, then nothing */
    for (int i = 0; i < 5; i++) /* another component has a bucket of its own */
        vrev__log(ctx, VREV_LOG_INFO, "b", "line %d", i);
    assert_int_equal(s.lines[1], 5);
    for (int i = 0; i < 100; i++) /* debug lines are never limited */
        vrev__log(ctx, VREV_LOG_DEBUG, "c", "line %d", i);
    assert_int_equal(s.lines[2], 100);
    nap_ms(250); /* 10 a second: two or three lines' worth (more if the nap ran long) */
    for (int i = 0; i < 30; i++)
        vrev__log(ctx, VREV_LOG_WARN, "a", "refused again %d", i);
    assert_true(s.lines[0] >= VREV_LOG_BURST_DEFAULT + 2 &&
                s.lines[0] <= VREV_LOG_BURST_DEFAULT + 10);
    assert_int_equal(s.notes, 1); /* once, before the first line written after the drops */
    assert_int_equal(s.noted, 50 - VREV_LOG_BURST_DEFAULT);
    vrev_ctx_free(ctx);
}

static void test_unlimited_and_many_components(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    vrev_ctx_set_log(ctx, VREV_LOG_INFO, keep, &s);
    vrev_ctx_set_log_rate(ctx, 0, 0);
    for (int i = 0; i < 500; i++)
        vrev__log(ctx, VREV_LOG_ERROR, "a", "line %d", i);
    assert_int_equal(s.lines[0], 500);
    /* Rate 1, burst 3: as many components as there are buckets each get their burst and no
     * more (the table full, none taken over). */
    vrev_ctx_set_log_rate(ctx, 1, 3);
    char name[24];
    for (int round = 0; round < 10; round++)
        for (int c = 0; c < VREV__LOG_BUCKETS; c++) {
            snprintf(name, sizeof(name), "b-component-%d", c);
            vrev__log(ctx, VREV_LOG_WARN, name, "x");
        }
    assert_int_equal(s.lines[1], 3 * VREV__LOG_BUCKETS);
    /* More components than buckets, in turn: each line finds its bucket taken over by then
     * (the least recently used goes) and starts a fresh burst, so every line is written. */
    s.lines[1] = 0;
    for (int round = 0; round < 3; round++)
        for (int c = 0; c < 40; c++) {
            snprintf(name, sizeof(name), "b-other-%d", c);
            vrev__log(ctx, VREV_LOG_WARN, name, "x");
        }
    assert_int_equal(s.lines[1], 3 * 40);
    /* ... and a bucket taken over still limits: the burst, then nothing. */
    s.lines[1] = 0;
    for (int i = 0; i < 10; i++)
        vrev__log(ctx, VREV_LOG_WARN, "b-other-0", "x");
    assert_int_equal(s.lines[1], 3);
    /* no line has been written after drops yet: no "(N more lines ...)" */
    assert_int_equal(s.notes, 0);
    vrev_ctx_set_log_rate(NULL, 1, 1); /* no-op */
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_unlimited_and_many_components),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
