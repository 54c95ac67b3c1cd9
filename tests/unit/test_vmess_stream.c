/* lib/net/vmess_stream: the VMess layer on a bufferevent pair (no sockets): both roles talk to
 * each other; garbage from the peer is an error event at once, not a stall. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void make_request(struct vrev__vmess_request *req, int security, int options, int command)
{
    memset(req, 0, sizeof(*req));
    assert_int_equal(vrev__vmess_request_randomize(req, NULL, NULL), 0);
    req->version = 1;
    req->security = (uint8_t)security;
    req->options = (uint8_t)options;
    req->command = (uint8_t)command;
    assert_int_equal(vrev__addr_from_text(&req->target, "example.com", 80), 0);
}

/* Decode what one role wrote (after `skip` header bytes) with the codec; count the chunks. */
struct seen {
    size_t len, chunks, largest;
    int end;
};

static void decode_wire(vrev_ctx *ctx, struct evbuffer *wire, size_t skip,
                        const struct vrev__vmess_request *req, const uint8_t key[16],
                        const uint8_t iv[16], const uint8_t *expect, struct seen *s)
{
    struct vrev__vmess_body b;
    assert_int_equal(
        vrev__vmess_body_init(&b, ctx, req->security, req->options, req->command, key, iv), 0);
    size_t n = evbuffer_get_length(wire);
    assert_true(n > skip);
    const uint8_t *p = evbuffer_pullup(wire, -1) + skip;
    n -= skip;
    memset(s, 0, sizeof(*s));
    while (n) {
        const uint8_t *out;
        size_t used, out_len;
        int rc = vrev__vmess_body_open(&b, p, n, &used, &out, &out_len);
        assert_true(rc >= 0);
        if (rc == VREV_VMESS_BODY_CHUNK) {
            assert_memory_equal(out, expect + s->len, out_len);
            s->len += out_len;
            s->chunks++;
            if (out_len > s->largest)
                s->largest = out_len;
        }
        p += used;
        n -= used;
        if (rc == VREV_VMESS_BODY_EOF) {
            s->end = rc;
            break;
        }
    }
    vrev__vmess_body_cleanup(&b);
}

/* Both roles seal streams in chunks of 16 KiB - 256 bytes (4.34 readers take up to 65535),
 * and end them with the end-of-stream chunk. */
static void large_chunks(int security, int options)
{
    enum { N = 100000, CHUNK = 16384 - 256 };
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    uint8_t *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    struct vrev__vmess_user user;
    assert_int_equal(vrev__vmess_user_init(&user, uuid), 0);
    struct vrev__vmess_request req;
    make_request(&req, security, options, VREV_VMESS_CMD_TCP);
    uint8_t resp_key[16], resp_iv[16];
    assert_int_equal(vrev__vmess_response_keys(req.body_key, req.body_iv, resp_key, resp_iv), 0);
    for (int role = 0; role < 2; role++) {
        struct bufferevent *pair[2];
        assert_int_equal(bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
        int err;
        struct bufferevent *s =
            role == 0 ? vrev__vmess_stream_client(ctx, pair[0], &user, &req, 1700000000, &err)
                      : vrev__vmess_stream_server(ctx, pair[0], &req, &err);
        assert_non_null(s);
        struct side peer = {evbuffer_new(), 0};
        bufferevent_setcb(pair[1], on_read, NULL, on_event, &peer);
        bufferevent_enable(s, EV_READ | EV_WRITE);
        bufferevent_enable(pair[1], EV_READ | EV_WRITE);
        run(base, 10);
        size_t header = evbuffer_get_length(peer.got); /* client: the request header */
        assert_int_equal(bufferevent_write(s, data, N), 0);
        for (int i = 0; i < 20; i++)
            run(base, 5);
        bufferevent_flush(s, EV_WRITE, BEV_FINISHED);
        for (int i = 0; i < 20; i++)
            run(base, 5);
        struct seen seen;
        if (role == 0)
            decode_wire(ctx, peer.got, header, &req, req.body_key, req.body_iv, data, &seen);
        else
            decode_wire(ctx, peer.got, VREV_VMESS_RESPONSE_LEN, &req, resp_key, resp_iv, data,
                        &seen);
        assert_int_equal(seen.len, N);
        assert_int_equal(seen.end, VREV_VMESS_BODY_EOF);
        assert_int_equal(seen.largest, CHUNK);
        assert_int_equal(seen.chunks, (N + CHUNK - 1) / CHUNK);
        bufferevent_free(s);
        bufferevent_free(pair[1]);
        evbuffer_free(peer.got);
    }
    vrev__vmess_user_wipe(&user);
    free(data);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

static void test_large_chunks_aes(void **state)
{
    (void)state;
    large_chunks(VREV_VMESS_SEC_AES_128_GCM, VREV_VMESS_OPT_DEFAULT);
}

static void test_large_chunks_chacha(void **state)
{
    (void)state;
    large_chunks(VREV_VMESS_SEC_CHACHA20_POLY1305, VREV_VMESS_OPT_DEFAULT);
}

static void test_large_chunks_none(void **state)
{
    (void)state;
    large_chunks(VREV_VMESS_SEC_NONE, VREV_VMESS_OPT_DEFAULT_NONE);
}

/* UDP: a datagram that reaches the layer in pieces (as a relay moves bytes) waits for its
 * rest and goes out as one chunk; the layer does not spin on the piece (an alarm would end
 * the test). */
static void test_datagram_in_pieces(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, base), 0);
    struct vrev__vmess_request req;
    make_request(&req, VREV_VMESS_SEC_AES_128_GCM, VREV_VMESS_OPT_DEFAULT, VREV_VMESS_CMD_UDP);
    uint8_t resp_key[16], resp_iv[16];
    assert_int_equal(vrev__vmess_response_keys(req.body_key, req.body_iv, resp_key, resp_iv), 0);
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair), 0);
    int err;
    struct bufferevent *s = vrev__vmess_stream_server(ctx, pair[0], &req, &err);
    assert_non_null(s);
    struct side peer = {evbuffer_new(), 0};
    bufferevent_setcb(pair[1], on_read, NULL, on_event, &peer);
    bufferevent_enable(s, EV_READ | EV_WRITE);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    alarm(10);
    assert_int_equal(bufferevent_write(s,
                                       "\x00\x05"
                                       "ab",
                                       4),
                     0); /* half a datagram */
    run(base, 20);
    size_t before = evbuffer_get_length(peer.got);
    assert_int_equal(bufferevent_write(s, "cde", 3), 0);
    run(base, 20);
    alarm(0);
    struct seen seen;
    assert_true(evbuffer_get_length(peer.got) > before);
    decode_wire(ctx, peer.got, VREV_VMESS_RESPONSE_LEN, &req, resp_key, resp_iv,
                (const uint8_t *)"abcde", &seen);
    assert_int_equal(seen.len, 5);
    assert_int_equal(seen.chunks, 1);
    bufferevent_free(s);
    bufferevent_free(pair[1]);
    evbuffer_free(peer.got);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_is_an_error_at_once),
        cmocka_unit_test(test_large_chunks_aes),
        cmocka_unit_test(test_large_chunks_chacha),
        cmocka_unit_test(test_large_chunks_none),
        cmocka_unit_test(test_datagram_in_pieces),
    };
    return cmocka_run_group_tests_name("vmess_stream", tests, NULL, NULL);
}
