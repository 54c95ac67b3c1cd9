/* lib/net/vmess_stream: the VMess layer on a bufferevent pair (no sockets): both roles talk to
 * each other; garbage from the peer is an error event at once, not a stall. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "codec/vmess_body.h"
#include "net/vmess_stream.h"
#include "testutil.h"

static const uint8_t uuid[16] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38,
                                 0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b};

struct side {
    struct evbuffer *got;
    short events;
};

static void on_read(struct bufferevent *bev, void *arg)
{
    struct side *s = arg;
    evbuffer_add_buffer(s->got, bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct side *s = arg;
    s->events |= what;
}

static void run(struct event_base *base, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void test_garbage_is_an_error_at_once(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    struct vrev__vmess_user user;
    assert_int_equal(vrev__vmess_user_init(&user, uuid), 0);
    struct vrev__vmess_request req;
    memset(&req, 0, sizeof(req));
    assert_int_equal(vrev__vmess_request_randomize(&req, NULL, NULL), 0);
    req.version = 1;
    req.security = VREV_VMESS_SEC_AES_128_GCM;
    req.options = VREV_VMESS_OPT_DEFAULT;
    req.command = VREV_VMESS_CMD_TCP;
    assert_int_equal(vrev__addr_from_text(&req.target, "example.com", 80), 0);
    int err;
    struct bufferevent *client =
        vrev__vmess_stream_client(ctx, pair[0], &user, &req, 1700000000, &err);
    assert_non_null(client);
    struct side c = {evbuffer_new(), 0};
    bufferevent_setcb(client, on_read, NULL, on_event, &c);
    bufferevent_enable(client, EV_READ | EV_WRITE);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    run(base, 20);
    /* the "server" answers with bytes that are no VMess response */
    uint8_t junk[200];
    memset(junk, 0x42, sizeof(junk));
    bufferevent_write(pair[1], junk, sizeof(junk));
    for (int i = 0; i < 50 && !(c.events & BEV_EVENT_ERROR); i++)
        run(base, 10);
    assert_true(c.events & BEV_EVENT_ERROR);
    assert_int_equal(evbuffer_get_length(c.got), 0);
    bufferevent_free(client);
    bufferevent_free(pair[1]);
    evbuffer_free(c.got);
    vrev__vmess_user_wipe(&user);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_is_an_error_at_once),
    };
    return cmocka_run_group_tests_name("vmess_stream", tests, NULL, NULL);
}
