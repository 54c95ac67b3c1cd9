/* vrev_ctx_post: functions posted from other threads (and from the loop's own) run in the
 * context's loop, each exactly once, in order per thread; the wake-up's descriptors are the
 * context's and closed with it; queued posts are dropped by vrev_ctx_free; the context's
 * allocator is never called from a posting thread. On a loop of the program's own, after
 * vrev_ctx_post_enable: the same, and vrev_ctx_close_lingering closes the wake-up (the
 * program's event_base_dispatch returns, no descriptor is left, later posts fail), also while
 * other threads are posting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

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
    void (*last)(void *ctx); /* posted after every other post of every thread */
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
        vrev_ctx_post(r->ctx, r->last, r->ctx) != 0)
        return (void *)post_failed;
    return NULL;
}

static pthread_t posters[THREADS];
static struct poster poster_args[THREADS];

static void start_posters(struct run *r)
{
    r->loop_thread = pthread_self();
    for (unsigned i = 0; i < THREADS; i++) {
        poster_args[i] = (struct poster){r, i};
        assert_int_equal(pthread_create(&posters[i], NULL, post_all, &poster_args[i]), 0);
    }
}

/* Every post of every thread ran once, in the loop's thread, in order per thread. */
static void check_posters(struct run *r)
{
    for (unsigned i = 0; i < THREADS; i++) {
        void *res;
        pthread_join(posters[i], &res);
        assert_null(res);
    }
    assert_int_equal(r->total, THREADS * POSTS);
    assert_int_equal(r->out_of_order, 0);
    assert_int_equal(r->wrong_thread, 0);
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned j = 0; j < POSTS; j++)
            assert_int_equal(r->items[i][j].ran, 1);
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
    r->last = stop;
    start_posters(r);
    assert_int_equal(vrev_ctx_run(r->ctx, -1), 0); /* until the stop posted last */
    check_posters(r);
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

static void *post_after_100ms(vrev_ctx *ctx, void (*fn)(void *ctx))
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return vrev_ctx_post(ctx, fn, ctx) == 0 ? NULL : (void *)post_failed;
}

static void *stop_later(void *ctx)
{
    return post_after_100ms(ctx, stop);
}

/* A loop with nothing else to do waits (it does not return for lack of work) until another
 * thread posts the stop. */
static void test_stop_from_another_thread(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    pthread_t t;
    int64_t t0 = tu_now_ms();
    assert_int_equal(pthread_create(&t, NULL, stop_later, ctx), 0);
    assert_int_equal(vrev_ctx_run(ctx, -1), 0);
    assert_true(tu_now_ms() - t0 >= 90);
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

/* --- a loop of the program's own, after vrev_ctx_post_enable ------------------------------- */

static int later_ran; /* on_later's runs */

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    later_ran++;
}

/* Posted last: closes the wake-up and leaves the loop some work still (a timer), which runs
 * before the program's event_base_dispatch returns for lack of events. */
static void close_and_leave_work(void *ctx)
{
    struct timeval tv = {0, 20 * 1000};
    vrev_ctx_close_lingering(ctx);
    assert_int_equal(event_base_once(vrev_ctx_base(ctx), -1, EV_TIMEOUT, on_later, NULL, &tv), 0);
}

static void *close_later(void *ctx)
{
    return post_after_100ms(ctx, close_and_leave_work);
}

static int added_events(struct event_base *base)
{
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);
}

/* Threads post to a context on the program's event_base: each post runs once, in order per
 * thread, in the loop's thread; event_base_dispatch returns once the last post closed the
 * wake-up and the remaining work ran; no descriptor or event is left; posts then fail. */
static void test_program_loop_threads_post(void **state)
{
    (void)state;
    int ran = 0, fds = tu_count_fds();
    struct event_base *base = event_base_new();
    int base_fds = tu_count_fds(), base_events = added_events(base);
    struct run *r = calloc(1, sizeof(*r));
    assert_int_equal(vrev_ctx_new(&r->ctx, base), 0);
    assert_int_equal(vrev_ctx_post_enable(r->ctx), 0);
    assert_int_equal(vrev_ctx_post_enable(r->ctx), 0); /* idempotent: one wake-up */
    assert_int_equal(tu_count_fds(), base_fds + 1);
    assert_int_equal(added_events(base), base_events + 1);
    r->last = close_and_leave_work;
    later_ran = 0;
    start_posters(r);
    alarm(20); /* bound: a wake-up left on the loop would keep it waiting */
    assert_int_equal(event_base_dispatch(base), 1); /* 1: no events left */
    alarm(0);
    check_posters(r);
    assert_int_equal(later_ran, 1);
    assert_int_equal(tu_count_fds(), base_fds);
    assert_int_equal(added_events(base), base_events);
    assert_int_equal(vrev_ctx_post(r->ctx, must_not_run, &ran), VREV_ERR_STATE);
    assert_int_equal(vrev_ctx_post_enable(r->ctx), VREV_ERR_STATE); /* not again after it */
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
    assert_int_equal(ran, 0);
    event_base_free(base); /* the documented order: the program's loop before the context */
    vrev_ctx_free(r->ctx);
    assert_int_equal(tu_count_fds(), fds);
    free(r);
}

/* The program's loop, with nothing else to do, waits for posts after vrev_ctx_post_enable
 * (it does not return for lack of events) until a posted function closes the wake-up. */
static void test_program_loop_waits(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1); /* nothing to wait for yet */
    assert_int_equal(vrev_ctx_post_enable(ctx), 0);
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0); /* the wake-up now */
    later_ran = 0;
    pthread_t t;
    int64_t t0 = tu_now_ms();
    assert_int_equal(pthread_create(&t, NULL, close_later, ctx), 0);
    alarm(20);
    assert_int_equal(event_base_dispatch(base), 1);
    alarm(0);
    assert_true(tu_now_ms() - t0 >= 90);
    assert_int_equal(later_ran, 1);
    void *res;
    pthread_join(t, &res);
    assert_null(res);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

#define RACE_POSTS 20000

struct race {
    vrev_ctx *ctx;
    unsigned ran[THREADS][RACE_POSTS]; /* times each post ran (loop thread only) */
    int rc[THREADS][RACE_POSTS];       /* what vrev_ctx_post returned (its poster only) */
    unsigned total;                    /* loop thread only */
};

struct race_item {
    struct race *race;
    unsigned thread, seq;
};

static struct race_item race_items[THREADS][RACE_POSTS];

static void race_run(void *arg)
{
    struct race_item *it = arg;
    struct race *r = it->race;
    r->ran[it->thread][it->seq]++;
    if (++r->total == RACE_POSTS / 8) /* while the others keep posting */
        vrev_ctx_close_lingering(r->ctx);
}

static void race_noop(void *arg)
{
    (void)arg;
}

static void *race_post(void *arg)
{
    struct race_item *first = arg;
    struct race *r = first->race;
    for (unsigned i = 0; i < RACE_POSTS; i++) {
        struct race_item *it = &race_items[first->thread][i];
        *it = (struct race_item){r, first->thread, i};
        r->rc[it->thread][i] = vrev_ctx_post(r->ctx, race_run, it);
    }
    /* a fast thread may be through before the loop closed: it posts on until it is refused */
    int64_t deadline = tu_now_ms() + 10000;
    while (r->rc[first->thread][RACE_POSTS - 1] == 0 && tu_now_ms() < deadline) {
        if (vrev_ctx_post(r->ctx, race_noop, NULL) != 0)
            return NULL;
        sched_yield();
    }
    return r->rc[first->thread][RACE_POSTS - 1] == 0 ? (void *)post_failed : NULL;
}

/* Threads keep posting while a posted function calls vrev_ctx_close_lingering: each post
 * either succeeded before the close (and ran once, or was dropped by it) or failed with
 * VREV_ERR_STATE and never ran; once one fails, every later one of that thread fails; no
 * descriptor is left (ASan and TSan see the rest: no closed descriptor written, no race). */
static void test_program_loop_close_races_posts(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    struct event_base *base = event_base_new();
    int base_fds = tu_count_fds();
    struct race *r = calloc(1, sizeof(*r));
    assert_int_equal(vrev_ctx_new(&r->ctx, base), 0);
    assert_int_equal(vrev_ctx_post_enable(r->ctx), 0);
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        race_items[i][0] = (struct race_item){r, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race_post, &race_items[i][0]), 0);
    }
    alarm(20);
    assert_int_equal(event_base_dispatch(base), 1);
    alarm(0);
    for (unsigned i = 0; i < THREADS; i++) {
        void *res;
        pthread_join(t[i], &res);
        assert_null(res); /* each was refused at last */
        bool closed = false;
        for (unsigned j = 0; j < RACE_POSTS; j++) {
            if (r->rc[i][j] == 0) {
                assert_false(closed);
                assert_in_range(r->ran[i][j], 0, 1);
            } else {
                assert_int_equal(r->rc[i][j], VREV_ERR_STATE);
                assert_int_equal(r->ran[i][j], 0);
                closed = true;
            }
        }
    }
    assert_true(r->total >= RACE_POSTS / 8);
    assert_int_equal(tu_count_fds(), base_fds);
    event_base_free(base);
    vrev_ctx_free(r->ctx);
    assert_int_equal(tu_count_fds(), fds);
    free(r);
}

static void test_enable_errors(void **state)
{
    (void)state;
    int ran = 0;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_post_enable(NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0); /* no loop to wake */
    assert_int_equal(vrev_ctx_post_enable(ctx), VREV_ERR_STATE);
    vrev_ctx_free(ctx);
    struct event_base *base = event_base_new();
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    vrev_ctx_close_lingering(ctx); /* the program stops: too late to enable */
    assert_int_equal(vrev_ctx_post_enable(ctx), VREV_ERR_STATE);
    assert_int_equal(vrev_ctx_post(ctx, must_not_run, &ran), VREV_ERR_STATE);
    vrev_ctx_free(ctx);
    event_base_free(base);
    /* a loop of the context's own has its wake-up already, and keeps it after
     * vrev_ctx_close_lingering (vrev_ctx_free closes it) */
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    assert_int_equal(vrev_ctx_post_enable(ctx), 0);
    vrev_ctx_close_lingering(ctx);
    assert_int_equal(vrev_ctx_post(ctx, must_not_run, &ran), 0);
    for (int i = 0; i < 10 && ran == 0; i++)
        assert_int_equal(vrev_ctx_run(ctx, 0), 0);
    assert_int_equal(ran, 1);
    vrev_ctx_free(ctx);
}

/* Posts still queued at vrev_ctx_close_lingering are dropped, not run (LSan: their nodes are
 * freed); vrev_ctx_free after the program freed its loop touches nothing of it (ASan). */
static void test_program_loop_queued_dropped(void **state)
{
    (void)state;
    int ran = 0, fds = tu_count_fds();
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    assert_int_equal(vrev_ctx_post_enable(ctx), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(vrev_ctx_post(ctx, must_not_run, &ran), 0);
    vrev_ctx_close_lingering(ctx);
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
    event_base_free(base);
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
        cmocka_unit_test(test_program_loop_threads_post),
        cmocka_unit_test(test_program_loop_waits),
        cmocka_unit_test(test_program_loop_close_races_posts),
        cmocka_unit_test(test_program_loop_queued_dropped),
        cmocka_unit_test(test_enable_errors),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests_name("post", tests, NULL, NULL);
}
