/* vrev_stream (vrev/stream.h): a bufferevent behind an opaque handle, for applications that
 * make no libevent call (an FFI binding, a bridge's in-process handler).
 *
 * The stream sets the bufferevent's callbacks itself and turns them into the public events.
 * Counters come from evbuffer callbacks on the input (bytes added) and the output (bytes
 * removed: handed on toward the peer), so they see what the interop accessor adds as well.
 * What the user must be told later (on a new callback, or on resuming with bytes waiting)
 * goes through `later`, an event activated by hand: never a callback from inside the call
 * that caused it.
 *
 * Closing from inside the stream's own callback is safe: vrev_stream_close() gives the
 * bufferevent away at once (freed, or left to linger: linger.c) and removes every callback,
 * but the struct stays until the callbacks running for it have returned (`depth`). */
#include <limits.h>
#include <string.h>

#include "net.h"
#include "vrev/stream.h"

#define STREAM_LINGER_MS 10000

struct vrev_stream {
    vrev_ctx *ctx;
    struct bufferevent *bev;
    vrev_stream_cb cb;
    void *user;
    struct event *later; /* tells what the user was not told yet (on_later) */
    struct evbuffer_cb_entry *in_cb, *out_cb;
    uint64_t bytes_in, bytes_out;
    uint64_t told_in;   /* bytes_in when READABLE was last given */
    int err;            /* the failure, once failed */
    unsigned depth;     /* callbacks running for this stream */
    bool closed;        /* vrev_stream_close() was called: free when depth is 0 */
    bool paused;        /* vrev_stream_pause */
    bool eof, end_told; /* the peer's end; VREV_STREAM_END given */
    bool failed, error_told;
    bool shut, shut_pending; /* vrev_stream_shutdown: done / once the output is out */
    bool drain_pending;      /* bytes went into the output since the last DRAINED */
    bool readable_pending;   /* a READABLE to give from `later` */
};

/* Run the user's callback. Returns true if the stream was closed by it (and maybe freed):
 * the caller must not touch it any more. */
static bool tell(vrev_stream *s, int event, int err)
{
    if (!s->cb)
        return false;
    s->depth++;
    s->cb(s, event, err, s->user);
    s->depth--;
    if (!s->closed)
        return false;
    if (s->depth == 0)
        vrev__free(s->ctx, s);
    return true;
}

/* The end or the failure, if the user has not been told. Returns true if the stream was
 * closed meanwhile. */
static bool tell_state(vrev_stream *s)
{
    if (!s->cb)
        return false;
    if (s->eof && !s->end_told && !s->failed) {
        s->end_told = true;
        if (tell(s, VREV_STREAM_END, 0))
            return true;
    }
    if (s->failed && !s->error_told) {
        s->error_told = true;
        return tell(s, VREV_STREAM_ERROR, s->err);
    }
    return false;
}

/* READABLE, for bytes waiting (`fresh`: only if some came since it was last given: libevent
 * may run the read callback twice for one arrival). Returns true if the stream was closed. */
static bool tell_readable(vrev_stream *s, bool fresh)
{
    if (s->paused || vrev_stream_readable(s) == 0 || (fresh && s->bytes_in == s->told_in))
        return false;
    s->readable_pending = false;
    s->told_in = s->bytes_in;
    return tell(s, VREV_STREAM_READABLE, 0);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    vrev_stream *s = arg;
    if (s->readable_pending && tell_readable(s, false))
        return;
    s->readable_pending = false;
    tell_state(s);
}

static void schedule(vrev_stream *s)
{
    event_active(s->later, EV_READ, 0);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    tell_readable(arg, true);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    vrev_stream *s = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (s->shut_pending && !s->failed) {
        s->shut_pending = false;
        vrev__bev_shutdown_write(bev);
    }
    if (s->drain_pending) {
        s->drain_pending = false;
        tell(s, VREV_STREAM_DRAINED, 0);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    vrev_stream *s = arg;
    if (what & BEV_EVENT_ERROR || (what & BEV_EVENT_EOF && what & BEV_EVENT_WRITING) ||
        what & BEV_EVENT_TIMEOUT) {
        if (s->failed)
            return;
        s->failed = true;
        s->err = what & BEV_EVENT_TIMEOUT ? VREV_ERR_TIMEOUT : VREV_ERR_IO;
        bufferevent_disable(bev, EV_READ | EV_WRITE);
    } else if (what & BEV_EVENT_EOF) {
        if (s->eof)
            return;
        s->eof = true;
        if (tell_readable(s, true))
            return; /* bytes that came with the end, before it */
    }
    tell_state(s);
}

static void count_in(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    ((vrev_stream *)arg)->bytes_in += info->n_added;
}

static void count_out(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    vrev_stream *s = arg;
    s->bytes_out += info->n_deleted;
    if (info->n_added)
        s->drain_pending = true;
}

int vrev__stream_new(vrev_ctx *ctx, struct bufferevent *bev, struct vrev_stream **out)
{
    vrev_stream *s = vrev__calloc(ctx, 1, sizeof(*s));
    if (s)
        s->later = event_new(bufferevent_get_base(bev), -1, 0, on_later, s);
    if (s && s->later) {
        s->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), count_in, s);
        s->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), count_out, s);
    }
    if (!s || !s->later || !s->in_cb || !s->out_cb) {
        if (s && s->in_cb)
            evbuffer_remove_cb_entry(bufferevent_get_input(bev), s->in_cb);
        if (s && s->out_cb)
            evbuffer_remove_cb_entry(bufferevent_get_output(bev), s->out_cb);
        if (s && s->later)
            event_free(s->later);
        vrev__free(ctx, s);
        vrev__bev_close(bev, 1);
        return VREV_ERR_NOMEM;
    }
    s->ctx = ctx;
    s->bev = bev;
    bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
    bufferevent_setcb(bev, on_read, on_write, on_event, s);
    vrev__bev_enable(bev, EV_READ | EV_WRITE);
    *out = s;
    return 0;
}

int vrev_stream_set_cb(vrev_stream *s, vrev_stream_cb cb, void *user)
{
    if (!s)
        return VREV_ERR_INVAL;
    if (s->closed)
        return VREV_ERR_STATE;
    s->cb = cb;
    s->user = user;
    if (cb && vrev_stream_readable(s) > 0)
        s->readable_pending = true;
    if (cb && (s->readable_pending || (s->eof && !s->end_told) || (s->failed && !s->error_told)))
        schedule(s);
    return 0;
}

int vrev_stream_read(vrev_stream *s, void *buf, size_t cap)
{
    if (!s || (!buf && cap > 0))
        return VREV_ERR_INVAL;
    if (s->closed)
        return VREV_ERR_STATE;
    if (cap > INT_MAX)
        cap = INT_MAX;
    int n = evbuffer_remove(bufferevent_get_input(s->bev), buf, cap);
    return n < 0 ? 0 : n;
}

size_t vrev_stream_readable(const vrev_stream *s)
{
    return s && !s->closed ? evbuffer_get_length(bufferevent_get_input(s->bev)) : 0;
}

int vrev_stream_ended(const vrev_stream *s)
{
    return s && (s->eof || s->failed) && vrev_stream_readable(s) == 0;
}

int vrev_stream_write(vrev_stream *s, const void *data, size_t len)
{
    if (!s || (!data && len > 0))
        return VREV_ERR_INVAL;
    if (s->shut || s->failed || s->closed)
        return VREV_ERR_STATE;
    if (len == 0)
        return 0;
    return bufferevent_write(s->bev, data, len) == 0 ? 0 : VREV_ERR_NOMEM;
}

size_t vrev_stream_buffered(const vrev_stream *s)
{
    return s && !s->closed ? vrev__layer_queued(s->bev) : 0;
}

int vrev_stream_shutdown(vrev_stream *s)
{
    if (!s)
        return VREV_ERR_INVAL;
    if (s->shut || s->failed || s->closed)
        return VREV_ERR_STATE;
    s->shut = true;
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
        s->shut_pending = true; /* on_write ends it once the output is out */
    else
        vrev__bev_shutdown_write(s->bev);
    return 0;
}

int vrev_stream_pause(vrev_stream *s, int paused)
{
    if (!s)
        return VREV_ERR_INVAL;
    if (s->closed)
        return VREV_ERR_STATE;
    if (paused && !s->paused) {
        s->paused = true;
        bufferevent_disable(s->bev, EV_READ);
    } else if (!paused && s->paused) {
        s->paused = false;
        if (!s->failed)
            bufferevent_enable(s->bev, EV_READ);
        if (vrev_stream_readable(s) > 0) {
            s->readable_pending = true;
            schedule(s);
        }
    }
    return 0;
}

uint64_t vrev_stream_bytes_in(const vrev_stream *s)
{
    return s ? s->bytes_in : 0;
}

uint64_t vrev_stream_bytes_out(const vrev_stream *s)
{
    return s ? s->bytes_out : 0;
}

void vrev_stream_close(vrev_stream *s, int abort)
{
    if (!s || s->closed)
        return;
    struct bufferevent *bev = s->bev;
    s->closed = true;
    evbuffer_remove_cb_entry(bufferevent_get_input(bev), s->in_cb);
    evbuffer_remove_cb_entry(bufferevent_get_output(bev), s->out_cb);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    event_free(s->later);
    s->bev = NULL;
    if (abort || s->failed)
        vrev__bev_close(bev, 1);
    else
        vrev__bev_linger(s->ctx, bev, STREAM_LINGER_MS, s->eof);
    if (s->depth == 0)
        vrev__free(s->ctx, s);
}

struct bufferevent *vrev_stream_bufferevent(vrev_stream *s)
{
    return s ? s->bev : NULL;
}
