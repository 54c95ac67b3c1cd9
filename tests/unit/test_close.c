/* lib/net crash-honest closes (vrev__bev_arm_abort): an armed TCP socket closed without a
 * graceful end resets the connection, whether we close it or the kernel does for a process
 * that was killed; after a graceful end (vrev__bev_shutdown_write, vrev__bev_close(bev, 0))
 * the peer gets every byte and then a clean end, as from an unarmed socket. Over loopback TCP:
 * SO_LINGER means nothing to a Unix socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/net.h"
#include "testutil.h"

#define SENT (48 * 1024) /* fits the loopback socket buffers: written at once */

/* A loopback TCP connection: *ours (non-blocking, for a bufferevent) and the peer's end. */
static void tcp_pair(int *ours, int *peer)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    *peer = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*peer, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *ours = accept(l, NULL, NULL);
    assert_true(*ours >= 0);
    close(l);
    evutil_make_socket_nonblocking(*ours);
}

/* SENT pattern bytes into the socket (the kernel takes them at once). */
static void send_pattern(int fd)
{
    uint8_t buf[SENT];
    for (size_t i = 0; i < SENT; i++)
        buf[i] = tu_pattern(i);
    if (write(fd, buf, SENT) != SENT)
        fail_msg("write: %s", strerror(errno));
}

/* How the peer sees the stream end (once `base` has run libevent's deferred close): 1 for
 * every byte then a clean end, -1 for a reset. A clean end after fewer bytes, or wrong bytes,
 * fail the test. Closes `peer`. */
static int peer_outcome(struct event_base *base, int peer)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    struct timeval tv = {5, 0};
    setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    uint8_t buf[16384];
    size_t got = 0;
    int outcome = 0;
    while (!outcome) {
        ssize_t n = read(peer, buf, sizeof(buf));
        if (n < 0 && errno == ECONNRESET)
            outcome = -1;
        else if (n < 0)
            fail_msg("read: %s", strerror(errno));
        else if (n == 0 && got != SENT)
            fail_msg("a clean end after %zu of %d bytes", got, SENT);
        else if (n == 0)
            outcome = 1;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != tu_pattern(got + (size_t)i))
                fail_msg("byte %zu differs", got + (size_t)i);
        got += n > 0 ? (size_t)n : 0;
    }
    close(peer);
    return outcome;
}

static bool armed(int fd)
{
    struct linger lg = {0, 0};
    socklen_t len = sizeof(lg);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    return lg.l_onoff && lg.l_linger == 0;
}

struct fixture {
    struct event_base *base;
    vrev_ctx *ctx;
    int fd, peer;
    struct bufferevent *bev;
};

static void setup(struct fixture *f)
{
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(vrev_ctx_new(&f->ctx, f->base), 0);
    tcp_pair(&f->fd, &f->peer);
    f->bev = vrev__bev_socket(f->ctx, f->fd);
    assert_non_null(f->bev);
}

static void teardown(struct fixture *f)
{
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    event_base_free(f->base);
    vrev_ctx_free(f->ctx);
}

/* What the fix is about: a socket freed in the middle of its stream ends it with a FIN. */
static void test_unarmed_close_looks_complete(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    assert_false(armed(f.fd));
    send_pattern(f.fd);
    bufferevent_free(f.bev);
    assert_int_equal(peer_outcome(f.base, f.peer), 1); /* the peer cannot tell the stream was cut */
    teardown(&f);
}

static void test_armed_close_resets(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    vrev__bev_arm_abort(f.bev);
    assert_true(armed(f.fd));
    send_pattern(f.fd);
    bufferevent_free(f.bev); /* no graceful end */
    assert_int_equal(peer_outcome(f.base, f.peer), -1);
    teardown(&f);
}

static void test_armed_graceful_ends_are_clean(void **state)
{
    (void)state;
    for (int how = 0; how < 2; how++) {
        struct fixture f;
        setup(&f);
        vrev__bev_arm_abort(f.bev);
        send_pattern(f.fd);
        if (how == 0) {
            vrev__bev_shutdown_write(f.bev); /* the relay's end of a direction */
            assert_false(armed(f.fd));
            bufferevent_free(f.bev); /* a crash after the end resets nothing */
        } else {
            vrev__bev_close(f.bev, 0); /* a mux session's end */
        }
        assert_int_equal(peer_outcome(f.base, f.peer), 1);
        teardown(&f);
    }
}

/* An abort still resets, armed or not. */
static void test_abort_resets(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    send_pattern(f.fd);
    vrev__bev_close(f.bev, 1);
    assert_int_equal(peer_outcome(f.base, f.peer), -1);
    teardown(&f);
}

/* Below a layer (a VMess stream is a filter): the socket at the bottom is armed, freeing the
 * layer resets it, and a graceful close through the layer does not. */
static void test_armed_below_a_layer(void **state)
{
    (void)state;
    for (int graceful = 0; graceful < 2; graceful++) {
        struct fixture f;
        setup(&f);
        struct bufferevent *layer =
            bufferevent_filter_new(f.bev, NULL, NULL, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
        assert_non_null(layer);
        vrev__bev_arm_abort(layer);
        assert_true(armed(f.fd));
        send_pattern(f.fd);
        if (graceful)
            vrev__bev_close(layer, 0);
        else
            bufferevent_free(layer);
        assert_int_equal(peer_outcome(f.base, f.peer), graceful ? 1 : -1);
        teardown(&f);
    }
}

/* A pair has no socket: arming it does nothing (and does not fail). */
static void test_pair_is_left_alone(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(base, 0, pair), 0);
    vrev__bev_arm_abort(pair[0]);
    bufferevent_free(pair[0]);
    bufferevent_free(pair[1]);
    event_base_free(base);
}

/* The case itself: the process that holds the socket is killed (SIGKILL), and the kernel
 * closes the socket. Armed and in the middle of its stream: a reset; armed, but after its
 * graceful end: every byte, then a clean end. */
static void killed_holding(int graceful)
{
    struct fixture f;
    setup(&f);
    vrev__bev_arm_abort(f.bev);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the only holder of the socket once the parent has let go of it */
        char c;
        close(f.peer);
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        send_pattern(f.fd);
        if (graceful)
            vrev__bev_shutdown_write(f.bev);
        raise(SIGKILL);
        _exit(1);
    }
    bufferevent_free(f.bev); /* closes the parent's descriptor only */
    event_base_loop(f.base, EVLOOP_NONBLOCK);
    assert_int_equal(write(go[1], "x", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(peer_outcome(f.base, f.peer), graceful ? 1 : -1);
    close(go[0]);
    close(go[1]);
    teardown(&f);
}

static void test_killed_process_resets(void **state)
{
    (void)state;
    killed_holding(0);
}

static void test_killed_after_graceful_end_is_clean(void **state)
{
    (void)state;
    killed_holding(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unarmed_close_looks_complete),
        cmocka_unit_test(test_armed_close_resets),
        cmocka_unit_test(test_armed_graceful_ends_are_clean),
        cmocka_unit_test(test_abort_resets),
        cmocka_unit_test(test_armed_below_a_layer),
        cmocka_unit_test(test_pair_is_left_alone),
        cmocka_unit_test(test_killed_process_resets),
        cmocka_unit_test(test_killed_after_graceful_end_is_clean),
    };
    return cmocka_run_group_tests_name("close", tests, NULL, NULL);
}
