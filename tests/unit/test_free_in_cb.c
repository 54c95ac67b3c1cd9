/* Freeing a portal, a bridge or an instance from inside its own callbacks (tunnel events, the
 * access log): the free completes once the callback has returned (ASan: no use after free;
 * LSan: nothing left), and the object says nothing more after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "testutil.h"
#include "vrev.h"

#define UUID "5783a3e7-e373-51cd-8642-c83782b807c5"

enum { PORTAL, BRIDGE };

struct world {
    vrev_ctx *ctx;
    int echo, echo_conn; /* the target's listening socket and its one connection */
    vrev_portal *portal;
    vrev_bridge *bridge;
    int free_side, free_on; /* free this side at this event */
    int events[2][8];       /* per side and event */
    int after_free;         /* events from the freed side after its free */
    bool freed;
};

/* The bridge's target: a plain socket, echoed by hand from the test's loop (pump_echo). */
static int listen_any(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void pump_echo(struct world *w)
{
    char buf[256];
    if (w->echo_conn < 0 && (w->echo_conn = accept(w->echo, NULL, NULL)) >= 0)
        fcntl(w->echo_conn, F_SETFL, O_NONBLOCK);
    ssize_t n = w->echo_conn < 0 ? -1 : recv(w->echo_conn, buf, sizeof(buf), 0);
    if (n > 0)
        assert_int_equal(send(w->echo_conn, buf, (size_t)n, MSG_NOSIGNAL), n);
}

static void on_event(struct world *w, int side, int event)
{
    if (w->freed && side == w->free_side)
        w->after_free++;
    w->events[side][event]++;
    if (side != w->free_side || event != w->free_on || w->freed)
        return;
    w->freed = true;
    if (side == PORTAL) {
        vrev_portal_free(w->portal);
        w->portal = NULL;
    } else {
        vrev_bridge_free(w->bridge);
        w->bridge = NULL;
    }
}

static void portal_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)name, (void)up, (void)down;
    on_event(user, PORTAL, event);
}

static void bridge_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)name, (void)up, (void)down;
    on_event(user, BRIDGE, event);
}

static void run_until(struct world *w, const bool *cond)
{
    for (int i = 0; i < 300 && !*cond; i++)
        vrev_ctx_run(w->ctx, 10);
}

static void world_init(struct world *w, int free_side, int free_on)
{
    memset(w, 0, sizeof(*w));
    w->free_side = free_side;
    w->free_on = free_on;
    assert_int_equal(vrev_ctx_new_loop(&w->ctx, NULL), 0);
    unsigned echo_port;
    w->echo = listen_any(&echo_port);
    w->echo_conn = -1;
    char err[256], hp[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, w->ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
    assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "echo"), 0);
    assert_int_equal(vrev_portal_new(&w->portal, w->ctx, o, err, sizeof(err)), 0);
    vrev_portal_set_event_cb(w->portal, portal_event, w);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", vrev_portal_tunnel_port(w->portal));
    assert_int_equal(vrev_tunnel_opts_set_portal(o, hp), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", echo_port);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "echo", hp), 0);
    assert_int_equal(vrev_bridge_new(&w->bridge, w->ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    vrev_bridge_set_event_cb(w->bridge, bridge_event, w);
    assert_int_equal(vrev_bridge_start(w->bridge), 0);
}

static void world_done(struct world *w)
{
    for (int i = 0; i < 10; i++) /* the other side sees the end */
        vrev_ctx_run(w->ctx, 10);
    assert_true(w->freed);
    assert_int_equal(w->after_free, 0);
    if (w->echo_conn >= 0)
        close(w->echo_conn);
    close(w->echo);
    vrev_bridge_free(w->bridge);
    vrev_portal_free(w->portal);
    vrev_ctx_free(w->ctx); /* runs the loop a last time: a free still deferred completes */
}

/* A client of the portal's public port that sends a line and reads its echo. */
static int client_echo(struct world *w, unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, (struct sockaddr *)&a, sizeof(a));
    bool sent = false, got = false;
    char buf[16];
    for (int i = 0; i < 300 && !got; i++) {
        vrev_ctx_run(w->ctx, 10);
        if (w->echo >= 0)
            pump_echo(w);
        if (!sent)
            sent = send(fd, "hello", 5, MSG_NOSIGNAL) == 5;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        got = n == 5 && !memcmp(buf, "hello", 5);
        if (n == 0)
            break; /* closed (its side was freed) */
    }
    return fd;
}

static void free_at_tunnel_up(int side)
{
    struct world w;
    world_init(&w, side, VREV_EVENT_TUNNEL_UP);
    run_until(&w, &w.freed);
    world_done(&w);
}

static void test_portal_freed_at_tunnel_up(void **state)
{
    (void)state;
    free_at_tunnel_up(PORTAL);
}

static void test_bridge_freed_at_tunnel_up(void **state)
{
    (void)state;
    free_at_tunnel_up(BRIDGE);
}

static void free_at_session(int side, int event)
{
    struct world w;
    world_init(&w, side, event);
    for (int i = 0; i < 300 && !(w.events[PORTAL][VREV_EVENT_TUNNEL_UP] &&
                                 w.events[BRIDGE][VREV_EVENT_TUNNEL_UP]);
         i++)
        vrev_ctx_run(w.ctx, 10);
    int fd = client_echo(&w, vrev_portal_public_port(w.portal, 0));
    if (event == VREV_EVENT_SESSION_CLOSE) {
        assert_false(w.freed); /* the echo came back through the tunnel */
        close(fd);
        fd = -1;
    }
    run_until(&w, &w.freed);
    assert_true(w.freed);
    if (fd >= 0)
        close(fd);
    world_done(&w);
}

static void test_portal_freed_at_session_open(void **state)
{
    (void)state;
    free_at_session(PORTAL, VREV_EVENT_SESSION_OPEN);
}

static void test_bridge_freed_at_session_open(void **state)
{
    (void)state;
    free_at_session(BRIDGE, VREV_EVENT_SESSION_OPEN);
}

static void test_portal_freed_at_session_close(void **state)
{
    (void)state;
    free_at_session(PORTAL, VREV_EVENT_SESSION_CLOSE);
}

static void test_bridge_freed_at_session_close(void **state)
{
    (void)state;
    free_at_session(BRIDGE, VREV_EVENT_SESSION_CLOSE);
}

/* --- an instance freed from inside its access log line --------------------------------------- */

static const char config[] =
    "{\"inbounds\": [{\"tag\": \"in\", \"listen\": \"127.0.0.1\", \"port\": 0,"
    " \"protocol\": \"dokodemo-door\", \"settings\": {\"address\": \"127.0.0.1\", \"port\": 9}}],"
    " \"outbounds\": [{\"protocol\": \"blackhole\", \"settings\": {\"response\":"
    " {\"type\": \"http\"}}}]}";

struct inst_world {
    vrev_instance *inst;
    int lines;
};

static void access_line(const char *from, const char *to, const char *in_tag, const char *out_tag,
                        int accepted, const char *reason, void *user)
{
    (void)from, (void)to, (void)in_tag, (void)out_tag, (void)accepted, (void)reason;
    struct inst_world *iw = user;
    iw->lines++;
    vrev_instance_free(iw->inst); /* the engine is still routing this connection */
    iw->inst = NULL;
}

static void test_instance_freed_in_access_log(void **state)
{
    (void)state;
    struct inst_world iw = {0};
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    vrev_ctx_set_access_log(ctx, access_line, &iw);
    assert_int_equal(vrev_instance_new_json(&iw.inst, ctx, config, strlen(config), NULL, NULL, 0),
                     0);
    struct world w = {.ctx = ctx, .echo = -1, .echo_conn = -1};
    int fd = client_echo(&w, vrev_instance_inbound_port(iw.inst, "in"));
    for (int i = 0; i < 10; i++)
        vrev_ctx_run(ctx, 10);
    assert_int_equal(iw.lines, 1);
    assert_null(iw.inst);
    close(fd);
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_portal_freed_at_tunnel_up),
        cmocka_unit_test(test_bridge_freed_at_tunnel_up),
        cmocka_unit_test(test_portal_freed_at_session_open),
        cmocka_unit_test(test_bridge_freed_at_session_open),
        cmocka_unit_test(test_portal_freed_at_session_close),
        cmocka_unit_test(test_bridge_freed_at_session_close),
        cmocka_unit_test(test_instance_freed_in_access_log),
    };
    if (getenv("FREE_TEST")) /* run one: FREE_TEST=test_name */
        cmocka_set_test_filter(getenv("FREE_TEST"));
    return cmocka_run_group_tests_name("free_in_cb", tests, NULL, NULL);
}
