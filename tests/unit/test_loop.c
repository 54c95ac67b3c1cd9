/* A context with a loop of its own (vrev_ctx_new_loop, vrev_ctx_run, vrev_ctx_stop) running a
 * V2Ray JSON instance, with no libevent call in the program; vrev_instance_stop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "testutil.h"
#include "vrev.h"

/* dokodemo-door -> blackhole answering "403 Forbidden": a served connection with no backend */
static const char config[] =
    "{\"inbounds\": [{\"tag\": \"in\", \"listen\": \"127.0.0.1\", \"port\": 0,"
    " \"protocol\": \"dokodemo-door\", \"settings\": {\"address\": \"127.0.0.1\", \"port\": 9}}],"
    " \"outbounds\": [{\"protocol\": \"blackhole\", \"settings\": {\"response\":"
    " {\"type\": \"http\"}}}]}";

/* A non-blocking client of 127.0.0.1:port (the loop runs in this thread). */
static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    assert_true(rc == 0 || errno == EINPROGRESS);
    return fd;
}

/* Run the loop in slices until the client has read the whole answer (or 3 s). */
static size_t read_answer(vrev_ctx *ctx, int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (int64_t end = tu_now_ms() + 3000; tu_now_ms() < end;) {
        assert_int_equal(vrev_ctx_run(ctx, 10), 0);
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n == 0)
            break; /* the answer ends with a close */
        if (n > 0)
            got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static void test_own_loop_runs_an_instance(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    assert_non_null(vrev_ctx_base(ctx));
    vrev_instance *inst;
    char err[256];
    assert_int_equal(
        vrev_instance_new_json(&inst, ctx, config, strlen(config), "t.json", err, sizeof(err)), 0);
    assert_int_equal(vrev_instance_start(inst), 0);
    unsigned port = vrev_instance_inbound_port(inst, "in");
    assert_true(port > 0);
    int fd = connect_to(port);
    char buf[512];
    read_answer(ctx, fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "403 Forbidden"));
    close(fd);
    vrev_instance_free(inst);
    vrev_ctx_free(ctx); /* frees the loop too (LSan checks) */
}

static void test_run_timeout_and_nonblocking_pass(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    int64_t t0 = tu_now_ms();
    assert_int_equal(vrev_ctx_run(ctx, 0), 0); /* nothing to do: returns at once */
    assert_int_equal(vrev_ctx_run(ctx, 120), 0);
    int64_t took = tu_now_ms() - t0;
    assert_true(took >= 100); /* it waited for its time, not less */
    /* an early end does not leave the timer behind to cut the next run short */
    assert_int_equal(vrev_ctx_run(ctx, 0), 0);
    t0 = tu_now_ms();
    assert_int_equal(vrev_ctx_run(ctx, 80), 0);
    assert_true(tu_now_ms() - t0 >= 60);
    vrev_ctx_free(ctx);
}

static void stop_from_callback(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    vrev_ctx_stop(arg);
}

/* vrev_ctx_run(-1) returns once a callback calls vrev_ctx_stop (the instance's listener alone
 * would keep it waiting for ever). */
static void test_stop_from_a_callback(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    vrev_instance *inst;
    assert_int_equal(vrev_instance_new_json(&inst, ctx, config, strlen(config), NULL, NULL, 0), 0);
    struct event *t = evtimer_new(vrev_ctx_base(ctx), stop_from_callback, ctx);
    struct timeval tv = {0, 50000};
    evtimer_add(t, &tv);
    assert_int_equal(vrev_ctx_run(ctx, -1), 0);
    event_free(t);
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
}

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(vrev_ctx_new_loop(NULL, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_ctx_run(NULL, 0), VREV_ERR_INVAL);
    vrev_ctx_stop(NULL);
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0); /* codecs only: no loop */
    assert_int_equal(vrev_ctx_run(ctx, 0), VREV_ERR_STATE);
    vrev_ctx_stop(ctx);
    vrev_ctx_free(ctx);
    vrev_allocator bad = {.abi = VREV_ALLOCATOR_ABI + 1};
    assert_int_equal(vrev_ctx_new_loop(&ctx, &bad), VREV_ERR_INVAL);
    assert_null(ctx);
    assert_int_equal(vrev_instance_stop(NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev_instance_start(NULL), VREV_ERR_INVAL);
}

/* Every allocation of a loop context and an instance in it can fail without a leak. */
static void test_alloc_failure(void **state)
{
    (void)state;
    for (unsigned at = 1; at < 400; at++) {
        struct tu_failing_alloc fa = {at, 0, 0};
        vrev_allocator a;
        tu_failing_allocator(&a, &fa);
        vrev_ctx *ctx;
        int rc = vrev_ctx_new_loop(&ctx, &a);
        if (rc == 0) {
            vrev_instance *inst;
            rc = vrev_instance_new_json(&inst, ctx, config, strlen(config), NULL, NULL, 0);
            if (rc == 0)
                vrev_instance_free(inst);
            vrev_ctx_free(ctx);
        }
        assert_int_equal(fa.live, 0);
        if (rc == 0 && fa.calls < at)
            return; /* every allocation point was failed once */
    }
    fail_msg("more allocations than the sweep covers");
}

/* After vrev_instance_stop the listener is gone, the instance cannot start again, and it is
 * still freed normally. */
static void test_instance_stop(void **state)
{
    (void)state;
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new_loop(&ctx, NULL), 0);
    vrev_instance *inst;
    assert_int_equal(vrev_instance_new_json(&inst, ctx, config, strlen(config), NULL, NULL, 0), 0);
    unsigned port = vrev_instance_inbound_port(inst, "in");
    int held = connect_to(port); /* a connection open at the stop is closed */
    for (int i = 0; i < 10; i++)
        vrev_ctx_run(ctx, 10);
    assert_int_equal(vrev_instance_stop(inst), 0);
    assert_int_equal(vrev_instance_stop(inst), 0);
    assert_int_equal(vrev_instance_inbound_port(inst, "in"), 0);
    assert_int_equal(vrev_instance_start(inst), VREV_ERR_STATE);
    char buf[512];
    read_answer(ctx, held, buf, sizeof(buf)); /* ends: closed (answered or not) */
    close(held);
    int fd = connect_to(port);
    vrev_ctx_run(ctx, 50);
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    assert_true(n < 0 && (errno == ECONNREFUSED || errno == ECONNRESET));
    close(fd);
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_loop_runs_an_instance),
        cmocka_unit_test(test_run_timeout_and_nonblocking_pass),
        cmocka_unit_test(test_stop_from_a_callback),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_instance_stop),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
