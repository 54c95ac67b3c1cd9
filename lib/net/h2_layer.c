/* The "h2" carrier's client role as a bufferevent filter over the connection below it (tls, or
 * tcp for tests and prior-knowledge servers): one HTTP/2 connection per dial, one stream on it
 * (V2Ray's server takes that as it takes its own client's multiplexed streams).
 *
 *   upper <-- payload -->  [ filter: one h2 stream (lib/codec/h2) ]  <-- frames -->  lower
 *
 * The request (PUT, :authority one of the hosts at random, :path) goes out at once with the
 * connection preface; the upper layer's bytes follow as DATA without waiting for the 200
 * (as V2Ray's client). The peer's END_STREAM is an EOF, its RST_STREAM CANCEL or NO_ERROR (V2Ray's
 * way to end) too, another reset or an answer other than 200 an error. The upper layer's end of
 * stream is END_STREAM: HTTP/2 has a half-close (the TLS below is told to ignore that end, as
 * for ws: Go's server takes a close_notify for the end of the whole connection).
 *
 * Flow control: credit goes back to the peer as the upper layer drains the filter's input (an
 * evbuffer callback reports what it took: vrev__h2_consumed), so the stream holds at most its
 * window of unread input. Output: the upper layer's bytes go to the codec while the stream
 * holds less than STREAM_MARK unsent (the peer's window decides when they leave); the rest waits
 * in the filter's output, where the upper layer sees it, and a WINDOW_UPDATE from the peer
 * restarts the flow. Under TLS the server must have chosen ALPN "h2", as V2Ray's client asks. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <string.h>

#include "carrier_layer.h"
#include "codec/h2.h"
#include "crypto/crypto.h"
#include "net.h"

#define STREAM_MARK (256 * 1024)
#define LOWER_HIGH_WATER (256 * 1024)
#define LOWER_READ_WATER (64 * 1024)
#define SEND_PIECE 16384

struct h2l {
    vrev_ctx *ctx;
    struct bufferevent *self, *lower;
    struct vrev__h2 *h2;
    int32_t sid; /* -1 once the stream is gone */
    struct event *tick, *kick;
    struct evbuffer_cb_entry *taken; /* on the filter's input: what the upper layer drained */
    bool failed, ended_in, ended_out, alpn_checked;
};

static void h2l_free(void *arg)
{
    struct h2l *v = arg;
    if (v->taken)
        evbuffer_remove_cb_entry(bufferevent_get_input(v->self), v->taken);
    if (v->tick)
        event_free(v->tick);
    if (v->kick)
        event_free(v->kick);
    vrev__h2_free(v->h2);
    vrev__free(v->ctx, v);
}

static void raise_event(struct h2l *v, short what)
{
    if (v->failed || v->ended_in)
        return;
    if (what & BEV_EVENT_EOF)
        v->ended_in = true;
    else
        v->failed = true;
    bufferevent_trigger_event(v->self, what, BEV_TRIG_DEFER_CALLBACKS);
}

static enum bufferevent_filter_result fail(struct h2l *v, struct evbuffer *src, short what)
{
    evbuffer_drain(src, evbuffer_get_length(src));
    raise_event(v, BEV_EVENT_ERROR | what);
    return BEV_ERROR;
}

/* Move the codec's frames below. Callbacks (on_close) may run meanwhile. */
static int flush_codec(struct h2l *v)
{
    struct evbuffer *out = bufferevent_get_output(v->lower);
    const uint8_t *p;
    size_t n;
    while ((n = vrev__h2_pending(v->h2, &p)) > 0) {
        if (evbuffer_add(out, p, n) < 0)
            return VREV_ERR_NOMEM;
        vrev__h2_consume(v->h2, n);
    }
    return 0;
}

/* After credit came back or frames left: more of the upper layer's bytes may go. */
static void maybe_kick(struct h2l *v)
{
    if (v->sid >= 0 && evbuffer_get_length(bufferevent_get_output(v->self)) &&
        vrev__h2_buffered(v->h2, v->sid) < STREAM_MARK)
        event_active(v->kick, EV_TIMEOUT, 1);
}

/* --- codec callbacks ------------------------------------------------------------------------ */

static int on_open(void *user, int32_t sid, const struct vrev__h2_request *req)
{
    (void)user, (void)sid, (void)req; /* the 200: nothing waits for it */
    return 0;
}

static int on_data(void *user, int32_t sid, const uint8_t *p, size_t n)
{
    struct h2l *v = user;
    (void)sid;
    return evbuffer_add(bufferevent_get_input(v->self), p, n) == 0 ? 0 : VREV_ERR_NOMEM;
}

static void on_end(void *user, int32_t sid)
{
    (void)sid;
    raise_event(user, BEV_EVENT_EOF | BEV_EVENT_READING);
}

static void on_close(void *user, int32_t sid, int err)
{
    (void)sid;
    struct h2l *v = user;
    v->sid = -1;
    raise_event(v, err ? BEV_EVENT_ERROR | BEV_EVENT_READING : BEV_EVENT_EOF | BEV_EVENT_READING);
}

/* The upper layer drained n bytes of the filter's input: the peer gets that much credit. */
static void on_taken(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct h2l *v = arg;
    if (info->n_deleted == 0 || v->sid < 0 || v->failed)
        return;
    vrev__h2_consumed(v->h2, v->sid, info->n_deleted);
    if (flush_codec(v) < 0)
        raise_event(v, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
}

/* --- filter --------------------------------------------------------------------------------- */

static bool alpn_ok(struct h2l *v)
{
    const char *alpn;
    if (v->alpn_checked || !vrev__layer_alpn(v->lower, &alpn))
        return true; /* no TLS: prior knowledge */
    v->alpn_checked = true;
    return alpn && strcmp(alpn, "h2") == 0;
}

static enum bufferevent_filter_result filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg)
{
    (void)mode, (void)limit; /* the stream window bounds what arrives unread */
    struct h2l *v = arg;
    if (v->failed || !alpn_ok(v))
        return fail(v, src, BEV_EVENT_READING);
    size_t start = evbuffer_get_length(dst);
    struct evbuffer_iovec vec;
    int rc = 0;
    while (rc == 0 && evbuffer_peek(src, -1, NULL, &vec, 1) == 1 && vec.iov_len > 0) {
        rc = vrev__h2_feed(v->h2, vec.iov_base, vec.iov_len);
        evbuffer_drain(src, vec.iov_len);
    }
    if (flush_codec(v) < 0 || rc < 0) /* a connection error: its GOAWAY goes out first */
        return fail(v, src, BEV_EVENT_READING);
    maybe_kick(v);
    return evbuffer_get_length(dst) > start ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result filter_out(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *arg)
{
    (void)limit, (void)dst; /* the stream's mark bounds what the codec holds */
    struct h2l *v = arg;
    if (v->failed)
        return fail(v, src, BEV_EVENT_WRITING);
    if (v->sid < 0) { /* the stream is gone: nobody reads this */
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    }
    struct evbuffer_iovec vec;
    while (vrev__h2_buffered(v->h2, v->sid) < STREAM_MARK &&
           evbuffer_peek(src, -1, NULL, &vec, 1) == 1 && vec.iov_len > 0) {
        size_t n = vec.iov_len < SEND_PIECE ? vec.iov_len : SEND_PIECE;
        if (vrev__h2_send(v->h2, v->sid, vec.iov_base, n) < 0) {
            evbuffer_drain(src, evbuffer_get_length(src)); /* ended or reset meanwhile */
            break;
        }
        evbuffer_drain(src, n);
    }
    if (mode == BEV_FINISHED && evbuffer_get_length(src) == 0 && !v->ended_out && v->sid >= 0) {
        v->ended_out = true;
        vrev__h2_end(v->h2, v->sid);
    }
    if (flush_codec(v) < 0)
        return fail(v, src, BEV_EVENT_WRITING);
    /* BEV_OK with bytes left would make libevent call again at once, for ever: what is left
     * waits for the peer's credit (maybe_kick) */
    return evbuffer_get_length(src) ? BEV_NEED_MORE : BEV_OK;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    vrev__h2_tick(((struct h2l *)arg)->h2);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct h2l *v = arg;
    bufferevent_flush(v->self, EV_WRITE, BEV_NORMAL);
}

struct bufferevent *vrev__h2_layer_client(vrev_ctx *ctx, struct bufferevent *lower,
                                          const struct vrev__carrier_opts *o, int *err)
{
    static const struct vrev__h2_callbacks cb = {
        .on_open = on_open, .on_data = on_data, .on_end = on_end, .on_close = on_close};
    struct h2l *v = vrev__calloc(ctx, 1, sizeof(*v));
    uint32_t r = 0;
    struct vrev__h2_opts ho = {.client = true, .path = o->path ? o->path : "/"};
    if (o->n_hosts > 0) { /* V2Ray picks one of them per request */
        (void)vrev__random_bytes((uint8_t *)&r, sizeof(r));
        ho.authority = o->hosts[r % o->n_hosts];
    }
    struct timeval sec = {1, 0};
    int rc = VREV_ERR_NOMEM;
    if (v) {
        v->ctx = ctx;
        v->lower = lower;
        v->tick = event_new(ctx->base, -1, EV_PERSIST, on_tick, v);
        v->kick = event_new(ctx->base, -1, 0, on_kick, v);
    }
    if (v && v->tick && v->kick && event_add(v->tick, &sec) == 0 &&
        (rc = vrev__h2_new(ctx, &v->h2, &ho, &cb, v)) == 0 &&
        (rc = vrev__h2_open(v->h2, &v->sid)) == 0)
        rc = flush_codec(v); /* the preface, SETTINGS and the request */
    if (rc < 0) {
        if (v)
            h2l_free(v);
        bufferevent_free(lower);
        *err = rc;
        return NULL;
    }
    struct bufferevent *self = vrev__layer_filter_new(lower, filter_in, filter_out, h2l_free, v);
    if (!self) { /* v and lower are gone */
        *err = VREV_ERR_NOMEM;
        return NULL;
    }
    v->self = self;
    if (!(v->taken = evbuffer_add_cb(bufferevent_get_input(self), on_taken, v))) {
        bufferevent_free(self); /* frees v and lower */
        *err = VREV_ERR_NOMEM;
        return NULL;
    }
    bufferevent_setwatermark(lower, EV_WRITE, 0, LOWER_HIGH_WATER);
    bufferevent_setwatermark(lower, EV_READ, 0, LOWER_READ_WATER);
    vrev__layer_keep_open(lower); /* END_STREAM ends only the stream; no-op without TLS */
    *err = 0;
    return self;
}
