/* The "h2" carrier's server role: one HTTP/2 connection carries many streams (V2Ray's client
 * multiplexes every proxied connection to one server over one connection), each handed out as
 * a bufferevent of its own.
 *
 *   lower (tls, tcp) <--> [ conn: codec, streams ] --> stream 1: filter "self" (handed out)
 *                                                  --> stream 3: ...
 *
 * A stream's bufferevent is a filter over a bufferevent pair end that carries nothing: the
 * filter gives it libevent's bufferevent behaviour (callbacks, watermarks, flush modes) and,
 * unlike a pair end, tells us when its owner frees it (its free callback). Payload is added to
 * its input directly; its output goes to the codec through the filter's output function. The
 * pair's other end marks the stream as a layer (layer.h) with nothing below of its own: its
 * connection is every stream's, and an abort of one stream (or its socket options) must not
 * reach it; the stream's own free resets the stream if it is still open.
 * Lifetimes: the connection lives while its lower connection does or any stream is held; a
 * stream freed by its owner resets the HTTP/2 stream if it is still open; the lower connection
 * ending is an error (or EOF, for streams already ended) on every stream held.
 * Flow control: credit goes back as the owner drains a stream's input (vrev__h2_consumed), so
 * a stream holds at most its window unread; output waits in the filter's output above
 * STREAM_MARK unsent bytes of the stream, and resumes when the peer gives credit. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

#include "carrier_layer.h"
#include "codec/h2.h"
#include "core/list.h"
#include "net.h"

#define STREAM_MARK (256 * 1024)
#define LOWER_HIGH_WATER (256 * 1024)
#define SEND_PIECE 16384

struct h2s;

struct vrev__h2_conn {
    vrev_ctx *ctx;
    struct bufferevent *lower; /* NULL once it ended */
    struct vrev__h2 *h2;
    struct event *tick;
    vrev__h2_stream_cb cb;
    vrev__h2_gone_cb gone;
    void *user;
    /* without a stream held: closed after idle_ms before the first stream (an unauthenticated
     * connection), after idle_later_ms once one was opened (V2Ray's client keeps its
     * connection open between streams, and a close races its next request) */
    uint32_t idle_ms, idle_later_ms, idle_for;
    bool had_stream;
    struct h2s *streams; /* held by their owners */
    bool busy;           /* inside the codec: frees wait */
};

struct h2s {
    struct vrev__layer layer; /* a hidden layer (layer.h): nothing below is its own */
    struct vrev__h2_conn *c;
    struct h2s *prev, *next;
    int32_t sid;                    /* -1 once the HTTP/2 stream is gone */
    struct bufferevent *self, *far; /* far: the other end of the pair under self, its mark */
    struct evbuffer_cb_entry *taken;
    bool ended_in, failed, ended_out;
};

static void conn_maybe_free(struct vrev__h2_conn *c)
{
    if (c->lower || c->streams || c->busy)
        return;
    if (c->tick)
        event_free(c->tick);
    vrev__h2_free(c->h2);
    vrev__free(c->ctx, c);
}

static void conn_flush(struct vrev__h2_conn *c)
{
    const uint8_t *p;
    size_t n;
    if (!c->lower || c->busy) /* inside the codec: lower_read flushes after it */
        return;
    struct evbuffer *out = bufferevent_get_output(c->lower);
    while ((n = vrev__h2_pending(c->h2, &p)) > 0) {
        evbuffer_add(out, p, n);
        vrev__h2_consume(c->h2, n);
    }
}

static void stream_event(struct h2s *s, short what)
{
    if (s->failed || s->ended_in)
        return;
    if (what & BEV_EVENT_EOF)
        s->ended_in = true;
    else
        s->failed = true;
    bufferevent_trigger_event(s->self, what, BEV_TRIG_DEFER_CALLBACKS);
}

/* --- a stream's bufferevent ----------------------------------------------------------------- */

static enum bufferevent_filter_result stream_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg)
{
    (void)dst, (void)limit, (void)mode, (void)arg;
    evbuffer_drain(src, evbuffer_get_length(src)); /* the pair end carries nothing */
    return BEV_NEED_MORE;
}

static enum bufferevent_filter_result stream_out(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *arg)
{
    (void)dst, (void)limit;
    struct h2s *s = arg;
    struct vrev__h2_conn *c = s->c;
    if (s->sid < 0 || !c->lower) { /* gone: nobody reads this */
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    }
    struct evbuffer_iovec vec;
    while (vrev__h2_buffered(c->h2, s->sid) < STREAM_MARK &&
           evbuffer_peek(src, -1, NULL, &vec, 1) == 1 && vec.iov_len > 0) {
        size_t n = vec.iov_len < SEND_PIECE ? vec.iov_len : SEND_PIECE;
        if (vrev__h2_send(c->h2, s->sid, vec.iov_base, n) < 0) {
            evbuffer_drain(src, evbuffer_get_length(src));
            break;
        }
        evbuffer_drain(src, n);
    }
    if (mode == BEV_FINISHED && evbuffer_get_length(src) == 0 && !s->ended_out) {
        s->ended_out = true; /* the owner's end of stream: END_STREAM */
        vrev__h2_end(c->h2, s->sid);
    }
    conn_flush(c);
    return evbuffer_get_length(src) ? BEV_NEED_MORE : BEV_OK;
}

/* The owner drained n bytes: the peer gets that much credit. */
static void stream_taken(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct h2s *s = arg;
    if (info->n_deleted == 0 || s->sid < 0 || !s->c->lower)
        return;
    vrev__h2_consumed(s->c->h2, s->sid, info->n_deleted);
    conn_flush(s->c);
}

/* The owner freed the stream's bufferevent. */
static void stream_free(void *arg)
{
    struct h2s *s = arg;
    struct vrev__h2_conn *c = s->c;
    if (s->taken)
        evbuffer_remove_cb_entry(bufferevent_get_input(s->self), s->taken);
    if (s->sid >= 0 && c->lower) {
        int32_t sid = s->sid;
        s->sid = -1;
        vrev__h2_reset(c->h2, sid); /* V2Ray's way to end a stream early */
        conn_flush(c);
    }
    VREV__LIST_REMOVE(c->streams, s);
    bufferevent_free(s->far);
    vrev__free(c->ctx, s);
    conn_maybe_free(c);
}

/* The stream's free carries out any close (a reset if still open); nothing below is its own. */
static bool stream_closing(struct vrev__layer *l, bool abort)
{
    (void)l, (void)abort;
    return true;
}

static const struct vrev__layer_ops stream_layer = {.name = "h2", .closing = stream_closing};

/* --- codec callbacks ------------------------------------------------------------------------ */

static struct h2s *find(struct vrev__h2_conn *c, int32_t sid)
{
    for (struct h2s *s = c->streams; s; s = s->next)
        if (s->sid == sid)
            return s;
    return NULL;
}

static int on_open(void *user, int32_t sid, const struct vrev__h2_request *req)
{
    struct vrev__h2_conn *c = user;
    struct bufferevent *pair[2];
    struct h2s *s = vrev__calloc(c->ctx, 1, sizeof(*s));
    if (!s)
        return VREV_ERR_NOMEM;
    if (bufferevent_pair_new(c->ctx->base, BEV_OPT_CLOSE_ON_FREE, pair) < 0) {
        vrev__free(c->ctx, s);
        return VREV_ERR_NOMEM;
    }
    s->layer.ops = &stream_layer;
    s->c = c;
    s->sid = sid;
    s->self =
        bufferevent_filter_new(pair[0], stream_in, stream_out,
                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, stream_free, s);
    if (!s->self) {
        bufferevent_free(pair[0]);
        bufferevent_free(pair[1]);
        vrev__free(c->ctx, s);
        return VREV_ERR_NOMEM;
    }
    s->far = pair[1];
    vrev__layer_mark(s->far, NULL, NULL, &s->layer);
    VREV__LIST_PUSH(c->streams, s);
    if (!(s->taken = evbuffer_add_cb(bufferevent_get_input(s->self), stream_taken, s))) {
        s->sid = -1; /* refused: the codec resets it */
        bufferevent_free(s->self);
        return VREV_ERR_NOMEM;
    }
    c->had_stream = true;
    c->cb(s->self, req, c->user); /* the owner's from now on */
    return 0;
}

static int on_data(void *user, int32_t sid, const uint8_t *p, size_t n)
{
    struct h2s *s = find(user, sid);
    if (!s)
        return 0; /* its owner has gone: the reset is on its way */
    if (evbuffer_add(bufferevent_get_input(s->self), p, n) < 0)
        return VREV_ERR_NOMEM;
    bufferevent_trigger(s->self, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    return 0;
}

static void on_end(void *user, int32_t sid)
{
    struct h2s *s = find(user, sid);
    if (s)
        stream_event(s, BEV_EVENT_EOF | BEV_EVENT_READING);
}

static void on_close(void *user, int32_t sid, int err)
{
    struct h2s *s = find(user, sid);
    if (!s)
        return;
    s->sid = -1;
    stream_event(s, err ? BEV_EVENT_ERROR | BEV_EVENT_READING : BEV_EVENT_EOF | BEV_EVENT_READING);
}

/* --- the connection ------------------------------------------------------------------------- */

static void conn_end(struct vrev__h2_conn *c, bool notify)
{
    if (!c->lower)
        return;
    if (notify && c->gone)
        c->gone(c, c->user);
    for (struct h2s *s = c->streams; s; s = s->next) {
        s->sid = -1;
        stream_event(s, BEV_EVENT_ERROR | BEV_EVENT_READING);
    }
    vrev__bev_close(c->lower, 0);
    c->lower = NULL;
    conn_maybe_free(c);
}

/* Streams whose output waits for credit: the peer may have given some. */
static void kick_streams(struct vrev__h2_conn *c)
{
    for (struct h2s *s = c->streams; s; s = s->next)
        if (s->sid >= 0 && evbuffer_get_length(bufferevent_get_output(s->self)) &&
            vrev__h2_buffered(c->h2, s->sid) < STREAM_MARK)
            bufferevent_flush(s->self, EV_WRITE, BEV_NORMAL);
}

static void lower_read(struct bufferevent *bev, void *arg)
{
    struct vrev__h2_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    int rc = 0;
    c->busy = true;
    while (rc == 0 && evbuffer_peek(in, -1, NULL, &vec, 1) == 1 && vec.iov_len > 0) {
        rc = vrev__h2_feed(c->h2, vec.iov_base, vec.iov_len);
        evbuffer_drain(in, vec.iov_len);
    }
    c->busy = false;
    conn_flush(c);
    if (rc < 0 || vrev__h2_done(c->h2)) { /* a connection error: its GOAWAY is queued */
        vrev__bev_shutdown_write(c->lower);
        conn_end(c, true);
        return;
    }
    kick_streams(c);
}

static void lower_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    kick_streams(arg);
}

static void lower_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    conn_end(arg, true);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__h2_conn *c = arg;
    if (!c->lower)
        return;
    vrev__h2_tick(c->h2);
    c->idle_for = c->streams ? 0 : c->idle_for + 1000;
    uint32_t bound = c->had_stream ? c->idle_later_ms : c->idle_ms;
    if (bound && c->idle_for >= bound)
        conn_end(c, true); /* may free c */
}

void vrev__h2_conn_close(struct vrev__h2_conn *c)
{
    conn_end(c, false);
}

struct vrev__h2_conn *vrev__h2_serve(vrev_ctx *ctx, struct bufferevent *lower,
                                     const struct vrev__carrier_opts *o, uint32_t idle_ms,
                                     uint32_t idle_later_ms, vrev__h2_stream_cb cb,
                                     vrev__h2_gone_cb gone, void *user, int *err)
{
    static const struct vrev__h2_callbacks cbs = {
        .on_open = on_open, .on_data = on_data, .on_end = on_end, .on_close = on_close};
    struct vrev__h2_opts ho = {
        .client = false, .path = o->path ? o->path : "/", .hosts = o->hosts, .n_hosts = o->n_hosts};
    struct vrev__h2_conn *c = vrev__calloc(ctx, 1, sizeof(*c));
    struct timeval sec = {1, 0};
    int rc = VREV_ERR_NOMEM;
    if (c) {
        c->ctx = ctx;
        c->cb = cb;
        c->gone = gone;
        c->user = user;
        c->idle_ms = idle_ms;
        c->idle_later_ms = idle_later_ms;
        c->tick = event_new(ctx->base, -1, EV_PERSIST, on_tick, c);
    }
    if (c && c->tick && event_add(c->tick, &sec) == 0)
        rc = vrev__h2_new(ctx, &c->h2, &ho, &cbs, c);
    if (rc < 0) {
        if (c && c->tick)
            event_free(c->tick);
        vrev__free(ctx, c);
        bufferevent_free(lower);
        *err = rc;
        return NULL;
    }
    c->lower = lower;
    bufferevent_setwatermark(lower, EV_WRITE, 0, LOWER_HIGH_WATER);
    vrev__layer_keep_open(lower); /* END_STREAM ends one stream; no-op without TLS */
    bufferevent_setcb(lower, lower_read, lower_write, lower_event, c);
    bufferevent_enable(lower, EV_READ | EV_WRITE);
    conn_flush(c); /* our SETTINGS */
    *err = 0;
    return c;
}
