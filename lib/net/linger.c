/* Lingering close: a connection whose owner is done with it, left to finish alone.
 *
 * The owner has closed, but the stack may still hold bytes for the peer, and closing a socket
 * with unread input makes the kernel send an RST that can destroy the data still queued. So
 * the bufferevent is left to finish alone: write the rest, end the write direction, read and
 * discard until the peer ends, then close. A stack with no socket at the bottom (a pair: a
 * mux session's end) has no kernel to reset it: it closes as soon as its output is out and
 * its end sent. Bounded by an absolute time (`ms` from the close) and LINGER_DISCARD bytes
 * discarded, then reset. The bound does not move with traffic: an idle timeout that every
 * byte restarted let a peer trickling one byte every 5 s keep a socket for days (issue M7).
 * The lingering connections belong to the context, which closes those left when it goes
 * (vrev_ctx_close_lingering), before its event_base is freed.
 *
 * Users: the TLS layer's socket once the user has freed the layer (tls.c), a vrev_stream
 * closed gracefully (stream.c). */
#include "core/list.h"
#include "core/timeval.h"
#include "net.h"

#define LINGER_DISCARD (64 * 1024)

struct vrev__lingering {
    vrev_ctx *ctx;
    struct vrev__lingering *prev, *next; /* ctx->lingering */
    struct bufferevent *bev;
    struct event *until;
    size_t discarded;
    bool no_socket; /* nothing below to reset: closed once all is out */
};

static void linger_end(struct vrev__lingering *l, bool abort)
{
    struct bufferevent *bev = l->bev;
    VREV__LIST_REMOVE(l->ctx->lingering, l);
    event_free(l->until);
    vrev__free(l->ctx, l);
    vrev__bev_close(bev, abort);
}

/* The context goes: every socket still lingering is closed, reset if bytes are left unsent
 * (they can no longer go out). */
static void close_lingering(vrev_ctx *ctx)
{
    while (ctx->lingering)
        linger_end(ctx->lingering,
                   evbuffer_get_length(bufferevent_get_output(ctx->lingering->bev)) > 0);
}

static void linger_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    linger_end(arg, true);
}

static void linger_write(struct bufferevent *bev, void *arg)
{
    struct vrev__lingering *l = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)))
        return;
    if (!(bufferevent_get_enabled(bev) & EV_READ) || l->no_socket) { /* the peer has ended */
        /* all out: closed, never reset, even if armed (vrev__bev_arm_abort) */
        linger_end(l, false);
        return;
    }
    vrev__bev_shutdown_write(bev);
    bufferevent_disable(bev, EV_WRITE);
}

static void linger_read(struct bufferevent *bev, void *arg)
{
    struct vrev__lingering *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    l->discarded += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (l->discarded > LINGER_DISCARD)
        linger_end(l, true);
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
    bool pending = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
    /* at the peer's end with bytes still to send: linger_write closes once they are out */
    if ((what & BEV_EVENT_EOF) && !(what & (BEV_EVENT_WRITING | BEV_EVENT_ERROR)) && pending)
        return;
    linger_end(arg, pending); /* a reset only if bytes would be lost silently */
}

void vrev__bev_linger(vrev_ctx *ctx, struct bufferevent *bev, uint32_t ms, bool peer_ended)
{
    bool pending = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
    bool no_socket = vrev__bev_tcp_fd(bev) < 0;
    if (ctx->no_linger) /* the context is going (vrev_ctx_close_lingering) */
        ms = 0;
    if (!pending && (peer_ended || no_socket)) { /* nothing left to finish */
        vrev__bev_close(bev, false);
        return;
    }
    struct vrev__lingering *l = ms ? vrev__calloc(ctx, 1, sizeof(*l)) : NULL;
    if (l && !(l->until = evtimer_new(bufferevent_get_base(bev), linger_expired, l))) {
        vrev__free(ctx, l);
        l = NULL;
    }
    if (!l) { /* no time (a handshake deadline) or no memory: closed at once */
        vrev__bev_close(bev, pending);
        return;
    }
    l->ctx = ctx;
    l->bev = bev;
    l->no_socket = no_socket;
    VREV__LIST_PUSH(ctx->lingering, l);
    ctx->close_lingering = close_lingering;
    struct timeval tv = vrev__ms_to_tv(ms);
    evtimer_add(l->until, &tv);
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
    bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
    bufferevent_setcb(bev, linger_read, linger_write, linger_event, l);
    if (peer_ended)
        bufferevent_disable(bev, EV_READ);
    else
        bufferevent_enable(bev, EV_READ);
    if (pending) {
        bufferevent_enable(bev, EV_WRITE);
    } else {
        vrev__bev_shutdown_write(bev);
        bufferevent_disable(bev, EV_WRITE);
    }
}
