/* vrev_bridge: the bridge side of the tunnel API (what it shares with the portal, and the
 * portal, are in tunnel.c).
 *
 * Bridge engine: outbound "interconn" (VMess to the portal) and one freedom outbound per
 * target; the router sends the tunnel (domain full:<domain>) to interconn, and each target's
 * name (NAME:0, or the HOST:PORT it is named by) and its own HOST:PORT to its freedom. The
 * bridge refuses every other target, and every UDP session, before routing: a V2Ray portal
 * set up as its documentation shows (a dokodemo-door whose address and port are the real
 * service's) asks for the --to address itself, nothing else. */
#include <stdio.h>
#include <string.h>

#include "net/carrier_layer.h"
#include "net/tls.h"
#include "obs/obs.h"
#include "reverse/reverse.h"
#include "tunnel_internal.h"

static void bridge_free_deferred(void *b)
{
    vrev_bridge_free(b);
}

int vrev__bridge_check(const vrev_tunnel_opts *o, char *err, size_t len)
{
    if (!o->has_id || !o->n_portals || !o->n_targets)
        return vrev__tunnel_fail(err, len, VREV_ERR_INVAL,
                                 !o->has_id ? "a bridge needs an id (--id UUID)"
                                 : !o->n_portals
                                     ? "a bridge needs the portal's address (--portal HOST:PORT)"
                                     : "a bridge needs a local target (--to HOST:PORT)");
    return 0;
}

/* An outbound that hands each link to the application (vrev_tunnel_opts_add_handler). */
struct handler_out {
    struct vrev__outbound base; /* first */
    vrev_bridge *owner;
    vrev_bridge_accept_cb cb;
    void *user;
    char name[64];
};

static int handler_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                          struct bufferevent *link)
{
    struct handler_out *h = (struct handler_out *)ob;
    if (h->owner->dying) { /* freed by the application already */
        bufferevent_free(link);
        return VREV_ERR_STATE;
    }
    vrev__log(ob->engine->ctx, VREV_LOG_DEBUG, "bridge", VREV__CONN_FMT "to handler %s",
              VREV__CONN_ARG(info->conn_id), h->name);
    vrev_stream *stream;
    int rc = vrev__stream_new(ob->engine->ctx, link, &stream);
    if (rc < 0)
        return rc; /* the link is closed */
    vrev__user_enter(h->owner->ctx);
    h->cb(stream, h->name, h->user);
    vrev__user_leave(h->owner->ctx);
    return 0;
}

static void handler_destroy(struct vrev__outbound *ob)
{
    vrev__outbound_cleanup(ob);
    vrev__free(ob->engine->ctx, ob);
}

static const struct vrev__outbound_ops handler_ops = {
    .protocol = "handler", .handle = handler_handle, .destroy = handler_destroy};

static int handler_new(struct vrev__engine *e, const char *tag, const struct vrev__tunnel_pair *t,
                       struct vrev__outbound **out)
{
    struct handler_out *h = vrev__calloc(e->ctx, 1, sizeof(*h));
    if (!h)
        return VREV_ERR_NOMEM;
    int rc = vrev__outbound_init(&h->base, e, &handler_ops, tag);
    if (rc < 0) {
        handler_destroy(&h->base);
        return rc;
    }
    h->owner = (vrev_bridge *)((char *)e - offsetof(vrev_bridge, engine)); /* only bridges */
    h->cb = t->cb;
    h->user = t->user;
    snprintf(h->name, sizeof(h->name), "%s", t->name);
    *out = &h->base;
    return 0;
}

#define LIST1(x) ((struct vrev__strlist){(const char *const[]){x}, 1})

/* A rule sending the bridges' (`from`) sessions to HOST:PORT `a` (its IP, or its name in full) to
 * outbound `tag`. */
static int route_addr(struct vrev__router *r, const struct vrev__strlist *from,
                      const struct vrev__addr *a, const char *tag, char *msg, size_t len)
{
    char name[300], host[VREV_ADDR_DOMAIN_MAX + 1], port[8];
    const char *domain_v[1] = {name}, *ip_v[1] = {host};
    struct vrev__rule_spec t;
    memset(&t, 0, sizeof(t));
    t.inbound_tags = *from;
    t.outbound_tag = tag;
    vrev__addr_host_text(a, host, sizeof(host));
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    snprintf(name, sizeof(name), "full:%s", host);
    if (a->type == VREV_ADDR_DOMAIN)
        t.domains = (struct vrev__strlist){domain_v, 1};
    else
        t.ips = (struct vrev__strlist){ip_v, 1};
    t.ports = port;
    return vrev__router_add_rule(r, &t, msg, len);
}

/* A rule per portal sending its bridge's tunnel (the domain, from "bridge-<i>") to its
 * "interconn-<i>"; then the targets' rules, for sessions from any of the bridges: these and
 * the n_old running ones after them in btags (whose tunnels may bring sessions until they
 * close: a leg winding down keeps its tag). */
static int bridge_routes(vrev_bridge *b, const vrev_tunnel_opts *o, const char **tags,
                         const char **btags, size_t n_old, char *err, size_t len)
{
    struct vrev__engine *e = &b->engine;
    size_t np = o->n_portals;
    char msg[256], full[300];
    int rc = vrev__router_new(b->ctx, &e->router);
    snprintf(full, sizeof(full), "full:%s", vrev__tunnel_domain(o));
    struct vrev__strlist from = {btags, np + n_old};
    for (size_t i = 0; rc == 0 && i < np; i++) {
        struct vrev__rule_spec r;
        memset(&r, 0, sizeof(r));
        r.inbound_tags = (struct vrev__strlist){&btags[i], 1};
        r.domains = LIST1(full);
        r.outbound_tag = tags[i];
        rc = vrev__router_add_rule(e->router, &r, msg, sizeof(msg));
    }
    for (size_t i = 0; rc == 0 && i < o->n_targets; i++) { /* names first: they win */
        struct vrev__addr a;
        if (vrev__tunnel_target_addr(&o->targets[i], &a)) { /* the portal's own HOST:PORT */
            rc = route_addr(e->router, &from, &a, tags[np + i], msg, sizeof(msg));
            continue;
        }
        char name[300];
        const char *domain_v[1] = {name};
        struct vrev__rule_spec t;
        memset(&t, 0, sizeof(t));
        t.inbound_tags = from;
        t.outbound_tag = tags[np + i];
        snprintf(name, sizeof(name), "full:%s", o->targets[i].name);
        t.domains = (struct vrev__strlist){domain_v, 1};
        rc = vrev__router_add_rule(e->router, &t, msg, sizeof(msg));
    }
    for (size_t i = 0; rc == 0 && i < o->n_targets; i++) { /* then each target's own address */
        struct vrev__addr a;
        if (o->targets[i].hostport && vrev__addr_from_hostport(&a, o->targets[i].hostport) == 0)
            rc = route_addr(e->router, &from, &a, tags[np + i], msg, sizeof(msg));
    }
    struct vrev__strlist all = {tags, np + o->n_targets};
    if (rc == 0)
        rc = vrev__router_finish(e->router, &all, msg, sizeof(msg));
    return rc < 0 ? vrev__tunnel_fail(err, len, rc, msg) : 0;
}

/* The VMess outbound `tag` to portal i, with TLS, custom transport and carrier. The address
 * of a name keeps the name as TLS server name and ws Host (unless the options set them). */
static int interconn_new(vrev_bridge *b, const vrev_tunnel_opts *o, size_t i, const char *tag,
                         struct vrev__outbound **out, char *err, size_t len)
{
    struct vrev__engine *e = &b->engine;
    char host[VREV_MUX_TARGET_MAX], ws_host[VREV_MUX_TARGET_MAX + 8];
    uint16_t port;
    const char *name = vrev__tunnel_portal_name(o, i);
    vrev__tunnel_split_hostport(o->portals[i], host, sizeof(host), &port);
    if (!name || vrev__ws_default_host(name, port, o->tls, ws_host, sizeof(ws_host)) < 0)
        ws_host[0] = 0;
    struct vrev__user_out_opts vo = {host, port, {0}, o->security};
    memcpy(vo.uuid, o->uuid, 16);
    struct vrev__outbound *ob;
    int rc = vrev__vmess_out_new(e, tag, &vo, 1, &ob);
    vrev__wipe(vo.uuid, sizeof(vo.uuid));
    if (rc < 0)
        return vrev__tunnel_fail(err, len, rc, NULL);
    if (o->tls) {
        const char *ca[1] = {o->tls_ca};
        /* ALPN as V2Ray's dialers: h2 for h2, http/1.1 for ws, none for tcp */
        static const char *const h2[] = {"h2"}, *const h1[] = {"http/1.1"};
        const char *const *alpn = o->carrier == VREV_CARRIER_H2   ? h2
                                  : o->carrier == VREV_CARRIER_WS ? h1
                                                                  : NULL;
        struct vrev__tls_client_opts co = {
            .server_name = o->tls_sni ? o->tls_sni : name, /* an address of a name: the name */
            .allow_insecure = o->tls_insecure,
            .ca_files = ca,
            .n_ca_files = o->tls_ca ? 1 : 0,
            .alpn = alpn,
            .n_alpn = alpn ? 1 : 0,
            .pins = (const uint8_t(*)[32])o->tls_pins,
            .n_pins = o->n_tls_pins,
        };
        struct vrev__tls_ctx *tls;
        char msg[256] = "";
        if (o->tls_insecure && !o->n_tls_pins)
            vrev__log(b->ctx, VREV_LOG_WARN, "bridge",
                      "--insecure: the portal's certificate is not checked");
        rc = vrev__tls_client_ctx_new(b->ctx, &co, &tls, msg, sizeof(msg));
        if (rc < 0) {
            ob->ops->destroy(ob);
            return vrev__tunnel_fail(err, len, rc, msg);
        }
        vrev__outbound_set_tls(ob, tls);
    }
    rc = vrev__tunnel_custom_layer(b->ctx, o, &ob->layer, err, len);
    if (rc == 0)
        rc = vrev__tunnel_set_carrier(o, NULL, ob, ws_host[0] ? ws_host : NULL, err, len);
    if (rc < 0) {
        ob->ops->destroy(ob);
        return rc;
    }
    *out = ob;
    return 0;
}

/* Outbounds: one interconn per portal (tags[0..n_portals-1]), then one per target. */
static int bridge_outbounds(vrev_bridge *b, const vrev_tunnel_opts *o, const char **tags, char *err,
                            size_t len)
{
    struct vrev__engine *e = &b->engine;
    char host[VREV_MUX_TARGET_MAX];
    uint16_t port;
    struct vrev__outbound *ob;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < o->n_portals; i++) {
        if ((rc = interconn_new(b, o, i, tags[i], &ob, err, len)) < 0)
            return rc;
        rc = vrev__engine_add_outbound(e, ob);
    }
    const char **ttags = tags + o->n_portals;
    for (size_t i = 0; rc == 0 && i < o->n_targets; i++) {
        if (!o->targets[i].hostport) {
            rc = handler_new(e, ttags[i], &o->targets[i], &ob);
        } else {
            vrev__tunnel_split_hostport(o->targets[i].hostport, host, sizeof(host), &port);
            struct vrev__freedom_opts f = {host, port, VREV_DS_AS_IS};
            rc = vrev__freedom_new(e, ttags[i], &f, &ob);
            if (rc == 0)
                vrev__freedom_set_proxy_protocol(ob, o->targets[i].proxy_protocol);
        }
        if (rc == 0)
            rc = vrev__engine_add_outbound(e, ob);
    }
    return rc < 0 ? vrev__tunnel_fail(err, len, rc, NULL) : 0;
}

/* The bridge's allowed targets (vrev__bridge_target_parse), TCP only: each target's name,
 * "tcp:<name>:0" (or "tcp:<HOST:PORT>" for a target named by the address a portal asks for),
 * and its own "tcp:<HOST:PORT>" if it has one. `allowed` has room for 2 per target; returns
 * how many were written. */
static size_t bridge_allowed(const vrev_tunnel_opts *o, const char **allowed,
                             char (*buf)[VREV_MUX_TARGET_MAX + 8])
{
    size_t k = 0;
    for (size_t i = 0; i < o->n_targets; i++) {
        const char *nm = o->targets[i].name;
        snprintf(buf[k], sizeof(buf[k]), strchr(nm, ':') ? "tcp:%s" : "tcp:%s:0", nm);
        allowed[k] = buf[k];
        k++;
        if (o->targets[i].hostport) {
            snprintf(buf[k], sizeof(buf[k]), "tcp:%s", o->targets[i].hostport);
            allowed[k] = buf[k];
            k++;
        }
    }
    return k;
}

static void leg_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    struct vrev__tunnel_leg *leg = user;
    bool tunnel = event == VREV_EVENT_TUNNEL_UP || event == VREV_EVENT_TUNNEL_DOWN;
    vrev__tunnel_call_event(leg->owner->ctx, &leg->owner->ev, event, tunnel ? leg->portal : name,
                            up, down);
}

void vrev__bridge_leg_notify(struct vrev__tunnel_leg *leg)
{
    vrev__bridge_set_notify(leg->bridge, leg_event, leg);
}

void vrev__tunnel_leg_free(vrev_bridge *b, struct vrev__tunnel_leg *leg)
{
    if (!leg)
        return;
    vrev__bridge_free(leg->bridge);
    vrev__free(b->ctx, leg->portal);
    vrev__free(b->ctx, leg);
}

void vrev__bridge_legs_free(vrev_bridge *b, struct vrev__tunnel_leg **legs, size_t n)
{
    for (size_t i = 0; legs && i < n; i++)
        vrev__tunnel_leg_free(b, legs[i]);
    vrev__free(b->ctx, legs);
}

/* Leg i's bridge object, tag btag, dialing the tunnel domain through its interconn. */
static int leg_new(vrev_bridge *b, const vrev_tunnel_opts *o, size_t i, const char *btag,
                   const char *const *allowed, size_t n_allowed, struct vrev__tunnel_leg **out)
{
    struct vrev__tunnel_leg *leg = vrev__calloc(b->ctx, 1, sizeof(*leg));
    if (!leg)
        return VREV_ERR_NOMEM;
    *out = leg;
    leg->owner = b;
    vrev__tunnel_key(o, 0, i, leg->key);
    if (!(leg->portal = vrev__tunnel_leg_name(b->ctx, o, i)))
        return VREV_ERR_NOMEM;
    struct vrev__bridge_opts bo;
    memset(&bo, 0, sizeof(bo));
    bo.domain = vrev__tunnel_domain(o);
    bo.sessions_per_tunnel = o->sessions_per_tunnel;
    bo.dead_after_ms = o->dead_after_ms;
    bo.allowed_targets = allowed;
    bo.n_allowed_targets = n_allowed;
    int rc = vrev__bridge_new(&b->engine, btag, &bo, &leg->bridge);
    if (rc == 0)
        vrev__bridge_leg_notify(leg);
    return rc;
}

void vrev__tunnel_leg_tags(const vrev_tunnel_opts *o, size_t i, char btag[32], char itag[32])
{
    if (o->n_portals == 1) {
        snprintf(btag, 32, "bridge");
        snprintf(itag, 32, "interconn");
    } else {
        snprintf(btag, 32, "bridge-%zu", i);
        snprintf(itag, 32, "interconn-%zu", i);
    }
}

/* Tags: each leg's (vrev__tunnel_leg_tags), then "target-<i>". */
static void bridge_tags(const vrev_tunnel_opts *o, const char **tags, char (*buf)[32],
                        const char **btags, char (*bbuf)[32])
{
    size_t np = o->n_portals;
    for (size_t i = 0; i < np; i++) {
        vrev__tunnel_leg_tags(o, i, bbuf[i], buf[i]);
        btags[i] = bbuf[i];
    }
    for (size_t i = 0; i < np + o->n_targets; i++) {
        if (i >= np)
            snprintf(buf[i], sizeof(buf[i]), "target-%zu", i - np);
        tags[i] = buf[i];
    }
}

/* The engine's outbounds and router, and a leg per portal (*legs, n_portals of them). */
int vrev__bridge_build(vrev_bridge *b, const vrev_tunnel_opts *o, struct vrev__tunnel_leg ***legs,
                       char *err, size_t len)
{
    size_t n = o->n_targets, np = o->n_portals;
    const char **tags = vrev__calloc(b->ctx, n + np, sizeof(*tags));
    char(*tag_buf)[32] = vrev__calloc(b->ctx, n + np, sizeof(*tag_buf));
    const char **btags = vrev__calloc(b->ctx, np + b->n_legs + b->n_retiring, sizeof(*btags));
    char(*btag_buf)[32] = vrev__calloc(b->ctx, np, sizeof(*btag_buf));
    const char **allowed = vrev__calloc(b->ctx, 2 * n, sizeof(*allowed));
    char(*allowed_buf)[VREV_MUX_TARGET_MAX + 8] = vrev__calloc(b->ctx, 2 * n, sizeof(*allowed_buf));
    *legs = vrev__calloc(b->ctx, np, sizeof(**legs));
    size_t n_allowed = 0, n_old = 0;
    int rc = tags && tag_buf && btags && btag_buf && allowed && allowed_buf && *legs
                 ? 0
                 : VREV_ERR_NOMEM;
    if (rc == 0) {
        bridge_tags(o, tags, tag_buf, btags, btag_buf);
        n_allowed = bridge_allowed(o, allowed, allowed_buf);
        n_old = vrev__bridge_old_leg_tags(b, btags, np);
        rc = bridge_outbounds(b, o, tags, err, len);
    }
    if (rc == 0)
        rc = bridge_routes(b, o, tags, btags, n_old, err, len);
    for (size_t i = 0; rc == 0 && i < np; i++)
        if ((rc = leg_new(b, o, i, btags[i], allowed, n_allowed, &(*legs)[i])) < 0)
            vrev__tunnel_fail(err, len, rc, NULL);
    if (rc < 0) {
        vrev__bridge_legs_free(b, *legs, np);
        *legs = NULL;
    }
    vrev__free(b->ctx, tags);
    vrev__free(b->ctx, tag_buf);
    vrev__free(b->ctx, btags);
    vrev__free(b->ctx, btag_buf);
    vrev__free(b->ctx, allowed);
    vrev__free(b->ctx, allowed_buf);
    return rc == VREV_ERR_NOMEM ? vrev__tunnel_fail(err, len, rc, NULL) : rc;
}

static int bridge_new(vrev_bridge **out, vrev_ctx *ctx, const vrev_tunnel_opts *o, char *err,
                      size_t err_len)
{
    if (!out || !ctx || !o)
        return vrev__tunnel_fail(err, err_len, VREV_ERR_INVAL, NULL);
    *out = NULL;
    int rc;
    vrev_bridge *b = vrev__tunnel_alloc(ctx, o, vrev__bridge_check, sizeof(*b), &rc, err, err_len);
    if (!b)
        return rc;
    b->ctx = ctx;
    rc = vrev__tunnel_engine_start(&b->engine, &b->defer, ctx, bridge_free_deferred, b, err,
                                   err_len);
    if (rc == 0 && (rc = vrev__tunnel_remember(ctx, &b->rs, o, 0)) < 0)
        vrev__tunnel_fail(err, err_len, rc, NULL);
    if (rc == 0 && (rc = vrev__bridge_build(b, o, &b->legs, err, err_len)) == 0)
        b->n_legs = o->n_portals;
    if (rc == 0 && (rc = vrev__bridge_names_new(b, o)) < 0)
        vrev__tunnel_fail(err, err_len, rc, NULL);
    if (rc < 0) {
        vrev_bridge_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int vrev_bridge_new(vrev_bridge **out, vrev_ctx *ctx, const vrev_tunnel_opts *o, char *err,
                    size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(bridge_new(out, ctx, o, err, err_len), err, err_len);
}

int vrev_bridge_start(vrev_bridge *b)
{
    if (!b)
        return VREV_ERR_INVAL;
    b->started = true;
    for (size_t i = 0; i < b->n_legs; i++)
        vrev__bridge_start(b->legs[i]->bridge);
    vrev__bridge_names_start(b);
    return 0;
}

void vrev_bridge_free(vrev_bridge *b)
{
    if (!b)
        return;
    b->ev.cb = NULL; /* no events while tearing down, nor once freed from inside one */
    b->dying = true;
    vrev__bridge_names_free(b); /* no re-resolving either (a second call does nothing) */
    if (vrev__defer_free(&b->defer, b->ctx))
        return;
    vrev__bridge_legs_free(b, b->legs, b->n_legs);
    vrev__bridge_legs_free(b, b->retiring, b->n_retiring);
    vrev__engine_close_all(&b->engine);
    vrev__tunnel_reload_cleanup(&b->engine, &b->rs);
    vrev__engine_cleanup(&b->engine);
    vrev__defer_cleanup(&b->defer);
    vrev__free(b->ctx, b);
}

void vrev_bridge_set_event_cb(vrev_bridge *b, vrev_tunnel_event_cb cb, void *user)
{
    b->ev.cb = cb;
    b->ev.user = user;
}

static void add_counters(struct vrev__tunnel_counters *c, const struct vrev__bridge_stats *st)
{
    c->tunnels += st->tunnels_up; /* as the events count them: dials in progress are not */
    c->opened += st->tunnels_up_total;
    c->sessions += st->sessions;
    c->active += st->sessions_active;
    c->refused += st->refused + st->dials_refused + st->mux.refused_rate;
    c->up += st->bytes_up;
    c->down += st->bytes_down;
}

void vrev__tunnel_leg_free_retired(vrev_bridge *b, struct vrev__tunnel_leg *leg)
{
    struct vrev__bridge_stats st;
    vrev__bridge_get_stats(leg->bridge, &st);
    add_counters(&b->gone, &st);
    b->gone.tunnels = b->gone.active = 0; /* idle: none left */
    vrev__tunnel_leg_free(b, leg);
}

/* The counters summed over the portals' bridges (those winding down and gone included). */
static void bridge_counters(const vrev_bridge *b, struct vrev__tunnel_counters *c)
{
    *c = b->gone;
    for (size_t i = 0; i < b->n_retiring; i++) {
        struct vrev__bridge_stats st;
        vrev__bridge_get_stats(b->retiring[i]->bridge, &st);
        add_counters(c, &st);
    }
    for (size_t i = 0; i < b->n_legs; i++) {
        struct vrev__bridge_stats st;
        vrev__bridge_get_stats(b->legs[i]->bridge, &st);
        add_counters(c, &st);
    }
}

uint64_t vrev_bridge_counter(const vrev_bridge *b, int counter)
{
    struct vrev__tunnel_counters c;
    bridge_counters(b, &c);
    return vrev__tunnel_counter_of(&c, counter);
}

/* --- metrics and readiness (vrev/obs.h) ------------------------------------------------------ */

int vrev_bridge_metrics(const vrev_bridge *b, vrev_metric_cb cb, void *user)
{
    if (!b || !cb)
        return VREV_ERR_INVAL;
    struct vrev__metrics m = {cb, user};
    for (size_t i = 0; i < b->n_legs; i++) /* labelled with each portal's bridge tag */
        vrev__metrics_bridge(&m, b->legs[i]->bridge);
    vrev__metrics_engine(&m, &b->engine);
    vrev__metrics_reloads(&m, vrev_bridge_reload_count(b, 0), vrev_bridge_reload_count(b, 1));
    return 0;
}

int vrev_bridge_ready(const vrev_bridge *b)
{
    return b && vrev_bridge_counter(b, VREV_COUNTER_TUNNELS) > 0;
}
