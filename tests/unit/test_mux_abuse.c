/* A hostile mux peer against a real muxconn (lib/reverse/muxconn, the glue of both reverse
 * roles), its frames made with the project's own encoder and written into a bufferevent pair
 * (RELIABILITY §2.5, issue M7):
 *   - "Rapid Reset": thousands of New+End pairs; past the session rate (a token bucket) a New
 *     is refused with End|Error before anything is opened for it, and a session ended while
 *     its local side is being set up releases that side at once;
 *   - Keep frames for dead ids from a peer that never reads: each id is answered once per
 *     window, and past the output limit the tunnel stops reading instead of queueing answers;
 *   - floods of empty frames close the tunnel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "codec/mux_internal.h"
#include "reverse/muxconn.h"
#include "testutil.h"

/* the peer's frames, produced on demand */
enum gen_kind { GEN_NEW_END, GEN_KEEP_DEAD, GEN_KEEPALIVE };

struct hostile {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__policy policy;
    struct bufferevent *t[2]; /* [0] the muxconn's transport, [1] the hostile peer's end */
    struct vrev__muxconn *mc;
    /* the generator */
    enum gen_kind kind;
    uint64_t made, total; /* frames (New+End: pairs) made so far, to make */
    uint16_t sid_span;    /* sids cycle through 1..sid_span */
    /* what the muxconn did */
    unsigned opens;    /* sessions handed a local side */
    unsigned released; /* local sides the muxconn has let go of (their partner saw it) */
    int closed, close_err;
    size_t out_max;    /* most the muxconn's transport output held */
    vrev_mux *decoder; /* the peer reads (when it does) with a codec of its own */
    unsigned ends_seen;
};

static void partner_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    struct hostile *h = arg;
    h->released++;
    bufferevent_free(bev);
}

static struct bufferevent *on_open(struct vrev__muxconn *mc, uint16_t sid, const vrev_mux_frame *f,
                                   void *user)
{
    (void)mc, (void)sid, (void)f;
    struct hostile *h = user;
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(h->base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    bufferevent_setcb(pair[1], NULL, NULL, partner_event, h);
    bufferevent_enable(pair[1], EV_READ);
    h->opens++;
    return pair[0];
}

static void on_closed(struct vrev__muxconn *mc, int err, void *user)
{
    (void)mc;
    struct hostile *h = user;
    h->closed = 1;
    h->close_err = err;
}

static void put(struct evbuffer *out, uint16_t sid, int status, int with_data, size_t len)
{
    uint8_t b[64];
    int n = vrev__mux_encode_header_text(b, sizeof(b), sid, status, 0, VREV_NET_TCP, "127.0.0.1",
                                         80, with_data, len);
    assert_true(n > 0);
    memset(b + n, 'x', len);
    evbuffer_add(out, b, (size_t)n + len);
}

/* Give the peer's output another 256 KiB of frames (made first: a pair moves bytes to a
 * reading partner as soon as they are added). */
static void generate(struct hostile *h)
{
    struct evbuffer *out = evbuffer_new();
    while (h->made < h->total && evbuffer_get_length(out) < 256 * 1024) {
        uint16_t sid = (uint16_t)(1 + h->made % h->sid_span);
        switch (h->kind) {
        case GEN_NEW_END:
            put(out, sid, VREV_MUX_NEW, 0, 0);
            put(out, sid, VREV_MUX_END, 0, 0);
            break;
        case GEN_KEEP_DEAD:
            put(out, sid, VREV_MUX_KEEP, 1, 1);
            break;
        case GEN_KEEPALIVE:
            put(out, 0, VREV_MUX_KEEPALIVE, 0, 0);
            break;
        }
        h->made++;
    }
    bufferevent_write_buffer(h->t[1], out);
    evbuffer_free(out);
}

static void peer_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    generate(arg);
}

static int count_end(vrev_mux *m, const vrev_mux_frame *f, void *user)
{
    (void)m;
    struct hostile *h = user;
    h->ends_seen += vrev_mux_frame_status(f) == VREV_MUX_END;
    return 0;
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct hostile *h = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    assert_int_equal(vrev_mux_feed(h->decoder, evbuffer_pullup(in, -1), n, NULL), 0);
    evbuffer_drain(in, n);
}

static void track_out(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)info;
    struct hostile *h = arg;
    size_t n = evbuffer_get_length(buf);
    h->out_max = n > h->out_max ? n : h->out_max;
}

/* A SERVER muxconn (a bridge's side) and the peer's end; `reads`: the peer reads what it is
 * sent. Limits set on h->ctx before are the muxconn's. */
static void hostile_start(struct hostile *h, int reads)
{
    assert_int_equal(bufferevent_pair_new(h->base, BEV_OPT_CLOSE_ON_FREE, h->t), 0);
    vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI, .on_frame = count_end};
    assert_int_equal(vrev_mux_new(&h->decoder, h->ctx, VREV_MUX_CLIENT, &cb, h), 0);
    static const struct vrev__muxconn_cbs cbs = {.on_open = on_open, .on_closed = on_closed};
    evbuffer_add_cb(bufferevent_get_output(h->t[0]), track_out, h);
    /* like a socket, whose kernel buffers hold so much: a pair hands over all it has */
    bufferevent_setwatermark(h->t[0], EV_READ, 0, 256 * 1024);
    assert_int_equal(
        vrev__muxconn_new(h->ctx, VREV_MUX_SERVER, h->t[0], &h->policy, &cbs, h, &h->mc), 0);
    bufferevent_setcb(h->t[1], peer_read, peer_write, NULL, h);
    bufferevent_setwatermark(h->t[1], EV_WRITE, 64 * 1024, 0);
    bufferevent_enable(h->t[1], reads ? EV_READ | EV_WRITE : EV_WRITE);
    generate(h);
}

static void hostile_init(struct hostile *h, enum gen_kind kind, uint64_t total, uint16_t span)
{
    memset(h, 0, sizeof(*h));
    h->base = event_base_new();
    assert_non_null(h->base);
    assert_int_equal(vrev_ctx_new(&h->ctx, h->base), 0);
    vrev__policy_default(&h->policy);
    h->policy.flow_window = 0;
    h->kind = kind;
    h->total = total;
    h->sid_span = span;
}

static void hostile_done(struct hostile *h)
{
    if (h->mc)
        vrev__muxconn_free(h->mc);
    bufferevent_free(h->t[1]);
    vrev_mux_free(h->decoder);
    event_base_loop(h->base, EVLOOP_NONBLOCK);
    event_base_free(h->base);
    vrev_ctx_free(h->ctx);
}

static void run_ms(struct hostile *h, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(h->base, &tv);
    event_base_dispatch(h->base);
}

/* Everything made has been taken by the muxconn (or it closed). */
static bool all_taken(struct hostile *h)
{
    return h->closed ||
           (h->made == h->total && evbuffer_get_length(bufferevent_get_output(h->t[1])) == 0 &&
            evbuffer_get_length(bufferevent_get_input(h->t[0])) == 0);
}

/* Run until all_taken() or `ms` pass; returns all_taken(). */
static bool run_until_taken(struct hostile *h, int ms)
{
    for (int t = 0; t < ms && !all_taken(h); t += 10)
        run_ms(h, 10);
    return all_taken(h);
}

static double seconds_since(const struct timeval *t0)
{
    struct timeval t1;
    evutil_gettimeofday(&t1, NULL);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_usec - t0->tv_usec) / 1e6;
}

/* 20,000 New+End pairs at a tunnel that takes 1,000 sessions a second (burst 100): the local
 * sides opened follow the bucket, not the peer; the rest are refused with End|Error and
 * counted; every local side opened is let go of by the End that follows its New. */
static void test_rapid_reset(void **state)
{
    (void)state;
    struct hostile h;
    hostile_init(&h, GEN_NEW_END, 20000, 20000);
    assert_int_equal(vrev_ctx_set_limit(h.ctx, "sessionRate", 1000), 0);
    assert_int_equal(vrev_ctx_set_limit(h.ctx, "sessionBurst", 100), 0);
    struct timeval t0;
    evutil_gettimeofday(&t0, NULL);
    hostile_start(&h, 1);
    assert_true(run_until_taken(&h, 20000));
    double s = seconds_since(&t0);
    run_ms(&h, 50); /* the partners' events */
    struct vrev__muxconn_stats st;
    vrev__muxconn_get_stats(h.mc, &st);
    print_message("rapid reset: 20000 New+End in %.2f s: %u local sides opened, %llu refused\n", s,
                  h.opens, (unsigned long long)st.refused_rate);
    assert_false(h.closed);
    assert_true(h.opens <= 100 + (unsigned)(1000 * s) + 1);
    assert_int_equal(h.opens + st.refused_rate, 20000);
    assert_int_equal(h.released, h.opens); /* the End let go of each at once */
    assert_int_equal(vrev__muxconn_active(h.mc), 0);
    /* the refusals were sent: one End|Error per refused New */
    assert_true(h.ends_seen >= st.refused_rate);
    hostile_done(&h);
}

/* 1,000,000 Keep frames for dead ids (all 65,535 of them, over and over) from a peer that never
 * reads: each id is answered once, and once the tunnel's output is full the answers stop at
 * REPLY_ALLOWANCE (64 KiB) and the tunnel is not read; when the peer reads again, so does the
 * tunnel, to the end. */
static void test_replies_bounded(void **state)
{
    (void)state;
    struct hostile h;
    hostile_init(&h, GEN_KEEP_DEAD, 1000000, 65535);
    h.policy.buffer_bytes = 65536; /* the output's high-water mark */
    hostile_start(&h, 0);
    for (int t = 0; t < 5000 && !all_taken(&h); t += 100) {
        size_t before = evbuffer_get_length(bufferevent_get_input(h.t[1])) + h.out_max;
        run_ms(&h, 100);
        if (h.out_max + evbuffer_get_length(bufferevent_get_input(h.t[1])) == before &&
            h.out_max > 0)
            break; /* nothing moves any more */
    }
    struct vrev__muxconn_stats st;
    vrev__muxconn_get_stats(h.mc, &st);
    print_message("replies: %llu of 1000000 frames taken; output held at most %zu bytes; "
                  "%llu answers skipped, %llu holds\n",
                  (unsigned long long)h.made, h.out_max, (unsigned long long)st.replies_skipped,
                  (unsigned long long)st.reply_holds);
    assert_false(h.closed);
    /* hwm + the allowance + what one read's frames can ask for */
    assert_true(h.out_max <= 65536 + 65536 + 64 * 1024);
    assert_true(st.reply_holds >= 1);
    /* the peer reads: everything is taken, the tunnel still up */
    bufferevent_enable(h.t[1], EV_READ);
    assert_true(run_until_taken(&h, 30000));
    vrev__muxconn_get_stats(h.mc, &st);
    assert_false(h.closed);
    assert_true(h.ends_seen <= 2 * 65535); /* once per id per window (10 s) */
    assert_true(st.replies_skipped >= 1000000 - 2 * 65535);
    hostile_done(&h);
}

/* The same dead id 10,000 times from a peer that reads: one End. */
static void test_dead_id_answered_once(void **state)
{
    (void)state;
    struct hostile h;
    hostile_init(&h, GEN_KEEP_DEAD, 10000, 1);
    hostile_start(&h, 1);
    assert_true(run_until_taken(&h, 5000));
    run_ms(&h, 20);
    assert_int_equal(h.ends_seen, 1);
    hostile_done(&h);
}

/* 1,000 empty frames are borne; the next one in the same window closes the tunnel. */
static void test_empty_flood_closes(void **state)
{
    (void)state;
    struct hostile h;
    hostile_init(&h, GEN_KEEPALIVE, 1000, 1);
    hostile_start(&h, 1);
    assert_true(run_until_taken(&h, 5000));
    assert_false(h.closed);
    h.total = 1001;
    generate(&h);
    run_until_taken(&h, 5000);
    assert_true(h.closed);
    assert_true(h.close_err < 0);
    hostile_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rapid_reset),
        cmocka_unit_test(test_replies_bounded),
        cmocka_unit_test(test_dead_id_answered_once),
        cmocka_unit_test(test_empty_flood_closes),
    };
    return cmocka_run_group_tests_name("mux_abuse", tests, NULL, NULL);
}
