/* Resolving a link's domain target through the engine's non-blocking resolver (the hosts file,
 * then the name servers of resolv.conf), for freedom's UseIP* strategies and UDP targets.
 * While a name is being resolved the engine owns the link: stopping the engine closes the
 * link at once; the query's record stays until its answer (or the resolver's "shut down", when
 * the engine frees it) comes from the loop. It is not cancelled: libevent 2.1 delivers a
 * cancellation later, from the loop, through the resolver, which may be gone by then. */
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "crypto/crypto.h"
#include "proxy.h"

#define LOG_COMPONENT "dns"

struct resolving {
    struct vrev__conn conn;      /* first */
    struct vrev__engine *engine; /* not once stopped: it may be gone (a bridge freed) */
    vrev_ctx *ctx;
    struct bufferevent *link;
    struct vrev__addr target;
    int family;
    uint64_t conn_id; /* the link's, for the line */
    bool calling;     /* inside evdns_getaddrinfo: an answer from the hosts file waits for it */
    bool answered;    /* the answer below is set */
    bool stopped;     /* the engine stopped meanwhile: the link is closed, nobody is told */
    int err;
    struct vrev__addr ip;
    vrev__link_resolved_fn cb;
    void *user;
};

static bool usable(const struct evutil_addrinfo *ai, int family)
{
    return (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
           (family == AF_UNSPEC || ai->ai_family == family);
}

/* One of the answers of `family`, picked at random (as V2Ray does), with the target's port. */
static int pick(const struct evutil_addrinfo *res, int family, uint16_t port,
                struct vrev__addr *out)
{
    unsigned n = 0, r = 0;
    for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
        n += usable(ai, family);
    if (n == 0)
        return VREV_ERR_RESOLVE;
    if (n > 1 && vrev__random_bytes((uint8_t *)&r, sizeof(r)) < 0)
        r = 0;
    r %= n;
    for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
        if (usable(ai, family) && r-- == 0) {
            vrev__addr_from_sockaddr(out, ai->ai_addr);
            out->port = port;
            return 0;
        }
    return VREV_ERR_RESOLVE;
}

/* Hand the link back: the address picked, or the target itself with the error. */
static void finish(struct resolving *q)
{
    struct vrev__engine *e = q->engine;
    if (q->err < 0) {
        char host[VREV_ADDR_DOMAIN_MAX + 1];
        vrev__addr_host_text(&q->target, host, sizeof(host));
        vrev__log(e->ctx, VREV_LOG_INFO, LOG_COMPONENT, VREV__CONN_FMT "%s: not resolved%s",
                  VREV__CONN_ARG(q->conn_id), host,
                  q->family == AF_INET    ? " to an IPv4 address"
                  : q->family == AF_INET6 ? " to an IPv6 address"
                                          : "");
    }
    vrev__engine_untrack(e, &q->conn);
    struct bufferevent *link = q->link;
    vrev__link_resolved_fn cb = q->cb;
    void *user = q->user;
    int err = q->err;
    struct vrev__addr addr = err < 0 ? q->target : q->ip;
    vrev__free(e->ctx, q);
    cb(link, &addr, err, user);
}

static void answered(int result, struct evutil_addrinfo *res, void *arg)
{
    struct resolving *q = arg;
    q->err = result == 0 ? pick(res, q->family, q->target.port, &q->ip) : VREV_ERR_RESOLVE;
    if (res)
        evutil_freeaddrinfo(res);
    if (q->stopped) {
        vrev__free(q->ctx, q); /* the answer "shut down" comes from the loop, later */
        return;
    }
    q->answered = true;
    if (!q->calling)
        finish(q);
}

static void resolve_close(struct vrev__conn *c)
{
    struct resolving *q = (struct resolving *)c;
    vrev__bev_close(q->link, 1);
    q->link = NULL;
    q->stopped = true; /* answered() frees it */
}

/* Send the query for `host`'s addresses of `family`; true if its answer came before this
 * returns (from the hosts file, or a failure at once): *calling is set meanwhile, for the
 * callback to leave the rest to the caller. */
static bool ask(struct evdns_base *dns, const char *host, int family, evdns_getaddrinfo_cb cb,
                void *q, bool *calling, const bool *answered)
{
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM; /* one answer per address */
    *calling = true;
    evdns_getaddrinfo(dns, host, NULL, &hints, cb, q);
    *calling = false;
    return *answered;
}

int vrev__engine_resolve_for(struct vrev__engine *e, struct bufferevent *link,
                             const struct vrev__addr *target, int family, uint64_t conn_id,
                             vrev__link_resolved_fn done, void *user)
{
    struct evdns_base *dns = vrev__engine_dns(e);
    struct resolving *q = dns ? vrev__calloc(e->ctx, 1, sizeof(*q)) : NULL;
    char host[VREV_ADDR_DOMAIN_MAX + 1];
    if (!q || target->type != VREV_ADDR_DOMAIN ||
        vrev__addr_host_text(target, host, sizeof(host)) < 0) {
        vrev__free(e->ctx, q);
        vrev__bev_close(link, 1);
        return !dns ? VREV_ERR_RESOLVE : q ? VREV_ERR_INVAL : VREV_ERR_NOMEM;
    }
    q->engine = e;
    q->ctx = e->ctx;
    q->link = link;
    q->target = *target;
    q->family = family;
    q->conn_id = conn_id;
    q->cb = done;
    q->user = user;
    vrev__engine_track(e, &q->conn, resolve_close);
    if (ask(dns, host, family, answered, q, &q->calling, &q->answered))
        finish(q);
    return 0;
}

/* --- every address of a name (a bridge's portal given by name) --- */

struct vrev__resolve_all {
    vrev_ctx *ctx;
    uint16_t port;
    size_t max;
    bool calling, answered;
    int err;
    struct vrev__addr *addrs; /* up to max */
    size_t n;
    vrev__resolved_all_fn done; /* NULL: cancelled (the answer frees the record) */
    void *user;
};

static void all_finish(struct vrev__resolve_all *q)
{
    vrev__resolved_all_fn done = q->done;
    if (done)
        done(q->addrs, q->n, q->err, q->user);
    vrev__free(q->ctx, q->addrs);
    vrev__free(q->ctx, q);
}

static void all_answered(int result, struct evutil_addrinfo *res, void *arg)
{
    struct vrev__resolve_all *q = arg;
    for (const struct evutil_addrinfo *ai = result == 0 ? res : NULL; ai && q->n < q->max;
         ai = ai->ai_next) {
        struct vrev__addr a;
        memset(&a, 0, sizeof(a));
        if (!usable(ai, AF_UNSPEC))
            continue;
        vrev__addr_from_sockaddr(&a, ai->ai_addr);
        a.port = q->port;
        bool seen = false;
        for (size_t i = 0; i < q->n; i++)
            seen = seen || vrev__addr_equal(&q->addrs[i], &a);
        if (!seen)
            q->addrs[q->n++] = a;
    }
    q->err = q->n ? 0 : VREV_ERR_RESOLVE;
    if (res)
        evutil_freeaddrinfo(res);
    q->answered = true;
    if (!q->calling)
        all_finish(q);
}

int vrev__engine_resolve_all(struct vrev__engine *e, const char *host, uint16_t port, size_t max,
                             vrev__resolved_all_fn done, void *user, struct vrev__resolve_all **out)
{
    struct evdns_base *dns = vrev__engine_dns(e);
    struct vrev__resolve_all *q = dns ? vrev__calloc(e->ctx, 1, sizeof(*q)) : NULL;
    *out = NULL;
    if (q && !(q->addrs = vrev__calloc(e->ctx, max ? max : 1, sizeof(*q->addrs)))) {
        vrev__free(e->ctx, q);
        q = NULL;
    }
    if (!q)
        return dns ? VREV_ERR_NOMEM : VREV_ERR_RESOLVE;
    *q = (struct vrev__resolve_all){
        .ctx = e->ctx, .port = port, .max = max, .addrs = q->addrs, .done = done, .user = user};
    if (ask(dns, host, AF_UNSPEC, all_answered, q, &q->calling, &q->answered))
        all_finish(q);
    else
        *out = q;
    return 0;
}

void vrev__resolve_all_cancel(struct vrev__resolve_all *q)
{
    if (q)
        q->done = NULL;
}
