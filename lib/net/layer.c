/* Layers (layer.h): walking a stack of bufferevents through one interface. */
#include <stdio.h>

#include "layer.h"
#include "net.h"

/* Deeper than any stack we build (socket, security, carrier, protocol, and one spare): a
 * bound on every walk, should a stack ever loop. */
#define MAX_DEPTH 8

struct bufferevent *vrev__layer_filter_new(struct bufferevent *lower, bufferevent_filter_cb in,
                                           bufferevent_filter_cb out,
                                           void (*free_state)(void *state), void *state)
{
    struct bufferevent *bev = bufferevent_filter_new(
        lower, in, out, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, free_state, state);
    if (!bev) {
        if (free_state)
            free_state(state);
        bufferevent_free(lower);
    }
    return bev;
}

/* The mark: the event callback of a hidden layer's far pair end. */
static void marked_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct vrev__layer *l = arg;
    if (l->ops->event)
        l->ops->event(l, what);
}

void vrev__layer_mark(struct bufferevent *far, bufferevent_data_cb read, bufferevent_data_cb write,
                      struct vrev__layer *l)
{
    bufferevent_setcb(far, read, write, marked_event, l);
}

struct vrev__layer *vrev__layer_of(struct bufferevent *bev)
{
    struct bufferevent *near = bev ? bufferevent_get_underlying(bev) : NULL;
    struct bufferevent *far = near ? bufferevent_pair_get_partner(near) : NULL;
    bufferevent_event_cb event = NULL;
    void *arg = NULL;
    if (!far)
        return NULL;
    bufferevent_getcb(far, NULL, NULL, &event, &arg);
    return event == marked_event ? arg : NULL;
}

struct bufferevent *vrev__layer_lower(struct bufferevent *bev)
{
    struct vrev__layer *l = vrev__layer_of(bev);
    if (l)
        return l->ops->lower ? l->ops->lower(l) : NULL;
    return bufferevent_get_underlying(bev);
}

evutil_socket_t vrev__layer_closing(struct bufferevent *bev, bool abort)
{
    for (int depth = 0; bev && depth < MAX_DEPTH; depth++) {
        struct vrev__layer *l = vrev__layer_of(bev);
        if (l && l->ops->closing && l->ops->closing(l, abort))
            return -1;
        if (vrev__bev_is_socket(bev))
            return bufferevent_getfd(bev);
        bev = vrev__layer_lower(bev);
    }
    return -1;
}

evutil_socket_t vrev__bev_tcp_fd(struct bufferevent *bev)
{
    for (int depth = 0; bev && depth < MAX_DEPTH; depth++) {
        if (vrev__bev_is_socket(bev))
            return bufferevent_getfd(bev);
        bev = vrev__layer_lower(bev);
    }
    return -1;
}

void vrev__layer_keep_open(struct bufferevent *bev)
{
    struct vrev__layer *l = vrev__layer_of(bev);
    if (l && l->ops->keep_open)
        l->ops->keep_open(l);
}

bool vrev__layer_alpn(struct bufferevent *bev, const char **alpn)
{
    struct vrev__layer *l = vrev__layer_of(bev);
    *alpn = NULL;
    if (!l || !l->ops->alpn)
        return false;
    const char *a = l->ops->alpn(l);
    *alpn = a && a[0] ? a : NULL;
    return true;
}

const char *vrev__layer_failure(struct bufferevent *bev, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int depth = 0; bev && depth < MAX_DEPTH; depth++, bev = vrev__layer_lower(bev)) {
        struct vrev__layer *l = vrev__layer_of(bev);
        const char *why = l && l->ops->failure ? l->ops->failure(l) : NULL;
        if (why && why[0]) {
            snprintf(buf, len, "%s", why);
            return l->ops->name;
        }
    }
    return NULL;
}

bool vrev__layer_set_linger(struct bufferevent *bev, uint32_t ms)
{
    for (int depth = 0; bev && depth < MAX_DEPTH; depth++, bev = vrev__layer_lower(bev)) {
        struct vrev__layer *l = vrev__layer_of(bev);
        if (l && l->ops->set_linger) {
            l->ops->set_linger(l, ms);
            return true;
        }
    }
    return false;
}

size_t vrev__layer_queued(struct bufferevent *bev)
{
    size_t n = 0;
    for (int depth = 0; bev && depth < MAX_DEPTH; depth++) {
        n += evbuffer_get_length(bufferevent_get_output(bev));
        struct vrev__layer *l = vrev__layer_of(bev);
        if (l) { /* ... and what its pair end has not handed to the layer's engine yet */
            n += evbuffer_get_length(bufferevent_get_output(bufferevent_get_underlying(bev)));
            break;
        }
        bev = bufferevent_get_underlying(bev);
    }
    return n;
}

/* Not vrev__layer_lower: what a filter has not looked at yet waits in the bufferevent it
 * reads from, which for a hidden layer is the pair end under its filter. */
void vrev__bev_kick_input(struct bufferevent *bev)
{
    struct bufferevent *below = bufferevent_get_underlying(bev);
    if (below && evbuffer_get_length(bufferevent_get_input(below)))
        bufferevent_trigger(below, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    if (evbuffer_get_length(bufferevent_get_input(bev)))
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* --- an embedder's transport ---------------------------------------------------------------- */

struct bufferevent *vrev__transport_wrap(vrev_ctx *ctx, const struct vrev__transport *t,
                                         struct bufferevent *lower, int role, const char *peer_name,
                                         uint64_t conn_id, int *err)
{
    *err = 0;
    const char *side = role == VREV_TRANSPORT_SERVER ? "server" : "client";
    struct bufferevent *top = t->wrap(t->state, lower, role, peer_name, err);
    if (top && top != lower && vrev__layer_lower(top) != lower)
        vrev__log(ctx, VREV_LOG_DEBUG, "transport",
                  VREV__CONN_FMT "%s (%s side) hides the connection below it: no socket options "
                                 "or resets reach its socket",
                  VREV__CONN_ARG(conn_id), t->name, side);
    if (top)
        return top;
    if (*err >= 0) /* the layer forgot to say why */
        *err = VREV_ERR_IO;
    vrev__log(ctx, VREV_LOG_INFO, "transport",
              VREV__CONN_FMT "%s: could not set up the layer (%s side): %s",
              VREV__CONN_ARG(conn_id), t->name, side, vrev_strerror(*err));
    return NULL;
}
