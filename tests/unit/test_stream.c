/* vrev_stream (vrev/stream.h) over one end of a bufferevent pair, the other end playing the
 * peer (as a mux session's end does for a bridge's handler): reading and writing with the
 * events they give, the counters, the end of stream both ways, an error, backpressure
 * (pause, and a peer that does not read), closing from inside the stream's own callbacks,
 * and a graceful close with data pending (it all goes out, then the end), or an abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/net.h"
#include "testutil.h"
#include "vrev.h"

#define BIG (256 * 1024)

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    vrev_stream *s;
    struct bufferevent *peer;
    struct evbuffer *got; /* what the peer received */
    bool peer_eof, peer_error;
    int events[5]; /* VREV_STREAM_* seen, by number */
    int last_err;
    int order[16]; /* the events in order */
    int n_order;
    int close_on;    /* close the stream from inside its callback on this event (0: never) */
    int close_abort; /* ... with this abort flag */
    size_t sent;     /* pattern bytes written by pump() */
};

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    evbuffer_add_buffer(w->got, bufferevent_get_input(bev));
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    struct world *w = arg;
    peer_read(bev, w);
    if (what & BEV_EVENT_ERROR)
        w->peer_error = true;
    else if (what & BEV_EVENT_EOF)
        w->peer_eof = true;
}

static void on_stream(vrev_stream *s, int event, int err, void *user)
{
    struct world *w = user;
    assert_ptr_equal(s, w->s);
    assert_true(event >= 1 && event <= 4);
    assert_false(w->events[VREV_STREAM_ERROR]); /* nothing after an error */
    w->events[event]++;
    if (w->n_order < 16)
        w->order[w->n_order++] = event;
    if (event == VREV_STREAM_ERROR)
        w->last_err = err;
    else
        assert_int_equal(err, 0);
    if (event == w->close_on) {
        vrev_stream_close(s, w->close_abort);
        w->s = NULL;
    }
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* Run the loop until *flag (at most 3 s). */
static void run_until(struct world *w, const bool *flag)
{
    for (int i = 0; i < 300 && !*flag; i++)
        run_ms(w, 10);
}

static void run_until_count(struct world *w, const int *count, int n)
{
    for (int i = 0; i < 300 && *count < n; i++)
        run_ms(w, 10);
}

/* A stream over a pair end, the other end the peer; `with_cb`: on_stream is its callback. */
static void world_init(struct world *w, bool with_cb)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_non_null(w->base);
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    struct bufferevent *pair[2];
    assert_int_equal(
        bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair), 0);
    assert_int_equal(vrev__stream_new(w->ctx, pair[0], &w->s), 0);
    w->peer = pair[1];
    w->got = evbuffer_new();
    bufferevent_setcb(w->peer, peer_read, NULL, peer_event, w);
    bufferevent_enable(w->peer, EV_READ | EV_WRITE);
    if (with_cb)
        assert_int_equal(vrev_stream_set_cb(w->s, on_stream, w), 0);
}

static void world_done(struct world *w)
{
    vrev_stream_close(w->s, 1);
    if (w->peer)
        bufferevent_free(w->peer);
    evbuffer_free(w->got);
    vrev_ctx_close_lingering(w->ctx);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

/* The peer's end of stream (as a mux session passes the public client's). */
static void peer_shutdown(struct world *w)
{
    bufferevent_flush(w->peer, EV_WRITE, BEV_FINISHED);
}

/* Write the pattern to the stream until `total` bytes are written. */
static void pump(struct world *w, size_t total)
{
    uint8_t buf[4096];
    while (w->sent < total) {
        size_t n = total - w->sent < sizeof(buf) ? total - w->sent : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = tu_pattern(w->sent + i);
        assert_int_equal(vrev_stream_write(w->s, buf, n), 0);
        w->sent += n;
    }
}

static void test_read_write_counters(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, true);
    bufferevent_write(w.peer, "hello", 5);
    run_until_count(&w, &w.events[VREV_STREAM_READABLE], 1);
    assert_int_equal(w.events[VREV_STREAM_READABLE], 1);
    assert_int_equal(vrev_stream_readable(w.s), 5);
    assert_int_equal(vrev_stream_bytes_in(w.s), 5);
    char buf[16];
    assert_int_equal(vrev_stream_read(w.s, buf, 3), 3);
    assert_memory_equal(buf, "hel", 3);
    assert_int_equal(vrev_stream_read(w.s, buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "lo", 2);
    assert_int_equal(vrev_stream_read(w.s, buf, sizeof(buf)), 0); /* none now, not the end */
    assert_int_equal(vrev_stream_ended(w.s), 0);
    assert_int_equal(vrev_stream_bytes_in(w.s), 5); /* counts what came, not what was read */

    assert_int_equal(vrev_stream_write(w.s, "world!", 6), 0);
    assert_int_equal(vrev_stream_write(w.s, NULL, 0), 0);
    run_until_count(&w, &w.events[VREV_STREAM_DRAINED], 1);
    assert_int_equal(w.events[VREV_STREAM_DRAINED], 1);
    assert_int_equal(evbuffer_get_length(w.got), 6);
    assert_memory_equal(evbuffer_pullup(w.got, 6), "world!", 6);
    assert_int_equal(vrev_stream_bytes_out(w.s), 6);
    assert_int_equal(vrev_stream_buffered(w.s), 0);
    run_ms(&w, 20);
    assert_int_equal(w.events[VREV_STREAM_DRAINED], 1); /* once per drain */
    assert_int_equal(w.events[VREV_STREAM_END] + w.events[VREV_STREAM_ERROR], 0);

    /* the interop accessor: the same bufferevent, and what is added to it counts */
    struct bufferevent *bev = vrev_stream_bufferevent(w.s);
    assert_non_null(bev);
    evbuffer_add(bufferevent_get_output(bev), "xy", 2);
    run_until_count(&w, &w.events[VREV_STREAM_DRAINED], 2);
    assert_int_equal(vrev_stream_bytes_out(w.s), 8);
    assert_int_equal(evbuffer_get_length(w.got), 8);
    world_done(&w);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, false);
    char buf[4];
    assert_int_equal(vrev_stream_set_cb(NULL, on_stream, &w), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_read(NULL, buf, 4), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_read(w.s, NULL, 4), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_write(NULL, "a", 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_write(w.s, NULL, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_shutdown(NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_pause(NULL, 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_stream_readable(NULL), 0);
    assert_int_equal(vrev_stream_buffered(NULL), 0);
    assert_int_equal(vrev_stream_bytes_in(NULL), 0);
    assert_int_equal(vrev_stream_bytes_out(NULL), 0);
    assert_int_equal(vrev_stream_ended(NULL), 0);
    assert_null(vrev_stream_bufferevent(NULL));
    vrev_stream_close(NULL, 0);
    world_done(&w);
}

/* Bytes and the end that came before the callback was set are told from the loop. */
static void test_events_before_the_callback(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, false);
    bufferevent_write(w.peer, "early", 5);
    peer_shutdown(&w);
    run_ms(&w, 20);
    assert_int_equal(vrev_stream_readable(w.s), 5);
    assert_int_equal(vrev_stream_set_cb(w.s, on_stream, &w), 0);
    assert_int_equal(w.n_order, 0); /* not from inside the call */
    run_until_count(&w, &w.events[VREV_STREAM_END], 1);
    assert_int_equal(w.n_order, 2);
    assert_int_equal(w.order[0], VREV_STREAM_READABLE);
    assert_int_equal(w.order[1], VREV_STREAM_END);
    assert_int_equal(vrev_stream_ended(w.s), 0); /* the input is not read yet */
    char buf[8];
    assert_int_equal(vrev_stream_read(w.s, buf, sizeof(buf)), 5);
    assert_int_equal(vrev_stream_read(w.s, buf, sizeof(buf)), 0);
    assert_int_equal(vrev_stream_ended(w.s), 1);
    world_done(&w);
}

/* The peer's end: the bytes before it, then END once; writing still works (half-close). Our
 * own end: the peer gets everything written first, then its end; no write after it. */
static void test_end_both_ways(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, true);
    bufferevent_write(w.peer, "last", 4);
    peer_shutdown(&w);
    run_until_count(&w, &w.events[VREV_STREAM_END], 1);
    assert_int_equal(w.events[VREV_STREAM_END], 1);
    assert_int_equal(w.order[0], VREV_STREAM_READABLE);
    assert_int_equal(vrev_stream_readable(w.s), 4);
    assert_int_equal(vrev_stream_write(w.s, "reply", 5), 0); /* half-close: still writable */

    bufferevent_disable(w.peer, EV_READ); /* what is written waits in the stream */
    pump(&w, 10000);
    assert_int_equal(vrev_stream_shutdown(w.s), 0);
    assert_int_equal(vrev_stream_shutdown(w.s), VREV_ERR_STATE);
    assert_int_equal(vrev_stream_write(w.s, "x", 1), VREV_ERR_STATE);
    run_ms(&w, 20);
    assert_false(w.peer_eof); /* not before the bytes */
    bufferevent_enable(w.peer, EV_READ);
    run_until(&w, &w.peer_eof);
    assert_true(w.peer_eof);
    assert_false(w.peer_error);
    assert_int_equal(evbuffer_get_length(w.got), 5 + 10000);
    assert_memory_equal(evbuffer_pullup(w.got, 5), "reply", 5);
    evbuffer_drain(w.got, 5);
    size_t received = 0;
    tu_pattern_check(w.got, &received);
    assert_int_equal(received, 10000);
    assert_int_equal(vrev_stream_bytes_out(w.s), 10005);
    assert_int_equal(w.events[VREV_STREAM_END], 1);
    world_done(&w);
}

static void test_error(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, true);
    bufferevent_write(w.peer, "abc", 3);
    run_until_count(&w, &w.events[VREV_STREAM_READABLE], 1);
    vrev__bev_close(w.peer, 1); /* a reset, as a mux session's for a broken tunnel */
    w.peer = NULL;
    run_until_count(&w, &w.events[VREV_STREAM_ERROR], 1);
    assert_int_equal(w.events[VREV_STREAM_ERROR], 1);
    assert_int_equal(w.last_err, VREV_ERR_IO);
    assert_int_equal(w.events[VREV_STREAM_END], 0);
    assert_int_equal(vrev_stream_write(w.s, "x", 1), VREV_ERR_STATE);
    assert_int_equal(vrev_stream_shutdown(w.s), VREV_ERR_STATE);
    char buf[8]; /* what came before the error can still be read */
    assert_int_equal(vrev_stream_read(w.s, buf, sizeof(buf)), 3);
    assert_int_equal(vrev_stream_ended(w.s), 1);
    run_ms(&w, 20);
    assert_int_equal(w.events[VREV_STREAM_ERROR], 1);
    world_done(&w);
}

/* Paused: the input does not grow, the bytes wait at the peer, no READABLE; resumed: one. */
static void test_pause_resume(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, true);
    assert_int_equal(vrev_stream_pause(w.s, 1), 0);
    bufferevent_write(w.peer, "held back", 9);
    run_ms(&w, 30);
    assert_int_equal(w.events[VREV_STREAM_READABLE], 0);
    assert_int_equal(vrev_stream_readable(w.s), 0);
    assert_int_equal(vrev_stream_bytes_in(w.s), 0);
    assert_int_equal(evbuffer_get_length(bufferevent_get_output(w.peer)), 9);
    assert_int_equal(vrev_stream_pause(w.s, 0), 0);
    run_until_count(&w, &w.events[VREV_STREAM_READABLE], 1);
    assert_int_equal(w.events[VREV_STREAM_READABLE], 1);
    assert_int_equal(vrev_stream_readable(w.s), 9);
    assert_int_equal(vrev_stream_bytes_in(w.s), 9);
    /* paused with bytes waiting: resuming tells them again */
    assert_int_equal(vrev_stream_pause(w.s, 1), 0);
    assert_int_equal(vrev_stream_pause(w.s, 0), 0);
    run_until_count(&w, &w.events[VREV_STREAM_READABLE], 2);
    assert_int_equal(w.events[VREV_STREAM_READABLE], 2);
    world_done(&w);
}

/* A peer that does not read: the bytes stay buffered in the stream; DRAINED once it reads. */
static void test_buffered_output(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, true);
    bufferevent_disable(w.peer, EV_READ);
    pump(&w, BIG);
    run_ms(&w, 20);
    assert_int_equal(vrev_stream_buffered(w.s), BIG);
    assert_int_equal(vrev_stream_bytes_out(w.s), 0);
    assert_int_equal(w.events[VREV_STREAM_DRAINED], 0);
    bufferevent_enable(w.peer, EV_READ);
    run_until_count(&w, &w.events[VREV_STREAM_DRAINED], 1);
    assert_int_equal(vrev_stream_buffered(w.s), 0);
    assert_int_equal(vrev_stream_bytes_out(w.s), BIG);
    size_t received = 0;
    tu_pattern_check(w.got, &received);
    assert_int_equal(received, BIG);
    world_done(&w);
}

/* Closing from inside each kind of callback: nothing more is told, nothing is used after it
 * is freed (ASan), and the close is what was asked (graceful: the peer's clean end). */
static void close_inside(int event, int abort)
{
    struct world w;
    world_init(&w, false);
    w.close_on = event;
    w.close_abort = abort;
    assert_int_equal(vrev_stream_set_cb(w.s, on_stream, &w), 0);
    if (event == VREV_STREAM_DRAINED)
        assert_int_equal(vrev_stream_write(w.s, "out", 3), 0);
    bufferevent_write(w.peer, "in", 2);
    if (event == VREV_STREAM_END)
        peer_shutdown(&w);
    run_until(&w, abort ? &w.peer_error : &w.peer_eof);
    assert_null(w.s);
    assert_int_equal(w.events[event], 1);
    assert_true(abort ? w.peer_error : w.peer_eof);
    int told = w.n_order;
    bufferevent_write(w.peer, "more", 4); /* to a freed stream's bufferevent: nothing told */
    run_ms(&w, 30);
    assert_int_equal(w.n_order, told);
    world_done(&w);
}

static void test_close_inside_callbacks(void **state)
{
    (void)state;
    close_inside(VREV_STREAM_READABLE, 0);
    close_inside(VREV_STREAM_READABLE, 1);
    close_inside(VREV_STREAM_DRAINED, 0);
    close_inside(VREV_STREAM_END, 0);
    close_inside(VREV_STREAM_END, 1);
}

/* A close with data pending: gracefully, every byte reaches the peer and then a clean end
 * (the stream is gone, its bufferevent finishes alone); with an abort, an error. */
static void test_close_with_data_pending(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, false);
    /* a flow-controlled mux session's end bounds its input (muxconn.c, start_flow) */
    bufferevent_setwatermark(w.peer, EV_READ, 0, 64 * 1024);
    bufferevent_disable(w.peer, EV_READ);
    pump(&w, BIG);
    vrev_stream_close(w.s, 0);
    w.s = NULL;
    run_ms(&w, 30);
    assert_false(w.peer_eof);
    bufferevent_enable(w.peer, EV_READ);
    run_until(&w, &w.peer_eof);
    assert_true(w.peer_eof);
    assert_false(w.peer_error);
    size_t received = 0;
    tu_pattern_check(w.got, &received);
    assert_int_equal(received, BIG);
    world_done(&w);

    world_init(&w, false);
    bufferevent_disable(w.peer, EV_READ);
    pump(&w, BIG);
    vrev_stream_close(w.s, 1);
    w.s = NULL;
    bufferevent_enable(w.peer, EV_READ);
    run_until(&w, &w.peer_error);
    assert_true(w.peer_error);
    assert_true(evbuffer_get_length(w.got) < BIG);
    world_done(&w);
}

/* A graceful close whose bytes cannot go out: the context closes it when told to (it owns the
 * lingering stream: nothing leaks, ASan), and the peer sees an error, not a clean end. */
static void test_lingering_closed_with_the_context(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, false);
    bufferevent_disable(w.peer, EV_READ);
    pump(&w, 1000);
    vrev_stream_close(w.s, 0);
    w.s = NULL;
    run_ms(&w, 30);
    vrev_ctx_close_lingering(w.ctx);
    bufferevent_enable(w.peer, EV_READ);
    run_until(&w, &w.peer_error);
    assert_true(w.peer_error);
    assert_false(w.peer_eof);
    world_done(&w);
}

/* No memory for the stream: VREV_ERR_NOMEM, and the bufferevent it was given is reset (the
 * peer sees an error), not leaked (ASan). */
static void test_no_memory(void **state)
{
    (void)state;
    struct tu_failing_alloc fa = {0, 0, 0};
    vrev_allocator a;
    tu_failing_allocator(&a, &fa);
    struct world w;
    memset(&w, 0, sizeof(w));
    w.base = event_base_new();
    assert_int_equal(vrev_ctx_new2(&w.ctx, w.base, &a), 0);
    fa.fail_at = fa.calls + 1; /* the stream's own allocation */
    struct bufferevent *pair[2];
    assert_int_equal(
        bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair), 0);
    w.peer = pair[1];
    w.got = evbuffer_new();
    bufferevent_setcb(w.peer, peer_read, NULL, peer_event, &w);
    bufferevent_enable(w.peer, EV_READ | EV_WRITE);
    assert_int_equal(vrev__stream_new(w.ctx, pair[0], &w.s), VREV_ERR_NOMEM);
    w.s = NULL;
    run_until(&w, &w.peer_error);
    assert_true(w.peer_error);
    world_done(&w);
    assert_int_equal(fa.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_write_counters),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_events_before_the_callback),
        cmocka_unit_test(test_end_both_ways),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_buffered_output),
        cmocka_unit_test(test_close_inside_callbacks),
        cmocka_unit_test(test_close_with_data_pending),
        cmocka_unit_test(test_lingering_closed_with_the_context),
        cmocka_unit_test(test_no_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
