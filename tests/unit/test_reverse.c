/* lib/reverse on loopback: a portal engine and a bridge engine in one event loop, joined by
 * VMess over TCP, configured like WIRE-SPEC §8.7. A client of the portal's dokodemo-door
 * reaches an echo server next to the bridge. Also: drain and replacement tunnels, and the
 * bridge coming back after the portal restarts; full tunnels (the portal drains them, the
 * bridge opens another), links waiting for a tunnel, the immediate first redial. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "testutil.h"

#define DOMAIN "test.v2fly.org"

static const uint8_t uuid[16] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38,
                                 0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b};

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__listener *echo;
    struct bufferevent *echo_conns[64];
    int n_echo;
    /* portal side */
    struct vrev__engine portal_engine;
    struct vrev__outbound *portal;
    struct vrev__inbound *external, *interconn;
    uint16_t interconn_port;
    uint32_t drain_after, heartbeat_ms;
    unsigned portal_max_sessions;
    uint32_t portal_wait_ms;
    /* bridge side */
    struct vrev__engine bridge_engine;
    struct vrev__bridge *bridge;
    unsigned bridge_max_sessions;
    uint32_t bridge_backoff_ms; /* backoff_min_ms and backoff_max_ms; 0: defaults */
    /* clients held open (held_open), one watched by run_until(held_done) */
    struct held *watch;
    size_t watch_want;
    /* client */
    struct bufferevent *client;
    struct evbuffer *got;
    size_t want;
    int client_eof;
};

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    struct world *w = arg;
    for (int i = 0; i < w->n_echo; i++)
        if (w->echo_conns[i] == bev)
            w->echo_conns[i] = NULL;
    bufferevent_free(bev);
}

static void echo_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    struct bufferevent *bev = vrev__bev_socket(w->ctx, fd);
    bufferevent_setcb(bev, echo_read, NULL, echo_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    assert_true(w->n_echo < 64);
    w->echo_conns[w->n_echo++] = bev;
}

static void portal_up(struct world *w)
{
    assert_int_equal(vrev__engine_init(&w->portal_engine, w->ctx), 0);
    struct vrev__portal_opts po = {.domain = DOMAIN,
                                   .heartbeat_ms = w->heartbeat_ms,
                                   .drain_after = w->drain_after,
                                   .max_sessions = w->portal_max_sessions,
                                   .wait_ms = w->portal_wait_ms};
    assert_int_equal(vrev__portal_new(&w->portal_engine, "portal", &po, &w->portal), 0);
    assert_int_equal(vrev__engine_add_outbound(&w->portal_engine, w->portal), 0);
    /* the target the portal puts in its New frames; the bridge's freedom redirects anyway */
    struct vrev__dokodemo_opts d = {"127.0.0.1", 0, "127.0.0.1", 18000, VREV_ROUTE_TCP};
    assert_int_equal(vrev__dokodemo_new(&w->portal_engine, "external", &d, &w->external), 0);
    struct vrev__in_user u = {0};
    memcpy(u.uuid, uuid, 16);
    struct vrev__in_user_opts vi = {"127.0.0.1", w->interconn_port, &u, 1};
    assert_int_equal(vrev__vmess_in_new(&w->portal_engine, "interconn", &vi, &w->interconn), 0);
    w->interconn_port = vrev__inbound_port(w->interconn);
}

static void portal_down(struct world *w)
{
    vrev__inbound_free(w->external);
    vrev__inbound_free(w->interconn);
    vrev__engine_cleanup(&w->portal_engine);
    w->portal = NULL;
}

#define LIST(...)                                                                                  \
    ((struct vrev__strlist){(const char *const[]){__VA_ARGS__},                                    \
                            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)})

static void bridge_up(struct world *w)
{
    struct vrev__engine *e = &w->bridge_engine;
    assert_int_equal(vrev__engine_init(e, w->ctx), 0);
    struct vrev__outbound *ob;
    struct vrev__freedom_opts f = {"127.0.0.1", vrev__listener_port(w->echo), VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(e, "out", &f, &ob), 0);
    assert_int_equal(vrev__engine_add_outbound(e, ob), 0);
    struct vrev__user_out_opts vo = {
        "127.0.0.1", w->interconn_port, {0}, VREV_VMESS_SEC_AES_128_GCM};
    memcpy(vo.uuid, uuid, 16);
    assert_int_equal(vrev__vmess_out_new(e, "interconn", &vo, 1, &ob), 0);
    assert_int_equal(vrev__engine_add_outbound(e, ob), 0);
    char err[256];
    assert_int_equal(vrev__router_new(w->ctx, &e->router), 0);
    struct vrev__rule_spec tunnel = {0}, rest = {0};
    tunnel.inbound_tags = LIST("bridge");
    tunnel.domains = LIST("full:" DOMAIN);
    tunnel.outbound_tag = "interconn";
    rest.inbound_tags = LIST("bridge");
    rest.outbound_tag = "out";
    assert_int_equal(vrev__router_add_rule(e->router, &tunnel, err, sizeof(err)), 0);
    assert_int_equal(vrev__router_add_rule(e->router, &rest, err, sizeof(err)), 0);
    assert_int_equal(vrev__router_finish(e->router, &LIST("out", "interconn"), err, sizeof(err)),
                     0);
    struct vrev__bridge_opts bo = {0};
    bo.domain = DOMAIN;
    bo.max_sessions = w->bridge_max_sessions;
    bo.backoff_min_ms = bo.backoff_max_ms = w->bridge_backoff_ms;
    assert_int_equal(vrev__bridge_new(e, "bridge", &bo, &w->bridge), 0);
    assert_int_equal(vrev__bridge_start(w->bridge), 0);
}

/* The loop, the echo server and the client's buffer; then portal_up() and bridge_up(). */
static void world_setup(struct world *w, uint32_t drain_after, uint32_t heartbeat_ms)
{
    memset(w, 0, sizeof(*w));
    w->drain_after = drain_after;
    w->heartbeat_ms = heartbeat_ms;
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, echo_accept, w, &w->echo), 0);
    w->got = evbuffer_new();
}

static void world_done(struct world *w)
{
    if (w->client)
        bufferevent_free(w->client);
    vrev__bridge_free(w->bridge); /* NULL: no bridge was started */
    vrev__engine_cleanup(&w->bridge_engine);
    if (w->portal)
        portal_down(w);
    for (int i = 0; i < w->n_echo; i++)
        if (w->echo_conns[i])
            bufferevent_free(w->echo_conns[i]);
    vrev__listener_free(w->echo);
    evbuffer_free(w->got);
    event_base_loop(w->base, EVLOOP_NONBLOCK); /* deferred callbacks release their refs */
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

/* Run the loop until cond(w) holds or `ms` pass; returns cond(w). */
static bool run_until(struct world *w, bool (*cond)(struct world *), int ms)
{
    for (int t = 0; t < ms && !cond(w); t += 10) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
    return cond(w);
}

static struct vrev__portal_stats portal_stats(struct world *w)
{
    struct vrev__portal_stats st;
    vrev__portal_get_stats(w->portal, &st);
    return st;
}

static struct vrev__bridge_stats bridge_stats(struct world *w)
{
    struct vrev__bridge_stats st;
    vrev__bridge_get_stats(w->bridge, &st);
    return st;
}

static bool tunnel_live(struct world *w)
{
    return portal_stats(w).tunnels_live >= 1;
}

static bool no_tunnel_live(struct world *w)
{
    return portal_stats(w).tunnels_live == 0;
}

static bool two_tunnels_opened(struct world *w)
{
    return portal_stats(w).tunnels_opened >= 2;
}

static bool old_tunnel_closed(struct world *w)
{
    return portal_stats(w).tunnels_closed >= 1;
}

static bool bridge_two_tunnels(struct world *w)
{
    return bridge_stats(w).tunnels_opened >= 2;
}

/* Milliseconds from `t0` to `t1`. */
static long ms_between(const struct timeval *t0, const struct timeval *t1)
{
    return (t1->tv_sec - t0->tv_sec) * 1000 + (t1->tv_usec - t0->tv_usec) / 1000;
}

/* Run the loop until the portal has a live tunnel; returns how many ms that took. */
static long ms_until_tunnel_live(struct world *w)
{
    struct timeval t0, t1;
    evutil_gettimeofday(&t0, NULL);
    assert_true(run_until(w, tunnel_live, 3000));
    evutil_gettimeofday(&t1, NULL);
    return ms_between(&t0, &t1);
}

/* portal_up() and bridge_up(), then wait for the tunnel. */
static void world_up(struct world *w)
{
    portal_up(w);
    bridge_up(w);
    assert_true(run_until(w, tunnel_live, 3000));
}

/* world_setup() and world_up(): a world with a live tunnel. */
static void world_init(struct world *w, uint32_t drain_after, uint32_t heartbeat_ms)
{
    world_setup(w, drain_after, heartbeat_ms);
    world_up(w);
}

static bool got_all(struct world *w)
{
    return evbuffer_get_length(w->got) >= w->want || w->client_eof;
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    evbuffer_add_buffer(w->got, bufferevent_get_input(bev));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    struct world *w = arg;
    client_read(bev, arg);
    w->client_eof = (what & BEV_EVENT_EOF) ? 1 : -1;
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev;
    bufferevent_setcb(bev, client_read, NULL, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_write(bev, "hello through the tunnel", 24);
}

static void roundtrip(struct world *w)
{
    if (w->client)
        bufferevent_free(w->client);
    w->client = NULL;
    w->client_eof = 0;
    evbuffer_drain(w->got, evbuffer_get_length(w->got));
    w->want = 24;
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__inbound_port(w->external)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, client_dialed, w, NULL), 0);
    assert_true(run_until(w, got_all, 5000));
    assert_int_equal(evbuffer_get_length(w->got), 24);
    assert_memory_equal(evbuffer_pullup(w->got, -1), "hello through the tunnel", 24);
}

static void test_reverse_roundtrip(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 0, 0);
    roundtrip(&w);
    roundtrip(&w);
    struct vrev__bridge_stats bs = bridge_stats(&w);
    assert_int_equal(bs.sessions, 2);
    assert_int_equal(bs.tunnels_opened, 1);
    world_done(&w);
}

static void test_reverse_drain(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 3, 100); /* DRAIN once more than 3 sessions were opened */
    for (int i = 0; i < 3; i++)
        roundtrip(&w);
    /* control session + 3 = 4 > 3: the next heartbeat drains, the bridge opens another */
    assert_true(run_until(&w, two_tunnels_opened, 3000));
    assert_int_equal(bridge_stats(&w).drains, 1);
    roundtrip(&w); /* served by the new tunnel */
    /* the drained tunnel carries nothing and has a replacement: it closes within about a
     * second (IDLE_CHECK_MS), not at V2Ray's 16 s idle tick */
    assert_true(run_until(&w, old_tunnel_closed, 3000));
    roundtrip(&w);
    world_done(&w);
}

static void test_reverse_portal_restart(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 0, 0);
    roundtrip(&w);
    portal_down(&w);
    /* the portal is gone for a while; the bridge keeps trying */
    struct timeval tv = {1, 500000};
    event_base_loopexit(w.base, &tv);
    event_base_dispatch(w.base);
    portal_up(&w); /* same port */
    long ms = ms_until_tunnel_live(&w);
    print_message("tunnel back %ld ms after the portal restarted\n", ms);
    /* the dial goes out once per redial (the dialer's retries, 200..800 ms apart, held it
     * back: ~500 ms), redials are 25..100 ms apart */
    assert_true(ms <= 300);
    roundtrip(&w);
    world_done(&w);
}

/* --- clients held open ------------------------------------------------------------------ */

struct held {
    struct bufferevent *bev;
    size_t got; /* bytes echoed */
    int eof;    /* 1: end of stream, -1: error, -2: dial failed */
    struct timeval ended;
};

static void held_read(struct bufferevent *bev, void *arg)
{
    struct held *h = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    h->got += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void held_event(struct bufferevent *bev, short what, void *arg)
{
    struct held *h = arg;
    held_read(bev, arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        h->eof = (what & BEV_EVENT_EOF) ? 1 : -1;
        evutil_gettimeofday(&h->ended, NULL);
    }
}

static void held_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct held *h = arg;
    if (err) {
        h->eof = -2;
        return;
    }
    h->bev = bev;
    bufferevent_setcb(bev, held_read, NULL, held_event, h);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_write(bev, "ping", 4);
}

static void held_open(struct world *w, struct held *h)
{
    memset(h, 0, sizeof(*h));
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", vrev__inbound_port(w->external)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, held_dialed, h, NULL), 0);
}

static bool held_done(struct world *w)
{
    return w->watch->got >= w->watch_want || w->watch->eof;
}

/* Run the loop until `h` has one more echo than now (or its end), up to 3 s. */
static bool held_wait(struct world *w, struct held *h)
{
    w->watch = h;
    w->watch_want = h->got + 4;
    return run_until(w, held_done, 3000);
}

/* Open `h` and wait for the echo of its first ping. */
static void held_open_echoed(struct world *w, struct held *h)
{
    held_open(w, h);
    assert_true(held_wait(w, h));
    assert_int_equal(h->got, 4);
}

/* Send `h` another ping and wait for its echo (or its end). */
static bool held_echoes(struct world *w, struct held *h)
{
    if (h->bev && !h->eof)
        bufferevent_write(h->bev, "ping", 4);
    return held_wait(w, h) && h->got >= w->watch_want;
}

static void held_close(struct held *h, int n)
{
    for (int i = 0; i < n; i++)
        if (h[i].bev)
            bufferevent_free(h[i].bev);
}

/* A tunnel at the portal's max_sessions is drained at once (not at the next heartbeat, 2 s),
 * the next link waits for the replacement instead of going to the full or drained tunnel, and
 * the drained tunnel keeps serving its sessions. */
static void test_reverse_full_tunnel(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, 0, 0);
    w.portal_max_sessions = 3; /* the control session and two more */
    world_up(&w);
    struct held h[3];
    for (int i = 0; i < 2; i++)
        held_open_echoed(&w, &h[i]);
    assert_true(run_until(&w, two_tunnels_opened, 500)); /* long before a heartbeat */
    held_open_echoed(&w, &h[2]);                         /* on the new tunnel */
    struct vrev__portal_stats st = portal_stats(&w);
    assert_int_equal(st.tunnels_live, 2);
    assert_int_equal(st.sessions, 3);
    assert_int_equal(st.no_tunnel, 0);
    /* past two heartbeats: the drained tunnel still carries its two sessions */
    struct timeval tv = {4, 500000};
    event_base_loopexit(w.base, &tv);
    event_base_dispatch(w.base);
    for (int i = 0; i < 3; i++)
        assert_true(held_echoes(&w, &h[i]));
    assert_int_equal(portal_stats(&w).tunnels_live, 2);
    held_close(h, 3);
    world_done(&w);
}

/* A bridge whose tunnels are all full opens another at once, though the V2Ray rule (a new
 * tunnel when the average passes 16 sessions, checked every 2 s) would not; the portal (no cap
 * of its own here, like V2Ray's) then picks the new, emptier tunnel. */
static void test_reverse_bridge_full_opens_another(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, 0, 0);
    w.bridge_max_sessions = 3;
    world_up(&w);
    struct held h[3];
    for (int i = 0; i < 2; i++)
        held_open_echoed(&w, &h[i]);
    assert_true(run_until(&w, bridge_two_tunnels, 500));
    assert_true(run_until(&w, two_tunnels_opened, 500));
    held_open_echoed(&w, &h[2]);
    held_close(h, 3);
    world_done(&w);
}

/* A link that comes while no tunnel is up waits for one (then is served) instead of being
 * refused; with none within wait_ms it is refused, then. */
static void test_reverse_link_waits_for_tunnel(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, 0, 0);
    w.portal_wait_ms = 400;
    portal_up(&w);
    struct held h[2];
    held_open(&w, &h[0]);
    struct timeval t0, tv = {0, 200000};
    event_base_loopexit(w.base, &tv);
    event_base_dispatch(w.base);
    assert_int_equal(h[0].eof, 0); /* still waiting */
    bridge_up(&w);
    assert_true(held_wait(&w, &h[0]));
    assert_int_equal(h[0].got, 4);
    assert_int_equal(portal_stats(&w).waited, 1);
    /* no tunnel at all now: refused once wait_ms have passed */
    vrev__bridge_free(w.bridge);
    w.bridge = NULL;
    vrev__engine_cleanup(&w.bridge_engine);
    assert_true(run_until(&w, no_tunnel_live, 3000));
    held_open(&w, &h[1]);
    evutil_gettimeofday(&t0, NULL);
    assert_true(held_wait(&w, &h[1]));
    assert_int_not_equal(h[1].eof, 0);
    long ms = ms_between(&t0, &h[1].ended);
    assert_in_range(ms, 300, 2000);
    assert_int_equal(portal_stats(&w).no_tunnel, 1);
    held_close(h, 2);
    world_done(&w);
}

/* The first redial after losing a tunnel that was up goes out at once, not after the backoff's
 * first delay (here 400..600 ms; it was 80..120 ms by default): a portal back on its port
 * before the bridge noticed is served again in a few ms. */
static void test_reverse_first_redial_at_once(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, 0, 0);
    w.bridge_backoff_ms = 500;
    world_up(&w);
    roundtrip(&w);
    bufferevent_free(w.client); /* its session goes with the portal */
    w.client = NULL;
    portal_down(&w);
    portal_up(&w); /* same port, before the loop runs again */
    long ms = ms_until_tunnel_live(&w);
    print_message("tunnel back %ld ms after an instant portal restart\n", ms);
    assert_true(ms < 200);
    roundtrip(&w);
    world_done(&w);
}

/* The bridge runs its mux on the stream its outbound dialed (issue M10): the socket below the
 * tunnel's stack is the connection to the portal's VMess inbound, reached through the
 * layers, with the dead-tunnel timeout on it; no relay carries the tunnel (it was a pair
 * relayed to the dialed stream: the bridge engine counted one relay per tunnel). */
static void test_reverse_tunnel_on_dialed_socket(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 0, 0);
    evutil_socket_t fd = vrev__bridge_tunnel_fd(w.bridge);
    assert_true(fd >= 0);
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &len), 0);
    assert_int_equal(ntohs(peer.sin_port), w.interconn_port);
    unsigned int user_timeout = 0;
    len = sizeof(user_timeout);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, &len), 0);
    assert_int_equal(user_timeout, 7000); /* dead_after_ms's default */
    assert_int_equal(w.bridge_engine.stats.relays_live, 0);
    roundtrip(&w);
    /* the session's relay (to the echo service) only */
    assert_int_equal(w.bridge_engine.stats.relays_live, 1);
    world_done(&w);
}

static bool never(struct world *w)
{
    (void)w;
    return false;
}

static bool bridge_redialled(struct world *w)
{
    return bridge_stats(w).tunnels_opened >= 4;
}

/* A tunnel whose dial fails reaches the bridge's backoff: redialled after 25 ms doubling to
 * 100 ms (defaults), so neither stuck (one dial) nor a busy loop; the portal back on its port
 * gets its tunnel within a backoff period. */
static void test_reverse_dial_failure_backs_off(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, 0, 0);
    portal_up(&w);
    portal_down(&w); /* its port, now refusing */
    bridge_up(&w);
    struct timeval t0, t1;
    evutil_gettimeofday(&t0, NULL);
    assert_true(run_until(&w, bridge_redialled, 2000));
    evutil_gettimeofday(&t1, NULL);
    long ms = ms_between(&t0, &t1);
    run_until(&w, never, 1000 - (int)(ms < 1000 ? ms : 1000)); /* about 1 s in all */
    struct vrev__bridge_stats st = bridge_stats(&w);
    print_message("%llu dials in about 1 s (4 after %ld ms)\n",
                  (unsigned long long)st.tunnels_opened, ms);
    assert_true(ms >= 100);               /* the retries waited: 25, 50, 100 ms, +-20 % */
    assert_true(st.tunnels_opened <= 30); /* about 1 s at 100 ms: no busy loop */
    assert_true(st.tunnels_closed + 1 >= st.tunnels_opened);
    assert_true(w.bridge_engine.stats.dial_failures >= 3);
    assert_true(vrev__bridge_tunnel_fd(w.bridge) < 0);
    portal_up(&w); /* the same port */
    assert_true(ms_until_tunnel_live(&w) < 500);
    roundtrip(&w);
    world_done(&w);
}

/* The bridge freed while its tunnel is being dialed: the dial's end finds no bridge (ASan). */
static void test_reverse_free_while_dialing(void **state)
{
    (void)state;
    struct world w;
    world_setup(&w, 0, 0);
    portal_up(&w);
    bridge_up(&w);
    struct timeval tv = {0, 0};
    event_base_loopexit(w.base, &tv);
    event_base_dispatch(w.base); /* the monitor's first run: the dial starts */
    assert_int_equal(bridge_stats(&w).tunnels_opened, 1);
    vrev__bridge_free(w.bridge);
    w.bridge = NULL;
    run_until(&w, never, 200); /* the dial and the VMess handshake end, unclaimed */
    assert_int_equal(portal_stats(&w).tunnels_live, 0);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reverse_roundtrip),
        cmocka_unit_test(test_reverse_drain),
        cmocka_unit_test(test_reverse_portal_restart),
        cmocka_unit_test(test_reverse_full_tunnel),
        cmocka_unit_test(test_reverse_bridge_full_opens_another),
        cmocka_unit_test(test_reverse_link_waits_for_tunnel),
        cmocka_unit_test(test_reverse_first_redial_at_once),
        cmocka_unit_test(test_reverse_tunnel_on_dialed_socket),
        cmocka_unit_test(test_reverse_dial_failure_backs_off),
        cmocka_unit_test(test_reverse_free_while_dialing),
    };
    return cmocka_run_group_tests_name("reverse", tests, NULL, NULL);
}
