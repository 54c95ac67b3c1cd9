/* lib/instance: the "vrev" object of a JSON config applied. Its limits go to the instance's
 * engine (and bufferedTotal to the context), over the context's; the context keeps its own
 * otherwise. White-box: the instance's source is compiled in here, so that the engine's copy
 * can be read (the test's definitions take the place of the library's). */
#include "../../lib/instance/instance.c" /* first: cmocka defines a macro "fail" */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

static const char config[] =
    "{\"outbounds\": [{\"protocol\": \"blackhole\"}],\n"
    " \"vrev\": {\"limits\": {\"sessionRate\": 5000, \"tunnelBuffer\": 2097152,\n"
    "                       \"tunnelsPerBridge\": 3, \"bufferedTotal\": 33554432}}}";

static void test_limits_applied(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    /* the context's own values (the CLI's --limit) */
    assert_int_equal(vrev_ctx_set_limit(ctx, "sessionBurst", 100), 0);
    assert_int_equal(vrev_ctx_set_limit(ctx, "sessionRate", 7), 0);
    vrev_instance *inst;
    char err[256];
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, config, strlen(config), "t.json", err, sizeof(err)), 0);
    /* the engine: the config's where it says, the context's elsewhere */
    const struct vrev__limits *l = &inst->engine.limits;
    assert_int_equal(l->session_rate, 5000);
    assert_int_equal(l->tunnel_buffer, 2097152);
    assert_int_equal(l->tunnels_per_bridge, 3);
    assert_int_equal(l->session_burst, 100);
    assert_int_equal(inst->engine.policy.tunnel_buffer_bytes, 2097152); /* derived when made */
    /* the context: its own again, but bufferedTotal is a budget for all it holds */
    uint64_t v;
    assert_int_equal(vrev_ctx_get_limit(ctx, "sessionRate", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(vrev_ctx_get_limit(ctx, "tunnelBuffer", &v), 0);
    assert_int_equal(v, 64u << 20);
    assert_int_equal(vrev_ctx_get_limit(ctx, "bufferedTotal", &v), 0);
    assert_int_equal(v, 33554432);
    vrev_instance_free(inst);
    /* a config that fails to build leaves the context as it was */
    static const char bad[] =
        "{\"inbounds\": [{\"protocol\": \"dokodemo-door\", \"port\": \"1-2\", \"settings\": "
        "{\"address\": \"127.0.0.1\", \"port\": 9}}], \"vrev\": {\"limits\": {\"bufferedTotal\": "
        "2097152}}}";
    assert_true(vrev_instance_new_json(&inst, ctx, bad, strlen(bad), "bad.json", err, sizeof(err)) <
                0);
    assert_int_equal(vrev_ctx_get_limit(ctx, "bufferedTotal", &v), 0);
    assert_int_equal(v, 33554432);
    vrev_ctx_free(ctx);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_applied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
