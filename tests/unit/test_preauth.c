/* Caps on connections in their proxy handshake (lib/proxy/preauth.c): per source IP, and in
 * all with random early drop from half the cap. A SOCKS inbound's clients that send nothing
 * stay in the handshake, so each one holds a place until it leaves. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "proxy/inbound.h"
#include "proxy/proxy.h"
#include "testutil.h"

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__engine engine;
    struct vrev__inbound *in;
    uint16_t port;
};

static void world_init(struct world *w, uint32_t max, uint32_t per_source)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev__engine_init(&w->engine, w->ctx), 0);
    w->engine.preauth.max = max;
    w->engine.preauth.per_source = per_source;
    struct vrev__outbound *ob;
    assert_int_equal(vrev__blackhole_new(&w->engine, "out", false, &ob), 0);
    assert_int_equal(vrev__engine_add_outbound(&w->engine, ob), 0);
    struct vrev__socks_in_opts o = {"127.0.0.1", 0, NULL, 0, false, NULL};
    assert_int_equal(vrev__socks_in_new(&w->engine, "socks", &o, &w->in), 0);
    w->port = vrev__inbound_port(w->in);
}

static void world_done(struct world *w)
{
    vrev__inbound_free(w->in);
    vrev__engine_cleanup(&w->engine);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

static void spin(struct world *w)
{
    for (int i = 0; i < 5; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
}

/* A client from `from` (127.0.0.x) that sends nothing. */
static int client(struct world *w, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    a.sin_port = htons(w->port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    assert_true(rc == 0 || errno == EINPROGRESS);
    return fd;
}

/* Still held open by the inbound (no end of stream, no reset)? */
static bool held(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_per_source(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 1000, 4);
    int fd[8];
    for (int i = 0; i < 6; i++) {
        fd[i] = client(&w, "127.0.0.1");
        spin(&w);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(held(fd[i]), i < 4);
    assert_int_equal(w.engine.preauth.n, 4);
    assert_int_equal(w.engine.preauth.dropped, 2);
    fd[6] = client(&w, "127.0.0.2"); /* another address has places of its own */
    spin(&w);
    assert_true(held(fd[6]));
    close(fd[0]); /* a place is given back when a client leaves */
    close(fd[1]);
    spin(&w);
    fd[7] = client(&w, "127.0.0.1");
    spin(&w);
    assert_true(held(fd[7]));
    assert_int_equal(w.engine.preauth.n, 4); /* 3 from .1, 1 from .2 */
    for (int i = 2; i < 8; i++)
        close(fd[i]);
    spin(&w);
    assert_int_equal(w.engine.preauth.n, 0);
    assert_int_equal(w.engine.preauth.n_sources, 0);
    world_done(&w);
}

/* In all: never more than the cap, never a refusal below half of it. */
static void test_total_with_early_drop(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 8, 1000);
    int fd[30], kept = 0;
    for (int i = 0; i < 30; i++) {
        char from[16];
        snprintf(from, sizeof(from), "127.0.0.%d", 1 + i % 5);
        fd[i] = client(&w, from);
        spin(&w);
        if (i < 4)
            assert_true(held(fd[i])); /* below half the cap: always in */
    }
    for (int i = 0; i < 30; i++)
        kept += held(fd[i]);
    assert_true(kept >= 4 && kept <= 8);
    assert_int_equal(w.engine.preauth.n, (uint32_t)kept);
    assert_int_equal(w.engine.preauth.dropped, (uint64_t)(30 - kept));
    for (int i = 0; i < 30; i++)
        close(fd[i]);
    world_done(&w); /* handshakes still open at the stop give their places back (LSan) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_source),
        cmocka_unit_test(test_total_with_early_drop),
    };
    return cmocka_run_group_tests_name("preauth", tests, NULL, NULL);
}
