/* lib/core: error table, version, context, allocator and log hooks, byte queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/core.h"
#include "core/hex.h"
#include "core/timeval.h"
#include "testutil.h"
#include "vrev.h"

static void test_error_table(void **state)
{
    (void)state;
    assert_string_equal(vrev_strerror(0), "success");
    assert_string_equal(vrev_err_name(0), "OK");
    assert_int_equal(VREV_OK, 0);
    assert_string_equal(vrev_err_name(VREV_OK), "OK");
    assert_int_equal(VREV_ERR_NOMEM, -1); /* the enum follows the table */
    assert_int_equal(VREV_ERR_PROXY_HEADER, -320);
    assert_string_equal(vrev_err_name(VREV_ERR_NOMEM), "NOMEM");
    assert_string_equal(vrev_strerror(VREV_ERR_NOMEM), "out of memory");
    assert_string_equal(vrev_err_name(VREV_ERR_MUX_META_LEN), "MUX_META_LEN");
    assert_string_equal(vrev_strerror(-9999), "unknown error");
    assert_string_equal(vrev_err_name(-9999), "UNKNOWN");
    assert_string_equal(vrev_err_name(1), "UNKNOWN");
    /* every code is negative, distinct and named */
    static const int codes[] = {
#define CODE_(name, value, msg) value,
        VREV_ERRNO_MAP(CODE_)
#undef CODE_
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        assert_string_not_equal(vrev_err_name(codes[i]), "UNKNOWN");
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
}

static void test_version(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", VREV_VERSION_MAJOR, VREV_VERSION_MINOR,
             VREV_VERSION_PATCH);
    assert_string_equal(vrev_version_string(), want);
    assert_int_equal(vrev_version(), VREV_VERSION_NUMBER);
    const char *b = vrev_crypto_backend();
    assert_true(!strcmp(b, "openssl") || !strcmp(b, "mbedtls"));
}

static void test_dependency_version(void **state)
{
    (void)state;
    static const char *const names[] = {"crypto/TLS", "libevent", "jansson", "nghttp2", "wslay"};
    const char *name = NULL;
    char v[128], tiny[4];
    for (unsigned i = 0; i < 5; i++) {
        int n = vrev_dependency_version(i, &name, v, sizeof(v));
        assert_string_equal(name, names[i]);
        assert_int_equal(n, (int)strlen(v));
        assert_int_equal(vrev_dependency_version(i, NULL, NULL, 0), n); /* the length alone */
        if (i < 4) /* wslay has no version call */
            assert_true(n > 0);
        if (n >= (int)sizeof(tiny)) { /* cut, NUL-terminated, length of the whole */
            assert_int_equal(vrev_dependency_version(i, NULL, tiny, sizeof(tiny)), n);
            assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
        }
    }
    vrev_dependency_version(0, NULL, v, sizeof(v));
    assert_non_null(
        strstr(v, !strcmp(vrev_crypto_backend(), "openssl") ? "OpenSSL " : "mbed TLS "));
    assert_int_equal(vrev_dependency_version(5, &name, v, sizeof(v)), VREV_ERR_RANGE);
    assert_int_equal(vrev_dependency_version(0, &name, NULL, 8), VREV_ERR_INVAL);
}

static void test_ctx_args(void **state)
{
    (void)state;
    vrev_ctx *ctx = (vrev_ctx *)1;
    assert_int_equal(vrev_ctx_new(NULL, NULL), VREV_ERR_INVAL);
    vrev_allocator bad = {.abi = VREV_ALLOCATOR_ABI + 1};
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &bad), VREV_ERR_INVAL);
    assert_null(ctx);
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    assert_null(vrev_ctx_base(ctx));
    vrev_ctx_free(ctx);
    vrev_ctx_free(NULL);
}

static void test_ctx_allocator(void **state)
{
    (void)state;
    struct tu_failing_alloc fa = {1, 0, 0};
    vrev_allocator a;
    tu_failing_allocator(&a, &fa);
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), VREV_ERR_NOMEM);
    fa.fail_at = 0;
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
    assert_int_equal(fa.live, 1);
    void *p = vrev__malloc(ctx, 10);
    assert_int_equal(fa.live, 2);
    vrev__free(ctx, p);
    assert_null(vrev__calloc(ctx, SIZE_MAX / 2, 4)); /* overflow caught, no call */
    char *d = vrev__strdup(ctx, "tag");
    assert_string_equal(d, "tag");
    assert_int_equal(fa.live, 2);
    vrev__free(ctx, d);
    assert_null(vrev__strdup(ctx, NULL));
    fa.fail_at = fa.calls + 1;
    assert_null(vrev__strdup(ctx, "tag")); /* out of memory */
    vrev_ctx_free(ctx);
    assert_int_equal(fa.live, 0);
}

struct log_capture {
    int calls;
    int level;
    char component[32];
    char message[128];
};

static void capture(int level, const char *component, const char *message, void *user)
{
    struct log_capture *c = user;
    c->calls++;
    c->level = level;
    snprintf(c->component, sizeof(c->component), "%s", component);
    snprintf(c->message, sizeof(c->message), "%s", message);
}

static void test_log(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    struct log_capture c = {0};
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    vrev__log(ctx, VREV_LOG_ERROR, "t", "dropped %d", 1); /* no callback: nothing */
    vrev_ctx_set_log(ctx, VREV_LOG_WARN, capture, &c);
    vrev__log(ctx, VREV_LOG_INFO, "t", "too verbose");
    assert_int_equal(c.calls, 0);
    vrev__log(ctx, VREV_LOG_WARN, "mux", "value %d", 42);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.level, VREV_LOG_WARN);
    assert_string_equal(c.component, "mux");
    assert_string_equal(c.message, "value 42");
    assert_string_equal(vrev_log_level_name(VREV_LOG_DEBUG), "debug");
    assert_string_equal(vrev_log_level_name(99), "?");
    vrev_ctx_free(ctx);
}

static void test_buf(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct vrev__buf b = {0};
    uint8_t chunk[100];
    size_t total = 0;
    for (int i = 0; i < 50; i++) {
        memset(chunk, i, sizeof(chunk));
        assert_int_equal(vrev__buf_append(ctx, &b, chunk, sizeof(chunk)), 0);
        total += sizeof(chunk);
        vrev__buf_consume(&b, 60); /* consume faster than nothing, slower than append */
        total -= 60;
        assert_int_equal(vrev__buf_len(&b), total);
    }
    /* content is the tail of the appended sequence */
    assert_int_equal(b.data[b.end - 1], 49);
    size_t mark = vrev__buf_len(&b);
    assert_int_equal(vrev__buf_append(ctx, &b, chunk, 10), 0);
    vrev__buf_truncate(&b, mark);
    assert_int_equal(vrev__buf_len(&b), mark);
    vrev__buf_consume(&b, SIZE_MAX);
    assert_int_equal(vrev__buf_len(&b), 0);
    vrev__buf_free(ctx, &b);
    vrev_ctx_free(ctx);
}

static void test_limits(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    uint64_t v = 0, def = 0, lo = 0, hi = 0;
    const char *what = NULL;
    size_t n = 0;
    for (const char *name; (name = vrev_limit_info(n, &def, &lo, &hi, &what)); n++) {
        assert_true(lo <= def && def <= hi && what && *what);
        assert_int_equal(vrev_ctx_get_limit(ctx, name, &v), 0);
        assert_true(v == def); /* a new context has the defaults */
        assert_int_equal(vrev_ctx_set_limit(ctx, name, lo), 0);
        assert_int_equal(vrev_ctx_get_limit(ctx, name, &v), 0);
        assert_true(v == lo);
        if (lo > 0)
            assert_int_equal(vrev_ctx_set_limit(ctx, name, lo - 1), VREV_ERR_RANGE);
        if (hi < UINT64_MAX)
            assert_int_equal(vrev_ctx_set_limit(ctx, name, hi + 1), VREV_ERR_RANGE);
        assert_true(vrev_ctx_get_limit(ctx, name, &v) == 0 && v == lo); /* unchanged */
    }
    assert_true(n >= 12);
    assert_null(vrev_limit_info(n, NULL, NULL, NULL, NULL));
    assert_int_equal(vrev_ctx_set_limit(ctx, "noSuchLimit", 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_get_limit(ctx, "noSuchLimit", &v), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_set_limit(NULL, "sessionRate", 1), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_get_limit(ctx, "sessionRate", NULL), VREV_ERR_INVAL);
    vrev_ctx_free(ctx);
}

static void test_hex_uuid(void **state)
{
    (void)state;
    assert_int_equal(vrev__hex_digit('0'), 0);
    assert_int_equal(vrev__hex_digit('a'), 10);
    assert_int_equal(vrev__hex_digit('F'), 15);
    assert_int_equal(vrev__hex_digit('g'), -1);
    assert_int_equal(vrev__hex_digit('/'), -1);
    static const char *good[] = {"27848739-7E62-4138-9fd3-098a63964b6b",
                                 "278487397e6241389FD3098a63964b6b"};
    for (size_t i = 0; i < 2; i++) {
        uint8_t u[16];
        char text[37];
        assert_true(vrev__uuid_parse(good[i], strlen(good[i]), u));
        assert_int_equal(u[0], 0x27);
        assert_int_equal(u[15], 0x6b);
        vrev__uuid_format(u, text);
        assert_string_equal(text, "27848739-7e62-4138-9fd3-098a63964b6b");
    }
    static const char *bad[] = {"27848739-7e62-4138-9fd3-098a63964b6",   /* 35 */
                                "27848739-7e62-4138-9fd3-098a63964b6bb", /* 37 */
                                "27848739+7e62-4138-9fd3-098a63964b6b",  /* dash */
                                "2784873-97e62-4138-9fd3-098a63964b6b",  /* dash moved */
                                "27848739-7e62-4138-9fd3-098a63964b6x",  /* digit */
                                "278487397e6241389fd3098a63964b6-"};
    uint8_t u[16];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(vrev__uuid_parse(bad[i], strlen(bad[i]), u));
    assert_false(vrev__uuid_parse(NULL, 36, u));
}

/* vrev_uuid_new: canonical text of a version 4 UUID (RFC 4122 variant) that the parser takes
 * back; ids differ from call to call. */
static void test_uuid_new(void **state)
{
    (void)state;
    char a[37], b[37];
    memset(a, 'x', sizeof(a));
    assert_int_equal(vrev_uuid_new(a), 0);
    assert_int_equal(strlen(a), 36);
    for (size_t i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_true(vrev__hex_digit(a[i]) >= 0 && !(a[i] >= 'A' && a[i] <= 'F'));
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* variant 10xx */
    uint8_t u[16];
    assert_true(vrev__uuid_parse(a, 36, u));
    assert_int_equal(vrev_uuid_new(b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(vrev_uuid_new(NULL), VREV_ERR_INVAL);
}

static void test_ms_to_tv(void **state)
{
    (void)state;
    struct timeval tv = vrev__ms_to_tv(12345);
    assert_int_equal(tv.tv_sec, 12);
    assert_int_equal(tv.tv_usec, 345000);
    tv = vrev__ms_to_tv(999);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 999000);
    tv = vrev__ms_to_tv(UINT32_MAX);
    assert_int_equal(tv.tv_sec, UINT32_MAX / 1000);
    assert_int_equal(tv.tv_usec, 295000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_dependency_version),
        cmocka_unit_test(test_ctx_args),
        cmocka_unit_test(test_ctx_allocator),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_hex_uuid),
        cmocka_unit_test(test_uuid_new),
        cmocka_unit_test(test_ms_to_tv),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
