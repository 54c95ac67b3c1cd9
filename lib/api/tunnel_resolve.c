/* A bridge's portals given by host name: each name resolved (at start, every
 * VREV__NAMES_EVERY_MS, and soon after one of its legs lost its tunnels), and a leg kept to each
 * of its addresses. The legs come from the options given, "expanded": a name with several
 * addresses becomes one portal per address, each with the name (portal_names) for TLS and the
 * ws Host; the running legs are rebuilt with the reload's machinery (vrev__bridge_replan), which
 * keeps the tunnels of the legs whose way did not change. A name that does not resolve keeps the
 * addresses known (or its one leg dialled by name) and is retried with a backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeval.h"
#include "net/net.h" /* the loop's timers */
#include "tunnel_internal.h"

#define LOG_COMPONENT "bridge"
#define TICK_MS 1000
#define DOWN_RETRY_MS 5000 /* a leg without tunnel: its name resolved again after this */
#define BACKOFF_MIN_MS 1000

struct name_entry {
    vrev_bridge *b;
    char *given; /* "HOST:PORT" as given */
    char host[VREV_ADDR_DOMAIN_MAX + 1];
    uint16_t port;
    struct vrev__addr addrs[VREV_TUNNEL_MAX_PORTALS]; /* the last answer, sorted */
    size_t n_addrs;
    struct vrev__resolve_all *query; /* out */
    uint64_t last_ms, next_ms;       /* the last query sent; the next one due */
    uint32_t backoff_ms;             /* after a failure */
    bool failing;                    /* the failure is logged */
};

struct vrev__portal_names {
    vrev_tunnel_opts *given; /* the options given (a copy) */
    struct name_entry **v;   /* one per portal given by name */
    size_t n;
    struct event *tick;
    bool capped; /* the VREV_TUNNEL_MAX_PORTALS cap was logged */
};

static uint64_t now_ms(vrev_ctx *ctx)
{
    struct timeval tv;
    event_base_gettimeofday_cached(ctx->base, &tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void entry_free(vrev_ctx *ctx, struct name_entry *e)
{
    if (!e)
        return;
    vrev__resolve_all_cancel(e->query);
    vrev__free(ctx, e->given);
    vrev__free(ctx, e);
}

/* The entries of `ns`, without the options: those not in keep[0..n_keep) are freed. */
static void entries_free(vrev_ctx *ctx, struct vrev__portal_names *ns, struct name_entry **keep,
                         size_t n_keep)
{
    for (size_t i = 0; i < ns->n; i++) {
        bool kept = false;
        for (size_t j = 0; j < n_keep; j++)
            kept = kept || keep[j] == ns->v[i];
        if (!kept)
            entry_free(ctx, ns->v[i]);
    }
    vrev__free(ctx, ns->v);
    ns->v = NULL;
    ns->n = 0;
}

static struct name_entry *find(const struct vrev__portal_names *ns, const char *given)
{
    for (size_t i = 0; ns && i < ns->n; i++)
        if (!strcmp(ns->v[i]->given, given))
            return ns->v[i];
    return NULL;
}

/* --- the options expanded ------------------------------------------------------------------ */

const char *vrev__tunnel_portal_name(const vrev_tunnel_opts *o, size_t i)
{
    return o->portal_names ? o->portal_names[i] : NULL;
}

char *vrev__tunnel_leg_name(vrev_ctx *ctx, const vrev_tunnel_opts *o, size_t i)
{
    const char *name = vrev__tunnel_portal_name(o, i);
    if (!name)
        return vrev__strdup(ctx, o->portals[i]);
    struct vrev__addr a;
    char host[VREV_MUX_TARGET_MAX];
    vrev__addr_from_hostport(&a, o->portals[i]);
    vrev__addr_host_text(&a, host, sizeof(host));
    size_t n = strlen(name) + strlen(host) + 12;
    char *s = vrev__malloc(ctx, n);
    if (s)
        snprintf(s, n, "%s:%u (%s)", name, (unsigned)a.port, host);
    return s;
}

/* Portal i given of `ns` as legs: the portal as given, or an address of its name each. Fills
 * p/nm from *k, leaving room for the portals after it. */
static int expand_one(struct vrev__portal_names *ns, vrev_ctx *ctx, size_t i, char **p, char **nm,
                      size_t *k)
{
    const vrev_tunnel_opts *g = ns->given;
    struct name_entry *e = find(ns, g->portals[i]);
    size_t room = VREV_TUNNEL_MAX_PORTALS - *k - (g->n_portals - i - 1);
    size_t n = e ? e->n_addrs : 0;
    if (n > room) {
        if (!ns->capped)
            vrev__log(ctx, VREV_LOG_WARN, LOG_COMPONENT,
                      "portal %s: %zu addresses, tunnels to the first %zu only (at most %d "
                      "portals in all)",
                      e->given, n, room, VREV_TUNNEL_MAX_PORTALS);
        ns->capped = true;
        n = room;
    }
    if (n < 2) /* one address (or none known): the name itself, dialled as given */
        return (p[(*k)++] = vrev__strdup(ctx, g->portals[i])) ? 0 : VREV_ERR_NOMEM;
    for (size_t j = 0; j < n; j++, (*k)++) {
        char t[VREV_MUX_TARGET_MAX];
        vrev__addr_target_text(&e->addrs[j], t, sizeof(t));
        if (!(p[*k] = vrev__strdup(ctx, t)) || !(nm[*k] = vrev__strdup(ctx, e->host)))
            return VREV_ERR_NOMEM;
    }
    return 0;
}

/* The options given, each name with several addresses as one portal per address. */
static vrev_tunnel_opts *expand(struct vrev__portal_names *ns, vrev_ctx *ctx)
{
    char *p[VREV_TUNNEL_MAX_PORTALS] = {0}, *nm[VREV_TUNNEL_MAX_PORTALS] = {0};
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ns->given->n_portals; i++)
        rc = expand_one(ns, ctx, i, p, nm, &k);
    vrev_tunnel_opts *x = rc == 0 ? vrev__tunnel_opts_copy(ns->given, ctx) : NULL;
    if (x && vrev__tunnel_opts_set_portals(x, p, nm, k) < 0) {
        vrev_tunnel_opts_free(x);
        x = NULL;
    }
    for (size_t i = 0; i < VREV_TUNNEL_MAX_PORTALS; i++) {
        vrev__free(ctx, p[i]);
        vrev__free(ctx, nm[i]);
    }
    return x;
}

static bool same_legs(const vrev_bridge *b, const vrev_tunnel_opts *x)
{
    if (b->n_legs != x->n_portals)
        return false;
    for (size_t i = 0; i < b->n_legs; i++) {
        uint8_t key[32];
        vrev__tunnel_key(x, 0, i, key);
        if (memcmp(key, b->legs[i]->key, 32))
            return false;
    }
    return true;
}

/* The legs for the addresses now known: rebuilt if they changed. */
static void apply(vrev_bridge *b)
{
    vrev_tunnel_opts *x = expand(b->names, b->ctx);
    char err[256] = "";
    int rc = x ? 0 : VREV_ERR_NOMEM;
    if (x && !same_legs(b, x))
        rc = vrev__bridge_replan(b, x, true, err, sizeof(err));
    if (rc < 0)
        vrev__log(b->ctx, VREV_LOG_ERROR, LOG_COMPONENT,
                  "the tunnels to the portals' new addresses are not set up (the running ones "
                  "stay): %s",
                  err[0] ? err : vrev_strerror(rc));
    vrev_tunnel_opts_free(x);
}

/* --- resolving ----------------------------------------------------------------------------- */

static int addr_cmp(const void *a, const void *b)
{
    const struct vrev__addr *x = a, *y = b;
    return x->type != y->type ? (int)x->type - (int)y->type
                              : memcmp(x->host, y->host, x->len < y->len ? x->len : y->len);
}

static void addrs_text(const struct name_entry *e, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < e->n_addrs && used + 2 < cap; i++) {
        char h[VREV_MUX_TARGET_MAX];
        vrev__addr_host_text(&e->addrs[i], h, sizeof(h));
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", h);
        used += w > 0 ? (size_t)w : 0;
    }
}

static void failed(struct name_entry *e, int err)
{
    vrev_ctx *ctx = e->b->ctx;
    e->backoff_ms = e->backoff_ms ? e->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (e->backoff_ms > VREV__NAMES_EVERY_MS)
        e->backoff_ms = VREV__NAMES_EVERY_MS;
    e->next_ms = now_ms(ctx) + e->backoff_ms;
    if (!e->failing)
        vrev__log(ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  "portal %s: the name does not resolve (%s): %s; trying again (every %u s at "
                  "most)",
                  e->given, vrev_strerror(err),
                  e->n_addrs ? "its tunnels stay to the addresses it had"
                             : "its tunnels dial the name as given",
                  VREV__NAMES_EVERY_MS / 1000);
    e->failing = true;
}

static void answered(const struct vrev__addr *addrs, size_t n, int err, void *user)
{
    struct name_entry *e = user;
    vrev_bridge *b = e->b;
    e->query = NULL;
    if (err < 0) {
        failed(e, err);
        return;
    }
    struct vrev__addr got[VREV_TUNNEL_MAX_PORTALS];
    memcpy(got, addrs, n * sizeof(*got));
    qsort(got, n, sizeof(*got), addr_cmp);
    if (e->failing)
        vrev__log(b->ctx, VREV_LOG_INFO, LOG_COMPONENT, "portal %s: the name resolves again",
                  e->given);
    e->failing = false;
    e->backoff_ms = 0;
    e->next_ms = now_ms(b->ctx) + VREV__NAMES_EVERY_MS;
    bool same = n == e->n_addrs;
    for (size_t i = 0; same && i < n; i++)
        same = vrev__addr_equal(&got[i], &e->addrs[i]);
    if (same)
        return;
    memcpy(e->addrs, got, n * sizeof(*got));
    e->n_addrs = n;
    char list[512];
    addrs_text(e, list, sizeof(list));
    vrev__log(b->ctx, VREV_LOG_INFO, LOG_COMPONENT, "portal %s: %zu address%s (%s)%s", e->given, n,
              n == 1 ? "" : "es", list, n > 1 ? ": a tunnel set to each" : "");
    apply(b);
}

static void resolve(struct name_entry *e)
{
    if (e->query)
        return;
    e->last_ms = now_ms(e->b->ctx);
    int rc = vrev__engine_resolve_all(&e->b->engine, e->host, e->port, VREV_TUNNEL_MAX_PORTALS,
                                      answered, e, &e->query);
    if (rc < 0)
        failed(e, rc);
}

/* Does a leg of this name have no live tunnel? */
static bool name_down(const vrev_bridge *b, const struct name_entry *e)
{
    char prefix[VREV_ADDR_DOMAIN_MAX + 16];
    snprintf(prefix, sizeof(prefix), "%s:%u (", e->host, (unsigned)e->port);
    size_t n = strlen(prefix);
    for (size_t i = 0; i < b->n_legs; i++) {
        const char *p = b->legs[i]->portal;
        struct vrev__bridge_stats st;
        if (strcmp(p, e->given) && strncmp(p, prefix, n) != 0)
            continue;
        vrev__bridge_get_stats(b->legs[i]->bridge, &st);
        if (st.tunnels_active == 0)
            return true;
    }
    return false;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    vrev_bridge *b = arg;
    struct vrev__portal_names *ns = b->names;
    uint64_t now = now_ms(b->ctx);
    for (size_t i = 0; i < b->n_retiring;)
        if (vrev__bridge_idle(b->retiring[i]->bridge)) {
            vrev__tunnel_leg_free_retired(b, b->retiring[i]);
            b->retiring[i] = b->retiring[--b->n_retiring];
        } else {
            i++;
        }
    for (size_t i = 0; i < ns->n; i++) {
        struct name_entry *e = ns->v[i];
        bool soon = !e->failing && now >= e->last_ms + DOWN_RETRY_MS; /* else: the backoff */
        if (now >= e->next_ms || (soon && name_down(b, e)))
            resolve(e); /* may rebuild the legs (apply), not the names */
    }
    struct timeval tv = vrev__ms_to_tv(TICK_MS);
    evtimer_add(ns->tick, &tv);
}

/* --- the set of names ---------------------------------------------------------------------- */

static struct name_entry *entry_new(vrev_bridge *b, const char *given, const struct vrev__addr *a)
{
    struct name_entry *e = vrev__calloc(b->ctx, 1, sizeof(*e));
    if (!e || !(e->given = vrev__strdup(b->ctx, given))) {
        vrev__free(b->ctx, e);
        return NULL;
    }
    e->b = b;
    vrev__addr_host_text(a, e->host, sizeof(e->host));
    e->port = a->port;
    return e;
}

/* The names of `o`: the entries of `old` for the same portal, new ones (fresh, resolved as
 * soon as the set is in use) for the others. */
static int names_build(vrev_bridge *b, const vrev_tunnel_opts *o, struct vrev__portal_names *ns,
                       const struct vrev__portal_names *old)
{
    memset(ns, 0, sizeof(*ns));
    if (!(ns->given = vrev__tunnel_opts_copy(o, b->ctx)) ||
        !(ns->v = vrev__calloc(b->ctx, o->n_portals + 1, sizeof(*ns->v))))
        return VREV_ERR_NOMEM;
    for (size_t i = 0; i < o->n_portals; i++) {
        struct vrev__addr a;
        if (vrev__addr_from_hostport(&a, o->portals[i]) < 0 || a.type != VREV_ADDR_DOMAIN)
            continue; /* an IP address: dialled as it is */
        struct name_entry *e = find(old, o->portals[i]);
        if (!e && !(e = entry_new(b, o->portals[i], &a)))
            return VREV_ERR_NOMEM;
        ns->v[ns->n++] = e;
    }
    ns->capped = old && old->capped;
    return 0;
}

static void names_discard(vrev_bridge *b, struct vrev__portal_names *ns,
                          const struct vrev__portal_names *old)
{
    struct vrev__portal_names keep = old ? *old : (struct vrev__portal_names){0};
    entries_free(b->ctx, ns, keep.v, keep.n);
    vrev_tunnel_opts_free(ns->given);
    ns->given = NULL;
}

/* Resolve the names not resolved yet (a hosts-file answer applies before this returns). */
static void resolve_new(vrev_bridge *b)
{
    for (size_t i = 0; b->names && i < b->names->n; i++)
        if (!b->names->v[i]->last_ms)
            resolve(b->names->v[i]);
}

int vrev__bridge_names_new(vrev_bridge *b, const vrev_tunnel_opts *o)
{
    struct vrev__portal_names *ns = vrev__calloc(b->ctx, 1, sizeof(*ns));
    int rc = ns ? names_build(b, o, ns, NULL) : VREV_ERR_NOMEM;
    if (rc == 0 && !(ns->tick = evtimer_new(b->ctx->base, on_tick, b)))
        rc = VREV_ERR_NOMEM;
    if (rc < 0) {
        if (ns)
            names_discard(b, ns, NULL);
        vrev__free(b->ctx, ns);
        return rc;
    }
    b->names = ns;
    resolve_new(b);
    return 0;
}

void vrev__bridge_names_start(vrev_bridge *b)
{
    struct timeval tv = vrev__ms_to_tv(TICK_MS);
    if (b->names && b->names->n)
        evtimer_add(b->names->tick, &tv);
}

void vrev__bridge_names_free(vrev_bridge *b)
{
    struct vrev__portal_names *ns = b->names;
    if (!ns)
        return;
    names_discard(b, ns, NULL);
    event_free(ns->tick);
    vrev__free(b->ctx, ns);
    b->names = NULL;
}

int vrev__bridge_names_reload(vrev_bridge *b, const vrev_tunnel_opts *o, char *err, size_t len)
{
    struct vrev__portal_names ns;
    int rc = names_build(b, o, &ns, b->names);
    vrev_tunnel_opts *x = NULL;
    if (rc == 0)
        rc = (x = expand(&ns, b->ctx)) ? 0 : VREV_ERR_NOMEM;
    if (rc == 0)
        rc = vrev__bridge_replan(b, x, false, err, len);
    else
        vrev__tunnel_fail(err, len, rc, NULL);
    vrev_tunnel_opts_free(x);
    if (rc < 0) {
        names_discard(b, &ns, b->names);
        return rc;
    }
    struct vrev__portal_names *cur = b->names;
    entries_free(b->ctx, cur, ns.v, ns.n); /* the entries of names gone */
    vrev_tunnel_opts_free(cur->given);
    ns.tick = cur->tick;
    *cur = ns;
    if (cur->n && b->started && !evtimer_pending(cur->tick, NULL))
        vrev__bridge_names_start(b);
    resolve_new(b);
    return 0;
}

void vrev__bridge_names_resolve_now(vrev_bridge *b)
{
    for (size_t i = 0; b->names && i < b->names->n; i++) {
        b->names->v[i]->next_ms = 0;
        resolve(b->names->v[i]);
    }
}
