/* The context's buffer budget (RELIABILITY G7, limits.bufferedTotal; lib/core/budget.h) held
 * by mux tunnels and relays: with the budget set small and several readers that take nothing,
 * the bytes the context holds (ctx->buffered) stay within the budget plus one read's worth per
 * reader, and every byte arrives, checked, once the readers read again; the count returns to
 * 0 when everything is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "core/core.h"
#include "reverse/muxconn.h"
#include "testutil.h"

#define BUDGET (4u << 20)
#define SESSIONS 4
#define PER_SESSION (6u << 20)
/* a socket read: what one read may add on top (a frame's payload: at most 65535) */
#define READ_MAX 65536

struct stream {
    struct world *w;
    struct bufferevent *src, *dst; /* the test's ends: src writes, dst reads */
    size_t sent, received;
};

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__policy policy;
    struct bufferevent *t[2];    /* the tunnel: [0] the client muxconn's, [1] the server's */
    struct vrev__muxconn *mc[2]; /* 0 client (portal), 1 server (bridge) */
    struct stream st[SESSIONS];
    int n_open;
    uint64_t max_buffered;
    struct bufferevent *relay_ends[2 * SESSIONS][2];
};

/* Added after the counting callback of the muxconn or relay, it runs before it (libevent calls
 * the newest first): the count after this change is the count plus the change. */
static void watch(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct world *w = arg;
    uint64_t now = w->ctx->buffered + info->n_added - info->n_deleted;
    if (now > w->max_buffered)
        w->max_buffered = now;
}

/* The source writes at most 64 KiB at a time: a pair hands a reading partner all it has at
 * once, a socket does not. */
static void src_write(struct bufferevent *bev, void *arg)
{
    struct stream *s = arg;
    if (s->sent == PER_SESSION)
        return;
    struct evbuffer *tmp = evbuffer_new();
    tu_pattern_fill(tmp, &s->sent, PER_SESSION, READ_MAX);
    bufferevent_write_buffer(bev, tmp);
    evbuffer_free(tmp);
}

static void dst_read(struct bufferevent *bev, void *arg)
{
    struct stream *s = arg;
    tu_pattern_check(bufferevent_get_input(bev), &s->received);
}

static void src_start(struct stream *s)
{
    bufferevent_setcb(s->src, NULL, src_write, NULL, s);
    bufferevent_setwatermark(s->src, EV_WRITE, READ_MAX, 0);
    bufferevent_enable(s->src, EV_WRITE);
    src_write(s->src, s);
}

/* SERVER: the service behind the bridge sends PER_SESSION bytes on each session. */
static struct bufferevent *on_open(struct vrev__muxconn *mc, uint16_t sid, const vrev_mux_frame *f,
                                   void *user)
{
    (void)mc, (void)sid, (void)f;
    struct world *w = user;
    struct bufferevent *pair[2];
    assert_true(w->n_open < SESSIONS);
    assert_int_equal(bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    bufferevent_setwatermark(pair[0], EV_READ, 0, READ_MAX); /* like a socket's reads */
    struct stream *s = &w->st[w->n_open++];
    s->src = pair[1];
    src_start(s);
    return pair[0];
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "bufferedTotal", BUDGET), 0);
    vrev__policy_default(&w->policy);
    w->policy.flow_window = 0;          /* a V2Ray peer: plain Mux.Cool */
    w->policy.buffer_bytes = 16u << 20; /* no session stops the tunnel on its own */
    w->policy.tunnel_buffer_bytes = 64u << 20;
    w->policy.stall_ms = 60000; /* the readers come back before any reset */
}

static void world_run(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

static bool all_received(struct world *w)
{
    for (int i = 0; i < SESSIONS; i++)
        if (w->st[i].received < PER_SESSION)
            return false;
    return true;
}

static bool run_until_received(struct world *w, int ms)
{
    for (int t = 0; t < ms && !all_received(w); t += 20)
        world_run(w, 20);
    return all_received(w);
}

/* A portal (client) and a bridge (server) muxconn joined by a pair; four sessions whose
 * public clients read nothing while the services behind the bridge send 6 MiB each: 24 MiB
 * against a budget of 4 MiB. */
static void test_tunnel_budget(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    assert_int_equal(bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE, w.t), 0);
    static const struct vrev__muxconn_cbs client_cbs = {0};
    static const struct vrev__muxconn_cbs server_cbs = {.on_open = on_open};
    assert_int_equal(
        vrev__muxconn_new(w.ctx, VREV_MUX_CLIENT, w.t[0], &w.policy, &client_cbs, &w, &w.mc[0]), 0);
    assert_int_equal(
        vrev__muxconn_new(w.ctx, VREV_MUX_SERVER, w.t[1], &w.policy, &server_cbs, &w, &w.mc[1]), 0);
    struct bufferevent *app[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) {
        struct bufferevent *pair[2];
        struct vrev__addr target;
        uint16_t sid;
        assert_int_equal(bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
        assert_int_equal(vrev__addr_from_text(&target, "127.0.0.1", 80), 0);
        assert_int_equal(vrev__muxconn_open(w.mc[0], VREV_NET_TCP, &target, pair[0], NULL, 0, &sid),
                         0);
        evbuffer_add_cb(bufferevent_get_output(pair[0]), watch, &w);
        app[i] = pair[1]; /* the public client: not reading */
    }
    world_run(&w, 1500);
    struct vrev__muxconn_stats st;
    vrev__muxconn_get_stats(w.mc[0], &st);
    print_message("tunnel: budget %u, held at most %llu (now %llu), %llu stops\n", BUDGET,
                  (unsigned long long)w.max_buffered, (unsigned long long)w.ctx->buffered,
                  (unsigned long long)st.budget_stops);
    assert_int_equal(w.n_open, SESSIONS);
    assert_true(w.max_buffered >= BUDGET);            /* the budget was reached ... */
    assert_true(w.max_buffered <= BUDGET + READ_MAX); /* ... and kept */
    assert_true(st.budget_stops >= 1);
    /* the clients read again: everything arrives */
    for (int i = 0; i < SESSIONS; i++) {
        w.st[i].dst = app[i];
        bufferevent_setcb(app[i], dst_read, NULL, NULL, &w.st[i]);
        bufferevent_enable(app[i], EV_READ);
    }
    assert_true(run_until_received(&w, 30000));
    assert_true(w.max_buffered <= BUDGET + READ_MAX);
    for (int i = 0; i < SESSIONS; i++)
        bufferevent_free(app[i]);
    vrev__muxconn_free(w.mc[0]);
    vrev__muxconn_free(w.mc[1]);
    for (int i = 0; i < SESSIONS; i++)
        bufferevent_free(w.st[i].src);
    assert_int_equal(w.ctx->buffered, 0); /* every byte counted in was counted out */
    event_base_loop(w.base, EVLOOP_NONBLOCK);
    event_base_free(w.base);
    vrev_ctx_free(w.ctx);
}

/* Four relays, each from a source that sends 6 MiB to a reader that takes nothing: the relays
 * hold the budget, not 4 x their 16 MiB high-water mark. */
static void test_relay_budget(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vrev__relay *r[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) {
        struct bufferevent *a[2], *b[2];
        assert_int_equal(bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE, a), 0);
        assert_int_equal(bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE, b), 0);
        bufferevent_setwatermark(a[0], EV_READ, 0, READ_MAX);
        assert_int_equal(vrev__relay_start(w.ctx, a[0], b[0], &w.policy, NULL, NULL, &r[i]), 0);
        evbuffer_add_cb(bufferevent_get_output(b[0]), watch, &w); /* after the relay's own */
        w.st[i].src = a[1];
        w.st[i].dst = b[1]; /* not reading */
        src_start(&w.st[i]);
    }
    world_run(&w, 1000);
    print_message("relays: budget %u, held at most %llu\n", BUDGET,
                  (unsigned long long)w.max_buffered);
    assert_true(w.max_buffered >= BUDGET);
    assert_true(w.max_buffered <= BUDGET + SESSIONS * READ_MAX); /* a read per reader */
    for (int i = 0; i < SESSIONS; i++) {
        bufferevent_setcb(w.st[i].dst, dst_read, NULL, NULL, &w.st[i]);
        bufferevent_enable(w.st[i].dst, EV_READ);
    }
    assert_true(run_until_received(&w, 30000));
    assert_true(w.max_buffered <= BUDGET + SESSIONS * READ_MAX);
    for (int i = 0; i < SESSIONS; i++) {
        vrev__relay_abort(r[i], 1);
        bufferevent_free(w.st[i].src);
        bufferevent_free(w.st[i].dst);
    }
    assert_int_equal(w.ctx->buffered, 0);
    event_base_loop(w.base, EVLOOP_NONBLOCK);
    event_base_free(w.base);
    vrev_ctx_free(w.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tunnel_budget),
        cmocka_unit_test(test_relay_budget),
    };
    return cmocka_run_group_tests_name("budget", tests, NULL, NULL);
}
