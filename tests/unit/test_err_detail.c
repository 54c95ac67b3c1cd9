/* The error-detail convention (include/vrev/error.h) of every public constructor and reload
 * that takes `char *err, size_t err_len`: "" on success, a message on every failure (the early
 * ones too), always NUL-terminated within err_len, nothing written when err_len is 0, and err
 * NULL accepted. Each buffer is filled with 'x' first, so a call that leaves it alone shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vrev.h"

#define UUID "5783a3e7-e373-51cd-8642-c83782b807c5"

static const char config[] =
    "{\"inbounds\": [{\"tag\": \"in\", \"listen\": \"127.0.0.1\", \"port\": 0,\n"
    "   \"protocol\": \"dokodemo-door\", \"settings\": {\"address\": \"10.1.2.3\", \"port\": "
    "80}}],\n"
    " \"outbounds\": [{\"tag\": \"block\", \"protocol\": \"blackhole\"}]}";

static char err[256];

static char *dirty(void)
{
    memset(err, 'x', sizeof(err));
    return err;
}

static void expect_ok(int rc)
{
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
}

/* Failed with `want`, and said something (containing `has`, when given) as one string. */
static void expect_fail(int rc, int want, const char *has)
{
    assert_int_equal(rc, want);
    assert_non_null(memchr(err, '\0', sizeof(err)));
    assert_true(err[0] != '\0' && err[0] != 'x');
    if (has && !strstr(err, has))
        fail_msg("\"%s\" does not say \"%s\"", err, has);
}

static vrev_tunnel_opts *opts(vrev_ctx *ctx, int portal)
{
    vrev_tunnel_opts *o;
    assert_int_equal(vrev_tunnel_opts_new(&o, ctx), 0);
    assert_int_equal(vrev_tunnel_opts_set_id(o, UUID), 0);
    if (portal) {
        assert_int_equal(vrev_tunnel_opts_set_listen(o, "127.0.0.1:0"), 0);
        assert_int_equal(vrev_tunnel_opts_add_public(o, "127.0.0.1:0", NULL), 0);
    } else {
        assert_int_equal(vrev_tunnel_opts_set_portal(o, "127.0.0.1:9"), 0);
        assert_int_equal(vrev_tunnel_opts_add_target(o, NULL, "127.0.0.1:9"), 0);
    }
    return o;
}

static void test_instance(void **state)
{
    (void)state;
    vrev_ctx *ctx, *bare;
    vrev_instance *inst;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    assert_int_equal(vrev_ctx_new(&bare, NULL), 0);
    expect_fail(
        vrev_instance_new_json(&inst, bare, config, strlen(config), "c.json", dirty(), sizeof(err)),
        VREV_ERR_STATE, "event_base");
    expect_fail(vrev_instance_new_json(&inst, ctx, NULL, 5, "c.json", dirty(), sizeof(err)),
                VREV_ERR_INVAL, NULL);
    expect_fail(vrev_instance_new_json(&inst, ctx, "{", 1, "c.json", dirty(), sizeof(err)),
                VREV_ERR_CONFIG_SYNTAX, "c.json:");
    expect_ok(
        vrev_instance_new_json(&inst, ctx, config, strlen(config), "c.json", dirty(), sizeof(err)));

    expect_ok(vrev_instance_reload(inst, config, strlen(config), "c.json", dirty(), sizeof(err)));
    expect_fail(vrev_instance_reload(inst, "{", 1, "c.json", dirty(), sizeof(err)),
                VREV_ERR_CONFIG_SYNTAX, "c.json:");
    expect_fail(vrev_instance_reload(NULL, config, strlen(config), "c.json", dirty(), sizeof(err)),
                VREV_ERR_INVAL, NULL);
    /* err NULL, and err_len 0 (nothing written) */
    assert_int_equal(vrev_instance_reload(inst, "{", 1, NULL, NULL, sizeof(err)),
                     VREV_ERR_CONFIG_SYNTAX);
    assert_int_equal(vrev_instance_reload(inst, "{", 1, NULL, dirty(), 0), VREV_ERR_CONFIG_SYNTAX);
    assert_int_equal(err[0], 'x');
    vrev_instance_stop(inst);
    expect_fail(vrev_instance_reload(inst, config, strlen(config), "c.json", dirty(), sizeof(err)),
                VREV_ERR_STATE, "stopped");
    vrev_instance_free(inst);
    vrev_ctx_free(bare);
    vrev_ctx_free(ctx);
}

static void test_portal_bridge(void **state)
{
    (void)state;
    vrev_ctx *ctx, *bare;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    assert_int_equal(vrev_ctx_new(&bare, NULL), 0);
    vrev_tunnel_opts *po = opts(NULL, 1), *bo = opts(NULL, 0), *empty;
    assert_int_equal(vrev_tunnel_opts_new(&empty, NULL), 0);
    vrev_portal *p;
    vrev_bridge *b;

    expect_fail(vrev_portal_new(&p, bare, po, dirty(), sizeof(err)), VREV_ERR_STATE, NULL);
    expect_fail(vrev_portal_new(&p, ctx, empty, dirty(), sizeof(err)), VREV_ERR_INVAL, "--id");
    expect_fail(vrev_portal_new(NULL, ctx, po, dirty(), sizeof(err)), VREV_ERR_INVAL, NULL);
    expect_ok(vrev_portal_new(&p, ctx, po, dirty(), sizeof(err)));
    expect_ok(vrev_portal_reload(p, po, dirty(), sizeof(err)));
    expect_fail(vrev_portal_reload(p, empty, dirty(), sizeof(err)), VREV_ERR_INVAL, "--id");

    expect_fail(vrev_bridge_new(&b, bare, bo, dirty(), sizeof(err)), VREV_ERR_STATE, NULL);
    expect_fail(vrev_bridge_new(&b, ctx, po, dirty(), sizeof(err)), VREV_ERR_INVAL, "--portal");
    expect_ok(vrev_bridge_new(&b, ctx, bo, dirty(), sizeof(err)));
    expect_ok(vrev_bridge_reload(b, bo, dirty(), sizeof(err)));
    expect_fail(vrev_bridge_reload(b, po, dirty(), sizeof(err)), VREV_ERR_INVAL, "--portal");
    expect_fail(vrev_bridge_reload(NULL, bo, dirty(), sizeof(err)), VREV_ERR_INVAL, NULL);

    /* A message longer than the buffer is cut, and still a string; no byte past err_len. */
    dirty();
    assert_int_equal(vrev_bridge_reload(b, po, err, 8), VREV_ERR_INVAL);
    assert_int_equal(strlen(err), 7);
    assert_int_equal(err[8], 'x');
    assert_int_equal(vrev_bridge_reload(b, po, NULL, 8), VREV_ERR_INVAL);

    vrev_bridge_free(b);
    vrev_portal_free(p);
    vrev_tunnel_opts_free(po);
    vrev_tunnel_opts_free(bo);
    vrev_tunnel_opts_free(empty);
    vrev_ctx_free(bare);
    vrev_ctx_free(ctx);
}

static void test_metrics_server(void **state)
{
    (void)state;
    vrev_ctx *ctx, *bare;
    vrev_metrics_server *s;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    assert_int_equal(vrev_ctx_new(&bare, NULL), 0);
    expect_fail(vrev_metrics_server_new(&s, bare, "127.0.0.1:0", dirty(), sizeof(err)),
                VREV_ERR_STATE, "event_base");
    expect_fail(vrev_metrics_server_new(&s, ctx, "nowhere", dirty(), sizeof(err)), VREV_ERR_INVAL,
                "nowhere");
    expect_ok(vrev_metrics_server_new(&s, ctx, "127.0.0.1:0", dirty(), sizeof(err)));
    vrev_metrics_server_free(s);
    vrev_ctx_free(bare);
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instance),
        cmocka_unit_test(test_portal_bridge),
        cmocka_unit_test(test_metrics_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
