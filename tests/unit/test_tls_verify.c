/* lib/net TLS layer: verification (CA, system roots, unknown CA, host name, IP SANs, pinned
 * self-signed, insecure), ALPN negotiation and refusal, context errors and allocation failures.
 * Both ends are ours, on loopback (tls_world.h). */
#include "tls_world.h"

/* --- verification --------------------------------------------------------------------------- */

/* A handshake that must fail: both sides see an error, no data reaches either user. */
static void expect_failure(struct world *w, const char *client_reason)
{
    w->c.send_total = 100;
    world_run(w, 10);
    assert_int_equal(w->c.end, -1);
    assert_int_equal(w->s.end, -1);
    assert_int_equal(w->c.received, 0);
    assert_int_equal(w->s.received, 0);
    if (!strstr(w->c.err, client_reason))
        fail_msg("client reason '%s' lacks '%s'", w->c.err, client_reason);
    assert_true(strlen(w->s.err) > 0);
    assert_false(vrev__tls_handshake_done(w->c.bev));
}

static void expect_success(struct world *w)
{
    echo_world(w, 1000);
    world_run(w, 10);
    expect_echo(w, 1000);
}

static void test_verify_ca(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    /* the system roots as well as our CA */
    const char *files[1] = {vec("ca.crt")};
    struct vrev__tls_client_opts o = {.ca_files = files, .n_ca_files = 1};
    assert_int_equal(vrev__tls_client_ctx_new(w.ctx, &o, &w.ctls, NULL, 0), 0);
    expect_success(&w);
    world_done(&w);
}

static void test_verify_unknown_ca(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "other.crt", "other.key", NULL, 0);
    struct vrev__tls_client_opts o = {0}; /* system roots only */
    char err[256];
    assert_int_equal(vrev__tls_client_ctx_new(w.ctx, &o, &w.ctls, err, sizeof(err)), 0);
    expect_failure(&w, "certificate verify failed");
    world_done(&w);
    /* a self-signed certificate that is not listed */
    world_init(&w);
    server_ctx(&w, "self.crt", "self.key", NULL, 0);
    client_ctx(&w, "ca.crt", false, NULL, 0);
    w.name = "self.vrev.test";
    expect_failure(&w, "certificate verify failed");
    world_done(&w);
}

static void test_verify_hostname(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    client_ctx(&w, "ca.crt", false, NULL, 0);
    w.name = "portal.example.com";
    expect_failure(&w, "certificate verify failed");
    world_done(&w);
    /* the configured server name wins over the one given to wrap */
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    const char *files[1] = {vec("ca.crt")};
    struct vrev__tls_client_opts o = {.server_name = "localhost",
                                      .disable_system_root = true,
                                      .ca_files = files,
                                      .n_ca_files = 1};
    assert_int_equal(vrev__tls_client_ctx_new(w.ctx, &o, &w.ctls, NULL, 0), 0);
    w.name = "portal.example.com";
    expect_success(&w);
    world_done(&w);
}

static void test_verify_ip(void **state)
{
    (void)state;
    const char *names[] = {"127.0.0.1", NULL /* the peer's address */};
    for (int i = 0; i < 2; i++) {
        struct world w;
        world_init(&w);
        server_ctx(&w, "server.crt", "server.key", NULL, 0);
        client_ctx(&w, "ca.crt", false, NULL, 0);
        w.name = names[i];
        expect_success(&w);
        world_done(&w);
    }
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    client_ctx(&w, "ca.crt", false, NULL, 0);
    w.name = "127.0.0.2";
    expect_failure(&w, "certificate verify failed");
    world_done(&w);
}

/* V2Ray pins a self-signed certificate by listing it among the trusted ones. */
static void test_verify_pinned_self_signed(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "self.crt", "self.key", NULL, 0);
    client_ctx(&w, "self.crt", false, NULL, 0);
    w.name = "self.vrev.test";
    expect_success(&w);
    world_done(&w);
}

static void test_insecure(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "self.crt", "self.key", NULL, 0);
    client_ctx(&w, NULL, true, NULL, 0);
    w.name = "whatever.example";
    expect_success(&w);
    world_done(&w);
}

/* --- ALPN ----------------------------------------------------------------------------------- */

static void test_alpn(void **state)
{
    (void)state;
    static const char *const v2ray_client[] = {"h2", "http/1.1"};
    static const char *const h2[] = {"h2"};
    static const char *const http11_h2[] = {"http/1.1", "h2"};
    static const char *const other[] = {"vrev/1"};
    struct {
        const char *const *c, *const *s;
        size_t nc, ns;
        const char *want; /* NULL: none; "!": failure */
    } cases[] = {
        {v2ray_client, h2, 2, 1, "h2"},              /* V2Ray client vs V2Ray server defaults */
        {v2ray_client, http11_h2, 2, 2, "http/1.1"}, /* the server's preference */
        {NULL, h2, 0, 1, NULL},                      /* nothing offered */
        {v2ray_client, NULL, 2, 0, NULL},            /* nothing supported */
        {other, h2, 1, 1, "!"},                      /* no overlap: no_application_protocol */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct world w;
        world_init(&w);
        server_ctx(&w, "server.crt", "server.key", cases[i].s, cases[i].ns);
        client_ctx(&w, "ca.crt", false, cases[i].c, cases[i].nc);
        if (cases[i].want && cases[i].want[0] == '!') {
            expect_failure(&w, "");
            world_done(&w);
            continue;
        }
        w.c.no_shut = true; /* keep both ends open to look at them */
        w.c.send_total = 10;
        w.s.echo = true;
        w.expect = 3;
        w.c.stop_at = 10;
        world_run(&w, 5);
        assert_int_equal(w.c.received, 10);
        const char *cs = vrev__tls_alpn(w.c.bev), *ss = vrev__tls_alpn(w.s.bev);
        assert_true(vrev__tls_handshake_done(w.c.bev));
        if (cases[i].want) {
            assert_non_null(cs);
            assert_non_null(ss);
            assert_string_equal(cs, cases[i].want);
            assert_string_equal(ss, cases[i].want);
        } else {
            assert_null(cs);
            assert_null(ss);
        }
        world_done(&w);
    }
}

/* --- contexts ------------------------------------------------------------------------------- */

static void test_ctx_errors_server(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct vrev__tls_ctx *t = NULL;
    char err[256];
    /* certificate and key that do not belong together */
    struct vrev__tls_server_opts so = {.cert_file = vec("server.crt"), .key_file = vec("self.key")};
    assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, err, sizeof(err)), VREV_ERR_INVAL);
    assert_null(t);
    assert_non_null(strstr(err, "do not match"));
    assert_non_null(strstr(err, "server.crt"));
    /* a missing file is named */
    so.key_file = vec("missing.key");
    assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, err, sizeof(err)), VREV_ERR_IO);
    assert_non_null(strstr(err, "missing.key"));
    assert_non_null(strstr(err, "No such file"));
    /* a key where the certificate should be, and the reverse */
    so = (struct vrev__tls_server_opts){.cert_file = vec("server.key"),
                                        .key_file = vec("server.key")};
    assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, err, sizeof(err)), VREV_ERR_INVAL);
    assert_non_null(strstr(err, "server.key"));
    so = (struct vrev__tls_server_opts){.cert_file = vec("server.crt"),
                                        .key_file = vec("server.crt")};
    assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, err, sizeof(err)), VREV_ERR_INVAL);
    assert_non_null(strstr(err, "private key"));
    /* neither or both of inline and file */
    so = (struct vrev__tls_server_opts){.key_file = vec("server.key")};
    assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, err, sizeof(err)), VREV_ERR_INVAL);
    /* inline PEM works like files */
    char *crt = slurp(vec("server.crt")), *key = slurp(vec("server.key"));
    so = (struct vrev__tls_server_opts){.cert_pem = crt, .key_pem = key};
    assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, err, sizeof(err)), 0);
    vrev__tls_ctx_free(t);
    free(crt);
    free(key);
    vrev_ctx_free(ctx);
}

static void test_ctx_errors_client(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct vrev__tls_ctx *t = NULL;
    char err[256];
    /* a missing CA file, garbage PEM, nothing trusted, bad ALPN */
    const char *files[1] = {vec("nope/ca.crt")};
    struct vrev__tls_client_opts co = {.ca_files = files, .n_ca_files = 1};
    assert_int_equal(vrev__tls_client_ctx_new(ctx, &co, &t, err, sizeof(err)), VREV_ERR_IO);
    assert_non_null(strstr(err, "nope/ca.crt"));
    const char *pems[1] = {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"};
    co = (struct vrev__tls_client_opts){.ca_pem = pems, .n_ca_pem = 1};
    assert_int_equal(vrev__tls_client_ctx_new(ctx, &co, &t, err, sizeof(err)), VREV_ERR_INVAL);
    assert_non_null(strstr(err, "inline certificate"));
    co = (struct vrev__tls_client_opts){.disable_system_root = true};
    assert_int_equal(vrev__tls_client_ctx_new(ctx, &co, &t, err, sizeof(err)), VREV_ERR_INVAL);
    assert_non_null(strstr(err, "no trusted"));
    const char *bad_alpn[1] = {""};
    co = (struct vrev__tls_client_opts){.alpn = bad_alpn, .n_alpn = 1};
    assert_int_equal(vrev__tls_client_ctx_new(ctx, &co, &t, err, sizeof(err)), VREV_ERR_INVAL);
    /* inline CA text and a CA file together */
    char *ca = slurp(vec("ca.crt"));
    pems[0] = ca;
    files[0] = vec("self.crt");
    co = (struct vrev__tls_client_opts){.disable_system_root = true,
                                        .ca_pem = pems,
                                        .n_ca_pem = 1,
                                        .ca_files = files,
                                        .n_ca_files = 1};
    assert_int_equal(vrev__tls_client_ctx_new(ctx, &co, &t, err, sizeof(err)), 0);
    vrev__tls_ctx_free(t);
    vrev__tls_ctx_free(NULL);
    free(ca);
    vrev_ctx_free(ctx);
}

/* Every allocation of context setup may fail, without a leak or a crash. */
static void test_ctx_alloc_failures(void **state)
{
    (void)state;
    for (unsigned n = 1; n < 64; n++) {
        struct tu_failing_alloc fa = {.fail_at = n};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *ctx;
        if (vrev_ctx_new2(&ctx, NULL, &a) != 0)
            continue;
        struct vrev__tls_ctx *t = NULL;
        static const char *const alpn[] = {"h2", "http/1.1"};
        struct vrev__tls_server_opts so = {.cert_file = vec("server.crt"),
                                           .key_file = vec("server.key"),
                                           .alpn = alpn,
                                           .n_alpn = 2};
        int rc = vrev__tls_server_ctx_new(ctx, &so, &t, NULL, 0);
        assert_true(rc == 0 || rc == VREV_ERR_NOMEM);
        vrev__tls_ctx_free(t);
        const char *files[1] = {vec("ca.crt")};
        struct vrev__tls_client_opts co = {.server_name = "localhost",
                                           .disable_system_root = true,
                                           .ca_files = files,
                                           .n_ca_files = 1,
                                           .alpn = alpn,
                                           .n_alpn = 2};
        t = NULL;
        rc = vrev__tls_client_ctx_new(ctx, &co, &t, NULL, 0);
        assert_true(rc == 0 || rc == VREV_ERR_NOMEM);
        vrev__tls_ctx_free(t);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_ca),
        cmocka_unit_test(test_verify_unknown_ca),
        cmocka_unit_test(test_verify_hostname),
        cmocka_unit_test(test_verify_ip),
        cmocka_unit_test(test_verify_pinned_self_signed),
        cmocka_unit_test(test_insecure),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_ctx_errors_server),
        cmocka_unit_test(test_ctx_errors_client),
        cmocka_unit_test(test_ctx_alloc_failures),
    };
    if (getenv("TLS_TEST")) /* run one: TLS_TEST=test_name */
        cmocka_set_test_filter(getenv("TLS_TEST"));
    return cmocka_run_group_tests_name("tls_verify", tests, NULL, NULL);
}
