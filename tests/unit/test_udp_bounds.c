/* What UDP datagrams may wait for a slow link (lib/proxy/udp.c, issue M7): a dokodemo-door
 * UDP listener whose links are never read (a tunnel that does not move) holds at most
 * udpClientBytes per client and udpInboundBytes in all, counts them into ctx->buffered, drops
 * the rest (counted), and works again once the links move; nothing is taken in while the
 * process holds bufferedTotal; a freedom flow holds at most udpClientBytes of replies. */
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
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "proxy/udp.h"
#include "testutil.h"

#define CLIENTS 8
#define DGRAM 1000
#define CLIENT_CAP (64u << 10)
#define INBOUND_CAP (256u << 10)

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__engine e;
    struct vrev__udp_in *u;
    struct bufferevent *links[64]; /* handed to the stalled outbound, never read */
    int n_links;
    int fds[CLIENTS];
};

struct stall {
    struct vrev__outbound base; /* first */
    struct world *w;
};

static int stall_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                        struct bufferevent *link)
{
    (void)info;
    struct world *w = ((struct stall *)ob)->w;
    assert_true(w->n_links < 64);
    w->links[w->n_links++] = link; /* reading stays off: nothing leaves the inbound's side */
    return 0;
}

static void stall_destroy(struct vrev__outbound *ob)
{
    vrev__outbound_cleanup(ob);
    vrev__free(ob->engine->ctx, ob);
}

static const struct vrev__outbound_ops stall_ops = {
    .protocol = "stall", .handle = stall_handle, .destroy = stall_destroy};

static void run_once(struct world *w)
{
    event_base_loop(w->base, EVLOOP_NONBLOCK);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "udpClientBytes", CLIENT_CAP), 0);
    assert_int_equal(vrev_ctx_set_limit(w->ctx, "udpInboundBytes", INBOUND_CAP), 0);
    assert_int_equal(vrev__engine_init(&w->e, w->ctx), 0);
    struct stall *s = vrev__calloc(w->ctx, 1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(vrev__outbound_init(&s->base, &w->e, &stall_ops, "stall"), 0);
    s->w = w;
    assert_int_equal(vrev__engine_add_outbound(&w->e, &s->base), 0);
    struct vrev__addr target;
    assert_int_equal(vrev__addr_from_text(&target, "127.0.0.1", 53), 0);
    assert_int_equal(vrev__udp_in_new(&w->e, "udp-in", "127.0.0.1", 0, &target, &w->u), 0);
    for (int i = 0; i < CLIENTS; i++) { /* hostile clients from 127.0.0.2.. */
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)i);
        w->fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        assert_true(w->fds[i] >= 0);
        assert_int_equal(bind(w->fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons(vrev__udp_in_port(w->u));
        assert_int_equal(connect(w->fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
}

static void world_done(struct world *w)
{
    for (int i = 0; i < CLIENTS; i++)
        close(w->fds[i]);
    for (int i = 0; i < w->n_links; i++)
        if (w->links[i])
            bufferevent_free(w->links[i]);
    vrev__udp_in_free(w->u);
    vrev__engine_cleanup(&w->e);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    assert_int_equal(w->ctx->buffered, 0); /* every byte counted in was counted out */
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

/* Each client sends `bytes` in DGRAM datagrams, in rounds the loop keeps up with (the kernel
 * would drop a burst larger than the socket's buffer before the inbound saw it). */
static void flood(struct world *w, size_t bytes)
{
    static uint8_t d[DGRAM];
    for (size_t sent = 0; sent < bytes; sent += 4 * DGRAM) {
        for (int i = 0; i < CLIENTS; i++)
            for (int k = 0; k < 4; k++)
                send(w->fds[i], d, sizeof(d), 0);
        run_once(w);
        run_once(w);
    }
}

/* What the inbound's side of a link holds: the output of the link's partner. */
static size_t held(struct bufferevent *link)
{
    struct bufferevent *mine = bufferevent_pair_get_partner(link);
    return mine ? evbuffer_get_length(bufferevent_get_output(mine)) : 0;
}

static void test_flood_is_bounded(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    long rss0 = tu_mem_kib();
    flood(&w, 4u << 20); /* 8 clients x 4 MiB = 32 MiB at a link nobody reads */
    size_t queued, total = 0;
    uint64_t dropped;
    vrev__udp_in_stats(w.u, &queued, &dropped);
    assert_int_equal(w.n_links, CLIENTS);
    for (int i = 0; i < w.n_links; i++) {
        assert_true(held(w.links[i]) <= CLIENT_CAP);
        total += held(w.links[i]);
    }
    assert_int_equal(queued, total);
    assert_true(queued <= INBOUND_CAP);
    assert_true(queued > INBOUND_CAP - CLIENTS * (DGRAM + 2)); /* it did fill up */
    assert_int_equal(w.ctx->buffered, queued);
    assert_true(dropped > 20000); /* of 32,768 sent, at most 2,200 or so fit */
    assert_true(tu_mem_kib() - rss0 < 8 * 1024);
    /* the links move again: what waited goes, and new datagrams are taken */
    for (int i = 0; i < w.n_links; i++)
        bufferevent_enable(w.links[i], EV_READ);
    for (int k = 0; k < 8; k++)
        run_once(&w);
    for (int i = 0; i < w.n_links; i++) {
        struct evbuffer *in = bufferevent_get_input(w.links[i]);
        evbuffer_drain(in, evbuffer_get_length(in));
        bufferevent_disable(w.links[i], EV_READ);
    }
    vrev__udp_in_stats(w.u, &queued, &dropped);
    assert_int_equal(queued, 0);
    assert_int_equal(w.ctx->buffered, 0);
    uint64_t dropped_before = dropped;
    send(w.fds[0], "again", 5, 0);
    for (int k = 0; k < 8 && held(w.links[0]) == 0; k++)
        run_once(&w);
    assert_int_equal(held(w.links[0]), 7);
    vrev__udp_in_stats(w.u, &queued, &dropped);
    assert_int_equal(queued, 7);
    assert_int_equal(dropped, dropped_before);
    world_done(&w);
}

/* The process holds bufferedTotal bytes elsewhere: the inbound takes nothing in. */
static void test_process_cap(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    w.ctx->buffered = w.ctx->limits.buffered_total; /* another part of the process */
    flood(&w, 64 * DGRAM);
    size_t queued;
    uint64_t dropped;
    vrev__udp_in_stats(w.u, &queued, &dropped);
    assert_int_equal(queued, 0);
    assert_int_equal(w.n_links, 0);
    assert_true(dropped > 0);
    w.ctx->buffered = 0;
    send(w.fds[0], "again", 5, 0);
    for (int k = 0; k < 8 && w.n_links == 0; k++)
        run_once(&w);
    assert_int_equal(w.n_links, 1);
    vrev__udp_in_stats(w.u, &queued, &dropped);
    assert_int_equal(queued, 7);
    world_done(&w);
}

/* A freedom flow whose link is not read: the target's replies wait up to udpClientBytes. */
static void test_flow_replies_bounded(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    int target = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(target, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(target, (struct sockaddr *)&sa, &sl), 0);
    struct vrev__addr ta;
    vrev__addr_from_sockaddr(&ta, (struct sockaddr *)&sa);
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    assert_int_equal(vrev__udp_flow_start(&w.e, pair[0], &ta), 0);
    static const uint8_t hello[7] = {0, 5, 'h', 'e', 'l', 'l', 'o'};
    bufferevent_write(pair[1], hello, sizeof(hello)); /* the flow sends it to the target */
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    uint8_t buf[64];
    ssize_t n = -1;
    for (int k = 0; k < 100 && n < 0; k++) {
        run_once(&w);
        n = recvfrom(target, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    }
    assert_int_equal(n, 5);
    static uint8_t d[DGRAM];
    for (int round = 0; round < 64; round++) { /* 64 x 32 KB = 2 MB of replies */
        for (int k = 0; k < 32; k++)
            sendto(target, d, sizeof(d), 0, (struct sockaddr *)&from, fl);
        for (int k = 0; k < 4; k++)
            run_once(&w);
    }
    size_t waiting = evbuffer_get_length(bufferevent_get_output(pair[0]));
    assert_true(waiting <= CLIENT_CAP);
    assert_true(waiting > CLIENT_CAP - 2 * (DGRAM + 2));
    assert_int_equal(w.ctx->buffered, waiting);
    bufferevent_free(pair[1]); /* the flow ends with its link */
    close(target);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flood_is_bounded),
        cmocka_unit_test(test_process_cap),
        cmocka_unit_test(test_flow_replies_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
