/* Reloading a running portal or bridge (vrev_portal_reload, vrev_bridge_reload): new objects
 * planned beside the running ones, then swapped in (tunnel.c and tunnel_bridge.c build them). */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "tunnel_internal.h"

/* Each option as its bytes with a length before it, so that no two lists hash alike. */
static void add(struct vrev__iov *v, size_t *n, uint32_t *lens, const void *p, size_t len)
{
    lens[*n / 2] = (uint32_t)len;
    v[*n] = (struct vrev__iov){&lens[*n / 2], sizeof(uint32_t)};
    v[*n + 1] = (struct vrev__iov){p, len};
    *n += 2;
}

static void add_str(struct vrev__iov *v, size_t *n, uint32_t *lens, const char *s)
{
    add(v, n, lens, s ? s : "", s ? strlen(s) + 1 : 0); /* NULL and "" differ */
}

void vrev__tunnel_key(const vrev_tunnel_opts *o, int portal, size_t i, uint8_t key[32])
{
    struct vrev__iov v[32];
    uint32_t lens[16];
    size_t n = 0;
    int flags[5] = {portal, o->tls, o->tls_insecure, o->carrier, o->accept_proxy};
    add(v, &n, lens, flags, sizeof(flags));
    add(v, &n, lens, o->uuid, sizeof(o->uuid));
    add_str(v, &n, lens, o->transport);
    add_str(v, &n, lens, o->carrier_path);
    add_str(v, &n, lens, o->carrier_host);
    if (portal) {
        add_str(v, &n, lens, o->listen);
        add_str(v, &n, lens, o->tls_cert);
        add_str(v, &n, lens, o->tls_key);
    } else {
        add(v, &n, lens, &o->security, sizeof(o->security));
        add_str(v, &n, lens, i < o->n_portals ? o->portals[i] : NULL);
        add_str(v, &n, lens, i < o->n_portals && o->portal_names ? o->portal_names[i] : NULL);
        add_str(v, &n, lens, o->tls_ca);
        add_str(v, &n, lens, o->tls_sni);
        add(v, &n, lens, o->tls_pins, o->n_tls_pins * sizeof(*o->tls_pins));
    }
    if (vrev__sha256(v, n, key) < 0)
        memset(key, 0, 32); /* never equal to a real hash: the reload rebuilds */
}

int vrev__tunnel_reload_check(const struct vrev__tunnel_reload *rs, const vrev_tunnel_opts *o,
                              char *err, size_t len)
{
    const char *what = strcmp(rs->domain, vrev__tunnel_domain(o)) ? "--domain"
                       : rs->heartbeat_ms != o->heartbeat_ms      ? "--heartbeat"
                       : rs->drain_after != o->drain_after        ? "the drain threshold"
                       : rs->dead_after_ms != o->dead_after_ms    ? "--dead-after"
                                                                  : NULL;
    if (!what)
        return 0;
    if (err && len)
        snprintf(err, len, "%s changed: that needs a restart", what);
    return VREV_ERR_UNSUPPORTED;
}

int vrev__tunnel_reserve_out(vrev_ctx *ctx, struct vrev__tunnel_reload *rs, size_t n)
{
    struct vrev__outbound **v =
        vrev__realloc(ctx, rs->retired_out, (rs->n_retired_out + n + 1) * sizeof(*v));
    if (!v)
        return VREV_ERR_NOMEM;
    rs->retired_out = v;
    return 0;
}

void vrev__tunnel_retire_out(struct vrev__tunnel_reload *rs, struct vrev__outbound *ob)
{
    rs->retired_out[rs->n_retired_out++] = ob;
}

void vrev__tunnel_reload_cleanup(struct vrev__engine *e, struct vrev__tunnel_reload *rs)
{
    vrev__retired_cleanup(&rs->retired_in);
    for (size_t i = 0; i < rs->n_retired_out; i++)
        rs->retired_out[i]->ops->destroy(rs->retired_out[i]);
    if (e->ctx) {
        vrev__free(e->ctx, rs->retired_out);
        vrev__free(e->ctx, rs->domain);
    }
    memset(rs, 0, sizeof(*rs));
}

/* --- vrev_portal_reload, vrev_bridge_reload
 * -------------------------------------------------------------------------------- */

static int reload_failed(vrev_ctx *ctx, struct vrev__tunnel_reload *rs, int rc, char *err,
                         size_t len)
{
    rs->failed++;
    if (err && len && !err[0])
        snprintf(err, len, "%s", vrev_strerror(rc));
    vrev__log(ctx, VREV_LOG_ERROR, "reload", "reload failed (the running options stay): %s",
              err && len ? err : vrev_strerror(rc));
    return rc;
}

/* A portal reload planned: new objects beside the running ones, nothing running touched. */
struct portal_plan {
    uint8_t key[32];
    struct vrev__inbound *tunnel; /* NULL: the old one stays */
    bool tunnel_adopt;
    char *listen;
    struct vrev__inbound **publics;
    char **keys;
    long *from; /* the old public kept (adopt false) or whose listener it takes; -1: none */
    bool *adopt;
    bool *old_kept;
    size_t n;
};

static void portal_discard(vrev_portal *p, struct portal_plan *pl)
{
    vrev_ctx *ctx = p->ctx;
    if (pl->tunnel && pl->tunnel_adopt)
        vrev__inbound_drop_adopted(pl->tunnel);
    else
        vrev__inbound_free(pl->tunnel);
    for (size_t i = 0; pl->publics && pl->from && pl->adopt && pl->keys && i < pl->n; i++) {
        if (pl->adopt[i])
            vrev__inbound_drop_adopted(pl->publics[i]);
        else if (pl->from[i] < 0)
            vrev__inbound_free(pl->publics[i]);
        vrev__free(ctx, pl->keys[i]);
    }
    vrev__free(ctx, pl->listen);
    vrev__free(ctx, pl->publics);
    vrev__free(ctx, pl->keys);
    vrev__free(ctx, pl->from);
    vrev__free(ctx, pl->adopt);
    vrev__free(ctx, pl->old_kept);
}

/* The old public listener for key "HOST:PORT=NAME": the same key (kept), else the same
 * HOST:PORT (its socket handed over). */
static long find_public(vrev_portal *p, struct portal_plan *pl, const char *key, bool *same)
{
    size_t hp = strrchr(key, '=') - key;
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < p->n_publics; j++)
            if (!pl->old_kept[j] && (pass ? !strncmp(p->public_keys[j], key, hp + 1)
                                          : !strcmp(p->public_keys[j], key))) {
                *same = !pass;
                return (long)j;
            }
    return -1;
}

static int plan_public(vrev_portal *p, const vrev_tunnel_opts *o, struct portal_plan *pl, size_t i,
                       char *err, size_t len)
{
    if (!(pl->keys[i] = vrev__portal_public_key(p->ctx, &o->publics[i])))
        return vrev__tunnel_fail(err, len, VREV_ERR_NOMEM, NULL);
    bool same = false;
    long j = find_public(p, pl, pl->keys[i], &same);
    pl->from[i] = j;
    if (j >= 0)
        pl->old_kept[j] = true;
    if (same) {
        pl->publics[i] = p->publics[j];
        return 0;
    }
    p->engine.adopt = j >= 0 ? p->publics[j]->listener : NULL;
    pl->adopt[i] = j >= 0;
    int rc = vrev__portal_make_public(p, o, i, &pl->publics[i], err, len);
    if (rc < 0)
        pl->adopt[i] = false, pl->from[i] = -1;
    return rc;
}

static int portal_plan(vrev_portal *p, const vrev_tunnel_opts *o, struct portal_plan *pl, char *err,
                       size_t len)
{
    vrev_ctx *ctx = p->ctx;
    memset(pl, 0, sizeof(*pl));
    pl->n = o->n_publics;
    vrev__tunnel_key(o, 1, 0, pl->key);
    pl->publics = vrev__calloc(ctx, pl->n, sizeof(*pl->publics));
    pl->keys = vrev__calloc(ctx, pl->n, sizeof(*pl->keys));
    pl->from = vrev__calloc(ctx, pl->n, sizeof(*pl->from));
    pl->adopt = vrev__calloc(ctx, pl->n, sizeof(*pl->adopt));
    pl->old_kept = vrev__calloc(ctx, p->n_publics, sizeof(*pl->old_kept));
    pl->listen = vrev__strdup(ctx, o->listen);
    if (!pl->publics || !pl->keys || !pl->from || !pl->adopt || !pl->old_kept || !pl->listen ||
        vrev__retired_reserve(&p->rs.retired_in, ctx, p->n_publics + 1) < 0)
        return vrev__tunnel_fail(err, len, VREV_ERR_NOMEM, NULL);
    int rc = 0;
    if (memcmp(pl->key, p->rs.tunnel_key, 32)) {
        pl->tunnel_adopt = !strcmp(p->listen, o->listen) && p->tunnel->listener;
        p->engine.adopt = pl->tunnel_adopt ? p->tunnel->listener : NULL;
        rc = vrev__portal_make_tunnel(p, o, &pl->tunnel, err, len);
    }
    for (size_t i = 0; rc == 0 && i < pl->n; i++)
        pl->from[i] = -1;
    for (size_t i = 0; rc == 0 && i < pl->n; i++)
        rc = plan_public(p, o, pl, i, err, len);
    return rc;
}

static void portal_commit(vrev_portal *p, const vrev_tunnel_opts *o, struct portal_plan *pl)
{
    unsigned kept = 0, moved = 0;
    bool renewed = pl->tunnel != NULL;
    if (pl->tunnel) {
        if (pl->tunnel_adopt)
            vrev__inbound_adopt(pl->tunnel, p->tunnel);
        vrev__retired_add(&p->rs.retired_in, p->tunnel); /* its handshakes finish first */
        p->tunnel = pl->tunnel;
        memcpy(p->rs.tunnel_key, pl->key, 32);
        pl->tunnel = NULL;
    }
    for (size_t i = 0; i < pl->n; i++)
        if (pl->adopt[i]) {
            vrev__inbound_adopt(pl->publics[i], p->publics[pl->from[i]]);
            moved++;
        } else if (pl->from[i] >= 0) {
            vrev__inbound_set_accept_proxy(pl->publics[i], o->accept_proxy);
            kept++;
        }
    for (size_t j = 0; j < p->n_publics; j++) {
        if (!pl->old_kept[j] || !p->publics[j]->listener) /* gone, or handed over */
            vrev__retired_add(&p->rs.retired_in, p->publics[j]);
        vrev__free(p->ctx, p->public_keys[j]);
    }
    vrev__log(p->ctx, VREV_LOG_INFO, "reload",
              "reloaded: tunnel listener %s, public listeners %zu -> %zu (%u kept, %u on their "
              "old socket)",
              renewed ? "renewed" : "kept", p->n_publics, pl->n, kept, moved);
    vrev__free(p->ctx, p->publics);
    vrev__free(p->ctx, p->public_keys);
    vrev__free(p->ctx, p->listen);
    p->publics = pl->publics;
    p->public_keys = pl->keys;
    p->n_publics = pl->n;
    p->listen = pl->listen;
    vrev__free(p->ctx, pl->from);
    vrev__free(p->ctx, pl->adopt);
    vrev__free(p->ctx, pl->old_kept);
}

static int portal_reload(vrev_portal *p, const vrev_tunnel_opts *o, char *err, size_t err_len)
{
    if (!p || !o)
        return vrev__tunnel_fail(err, err_len, VREV_ERR_INVAL, NULL);
    struct portal_plan pl;
    memset(&pl, 0, sizeof(pl));
    int rc = vrev__portal_check(o, err, err_len);
    if (rc == 0)
        rc = vrev__tunnel_reload_check(&p->rs, o, err, err_len);
    if (rc == 0 && (rc = portal_plan(p, o, &pl, err, err_len)) < 0)
        portal_discard(p, &pl);
    if (rc < 0)
        return reload_failed(p->ctx, &p->rs, rc, err, err_len);
    portal_commit(p, o, &pl);
    p->rs.ok++;
    return 0;
}

int vrev_portal_reload(vrev_portal *p, const vrev_tunnel_opts *o, char *err, size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(portal_reload(p, o, err, err_len), err, err_len);
}

uint64_t vrev_portal_reload_count(const vrev_portal *p, int failed)
{
    return !p ? 0 : failed ? p->rs.failed : p->rs.ok;
}

/* The bridge's new outbounds, router and legs, built on the engine with its running ones set
 * aside (restored before returning). */
struct bridge_plan {
    struct vrev__outbound **obs;
    size_t n_obs;
    struct vrev__router *router;
    struct vrev__tunnel_leg **legs;
    size_t n_legs;
};

static int bridge_plan(vrev_bridge *b, const vrev_tunnel_opts *o, struct bridge_plan *pl, char *err,
                       size_t len)
{
    struct vrev__engine *e = &b->engine;
    struct vrev__outbound **obs = e->outbounds;
    size_t n_obs = e->n_outbounds;
    struct vrev__router *router = e->router;
    e->outbounds = NULL;
    e->n_outbounds = 0;
    e->router = NULL;
    int rc = vrev__tunnel_reserve_out(b->ctx, &b->rs, n_obs);
    if (rc < 0)
        vrev__tunnel_fail(err, len, rc, NULL);
    else
        rc = vrev__bridge_build(b, o, &pl->legs, err, len);
    pl->n_legs = rc == 0 ? o->n_portals : 0;
    pl->obs = e->outbounds;
    pl->n_obs = e->n_outbounds;
    pl->router = e->router;
    e->outbounds = obs;
    e->n_outbounds = n_obs;
    e->router = router;
    if (rc < 0) {
        for (size_t i = 0; i < pl->n_obs; i++)
            pl->obs[i]->ops->destroy(pl->obs[i]);
        vrev__free(b->ctx, pl->obs);
        vrev__router_free(pl->router);
    }
    return rc;
}

size_t vrev__bridge_old_leg_tags(const vrev_bridge *b, const char **btags, size_t np)
{
    size_t k = np;
    for (int pass = 0; pass < 2; pass++) {
        struct vrev__tunnel_leg *const *v = pass ? b->retiring : b->legs;
        for (size_t j = 0; j < (pass ? b->n_retiring : b->n_legs); j++) {
            const char *t = v[j] ? vrev__bridge_tag(v[j]->bridge) : NULL;
            bool seen = !t;
            for (size_t i = 0; i < k && !seen; i++)
                seen = !strcmp(btags[i], t);
            if (!seen)
                btags[k++] = t;
        }
    }
    return k - np;
}

/* Which running leg each new one takes over (from[i], -1: none): the same way to the portal
 * (its tunnels stay), else the same portal address, else any left, in order (its tunnels
 * serve their sessions and close; new ones are dialled). */
static void bridge_match(const vrev_bridge *b, const struct bridge_plan *pl, long *from,
                         bool *taken)
{
    for (size_t i = 0; i < pl->n_legs; i++)
        from[i] = -1;
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < pl->n_legs; i++)
            for (size_t j = 0; from[i] < 0 && j < b->n_legs; j++) {
                const struct vrev__tunnel_leg *n = pl->legs[i], *old = b->legs[j];
                bool m = pass == 0   ? !memcmp(n->key, old->key, 32)
                         : pass == 1 ? !strcmp(n->portal, old->portal)
                                     : true;
                if (!taken[j] && m) {
                    from[i] = (long)j;
                    taken[j] = true;
                }
            }
}

/* Leg i takes over old leg j (or none): its tunnels, counters; its outbound if the way is the
 * same. Returns whether the way is the same. */
static bool bridge_take(vrev_bridge *b, struct bridge_plan *pl, size_t i, long j)
{
    struct vrev__tunnel_leg *leg = pl->legs[i];
    if (j < 0) {
        if (b->started)
            vrev__bridge_start(leg->bridge);
        return false;
    }
    struct vrev__tunnel_leg *old = b->legs[j];
    bool same = !memcmp(leg->key, old->key, 32);
    if (same) {
        pl->obs[i]->ops->destroy(pl->obs[i]);
        pl->obs[i] = b->engine.outbounds[j];
        b->engine.outbounds[j] = NULL;
    }
    vrev__bridge_adopt(leg->bridge, old->bridge);
    vrev__bridge_leg_notify(leg);
    if (b->started)
        vrev__bridge_start(leg->bridge);
    if (!same)
        vrev__bridge_retire_tunnels(leg->bridge);
    return same;
}

/* A running leg no new one takes over, after a name's addresses changed: it keeps its tunnels
 * until they are idle (room reserved before). */
static void bridge_wind_down(vrev_bridge *b, size_t j)
{
    struct vrev__tunnel_leg *leg = b->legs[j];
    vrev__log(b->ctx, VREV_LOG_INFO, "bridge",
              "portal %s: no longer an address of its name: no more tunnels to it (those it has "
              "close once idle)",
              leg->portal);
    vrev__bridge_wind_down(leg->bridge);
    b->retiring[b->n_retiring++] = leg;
    b->legs[j] = NULL;
}

static int reserve_retiring(vrev_bridge *b)
{
    struct vrev__tunnel_leg **v =
        vrev__realloc(b->ctx, b->retiring, (b->n_retiring + b->n_legs + 1) * sizeof(*v));
    if (v)
        b->retiring = v;
    return v ? 0 : VREV_ERR_NOMEM;
}

/* Outbounds 0..n_legs-1 are the legs' interconns: one whose way is the same is kept, every
 * other running outbound retired; a running leg no new one takes over closes its tunnels (or
 * winds down: resolved). */
static int bridge_commit(vrev_bridge *b, struct bridge_plan *pl, bool resolved)
{
    struct vrev__engine *e = &b->engine;
    long *from = vrev__calloc(b->ctx, pl->n_legs + 1, sizeof(*from));
    bool *taken = vrev__calloc(b->ctx, b->n_legs + 1, sizeof(*taken));
    if (!from || !taken || (resolved && reserve_retiring(b) < 0)) {
        vrev__free(b->ctx, from);
        vrev__free(b->ctx, taken);
        return VREV_ERR_NOMEM;
    }
    bridge_match(b, pl, from, taken);
    unsigned kept = 0, closed = 0;
    for (size_t i = 0; i < pl->n_legs; i++)
        kept += bridge_take(b, pl, i, from[i]);
    for (size_t i = 0; i < e->n_outbounds; i++)
        if (e->outbounds[i])
            vrev__tunnel_retire_out(&b->rs, e->outbounds[i]);
    for (size_t j = 0; j < b->n_legs; j++) {
        closed += !taken[j];
        if (!taken[j] && resolved)
            bridge_wind_down(b, j);
    }
    vrev__bridge_legs_free(b, b->legs, b->n_legs); /* those taken over have no tunnel left */
    vrev__free(b->ctx, e->outbounds);
    vrev__router_free(e->router);
    e->outbounds = pl->obs;
    e->n_outbounds = pl->n_obs;
    e->router = pl->router;
    size_t renewed = pl->n_legs - kept;
    char more[128] = "";
    if (renewed)
        snprintf(more, sizeof(more), ", tunnels renewed to %zu (the old ones close once idle)",
                 renewed);
    if (closed)
        snprintf(more + strlen(more), sizeof(more) - strlen(more), ", tunnels closed to %u removed",
                 closed);
    vrev__log(b->ctx, resolved ? VREV_LOG_DEBUG : VREV_LOG_INFO, "reload",
              "reloaded: %zu targets, %zu portals: tunnels kept to %u%s", pl->n_obs - pl->n_legs,
              pl->n_legs, kept, more);
    b->legs = pl->legs;
    b->n_legs = pl->n_legs;
    vrev__free(b->ctx, from);
    vrev__free(b->ctx, taken);
    return 0;
}

int vrev__bridge_replan(vrev_bridge *b, const vrev_tunnel_opts *o, bool resolved, char *err,
                        size_t len)
{
    struct bridge_plan pl;
    memset(&pl, 0, sizeof(pl));
    int rc = bridge_plan(b, o, &pl, err, len);
    if (rc == 0 && (rc = bridge_commit(b, &pl, resolved)) < 0) {
        vrev__tunnel_fail(err, len, rc, NULL);
        for (size_t i = 0; i < pl.n_obs; i++)
            pl.obs[i]->ops->destroy(pl.obs[i]);
        vrev__free(b->ctx, pl.obs);
        vrev__router_free(pl.router);
        vrev__bridge_legs_free(b, pl.legs, pl.n_legs);
    }
    return rc;
}

static int bridge_reload(vrev_bridge *b, const vrev_tunnel_opts *o, char *err, size_t err_len)
{
    if (!b || !o)
        return vrev__tunnel_fail(err, err_len, VREV_ERR_INVAL, NULL);
    int rc = vrev__bridge_check(o, err, err_len);
    if (rc == 0)
        rc = vrev__tunnel_reload_check(&b->rs, o, err, err_len);
    if (rc == 0)
        rc = vrev__bridge_names_reload(b, o, err, err_len);
    if (rc < 0)
        return reload_failed(b->ctx, &b->rs, rc, err, err_len);
    b->rs.ok++;
    return 0;
}

int vrev_bridge_reload(vrev_bridge *b, const vrev_tunnel_opts *o, char *err, size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(bridge_reload(b, o, err, err_len), err, err_len);
}

uint64_t vrev_bridge_reload_count(const vrev_bridge *b, int failed)
{
    return !b ? 0 : failed ? b->rs.failed : b->rs.ok;
}
