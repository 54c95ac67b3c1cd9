/* Reverse proxy (WIRE-SPEC §3): the portal is an outbound that turns links addressed to its
 * domain into tunnels and carries every other link as a session over one of them; the bridge
 * keeps tunnels open to the portal through its own dispatcher and hands the sessions the
 * portal opens to that dispatcher. Both are wire-compatible with V2Ray 4.34. */
#ifndef VREV_REVERSE_REVERSE_H
#define VREV_REVERSE_REVERSE_H

#include "proxy/proxy.h"
#include "reverse/muxconn.h"

/* The internal control domain of V2Ray <= 4.34 (a portal's default), of v2fly >= 4.35 and
 * Xray >= 1.5.4, and of Xray 1.0-1.5.3. A bridge accepts all three. */
#define VREV_CONTROL_DOMAIN_V2RAY "reverse.internal.v2ray.com"
#define VREV_CONTROL_DOMAIN_V2FLY "reverse.internal.v2fly.org"
#define VREV_CONTROL_DOMAIN_XRAY "reverse.internal.example.com"

struct vrev__portal_opts {
    const char *domain;         /* required */
    const char *control_domain; /* NULL: VREV_CONTROL_DOMAIN_V2RAY */
    uint32_t heartbeat_ms;      /* 0: 2000 */
    uint32_t drain_after;       /* lifetime sessions before DRAIN; 0: 256 */
    /* A tunnel whose bytes (heartbeats at least) stay unacknowledged this long, or that the
     * bridge stops reading for this long, is closed (TCP_USER_TIMEOUT on its socket); 0: 10000.
     * V2Ray's portal keeps retrying such a tunnel for about 15 minutes, handing it sessions. */
    uint32_t dead_after_ms;
    /* Live sessions one tunnel may carry, its control session included; a full tunnel is
     * drained at once (the bridge opens another). 0: 65535, every id Mux.Cool has (V2Ray's
     * portal has no cap). */
    unsigned max_sessions;
    /* A link that finds no usable tunnel (none up, or all draining or full) waits this long for
     * one, then is refused. 0: 5000 (a V2Ray bridge replaces a drained tunnel at its next 2 s
     * tick, after dialling and its handshake). */
    uint32_t wait_ms;
};

struct vrev__portal_stats {
    uint64_t tunnels_opened;
    uint64_t tunnels_closed;
    uint64_t sessions;     /* sessions opened for user links */
    uint64_t no_tunnel;    /* user links refused: no usable tunnel within wait_ms */
    uint64_t waited;       /* user links that had to wait for a tunnel */
    unsigned tunnels_live; /* tunnels currently open (draining included) */
    uint64_t bytes_up;     /* public clients -> bridge */
    uint64_t bytes_down;   /* bridge -> public clients */
    unsigned sessions_active;
    struct vrev__muxconn_stats mux; /* over every tunnel, closed ones included */
};

int vrev__portal_new(struct vrev__engine *e, const char *tag, const struct vrev__portal_opts *opts,
                     struct vrev__outbound **out);
void vrev__portal_get_stats(const struct vrev__outbound *portal, struct vrev__portal_stats *st);

struct vrev__bridge_opts {
    const char *domain;           /* required */
    uint32_t monitor_ms;          /* 0: 2000 (V2Ray's worker check period) */
    unsigned sessions_per_tunnel; /* open another tunnel above this average; 0: 16 */
    uint32_t dead_after_ms;       /* nothing heard for this long: tunnel dead; 0: 7000 */
    /* A tunnel that was up is redialled at once when it is lost; failed dials after that wait
     * a jittered delay from backoff_min_ms doubling up to backoff_max_ms; after a minute of
     * failures, up to 2 s (V2Ray's own period). */
    uint32_t backoff_min_ms; /* 0: 25 */
    uint32_t backoff_max_ms; /* 0: 100 */
    /* Live sessions one tunnel accepts, its control session included (beyond: End|Error);
     * with every tunnel full, another is opened at once. 0: 65535 (Mux.Cool's ids). */
    unsigned max_sessions;
    /* If set (n_allowed_targets > 0), the only targets sessions may reach; others are
     * refused with End|Error, counted (refused) and logged. Each entry is a string
     *     [tcp:|udp:]HOST:PORT     (no prefix: tcp)
     * read by vrev__bridge_target_parse(): HOST is an IPv4 literal, an IPv6 literal in
     * brackets or a name (a target name such as "default", with port 0, is a name). A
     * session matches an entry when its network is the entry's and its target, as the mux
     * codec reads it, is the same address: same type, same bytes, same port. Nothing is
     * resolved or normalised beyond the codec's own reading (an IP literal sent as a domain
     * and an IPv4-mapped IPv6 address are the IPv4 address, as in V2Ray): "localhost",
     * "127.1", "0x7f.1" or "2130706433" are names, never 127.0.0.1. The strings are copied.
     * n_allowed_targets 0: route everything. */
    const char *const *allowed_targets;
    size_t n_allowed_targets;
};

struct vrev__bridge_stats {
    uint64_t tunnels_opened;   /* dialled */
    uint64_t tunnels_closed;   /* dialled and gone, whether they came up or not */
    uint64_t tunnels_up_total; /* came up: the portal was heard (VREV_EVENT_TUNNEL_UP) */
    unsigned tunnels_up;       /* up now: heard and not closed (what readiness counts) */
    uint64_t tunnels_dead;     /* closed for missed heartbeats */
    uint64_t sessions;
    uint64_t refused;        /* sessions to targets outside allowed_targets */
    uint64_t dials_refused;  /* sessions refused: limits.dials_per_tunnel dials in progress */
    uint64_t tunnels_capped; /* tunnels wanted but not opened: limits.tunnels_per_bridge */
    uint64_t drains;         /* DRAIN messages received */
    unsigned tunnels_active;
    uint64_t bytes_up;   /* portal -> local services */
    uint64_t bytes_down; /* local services -> portal */
    unsigned sessions_active;
    struct vrev__muxconn_stats mux; /* over every tunnel, closed ones included */
};

struct vrev__bridge;
int vrev__bridge_new(struct vrev__engine *e, const char *tag, const struct vrev__bridge_opts *opts,
                     struct vrev__bridge **out);
/* Start the monitor (the first tunnel is dialled at once). */
int vrev__bridge_start(struct vrev__bridge *b);
void vrev__bridge_free(struct vrev__bridge *b);
void vrev__bridge_get_stats(const struct vrev__bridge *b, struct vrev__bridge_stats *st);
const char *vrev__bridge_tag(const struct vrev__bridge *b); /* may be NULL */
/* The socket under the stream of the bridge's newest tunnel whose mux runs (found through its
 * layers: vrev__bev_tcp_fd), or -1: none, or a stream with no socket of its own below it.
 * Borrowed; for diagnostics and tests. */
evutil_socket_t vrev__bridge_tunnel_fd(const struct vrev__bridge *b);
/* Reload (lib/instance). Move `from`'s tunnels, with their live sessions, its counters and
 * its event hook to `to` (a new bridge of the same domain, not started: start it after);
 * `from` is left without tunnels, to be freed. */
void vrev__bridge_adopt(struct vrev__bridge *to, struct vrev__bridge *from);
/* The way to the portal changed (its outbound): open new tunnels now, and close the old ones
 * once they carry no session (they serve the ones they have until then). */
void vrev__bridge_retire_tunnels(struct vrev__bridge *b);
/* The portal is gone (an address a name no longer resolves to): dial no more tunnels, close
 * each once it carries no session; idle: none left (then free it). */
void vrev__bridge_wind_down(struct vrev__bridge *b);
bool vrev__bridge_idle(const struct vrev__bridge *b);

/* Events for the public API (VREV_EVENT_*): tunnels up/down, sessions opened/closed (with the
 * target name and bytes: up = public client -> service, down = service -> client), refused. */
typedef void (*vrev__reverse_notify_fn)(int event, const char *name, uint64_t up, uint64_t down,
                                        void *user);
void vrev__portal_set_notify(struct vrev__outbound *portal, vrev__reverse_notify_fn fn, void *user);
void vrev__bridge_set_notify(struct vrev__bridge *b, vrev__reverse_notify_fn fn, void *user);

/* Read one allowed target, "[tcp:|udp:]HOST:PORT" (see struct vrev__bridge_opts): *network
 * gets VREV_NET_TCP or VREV_NET_UDP, *a the address. A "tcp:" or "udp:" prefix is always a
 * prefix (a host named "tcp" is written "tcp:tcp:80"). Returns 0 or VREV_ERR_ADDR_*. */
int vrev__bridge_target_parse(const char *text, int *network, struct vrev__addr *a);

/* Is `host` one of the internal control domains? */
bool vrev__is_control_domain(const char *host, size_t len);

#endif
