/* lib/net TLS layer: verification (CA, system roots, unknown CA, host name, IP SANs, pinned
 * self-signed, insecure), ALPN negotiation and refusal, context errors and allocation failures.
 * Both ends are ours, on loopback (tls_world.h). */
#include <sys/stat.h>
#include <unistd.h>

#include "net/tls_pin.h"
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

/* --- pinning (V2Ray's pinnedPeerCertificateChainSha256, tls_pin.h) -------------------------- */

/* The pins of the test certificates, computed apart from libvrev (Python's ssl and hashlib):
 * der = ssl.PEM_cert_to_DER_cert(pem); one certificate: sha256(der); a chain a, b:
 * sha256(sha256(a) + sha256(b)); base64.b64encode. */
#define PIN_SERVER "LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2w="
#define PIN_SERVER_HEX "2d1dbb4b0efe544236bf0e4da7fab584c2b89e3c92688292f54228f9d9c3b36c"
#define PIN_SELF "QSVutuBdZ1kNMaU4rLEnd4YMImYmLPqD7iWmF1yl6mQ="
#define PIN_SERVER_CA "mFygAHyHMHBkdI1SgJmwRnaKP+L3zmb7G3/9kAoVP5A="

static void pin_of(const char *b64, uint8_t out[32])
{
    assert_int_equal(vrev__tls_pin_from_base64(b64, strlen(b64), out), 0);
}

/* A client trusting `ca` (NULL: insecure) with the given base64 pins. */
static void pinned_client(struct world *w, const char *ca, const char *const *b64, size_t n)
{
    uint8_t pins[4][32];
    for (size_t i = 0; i < n; i++)
        pin_of(b64[i], pins[i]);
    const char *files[1] = {ca ? vec(ca) : NULL};
    struct vrev__tls_client_opts o = {.allow_insecure = !ca,
                                      .disable_system_root = true,
                                      .ca_files = files,
                                      .n_ca_files = ca ? 1 : 0,
                                      .pins = (const uint8_t(*)[32])pins,
                                      .n_pins = n};
    char err[256];
    if (vrev__tls_client_ctx_new(w->ctx, &o, &w->ctls, err, sizeof(err)))
        fail_msg("client ctx: %s", err);
    memset(pins, 0, sizeof(pins)); /* the context has its own copy */
}

static void test_pin_parse(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    char text[45];
    assert_int_equal(vrev__tls_pin_parse("sha256:" PIN_SERVER, a), 0);
    assert_int_equal(vrev__tls_pin_parse("sha256:" PIN_SERVER_HEX, b), 0);
    assert_memory_equal(a, b, 32);
    vrev__tls_pin_base64(a, text);
    assert_string_equal(text, PIN_SERVER);
    /* Go's decoder skips CR and LF, and needs the padding */
    assert_int_equal(vrev__tls_pin_from_base64("LR27Sw7+VEI2vw5Np/q1hMK4\r\nnjySaIKS9UIo+dnDs2w=",
                                               strlen(PIN_SERVER) + 2, b),
                     0);
    assert_memory_equal(a, b, 32);
    static const char *const bad[] = {
        "LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2w",      /* no padding */
        "LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2w==",    /* too much */
        "LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2",       /* 31 bytes */
        "LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2wAAAA=", /* 35 bytes */
        "LR27Sw7-VEI2vw5Np_q1hMK4njySaIKS9UIo-dnDs2w=",     /* URL alphabet */
        "LR27Sw7+VEI2vw5Np/q1hMK4nj=SaIKS9UIo+dnDs2w=",     /* padding inside */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vrev__tls_pin_from_base64(bad[i], strlen(bad[i]), a), VREV_ERR_INVAL);
    assert_int_equal(vrev__tls_pin_parse(PIN_SERVER, a), VREV_ERR_INVAL); /* no "sha256:" */
    assert_int_equal(vrev__tls_pin_parse("sha1:" PIN_SERVER, a), VREV_ERR_INVAL);
    assert_int_equal(vrev__tls_pin_parse("sha256:" PIN_SERVER_HEX "00", a), VREV_ERR_INVAL);
    char badhex[80]; /* 64 characters, one not hex */
    snprintf(badhex, sizeof(badhex), "sha256:x%s", &PIN_SERVER_HEX[1]);
    assert_int_equal(vrev__tls_pin_parse(badhex, a), VREV_ERR_INVAL);
}

/* A matching pin connects (on top of the CA check; one of several pins is enough). */
static void test_pin_match(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    const char *pins[2] = {PIN_SELF, PIN_SERVER};
    pinned_client(&w, "ca.crt", pins, 2);
    w.name = "localhost";
    expect_success(&w);
    world_done(&w);
}

/* A wrong pin fails the handshake although the CA vouches for the server, and the error
 * says what the server's chain pins to. */
static void test_pin_mismatch(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    server_ctx(&w, "server.crt", "server.key", NULL, 0);
    const char *pins[1] = {PIN_SELF};
    pinned_client(&w, "ca.crt", pins, 1);
    w.name = "localhost";
    expect_failure(&w, "certificate pin mismatch: the server's chain (1 certificate) is "
                       "sha256:" PIN_SERVER);
    world_done(&w);
}

/* The whole chain as sent is hashed: a server sending its CA too has another pin. */
static void test_pin_chain(void **state)
{
    (void)state;
    char path[] = "/tmp/vrev-test-chain-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *leaf = slurp(vec("server.crt")), *ca = slurp(vec("ca.crt"));
    assert_true(write(fd, leaf, strlen(leaf)) == (ssize_t)strlen(leaf));
    assert_true(write(fd, ca, strlen(ca)) == (ssize_t)strlen(ca));
    close(fd);
    for (int round = 0; round < 2; round++) {
        struct world w;
        world_init(&w);
        struct vrev__tls_server_opts so = {.cert_file = path, .key_file = vec("server.key")};
        assert_int_equal(vrev__tls_server_ctx_new(w.ctx, &so, &w.stls, NULL, 0), 0);
        const char *pins[1] = {round == 0 ? PIN_SERVER_CA : PIN_SERVER};
        pinned_client(&w, "ca.crt", pins, 1);
        w.name = "localhost";
        if (round == 0)
            expect_success(&w);
        else
            expect_failure(&w, "the server's chain (2 certificates) is sha256:" PIN_SERVER_CA);
        world_done(&w);
    }
    unlink(path);
    free(leaf);
    free(ca);
}

/* As in V2Ray (Go calls VerifyPeerCertificate with InsecureSkipVerify too), a pin still holds
 * when the certificate is otherwise not checked: the way to trust one self-signed server. */
static void test_pin_insecure(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        struct world w;
        world_init(&w);
        server_ctx(&w, "self.crt", "self.key", NULL, 0);
        const char *pins[1] = {round == 0 ? PIN_SELF : PIN_SERVER};
        pinned_client(&w, NULL, pins, 1);
        w.name = "whatever.example";
        if (round == 0)
            expect_success(&w);
        else
            expect_failure(&w, "certificate pin mismatch");
        world_done(&w);
    }
}

/* A private key file that group or others may read is loaded with a warning naming it. */
static char key_log[1024];

static void collect_log(int level, const char *component, const char *msg, void *user)
{
    (void)level, (void)component, (void)user;
    size_t n = strlen(key_log);
    snprintf(key_log + n, sizeof(key_log) - n, "%s\n", msg);
}

static void test_key_mode(void **state)
{
    (void)state;
    char path[] = "/tmp/vrev-test-key-XXXXXX";
    int fd = mkstemp(path); /* mode 0600 */
    assert_true(fd >= 0);
    char *key = slurp(vec("server.key"));
    assert_true(write(fd, key, strlen(key)) == (ssize_t)strlen(key));
    close(fd);
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    vrev_ctx_set_log(ctx, VREV_LOG_WARN, collect_log, NULL);
    static const unsigned modes[] = {0600, 0400, 0640, 0604, 0644};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        key_log[0] = '\0';
        struct vrev__tls_server_opts so = {.cert_file = vec("server.crt"), .key_file = path};
        struct vrev__tls_ctx *t = NULL;
        assert_int_equal(vrev__tls_server_ctx_new(ctx, &so, &t, NULL, 0), 0);
        vrev__tls_ctx_free(t);
        if (modes[i] & 077) {
            char want[256];
            snprintf(want, sizeof(want),
                     "private key file '%s' is open to group or others (mode %04o)", path,
                     modes[i]);
            if (!strstr(key_log, want))
                fail_msg("mode %04o: log '%s' lacks '%s'", modes[i], key_log, want);
        } else {
            assert_string_equal(key_log, "");
        }
    }
    vrev_ctx_free(ctx);
    unlink(path);
    free(key);
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
        cmocka_unit_test(test_pin_parse),
        cmocka_unit_test(test_pin_match),
        cmocka_unit_test(test_pin_mismatch),
        cmocka_unit_test(test_pin_chain),
        cmocka_unit_test(test_pin_insecure),
        cmocka_unit_test(test_key_mode),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_ctx_errors_server),
        cmocka_unit_test(test_ctx_errors_client),
        cmocka_unit_test(test_ctx_alloc_failures),
    };
    if (getenv("TLS_TEST")) /* run one: TLS_TEST=test_name */
        cmocka_set_test_filter(getenv("TLS_TEST"));
    return cmocka_run_group_tests_name("tls_verify", tests, NULL, NULL);
}
