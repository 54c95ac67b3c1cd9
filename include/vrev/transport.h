/* Transports: the layers a connection's bytes pass through between the socket and a proxy
 * protocol.
 *
 * A proxied connection is a stack of libevent bufferevents: tcp at the bottom, then the
 * stream security layer (the built-in "tls", or one registered here), then the proxy protocol
 * (vmess, vless, ...), then Mux.Cool for a reverse tunnel. An embedder can add a layer of its
 * own — an obfuscation layer, a framing its network needs — by registering a
 * vrev_transport_ops on a vrev_ctx and naming it in a V2Ray JSON config:
 *
 *     "streamSettings": { "security": "my-layer" }
 *
 * on an inbound (the layer wraps every accepted connection, role VREV_TRANSPORT_SERVER) or an
 * outbound (every connection it dials, role VREV_TRANSPORT_CLIENT; reverse bridges dial the
 * portal through their outbound, so the tunnel runs over the layer too). Both ends of a link
 * must use the same layer. Names are matched exactly; "tls", "none" and "" are reserved.
 *
 * Register layers before loading the configs that name them (a config naming an unknown
 * layer is refused at load: "security: unknown stream security ..."). Layers stay registered
 * until vrev_ctx_free(), which calls free_state.
 *
 * Such a layer is a layer like libvrev's own (TLS, the ws and h2 carriers, the VMess stream):
 * libvrev asks a stack of layers what lies below each one to reach the socket at the bottom
 * (socket options; a reset rather than a clean end when a connection is aborted), and asks
 * an embedder's layer through libevent: bufferevent_get_underlying() on the bufferevent wrap
 * returns must give `lower`, as libevent's filters and bufferevent_openssl do. An end of
 * stream from above reaches the layer as bufferevent_flush(bev, EV_WRITE, BEV_FINISHED), which
 * a filter passes on below. A layer that hides `lower` (a bufferevent pair, say) still works,
 * but aborts then end its connections cleanly and socket options do not reach them.
 *
 * Thread safety: vrev_ctx_add_transport() belongs to the thread that runs the context's
 * event_base, as every call on a context does (or to any one thread before the loop runs).
 * A layer's wrap runs on that thread, inside the loop, and so do the callbacks of the
 * bufferevents it makes; free_state runs on the thread that calls vrev_ctx_free(). libvrev
 * never calls a layer from two threads at once; a layer shared by several contexts (the same
 * `state` registered on each) is called from each context's thread and must lock what they
 * share.
 */
#ifndef VREV_TRANSPORT_H
#define VREV_TRANSPORT_H

#include "ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bufferevent;

/** ABI version of struct vrev_transport_ops; set .abi to this value. */
#define VREV_TRANSPORT_OPS_ABI 1

/** Which end of a link a layer is put on. */
enum vrev_transport_role {
    VREV_TRANSPORT_CLIENT = 0, /* the connection was dialed (an outbound) */
    VREV_TRANSPORT_SERVER = 1  /* the connection was accepted (an inbound) */
};

/** Longest layer name, in bytes. */
#define VREV_TRANSPORT_NAME_MAX 31

/** A layer. The struct is copied by vrev_ctx_add_transport(); it need not outlive the call. */
typedef struct vrev_transport_ops {
    unsigned abi;     /**< VREV_TRANSPORT_OPS_ABI */
    const char *name; /**< as written in streamSettings.security (copied) */
    /** Put the layer on `lower`, a connected bufferevent with no callbacks set, and return
     *  the bufferevent the protocol above will use (typically bufferevent_filter_new(lower,
     *  ..., BEV_OPT_CLOSE_ON_FREE, ...) or an SSL bufferevent). The returned bufferevent owns
     *  `lower`: freeing it must free `lower`. libvrev sets its callbacks and watermarks.
     *  `peer_name` is the host name dialed (client role, when the target was a name), else
     *  NULL. On failure return NULL, free `lower` and set *err to a VREV_ERR_* code.
     *  Called from inside the context's event loop. */
    struct bufferevent *(*wrap)(void *state, struct bufferevent *lower, int role,
                                const char *peer_name, int *err);
    /** Optional: called once with `state` by vrev_ctx_free(). */
    void (*free_state)(void *state);
} vrev_transport_ops;

/** Register a layer under ops->name; `state` is passed to its functions.
 *  Returns 0, VREV_ERR_INVAL (ctx or ops NULL, unknown abi, no wrap, a name that is empty,
 *  longer than VREV_TRANSPORT_NAME_MAX, reserved or already registered) or VREV_ERR_NOMEM.
 *  On failure nothing is registered and free_state is not called. */
VREV_API int vrev_ctx_add_transport(vrev_ctx *ctx, const vrev_transport_ops *ops, void *state);

#ifdef __cplusplus
}
#endif
#endif
