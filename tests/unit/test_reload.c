/* vrev_instance_reload, vrev_portal_reload, vrev_bridge_reload: all or nothing. A reload that fails
 * anywhere (a busy port after other inbounds were planned, each allocation in turn) leaves the
 * running instance as it was: same listeners, nothing leaked; one that succeeds keeps the listeners
 * of changed inbounds on the same address, closes removed ones and opens new ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "vrev.h"

#define ID1 "5783a3e7-e373-51cd-8642-c83782b807c5"
#define ID2 "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

/* A: inbounds a (dokodemo-door), b (vmess); outbounds x, y; a portal and a bridge. */
static const char config_a[] =
    "{\"inbounds\": [\n"
    "  {\"tag\": \"a\", \"listen\": \"127.0.0.1\", \"port\": 0, \"protocol\": \"dokodemo-door\",\n"
    "   \"settings\": {\"address\": \"127.0.0.1\", \"port\": 9}},\n"
    "  {\"tag\": \"b\", \"listen\": \"127.0.0.1\", \"port\": 0, \"protocol\": \"vmess\",\n"
    "   \"settings\": {\"clients\": [{\"id\": \"" ID1 "\"}]}}],\n"
    " \"outbounds\": [{\"tag\": \"x\", \"protocol\": \"blackhole\"},\n"
    "               {\"tag\": \"y\", \"protocol\": \"freedom\"}],\n"
    " \"reverse\": {\"portals\": [{\"tag\": \"p\", \"domain\": \"p.test\"}],\n"
    "             \"bridges\": [{\"tag\": \"br\", \"domain\": \"b.test\"}]}}";

/* B: a and b changed (same listen, port 0, same tags: their listeners stay), c new on `%u`, y
 * changed, a routing rule, the bridge with an allow-list. */
static const char config_b_fmt[] =
    "{\"inbounds\": [\n"
    "  {\"tag\": \"a\", \"listen\": \"127.0.0.1\", \"port\": 0, \"protocol\": \"dokodemo-door\",\n"
    "   \"settings\": {\"address\": \"127.0.0.1\", \"port\": 10}},\n"
    "  {\"tag\": \"b\", \"listen\": \"127.0.0.1\", \"port\": 0, \"protocol\": \"vmess\",\n"
    "   \"settings\": {\"clients\": [{\"id\": \"" ID2 "\"}]}},\n"
    "  {\"tag\": \"c\", \"listen\": \"127.0.0.1\", \"port\": %u, \"protocol\": \"dokodemo-door\",\n"
    "   \"settings\": {\"address\": \"127.0.0.1\", \"port\": 9}}],\n"
    " \"outbounds\": [{\"tag\": \"x\", \"protocol\": \"blackhole\"},\n"
    "               {\"tag\": \"y\", \"protocol\": \"freedom\", \"settings\": {\"redirect\": "
    "\"127.0.0.1:9\"}}],\n"
    " \"routing\": {\"rules\": [{\"type\": \"field\", \"inboundTag\": [\"c\"], \"outboundTag\": "
    "\"y\"}]},\n"
    " \"vrev\": {\"bridges\": {\"br\": {\"allow\": [\"tcp:127.0.0.1:9\"]}}},\n"
    " \"reverse\": {\"portals\": [{\"tag\": \"p\", \"domain\": \"p.test\"}],\n"
    "             \"bridges\": [{\"tag\": \"br\", \"domain\": \"b.test\"}]}}";

static bool can_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = port && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* A listening socket on a free port, held by the test. */
static int hold_port(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A context on `base` whose allocator fails as `fa` says, without log lines. */
static vrev_ctx *failing_ctx(struct event_base *base, struct vrev_allocator *alloc,
                             struct tu_failing_alloc *fa)
{
    vrev_ctx *ctx;
    tu_failing_allocator(alloc, fa);
    assert_int_equal(vrev_ctx_new2(&ctx, base, alloc), 0);
    vrev_ctx_set_log(ctx, -1, NULL, NULL);
    return ctx;
}

static int reload(vrev_instance *inst, const char *text, char *err, size_t len)
{
    return vrev_instance_reload(inst, text, strlen(text), "t.json", err, len);
}

static void test_failure_in_the_middle_changes_nothing(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    vrev_instance *inst;
    char err[512], b[4096];
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    vrev_ctx_set_log(ctx, -1, NULL, NULL);
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, config_a, strlen(config_a), "a.json", err, sizeof(err)),
        0);
    unsigned pa = vrev_instance_inbound_port(inst, "a"), pb = vrev_instance_inbound_port(inst, "b");
    assert_true(can_connect(pa) && can_connect(pb));
    /* c's port is busy: a and b were planned (their listeners taken) when c fails */
    unsigned busy;
    int holder = hold_port(&busy);
    snprintf(b, sizeof(b), config_b_fmt, busy);
    assert_true(reload(inst, b, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "t.json: inbounds[2]"));
    assert_int_equal(vrev_instance_inbound_port(inst, "a"), pa);
    assert_int_equal(vrev_instance_inbound_port(inst, "b"), pb);
    assert_int_equal(vrev_instance_inbound_port(inst, "c"), 0);
    assert_true(can_connect(pa) && can_connect(pb));
    assert_int_equal(vrev_instance_reload_count(inst, 1), 1);
    assert_int_equal(vrev_instance_reload_count(inst, 0), 0);
    close(holder);
    /* a syntax error: named by file and line */
    assert_int_equal(reload(inst, "{\n\"inbounds\": [,]}", err, sizeof(err)),
                     VREV_ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err, "t.json:2:"));
    /* now it works: a and b on their listeners, c new */
    snprintf(b, sizeof(b), config_b_fmt, 0u);
    assert_int_equal(reload(inst, b, err, sizeof(err)), 0);
    assert_int_equal(vrev_instance_inbound_port(inst, "a"), pa);
    assert_int_equal(vrev_instance_inbound_port(inst, "b"), pb);
    unsigned pc = vrev_instance_inbound_port(inst, "c");
    assert_true(can_connect(pa) && can_connect(pb) && can_connect(pc));
    /* back to A: c closes */
    assert_int_equal(reload(inst, config_a, err, sizeof(err)), 0);
    assert_false(can_connect(pc));
    assert_true(can_connect(pa) && can_connect(pb));
    assert_int_equal(vrev_instance_reload_count(inst, 0), 2);
    assert_int_equal(vrev_instance_reload_count(inst, 1), 2);
    /* what needs a restart */
    static const char policy[] = "{\"policy\": {\"levels\": {\"0\": {\"handshake\": 7}}}}";
    assert_int_equal(reload(inst, policy, err, sizeof(err)), VREV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "policy"));
    assert_true(can_connect(pa));
    assert_int_equal(vrev_instance_stop(inst), 0);
    assert_int_equal(reload(inst, config_a, err, sizeof(err)), VREV_ERR_STATE);
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
    event_base_free(base);
}

/* Fail the N-th allocation of a reload, N = 1.. until it succeeds: each failure leaves the
 * instance serving as before, with exactly the blocks it had. */
static void test_allocation_failures(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct vrev_allocator alloc;
    struct tu_failing_alloc fa = {0, 0, 0};
    vrev_ctx *ctx = failing_ctx(base, &alloc, &fa);
    vrev_instance *inst;
    char err[512], b[4096];
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, config_a, strlen(config_a), "a.json", err, sizeof(err)),
        0);
    /* one reload to nothing new first: its bookkeeping (the retired lists) is then in place */
    assert_int_equal(reload(inst, config_a, err, sizeof(err)), 0);
    unsigned pa = vrev_instance_inbound_port(inst, "a"), pb = vrev_instance_inbound_port(inst, "b");
    snprintf(b, sizeof(b), config_b_fmt, 0u);
    long live = fa.live;
    unsigned n;
    int rc = -1;
    for (n = 1; n < 2000 && rc < 0; n++) {
        fa.calls = 0;
        fa.fail_at = n;
        rc = reload(inst, b, err, sizeof(err));
        fa.fail_at = 0;
        if (rc < 0) {
            assert_int_equal(fa.live, live);
            assert_int_equal(vrev_instance_inbound_port(inst, "a"), pa);
            assert_int_equal(vrev_instance_inbound_port(inst, "b"), pb);
            assert_int_equal(vrev_instance_inbound_port(inst, "c"), 0);
            assert_true(can_connect(pa) && can_connect(pb));
        }
    }
    assert_int_equal(rc, 0);
    assert_true(n > 20); /* the sweep went through the planning, not just the loader */
    assert_int_equal(vrev_instance_inbound_port(inst, "a"), pa);
    assert_true(vrev_instance_inbound_port(inst, "c") != 0);
    assert_int_equal(vrev_instance_reload_count(inst, 1), n - 2);
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
    assert_int_equal(fa.live, 0);
    event_base_free(base);
}

static vrev_tunnel_opts *tunnel_opts(const char *id, const char *portal, bool more)
{
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, NULL), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, id), 0);
    if (portal) {
        assert_int_equal(vrev_tunnel_opts_set_portal(o, portal), 0);
        assert_int_equal(vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:9"), 0);
        if (more)
            assert_int_equal(vrev_tunnel_opts_add_target(o, "other", "127.0.0.1:10"), 0);
    } else {
        assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
        assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "web"), 0);
        if (more)
            assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", "other"), 0);
    }
    return o;
}

/* The same sweep over vrev_portal_reload (a new id: the tunnel listener renewed on its socket;
 * a public listener kept, one added) and vrev_bridge_reload (a new id and a target more). */
static void test_tunnel_allocation_failures(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct vrev_allocator alloc;
    struct tu_failing_alloc fa = {0, 0, 0};
    vrev_ctx *ctx = failing_ctx(base, &alloc, &fa);
    vrev_portal *p;
    vrev_bridge *b;
    char err[512], portal_at[64];
    vrev_tunnel_opts *pa = tunnel_opts(ID1, NULL, false), *pb = tunnel_opts(ID2, NULL, true);
    assert_int_equal(vrev_portal_new(&p, ctx, pa, err, sizeof(err)), 0);
    assert_int_equal(vrev_portal_reload(p, pa, err, sizeof(err)), 0); /* its bookkeeping */
    unsigned tport = vrev_portal_tunnel_port(p), web = vrev_portal_public_port(p, 0);
    snprintf(portal_at, sizeof(portal_at), "127.0.0.1:%u", tport);
    vrev_tunnel_opts *ba = tunnel_opts(ID1, portal_at, false),
                     *bb = tunnel_opts(ID2, portal_at, true);
    assert_int_equal(vrev_bridge_new(&b, ctx, ba, err, sizeof(err)), 0);
    assert_int_equal(vrev_bridge_reload(b, ba, err, sizeof(err)), 0);
    for (int side = 0; side < 2; side++) {
        long live = fa.live;
        unsigned n;
        int rc = -1;
        for (n = 1; n < 2000 && rc < 0; n++) {
            fa.calls = 0;
            fa.fail_at = n;
            rc = side ? vrev_bridge_reload(b, bb, err, sizeof(err))
                      : vrev_portal_reload(p, pb, err, sizeof(err));
            fa.fail_at = 0;
            if (rc < 0) {
                assert_int_equal(rc, VREV_ERR_NOMEM);
                assert_int_equal(fa.live, live);
                assert_int_equal(vrev_portal_tunnel_port(p), tport);
                assert_int_equal(vrev_portal_public_port(p, 0), web);
                assert_true(side || vrev_portal_public_port(p, 1) == 0);
                assert_true(can_connect(tport) && can_connect(web));
            }
        }
        assert_int_equal(rc, 0);
        assert_true(n > 5);
        if (side)
            assert_int_equal(vrev_bridge_reload_count(b, 1), n - 2);
        else
            assert_int_equal(vrev_portal_reload_count(p, 1), n - 2);
    }
    assert_int_equal(vrev_portal_tunnel_port(p), tport); /* renewed on the same socket */
    assert_int_equal(vrev_portal_public_port(p, 0), web);
    assert_true(can_connect(vrev_portal_public_port(p, 1)));
    assert_int_equal(vrev_portal_reload_count(p, 0), 2);
    assert_int_equal(vrev_bridge_reload_count(b, 0), 2);
    /* what needs a restart */
    assert_int_equal(vrev_tunnel_opts_set_domain(pb, "other.test"), 0);
    assert_int_equal(vrev_portal_reload(p, pb, err, sizeof(err)), VREV_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "--domain"));
    vrev_bridge_free(b);
    vrev_portal_free(p);
    vrev_tunnel_opts_free(pa);
    vrev_tunnel_opts_free(pb);
    vrev_tunnel_opts_free(ba);
    vrev_tunnel_opts_free(bb);
    vrev_ctx_free(ctx);
    assert_int_equal(fa.live, 0);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_in_the_middle_changes_nothing),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_tunnel_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
