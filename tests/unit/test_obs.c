/* Observability: V2Ray's access line format, access events from the router, the metrics an
 * instance gives and their Prometheus text, the "vrev": {"metrics"} key, the log targets. The
 * HTTP side is tested with real processes (tests/e2e/test_obs.py). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "instance/instance_obs.h"
#include "vrev.h"

static void test_access_format(void **state)
{
    (void)state;
    char buf[256];
    /* what V2Ray 4.34 writes for a dokodemo-door connection (after its time stamp) */
    int n = vrev_access_format(buf, sizeof(buf), "127.0.0.1:5555", "tcp:127.0.0.1:80", "out-tag", 1,
                               "");
    assert_string_equal(buf, "127.0.0.1:5555 accepted tcp:127.0.0.1:80 [out-tag]");
    assert_int_equal(n, (int)strlen(buf));
    /* a refused VMess handshake: no destination (two spaces, as V2Ray), no detour, a reason */
    vrev_access_format(buf, sizeof(buf), "127.0.0.1:5556", "", NULL, 0, "invalid user");
    assert_string_equal(buf, "127.0.0.1:5556 rejected  invalid user");
    /* a bridge's session has no source; NULLs are "" */
    vrev_access_format(buf, sizeof(buf), NULL, "tcp:web:0", "", 1, NULL);
    assert_string_equal(buf, " accepted tcp:web:0");
    /* too small: truncated, terminated, the whole length returned */
    char small[8];
    n = vrev_access_format(small, sizeof(small), "1.2.3.4:5", "tcp:a:1", "t", 1, "");
    assert_int_equal(n, (int)strlen("1.2.3.4:5 accepted tcp:a:1 [t]"));
    assert_string_equal(small, "1.2.3.4");
    assert_int_equal(vrev_access_format(NULL, 0, "a", "b", "c", 1, ""),
                     (int)strlen("a accepted b [c]"));
    assert_int_equal(vrev_access_format(NULL, 4, "a", "b", "c", 1, ""), VREV_ERR_INVAL);
}

/* A dokodemo-door inbound whose tag needs escaping, sending everything to a blackhole. */
static const char config[] =
    "{\"log\": {\"access\": \"/var/log/vrev/access.log\", \"error\": \"none\"},\n"
    " \"inbounds\": [{\"tag\": \"in\\\"x\\\\y\", \"listen\": \"127.0.0.1\", \"port\": 0,\n"
    "   \"protocol\": \"dokodemo-door\", \"settings\": {\"address\": \"10.1.2.3\", \"port\": "
    "80}},\n"
    "  {\"tag\": \"socks\", \"listen\": \"127.0.0.1\", \"port\": 0, \"protocol\": \"socks\"}],\n"
    " \"outbounds\": [{\"tag\": \"block\", \"protocol\": \"blackhole\"}],\n"
    " \"vrev\": {\"metrics\": \"127.0.0.1:0\"}}";

struct access_seen {
    int calls, rejected;
    char line[256], in_tag[64];
};

static void on_access(const char *from, const char *to, const char *in_tag, const char *out_tag,
                      int accepted, const char *reason, void *user)
{
    struct access_seen *a = user;
    a->calls++;
    a->rejected += !accepted;
    vrev_access_format(a->line, sizeof(a->line), from, to, out_tag, accepted, reason);
    snprintf(a->in_tag, sizeof(a->in_tag), "%s", in_tag);
}

static void connect_once(unsigned port, const char *send)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (send)
        assert_int_equal(write(fd, send, strlen(send)), (ssize_t)strlen(send));
    close(fd);
}

/* Each "# TYPE name" once, and every sample of a name right under it. */
static void check_grouped(const char *text)
{
    char seen[64][64];
    size_t n_seen = 0;
    char current[64] = "";
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        char name[64];
        if (sscanf(line, "# TYPE %63s", name) == 1) {
            for (size_t i = 0; i < n_seen; i++)
                assert_string_not_equal(seen[i], name);
            assert_true(n_seen < 64);
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
            snprintf(current, sizeof(current), "%s", name);
        } else if (line[0] != '#') {
            size_t k = strcspn(line, "{ ");
            assert_int_equal(k, strlen(current));
            assert_memory_equal(line, current, k);
        }
        line = end + 1;
    }
}

static void test_instance_metrics(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    struct access_seen seen = {0};
    vrev_ctx_set_access_log(ctx, on_access, &seen);
    vrev_instance *inst;
    char err[256];
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, config, strlen(config), "t.json", err, sizeof(err)), 0);
    const char *path = "x";
    assert_int_equal(vrev_instance_log_target(inst, 1, &path), VREV_LOG_TARGET_FILE);
    assert_string_equal(path, "/var/log/vrev/access.log");
    assert_int_equal(vrev_instance_log_target(inst, 0, &path), VREV_LOG_TARGET_NONE);
    assert_null(path);
    assert_string_equal(vrev_instance_metrics_address(inst), "127.0.0.1:0");
    assert_int_equal(vrev_instance_ready(inst), 1); /* no bridge, no portal: nothing to wait for */

    /* one connection: routed to the blackhole, one access event, one link counted */
    connect_once(vrev_instance_inbound_port(inst, "in\"x\\y"), NULL);
    for (int i = 0; i < 200 && !seen.calls; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.in_tag, "in\"x\\y");
    assert_non_null(strstr(seen.line, " accepted tcp:10.1.2.3:80 [block]"));
    assert_memory_equal(seen.line, "127.0.0.1:", 10);
    /* a SOCKS4 request at a SOCKS5 inbound: refused in its handshake, "rejected" */
    connect_once(vrev_instance_inbound_port(inst, "socks"), "\x04\x01");
    for (int i = 0; i < 200 && seen.calls < 2; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.rejected, 1);
    assert_string_equal(seen.in_tag, "socks");
    assert_non_null(strstr(seen.line, " rejected  ")); /* no destination, as V2Ray */
    assert_true(strlen(strstr(seen.line, " rejected  ")) > strlen(" rejected  ")); /* why */

    vrev_metrics_server *srv;
    assert_int_equal(
        vrev_metrics_server_new(&srv, ctx, vrev_instance_metrics_address(inst), err, sizeof(err)),
        0);
    assert_true(vrev_metrics_server_port(srv) > 0);
    assert_int_equal(vrev_metrics_server_add_instance(srv, inst), 0);
    /* a reload of the same text (its listeners kept), and one that fails */
    assert_int_equal(vrev_instance_reload(inst, config, strlen(config), "t.json", err, sizeof(err)),
                     0);
    assert_true(vrev_instance_reload(inst, "{", 1, "t.json", err, sizeof(err)) < 0);
    int n = vrev_metrics_server_render(srv, NULL, 0);
    assert_true(n > 0);
    char *text = malloc((size_t)n + 1);
    assert_int_equal(vrev_metrics_server_render(srv, text, (size_t)n + 1), n);
    assert_int_equal(strlen(text), (size_t)n);
    assert_non_null(
        strstr(text, "\nvrev_links_total{inbound=\"in\\\"x\\\\y\",outbound=\"block\"} 1\n"));
    assert_non_null(strstr(
        text, "vrev_handshake_failures_total{inbound=\"in\\\"x\\\\y\",reason=\"timeout\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE vrev_reloads_total counter\n"
                                 "vrev_reloads_total{result=\"ok\"} 1\n"
                                 "vrev_reloads_total{result=\"failed\"} 1\n"));
    assert_non_null(
        strstr(text, "vrev_handshake_failures_total{inbound=\"socks\",reason=\"rejected\"} 1\n"));
    assert_non_null(
        strstr(text, "vrev_handshake_failures_total{inbound=\"socks\",reason=\"closed\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE vrev_ready gauge\nvrev_ready 1\n"));
    check_grouped(text);
    /* a short buffer: cut and terminated, the whole length returned */
    char small[16];
    assert_int_equal(vrev_metrics_server_render(srv, small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, text, sizeof(small) - 1);
    free(text);
    vrev_metrics_server_free(srv);
    vrev_instance_free(inst);
    event_base_loop(base, EVLOOP_NONBLOCK);
    vrev_ctx_free(ctx);
    event_base_free(base);
}

static void test_metrics_key_errors(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    static const char *const bad[] = {
        "{\"vrev\": {\"metrics\": \"localhost:9100\"}}", /* a name: never resolved */
        "{\"vrev\": {\"metrics\": \"127.0.0.1\"}}",
        "{\"vrev\": {\"metrics\": 9100}}",
    };
    for (size_t i = 0; i < 3; i++) {
        vrev_instance *inst = NULL;
        char err[256] = "";
        assert_int_equal(
            vrev_instance_new_json(&inst, ctx, bad[i], strlen(bad[i]), "m.json", err, sizeof(err)),
            VREV_ERR_CONFIG_INVALID);
        assert_null(inst);
        assert_non_null(strstr(err, "m.json:1:"));
        assert_non_null(strstr(err, "vrev.metrics"));
    }
    /* no "log" object: no access log, errors on the console (V2Ray 4.34) */
    static const char none[] = "{}";
    vrev_instance *inst;
    assert_int_equal(vrev_instance_new_json(&inst, ctx, none, 2, NULL, NULL, 0), 0);
    assert_int_equal(vrev_instance_log_target(inst, 1, NULL), VREV_LOG_TARGET_NONE);
    assert_int_equal(vrev_instance_log_target(inst, 0, NULL), VREV_LOG_TARGET_CONSOLE);
    assert_null(vrev_instance_metrics_address(inst));
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
    event_base_free(base);
}

static void test_server_args(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx, *no_base;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    assert_int_equal(vrev_ctx_new(&no_base, NULL), 0);
    vrev_metrics_server *s = (vrev_metrics_server *)1;
    char err[128];
    assert_int_equal(vrev_metrics_server_new(&s, ctx, "localhost:1", err, sizeof(err)),
                     VREV_ERR_INVAL);
    assert_null(s);
    assert_non_null(strstr(err, "localhost:1"));
    assert_int_equal(vrev_metrics_server_new(&s, ctx, NULL, NULL, 0), VREV_ERR_INVAL);
    assert_int_equal(vrev_metrics_server_new(&s, no_base, "127.0.0.1:0", NULL, 0), VREV_ERR_STATE);
    assert_int_equal(vrev_metrics_server_new(&s, ctx, "127.0.0.1:0", NULL, 0), 0);
    assert_int_equal(vrev_metrics_server_ready(s), 1); /* nothing to wait for */
    vrev_metrics_server *busy;
    char port[32];
    snprintf(port, sizeof(port), "127.0.0.1:%u", vrev_metrics_server_port(s));
    assert_int_equal(vrev_metrics_server_new(&busy, ctx, port, err, sizeof(err)), VREV_ERR_IO);
    assert_int_equal(vrev_metrics_server_add_instance(s, NULL), VREV_ERR_INVAL);
    /* a bridge not started: no tunnel, not ready */
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, "5783a3e7-e373-51cd-8642-c83782b807c5"), 0);
    assert_int_equal(vrev_tunnel_opts_set_portal(o, "127.0.0.1:9"), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:9"), 0);
    vrev_bridge *b;
    assert_int_equal(vrev_bridge_new(&b, ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    for (int i = 0; i < 16; i++)
        assert_int_equal(vrev_metrics_server_add_bridge(s, b), 0);
    assert_int_equal(vrev_metrics_server_add_bridge(s, b), VREV_ERR_RANGE);
    assert_int_equal(vrev_metrics_server_ready(s), 0);
    assert_int_equal(vrev_bridge_ready(b), 0);
    int n = vrev_metrics_server_render(s, NULL, 0);
    assert_true(n > 0);
    char *text = malloc((size_t)n + 1);
    assert_int_equal(vrev_metrics_server_render(s, text, (size_t)n + 1), n);
    assert_non_null(strstr(text, "\nvrev_tunnels{role=\"bridge\",tag=\"bridge\"} 0\n"));
    assert_non_null(strstr(text, "\nvrev_ready 0\n"));
    check_grouped(text);
    free(text);
    vrev_metrics_server_free(s);
    vrev_bridge_free(b);
    vrev_metrics_server_free(NULL);
    assert_int_equal(vrev_instance_metrics(NULL, NULL, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_portal_ready(NULL), 0);
    vrev_ctx_free(no_base);
    event_base_loop(base, EVLOOP_NONBLOCK);
    vrev_ctx_free(ctx);
    event_base_free(base);
}

/* A reload takes the new file's metrics address and log targets. */
static void test_obs_reload(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    static const char *const text[] = {
        "{\"vrev\": {\"metrics\": \"127.0.0.1:9100\"}}",
        "{\"log\": {\"error\": \"/var/log/e.log\"}, \"vrev\": {\"metrics\": \"[::1]:9101\"}}",
    };
    vrev_instance *inst;
    char err[256];
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, text[0], strlen(text[0]), NULL, err, sizeof(err)), 0);
    assert_string_equal(vrev_instance_metrics_address(inst), "127.0.0.1:9100");
    const char *path = "x";
    assert_int_not_equal(vrev_instance_log_target(inst, 0, &path), VREV_LOG_TARGET_FILE);
    assert_int_equal(vrev_instance_reload(inst, text[1], strlen(text[1]), NULL, err, sizeof(err)),
                     0);
    assert_string_equal(vrev_instance_metrics_address(inst), "[::1]:9101");
    assert_int_equal(vrev_instance_log_target(inst, 0, &path), VREV_LOG_TARGET_FILE);
    assert_string_equal(path, "/var/log/e.log");
    assert_int_equal(vrev_instance_reload_count(inst, 0), 1);
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
    event_base_free(base);
}

/* A portal that takes the connection but never speaks (a listener that accepts nothing): the
 * bridge's tunnel is dialled, connected, never heard from. It is not up: no tunnel counted,
 * in the counters or the metrics, and neither the bridge nor an instance's bridge is ready. */
static void test_unheard_tunnel_not_ready(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    unsigned port = ntohs(sa.sin_port);

    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    char err[256], hp[64];
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, "5783a3e7-e373-51cd-8642-c83782b807c5"), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
    assert_int_equal(vrev_tunnel_opts_set_portal(o, hp), 0);
    assert_int_equal(vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:9"), 0);
    vrev_bridge *b;
    assert_int_equal(vrev_bridge_new(&b, ctx, o, err, sizeof(err)), 0);
    vrev_tunnel_opts_free(o);
    assert_int_equal(vrev_bridge_start(b), 0);
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"reverse\": {\"bridges\": [{\"tag\": \"bridge\", \"domain\": \"r.test\"}]},"
             " \"outbounds\": [{\"tag\": \"tunnel\", \"protocol\": \"vmess\", \"settings\":"
             " {\"vnext\": [{\"address\": \"127.0.0.1\", \"port\": %u, \"users\":"
             " [{\"id\": \"5783a3e7-e373-51cd-8642-c83782b807c5\"}]}]}},"
             " {\"tag\": \"out\", \"protocol\": \"freedom\"}],"
             " \"routing\": {\"rules\": [{\"type\": \"field\", \"inboundTag\": [\"bridge\"],"
             " \"domain\": [\"full:r.test\"], \"outboundTag\": \"tunnel\"}]}}",
             port);
    vrev_instance *inst;
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, json, strlen(json), "t.json", err, sizeof(err)), 0);
    for (int i = 0; i < 300; i++) /* 300 ms: both tunnels connected (the backlog takes them) */
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    assert_int_equal(vrev_bridge_counter(b, VREV_COUNTER_TUNNELS), 0);
    assert_int_equal(vrev_bridge_counter(b, VREV_COUNTER_TUNNELS_OPENED), 0);
    assert_int_equal(vrev_bridge_ready(b), 0);
    assert_int_equal(vrev_instance_ready(inst), 0);
    vrev_metrics_server *s;
    assert_int_equal(vrev_metrics_server_new(&s, ctx, "127.0.0.1:0", NULL, 0), 0);
    assert_int_equal(vrev_metrics_server_add_bridge(s, b), 0);
    assert_int_equal(vrev_metrics_server_add_instance(s, inst), 0);
    char text[16384];
    int n = vrev_metrics_server_render(s, text, sizeof(text));
    assert_true(n > 0 && (size_t)n < sizeof(text));
    assert_non_null(strstr(text, "\nvrev_tunnels{role=\"bridge\",tag=\"bridge\"} 0\n"));
    assert_null(strstr(text, "\nvrev_tunnels{role=\"bridge\",tag=\"bridge\"} 1\n"));
    assert_non_null(strstr(text, "\nvrev_ready 0\n"));
    vrev_metrics_server_free(s);
    vrev_instance_free(inst);
    vrev_bridge_free(b);
    event_base_loop(base, EVLOOP_NONBLOCK);
    vrev_ctx_free(ctx);
    event_base_free(base);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_format),      cmocka_unit_test(test_instance_metrics),
        cmocka_unit_test(test_metrics_key_errors), cmocka_unit_test(test_server_args),
        cmocka_unit_test(test_obs_reload),         cmocka_unit_test(test_unheard_tunnel_not_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
