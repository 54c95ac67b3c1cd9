/* A real bridge (lib/reverse/bridge.c in an engine, its tunnel dialled through a freedom
 * outbound) against a hostile portal on 127.0.0.2 that speaks raw Mux.Cool made with the
 * project's encoder (issue M7, findings 1 and 2; RELIABILITY §2.5). The sessions it opens go to
 * a counting service through another freedom outbound.
 *   - 5,000 New+End pairs: the bridge dials at most what its session rate allows (here 1,000
 *     a second, burst 100), and the tunnel stays up;
 *   - 4,000,000 Keep frames for dead ids from a portal that never reads: the bridge's memory
 *     does not grow with them (measured as the process's resident set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "codec/mux_internal.h"
#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "testutil.h"

#define DOMAIN "hostile.test"

enum gen_kind { GEN_NEW_END, GEN_KEEP_DEAD };

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__listener *service, *portal;
    unsigned accepted;          /* connections the service accepted (bridge dials) */
    struct bufferevent *tunnel; /* the hostile portal's end of the tunnel */
    struct vrev__engine engine;
    struct vrev__bridge *bridge;
    enum gen_kind kind;
    uint64_t made, total;
};

static void service_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    w->accepted++;
    evutil_closesocket(fd);
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

/* Another 256 KiB of frames once the last have gone into the socket. */
static void generate(struct bufferevent *bev, void *arg)
{
    struct world *w = arg;
    struct evbuffer *out = bufferevent_get_output(bev);
    while (w->made < w->total && evbuffer_get_length(out) < 256 * 1024) {
        uint16_t sid = (uint16_t)(1 + w->made % 65535);
        if (w->kind == GEN_NEW_END) {
            put(out, sid, VREV_MUX_NEW, 0, 0);
            put(out, sid, VREV_MUX_END, 0, 0);
        } else {
            put(out, sid, VREV_MUX_KEEP, 1, 1);
        }
        w->made++;
    }
}

static void portal_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct world *w = arg;
    if (w->tunnel) { /* one tunnel is enough */
        evutil_closesocket(fd);
        return;
    }
    w->tunnel = vrev__bev_socket(w->ctx, fd);
    bufferevent_setcb(w->tunnel, NULL, generate, NULL, w);
    bufferevent_setwatermark(w->tunnel, EV_WRITE, 64 * 1024, 0);
    bufferevent_enable(w->tunnel, EV_WRITE); /* never reads */
    generate(w->tunnel, w);
}

#define LIST(...)                                                                                  \
    ((struct vrev__strlist){(const char *const[]){__VA_ARGS__},                                    \
                            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)})

static void world_init(struct world *w, enum gen_kind kind, uint64_t total)
{
    memset(w, 0, sizeof(*w));
    w->kind = kind;
    w->total = total;
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "sessionRate", 1000), 0);
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "sessionBurst", 100), 0);
    /* the dials in progress per tunnel are capped too (at 512): not what is measured here */
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "dialsPerTunnel", 1000000), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.1", 0, service_accept, w, &w->service), 0);
    assert_int_equal(vrev__listener_new(w->ctx, "127.0.0.2", 0, portal_accept, w, &w->portal), 0);
    struct vrev__engine *e = &w->engine;
    assert_int_equal(vrev__engine_init(e, w->ctx), 0);
    /* the bridge's tunnels take the engine's rate (a JSON "vrev" object may set it), not the
     * context's, which is changed now to show it */
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "sessionRate", 1000000), 0);
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "sessionBurst", 1000000), 0);
    struct vrev__outbound *ob;
    struct vrev__freedom_opts out = {"127.0.0.1", vrev__listener_port(w->service), VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(e, "out", &out, &ob), 0);
    assert_int_equal(vrev__engine_add_outbound(e, ob), 0);
    struct vrev__freedom_opts tun = {"127.0.0.2", vrev__listener_port(w->portal), VREV_DS_AS_IS};
    assert_int_equal(vrev__freedom_new(e, "interconn", &tun, &ob), 0);
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
    assert_int_equal(vrev__bridge_new(e, "bridge", &bo, &w->bridge), 0);
    assert_int_equal(vrev__bridge_start(w->bridge), 0);
}

static void world_done(struct world *w)
{
    if (w->tunnel)
        bufferevent_free(w->tunnel);
    vrev__bridge_free(w->bridge);
    vrev__engine_cleanup(&w->engine);
    vrev__listener_free(w->service);
    vrev__listener_free(w->portal);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

static void run_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* Resident set of this process, in KiB (Linux). */
static double seconds_since(const struct timeval *t0)
{
    struct timeval t1;
    evutil_gettimeofday(&t1, NULL);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_usec - t0->tv_usec) / 1e6;
}

static void test_bridge_rapid_reset(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, GEN_NEW_END, 5000);
    struct timeval t0;
    evutil_gettimeofday(&t0, NULL);
    for (int t = 0; t < 5000 && !(w.made == w.total && w.tunnel &&
                                  !evbuffer_get_length(bufferevent_get_output(w.tunnel)));
         t += 10)
        run_ms(&w, 10);
    run_ms(&w, 500); /* dials in progress finish */
    double s = seconds_since(&t0);
    struct vrev__bridge_stats st;
    vrev__bridge_get_stats(w.bridge, &st);
    print_message("bridge rapid reset: %llu New+End in %.2f s: %u dials reached the service, "
                  "%llu sessions dispatched\n",
                  (unsigned long long)w.made, s, w.accepted, (unsigned long long)st.sessions);
    assert_int_equal(w.made, 5000);
    assert_true(w.accepted <= 100 + (unsigned)(1000 * s) + 1);
    assert_true(st.sessions <= 100 + (unsigned)(1000 * s) + 1);
    assert_int_equal(st.sessions + st.mux.refused_rate, 5000); /* every refusal counted */
    assert_int_equal(st.tunnels_closed, 0);
    world_done(&w);
}

static void test_bridge_dead_id_flood(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, GEN_KEEP_DEAD, 4000000);
    run_ms(&w, 200); /* the tunnel */
    long before = tu_mem_kib();
    for (int t = 0; t < 15000 && w.made < w.total; t += 100)
        run_ms(&w, 100);
    long after = tu_mem_kib();
    print_message("bridge dead-id flood: %llu Keep frames (%llu MB) sent by a portal that never "
                  "reads: memory %ld -> %ld KiB\n",
                  (unsigned long long)w.made, (unsigned long long)(w.made * 9 >> 20), before,
                  after);
    /* answered each, 24 MB of End frames: the bridge answers each id once per window */
    assert_int_equal(w.made, w.total);
    assert_true(after - before < 2048);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bridge_rapid_reset),
        cmocka_unit_test(test_bridge_dead_id_flood),
    };
    return cmocka_run_group_tests_name("bridge_mux_abuse", tests, NULL, NULL);
}
