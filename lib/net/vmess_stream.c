/* VMess body as a bufferevent filter over the connection below it (tcp, or tls).
 *
 *   user side  <-- plaintext -->  [ filter: body chunks, response header ]  <-- wire --> lower
 *
 * Client: the request header was written to `lower` before the filter exists; the filter
 * reads the response header before the first response chunk (and never waits for it before
 * sending). Server: the request header has been read; the response header goes out in front
 * of the first response bytes, as 4.34 servers do. An end of stream from the user side
 * (BEV_FINISHED) becomes the end-of-stream chunk; the peer's end-of-stream chunk becomes an
 * EOF event on the filter. A bad chunk is an error event (the connection must be dropped). */
#include <event2/bufferevent.h>
#include <string.h>

#include "codec/vmess_body.h"
#include "net.h"
#include "packet.h"
#include "vmess_stream.h"

struct vstream {
    vrev_ctx *ctx;
    struct bufferevent *self;
    struct vrev__vmess_body enc; /* our direction */
    struct vrev__vmess_body dec; /* the peer's direction */
    bool client;
    bool packet;    /* UDP: the user side is a packet link, one datagram per chunk */
    bool resp_read; /* client: response header done */
    bool resp_sent; /* server: response header sent */
    bool eof_in;    /* peer's end-of-stream chunk seen */
    bool eof_out;   /* our end-of-stream chunk sent */
    bool failed;    /* an error event was raised */
    size_t room;    /* plaintext room to offer the decoder: the peer's last chunk size */
    struct vrev__vmess_resp_reader resp;
    uint8_t resp_hdr[VREV_VMESS_RESPONSE_LEN];
};

static void vstream_free(void *arg)
{
    struct vstream *v = arg;
    vrev__vmess_body_cleanup(&v->enc);
    vrev__vmess_body_cleanup(&v->dec);
    vrev__vmess_resp_reader_wipe(&v->resp);
    vrev__wipe(v->resp_hdr, sizeof(v->resp_hdr));
    vrev__free(v->ctx, v);
}

/* libevent 2.1 ignores BEV_ERROR from a filter: raise the error event ourselves, once, so
 * that a forged or broken chunk ends the connection now rather than at its idle timeout. */
static enum bufferevent_filter_result fail(struct vstream *v, struct evbuffer *src, short what)
{
    evbuffer_drain(src, evbuffer_get_length(src));
    if (!v->failed) {
        v->failed = true;
        bufferevent_trigger_event(v->self, BEV_EVENT_ERROR | what, BEV_TRIG_DEFER_CALLBACKS);
    }
    return BEV_ERROR;
}

/* Feed the first contiguous segment of src to a reader-style function. */
static int first_segment(struct evbuffer *src, const uint8_t **p, size_t *n)
{
    struct evbuffer_iovec vec;
    if (evbuffer_peek(src, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0)
        return 0;
    *p = vec.iov_base;
    *n = vec.iov_len;
    return 1;
}

static enum bufferevent_filter_result read_response_header(struct vstream *v, struct evbuffer *src)
{
    const uint8_t *p;
    size_t n, used;
    while (!v->resp_read && first_segment(src, &p, &n)) {
        int rc = vrev__vmess_resp_reader_feed(&v->resp, p, n, &used);
        evbuffer_drain(src, used);
        if (rc < 0)
            return fail(v, src, BEV_EVENT_READING);
        v->resp_read = rc == 1;
    }
    return v->resp_read ? BEV_OK : BEV_NEED_MORE;
}

/* Deliver one decoded chunk to dst: committed in place when it was opened into `room`. */
static void deliver(struct vstream *v, struct evbuffer *dst, struct evbuffer_iovec *room,
                    const uint8_t *out, size_t out_len)
{
    if (room->iov_base && out == room->iov_base) {
        room->iov_len = out_len;
        evbuffer_commit_space(dst, room, 1);
    } else if (v->packet) {
        vrev__packet_put(dst, out, out_len);
    } else {
        evbuffer_add(dst, out, out_len);
    }
}

/* AEAD chunks are opened straight into room reserved in dst, sized like the peer's last chunk
 * (bulk chunks repeat their size), so a chunk costs one pass over its bytes and no buffer of
 * the decoder's own; a larger chunk asks for its room first (VREV_VMESS_BODY_ROOM). */
static enum bufferevent_filter_result filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg)
{
    (void)limit, (void)mode;
    struct vstream *v = arg;
    if (v->failed)
        return fail(v, src, BEV_EVENT_READING);
    if (v->client && !v->resp_read) {
        enum bufferevent_filter_result r = read_response_header(v, src);
        if (r != BEV_OK)
            return r;
    }
    const uint8_t *p, *out;
    size_t n, used, out_len;
    bool produced = false;
    while (!v->eof_in && first_segment(src, &p, &n)) {
        struct evbuffer_iovec room = {0};
        if (v->room > 0 && evbuffer_reserve_space(dst, (ev_ssize_t)v->room, &room, 1) < 1)
            return fail(v, src, BEV_EVENT_READING);
        /* datagrams are framed for the packet link: no room for them in dst */
        int rc = v->packet ? vrev__vmess_body_open(&v->dec, p, n, &used, &out, &out_len)
                           : vrev__vmess_body_open_to(&v->dec, p, n, &used, room.iov_base,
                                                      room.iov_len, &out, &out_len);
        if (rc < 0)
            return fail(v, src, BEV_EVENT_READING);
        if (rc == VREV_VMESS_BODY_ROOM)
            v->room = out_len;
        if (rc == VREV_VMESS_BODY_CHUNK) { /* before draining: out may point into src */
            deliver(v, dst, &room, out, out_len);
            produced = true;
        }
        evbuffer_drain(src, used);
        if (rc == VREV_VMESS_BODY_EOF) {
            v->eof_in = true;
            bufferevent_trigger_event(v->self, BEV_EVENT_EOF | BEV_EVENT_READING,
                                      BEV_TRIG_DEFER_CALLBACKS);
        }
    }
    if (v->eof_in) /* anything after the end-of-stream chunk is ignored */
        evbuffer_drain(src, evbuffer_get_length(src));
    return produced ? BEV_OK : BEV_NEED_MORE;
}

static int seal_into(struct vstream *v, struct evbuffer *dst, const struct vrev__iov *in,
                     size_t nin, size_t n)
{
    struct evbuffer_iovec vec;
    size_t cap = n + VREV_VMESS_BODY_OVERHEAD_MAX;
    if (evbuffer_reserve_space(dst, (ev_ssize_t)cap, &vec, 1) < 1)
        return VREV_ERR_NOMEM;
    int w = vrev__vmess_body_seal_chunk_iov(&v->enc, in, nin, vec.iov_base, vec.iov_len);
    if (w < 0)
        return w;
    vec.iov_len = (size_t)w;
    return evbuffer_commit_space(dst, &vec, 1) == 0 ? 0 : VREV_ERR_NOMEM;
}

static int seal_bytes(struct vstream *v, struct evbuffer *dst, const uint8_t *p, size_t n)
{
    struct vrev__iov in = {p, n};
    return seal_into(v, dst, &in, 1, n);
}

/* The pieces src holds a chunk's payload in: sealed from where they lie, so a payload spread
 * over several chains is not gathered first (evbuffer_pullup would copy and allocate). */
#define SEAL_PIECES 8

static int seal_front(struct vstream *v, struct evbuffer *dst, struct evbuffer *src, size_t n)
{
    struct evbuffer_iovec vec[SEAL_PIECES];
    struct vrev__iov in[SEAL_PIECES];
    int k = evbuffer_peek(src, (ev_ssize_t)n, NULL, vec, SEAL_PIECES);
    if (k > SEAL_PIECES) { /* in many small pieces: gather them after all */
        const uint8_t *p = evbuffer_pullup(src, (ev_ssize_t)n);
        return p ? seal_bytes(v, dst, p, n) : VREV_ERR_NOMEM;
    }
    size_t have = 0, i = 0;
    for (; i < (size_t)k && have < n; i++) {
        in[i].base = vec[i].iov_base;
        in[i].len = vec[i].iov_len < n - have ? vec[i].iov_len : n - have;
        have += in[i].len;
    }
    if (have != n)
        return VREV_ERR_STATE;
    return seal_into(v, dst, in, i, n);
}

static enum bufferevent_filter_result filter_out(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *arg)
{
    struct vstream *v = arg;
    /* Backpressure: libevent gives the room left under the socket's write high-water mark;
     * what does not fit stays in src, where the relay sees it and stops reading its source. */
    size_t budget = limit < 0 ? SIZE_MAX : (size_t)limit;
    size_t max = vrev__vmess_body_max_payload(&v->enc);
    size_t left = evbuffer_get_length(src);
    if (v->failed)
        return fail(v, src, BEV_EVENT_WRITING);
    if (v->eof_out) {
        evbuffer_drain(src, left);
        return BEV_OK;
    }
    if (!v->client && !v->resp_sent && (left || mode == BEV_FINISHED)) {
        evbuffer_add(dst, v->resp_hdr, sizeof(v->resp_hdr));
        v->resp_sent = true;
    }
    size_t start = evbuffer_get_length(dst);
    if (v->packet) {
        uint8_t dgram[VREV_PACKET_MAX];
        size_t n;
        while (evbuffer_get_length(dst) - start < budget &&
               vrev__packet_take(src, dgram, sizeof(dgram), &n))
            if (n && n <= max && seal_bytes(v, dst, dgram, n) < 0) /* empty/too large: dropped */
                return fail(v, src, BEV_EVENT_WRITING);
        left = 0;
        /* What stays is a datagram not yet whole (a relay moves bytes, not datagrams) or one
         * waiting for room below. Answering BEV_OK with bytes left makes libevent call again
         * at once, for ever. At the end, a datagram that cannot be completed is dropped. */
        if (mode == BEV_FINISHED)
            evbuffer_drain(src, evbuffer_get_length(src));
        else if (evbuffer_get_length(src))
            return BEV_NEED_MORE;
    }
    while (left && evbuffer_get_length(dst) - start < budget) {
        size_t n = left < max ? left : max;
        if (seal_front(v, dst, src, n) < 0)
            return fail(v, src, BEV_EVENT_WRITING);
        evbuffer_drain(src, n);
        left -= n;
    }
    if (mode == BEV_FINISHED && left == 0 && evbuffer_get_length(src) == 0) {
        if (v->enc.mode != VREV_VMESS_BODY_RAW && seal_bytes(v, dst, NULL, 0) < 0)
            return fail(v, src, BEV_EVENT_WRITING);
        v->eof_out = true;
    }
    return BEV_OK;
}

/* Our stream chunks carry up to 16 KiB - 256 bytes of payload. 4.34 writes 2 KiB chunks but
 * its readers take any length up to 65535 (common/crypto/auth.go reads a chunk over 2048
 * bytes into a buffer of the chunk's size), so eight times fewer chunks cost eight times fewer
 * nonce setups, SHAKE draws and tag checks on both ends. With its framing (at most 81 bytes)
 * and libevent's chain header, a sealed chunk still fits one 16 KiB evbuffer chain and one
 * TLS record. Datagrams keep 4.34's one-chunk-per-datagram limit. */
#define STREAM_CHUNK_PAYLOAD (16384 - 256)

/* The most a VMess layer queues on the socket below it before it stops taking plaintext. */
#define LOWER_HIGH_WATER (256 * 1024)

static struct bufferevent *wrap(vrev_ctx *ctx, struct bufferevent *lower, struct vstream *v)
{
    (void)ctx;
    struct bufferevent *self =
        vrev__layer_filter_new(lower, filter_in, filter_out, vstream_free, v);
    if (!self)
        return NULL; /* v and lower are gone */
    v->self = self;
    bufferevent_setwatermark(lower, EV_WRITE, 0, LOWER_HIGH_WATER);
    return self;
}

static struct vstream *vstream_new(vrev_ctx *ctx, const struct vrev__vmess_request *req,
                                   bool client, int *err)
{
    uint8_t resp_key[16], resp_iv[16];
    struct vstream *v = vrev__calloc(ctx, 1, sizeof(*v));
    if (!v) {
        *err = VREV_ERR_NOMEM;
        return NULL;
    }
    v->ctx = ctx;
    v->client = client;
    v->packet = req->command == VREV_VMESS_CMD_UDP;
    int rc = vrev__vmess_response_keys(req->body_key, req->body_iv, resp_key, resp_iv);
    const uint8_t *ek = client ? req->body_key : resp_key, *ei = client ? req->body_iv : resp_iv;
    const uint8_t *dk = client ? resp_key : req->body_key, *di = client ? resp_iv : req->body_iv;
    if (rc == 0)
        rc = vrev__vmess_body_init(&v->enc, ctx, req->security, req->options, req->command, ek, ei);
    if (rc == 0 && !v->packet && v->enc.mode != VREV_VMESS_BODY_RAW &&
        (rc = vrev__vmess_body_set_max_payload(&v->enc, STREAM_CHUNK_PAYLOAD)) < 0)
        vrev__vmess_body_cleanup(&v->enc);
    if (rc == 0) {
        rc = vrev__vmess_body_init(&v->dec, ctx, req->security, req->options, req->command, dk, di);
        if (rc < 0)
            vrev__vmess_body_cleanup(&v->enc);
    }
    if (rc == 0 && client)
        vrev__vmess_resp_reader_init(&v->resp, ctx, resp_key, resp_iv, req->resp_v);
    if (rc == 0 && !client) {
        rc = vrev__vmess_response_seal(ctx, resp_key, resp_iv, req->resp_v, v->resp_hdr,
                                       sizeof(v->resp_hdr));
        if (rc > 0)
            rc = 0;
        else {
            vrev__vmess_body_cleanup(&v->enc);
            vrev__vmess_body_cleanup(&v->dec);
        }
    }
    vrev__wipe(resp_key, sizeof(resp_key));
    vrev__wipe(resp_iv, sizeof(resp_iv));
    if (rc < 0) {
        vrev__free(ctx, v);
        *err = rc;
        return NULL;
    }
    return v;
}

struct bufferevent *vrev__vmess_stream_client(vrev_ctx *ctx, struct bufferevent *lower,
                                              const struct vrev__vmess_user *user,
                                              const struct vrev__vmess_request *req, int64_t now,
                                              int *err)
{
    uint8_t flight[VREV_VMESS_REQUEST_MAX], rnd[4 + 8];
    int rc = vrev__random_bytes(rnd, sizeof(rnd));
    if (rc == 0)
        rc = vrev__vmess_request_seal(ctx, user, now, rnd, rnd + 4, req, flight, sizeof(flight));
    struct vstream *v = NULL;
    if (rc > 0) {
        v = vstream_new(ctx, req, true, &rc);
        if (v && bufferevent_write(lower, flight, (size_t)rc) < 0) {
            vstream_free(v);
            v = NULL;
            rc = VREV_ERR_NOMEM;
        }
    }
    vrev__wipe(flight, sizeof(flight));
    if (!v) {
        bufferevent_free(lower);
        *err = rc < 0 ? rc : VREV_ERR_CRYPTO;
        return NULL;
    }
    struct bufferevent *bev = wrap(ctx, lower, v);
    *err = bev ? 0 : VREV_ERR_NOMEM;
    return bev;
}

struct bufferevent *vrev__vmess_stream_server(vrev_ctx *ctx, struct bufferevent *lower,
                                              const struct vrev__vmess_request *req, int *err)
{
    struct vstream *v = vstream_new(ctx, req, false, err);
    if (!v) {
        bufferevent_free(lower);
        return NULL;
    }
    struct bufferevent *bev = wrap(ctx, lower, v);
    *err = bev ? 0 : VREV_ERR_NOMEM;
    return bev;
}
