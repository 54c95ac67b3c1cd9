/* Relay: join two bufferevents, moving evbuffer chains (no copies), with bounded buffering,
 * half-close passed through, and V2Ray's idle timeouts (connIdle, then uplinkOnly /
 * downlinkOnly once one direction has ended).
 *
 * Side 0 is the client side (inbound), side 1 the target side (outbound). Direction i moves
 * bytes from side i to side !i: direction 0 is the uplink, direction 1 the downlink. */
#include <stdbool.h>
#include <sys/time.h>

#include "core/budget.h"
#include "core/timeval.h"
#include "net.h"

struct side {
    struct bufferevent *bev;
    bool eof;    /* no more input from this side */
    bool shut;   /* the other side's end of stream has been passed to this side */
    bool paused; /* reading stopped: the other side's output is full, or holds bytes
                    while the context's buffers are (bufferedTotal) */
    struct evbuffer_cb_entry *counted; /* counts this side's output in ctx->buffered */
    bool closes_clean; /* a socket whose write side we ended: a plain free closes it cleanly */
};

struct vrev__relay {
    vrev_ctx *ctx;
    struct side s[2];
    struct vrev__policy policy;
    vrev__relay_done_cb done;
    void *user;
    struct event *timer;
    struct timeval last; /* last byte moved */
    uint64_t bytes[2];
    uint64_t conn_id; /* for its lines */
    bool flushing;    /* both ways ended: waiting for the stacks to write what they hold */
    struct timeval flush_until;
};

#define FLUSH_POLL_MS 20
#define FLUSH_MAX_S 5

/* A side's output, counted in the context's buffer budget (lib/core/budget.h). */
static void count_out(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    vrev_ctx *ctx = arg;
    vrev__budget_add(ctx, info->n_added);
    vrev__budget_sub(ctx, info->n_deleted);
}

static void uncount(vrev_ctx *ctx, struct side *s)
{
    if (!s->counted)
        return;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    evbuffer_remove_cb_entry(out, s->counted);
    vrev__budget_sub(ctx, evbuffer_get_length(out));
    s->counted = NULL;
}

static void close_side(struct side *s, int abort)
{
    if (!abort && s->closes_clean)
        bufferevent_free(s->bev); /* disarmed already: spare the system call */
    else
        vrev__bev_close(s->bev, abort);
}

/* Free the relay; each side is reset (abort) or closed as a socket is. */
static void release(struct vrev__relay *r, int abort0, int abort1)
{
    uncount(r->ctx, &r->s[0]);
    uncount(r->ctx, &r->s[1]);
    close_side(&r->s[0], abort0);
    close_side(&r->s[1], abort1);
    event_free(r->timer);
    vrev__free(r->ctx, r);
}

/* End the relay and tell its owner. */
static void finish_sides(struct vrev__relay *r, int result, int abort0, int abort1)
{
    vrev__relay_done_cb done = r->done;
    void *user = r->user;
    uint64_t up = r->bytes[0], down = r->bytes[1];
    release(r, abort0, abort1);
    if (done)
        done(result, up, down, user);
}

static void finish(struct vrev__relay *r, int result, int abort)
{
    finish_sides(r, result, abort, abort);
}

static int which(const struct vrev__relay *r, const struct bufferevent *bev)
{
    return r->s[0].bev == bev ? 0 : 1;
}

/* A direction has ended once its end of stream has been passed on, that is once everything
 * before it has left our buffers: bytes still waiting for a reader who cannot take them yet (a
 * tunnel stalled behind another session) are not an idle connection. */
static uint32_t current_timeout(const struct vrev__relay *r)
{
    if (r->s[1].shut) /* uplink ended: only the downlink may continue */
        return r->policy.downlink_only_ms;
    if (r->s[0].shut)
        return r->policy.uplink_only_ms;
    return r->policy.conn_idle_ms;
}

static void arm(struct vrev__relay *r)
{
    uint32_t ms = current_timeout(r);
    struct timeval now, tv = vrev__ms_to_tv(ms), deadline, left;
    event_base_gettimeofday_cached(r->ctx->base, &now);
    timeradd(&r->last, &tv, &deadline);
    if (timercmp(&deadline, &now, <))
        timerclear(&left);
    else
        timersub(&deadline, &now, &left);
    evtimer_add(r->timer, &left);
}

/* Both ways have ended: free once everything queued is out (bounded wait). */
static void finish_when_flushed(struct vrev__relay *r)
{
    struct timeval now;
    event_base_gettimeofday_cached(r->ctx->base, &now);
    if (!r->flushing) {
        struct timeval max = {.tv_sec = FLUSH_MAX_S};
        timeradd(&now, &max, &r->flush_until);
        r->flushing = true;
    }
    if (vrev__layer_queued(r->s[0].bev) + vrev__layer_queued(r->s[1].bev) == 0) {
        finish(r, 0, 0);
        return;
    }
    if (!timercmp(&now, &r->flush_until, <)) {
        finish(r, VREV_ERR_TIMEOUT, 1);
        return;
    }
    struct timeval tv = vrev__ms_to_tv(FLUSH_POLL_MS);
    evtimer_add(r->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__relay *r = arg;
    if (r->flushing) {
        finish_when_flushed(r);
        return;
    }
    uint32_t ms = current_timeout(r);
    struct timeval now, tv = vrev__ms_to_tv(ms), deadline;
    event_base_gettimeofday_cached(r->ctx->base, &now);
    timeradd(&r->last, &tv, &deadline);
    if (!timercmp(&now, &deadline, <)) {
        /* A side that has been given its whole stream and the end of it is closed, not reset:
         * a reset would throw away what its socket still holds for the peer. The side whose
         * stream is cut is reset. */
        finish_sides(r, VREV_ERR_TIMEOUT, !r->s[0].shut, !r->s[1].shut);
        return;
    }
    arm(r);
}

/* Pass the end of stream of side i to the other side once the other side's output is empty;
 * finish when both ways have ended. Returns true if the relay is gone. */
static bool pass_eof(struct vrev__relay *r, int i)
{
    struct side *to = &r->s[!i];
    if (!r->s[i].eof || to->shut)
        return false;
    if (evbuffer_get_length(bufferevent_get_output(to->bev)) > 0)
        return false; /* the write callback comes back here once it has drained */
    to->closes_clean = vrev__bev_shutdown_write(to->bev);
    to->shut = true;
    if (r->s[0].shut && r->s[1].shut) {
        finish_when_flushed(r); /* the relay may be gone when this returns */
        return true;
    }
    /* the idle limit for the remaining direction is shorter, and counts from now: writing
     * out what was queued is not idleness */
    event_base_gettimeofday_cached(r->ctx->base, &r->last);
    arm(r);
    return false;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct vrev__relay *r = arg;
    int i = which(r, bev);
    struct bufferevent *to = r->s[!i].bev;
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(to);
    size_t n = evbuffer_get_length(in);
    if (n == 0)
        return;
    evbuffer_add_buffer(out, in);
    r->bytes[i] += n;
    event_base_gettimeofday_cached(r->ctx->base, &r->last);
    if (evbuffer_get_length(out) >= r->policy.buffer_bytes) {
        /* Backpressure: stop reading this side until the other has written half of it. */
        bufferevent_disable(bev, EV_READ);
        r->s[i].paused = true;
        bufferevent_setwatermark(to, EV_WRITE, r->policy.buffer_bytes / 2, 0);
    } else if (vrev__budget_full(r->ctx) && evbuffer_get_length(out) > 0) {
        /* The context's buffers are full: until the other side has written all it holds (a
         * side that holds nothing, a pair that handed it on at once, reads on). */
        bufferevent_disable(bev, EV_READ);
        r->s[i].paused = true;
        bufferevent_setwatermark(to, EV_WRITE, 0, 0);
        vrev__budget_log_stop(r->ctx, "relay");
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct vrev__relay *r = arg;
    int j = which(r, bev); /* bytes of direction !j were written to side j */
    struct side *from = &r->s[!j];
    if (from->paused) {
        from->paused = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(from->bev, EV_READ);
    }
    pass_eof(r, !j);
}

void vrev__log_layer_failure(vrev_ctx *ctx, uint64_t conn_id, struct bufferevent *bev)
{
    char why[256];
    const char *layer = vrev__layer_failure(bev, why, sizeof(why));
    if (layer)
        vrev__log(ctx, VREV_LOG_WARN, layer, VREV__CONN_FMT "connection failed: %s",
                  VREV__CONN_ARG(conn_id), why);
}

void vrev__relay_set_conn_id(struct vrev__relay *r, uint64_t conn_id)
{
    r->conn_id = conn_id;
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    struct vrev__relay *r = arg;
    int i = which(r, bev);
    if (events & BEV_EVENT_ERROR || (events & BEV_EVENT_EOF && events & BEV_EVENT_WRITING)) {
        vrev__log_layer_failure(r->ctx, r->conn_id, bev);
        finish(r, VREV_ERR_IO, 1); /* truncation must never look like a clean end */
        return;
    }
    if (events & BEV_EVENT_TIMEOUT) {
        /* A layer timed out and stopped reading or writing: ignored, the relay would hang. */
        finish(r, VREV_ERR_TIMEOUT, 1);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        on_read(bev, r); /* whatever arrived with the end of stream */
        r->s[i].eof = true;
        pass_eof(r, i);
    }
}

int vrev__relay_start(vrev_ctx *ctx, struct bufferevent *a, struct bufferevent *b,
                      const struct vrev__policy *policy, vrev__relay_done_cb done, void *user,
                      struct vrev__relay **out)
{
    struct vrev__relay *r = vrev__calloc(ctx, 1, sizeof(*r));
    if (r)
        r->timer = evtimer_new(ctx->base, on_timer, r);
    if (!r || !r->timer) {
        if (r)
            vrev__free(ctx, r);
        bufferevent_free(a);
        bufferevent_free(b);
        return VREV_ERR_NOMEM;
    }
    r->ctx = ctx;
    r->s[0].bev = a;
    r->s[1].bev = b;
    r->policy = *policy;
    if (r->policy.buffer_bytes < 16384)
        r->policy.buffer_bytes = 16384;
    r->done = done;
    r->user = user;
    event_base_gettimeofday_cached(ctx->base, &r->last);
    for (int i = 0; i < 2; i++) {
        struct evbuffer *o = bufferevent_get_output(r->s[i].bev);
        if ((r->s[i].counted = evbuffer_add_cb(o, count_out, ctx)) != NULL)
            vrev__budget_add(ctx, evbuffer_get_length(o));
        bufferevent_setcb(r->s[i].bev, on_read, on_write, on_event, r);
        bufferevent_setwatermark(r->s[i].bev, EV_WRITE, 0, 0);
        vrev__bev_enable(r->s[i].bev, EV_READ | EV_WRITE);
    }
    arm(r);
    if (out)
        *out = r;
    for (int i = 0; i < 2; i++) /* bytes that came before the relay (after a proxy header) */
        vrev__bev_kick_input(r->s[i].bev);
    return 0;
}

void vrev__relay_abort(struct vrev__relay *r, int abort)
{
    if (r)
        release(r, abort, abort);
}
