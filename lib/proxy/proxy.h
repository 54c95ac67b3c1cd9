/* lib/proxy: the engine's moving parts. An inbound accepts connections and describes each as a
 * link (struct vrev__link_info + a bufferevent carrying the client's bytes); the dispatcher
 * routes it to an outbound, which takes the bufferevent over and carries it to its target.
 * This is V2Ray's model (inbound -> dispatcher -> router -> outbound) with bufferevents as
 * links; a reverse bridge or portal plugs in as just another inbound or outbound. */
#ifndef VREV_PROXY_PROXY_H
#define VREV_PROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/addr.h"
#include "net/carrier_layer.h"
#include "net/net.h"
#include "route/router.h"

struct vrev__engine;
struct vrev__outbound;
struct vrev__tls_ctx;

/* What the router sees of one connection. */
struct vrev__link_info {
    /* The connection's id (vrev__conn_id), given once where it was accepted or where a bridge
     * was asked to open it, carried along for log lines ("c17 dial 127.0.0.1:8080"); 0: none
     * (a link of the library's own, such as a bridge's tunnel before it has one). */
    uint64_t conn_id;
    const char *inbound_tag; /* may be NULL */
    int network;             /* VREV_NET_TCP or VREV_NET_UDP */
    struct vrev__addr target;
    struct vrev__addr source; /* valid when has_source */
    bool has_source;
    /* the address the client connected to (a public listener's, or a PROXY header's); valid
     * when has_local. With source, what a PROXY header to a service says (freedom.c). */
    struct vrev__addr local;
    bool has_local;
    const char *user; /* may be NULL */
    /* Dial once, without V2Ray's retries: the link's owner redials on its own schedule (a
     * bridge's tunnel; retries 200..800 ms apart would hold it back from a restarted portal). */
    bool dial_once;
    /* Counts this link's dial while it is in progress, for a cap its owner enforces (a
     * bridge's dials per tunnel, limits.dials_per_tunnel); NULL: not counted. The outbound
     * that dials takes a reference for the dial's duration (dialer.c). */
    struct vrev__gauge *dialing;
    /* Set by vrev__engine_open: the link's owner takes the stream the outbound dials itself
     * (there is no link bufferevent: NULL wherever one is passed). */
    struct vrev__handoff *handoff;
};

/* A reference-counted count shared by an owner and the work it started, so that either may
 * end first (dialer.c). */
struct vrev__gauge {
    vrev_ctx *ctx;
    unsigned refs;
    unsigned n;
    /* Called after n goes down (a dial ended), when set; the owner clears it before it drops
     * its reference. */
    void (*on_drop)(void *arg);
    void *drop_arg;
};
struct vrev__gauge *vrev__gauge_new(vrev_ctx *ctx); /* n 0, one reference; NULL: no memory */
struct vrev__gauge *vrev__gauge_ref(struct vrev__gauge *g);
void vrev__gauge_unref(struct vrev__gauge *g); /* NULL: no-op */
/* One dial in progress on g, which it holds a reference to; returns g (NULL: not counted). */
struct vrev__gauge *vrev__gauge_start(struct vrev__gauge *g);
/* That dial ended: counted down, the owner told (on_drop), the reference dropped (NULL: no-op). */
void vrev__gauge_end(struct vrev__gauge *g);

/* A link's owner that wants the stream an outbound dials and sets up for it, instead of a
 * relay between that stream and a bufferevent of its own (a bridge runs its mux on its
 * tunnel's stream: vrev__engine_open). Reference-counted: the owner holds one reference (to
 * cancel), the work in progress another, so that either may end first. */
typedef void (*vrev__handoff_fn)(struct bufferevent *stream, int err, void *user);
struct vrev__handoff {
    vrev_ctx *ctx;
    unsigned refs;
    vrev__handoff_fn done; /* NULL once called, or cancelled */
    void *user;
};
/* One reference, the owner's; NULL: no memory. */
struct vrev__handoff *vrev__handoff_new(vrev_ctx *ctx, vrev__handoff_fn done, void *user);
/* The owner's end (NULL: no-op): `done` is never called after this (a stream that comes is
 * closed); drops the owner's reference. Safe from inside `done`. */
void vrev__handoff_cancel(struct vrev__handoff *h);
/* The work's end: `done` gets the stream (owned from then on), or NULL and err < 0; without a
 * `done` (cancelled) the stream is aborted. Drops the work's reference. */
void vrev__handoff_finish(struct vrev__handoff *h, struct bufferevent *stream, int err);

struct vrev__outbound_ops {
    const char *protocol;
    /* Take ownership of `link` and carry it to info->target. On an error return the outbound
     * has already closed the link. */
    int (*handle)(struct vrev__outbound *ob, const struct vrev__link_info *info,
                  struct bufferevent *link);
    void (*destroy)(struct vrev__outbound *ob);
    /* Dial and set up the way to info->target as handle() does, then give the stream to
     * info->handoff (vrev__outbound_finish) instead of relaying it. The outbound owns the
     * work's reference to the handoff from then on, even on an error return (finished with
     * the error). May be NULL, or return VREV_ERR_UNSUPPORTED before taking anything (a
     * datagram link, a name to resolve first): vrev__engine_open then relays a pair. */
    int (*open)(struct vrev__outbound *ob, const struct vrev__link_info *info);
};

/* Outbound implementations embed this as their first member. */
struct vrev__outbound {
    const struct vrev__outbound_ops *ops;
    struct vrev__engine *engine;
    char *tag;
    struct vrev__tls_ctx *tls; /* streamSettings.security "tls": dials are wrapped; NULL: none */
    const struct vrev__transport *layer; /* an embedder's transport instead; NULL: none */
    struct vrev__carrier carrier;        /* ws / h2 above TLS; kind 0 (tcp): none */
};

/* --- connections tracked by the engine (so that stopping it frees everything) ------------- */

struct vrev__conn;
typedef void (*vrev__conn_close_fn)(struct vrev__conn *c);
struct vrev__conn {
    struct vrev__conn *prev, *next;
    vrev__conn_close_fn close; /* abort and free; called when the engine stops */
};

void vrev__engine_track(struct vrev__engine *e, struct vrev__conn *c, vrev__conn_close_fn close);
void vrev__engine_untrack(struct vrev__engine *e, struct vrev__conn *c);

/* --- the engine ---------------------------------------------------------------------------- */

struct vrev__engine_stats {
    uint64_t links;         /* links dispatched */
    uint64_t relays_ok;     /* relays that ended cleanly */
    uint64_t relays_failed; /* relays that ended with an error or timeout */
    uint64_t dial_failures; /* outbound dials that gave up */
    uint64_t bytes_up;      /* relayed link -> target: up, toward the service */
    uint64_t bytes_down;    /* relayed target -> link: down, back toward the client */
    uint64_t relays_live;   /* relays running now (vrev__engine_relay) */
};

/* Links dispatched per (inbound tag, outbound): for the metrics (lib/obs). Pairs come from the
 * configuration, so they are few; past VREV__ROUTE_COUNTS_MAX pairs, new ones are not broken
 * out (stats.links still counts them). */
#define VREV__ROUTE_COUNTS_MAX 256
struct vrev__route_count {
    char *inbound;  /* a copy; NULL: untagged */
    char *outbound; /* a copy of the outbound's tag; NULL: untagged */
    uint64_t links;
};

struct vrev__engine {
    vrev_ctx *ctx;
    struct evdns_base *dns;      /* created on first use */
    struct vrev__router *router; /* NULL: everything goes to outbound 0 */
    struct vrev__outbound **outbounds;
    size_t n_outbounds;
    struct vrev__policy policy;
    struct vrev__limits limits; /* the context's when made (vrev_ctx_set_limit); may be
                                   overridden before anything is built on the engine */
    struct vrev__conn live;     /* list head */
    struct vrev__engine_stats stats;
    struct vrev__route_count *routes; /* n_routes of them */
    size_t n_routes;
    /* A listening socket the next vrev__inbound_listen takes instead of binding one (set by a
     * reload for an inbound whose address and port stay: no connection is refused meanwhile).
     * The listener's callback still names its old inbound: vrev__inbound_adopt moves it. */
    struct vrev__listener *adopt;
};

int vrev__engine_init(struct vrev__engine *e, vrev_ctx *ctx);
/* Close every live connection. Owners call it before freeing their inbounds, which live
 * connections may still refer to (a SOCKS association counts itself out of its relay). */
void vrev__engine_close_all(struct vrev__engine *e);
/* Close every live connection, free the outbounds, the router and the resolver. */
void vrev__engine_cleanup(struct vrev__engine *e);
/* Append an outbound (the engine owns it from now on, even on failure). */
int vrev__engine_add_outbound(struct vrev__engine *e, struct vrev__outbound *ob);
/* The resolver for configured host names, created on first use (NULL if out of memory). */
struct evdns_base *vrev__engine_dns(struct vrev__engine *e);

/* The outbound the router picks for a link (outbound 0 without a router); NULL: none. */
struct vrev__outbound *vrev__engine_route(struct vrev__engine *e,
                                          const struct vrev__link_info *info);

/* Route a link and hand it to its outbound (which owns it from then on, even on failure). */
int vrev__dispatch(struct vrev__engine *e, const struct vrev__link_info *info,
                   struct bufferevent *link);

/* Route a link that has no bufferevent (info->handoff set, its owner's) as vrev__dispatch
 * does (the same rules, counts and access log line), and have the outbound hand the stream it
 * dials to info->handoff: the owner runs on that stream itself, with no relay between (a
 * bridge's tunnel). An outbound that cannot (no ops->open: blackhole, a portal) gets one end
 * of a bufferevent pair as its link, and the handoff the other end at once. The handoff is
 * finished in every case, possibly before this returns (then with the error returned). */
int vrev__engine_open(struct vrev__engine *e, const struct vrev__link_info *info);

/* The end of an outbound's work for a link: relay `link` with `stream` (vrev__engine_relay, its end
 * logged with conn_id),
 * or, for a link without a bufferevent (link NULL), hand `stream` to `h`
 * (vrev__handoff_finish). On err < 0 (stream NULL) the link is closed with an error, or the
 * handoff told. */
void vrev__outbound_finish(struct vrev__outbound *ob, struct bufferevent *link,
                           struct vrev__handoff *h, struct bufferevent *stream, int err,
                           uint64_t conn_id);

/* An ops->open for an outbound whose handle() dials a stream (vmess, vless, socks): a TCP link
 * goes through handle() with no link bufferevent, the stream to info->handoff; a datagram link
 * is VREV_ERR_UNSUPPORTED (it relays a pair). */
int vrev__outbound_open_stream(struct vrev__outbound *ob, const struct vrev__link_info *info);

/* Relay `link` and `target` under the engine's policy, tracked and counted; its end is logged
 * (debug) with the link's conn_id and the bytes moved each way. */
int vrev__engine_relay(struct vrev__engine *e, struct bufferevent *link, struct bufferevent *target,
                       uint64_t conn_id);

typedef void (*vrev__link_dialed_fn)(struct bufferevent *link, struct bufferevent *bev, int err,
                                     void *user);

/* Dial `target` for `link` from an outbound, with V2Ray's retries (5 attempts, the k-th retry
 * after k * step_ms; step_ms 0, or info->dial_once: one attempt). TLS (ob->tls), then the
 * carrier (ob->carrier), are layered on the connection before `done` runs.
 * `done` gets the link back with the connected bufferevent, or with NULL and the last error
 * (then it must close the link). Until then the engine owns the link: if the engine stops
 * first, it closes the link and calls `release` (may be NULL) instead of `done`, for whatever
 * `user` holds. Returns 0 or VREV_ERR_NOMEM (link closed, neither called).
 * `info` may be NULL (one attempt per step_ms, not counted, a link bufferevent). Else the
 * dial is counted on info->dialing (may be NULL: not counted) until it ends: connected, given
 * up, or cancelled (the engine stops, or the link fails meanwhile: a mux session reset by its
 * peer); it holds a reference to the gauge meanwhile, so its owner may drop its own first.
 * With info->handoff, `link` is NULL and the handoff is what the engine owns until `done`:
 * stopping the engine, or running out of memory here, finishes it with the error. */
int vrev__outbound_dial(struct vrev__outbound *ob, struct bufferevent *link,
                        const struct vrev__addr *target, uint32_t step_ms,
                        const struct vrev__link_info *info, vrev__link_dialed_fn done,
                        void (*release)(void *user), void *user);

/* vrev__outbound_dial for a link's request `req` (allocated with the engine's allocator), after
 * the debug "dial" line (vrev__outbound_log_dial); req is freed here if the dial cannot start
 * (the error returned). For the outbounds that dial a picked server (vmess, vless, socks). */
int vrev__outbound_dial_req(struct vrev__outbound *ob, struct bufferevent *link,
                            const struct vrev__link_info *info, const struct vrev__addr *server,
                            uint32_t step_ms, vrev__link_dialed_fn done,
                            void (*release)(void *user), void *req);

/* Resolve a link's domain target (non-blocking: the hosts file, then resolv.conf's name
 * servers) to one address of `family` (AF_INET, AF_INET6 or AF_UNSPEC), picked at random;
 * the port is kept. `done` gets the link back with that address and 0, or with the target
 * itself and VREV_ERR_RESOLVE (it may then dial the name as is, or close the link). Until then
 * the engine owns the link (stopping it closes the link; done is not called). It may run
 * before this returns (a hosts-file answer). Returns 0, or an error with the link closed and
 * done not called. */
typedef void (*vrev__link_resolved_fn)(struct bufferevent *link, const struct vrev__addr *addr,
                                       int err, void *user);
int vrev__engine_resolve_for(struct vrev__engine *e, struct bufferevent *link,
                             const struct vrev__addr *target, int family, uint64_t conn_id,
                             vrev__link_resolved_fn done, void *user);

/* Every IPv4 and IPv6 address of `host` (the hosts file, then the name servers), at most
 * `max`, without repeats, in the resolver's order, each with `port`. `done` gets them (n > 0,
 * err 0) or VREV_ERR_RESOLVE; it runs from the loop, or before this returns (a hosts-file
 * answer: *out is then NULL). *out: the query while it is out, which its owner cancels with
 * vrev__resolve_all_cancel() before going away (done is then never called; the record is
 * freed when the answer, or the resolver's shutdown, comes). Returns 0, or VREV_ERR_NOMEM /
 * VREV_ERR_RESOLVE (no resolver) with done not called. */
struct vrev__resolve_all;
typedef void (*vrev__resolved_all_fn)(const struct vrev__addr *addrs, size_t n, int err,
                                      void *user);
int vrev__engine_resolve_all(struct vrev__engine *e, const char *host, uint16_t port, size_t max,
                             vrev__resolved_all_fn done, void *user,
                             struct vrev__resolve_all **out);
void vrev__resolve_all_cancel(struct vrev__resolve_all *q);

/* Common outbound setup: tag copy and ops. */
int vrev__outbound_init(struct vrev__outbound *ob, struct vrev__engine *e,
                        const struct vrev__outbound_ops *ops, const char *tag);
void vrev__outbound_cleanup(struct vrev__outbound *ob);
/* Give an outbound a TLS client context (the outbound takes the reference). */
void vrev__outbound_set_tls(struct vrev__outbound *ob, struct vrev__tls_ctx *tls);
/* Give an outbound a carrier (ws or h2) put on each dialed connection after TLS (a copy of `o`
 * is kept; NULL or kind TCP: none). For the outbounds that dial a proxy server (vmess, vless,
 * socks); freedom never uses one. h2 under TLS needs a TLS context offering ALPN "h2".
 * Returns 0, VREV_ERR_INVAL or VREV_ERR_NOMEM. */
int vrev__outbound_set_carrier(struct vrev__outbound *ob, const struct vrev__carrier_opts *o);

/* Several servers and users for one outbound (picker.c): `entries` is an array of n
 * (server, user) entries of `stride` bytes, each starting with the server's struct vrev__addr;
 * consecutive entries with the same server are its users. Each pick returns an entry index:
 * servers in turn, a user of the server at random (as V2Ray 4.34). */
struct vrev__picker {
    size_t n_servers;
    size_t next;
    size_t *first; /* server i's entries are first[i] .. first[i + 1] - 1 */
};
int vrev__picker_init(struct vrev__picker *p, vrev_ctx *ctx, const void *entries, size_t n,
                      size_t stride);
size_t vrev__picker_pick(struct vrev__picker *p);
void vrev__picker_cleanup(struct vrev__picker *p, vrev_ctx *ctx);
/* Free an outbound (allocated with the engine's allocator) that picks among entries: wipe
 * ent[0..bytes) (credentials), clean the picker and the common part. */
void vrev__outbound_free_picked(struct vrev__outbound *ob, struct vrev__picker *picker, void *ent,
                                size_t bytes);
/* The end of such an outbound's _new, its entries filled with result rc: if rc is 0, the
 * picker over ent (n entries of `stride` bytes); then *out = ob and 0, or, on an error, the
 * outbound destroyed (ops->destroy) and the error. */
int vrev__outbound_picked_done(struct vrev__outbound *ob, struct vrev__picker *picker,
                               const void *ent, size_t n, size_t stride, int rc,
                               struct vrev__outbound **out);
/* The debug line of an outbound dialing `to` for a link: "c17 [tag] dial 127.0.0.1:8080", and
 * " for HOST:PORT" (the link's target) when `to` is another address (a proxy server). */
void vrev__outbound_log_dial(const struct vrev__outbound *ob, const struct vrev__link_info *info,
                             const struct vrev__addr *to);
/* A zeroed request of `size` bytes for a link the outbound handles, or NULL with the link
 * closed, or its handoff (info->handoff, link NULL) finished (out of memory). */
void *vrev__outbound_req_new(struct vrev__outbound *ob, struct bufferevent *link,
                             const struct vrev__link_info *info, size_t size);
/* The start of a picking outbound's _new (its struct begins with its struct vrev__outbound, then
 * n entries of ent_size bytes end it, head bytes before them), for n options at `opts`: the
 * arguments checked, the object allocated zeroed, vrev__outbound_init'ed with ops and tag. NULL
 * with *rc VREV_ERR_INVAL (opts NULL, n 0 or too large) or VREV_ERR_NOMEM; else the object
 * with *rc init's result (on an error, finish with vrev__outbound_picked_done: it destroys it). */
void *vrev__outbound_picked_new(struct vrev__engine *e, const char *tag,
                                const struct vrev__outbound_ops *ops, const void *opts, size_t n,
                                size_t head, size_t ent_size, int *rc);
/* The start of a picking outbound's request (vmess, vless): the outbound and the entry picked
 * for one link. */
struct vrev__picked_req {
    struct vrev__outbound *ob;
    const void *ent; /* one of the outbound's entries: it begins with the server's address */
    struct vrev__handoff *handoff; /* a link without a bufferevent (info->handoff); else NULL */
};
/* A zeroed request of `size` bytes beginning with struct vrev__picked_req, an entry of `ent` (n
 * entries of `stride` bytes, as the picker's) picked, and the link's handoff (info->handoff when
 * link is NULL); or NULL with the link closed, or the handoff finished (out of memory).
 * vrev__picked_req_release frees it (a release hook for vrev__outbound_dial_req). */
void *vrev__picked_req_new(struct vrev__outbound *ob, struct vrev__picker *picker, const void *ent,
                           size_t stride, struct bufferevent *link,
                           const struct vrev__link_info *info, size_t size);
void vrev__picked_req_release(void *req);
/* A picking outbound's dial or request for connection conn_id failed with err: a warning under
 * `component` (not for a refused or timed-out dial), bev freed (may be NULL), the link closed,
 * or for a link without a bufferevent (link NULL) the handoff `h` finished with err
 * (vrev__outbound_finish). */
void vrev__picked_req_failed(struct vrev__outbound *ob, const char *component, uint64_t conn_id,
                             struct bufferevent *link, struct vrev__handoff *h,
                             struct bufferevent *bev, int err);

/* --- outbounds ----------------------------------------------------------------------------- */

enum vrev__domain_strategy {
    VREV_DS_AS_IS = 0,
    VREV_DS_USE_IP,
    VREV_DS_USE_IPV4,
    VREV_DS_USE_IPV6,
};

struct vrev__freedom_opts {
    const char *redirect_host; /* NULL or "": keep the target's address */
    uint16_t redirect_port;    /* 0: keep the target's port */
    int domain_strategy;       /* enum vrev__domain_strategy */
};

int vrev__freedom_new(struct vrev__engine *e, const char *tag,
                      const struct vrev__freedom_opts *opts, struct vrev__outbound **out);
/* TCP targets of freedom outbound `ob` get a PROXY header of `version` (1, 2; 0: none, the
 * default) before any payload, naming the link's source and local address (v1 UNKNOWN / v2
 * LOCAL without them). */
void vrev__freedom_set_proxy_protocol(struct vrev__outbound *ob, int version);

/* blackhole: closes every link; with http_response set, first answers "403 Forbidden". */
int vrev__blackhole_new(struct vrev__engine *e, const char *tag, bool http_response,
                        struct vrev__outbound **out);

struct vrev__user_out_opts {
    const char *address; /* server host */
    uint16_t port;
    uint8_t uuid[16];
    int security; /* vmess: VREV_VMESS_SEC_AES_128_GCM, _CHACHA20_POLY1305, _NONE; vless: ignored */
};

/* One entry per (server, user), n >= 1 (see struct vrev__picker for the grouping). */
int vrev__vmess_out_new(struct vrev__engine *e, const char *tag,
                        const struct vrev__user_out_opts *opts, size_t n,
                        struct vrev__outbound **out);

/* vless: the request header for the link's target, then raw bytes (WIRE-SPEC §5.1); the same
 * entries (security unused). */
int vrev__vless_out_new(struct vrev__engine *e, const char *tag,
                        const struct vrev__user_out_opts *opts, size_t n,
                        struct vrev__outbound **out);

/* socks: SOCKS5 CONNECT to the link's target, then raw bytes (WIRE-SPEC §5.3). */
struct vrev__socks_out_opts {
    const char *address; /* server host */
    uint16_t port;
    const char *user; /* NULL: no authentication; else username/password (each <= 255 bytes) */
    const char *pass;
};

int vrev__socks_out_new(struct vrev__engine *e, const char *tag,
                        const struct vrev__socks_out_opts *opts, size_t n,
                        struct vrev__outbound **out);

/* --- inbounds ------------------------------------------------------------------------------ */

struct vrev__inbound;

struct vrev__dokodemo_opts {
    const char *listen;  /* IP literal; NULL: 0.0.0.0 */
    uint16_t port;       /* 0: any free port */
    const char *address; /* target host */
    uint16_t target_port;
    unsigned networks; /* VREV_ROUTE_TCP | VREV_ROUTE_UDP */
};

/* A user of an inbound that authenticates by UUID (vmess, vless). */
struct vrev__in_user {
    uint8_t uuid[16];
    const char *email; /* may be NULL */
};

/* The options of such an inbound: its listener and users (copied; the caller keeps them). */
struct vrev__in_user_opts {
    const char *listen;
    uint16_t port;
    const struct vrev__in_user *users;
    size_t n_users;
};

int vrev__vmess_in_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__in_user_opts *opts, struct vrev__inbound **out);
int vrev__vless_in_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__in_user_opts *opts, struct vrev__inbound **out);

struct vrev__socks_in_account {
    const char *user; /* 1..255 bytes; becomes the link's user ("email") for routing */
    const char *pass; /* 1..255 bytes */
};

struct vrev__socks_in_opts {
    const char *listen;
    uint16_t port;
    const struct vrev__socks_in_account *accounts; /* n_accounts 0: no authentication */
    size_t n_accounts;
    bool udp;           /* UDP ASSOCIATE (a relay on the same port) */
    const char *udp_ip; /* the relay address replies name; NULL: the one the client reached */
};

int vrev__socks_in_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__socks_in_opts *opts, struct vrev__inbound **out);

int vrev__dokodemo_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__dokodemo_opts *opts, struct vrev__inbound **out);
void vrev__inbound_free(struct vrev__inbound *in);
/* Give an inbound a TLS server context (the inbound takes the reference): every accepted
 * connection is wrapped before its protocol reads it. */
void vrev__inbound_set_tls(struct vrev__inbound *in, struct vrev__tls_ctx *tls);
/* Give an inbound a carrier (inbound.h). */
int vrev__inbound_set_carrier(struct vrev__inbound *in, const struct vrev__carrier_opts *o);
/* The TCP port an inbound listens on (after binding port 0). */
uint16_t vrev__inbound_port(const struct vrev__inbound *in);

#endif
