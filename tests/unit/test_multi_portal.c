/* A bridge with several portals (vrev_tunnel_opts_add_portal): the options, tunnels to each
 * portal, sessions through either, one portal gone (the other keeps serving) and back, counters
 * summed over the portals, tunnel events naming the portal, and a reload that adds or removes a
 * portal touching that portal's tunnels only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/net.h"
#include "testutil.h"
#include "vrev.h"

#define UUID "5783a3e7-e373-51cd-8642-c83782b807c5"

static void test_portal_options(void **state)
{
    (void)state;
    vrev_tunnel_opts *o;
    char buf[8192];
    assert_int_equal(vrev_tunnel_opts_new(&o, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:8080"), 0);
    assert_int_equal(vrev_tunnel_opts_add_portal(o, "nope"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_add_portal(NULL, "a.example:443"), VREV_ERR_INVAL);
    assert_int_equal(vrev_tunnel_opts_add_portal(o, "a.example:443"), 0);
    assert_int_equal(vrev_tunnel_opts_add_portal(o, "a.example:443"), VREV_ERR_INVAL);
    assert_non_null(strstr(vrev_tunnel_opts_error(o), "twice"));
    assert_int_equal(vrev_tunnel_opts_add_portal(o, "192.0.2.7:8443"), 0);
    /* two portals: a reverse bridge, an interconn and a tunnel rule each */
    int n = vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_non_null(strstr(buf, "{ \"tag\": \"bridge-0\", \"domain\": \"tunnel.vrev.internal\" }, "
                                "{ \"tag\": \"bridge-1\""));
    assert_non_null(strstr(buf, "\"tag\": \"interconn-1\", \"protocol\": \"vmess\",\n      "
                                "\"settings\": { \"vnext\": [ { \"address\": \"192.0.2.7\", "
                                "\"port\": 8443"));
    assert_non_null(strstr(buf,
                           "\"inboundTag\": [ \"bridge-1\" ], \"domain\": [ "
                           "\"full:tunnel.vrev.internal\" ], \"outboundTag\": \"interconn-1\""));
    assert_non_null(strstr(buf, "\"inboundTag\": [ \"bridge-0\", \"bridge-1\" ], \"network\": "
                                "\"tcp\", \"domain\": [ \"full:web\" ]"));
    /* set_portal replaces the list: one portal, V2Ray's usual tags */
    assert_int_equal(vrev_tunnel_opts_set_portal(o, "b.example:443"), 0);
    n = vrev_tunnel_opts_print_config(o, 0, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_null(strstr(buf, "interconn-"));
    assert_null(strstr(buf, "a.example"));
    assert_non_null(strstr(buf, "\"tag\": \"interconn\", \"protocol\": \"vmess\""));
    assert_non_null(strstr(buf, "\"inboundTag\": [ \"bridge\" ], \"outboundTag\": \"deny\""));
    for (int i = 1; i < VREV_TUNNEL_MAX_PORTALS; i++) {
        char hp[32];
        snprintf(hp, sizeof(hp), "127.0.0.%d:1", i);
        assert_int_equal(vrev_tunnel_opts_add_portal(o, hp), 0);
    }
    assert_int_equal(vrev_tunnel_opts_add_portal(o, "127.0.0.99:1"), VREV_ERR_INVAL);
    vrev_tunnel_opts_free(o);
}

#define NP 2

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    vrev_portal *portal[NP];
    unsigned port[NP]; /* each portal's tunnel port (kept across a restart) */
    char hp[NP][32];   /* "127.0.0.1:<port>" */
    vrev_bridge *bridge;
    int up[NP], down[NP]; /* the bridge's tunnel events, by the portal they name */
    int other_events;     /* tunnel events naming no portal of ours */
    struct bufferevent *client;
    struct evbuffer *got;
};

static void bridge_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)up, (void)down;
    struct world *w = user;
    if (event != VREV_EVENT_TUNNEL_UP && event != VREV_EVENT_TUNNEL_DOWN)
        return;
    for (int i = 0; i < NP; i++)
        if (name && !strcmp(name, w->hp[i])) {
            (event == VREV_EVENT_TUNNEL_UP ? w->up : w->down)[i]++;
            return;
        }
    w->other_events++;
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* Portal i on its port (0 the first time: a free one). */
static void portal_up(struct world *w, int i)
{
    char err[256], hp[32];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", w->port[i]);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, hp), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "echo"), 0);
    assert_int_equal(vrev_portal_new(&w->portal[i], w->ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    w->port[i] = vrev_portal_tunnel_port(w->portal[i]);
    snprintf(w->hp[i], sizeof(w->hp[i]), "127.0.0.1:%u", w->port[i]);
}

/* Bridge options for the portals in `mask` (bit i: portal i). */
static vrev_tunnel_opts *bridge_opts(struct world *w, unsigned mask)
{
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    for (int i = 0; i < NP; i++)
        if (mask & (1u << i))
            assert_int_equal(vrev_tunnel_opts_add_portal(o, w->hp[i]), 0);
    assert_int_equal(vrev_tunnel_opts_add_handler(o, "echo", tu_stream_echo_accept, w), 0);
    return o;
}

static uint64_t ptunnels(struct world *w, int i)
{
    return vrev_portal_counter(w->portal[i], VREV_COUNTER_TUNNELS);
}

static void wait_tunnels(struct world *w, unsigned mask)
{
    for (int k = 0; k < 300; k++) {
        bool all = true;
        for (int i = 0; i < NP; i++)
            if (mask & (1u << i))
                all = all && w->portal[i] && ptunnels(w, i) > 0;
        if (all)
            break;
        run_ms(w, 10);
    }
}

/* Until the bridge has seen n TUNNEL_UP events for portal i (they may follow the portal's). */
static void wait_up(struct world *w, int i, int n)
{
    for (int k = 0; k < 300 && w->up[i] < n; k++)
        run_ms(w, 10);
}

static void world_init(struct world *w, unsigned mask)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    w->got = evbuffer_new();
    for (int i = 0; i < NP; i++)
        portal_up(w, i);
    char err[256];
    vrev_tunnel_opts *o = bridge_opts(w, mask);
    assert_int_equal(vrev_bridge_new(&w->bridge, w->ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    vrev_bridge_set_event_cb(w->bridge, bridge_event, w);
    assert_int_equal(vrev_bridge_start(w->bridge), 0);
    wait_tunnels(w, mask);
    for (int i = 0; i < NP; i++)
        if (mask & (1u << i))
            wait_up(w, i, 1);
}

static void world_done(struct world *w)
{
    if (w->client)
        bufferevent_free(w->client);
    vrev_bridge_free(w->bridge);
    for (int i = 0; i < NP; i++)
        vrev_portal_free(w->portal[i]);
    evbuffer_free(w->got);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    evbuffer_add_buffer(w->got, bufferevent_get_input(bev));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    client_read(bev, arg);
}

static void client_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct world *w = arg;
    assert_int_equal(err, 0);
    w->client = bev;
    bufferevent_setcb(bev, client_read, NULL, client_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_write(bev, "0123456789", 10);
}

/* A public client of portal i: its 10 bytes echoed back through the bridge? */
static size_t echo_via(struct world *w, int i)
{
    struct vrev__addr a;
    evbuffer_drain(w->got, evbuffer_get_length(w->got));
    assert_int_equal(
        vrev__addr_from_text(&a, "127.0.0.1", vrev_portal_public_port(w->portal[i], 0)), 0);
    assert_int_equal(vrev__tcp_dial(w->ctx, NULL, &a, 2000, client_dialed, w, NULL), 0);
    for (int k = 0; k < 300 && evbuffer_get_length(w->got) < 10; k++)
        run_ms(w, 10);
    size_t n = evbuffer_get_length(w->got);
    bufferevent_free(w->client);
    w->client = NULL;
    run_ms(w, 20);
    return n;
}

static void test_two_portals_one_down_and_back(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 3);
    /* a tunnel to each portal; the bridge's counters sum them; the events name the portal */
    assert_int_equal(ptunnels(&w, 0), 1);
    assert_int_equal(ptunnels(&w, 1), 1);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_TUNNELS), 2);
    assert_int_equal(w.up[0], 1);
    assert_int_equal(w.up[1], 1);
    assert_int_equal(w.other_events, 0);
    assert_int_equal(echo_via(&w, 0), 10);
    assert_int_equal(echo_via(&w, 1), 10);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS), 2);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_BYTES_UP), 20);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_BYTES_DOWN), 20);
    assert_int_equal(vrev_portal_counter(w.portal[1], VREV_COUNTER_SESSIONS), 1);

    /* portal 1 goes: its tunnel is lost, portal 0 keeps serving */
    vrev_portal_free(w.portal[1]);
    w.portal[1] = NULL;
    for (int k = 0; k < 300 && !w.down[1]; k++)
        run_ms(&w, 10);
    assert_int_equal(w.down[1], 1);
    assert_int_equal(w.down[0], 0);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_TUNNELS), 1);
    assert_true(vrev_bridge_ready(w.bridge));
    run_ms(&w, 300); /* redials to the dead portal meanwhile */
    assert_int_equal(echo_via(&w, 0), 10);
    assert_int_equal(echo_via(&w, 0), 10);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS), 4);
    assert_int_equal(ptunnels(&w, 0), 1); /* portal 0's tunnel was never touched */
    assert_int_equal(w.up[0], 1);

    /* portal 1 back on its port: the bridge redials it and it serves again */
    portal_up(&w, 1);
    wait_tunnels(&w, 2);
    wait_up(&w, 1, 2);
    assert_int_equal(ptunnels(&w, 1), 1);
    assert_int_equal(w.up[1], 2);
    assert_int_equal(echo_via(&w, 1), 10);
    assert_int_equal(vrev_portal_counter(w.portal[1], VREV_COUNTER_SESSIONS), 1);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_TUNNELS), 2);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS), 5);
    world_done(&w);
}

static void reload(struct world *w, unsigned mask)
{
    char err[256];
    vrev_tunnel_opts *o = bridge_opts(w, mask);
    assert_int_equal(vrev_bridge_reload(w->bridge, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
}

static void test_reload_adds_and_removes_portals(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 1);
    assert_int_equal(ptunnels(&w, 0), 1);
    assert_int_equal(ptunnels(&w, 1), 0);
    /* add portal 1: portal 0's tunnel stays, portal 1 gets one */
    reload(&w, 3);
    wait_tunnels(&w, 3);
    wait_up(&w, 1, 1);
    assert_int_equal(ptunnels(&w, 1), 1);
    assert_int_equal(vrev_portal_counter(w.portal[0], VREV_COUNTER_TUNNELS_OPENED), 1);
    assert_int_equal(w.up[0], 1);
    assert_int_equal(w.down[0], 0);
    assert_int_equal(echo_via(&w, 0), 10);
    assert_int_equal(echo_via(&w, 1), 10);
    /* counters survive the reload */
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_SESSIONS), 2);
    /* remove portal 0: its tunnel closes, portal 1's stays */
    reload(&w, 2);
    for (int k = 0; k < 300 && ptunnels(&w, 0) > 0; k++)
        run_ms(&w, 10);
    assert_int_equal(ptunnels(&w, 0), 0);
    run_ms(&w, 200); /* and is not redialled */
    assert_int_equal(vrev_portal_counter(w.portal[0], VREV_COUNTER_TUNNELS_OPENED), 1);
    assert_int_equal(ptunnels(&w, 1), 1);
    assert_int_equal(vrev_portal_counter(w.portal[1], VREV_COUNTER_TUNNELS_OPENED), 1);
    assert_int_equal(echo_via(&w, 1), 10);
    assert_int_equal(vrev_bridge_reload_count(w.bridge, 0), 2);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_portal_options),
        cmocka_unit_test(test_two_portals_one_down_and_back),
        cmocka_unit_test(test_reload_adds_and_removes_portals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
