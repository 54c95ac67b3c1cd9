/* vrev_ctx_post: functions posted from other threads (and from the loop's own) run in the
 * context's loop, each exactly once, in order per thread; the wake-up's descriptors are the
 * context's and closed with it; queued posts are dropped by vrev_ctx_free; the context's
 * allocator is never called from a posting thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "testutil.h"
#include "vrev.h"

#define THREADS 4
#define POSTS 5000

static char post_failed[] = "post failed";

struct item {
    struct run *run;
    unsigned thread, seq;
    unsigned ran; /* times fn ran with it */
};

struct run {
    vrev_ctx *ctx;
    struct item items[THREADS][POSTS];
    unsigned next[THREADS]; /* the seq each thread's next item must have */
    unsigned total, out_of_order;
    atomic_uint threads_done;
    pthread_t loop_thread;
    unsigned wrong_thread;
};

static void stop(void *ctx)
{
    vrev_ctx_stop(ctx);
}

static void count(void *arg)
{
    struct item *it = arg;
    struct run *r = it->run;
    if (!pthread_equal(pthread_self(), r->loop_thread))
        r->wrong_thread++;
    if (it->seq != r->next[it->thread])
        r->out_of_order++;
    r->next[it->thread] = it->seq + 1;
    it->ran++;
    r->total++;
}

struct poster {
    struct run *run;
    unsigned thread;
};

static void *post_all(void *arg)
{
    struct poster *p = arg;
    struct run *r = p->run;
    for (unsigned i = 0; i < POSTS; i++) {
        struct item *it = &r->items[p->thread][i];
        it->run = r;
        it->thread = p->thread;
        it->seq = i;
        if (vrev_ctx_post(r->ctx, count, it) != 0)
            return (void *)post_failed;
        if (i % 512 == 0) /* let the loop take the queue in the middle of a burst, too */
            sched_yield();
    }
    /* the last one to finish posts the stop: after every other post of every thread */
    if (atomic_fetch_add(&r->threads_done, 1) == THREADS - 1 &&
        vrev_ctx_post(r->ctx, stop, r->ctx) != 0)
        return (void *)post_failed;
    return NULL;
}

static void test_threads_post(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    struct event_base *bare = event_base_new(); /* what libevent's loop alone holds */
    int loop_fds = tu_count_fds() - fds;
    event_base_free(bare);
    struct run *r = calloc(1, sizeof(*r));
    struct tu_failing_alloc fa = {0, 0, 0};
    vrev_allocator a;
    tu_failing_allocator(&a, &fa);
    assert_int_equal(vrev_ctx_new_loop(&r->ctx, &a), 0);
    assert_int_equal(tu_count_fds(), fds + loop_fds + 1); /* and the wake-up's eventfd */
    unsigned calls = fa.calls;
    r->loop_thread = pthread_self();
    struct poster p[THREADS];
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        p[i] = (struct poster){r, i};
        assert_int_equal(pthread_create(&t[i], NULL, post_all, &p[i]), 0);
    }
    assert_int_equal(vrev_ctx_run(r->ctx, -1), 0); /* until the stop posted last */
    for (unsigned i = 0; i < THREADS; i++) {
        void *res;
        pthread_join(t[i], &res);
        assert_null(res);
    }
    assert_int_equal(r->total, THREADS * POSTS);
    assert_int_equal(r->out_of_order, 0);
    assert_int_equal(r->wrong_thread, 0);
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned j = 0; j < POSTS; j++)
            assert_int_equal(r->items[i][j].ran, 1);
    assert_int_equal(fa.calls, calls); /* the context's allocator: not once for the posts */
    vrev_ctx_free(r->ctx);
    assert_int_equal(fa.live, 0);
    assert_int_equal(tu_count_fds(), fds);
    free(r);
}

struct order {
    vrev_ctx *ctx;
    char seen[8];
    size_t n;
};

static void mark_c(void *arg)
{
    struct order *o = arg;
    o->seen[o->n++] = 'c';
}

static void mark_a(void *arg)
{
    struct order *o = arg;
    o->seen[o->n++] = 'a';
    /* from inside a posted function: after what was queued already */
    assert_int_equal(vrev_ctx_post(o->ctx, mark_c, o), 0);
    assert_int_equal(o->n, 1); /* not run inside the call */
}

static void mark_b(void *arg)
{
    struct order *o = arg;
    o->seen[o->n++] = 'b';
}

/* Posts from the loop's own thread: never run inside vrev_ctx_post, in order, and a post made
 * by a posted function runs after those queued before it. */
static void test_loop_thread_posts(void **state)
{
    (void)state;
    struct order o = {0};
    assert_int_equal(vrev_ctx_new_loop(&o.ctx, NULL), 0);
    assert_int_equal(vrev_ctx_post(o.ctx, mark_a, &o), 0);
    assert_int_equal(vrev_ctx_post(o.ctx, mark_b, &o), 0);
    assert_int_equal(o.n, 0);
    for (int i = 0; i < 10 && o.n < 3; i++)
        assert_int_equal(vrev_ctx_run(o.ctx, 0), 0);
    assert_int_equal(o.n, 3);
    assert_memory_equal(o.seen, "abc", 3);
    vrev_ctx_free(o.ctx);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *stop_later(void *ctx)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return vrev_ctx_post(ctx, stop, ctx) == 0 ? NULL : (void *)post_failed;
}

/* A loop with nothing else to do waits (it does not return for lack of work) until another
 * thread posts the stop. */
static void test_stop_from_another_thread(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    pthread_t t;
    int64_t t0 = now_ms();
    assert_int_equal(pthread_create(&t, NULL, stop_later, ctx), 0);
    assert_int_equal(vrev_ctx_run(ctx, -1), 0);
    assert_true(now_ms() - t0 >= 90);
    void *res;
    pthread_join(t, &res);
    assert_null(res);
    vrev_ctx_free(ctx);
}

static void must_not_run(void *arg)
{
    (*(int *)arg)++;
}

/* What is still queued at vrev_ctx_free is dropped (LSan: the nodes are freed). */
static void test_queued_posts_dropped_at_free(void **state)
{
    (void)state;
    int ran = 0, fds = tu_count_fds();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(vrev_ctx_post(ctx, must_not_run, &ran), 0);
    vrev_ctx_free(ctx);
    assert_int_equal(ran, 0);
    assert_int_equal(tu_count_fds(), fds);
}

static void test_errors(void **state)
{
    (void)state;
    int ran = 0;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_post(NULL, must_not_run, &ran), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    assert_int_equal(vrev_ctx_post(ctx, NULL, &ran), VREV_ERR_INVAL);
    vrev_ctx_free(ctx);
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0); /* no loop */
    assert_int_equal(vrev_ctx_post(ctx, must_not_run, &ran), VREV_ERR_STATE);
    vrev_ctx_free(ctx);
    struct event_base *base = event_base_new(); /* a loop of the program's own */
    int fds = tu_count_fds();
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    assert_int_equal(tu_count_fds(), fds); /* no wake-up made for it */
    assert_int_equal(vrev_ctx_post(ctx, must_not_run, &ran), VREV_ERR_STATE);
    vrev_ctx_free(ctx);
    event_base_free(base);
    assert_int_equal(ran, 0);
}

/* Every allocation of a loop context (the wake-up's among them) can fail without a leak. */
static void test_alloc_failure(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    for (unsigned at = 1; at < 20; at++) {
        struct tu_failing_alloc fa = {at, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *ctx;
        int rc = vrev_ctx_new_loop(&ctx, &a);
        if (rc == 0)
            vrev_ctx_free(ctx);
        else
            assert_int_equal(rc, VREV_ERR_NOMEM);
        assert_int_equal(fa.live, 0);
        assert_int_equal(tu_count_fds(), fds);
        if (rc == 0 && fa.calls < at)
            return;
    }
    fail_msg("more allocations than the sweep covers");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_post),
        cmocka_unit_test(test_loop_thread_posts),
        cmocka_unit_test(test_stop_from_another_thread),
        cmocka_unit_test(test_queued_posts_dropped_at_free),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests_name("post", tests, NULL, NULL);
}
