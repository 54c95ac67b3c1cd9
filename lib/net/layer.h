/* Layers: how lib/net asks a stack of bufferevents about itself.
 *
 * DESIGN. A proxied connection is a stack of layers, each a bufferevent over the one below it,
 * in the style of libevent's filters:
 *
 *   mux        Mux.Cool sessions over one stream (lib/reverse/muxconn.c; a reverse tunnel)
 *   protocol   the proxy protocol's layer: the VMess stream (vmess_stream.c); VLESS and SOCKS
 *              read and write the layer below as it is
 *   carrier    ws (ws_layer.c) or h2 (h2_layer.c: client; h2_server.c: one layer per stream);
 *              nothing for V2Ray's "tcp"
 *   security   TLS (tls.c), or an embedder's transport (vrev/transport.h) in its place
 *   tcp        the socket (tcp.c)
 *
 * An embedder's transport is a layer like the others. No layer names another, and the code
 * that walks a stack (closing, socket options, the relay) names none of them: it asks through
 * this interface. A layer answers one of two ways:
 * - a plain filter (VMess, ws, the h2 client, an embedder's filter or bufferevent_openssl):
 *   libevent answers for it. bufferevent_get_underlying() is the layer below; an end of stream
 *   (bufferevent_flush(bev, EV_WRITE, BEV_FINISHED)) reaches the filter, then libevent passes
 *   it below; an abort, a graceful close and the socket's fd are the business of the layers
 *   below. vrev__layer_filter_new() makes one.
 * - a hidden layer, whose bufferevent libevent cannot see through (TLS: a filter over one end
 *   of a pair whose other end feeds the engine, so that a handshake never waits for the user;
 *   an h2 server stream: one of many streams on one shared connection). It answers through a
 *   struct vrev__layer_ops, found by the mark on the pair under its filter
 *   (vrev__layer_mark()).
 *
 * Thread safety: as the bufferevents asked about (the thread running their event_base). */
#ifndef VREV_NET_LAYER_H
#define VREV_NET_LAYER_H

#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct vrev__layer;

/* A hidden layer's answers. Every member but `name` may be NULL (what that means: below). */
struct vrev__layer_ops {
    const char *name; /* the log component of its failures: "tls", "h2" */
    /* The bufferevent the layer runs over and owns (TLS: the socket), or NULL (NULL function
     * too): nothing below is its own (an h2 stream: its connection is shared). */
    struct bufferevent *(*lower)(struct vrev__layer *l);
    /* The coming free is an abort (true: the peer must see an error) or a graceful close.
     * True when the layer carries it out itself, so that the layers below are not told (TLS:
     * close_notify and the socket's end, or a reset without close_notify). NULL: told below. */
    bool (*closing)(struct vrev__layer *l, bool abort);
    /* Ignore the user's end of stream until the free (vrev__layer_keep_open). */
    void (*keep_open)(struct vrev__layer *l);
    /* The ALPN protocol negotiated ("" for none yet or none at all); NULL: not a layer that
     * negotiates ALPN. */
    const char *(*alpn)(struct vrev__layer *l);
    /* Why the layer failed, "" if it has not. */
    const char *(*failure)(struct vrev__layer *l);
    /* Bound the lingering of the coming free (TLS: vrev__layer_set_linger). */
    void (*set_linger)(struct vrev__layer *l, uint32_t ms);
    /* An event on the marked pair end (vrev__layer_mark). */
    void (*event)(struct vrev__layer *l, short what);
};

/* The first member of a hidden layer's state. */
struct vrev__layer {
    const struct vrev__layer_ops *ops;
};

/* A bufferevent of the socket at the bottom of a stack (not a filter, whose fd is its
 * socket's, nor a pair end). */
static inline bool vrev__bev_is_socket(struct bufferevent *bev)
{
    return !bufferevent_get_underlying(bev) && bufferevent_getfd(bev) >= 0;
}

/* --- making layers -------------------------------------------------------------------------- */

/* A plain filter layer over `lower` (owned by it from now on: freed with it, or at once on
 * failure, as `state` is with free_state, which may be NULL). `in` and `out` as for
 * bufferevent_filter_new (NULL: bytes pass as they are). Deferred callbacks. NULL on failure
 * (no memory). */
struct bufferevent *vrev__layer_filter_new(struct bufferevent *lower, bufferevent_filter_cb in,
                                           bufferevent_filter_cb out,
                                           void (*free_state)(void *state), void *state);

/* Mark `far`, the pair end opposite the one a hidden layer's filter sits on: its read and
 * write callbacks are `read` and `write` (may be NULL) with argument `l`, its event callback
 * passes events to l->ops->event. From now on the filter over the other end is `l`. */
void vrev__layer_mark(struct bufferevent *far, bufferevent_data_cb read, bufferevent_data_cb write,
                      struct vrev__layer *l);

/* The hidden layer whose bufferevent is `bev`, or NULL (a plain filter, a socket, a pair). */
struct vrev__layer *vrev__layer_of(struct bufferevent *bev);

/* Put an embedder's transport `t` (vrev/transport.h) on `lower`, which it owns from here on,
 * for `role` (VREV_TRANSPORT_*). Returns the new top, or NULL with *err set (logged, naming
 * the layer). A layer that hides `lower` from bufferevent_get_underlying() works, but the
 * socket below it is out of reach (no socket options, an abort is a plain close): logged. */
struct bufferevent *vrev__transport_wrap(vrev_ctx *ctx, const struct vrev__transport *t,
                                         struct bufferevent *lower, int role, const char *peer_name,
                                         uint64_t conn_id, int *err);

/* --- asking a stack ------------------------------------------------------------------------- */

/* The layer below `bev`: a hidden layer's own, else a filter's underlying; NULL at the
 * bottom (a socket, a pair end) and under an h2 stream. */
struct bufferevent *vrev__layer_lower(struct bufferevent *bev);

/* Tell the layers of `bev`'s stack how its coming free ends the connection: each layer from
 * the top until one carries it out itself. Returns the socket at the bottom when none did
 * (its caller sets how it closes: reset or not), else -1. */
evutil_socket_t vrev__layer_closing(struct bufferevent *bev, bool abort);

/* A layer with no half-close (ws; h2, whose ends are per stream) calls this on the layer it
 * was put on: libevent passes an end of stream from above down through every filter, and the
 * layer below must not end the connection for it (a TLS close_notify would end the whole
 * ws or h2 connection for the peer). Nothing for layers that end nothing on it (a socket, a
 * plain filter). */
void vrev__layer_keep_open(struct bufferevent *bev);

/* True if `bev` is a layer that negotiates ALPN (TLS), with *alpn the protocol it agreed
 * (NULL: none, or not yet); false otherwise (*alpn NULL). */
bool vrev__layer_alpn(struct bufferevent *bev, const char **alpn);

/* Why a layer of `bev`'s stack failed, from the top: the reason into buf (len > 0) and the
 * layer's name returned; NULL (buf "") when no layer says. */
const char *vrev__layer_failure(struct bufferevent *bev, char *buf, size_t len);

/* Bound the lingering close of the first layer of the stack that lingers (TLS: at most `ms`,
 * 0 none). False when no layer does. */
bool vrev__layer_set_linger(struct bufferevent *bev, uint32_t ms);

/* Bytes the stack still holds for its peer, which freeing it now would throw away: the output
 * of every layer down to the first hidden one, which finishes what it holds itself when
 * freed (TLS: its close), the bytes between its filter and its engine included. */
size_t vrev__layer_queued(struct bufferevent *bev);

#endif
