/* A bridge portal given by a host name with several addresses (lib/api/tunnel_resolve.c): a
 * tunnel set to each address, events naming "NAME:PORT (ADDRESS)", an address gone winding its
 * leg down (no redial), one address back to the one leg dialled by name, the cap on legs. The
 * names come from a hosts file loaded into the bridge's resolver (answers at once). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include "api/tunnel_internal.h"
#include "testutil.h"
#include "vrev.h"

#define UUID "5783a3e7-e373-51cd-8642-c83782b807c5"

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    vrev_portal *portal[2]; /* on 127.0.0.1:port and [::1]:port */
    unsigned port;
    vrev_bridge *bridge;
    char name[2][64]; /* the event name of each portal's leg */
    int up[2], down[2], other;
    char other_name[128];
    char hosts[64];
    struct evconnlistener *echo; /* the bridge's target */
    unsigned echo_port;
};

static void bridge_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)up, (void)down;
    struct world *w = user;
    if (event != VREV_EVENT_TUNNEL_UP && event != VREV_EVENT_TUNNEL_DOWN)
        return;
    for (int i = 0; i < 2; i++)
        if (name && !strcmp(name, w->name[i])) {
            (event == VREV_EVENT_TUNNEL_UP ? w->up : w->down)[i]++;
            return;
        }
    w->other++;
    snprintf(w->other_name, sizeof(w->other_name), "%s", name ? name : "(null)");
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

static vrev_portal *portal_on(struct world *w, const char *listen)
{
    char err[256];
    vrev_tunnel_opts *o;
    vrev_portal *p = NULL;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, listen), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "web"), 0);
    int rc = vrev_portal_new(&p, w->ctx, o, err, sizeof(err));
    vrev_tunnel_opts_free(o);
    return rc == 0 ? p : NULL;
}

/* Two portals on the same port, one per address family (a few ports tried). */
static void portals_up(struct world *w)
{
    for (int tries = 0; tries < 20 && !w->portal[1]; tries++) {
        char hp[64];
        vrev_portal_free(w->portal[0]);
        w->portal[0] = portal_on(w, "127.0.0.1:0");
        assert_non_null(w->portal[0]);
        w->port = vrev_portal_tunnel_port(w->portal[0]);
        snprintf(hp, sizeof(hp), "[::1]:%u", w->port);
        w->portal[1] = portal_on(w, hp);
    }
    assert_non_null(w->portal[1]);
    snprintf(w->name[0], sizeof(w->name[0]), "localhost:%u (127.0.0.1)", w->port);
    snprintf(w->name[1], sizeof(w->name[1]), "localhost:%u (::1)", w->port);
}

/* The bridge's resolver answers "localhost" from these lines only. */
static void hosts(struct world *w, const char *lines)
{
    FILE *f = fopen(w->hosts, "w");
    assert_non_null(f);
    fputs(lines, f);
    fclose(f);
    struct evdns_base *dns = vrev__engine_dns(&w->bridge->engine);
    evdns_base_clear_host_addresses(dns);
    assert_int_equal(evdns_base_load_hosts(dns, w->hosts), 0);
    vrev__bridge_names_resolve_now(w->bridge);
}

static uint64_t ptunnels(struct world *w, int i)
{
    return vrev_portal_counter(w->portal[i], VREV_COUNTER_TUNNELS);
}

static void wait_tunnels(struct world *w, uint64_t want0, uint64_t want1)
{
    for (int k = 0; k < 300 && (ptunnels(w, 0) != want0 || ptunnels(w, 1) != want1); k++)
        run_ms(w, 10);
}

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what, (void)arg;
    bufferevent_free(bev);
}

static void echo_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                        void *arg)
{
    (void)l, (void)sa, (void)len;
    struct world *w = arg;
    struct bufferevent *bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    bufferevent_setcb(bev, echo_read, NULL, echo_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void echo_up(struct world *w)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    w->echo =
        evconnlistener_new_bind(w->base, echo_accept, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&a, sizeof(a));
    assert_non_null(w->echo);
    assert_int_equal(getsockname(evconnlistener_get_fd(w->echo), (struct sockaddr *)&a, &len), 0);
    w->echo_port = ntohs(a.sin_port);
}

/* A public client of portal i that sent 5 bytes: NULL if they did not come back. */
static struct bufferevent *client(struct world *w, int i)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)vrev_portal_public_port(w->portal[i], 0));
    struct bufferevent *c = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(c);
    assert_int_equal(bufferevent_socket_connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    bufferevent_enable(c, EV_READ | EV_WRITE);
    bufferevent_write(c, "hello", 5);
    struct evbuffer *in = bufferevent_get_input(c);
    for (int k = 0; k < 200 && evbuffer_get_length(in) < 5; k++)
        run_ms(w, 10);
    if (evbuffer_get_length(in) == 5 && !memcmp(evbuffer_pullup(in, 5), "hello", 5))
        return c;
    bufferevent_free(c);
    return NULL;
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->hosts, sizeof(w->hosts), "/tmp/vrev-multi-addr-%ld.hosts", (long)getpid());
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    portals_up(w);
    echo_up(w);
    char err[256], hp[64], to[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    snprintf(hp, sizeof(hp), "localhost:%u", w->port);
    assert_int_equal(vrev_tunnel_opts_add_portal(o, hp), 0);
    snprintf(to, sizeof(to), "127.0.0.1:%u", w->echo_port);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", to), 0);
    assert_int_equal(vrev_bridge_new(&w->bridge, w->ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    vrev_bridge_set_event_cb(w->bridge, bridge_event, w);
}

static void world_done(struct world *w)
{
    vrev_bridge_free(w->bridge);
    for (int i = 0; i < 2; i++)
        vrev_portal_free(w->portal[i]);
    evconnlistener_free(w->echo);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
    unlink(w->hosts);
}

static void test_a_leg_per_address(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    hosts(&w, "127.0.0.1 localhost\n::1 localhost\n");
    assert_int_equal(vrev_bridge_start(w.bridge), 0);
    wait_tunnels(&w, 1, 1); /* a tunnel to each address of the name */
    assert_int_equal(ptunnels(&w, 0), 1);
    assert_int_equal(ptunnels(&w, 1), 1);
    for (int k = 0; k < 100 && (w.up[0] < 1 || w.up[1] < 1); k++)
        run_ms(&w, 10);
    assert_int_equal(w.up[0], 1);
    assert_int_equal(w.up[1], 1);
    assert_int_equal(w.other, 0);
    assert_int_equal(w.bridge->n_legs, 2);

    /* ::1 is no longer an address of the name: its tunnel closes (idle) and is not redialled;
     * one address left: the one leg dialled by name, as without names */
    uint64_t opened = vrev_bridge_counter(w.bridge, VREV_COUNTER_TUNNELS_OPENED);
    hosts(&w, "127.0.0.1 localhost\n");
    wait_tunnels(&w, 1, 0);
    assert_int_equal(ptunnels(&w, 1), 0);
    assert_int_equal(w.down[1], 1);
    run_ms(&w, 1200); /* the leg gone idle is freed: its counts stay in the bridge's */
    assert_int_equal(w.bridge->n_retiring, 0);
    /* one more: the tunnel by name replacing the one to 127.0.0.1 */
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_TUNNELS_OPENED), opened + 1);
    assert_int_equal(vrev_portal_counter(w.portal[1], VREV_COUNTER_TUNNELS_OPENED), 1);
    assert_int_equal(ptunnels(&w, 0), 1);
    assert_int_equal(w.bridge->n_legs, 1);
    char plain[64];
    snprintf(plain, sizeof(plain), "localhost:%u", w.port);
    assert_string_equal(w.bridge->legs[0]->portal, plain);

    /* ::1 back: a new tunnel to it, its leg's events named by the address again */
    hosts(&w, "::1 localhost\n127.0.0.1 localhost\n");
    wait_tunnels(&w, 1, 1);
    for (int k = 0; k < 100 && w.up[1] < 2; k++)
        run_ms(&w, 10);
    assert_int_equal(ptunnels(&w, 1), 1);
    assert_int_equal(vrev_portal_counter(w.portal[1], VREV_COUNTER_TUNNELS_OPENED), 2);
    assert_int_equal(w.up[1], 2);
    assert_int_equal(w.bridge->n_legs, 2);
    assert_string_equal(w.bridge->legs[0]->portal, w.name[0]); /* sorted: IPv4 first */
    assert_string_equal(w.bridge->legs[1]->portal, w.name[1]);
    assert_int_equal(vrev_bridge_counter(w.bridge, VREV_COUNTER_TUNNELS), 2);
    world_done(&w);
}

/* An address gone: its tunnel serves its sessions, and new ones its portal still sends, until
 * it carries none; then it closes and is not redialled. */
static void test_address_gone_serves_until_idle(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    hosts(&w, "127.0.0.1 localhost\n::1 localhost\n");
    assert_int_equal(vrev_bridge_start(w.bridge), 0);
    wait_tunnels(&w, 1, 1);
    struct bufferevent *a = client(&w, 1);
    assert_non_null(a);
    hosts(&w, "127.0.0.1 localhost\n");
    run_ms(&w, 1200); /* more than a monitor round: the tunnel to ::1 stays, a session on it */
    assert_int_equal(ptunnels(&w, 1), 1);
    assert_int_equal(w.bridge->n_retiring, 1);
    struct bufferevent *b = client(&w, 1); /* a new session through it is served */
    assert_non_null(b);
    bufferevent_write(a, "again", 5); /* and the first one still works */
    struct evbuffer *in = bufferevent_get_input(a);
    for (int k = 0; k < 200 && evbuffer_get_length(in) < 10; k++)
        run_ms(&w, 10);
    assert_int_equal(evbuffer_get_length(in), 10);
    bufferevent_free(a);
    bufferevent_free(b);
    for (int k = 0; k < 300 && ptunnels(&w, 1) > 0; k++)
        run_ms(&w, 10);
    assert_int_equal(ptunnels(&w, 1), 0); /* idle: closed */
    run_ms(&w, 1200);
    assert_int_equal(w.bridge->n_retiring, 0);
    assert_int_equal(vrev_portal_counter(w.portal[1], VREV_COUNTER_TUNNELS_OPENED), 1);
    assert_non_null(b = client(&w, 0)); /* 127.0.0.1 serves on */
    bufferevent_free(b);
    world_done(&w);
}

/* More addresses than VREV_TUNNEL_MAX_PORTALS: legs to the first ones only. */
static void test_addresses_capped(void **state)
{
    (void)state;
    struct world w;
    char lines[2048] = "";
    world_init(&w);
    for (int i = 1; i <= VREV_TUNNEL_MAX_PORTALS + 4; i++)
        snprintf(lines + strlen(lines), sizeof(lines) - strlen(lines), "127.0.0.%d localhost\n", i);
    hosts(&w, lines);
    assert_int_equal(w.bridge->n_legs, VREV_TUNNEL_MAX_PORTALS);
    assert_int_equal(vrev_bridge_start(w.bridge), 0);
    wait_tunnels(&w, 1, 0); /* 127.0.0.1 is one of them */
    assert_int_equal(ptunnels(&w, 0), 1);
    world_done(&w);
}

/* A reload keeps the addresses known: no tunnel renewed when the options did not change. */
static void test_reload_keeps_address_legs(void **state)
{
    (void)state;
    struct world w;
    char err[256], hp[64];
    world_init(&w);
    hosts(&w, "127.0.0.1 localhost\n::1 localhost\n");
    assert_int_equal(vrev_bridge_start(w.bridge), 0);
    wait_tunnels(&w, 1, 1);
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w.ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    snprintf(hp, sizeof(hp), "localhost:%u", w.port);
    assert_int_equal(vrev_tunnel_opts_add_portal(o, hp), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", w.echo_port);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", hp), 0);
    assert_int_equal(vrev_bridge_reload(w.bridge, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    run_ms(&w, 300);
    assert_int_equal(w.bridge->n_legs, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ptunnels(&w, i), 1);
        assert_int_equal(vrev_portal_counter(w.portal[i], VREV_COUNTER_TUNNELS_OPENED), 1);
    }
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_leg_per_address),
        cmocka_unit_test(test_address_gone_serves_until_idle),
        cmocka_unit_test(test_addresses_capped),
        cmocka_unit_test(test_reload_keeps_address_legs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
