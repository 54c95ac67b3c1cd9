/* Building a config beside what runs, and swapping it in (vrev_instance_reload; a new instance
 * is built the same way, against nothing).
 *
 * What stays is found by comparing the new config with the running one, element by element
 * (their JSON text, keys sorted: vrev__cfg_inbound.json):
 *   - an inbound written the same is kept as it is (listener, handshakes, replay filters);
 *   - a changed inbound on the same address and port (port 0: the same tag) is a new inbound
 *     that takes the old one's listening socket, so no connect is refused meanwhile; the old
 *     one finishes the handshakes it has under the old settings, then is freed;
 *   - an outbound written the same is kept (a portal with the same tag and domain keeps its
 *     tunnels); a changed one is new, the old one stays until the instance stops (a dial in
 *     progress may use it); a portal that goes closes its tunnels;
 *   - the router is always rebuilt (it holds nothing live);
 *   - a bridge with the same tag and domain takes the old one's tunnels and their sessions; if
 *     the outbound its tunnels go through changed, it opens new tunnels and closes the old
 *     ones once they carry no session.
 * Everything that can fail (binding, memory) happens before anything running is touched. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "instance_internal.h"

#define LOG_COMPONENT "instance"

static void *alloc_n(vrev_ctx *ctx, size_t n, size_t size, int *rc)
{
    void *p = vrev__calloc(ctx, n ? n : 1, size);
    if (!p)
        *rc = VREV_ERR_NOMEM;
    return p;
}

static int plan_alloc(vrev_instance *inst, struct vrev__plan *p)
{
    vrev_ctx *ctx = inst->ctx;
    const struct vrev__config *cfg = p->cfg;
    size_t n_old_obs = inst->engine.n_outbounds;
    int rc = 0;
    p->n_obs = cfg->n_outbounds + cfg->reverse.n_portals;
    p->n_ins = cfg->n_inbounds;
    p->n_brs = cfg->reverse.n_bridges;
    p->obs = alloc_n(ctx, p->n_obs, sizeof(*p->obs), &rc);
    p->ob_new = alloc_n(ctx, p->n_obs, sizeof(*p->ob_new), &rc);
    p->ins = alloc_n(ctx, p->n_ins, sizeof(*p->ins), &rc);
    p->tags = alloc_n(ctx, p->n_ins, sizeof(*p->tags), &rc);
    p->in_from = alloc_n(ctx, p->n_ins, sizeof(*p->in_from), &rc);
    p->in_adopt = alloc_n(ctx, p->n_ins, sizeof(*p->in_adopt), &rc);
    p->brs = alloc_n(ctx, p->n_brs, sizeof(*p->brs), &rc);
    p->br_from = alloc_n(ctx, p->n_brs, sizeof(*p->br_from), &rc);
    p->br_route = alloc_n(ctx, p->n_brs, sizeof(*p->br_route), &rc);
    p->old_ob_kept = alloc_n(ctx, n_old_obs, sizeof(bool), &rc);
    p->old_in_kept = alloc_n(ctx, inst->n_inbounds, sizeof(bool), &rc);
    p->old_br_kept = alloc_n(ctx, inst->n_bridges, sizeof(bool), &rc);
    /* room for everything running to retire, so that committing never allocates */
    struct vrev__outbound **ro =
        vrev__realloc(ctx, inst->retired_out, (inst->n_retired_out + n_old_obs + 1) * sizeof(*ro));
    if (ro)
        inst->retired_out = ro;
    if (!ro || vrev__retired_reserve(&inst->retired_in, ctx, inst->n_inbounds) < 0)
        rc = VREV_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < p->n_ins; i++)
        p->in_from[i] = -1;
    for (size_t i = 0; rc == 0 && i < p->n_brs; i++)
        p->br_from[i] = -1;
    return rc;
}

/* --- outbounds and portals ------------------------------------------------------------------ */

static long find_old_outbound(vrev_instance *inst, const struct vrev__plan *p,
                              const struct vrev__cfg_outbound *o)
{
    const struct vrev__config *old = inst->cfg;
    for (size_t i = 0; old && i < old->n_outbounds; i++)
        if (!p->old_ob_kept[i] && !strcmp(old->outbounds[i].json, o->json))
            return (long)i;
    return -1;
}

static long find_old_portal(vrev_instance *inst, const struct vrev__plan *p,
                            const struct vrev__cfg_reverse_entry *e)
{
    const struct vrev__config *old = inst->cfg;
    for (size_t i = 0; old && i < old->reverse.n_portals; i++) {
        const struct vrev__cfg_reverse_entry *o = &old->reverse.portals[i];
        if (!p->old_ob_kept[old->n_outbounds + i] && !strcmp(o->tag, e->tag) &&
            !strcmp(o->domain, e->domain))
            return (long)(old->n_outbounds + i);
    }
    return -1;
}

static int plan_outbounds(vrev_instance *inst, struct vrev__plan *p, char *err, size_t len)
{
    const struct vrev__config *cfg = p->cfg;
    for (size_t j = 0; j < p->n_obs; j++) {
        bool portal = j >= cfg->n_outbounds;
        size_t k = portal ? j - cfg->n_outbounds : j;
        long i = portal ? find_old_portal(inst, p, &cfg->reverse.portals[k])
                        : find_old_outbound(inst, p, &cfg->outbounds[k]);
        if (i >= 0) {
            p->old_ob_kept[i] = true;
            p->obs[j] = inst->engine.outbounds[i];
            p->ob_kept++;
            continue;
        }
        int rc =
            portal ? vrev__inst_make_portal(inst, &cfg->reverse.portals[k], k, &p->obs[j], err, len)
                   : vrev__inst_make_outbound(inst, &cfg->outbounds[k], k, &p->obs[j], err, len);
        if (rc < 0)
            return rc;
        p->ob_new[j] = true;
    }
    return 0;
}

/* --- inbounds --------------------------------------------------------------------------------- */

/* Dokodemo-door over UDP, a SOCKS UDP relay: a socket of their own that a reload cannot hand
 * over (live UDP flows are bound to it). */
static bool has_udp(const struct vrev__cfg_inbound *c)
{
    return (c->protocol == VREV_CFG_IN_DOKODEMO &&
            (c->settings.dokodemo.networks & VREV_ROUTE_UDP)) ||
           (c->protocol == VREV_CFG_IN_SOCKS && c->settings.socks.udp);
}

static const char *listen_text(const struct vrev__cfg_inbound *c)
{
    return c->listen ? c->listen : "0.0.0.0";
}

/* The old inbound listening where `c` wants to: the same address and port, or for port 0 the
 * same address and tag. */
static long find_old_listener(vrev_instance *inst, const struct vrev__plan *p,
                              const struct vrev__cfg_inbound *c)
{
    const struct vrev__config *old = inst->cfg;
    for (size_t i = 0; old && i < old->n_inbounds; i++) {
        const struct vrev__cfg_inbound *o = &old->inbounds[i];
        if (p->old_in_kept[i] || strcmp(listen_text(o), listen_text(c)))
            continue;
        uint16_t bound = vrev__inbound_port(inst->inbounds[i]);
        if (c->port.from ? c->port.from == o->port.from || c->port.from == bound
                         : !o->port.from && c->tag[0] && !strcmp(c->tag, o->tag))
            return (long)i;
    }
    return -1;
}

static long find_old_inbound(vrev_instance *inst, const struct vrev__plan *p,
                             const struct vrev__cfg_inbound *c)
{
    const struct vrev__config *old = inst->cfg;
    for (size_t i = 0; old && i < old->n_inbounds; i++) {
        const struct vrev__cfg_inbound *o = &old->inbounds[i];
        if (!p->old_in_kept[i] && !strcmp(o->json, c->json) && o->port.from == c->port.from &&
            o->port.to == c->port.to)
            return (long)i;
    }
    return -1;
}

static int plan_inbound(vrev_instance *inst, struct vrev__plan *p, size_t j, char *err, size_t len)
{
    const struct vrev__cfg_inbound *c = &p->cfg->inbounds[j];
    long i = find_old_inbound(inst, p, c);
    if (i >= 0) {
        p->old_in_kept[i] = true;
        p->in_from[j] = i;
        p->ins[j] = inst->inbounds[i];
        p->in_kept++;
    } else if ((i = find_old_listener(inst, p, c)) >= 0) {
        const struct vrev__cfg_inbound *o = &inst->cfg->inbounds[i];
        if (has_udp(c) || has_udp(o) || !inst->inbounds[i]->listener) {
            if (err && len)
                snprintf(err, len,
                         "inbounds[%zu]: a listener with a UDP side (dokodemo-door network udp, "
                         "socks udp) on %s:%u changed: that needs a restart",
                         j, listen_text(c), c->port.from);
            return VREV_ERR_UNSUPPORTED;
        }
        p->old_in_kept[i] = true; /* its listener is taken: nobody else may match it */
        inst->engine.adopt = inst->inbounds[i]->listener;
        int rc = vrev__inst_make_inbound(inst, c, j, &p->ins[j], err, len);
        inst->engine.adopt = NULL;
        if (rc < 0)
            return rc;
        p->in_from[j] = i;
        p->in_adopt[j] = true;
        p->in_adopted++;
    } else {
        int rc = vrev__inst_make_inbound(inst, c, j, &p->ins[j], err, len);
        if (rc < 0)
            return rc;
    }
    if (!(p->tags[j] = vrev__strdup(inst->ctx, c->tag)))
        return VREV_ERR_NOMEM;
    return 0;
}

/* --- bridges ---------------------------------------------------------------------------------- */

static struct vrev__outbound *tunnel_route(struct vrev__engine *e,
                                           const struct vrev__cfg_reverse_entry *b)
{
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.inbound_tag = b->tag;
    info.network = VREV_NET_TCP;
    vrev__addr_from_text(&info.target, b->domain, 0);
    return vrev__engine_route(e, &info);
}

static int plan_bridges(vrev_instance *inst, struct vrev__plan *p, char *err, size_t len)
{
    const struct vrev__config *old = inst->cfg;
    for (size_t j = 0; j < p->n_brs; j++) {
        const struct vrev__cfg_reverse_entry *b = &p->cfg->reverse.bridges[j];
        for (size_t i = 0; old && i < old->reverse.n_bridges; i++) {
            const struct vrev__cfg_reverse_entry *o = &old->reverse.bridges[i];
            if (!p->old_br_kept[i] && !strcmp(o->tag, b->tag) && !strcmp(o->domain, b->domain)) {
                p->old_br_kept[i] = true;
                p->br_from[j] = (long)i;
                p->br_route[j] = tunnel_route(&inst->engine, o);
                break;
            }
        }
        int rc = vrev__inst_make_bridge(inst, p->cfg, j, &p->brs[j], err, len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- what a reload cannot change -------------------------------------------------------------- */

static bool same_policy(const struct vrev__config *a, const struct vrev__config *b)
{
    struct vrev__cfg_level_policy x, y;
    vrev__config_policy_for_level(a, 0, &x);
    vrev__config_policy_for_level(b, 0, &y);
    return x.handshake == y.handshake && x.conn_idle == y.conn_idle &&
           x.uplink_only == y.uplink_only && x.downlink_only == y.downlink_only &&
           x.buffer_size == y.buffer_size;
}

static bool same_limits(const struct vrev__config *a, const struct vrev__config *b)
{
    if (a->vrev.n_limits != b->vrev.n_limits)
        return false;
    for (size_t i = 0; i < a->vrev.n_limits; i++)
        if (strcmp(a->vrev.limits[i].name, b->vrev.limits[i].name) ||
            a->vrev.limits[i].value != b->vrev.limits[i].value)
            return false;
    return true;
}

static int check_fixed(vrev_instance *inst, const struct vrev__config *cfg, char *err, size_t len)
{
    const char *key = NULL;
    if (!inst->cfg)
        return 0;
    if (!same_policy(inst->cfg, cfg))
        key = "policy (levels.0: handshake, connIdle, uplinkOnly, downlinkOnly, bufferSize)";
    else if (!same_limits(inst->cfg, cfg))
        key = "vrev.limits";
    if (!key)
        return 0;
    if (err && len)
        snprintf(err, len, "%s changed: that needs a restart", key);
    return VREV_ERR_UNSUPPORTED;
}

/* --- plan, commit, discard -------------------------------------------------------------------- */

int vrev__plan_build(vrev_instance *inst, struct vrev__config *cfg, struct vrev__plan *p, char *err,
                     size_t len)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    int rc = check_fixed(inst, cfg, err, len);
    if (rc == 0)
        rc = plan_alloc(inst, p);
    if (rc == 0)
        rc = plan_outbounds(inst, p, err, len);
    if (rc == 0)
        rc = vrev__inst_make_router(inst, cfg, &p->router, err, len);
    for (size_t j = 0; rc == 0 && j < p->n_ins; j++)
        rc = plan_inbound(inst, p, j, err, len);
    if (rc == 0)
        rc = plan_bridges(inst, p, err, len);
    if (rc < 0)
        vrev__plan_discard(inst, p);
    return rc;
}

static void free_arrays(vrev_ctx *ctx, struct vrev__plan *p)
{
    vrev__free(ctx, p->obs);
    vrev__free(ctx, p->ob_new);
    vrev__free(ctx, p->ins);
    vrev__free(ctx, p->tags);
    vrev__free(ctx, p->in_from);
    vrev__free(ctx, p->in_adopt);
    vrev__free(ctx, p->brs);
    vrev__free(ctx, p->br_from);
    vrev__free(ctx, p->br_route);
    vrev__free(ctx, p->old_ob_kept);
    vrev__free(ctx, p->old_in_kept);
    vrev__free(ctx, p->old_br_kept);
}

void vrev__plan_discard(vrev_instance *inst, struct vrev__plan *p)
{
    vrev_ctx *ctx = inst->ctx;
    bool ins = p->ins && p->tags && p->in_from && p->in_adopt;
    for (size_t j = 0; p->brs && j < p->n_brs; j++)
        vrev__bridge_free(p->brs[j]);
    for (size_t j = 0; ins && j < p->n_ins; j++) {
        if (p->in_adopt[j])
            vrev__inbound_drop_adopted(p->ins[j]);
        else if (p->in_from[j] < 0)
            vrev__inbound_free(p->ins[j]);
        vrev__free(ctx, p->tags[j]);
    }
    vrev__router_free(p->router);
    for (size_t j = 0; p->obs && p->ob_new && j < p->n_obs; j++)
        if (p->ob_new[j] && p->obs[j])
            p->obs[j]->ops->destroy(p->obs[j]);
    free_arrays(ctx, p);
    vrev__config_free(p->cfg);
    memset(p, 0, sizeof(*p));
}

/* Old inbounds: kept, handed over (listener taken), or gone (listener closed); the last two
 * retire. */
static void commit_inbounds(vrev_instance *inst, struct vrev__plan *p)
{
    vrev_ctx *ctx = inst->ctx;
    bool *stays = p->old_in_kept; /* reused: true for an old inbound still running as is */
    memset(stays, 0, inst->n_inbounds * sizeof(bool));
    for (size_t j = 0; j < p->n_ins; j++) {
        if (p->in_adopt[j])
            vrev__inbound_adopt(p->ins[j], inst->inbounds[p->in_from[j]]);
        else if (p->in_from[j] >= 0)
            stays[p->in_from[j]] = true;
    }
    for (size_t i = 0; i < inst->n_inbounds; i++) {
        if (!stays[i])
            vrev__retired_add(&inst->retired_in, inst->inbounds[i]);
        vrev__free(ctx, inst->inbound_tags[i]);
    }
    vrev__free(ctx, inst->inbounds);
    vrev__free(ctx, inst->inbound_tags);
    inst->inbounds = p->ins;
    inst->inbound_tags = p->tags;
    inst->n_inbounds = p->n_ins;
    p->ins = NULL;
    p->tags = NULL;
}

static void commit_outbounds(vrev_instance *inst, struct vrev__plan *p)
{
    struct vrev__engine *e = &inst->engine;
    for (size_t i = 0; i < e->n_outbounds; i++) {
        struct vrev__outbound *ob = e->outbounds[i];
        if (p->old_ob_kept[i])
            continue;
        if (!strcmp(ob->ops->protocol, "portal")) /* its tunnels close: nothing dials through it */
            ob->ops->destroy(ob);
        else
            inst->retired_out[inst->n_retired_out++] = ob;
    }
    vrev__free(inst->ctx, e->outbounds);
    e->outbounds = p->obs;
    e->n_outbounds = p->n_obs;
    p->obs = NULL;
    vrev__router_free(e->router);
    e->router = p->router;
    p->router = NULL;
}

static void commit_bridges(vrev_instance *inst, struct vrev__plan *p)
{
    for (size_t j = 0; j < p->n_brs; j++) {
        if (p->br_from[j] >= 0) {
            struct vrev__bridge *old = inst->bridges[p->br_from[j]];
            vrev__bridge_adopt(p->brs[j], old);
            vrev__bridge_free(old);
        }
        if (inst->started)
            vrev__bridge_start(p->brs[j]);
        if (p->br_from[j] >= 0 &&
            tunnel_route(&inst->engine, &p->cfg->reverse.bridges[j]) != p->br_route[j]) {
            vrev__log(inst->ctx, VREV_LOG_INFO, LOG_COMPONENT,
                      "[%s] the way to the portal changed: new tunnels, the old ones close once "
                      "idle",
                      p->cfg->reverse.bridges[j].tag);
            vrev__bridge_retire_tunnels(p->brs[j]);
        }
    }
    for (size_t i = 0; i < inst->n_bridges; i++)
        if (!p->old_br_kept[i])
            vrev__bridge_free(inst->bridges[i]);
    vrev__free(inst->ctx, inst->bridges);
    inst->bridges = p->brs;
    inst->n_bridges = p->n_brs;
    p->brs = NULL;
}

void vrev__plan_commit(vrev_instance *inst, struct vrev__plan *p)
{
    commit_outbounds(inst, p); /* the bridges' new routes need the new router */
    commit_inbounds(inst, p);
    commit_bridges(inst, p);
    vrev__config_free(inst->cfg);
    inst->cfg = p->cfg;
    p->cfg = NULL;
    free_arrays(inst->ctx, p);
}

/* --- the API ---------------------------------------------------------------------------------- */

static int reload_failed(vrev_instance *inst, int rc, const char *filename, char *err, size_t len)
{
    inst->reloads_failed++;
    if (err && len && !err[0])
        snprintf(err, len, "%s", vrev_strerror(rc));
    vrev__log(inst->ctx, VREV_LOG_ERROR, LOG_COMPONENT,
              "reload of %s failed (the running configuration stays): %s",
              filename ? filename : "config", err && len ? err : vrev_strerror(rc));
    return rc;
}

static int instance_reload(vrev_instance *inst, const char *text, size_t len, const char *filename,
                           char *err, size_t err_len)
{
    if (!inst || (!text && len))
        return VREV_ERR_INVAL;
    if (inst->stopped) {
        if (err && err_len)
            snprintf(err, err_len, "the instance is stopped");
        return VREV_ERR_STATE;
    }
    struct vrev__config *cfg = NULL;
    struct vrev__config_error ce;
    int rc = vrev__config_load(inst->ctx, text, len, filename, &cfg, &ce);
    if (rc < 0) {
        if (err && err_len)
            vrev__config_error_format(&ce, err, err_len);
        return reload_failed(inst, rc, filename, err, err_len);
    }
    /* the metrics address and log targets the new file names (the CLI acts on them) */
    struct vrev__instance_obs obs;
    memset(&obs, 0, sizeof(obs));
    if ((rc = vrev__instance_obs_init(inst->ctx, &obs, cfg)) < 0) {
        vrev__instance_obs_cleanup(inst->ctx, &obs);
        vrev__config_free(cfg);
        return reload_failed(inst, rc, filename, err, err_len);
    }
    size_t old_in = inst->n_inbounds, old_ob = inst->engine.n_outbounds;
    size_t old_br = inst->n_bridges;
    char msg[256] = "";
    struct vrev__plan plan;
    rc = vrev__inst_build(inst, cfg, &plan, msg, sizeof(msg));
    if (rc < 0) {
        vrev__instance_obs_cleanup(inst->ctx, &obs);
        if (err && err_len)
            snprintf(err, err_len, "%s: %s", filename ? filename : "config",
                     msg[0] ? msg : vrev_strerror(rc));
        return reload_failed(inst, rc, filename, err, err_len);
    }
    vrev__instance_obs_cleanup(inst->ctx, &inst->obs);
    inst->obs = obs;
    inst->reloads_ok++;
    vrev__log(inst->ctx, VREV_LOG_INFO, LOG_COMPONENT,
              "reloaded %s: inbounds %zu -> %zu (%u kept, %u on their old listener), outbounds "
              "%zu -> %zu (%u kept), bridges %zu -> %zu, %zu routing rules",
              filename ? filename : "config", old_in, inst->n_inbounds, plan.in_kept,
              plan.in_adopted, old_ob, inst->engine.n_outbounds, plan.ob_kept, old_br,
              inst->n_bridges, inst->cfg->routing.n_rules);
    return 0;
}

int vrev_instance_reload(vrev_instance *inst, const char *text, size_t len, const char *filename,
                         char *err, size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(instance_reload(inst, text, len, filename, err, err_len), err, err_len);
}

uint64_t vrev_instance_reload_count(const vrev_instance *inst, int failed)
{
    return !inst ? 0 : failed ? inst->reloads_failed : inst->reloads_ok;
}
