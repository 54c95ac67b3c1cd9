/* Inbound internals shared by the protocol files of lib/proxy. */
#ifndef VREV_PROXY_INBOUND_H
#define VREV_PROXY_INBOUND_H

#include "codec/vmess.h"
#include "net/carrier_layer.h"
#include "net/sources.h"
#include "proxy.h"

struct vrev__handshake;
struct vrev__preauth_source; /* preauth.c */

/* An inbound's connections still in their proxy handshake (not yet authenticated): each holds
 * a place until it is dispatched, fails or reaches the handshake deadline (60 s: V2Ray's
 * anti-probing hold, kept). Each inbound has places of its own (limits.preauth_per_inbound),
 * so that a flood on a public inbound never takes the tunnel inbound's, and each source (an
 * IPv4 address, an IPv6 /64) at most limits.preauth_per_source of them. A newcomer is never
 * refused for want of a place: the oldest handshake of the source holding the most is closed
 * for it (see preauth.c for why). */
struct vrev__preauth_bucket {
    struct vrev__preauth_source *head, *tail; /* oldest first */
};
struct vrev__preauth {
    uint32_t max;        /* places in all */
    uint32_t per_source; /* places one source may hold */
    uint32_t n;
    struct vrev__sources sources;          /* struct vrev__preauth_source entries */
    struct vrev__preauth_bucket *by_count; /* by_count[k]: the sources holding k places */
    uint32_t n_by_count, top;              /* top: the most any source holds */
    uint64_t evicted;                      /* handshakes closed for a newcomer */
    uint64_t evicted_source;               /* of those: the source was at preauthPerSource */
    uint64_t refused;                      /* newcomers turned away (out of memory) */
};

/* Connections that ended in their handshake, by why (for the metrics, lib/obs). */
struct vrev__handshake_failures {
    uint64_t rejected; /* the protocol turned it away (bad header, unknown user...) */
    uint64_t timeout;  /* the handshake deadline passed */
    uint64_t closed;   /* the client closed first */
    uint64_t error;    /* a socket or TLS error */
};

struct vrev__inbound {
    struct vrev__engine *engine;
    char *tag;
    struct vrev__listener *listener;
    struct vrev__tls_ctx *tls;           /* streamSettings.security "tls"; NULL: none */
    const struct vrev__transport *layer; /* an embedder's transport instead; NULL: none */
    struct vrev__carrier carrier;        /* ws / h2 above TLS (protocol inbounds); kind 0: none */
    vrev__accept_cb proto_accept;        /* the protocol's accept (vrev__inbound_listen) */
    struct bufferevent *stream;     /* an h2 stream being accepted (vrev__handshake_new, fd -1) */
    struct vrev__h2_link *h2_conns; /* its h2 connections (inbound.c) */
    /* dokodemo-door */
    struct vrev__addr target;
    unsigned networks;
    struct vrev__udp_in *udp; /* the UDP side of a "tcp,udp" or "udp" listener; socks: relay */
    /* socks */
    struct vrev__addr announce; /* the relay address UDP ASSOCIATE replies name */
    bool has_announce;
    /* vmess */
    struct vrev__vmess_user *users;
    char **emails;
    size_t n_users;
    struct vrev__vmess_replay *auth_ids;
    struct vrev__vmess_replay *sessions;
    struct vrev__preauth preauth;
    struct vrev__handshake_failures failures;
    /* acceptProxyProtocol: a PROXY v1/v2 header comes first (pp_accept.c) */
    bool accept_proxy;
    /* while its accept runs, the address the header says the client connected to */
    const struct vrev__addr *pp_local;
};

/* The phase of an accepted connection before it is dispatched: tracked by the engine (so
 * stopping it closes the connection) and bounded by an absolute deadline (policy.handshake)
 * that traffic does not move. Protocols embed it first in their own handshake struct. */
struct vrev__handshake {
    struct vrev__conn conn; /* first */
    struct vrev__engine *engine;
    struct vrev__inbound *in; /* freeing it closes its handshakes first (preauth cleanup) */
    struct bufferevent *bev;
    struct event *deadline;
    struct vrev__addr source;
    uint64_t conn_id; /* the connection's id (vrev__conn_id): its link's, once it has one */
    void (*wipe)(struct vrev__handshake *h); /* protocol state to erase on free; may be NULL */
    int64_t until_ms;                        /* the deadline, on the monotonic clock */
    /* its place in the inbound's pre-auth pool (preauth.c); src NULL: holds none */
    struct vrev__preauth_source *src;
    struct vrev__handshake *older, *newer; /* the same source's handshakes */
    bool failed; /* rejected already (vrev__handshake_log): counted once */
};

/* Pre-auth places (preauth.c). Init from the engine's limits; returns 0 or VREV_ERR_CRYPTO. */
int vrev__preauth_init(struct vrev__inbound *in);
/* Give `h` (its source set) a place, closing another handshake of the inbound if there is
 * none free (vrev__handshake_evict). False: out of memory (nothing closed for it then). */
bool vrev__preauth_admit(struct vrev__inbound *in, struct vrev__handshake *h);
/* Give h's place back (nothing if it holds none). */
void vrev__preauth_release(struct vrev__inbound *in, struct vrev__handshake *h);
/* Close every handshake still holding a place, and free the pool (the inbound is going). */
void vrev__preauth_cleanup(struct vrev__inbound *in);
/* Close a handshake for a newcomer: reset at once, nothing left lingering (inbound.c). */
void vrev__handshake_evict(struct vrev__handshake *h);

/* Accept `fd` from `peer` into a zeroed handshake of `size` bytes (TLS and a ws carrier layered
 * on if the inbound has them; fd -1: the h2 stream in->stream, from an h2 connection), with a
 * place in the inbound's pre-auth pool (another handshake may be closed for it). The caller
 * sets the bufferevent's callbacks (with vrev__handshake_on_event as the event callback) and
 * enables reading. NULL on failure (the socket is closed; a stream is left to its caller). */
struct vrev__handshake *vrev__handshake_new(struct vrev__inbound *in, evutil_socket_t fd,
                                            const struct sockaddr *peer, size_t size,
                                            void (*wipe)(struct vrev__handshake *h));
/* The same without a connection yet (the caller keeps its socket, closed by `wipe` if the
 * handshake ends first): a place and the deadline. NULL: out of memory. */
struct vrev__handshake *vrev__handshake_open(struct vrev__inbound *in, const struct sockaddr *peer,
                                             size_t size, void (*wipe)(struct vrev__handshake *h));
/* Close the connection and free the handshake. */
void vrev__handshake_end(struct vrev__handshake *h);
/* The handshake succeeded: free it and return its connection, callbacks cleared. */
struct bufferevent *vrev__handshake_take(struct vrev__handshake *h);
/* A handshake was refused: log it (at info: "[tag] <verb> <source>: <why>"), count it, and
 * report it to the access log ("rejected", as V2Ray's inbounds do). */
void vrev__handshake_log(struct vrev__handshake *h, const char *component, const char *verb,
                         const char *why);
/* A protocol's header step for vrev__handshake_read: parse from p[0..n), drain what it took
 * from `input`; when the header is complete, hand the connection on. Returns > 0 when handed
 * on (h may be gone), 0 when more is needed, or a negative VREV_ERR_* to reject. */
typedef int (*vrev__handshake_feed_fn)(struct vrev__handshake *h, struct evbuffer *input,
                                       const uint8_t *p, size_t n);
/* The read callback of a handshake that answers nothing before its header is accepted (vmess,
 * vless): feed the input of bev to `feed` until it hands the connection on or rejects it.
 * Once *rejected (logged as `component`), it keeps reading and dropping until the deadline. */
void vrev__handshake_read(struct vrev__handshake *h, struct bufferevent *bev, bool *rejected,
                          const char *component, vrev__handshake_feed_fn feed);
/* Event callback during a handshake: the client went away, or failed. */
void vrev__handshake_on_event(struct bufferevent *bev, short what, void *arg);

/* Allocate an inbound with its tag (no listener yet). */
struct vrev__inbound *vrev__inbound_alloc(struct vrev__engine *e, const char *tag);
/* Listen, calling `accept` for each connection. */
int vrev__inbound_listen(struct vrev__inbound *in, const char *host, uint16_t port,
                         vrev__accept_cb accept);
/* Give an inbound a carrier (ws or h2) between its TLS and its protocol (a copy of `o` is kept;
 * NULL or kind TCP: none). For vmess, vless and socks inbounds (dokodemo-door has no carrier).
 * With h2, each stream of a connection is a connection of the inbound (its own handshake and
 * relay); a connection holding no stream is closed after policy.handshake_ms (connIdle once it
 * had one). h2 under TLS needs the TLS server context to offer ALPN "h2". Returns 0,
 * VREV_ERR_INVAL or VREV_ERR_NOMEM. */
int vrev__inbound_set_carrier(struct vrev__inbound *in, const struct vrev__carrier_opts *o);
/* Reload (lib/instance). An inbound built while engine->adopt was set holds the old
 * inbound's listener without owning it yet: vrev__inbound_adopt makes it `to`'s (connections
 * accepted from now on go to `to`; `from` keeps its handshakes and h2 connections until they
 * end), vrev__inbound_drop_adopted frees `in` leaving the listener to its old inbound (a
 * reload that fails). vrev__inbound_close_listener closes an inbound's listener, and a
 * dokodemo-door's UDP side; a SOCKS UDP relay stays (its associations refer to it) until the
 * inbound is freed. An inbound is idle when it has no listener, no UDP side, no h2 connection
 * and no handshake left: it can then be freed without touching a live connection. */
void vrev__inbound_adopt(struct vrev__inbound *to, struct vrev__inbound *from);
void vrev__inbound_drop_adopted(struct vrev__inbound *in);
void vrev__inbound_close_listener(struct vrev__inbound *in);
bool vrev__inbound_idle(const struct vrev__inbound *in);

/* Inbounds a reload replaced or removed (listener closed or handed over), each freed once
 * idle: checked every second. vrev__retired_reserve makes room for `more` (0 or
 * VREV_ERR_NOMEM), after which vrev__retired_add cannot fail; it closes the inbound's
 * listener if it still has one. vrev__retired_cleanup frees them all (the engine's connections
 * closed first) and the list. */
struct vrev__retired {
    vrev_ctx *ctx;
    struct vrev__inbound **v;
    size_t n, cap;
    struct event *timer;
};
int vrev__retired_reserve(struct vrev__retired *r, vrev_ctx *ctx, size_t more);
void vrev__retired_add(struct vrev__retired *r, struct vrev__inbound *in);
void vrev__retired_cleanup(struct vrev__retired *r);

/* acceptProxyProtocol (on = true): every connection the inbound accepts starts with a PROXY
 * v1 or v2 header, read before TLS and any carrier (pp_accept.c); the connection's source is
 * then the header's (for routing, logs and the pre-auth share by source). A connection without
 * a valid header is closed, as V2Ray 4.34 (go-proxyproto, policy REQUIRE) closes it. The
 * listener's cap per source then counts only the total: every connection comes from the
 * proxy. After vrev__inbound_listen (or the inbound's constructor). */
void vrev__inbound_set_accept_proxy(struct vrev__inbound *in, bool on);
/* The listener's accept for an inbound with accept_proxy: wait for the header (pp_accept.c),
 * then hand the socket on to `next` with the header's source. */
void vrev__pp_accept(struct vrev__inbound *in, evutil_socket_t fd, const struct sockaddr *peer,
                     int len, vrev__accept_cb next);
/* A bufferevent for an accepted socket, with the inbound's TLS then its carrier layered on
 * (their lines name connection conn_id). NULL on failure (the socket is then closed). */
struct bufferevent *vrev__inbound_socket(struct vrev__inbound *in, evutil_socket_t fd,
                                         uint64_t conn_id);

#endif
