/* Internals shared by the files of lib/api (the JSON-free tunnel API). */
#ifndef VREV_API_TUNNEL_INTERNAL_H
#define VREV_API_TUNNEL_INTERNAL_H

#include <stdbool.h>

#include "codec/addr.h"
#include "core/core.h"
#include "net/carrier.h"
#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "vrev/tunnel.h"

struct vrev__tunnel_pair {
    char *name;
    char *hostport; /* NULL for an in-process handler */
    vrev_bridge_accept_cb cb;
    void *user;
    int proxy_protocol; /* bridge target: PROXY header version to send; 0: none */
};

struct vrev_tunnel_opts {
    vrev_allocator alloc; /* the context's, copied (vrev_tunnel_opts_new): every allocation */
    char err[256];
    uint8_t uuid[16];
    bool has_id;
    int security; /* VREV_VMESS_SEC_* */
    char *domain; /* NULL: the default */
    char *listen; /* portal */
    struct vrev__tunnel_pair *publics;
    size_t n_publics;
    char **portals; /* bridge: one tunnel set (its own vrev__bridge) per portal */
    size_t n_portals;
    /* bridge, set only on a name's expansion (tunnel_resolve.c): portal i is an address of
     * the name portal_names[i] (TLS server name, ws Host); NULL array or entry: none */
    char **portal_names;
    struct vrev__tunnel_pair *targets;
    size_t n_targets;
    unsigned heartbeat_ms, drain_after, sessions_per_tunnel, dead_after_ms; /* 0: defaults */
    bool tls;
    bool tls_insecure;
    bool accept_proxy; /* portal: listeners read a PROXY header first */
    char *tls_cert;    /* portal */
    char *tls_key;
    char *tls_ca; /* bridge */
    char *tls_sni;
    uint8_t (*tls_pins)[32]; /* bridge: --pin (vrev_tunnel_opts_add_tls_pin) */
    size_t n_tls_pins;
    char *transport;    /* a custom transport's name (vrev/transport.h); NULL: none */
    int carrier;        /* VREV_CARRIER_* (net/carrier.h) */
    char *carrier_path; /* normalized ("/..."); NULL: "/" */
    char *carrier_host; /* NULL: the default */
};

/* A deep copy of `o` (its error text left out) on ctx's allocator, freed with
 * vrev_tunnel_opts_free; NULL when out of memory. */
vrev_tunnel_opts *vrev__tunnel_opts_copy(const vrev_tunnel_opts *o, vrev_ctx *ctx);
/* Replace the portals (and their names: NULL for none) with copies of portals[0..n) and
 * names[0..n). 0, or VREV_ERR_NOMEM with `o` unchanged. */
int vrev__tunnel_opts_set_portals(vrev_tunnel_opts *o, char *const *portals, char *const *names,
                                  size_t n);

/* The carrier options the tunnel's inbound or outbound takes (strings borrowed from o);
 * *host is the storage for the one host. */
void vrev__tunnel_carrier(const vrev_tunnel_opts *o, struct vrev__carrier_opts *c,
                          const char **host);

long vrev__tunnel_find_target(const vrev_tunnel_opts *o, const char *name);
/* A bridge target named by the HOST:PORT a portal asks for (e.g. a V2Ray portal's
 * dokodemo-door target) rather than by a name; *a gets that address. */
bool vrev__tunnel_target_addr(const struct vrev__tunnel_pair *t, struct vrev__addr *a);
const char *vrev__tunnel_domain(const vrev_tunnel_opts *o);

/* --- reload (tunnel_reload.c) --- */
struct vrev__engine;
struct vrev__outbound;

/* What a reload compares (vrev_portal_reload, vrev_bridge_reload): the options that build the
 * tunnel's listener (portal) or outbound (bridge), as a hash (they hold the id), and those a
 * reload cannot change; the counters; what reloads replaced. */
struct vrev__tunnel_reload {
    uint8_t tunnel_key[32];
    char *domain;
    unsigned heartbeat_ms, drain_after, dead_after_ms;
    uint64_t ok, failed;
    struct vrev__retired retired_in;
    struct vrev__outbound **retired_out; /* freed with the object (dials may use them) */
    size_t n_retired_out;
};

/* SHA-256 over the options that make the portal's tunnel listener (portal != 0: id, listen,
 * TLS certificate and key, transport, carrier) or the bridge's tunnel outbound (id, security,
 * i-th portal, TLS client settings and pins, transport, carrier). */
void vrev__tunnel_key(const vrev_tunnel_opts *o, int portal, size_t i, uint8_t key[32]);
/* The options a reload cannot change (the domain, heartbeat, drain, dead-after): 0, or
 * VREV_ERR_UNSUPPORTED with a message naming the option. */
int vrev__tunnel_reload_check(const struct vrev__tunnel_reload *rs, const vrev_tunnel_opts *o,
                              char *err, size_t len);
/* Room to retire `n` more outbounds (0 or VREV_ERR_NOMEM); retire one (cannot fail then). */
int vrev__tunnel_reserve_out(vrev_ctx *ctx, struct vrev__tunnel_reload *rs, size_t n);
void vrev__tunnel_retire_out(struct vrev__tunnel_reload *rs, struct vrev__outbound *ob);
/* Free what reloads replaced (the engine's connections closed first) and the state. */
void vrev__tunnel_reload_cleanup(struct vrev__engine *e, struct vrev__tunnel_reload *rs);

/* --- the objects (tunnel.c and tunnel_bridge.c build them, tunnel_reload.c reloads them) --- */

struct events {
    vrev_tunnel_event_cb cb;
    void *user;
};

struct vrev_portal {
    vrev_ctx *ctx;
    struct vrev__engine engine;
    struct vrev__outbound *portal; /* owned by the engine */
    struct vrev__inbound *tunnel;
    char *listen;
    struct vrev__inbound **publics;
    char **public_keys; /* "HOST:PORT=NAME" of each public listener */
    size_t n_publics;
    struct events ev;
    struct vrev__tunnel_reload rs;
    struct vrev__defer defer; /* freed from inside its own callback */
};

/* A bridge's tunnels to one portal: its own vrev__bridge (tunnels, redial, backoff) dialing
 * through its own VMess outbound. One portal: tags "bridge" and "interconn" (as V2Ray's
 * documented configuration); several: "bridge-<i>" and "interconn-<i>". */
struct vrev__tunnel_leg {
    vrev_bridge *owner;
    struct vrev__bridge *bridge;
    char *portal;    /* HOST:PORT */
    uint8_t key[32]; /* vrev__tunnel_key() of the way to this portal */
};

struct vrev__portal_names;

/* A portal's or bridge's counters (vrev_*_counter). */
struct vrev__tunnel_counters {
    uint64_t tunnels, opened, sessions, active, refused, up, down;
};

struct vrev_bridge {
    vrev_ctx *ctx;
    struct vrev__engine engine;
    struct vrev__tunnel_leg **legs; /* one per portal; outbound i of the engine is leg i's */
    size_t n_legs;
    struct vrev__tunnel_leg **retiring; /* to an address gone: closed once idle, then freed */
    size_t n_retiring;
    struct vrev__tunnel_counters gone; /* of the retiring legs freed */
    struct vrev__portal_names *names;  /* the portals given by name (tunnel_resolve.c) */
    bool started;
    bool dying; /* freed from inside a callback: handlers get no more sessions */
    struct events ev;
    struct vrev__tunnel_reload rs;
    struct vrev__defer defer;
};

/* --- shared by the portal (tunnel.c) and the bridge (tunnel_bridge.c); in tunnel.c --- */

/* rc, with err (len bytes; NULL: none) set to msg, or to vrev_strerror(rc) when msg is NULL. */
int vrev__tunnel_fail(char *err, size_t len, int rc, const char *msg);
/* The application's event callback (ev->cb, if any), during which freeing the object is
 * deferred. */
void vrev__tunnel_call_event(vrev_ctx *ctx, const struct events *ev, int event, const char *name,
                             uint64_t up, uint64_t down);
/* Split "HOST:PORT" (checked by the options) into a host text (cap bytes) and a port. */
void vrev__tunnel_split_hostport(const char *hp, char *host, size_t cap, uint16_t *port);
/* The custom transport the options name: *t (NULL for none). 0 or a failure (err filled). */
int vrev__tunnel_custom_layer(vrev_ctx *ctx, const vrev_tunnel_opts *o,
                              const struct vrev__transport **t, char *err, size_t len);
/* The carrier (vrev_tunnel_opts_set_carrier) on the portal's tunnel inbound `in` or the
 * bridge's outbound `ob` (the other NULL); ws_host: the ws Host when the options set none
 * (NULL: the default). 0 or a failure (err filled). */
int vrev__tunnel_set_carrier(const vrev_tunnel_opts *o, struct vrev__inbound *in,
                             struct vrev__outbound *ob, const char *ws_host, char *err, size_t len);
/* What a reload compares, from the options the object is made with (portal != 0: a portal):
 * the tunnel's key, the domain (copied on ctx), heartbeat, drain, dead-after. 0 or
 * VREV_ERR_NOMEM. */
int vrev__tunnel_remember(vrev_ctx *ctx, struct vrev__tunnel_reload *rs, const vrev_tunnel_opts *o,
                          int portal);
/* The start of vrev_portal_new and vrev_bridge_new: the options checked (check's err), then a
 * zeroed object of `size` bytes from ctx's allocator; NULL with *rc the error. */
void *vrev__tunnel_alloc(vrev_ctx *ctx, const vrev_tunnel_opts *o,
                         int (*check)(const vrev_tunnel_opts *o, char *err, size_t len),
                         size_t size, int *rc, char *err, size_t err_len);
/* A portal's or bridge's engine started on ctx, and its deferred free (free_fn(obj), for a
 * free from inside one of its callbacks) made ready. 0 or the error (err written). */
int vrev__tunnel_engine_start(struct vrev__engine *e, struct vrev__defer *d, vrev_ctx *ctx,
                              void (*free_fn)(void *), void *obj, char *err, size_t err_len);
/* The value of VREV_COUNTER_* `counter` in c (0 for an unknown one). */
uint64_t vrev__tunnel_counter_of(const struct vrev__tunnel_counters *c, int counter);

/* Builders shared with tunnel_reload.c (tunnel.c: the portal's, tunnel_bridge.c: the
 * bridge's). On failure err gets the message. The portal's tunnel listener and its i-th
 * public listener (on engine.adopt's socket when set); a public listener's "HOST:PORT=NAME";
 * the bridge's outbounds and router (added to its engine) and its bridge object; the options
 * each needs. */
int vrev__portal_make_tunnel(vrev_portal *p, const vrev_tunnel_opts *o, struct vrev__inbound **out,
                             char *err, size_t len);
int vrev__portal_make_public(vrev_portal *p, const vrev_tunnel_opts *o, size_t i,
                             struct vrev__inbound **out, char *err, size_t len);
char *vrev__portal_public_key(vrev_ctx *ctx, const struct vrev__tunnel_pair *t);
int vrev__portal_check(const vrev_tunnel_opts *o, char *err, size_t len);
int vrev__bridge_build(vrev_bridge *b, const vrev_tunnel_opts *o, struct vrev__tunnel_leg ***legs,
                       char *err, size_t len);
/* The bridge and interconn tags of the i-th portal's leg. */
void vrev__tunnel_leg_tags(const vrev_tunnel_opts *o, size_t i, char btag[32], char itag[32]);
void vrev__tunnel_leg_free(vrev_bridge *b, struct vrev__tunnel_leg *leg);
/* A retiring leg gone idle: its counters kept in b->gone, then freed. */
void vrev__tunnel_leg_free_retired(vrev_bridge *b, struct vrev__tunnel_leg *leg);
void vrev__bridge_legs_free(vrev_bridge *b, struct vrev__tunnel_leg **legs, size_t n);
/* After vrev__bridge_adopt(): leg's events are its own again. */
void vrev__bridge_leg_notify(struct vrev__tunnel_leg *leg);
int vrev__bridge_check(const vrev_tunnel_opts *o, char *err, size_t len);
/* Append to btags[0..np) the tags of the running legs (those winding down included) not in
 * it (borrowed from them); returns how many. Their tunnels may bring sessions until they
 * close: the new router routes them too. */
size_t vrev__bridge_old_leg_tags(const vrev_bridge *b, const char **btags, size_t np);
/* Rebuild the bridge's outbounds, router and legs for `o` (checked): legs whose way is the
 * same keep their tunnels (tunnel_reload.c). resolved: the change comes from a name's
 * addresses (tunnel_resolve.c), not from the user: a leg no new one takes over winds down
 * (closes its tunnels once idle) instead of closing them at once, and the reload is not
 * logged nor counted. */
int vrev__bridge_replan(vrev_bridge *b, const vrev_tunnel_opts *o, bool resolved, char *err,
                        size_t len);

/* --- portals given by name (tunnel_resolve.c) ---
 * A portal given as a host name is resolved at start, every VREV__NAMES_EVERY_MS, and a few
 * seconds after one of its legs has no tunnel; when it has several addresses (at most
 * VREV_TUNNEL_MAX_PORTALS legs in all), the bridge keeps a leg to each (the options'
 * expansion: portal_names), else the one leg to the name, dialled as given. */
#define VREV__NAMES_EVERY_MS 30000
/* Remember the options given (copied) and the names in them. 0 or VREV_ERR_NOMEM. */
int vrev__bridge_names_new(vrev_bridge *b, const vrev_tunnel_opts *o);
/* Resolve now and from then on (vrev_bridge_start). */
void vrev__bridge_names_start(vrev_bridge *b);
void vrev__bridge_names_free(vrev_bridge *b);
/* vrev_bridge_reload's rebuild (o checked): o expanded with the addresses known, replanned;
 * names new in o are resolved at once. */
int vrev__bridge_names_reload(vrev_bridge *b, const vrev_tunnel_opts *o, char *err, size_t len);
/* The name portal i of `o` is an address of (o->portal_names), or NULL. */
const char *vrev__tunnel_portal_name(const vrev_tunnel_opts *o, size_t i);
/* What leg i's events name: the portal as given, or "NAME:PORT (ADDRESS)" for an address of a
 * name (allocated on ctx; NULL: out of memory). */
char *vrev__tunnel_leg_name(vrev_ctx *ctx, const vrev_tunnel_opts *o, size_t i);
/* Tests: resolve every name now (answers from the hosts file come before this returns). */
void vrev__bridge_names_resolve_now(vrev_bridge *b);

#endif
