/* Router: V2Ray v4 "field" rules compiled once, matched without allocation (WIRE-SPEC §7).
 *
 * A rule matches when every condition it has matches (AND across fields) and a condition
 * matches when any of its values does (OR within a field). Rules are tried in order; the
 * first match wins; no match picks the default outbound (index 0 = the first outbound).
 *
 * The config layer fills struct vrev__rule_spec from JSON; the router keeps its own copies of
 * everything, so the spec may be freed after vrev__router_add_rule() returns.
 */
#ifndef VREV_ROUTE_ROUTER_H
#define VREV_ROUTE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "codec/addr.h"
#include "core/core.h"

/* Network bits for rule specs and match contexts. */
#define VREV_ROUTE_TCP 0x1
#define VREV_ROUTE_UDP 0x2

/* A list of strings; n == 0 means "condition absent". */
struct vrev__strlist {
    const char *const *v;
    size_t n;
};

struct vrev__rule_spec {
    struct vrev__strlist domains;      /* "full:x", "domain:x", "regexp:x", "keyword:x", plain */
    struct vrev__strlist ips;          /* CIDR or bare IP, v4/v6 */
    const char *ports;                 /* "80", "1000-2000", "53,443,1000-2000"; NULL absent */
    const char *source_ports;          /* same syntax; NULL absent */
    unsigned networks;                 /* VREV_ROUTE_* bits; 0 absent */
    struct vrev__strlist sources;      /* CIDR or bare IP of the connection's source */
    struct vrev__strlist users;        /* exact user emails */
    struct vrev__strlist inbound_tags; /* exact inbound tags */
    struct vrev__strlist protocols;    /* sniffed protocol, prefix match */
    const char *outbound_tag;          /* exactly one of outbound_tag / balancer_tag */
    const char *balancer_tag;
};

/* What a connection looks like to the router. Any pointer may be NULL (unknown). */
struct vrev__route_ctx {
    const char *inbound_tag;
    unsigned network;                /* VREV_ROUTE_TCP or VREV_ROUTE_UDP */
    const struct vrev__addr *target; /* domain or IP, with port */
    const struct vrev__addr *source; /* IP with port */
    const char *user;
    const char *protocol;
};

struct vrev__router;

int vrev__router_new(vrev_ctx *ctx, struct vrev__router **out);
void vrev__router_free(struct vrev__router *r);

/* Add a rule. On a bad rule returns VREV_ERR_INVAL (or VREV_ERR_UNSUPPORTED for geoip:,
 * geosite:, ext: and similar) and writes a message naming the bad value into err. */
int vrev__router_add_rule(struct vrev__router *r, const struct vrev__rule_spec *spec, char *err,
                          size_t err_len);

/* A balancer: candidates are the outbound tags starting with any selector (random pick). */
int vrev__router_add_balancer(struct vrev__router *r, const char *tag,
                              const struct vrev__strlist *selectors, char *err, size_t err_len);

/* Resolve tags against the outbound list (index = position). A rule naming an unknown tag
 * falls back to the default outbound with a warning logged through the ctx, as V2Ray does;
 * an unknown balancer tag is an error. Call once, after all rules and balancers. */
int vrev__router_finish(struct vrev__router *r, const struct vrev__strlist *outbound_tags,
                        char *err, size_t err_len);

/* The outbound index for a connection. `random` picks among balancer candidates. Never
 * allocates; returns 0 (the default outbound) when no rule matches. */
size_t vrev__router_pick(const struct vrev__router *r, const struct vrev__route_ctx *c,
                         uint32_t random);

#endif
