/* lib/reverse/muxconn: a client and a server muxconn in one loop, joined through a tap that
 * checks every byte between them with a codec of its own (whole frames) and hands them on in
 * pieces of varying size. Streams echoed both ways (payload moved in frames of up to 65535
 * bytes), and a tunnel stopped for a slow session that reads on once that session is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "codec/mux_ext.h"
#include "codec/mux_frame.h"
#include "reverse/muxconn.h"
#include "testutil.h"
#include "vrev/tunnel.h"

#define BULK (3u << 20)

struct tap_dir {
    vrev_mux *check;  /* the independent decoder of this direction */
    size_t max_data;  /* largest dataLen seen */
    uint64_t payload; /* stream payload seen */
    unsigned step;
    unsigned ext_frames, windows, new_with_ext; /* frames with a vrev extension block */
};

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__policy policy;
    struct bufferevent *t[2][2]; /* t[side][0] the muxconn's transport, [1] the tap's end */
    struct vrev__muxconn *mc[2]; /* 0 client, 1 server */
    struct tap_dir dir[2];       /* 0 client -> server, 1 server -> client */
    struct bufferevent *service[4];
    int n_service;
    int echo; /* services echo what they read */
    /* the client application's end of session 0 */
    struct bufferevent *app;
    size_t sent, received;
    /* what the server's on_open learnt of the last session's client (CLIENT) */
    int got_client; /* -1: no session yet */
    struct vrev__addr client_src, client_dst;
    /* the bytes the last SESSION_CLOSE reported, per side (0 client, 1 server) */
    int closes[2];
    uint64_t closed_up[2], closed_down[2];
};

static int check_frame(vrev_mux *m, const vrev_mux_frame *f, void *user)
{
    (void)m;
    struct tap_dir *d = user;
    size_t n = 0;
    vrev_mux_frame_data(f, &n);
    if (n > d->max_data)
        d->max_data = n;
    if (vrev_mux_frame_status(f) == VREV_MUX_KEEP || vrev_mux_frame_status(f) == VREV_MUX_NEW)
        d->payload += n;
    struct vrev__mux_ext e;
    if (f->ext_len) {
        d->ext_frames++;
        d->new_with_ext += vrev_mux_frame_status(f) == VREV_MUX_NEW;
        assert_int_equal(vrev__mux_ext_parse(f->ext, f->ext_len, &e), 0);
        d->windows += e.window;
    }
    return 0;
}

/* Hand bytes from one muxconn to the other in pieces of 1..70000 bytes, checking them. */
static void tap_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    int i = bev == w->t[0][1] ? 0 : 1;
    struct tap_dir *d = &w->dir[i];
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(w->t[!i][1]);
    while (evbuffer_get_length(in)) {
        d->step = d->step * 1103515245u + 12345u;
        size_t n = 1 + (d->step >> 8) % 70000, len = evbuffer_get_length(in);
        n = n < len ? n : len;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
        size_t used;
        assert_int_equal(vrev_mux_feed(d->check, p, n, &used), 0);
        assert_int_equal(used, n);
        assert_int_equal(evbuffer_remove_buffer(in, out, n), (int)n);
    }
}

static void service_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    if (w->echo)
        evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static struct bufferevent *on_open(struct vrev__muxconn *mc, uint16_t sid, const vrev_mux_frame *f,
                                   void *user)
{
    (void)sid;
    struct world *w = user;
    w->got_client = vrev__muxconn_client(mc, f, &w->client_src, &w->client_dst);
    struct bufferevent *pair[2];
    assert_true(w->n_service < 4);
    assert_int_equal(bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    w->service[w->n_service++] = pair[1];
    bufferevent_setcb(pair[1], service_read, NULL, NULL, w);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    return pair[0];
}

static void on_session(struct vrev__muxconn *mc, int event, const char *target, uint64_t up,
                       uint64_t down, void *user)
{
    (void)target;
    struct world *w = user;
    int i = mc == w->mc[1];
    if (event != VREV_EVENT_SESSION_CLOSE)
        return;
    w->closes[i]++;
    w->closed_up[i] = up;
    w->closed_down[i] = down;
}

static void app_fill(struct world *w)
{
    tu_pattern_fill(bufferevent_get_output(w->app), &w->sent, BULK, 256 * 1024);
}

static void app_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    tu_pattern_check(bufferevent_get_input(bev), &w->received);
    if (w->received == BULK)
        event_base_loopexit(w->base, NULL);
}

static void app_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    app_fill(arg);
}

/* The client muxconn made with `policy`, the server with `server` (NULL: the same). */
static void world_init_policies(struct world *w, const struct vrev__policy *policy,
                                const struct vrev__policy *server)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_non_null(w->base);
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    w->policy = *policy;
    static const struct vrev__muxconn_cbs client_cbs = {.on_session = on_session};
    static const struct vrev__muxconn_cbs server_cbs = {.on_open = on_open,
                                                        .on_session = on_session};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE, w->t[i]), 0);
        bufferevent_setcb(w->t[i][1], tap_read, NULL, NULL, w);
        bufferevent_enable(w->t[i][1], EV_READ | EV_WRITE);
        vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI, .on_frame = check_frame};
        assert_int_equal(vrev_mux_new(&w->dir[i].check, w->ctx,
                                      i ? VREV_MUX_CLIENT : VREV_MUX_SERVER, &cb, &w->dir[i]),
                         0);
        w->dir[i].step = 7u + (unsigned)i;
        assert_int_equal(vrev__muxconn_new(w->ctx, i ? VREV_MUX_SERVER : VREV_MUX_CLIENT,
                                           w->t[i][0], i && server ? server : &w->policy,
                                           i ? &server_cbs : &client_cbs, w, &w->mc[i]),
                         0);
    }
}

/* Both muxconns made with `policy`. */
static void world_init_policy(struct world *w, const struct vrev__policy *policy)
{
    world_init_policies(w, policy, NULL);
}

/* idle_ms, stall_ms: the policy's connIdle and stall timeout (0: the defaults) */
static void world_init(struct world *w, uint32_t buffer_bytes, uint32_t idle_ms, uint32_t stall_ms)
{
    struct vrev__policy policy;
    vrev__policy_default(&policy);
    policy.flow_window = 0; /* V2Ray's Mux.Cool: no flow control */
    policy.buffer_bytes = buffer_bytes;
    if (idle_ms)
        policy.conn_idle_ms = idle_ms;
    if (stall_ms)
        policy.stall_ms = stall_ms;
    world_init_policy(w, &policy);
}

/* A session from the client, its application end set up to send and check BULK bytes. */
static uint16_t open_session(struct world *w, struct bufferevent **app)
{
    struct bufferevent *pair[2];
    struct vrev__addr target;
    uint16_t sid;
    assert_int_equal(bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    assert_int_equal(vrev__addr_from_text(&target, "127.0.0.1", 80), 0);
    assert_int_equal(vrev__muxconn_open(w->mc[0], VREV_NET_TCP, &target, pair[0], NULL, 0, &sid),
                     0);
    *app = pair[1];
    return sid;
}

static void world_run(struct world *w, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

static void world_done(struct world *w)
{
    if (w->app)
        bufferevent_free(w->app);
    for (int i = 0; i < w->n_service; i++)
        if (w->service[i])
            bufferevent_free(w->service[i]);
    for (int i = 0; i < 2; i++) {
        vrev__muxconn_free(w->mc[i]);
        bufferevent_free(w->t[i][1]);
        vrev_mux_free(w->dir[i].check);
    }
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

/* BULK bytes to an echoing service and back through one session; every byte is checked, and
 * every frame decoded by the tap. */
static void echo_bulk(struct world *w)
{
    w->echo = 1;
    open_session(w, &w->app);
    bufferevent_setcb(w->app, app_read, app_write, NULL, w);
    bufferevent_enable(w->app, EV_READ | EV_WRITE);
    app_fill(w);
    world_run(w, 20);
    assert_int_equal(w->received, BULK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w->dir[i].payload, BULK); /* valid Mux.Cool, every byte framed */
        assert_int_equal(vrev_mux_buffered(w->dir[i].check), 0);
    }
}

static void test_stream_echo(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 0, 0); /* small: backpressure both ways */
    echo_bulk(&w);
    for (int i = 0; i < 2; i++) {
        assert_true(w.dir[i].max_data > 8192); /* chains go out whole */
        assert_true(w.dir[i].max_data <= VREV_MUX_DATA_MAX);
    }
    uint64_t up, down;
    vrev__muxconn_bytes(w.mc[0], &up, &down);
    assert_int_equal(up, BULK);
    assert_int_equal(down, BULK);
    world_done(&w);
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

static void count_additions(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    if (info->n_added)
        ++*(int *)arg;
}

/* What a local side sends goes into the transport's output in one addition, the frame's
 * header and payload together, and so do the frames of one pass of the loop (a session's New
 * and End): a filter below (the VMess stream, a ws carrier) makes a chunk or a frame of each
 * addition, so a header added alone cost a chunk of its own. */
static void test_frames_go_out_whole(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 0, 0);
    open_session(&w, &w.app);
    bufferevent_enable(w.app, EV_READ | EV_WRITE);
    run_ms(&w, 50);
    assert_int_equal(w.n_service, 1); /* the session is open at the server */
    struct evbuffer *out = bufferevent_get_output(w.t[0][0]);
    int additions = 0;
    struct evbuffer_cb_entry *cb = evbuffer_add_cb(out, count_additions, &additions);
    char data[100];
    memset(data, 'x', sizeof(data));
    for (int i = 0; i < 3; i++) {
        bufferevent_write(w.app, data, sizeof(data));
        run_ms(&w, 20);
        assert_int_equal(additions, i + 1); /* one per send: header and payload at once */
    }
    assert_int_equal(w.dir[0].payload, 3 * sizeof(data)); /* and valid frames */
    struct bufferevent *app2;
    uint16_t sid = open_session(&w, &app2); /* New, then End, in one pass */
    assert_int_equal(vrev__muxconn_end(w.mc[0], sid, 0), 0);
    run_ms(&w, 20);
    assert_int_equal(additions, 4);
    assert_int_equal(w.n_service, 2);
    bufferevent_free(app2);
    evbuffer_remove_cb_entry(out, cb);
    world_done(&w);
}

/* One vocabulary in both roles: up is toward the service (the server's local side: a bridge's),
 * down back toward the client's application (a portal's public client). 10 bytes go up and 3
 * come down; both muxconns say so, in their totals and in the session's close event. */
static void test_up_down_in_both_roles(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 0, 0);
    open_session(&w, &w.app);
    bufferevent_enable(w.app, EV_READ | EV_WRITE);
    evbuffer_add(bufferevent_get_output(w.app), "0123456789", 10);
    for (int i = 0; i < 200 && !(w.n_service == 1 &&
                                 evbuffer_get_length(bufferevent_get_input(w.service[0])) == 10);
         i++)
        run_ms(&w, 10);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(w.service[0])), 10);
    evbuffer_add(bufferevent_get_output(w.service[0]), "abc", 3);
    for (int i = 0; i < 200 && evbuffer_get_length(bufferevent_get_input(w.app)) < 3; i++)
        run_ms(&w, 10);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(w.app)), 3);
    for (int i = 0; i < 2; i++) {
        uint64_t up, down;
        vrev__muxconn_bytes(w.mc[i], &up, &down);
        assert_int_equal(up, 10);
        assert_int_equal(down, 3);
    }
    /* both ends finish: the session closes on both sides */
    bufferevent_flush(w.app, EV_WRITE, BEV_FINISHED);
    bufferevent_flush(w.service[0], EV_WRITE, BEV_FINISHED);
    for (int i = 0; i < 200 && !(w.closes[0] && w.closes[1]); i++)
        run_ms(&w, 10);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w.closes[i], 1);
        assert_int_equal(w.closed_up[i], 10);
        assert_int_equal(w.closed_down[i], 3);
    }
    world_done(&w);
}

/* Mux.Cool has no per-session flow control: a session whose reader stalls stops the whole
 * tunnel. When that session goes away (its reader reset it), the others go on. */
static void test_blocked_session_goes_away(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 0, 0);
    struct bufferevent *slow, *other;
    open_session(&w, &slow);
    open_session(&w, &other);
    world_run(&w, 1); /* both sessions open on the server */
    assert_int_equal(w.n_service, 2);
    bufferevent_disable(w.service[0], EV_READ); /* session 1's reader stalls */
    uint8_t junk[65536];
    memset(junk, 'x', sizeof(junk));
    for (int i = 0; i < 8; i++)
        bufferevent_write(slow, junk, sizeof(junk));
    world_run(&w, 1);
    bufferevent_write(other, "ping", 4);
    world_run(&w, 1);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(w.service[1])), 0); /* behind */
    vrev__bev_close(w.service[0], 1); /* the slow reader resets its session */
    w.service[0] = NULL;
    world_run(&w, 1);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(w.service[1])), 4);
    bufferevent_free(slow);
    bufferevent_free(other);
    world_done(&w);
}

struct watch {
    int closed;
};

static void watch_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        ((struct watch *)arg)->closed = 1;
}

/* policy connIdle: a session with no payload either way is ended on both sides, a busy one
 * (payload one way only) is not; the tunnel itself stays. */
static void test_idle_sessions_end(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 300, 0);
    struct bufferevent *quiet, *busy;
    struct watch wq = {0}, wb = {0};
    open_session(&w, &quiet);
    open_session(&w, &busy);
    bufferevent_setcb(quiet, NULL, NULL, watch_event, &wq);
    bufferevent_setcb(busy, NULL, NULL, watch_event, &wb);
    bufferevent_enable(quiet, EV_READ | EV_WRITE);
    bufferevent_enable(busy, EV_READ | EV_WRITE);
    for (int i = 0; i < 12; i++) { /* 1.2 s: four idle periods */
        bufferevent_write(busy, "x", 1);
        run_ms(&w, 100);
    }
    assert_true(wq.closed);  /* reset by its muxconn */
    assert_false(wb.closed); /* payload one way keeps it */
    assert_int_equal(vrev__muxconn_active(w.mc[0]), 1);
    assert_int_equal(vrev__muxconn_active(w.mc[1]), 1); /* the server side ended it too */
    assert_false(vrev__muxconn_closed(w.mc[0]));
    bufferevent_free(quiet);
    bufferevent_free(busy);
    world_done(&w);
}

/* Two sessions; the first one's reader never reads and the server sends it 512 KiB, which
 * stops the client's tunnel; the second one's "ping" then waits behind it. Each step runs
 * the loop for `ms`. */
static void stall_behind_first(struct world *w, struct bufferevent **slow,
                               struct bufferevent **other, int ms)
{
    open_session(w, slow);
    open_session(w, other);
    bufferevent_enable(*other, EV_READ);
    run_ms(w, ms);
    assert_int_equal(w->n_service, 2);
    uint8_t junk[65536];
    memset(junk, 'x', sizeof(junk));
    for (int i = 0; i < 8; i++)
        bufferevent_write(w->service[0], junk, sizeof(junk));
    run_ms(w, ms);
    bufferevent_write(w->service[1], "ping", 4);
    run_ms(w, ms);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(*other)), 0); /* behind it */
}

/* The local side of a session whose reader stalled the tunnel reports an end of stream and a
 * write error in one event (deferred callbacks OR them: a socket closed by its peer while
 * output waits): the session is aborted, not left to drain what can never be written, and
 * the tunnel reads on for the other sessions. */
static void test_blocked_session_eof_with_error(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 0, 0);
    struct bufferevent *slow, *other;
    stall_behind_first(&w, &slow, &other, 1000);
    struct bufferevent *local = bufferevent_pair_get_partner(slow);
    bufferevent_trigger_event(
        local, BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_READING | BEV_EVENT_WRITING, 0);
    world_run(&w, 1);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(other)), 4);
    assert_int_equal(vrev__muxconn_active(w.mc[0]), 1);
    bufferevent_free(slow);
    bufferevent_free(other);
    world_done(&w);
}

/* RELIABILITY §3.6 stall timeout: a session whose reader takes nothing for stall_ms while the
 * tunnel waits behind it is reset on that side, the peer is told (End with the error flag)
 * and the other sessions go on; before the timeout nothing happens to it. */
static void test_stalled_session_reset(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 64 * 1024, 0, 1000);
    struct bufferevent *slow, *other;
    struct watch ws = {0};
    stall_behind_first(&w, &slow, &other, 150);
    bufferevent_setcb(slow, NULL, NULL, watch_event, &ws);
    run_ms(&w, 100);
    assert_false(ws.closed);
    assert_int_equal(vrev__muxconn_active(w.mc[0]), 2);
    run_ms(&w, 1000);
    assert_true(ws.closed); /* reset */
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(other)), 4);
    assert_int_equal(vrev__muxconn_active(w.mc[0]), 1);
    assert_int_equal(vrev__muxconn_active(w.mc[1]), 1); /* the peer ended it too */
    assert_false(vrev__muxconn_closed(w.mc[0]));
    bufferevent_free(slow);
    bufferevent_free(other);
    world_done(&w);
}

/* RELIABILITY §3.6 per-tunnel cap: sessions whose readers take nothing, each under its own
 * limit (64 KiB) but together over the tunnel's (128 KiB), stop the tunnel; it reads on once
 * half the cap has been written; and if nothing is written for stall_ms, the sessions holding
 * the most are reset until half the cap is free. */
static void test_tunnel_cap(void **state)
{
    (void)state;
    struct world w;
    struct vrev__policy policy;
    vrev__policy_default(&policy);
    policy.flow_window = 0;
    policy.buffer_bytes = 64 * 1024;
    policy.stall_ms = 1000;
    policy.tunnel_buffer_bytes = 128 * 1024;
    world_init_policy(&w, &policy);
    struct bufferevent *app[4];
    struct watch wa[4] = {{0}};
    for (int i = 0; i < 4; i++) {
        open_session(&w, &app[i]); /* reading not enabled: nothing is taken */
        bufferevent_setcb(app[i], NULL, NULL, watch_event, &wa[i]);
    }
    run_ms(&w, 100);
    assert_int_equal(w.n_service, 4);
    uint8_t junk[48 * 1024];
    memset(junk, 'x', sizeof(junk));
    for (int i = 0; i < 4; i++) /* 48 KiB each: under 64 KiB; the third reaches 128 KiB */
        bufferevent_write(w.service[i], junk, sizeof(junk));
    run_ms(&w, 400); /* well within stall_ms */
    size_t held[4], total = 0;
    for (int i = 0; i < 4; i++) {
        held[i] = evbuffer_get_length(bufferevent_get_output(bufferevent_pair_get_partner(app[i])));
        total += held[i];
    }
    assert_int_equal(total, 3 * sizeof(junk)); /* stopped at the cap: the fourth waits */
    assert_false(wa[0].closed || wa[1].closed || wa[2].closed || wa[3].closed);
    /* two readers take their bytes: 48 KiB left <= half the cap, and the fourth's come */
    int readers = 0;
    for (int i = 0; i < 4 && readers < 2; i++)
        if (held[i] == sizeof(junk)) {
            bufferevent_enable(app[i], EV_READ);
            readers++;
        }
    assert_int_equal(readers, 2);
    run_ms(&w, 400);
    total = 0;
    for (int i = 0; i < 4; i++)
        total += evbuffer_get_length(bufferevent_get_output(bufferevent_pair_get_partner(app[i])));
    assert_int_equal(total, 2 * sizeof(junk)); /* all delivered: two read, two held */
    /* over the cap again, nothing read for stall_ms: the largest holders are reset */
    for (int i = 0; i < 4; i++)
        bufferevent_disable(app[i], EV_READ);
    for (int i = 0; i < 4; i++)
        bufferevent_write(w.service[i], junk, sizeof(junk));
    run_ms(&w, 300);
    int closed = 0;
    for (int i = 0; i < 4; i++)
        closed += wa[i].closed;
    assert_int_equal(closed, 0); /* not before stall_ms */
    run_ms(&w, 1500);            /* the stall came 1000 ms after the cap was reached */
    total = 0;
    for (int i = 0; i < 4; i++) {
        closed += wa[i].closed;
        if (!wa[i].closed)
            total +=
                evbuffer_get_length(bufferevent_get_output(bufferevent_pair_get_partner(app[i])));
    }
    assert_true(closed >= 1 && closed < 4);
    assert_true(total < 128 * 1024 + sizeof(junk)); /* read on: at most one delivery past */
    assert_false(vrev__muxconn_closed(w.mc[0]));
    assert_int_equal(vrev__muxconn_active(w.mc[0]), 4 - closed);
    for (int i = 0; i < 4; i++)
        bufferevent_free(app[i]);
    world_done(&w);
}

/* --- flow control (vrev peers, docs/extensions.md) ---------------------------------------- */

static void flow_policy(struct vrev__policy *p, uint32_t window, uint32_t max)
{
    vrev__policy_default(p);
    p->buffer_bytes = 64 * 1024;
    p->stall_ms = 300;
    p->flow_window = window;
    p->flow_window_max = max;
}

/* A flow-controlled world whose HELLOs have crossed. */
static void flow_world(struct world *w, uint32_t window, uint32_t max)
{
    struct vrev__policy policy;
    flow_policy(&policy, window, max);
    world_init_policy(w, &policy);
    run_ms(w, 50);
}

/* An application end that checks the pattern; the loop stops at `want` bytes (0: never) or at
 * the end of the stream, which it records. */
struct app_reader {
    struct world *w;
    size_t received, want;
    short end;
};

static void app_reader_read(struct bufferevent *bev, void *arg)
{
    struct app_reader *r = arg;
    tu_pattern_check(bufferevent_get_input(bev), &r->received);
    if (r->want && r->received >= r->want)
        event_base_loopexit(r->w->base, NULL);
}

static void app_reader_event(struct bufferevent *bev, short what, void *arg)
{
    struct app_reader *r = arg;
    app_reader_read(bev, arg);
    r->end = what;
    event_base_loopexit(r->w->base, NULL);
}

/* The in-process form of the slow-reader deadlock: one session's reader takes nothing while
 * its server sends it megabytes. With flow control the tunnel never waits for it: another
 * session's bytes pass at once, the slow session is not reset at the stall timeout (it stops
 * nothing), what the client holds for it stays within its window, and once its reader reads,
 * every byte arrives in order. Without the extension (V2Ray's Mux.Cool) the other session
 * waits behind it until the stall reset (test_stalled_session_reset). */
static void test_flow_slow_reader_stops_only_itself(void **state)
{
    (void)state;
    struct world w;
    flow_world(&w, 65536, 262144);
    struct bufferevent *slow, *other;
    struct watch ws = {0};
    open_session(&w, &slow);
    open_session(&w, &other);
    bufferevent_setcb(slow, NULL, NULL, watch_event, &ws);
    bufferevent_enable(other, EV_READ);
    run_ms(&w, 50);
    assert_int_equal(w.n_service, 2);
    size_t sent = 0, total = 2u << 20;
    tu_pattern_fill(bufferevent_get_output(w.service[0]), &sent, total, total);
    run_ms(&w, 200);
    bufferevent_write(w.service[1], "ping", 4);
    run_ms(&w, 100);
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(other)), 4); /* not behind it */
    size_t held = evbuffer_get_length(bufferevent_get_output(bufferevent_pair_get_partner(slow)));
    assert_true(held > 0);
    assert_true(held <= 65536); /* its window, no more */
    /* and the server's session holds at most a high-water mark of what it may not send yet */
    struct bufferevent *local = bufferevent_pair_get_partner(w.service[0]);
    assert_true(evbuffer_get_length(bufferevent_get_input(local)) <= 64 * 1024);
    run_ms(&w, 600); /* twice the stall timeout */
    assert_false(ws.closed);
    assert_int_equal(vrev__muxconn_active(w.mc[0]), 2);
    struct app_reader c = {&w, 0, total, 0};
    bufferevent_setcb(slow, app_reader_read, NULL, watch_event, &c);
    bufferevent_enable(slow, EV_READ);
    world_run(&w, 10);
    assert_int_equal(c.received, total);
    assert_true(w.dir[0].windows > 0);          /* the client granted credit back */
    assert_int_equal(w.dir[0].new_with_ext, 2); /* both sessions opened with FLOW */
    bufferevent_free(slow);
    bufferevent_free(other);
    world_done(&w);
}

/* Bulk both ways with small windows: every byte arrives, in frames V2Ray's decoder reads. */
static void test_flow_stream_echo(void **state)
{
    (void)state;
    struct world w;
    flow_world(&w, 65536, 1 << 20);
    echo_bulk(&w);
    for (int i = 0; i < 2; i++)
        assert_true(w.dir[i].windows > 0); /* each side granted the other */
    world_done(&w);
}

/* A peer that offers nothing (V2Ray, or vrev with flow control off) gets plain Mux.Cool: our
 * HELLO is the only block it ever sees, sessions open without FLOW, and a slow reader stops
 * the tunnel until the stall reset, as V2Ray's own sessions would. */
static void test_flow_not_offered_is_plain_mux(void **state)
{
    (void)state;
    struct world w;
    struct vrev__policy policy, plain;
    flow_policy(&policy, 65536, 1 << 20);
    plain = policy;
    plain.flow_window = 0; /* the server does not offer the extension */
    world_init_policies(&w, &policy, &plain);
    run_ms(&w, 50);
    struct bufferevent *slow, *other;
    struct watch ws = {0};
    stall_behind_first(&w, &slow, &other, 100); /* "ping" waits behind the slow session */
    bufferevent_setcb(slow, NULL, NULL, watch_event, &ws);
    run_ms(&w, 500);
    assert_true(ws.closed); /* the stall reset */
    assert_int_equal(evbuffer_get_length(bufferevent_get_input(other)), 4);
    assert_int_equal(w.dir[0].ext_frames, 1); /* the client's HELLO, nothing else */
    assert_int_equal(w.dir[0].new_with_ext, 0);
    assert_int_equal(w.dir[1].ext_frames, 0);
    bufferevent_free(slow);
    bufferevent_free(other);
    world_done(&w);
}

/* CLIENT (docs/extensions.md): the portal names the public client in the New frame of a TCP
 * session when the bridge's HELLO asked for it; a peer that did not ask (V2Ray, or vrev with
 * the extensions off) never gets it. */
static void open_from(struct world *w, int network, const char *src, uint16_t sp, const char *dst,
                      uint16_t dp)
{
    struct vrev__addr target, a, b;
    assert_int_equal(vrev__addr_from_text(&target, "127.0.0.1", 80), 0);
    assert_int_equal(vrev__addr_from_text(&a, src, sp), 0);
    assert_int_equal(vrev__addr_from_text(&b, dst, dp), 0);
    const struct vrev__addr *const client[2] = {&a, &b};
    struct bufferevent *pair[2];
    uint16_t sid;
    assert_int_equal(bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    w->got_client = -1;
    assert_int_equal(
        vrev__muxconn_open_from(w->mc[0], network, &target, client, pair[0], NULL, 0, 0, &sid), 0);
    bufferevent_free(pair[1]);
    run_ms(w, 30);
    assert_int_not_equal(w->got_client, -1); /* the server saw the New frame */
}

static void test_client_address(void **state)
{
    (void)state;
    struct world w;
    flow_world(&w, 65536, 1 << 20);
    open_from(&w, VREV_NET_TCP, "192.0.2.7", 40000, "198.51.100.1", 443);
    assert_int_equal(w.got_client, 1);
    struct vrev__addr want;
    vrev__addr_from_text(&want, "192.0.2.7", 40000);
    assert_true(vrev__addr_equal(&w.client_src, &want));
    vrev__addr_from_text(&want, "198.51.100.1", 443);
    assert_true(vrev__addr_equal(&w.client_dst, &want));
    open_from(&w, VREV_NET_TCP, "2001:db8::7", 1, "127.0.0.1", 2); /* sent as IPv6, mapped */
    assert_int_equal(w.got_client, 1);
    vrev__addr_from_text(&want, "2001:db8::7", 1);
    assert_true(vrev__addr_equal(&w.client_src, &want));
    vrev__addr_from_text(&want, "127.0.0.1", 2);
    assert_true(vrev__addr_equal(&w.client_dst, &want));
    unsigned with_ext = w.dir[0].new_with_ext;
    open_from(&w, VREV_NET_UDP, "192.0.2.7", 40000, "198.51.100.1", 53); /* streams only */
    assert_int_equal(w.got_client, 0);
    assert_int_equal(w.dir[0].new_with_ext, with_ext);
    world_done(&w);

    /* a server that offers nothing is sent nothing, and reads nothing */
    struct vrev__policy policy, plain;
    flow_policy(&policy, 65536, 1 << 20);
    plain = policy;
    plain.flow_window = 0;
    world_init_policies(&w, &policy, &plain);
    run_ms(&w, 50);
    open_from(&w, VREV_NET_TCP, "192.0.2.7", 40000, "198.51.100.1", 443);
    assert_int_equal(w.got_client, 0);
    assert_int_equal(w.dir[0].new_with_ext, 0);
    world_done(&w);
}

/* Flow-controlled sessions over the tunnel's cap: they never stop the tunnel, but their grants
 * wait until the local sides hold at most half the cap; if nothing drains for stall_ms, the
 * largest holders are reset and the grants go out. */
static void test_flow_cap_withholds_grants(void **state)
{
    (void)state;
    struct world w;
    struct vrev__policy policy;
    flow_policy(&policy, 65536, 65536);
    policy.stall_ms = 500;
    policy.tunnel_buffer_bytes = 128 * 1024;
    world_init_policy(&w, &policy);
    run_ms(&w, 50);
    struct bufferevent *app[3];
    struct watch wa[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        open_session(&w, &app[i]);
        bufferevent_setcb(app[i], NULL, NULL, watch_event, &wa[i]);
    }
    run_ms(&w, 50);
    assert_int_equal(w.n_service, 3);
    size_t sent[3] = {0};
    for (int i = 0; i < 3; i++) /* more than a window each: 64 KiB arrive, the rest waits */
        tu_pattern_fill(bufferevent_get_output(w.service[i]), &sent[i], 256 * 1024, 256 * 1024);
    run_ms(&w, 200);
    unsigned windows = w.dir[0].windows;
    /* the first reader takes 32 KiB: a grant is due, but 160 KiB are held (cap 128 KiB) */
    bufferevent_setwatermark(app[0], EV_READ, 0, 32 * 1024);
    bufferevent_enable(app[0], EV_READ);
    run_ms(&w, 200);
    assert_int_equal(w.dir[0].windows, windows); /* withheld */
    assert_false(wa[0].closed || wa[1].closed || wa[2].closed);
    run_ms(&w, 600); /* the stall timeout: the largest holders go, the grant follows */
    int closed = wa[1].closed + wa[2].closed;
    assert_true(closed >= 1);
    assert_false(wa[0].closed); /* it held the least */
    assert_true(w.dir[0].windows > windows);
    assert_false(vrev__muxconn_closed(w.mc[0]));
    for (int i = 0; i < 3; i++)
        bufferevent_free(app[i]);
    world_done(&w);
}

static void finish_when_written(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_flush(bev, EV_WRITE, BEV_FINISHED); /* its end of stream, once all is out */
}

/* A source that ends while its last bytes still wait for the peer's credit: the session stays
 * until they are sent, then ends cleanly (End, not End|Error); the reader gets every byte and
 * a clean end of stream. */
static void test_flow_end_waits_for_credit(void **state)
{
    (void)state;
    struct world w;
    flow_world(&w, 65536, 65536);
    struct bufferevent *app;
    open_session(&w, &app);
    run_ms(&w, 50);
    size_t sent = 0, total = 512 * 1024;
    bufferevent_setcb(w.service[0], service_read, finish_when_written, NULL, &w);
    tu_pattern_fill(bufferevent_get_output(w.service[0]), &sent, total, total);
    run_ms(&w, 300); /* the reader takes nothing: the end comes with bytes still waiting */
    assert_int_equal(vrev__muxconn_active(w.mc[1]), 1);
    struct app_reader e = {&w, 0, 0, 0};
    bufferevent_setcb(app, app_reader_read, NULL, app_reader_event, &e);
    bufferevent_enable(app, EV_READ);
    world_run(&w, 10);
    assert_int_equal(e.received, total);
    assert_int_equal(e.end, BEV_EVENT_EOF | BEV_EVENT_READING); /* clean, not reset */
    assert_int_equal(vrev__muxconn_active(w.mc[1]), 0);
    bufferevent_free(app);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_echo),
        cmocka_unit_test(test_up_down_in_both_roles),
        cmocka_unit_test(test_frames_go_out_whole),
        cmocka_unit_test(test_blocked_session_goes_away),
        cmocka_unit_test(test_idle_sessions_end),
        cmocka_unit_test(test_blocked_session_eof_with_error),
        cmocka_unit_test(test_stalled_session_reset),
        cmocka_unit_test(test_tunnel_cap),
        cmocka_unit_test(test_flow_slow_reader_stops_only_itself),
        cmocka_unit_test(test_flow_stream_echo),
        cmocka_unit_test(test_flow_not_offered_is_plain_mux),
        cmocka_unit_test(test_client_address),
        cmocka_unit_test(test_flow_cap_withholds_grants),
        cmocka_unit_test(test_flow_end_waits_for_credit),
    };
    return cmocka_run_group_tests_name("muxconn", tests, NULL, NULL);
}
