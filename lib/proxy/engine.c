/* The engine: outbounds, router, dispatcher, resolver, and the list of live connections. */
#include <event2/dns.h>
#include <string.h>

#include "core/list.h"
#include "net/tls.h"
#include "proxy.h"

#define LOG_COMPONENT "engine"

int vrev__engine_init(struct vrev__engine *e, vrev_ctx *ctx)
{
    memset(e, 0, sizeof(*e));
    if (!ctx || !ctx->base)
        return VREV_ERR_STATE;
    e->ctx = ctx;
    e->live.next = e->live.prev = &e->live;
    vrev__policy_default(&e->policy);
    e->limits = ctx->limits;
    e->policy.tunnel_buffer_bytes = (uint32_t)e->limits.tunnel_buffer;
    return 0;
}

void vrev__engine_track(struct vrev__engine *e, struct vrev__conn *c, vrev__conn_close_fn close)
{
    c->close = close;
    VREV__RING_PUSH_FRONT(&e->live, c);
}

void vrev__engine_untrack(struct vrev__engine *e, struct vrev__conn *c)
{
    (void)e;
    VREV__RING_REMOVE(c);
    c->next = c->prev = c;
}

void vrev__engine_close_all(struct vrev__engine *e)
{
    while (e->ctx && e->live.next != &e->live) {
        struct vrev__conn *c = e->live.next;
        vrev__engine_untrack(e, c);
        c->close(c);
    }
}

void vrev__engine_cleanup(struct vrev__engine *e)
{
    if (!e->ctx)
        return;
    vrev__engine_close_all(e);
    for (size_t i = 0; i < e->n_outbounds; i++)
        e->outbounds[i]->ops->destroy(e->outbounds[i]);
    vrev__free(e->ctx, e->outbounds);
    vrev__router_free(e->router);
    for (size_t i = 0; i < e->n_routes; i++) {
        vrev__free(e->ctx, e->routes[i].inbound);
        vrev__free(e->ctx, e->routes[i].outbound);
    }
    vrev__free(e->ctx, e->routes);
    if (e->dns) /* queries still out are answered "shut down" from the loop (resolve.c) */
        evdns_base_free(e->dns, 1);
    memset(e, 0, sizeof(*e));
}

int vrev__engine_add_outbound(struct vrev__engine *e, struct vrev__outbound *ob)
{
    struct vrev__outbound **v =
        vrev__realloc(e->ctx, e->outbounds, (e->n_outbounds + 1) * sizeof(*v));
    if (!v) {
        ob->ops->destroy(ob);
        return VREV_ERR_NOMEM;
    }
    e->outbounds = v;
    v[e->n_outbounds++] = ob;
    return 0;
}

struct evdns_base *vrev__engine_dns(struct vrev__engine *e)
{
    if (!e->dns) {
        e->dns = evdns_base_new(e->ctx->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                  EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!e->dns)
            vrev__log(e->ctx, VREV_LOG_ERROR, LOG_COMPONENT, "cannot start the DNS resolver");
    }
    return e->dns;
}

static bool same_tag(const char *a, const char *b)
{
    return a && b ? !strcmp(a, b) : a == b;
}

static char *copy_tag(vrev_ctx *ctx, const char *tag, bool *failed)
{
    char *copy = vrev__strdup(ctx, tag);
    *failed = tag && !copy;
    return copy;
}

/* Count a link under its (inbound tag, outbound tag) pair: by tag, so that the counts go on
 * across a reload, which rebuilds the outbounds. */
static void count_route(struct vrev__engine *e, const char *inbound, const char *outbound)
{
    for (size_t i = 0; i < e->n_routes; i++) {
        struct vrev__route_count *r = &e->routes[i];
        if (same_tag(r->outbound, outbound) && same_tag(r->inbound, inbound)) {
            r->links++;
            return;
        }
    }
    if (e->n_routes >= VREV__ROUTE_COUNTS_MAX)
        return;
    struct vrev__route_count *v = vrev__realloc(e->ctx, e->routes, (e->n_routes + 1) * sizeof(*v));
    if (!v)
        return;
    e->routes = v;
    bool f1, f2;
    char *in = copy_tag(e->ctx, inbound, &f1), *out = copy_tag(e->ctx, outbound, &f2);
    if (f1 || f2) {
        vrev__free(e->ctx, in);
        vrev__free(e->ctx, out);
        return;
    }
    v[e->n_routes++] = (struct vrev__route_count){.inbound = in, .outbound = out, .links = 1};
}

/* The access log line for a routed link (V2Ray writes it where its dispatcher has picked the
 * outbound: app/dispatcher/default.go). */
static void log_access(struct vrev__engine *e, const struct vrev__link_info *info,
                       const char *outbound, int accepted, const char *reason)
{
    if (!e->ctx->access_cb)
        return;
    char from[VREV_MUX_TARGET_MAX] = "", to[VREV_MUX_TARGET_MAX + 4];
    if (info->has_source)
        vrev__addr_target_text(&info->source, from, sizeof(from));
    memcpy(to, info->network == VREV_NET_UDP ? "udp:" : "tcp:", 4);
    vrev__addr_target_text(&info->target, to + 4, sizeof(to) - 4);
    vrev__access(e->ctx, from, to, info->inbound_tag, outbound, accepted, reason);
}

struct vrev__outbound *vrev__engine_route(struct vrev__engine *e,
                                          const struct vrev__link_info *info)
{
    if (e->n_outbounds == 0)
        return NULL;
    size_t idx = 0;
    if (e->router) {
        struct vrev__route_ctx rc = {
            .inbound_tag = info->inbound_tag,
            .network = info->network == VREV_NET_UDP ? VREV_ROUTE_UDP : VREV_ROUTE_TCP,
            .target = &info->target,
            .source = info->has_source ? &info->source : NULL,
            .user = info->user,
        };
        uint32_t random = (uint32_t)(e->stats.links * 2654435761u);
        idx = vrev__router_pick(e->router, &rc, random);
        if (idx >= e->n_outbounds)
            idx = 0;
    }
    return e->outbounds[idx];
}

/* The outbound for a link, counted and logged (the access log line); NULL: none (logged as
 * refused). */
static struct vrev__outbound *route_link(struct vrev__engine *e, const struct vrev__link_info *info)
{
    struct vrev__outbound *ob = vrev__engine_route(e, info);
    if (!ob) {
        log_access(e, info, NULL, 0, "no outbound");
        return NULL;
    }
    e->stats.links++;
    count_route(e, info->inbound_tag, ob->tag);
    log_access(e, info, ob->tag, 1, NULL);
    if (vrev__log_enabled(e->ctx, VREV_LOG_DEBUG)) {
        char t[VREV_MUX_TARGET_MAX];
        vrev__addr_target_text(&info->target, t, sizeof(t));
        vrev__log(e->ctx, VREV_LOG_DEBUG, LOG_COMPONENT, VREV__CONN_FMT "[%s] %s:%s -> [%s]",
                  VREV__CONN_ARG(info->conn_id), info->inbound_tag ? info->inbound_tag : "",
                  info->network == VREV_NET_UDP ? "udp" : "tcp", t, ob->tag ? ob->tag : "");
    }
    return ob;
}

int vrev__dispatch(struct vrev__engine *e, const struct vrev__link_info *info,
                   struct bufferevent *link)
{
    struct vrev__outbound *ob = route_link(e, info);
    if (!ob) {
        vrev__bev_close(link, 1);
        return VREV_ERR_STATE;
    }
    return ob->ops->handle(ob, info, link);
}

/* --- links handed over as streams (vrev__engine_open) ------------------------------------- */

struct vrev__handoff *vrev__handoff_new(vrev_ctx *ctx, vrev__handoff_fn done, void *user)
{
    struct vrev__handoff *h = vrev__calloc(ctx, 1, sizeof(*h));
    if (h)
        *h = (struct vrev__handoff){.ctx = ctx, .refs = 1, .done = done, .user = user};
    return h;
}

static void handoff_unref(struct vrev__handoff *h)
{
    if (--h->refs == 0)
        vrev__free(h->ctx, h);
}

void vrev__handoff_cancel(struct vrev__handoff *h)
{
    if (!h)
        return;
    h->done = NULL;
    handoff_unref(h);
}

void vrev__handoff_finish(struct vrev__handoff *h, struct bufferevent *stream, int err)
{
    vrev__handoff_fn done = h->done;
    h->done = NULL;
    if (done)
        done(err < 0 ? NULL : stream, err < 0 ? err : 0, h->user);
    else
        vrev__bev_close(stream, 1);
    handoff_unref(h);
}

/* An outbound that cannot hand a stream over: it gets one end of a pair as its link, the
 * handoff the other (the relay and the extra copy vrev__engine_open otherwise saves). */
static int open_through_pair(struct vrev__engine *e, struct vrev__outbound *ob,
                             const struct vrev__link_info *info)
{
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(e->ctx->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) <
        0) {
        vrev__handoff_finish(info->handoff, NULL, VREV_ERR_NOMEM);
        return VREV_ERR_NOMEM;
    }
    struct vrev__link_info li = *info;
    li.handoff = NULL;
    vrev__handoff_finish(info->handoff, pair[1], 0);
    return ob->ops->handle(ob, &li, pair[0]);
}

int vrev__engine_open(struct vrev__engine *e, const struct vrev__link_info *info)
{
    info->handoff->refs++; /* the work's reference, finished whatever happens */
    struct vrev__outbound *ob = route_link(e, info);
    if (!ob) {
        vrev__handoff_finish(info->handoff, NULL, VREV_ERR_STATE);
        return VREV_ERR_STATE;
    }
    int rc = ob->ops->open ? ob->ops->open(ob, info) : VREV_ERR_UNSUPPORTED;
    return rc == VREV_ERR_UNSUPPORTED ? open_through_pair(e, ob, info) : rc;
}

void vrev__outbound_finish(struct vrev__outbound *ob, struct bufferevent *link,
                           struct vrev__handoff *h, struct bufferevent *stream, int err,
                           uint64_t conn_id)
{
    if (!link) {
        vrev__handoff_finish(h, stream, err);
        return;
    }
    if (err < 0)
        vrev__bev_close(link, 1);
    else
        vrev__engine_relay(ob->engine, link, stream, conn_id);
}

/* --- relays tracked by the engine ------------------------------------------------------------ */

struct tracked_relay {
    struct vrev__conn conn; /* first */
    struct vrev__engine *engine;
    struct vrev__relay *relay;
    uint64_t conn_id;
};

static void relay_done(int result, uint64_t up, uint64_t down, void *user)
{
    struct tracked_relay *t = user;
    struct vrev__engine *e = t->engine;
    e->stats.bytes_up += up;
    e->stats.bytes_down += down;
    e->stats.relays_live--;
    if (result == 0)
        e->stats.relays_ok++;
    else
        e->stats.relays_failed++;
    vrev__log(e->ctx, VREV_LOG_DEBUG, LOG_COMPONENT,
              VREV__CONN_FMT "relay closed: up %llu, down %llu bytes%s%s",
              VREV__CONN_ARG(t->conn_id), (unsigned long long)up, (unsigned long long)down,
              result ? ": " : "", result ? vrev_strerror(result) : "");
    vrev__engine_untrack(e, &t->conn);
    vrev__free(e->ctx, t);
}

static void relay_close(struct vrev__conn *c)
{
    struct tracked_relay *t = (struct tracked_relay *)c;
    t->engine->stats.relays_live--;
    vrev__relay_abort(t->relay, 1);
    vrev__free(t->engine->ctx, t);
}

int vrev__engine_relay(struct vrev__engine *e, struct bufferevent *link, struct bufferevent *target,
                       uint64_t conn_id)
{
    struct tracked_relay *t = vrev__calloc(e->ctx, 1, sizeof(*t));
    if (!t) {
        vrev__bev_close(link, 1);
        vrev__bev_close(target, 1);
        return VREV_ERR_NOMEM;
    }
    t->engine = e;
    t->conn_id = conn_id;
    int rc = vrev__relay_start(e->ctx, link, target, &e->policy, relay_done, t, &t->relay);
    if (rc < 0) {
        vrev__free(e->ctx, t);
        return rc;
    }
    vrev__relay_set_conn_id(t->relay, conn_id);
    vrev__engine_track(e, &t->conn, relay_close);
    e->stats.relays_live++;
    return 0;
}

/* --- outbound helpers ------------------------------------------------------------------------ */

int vrev__outbound_init(struct vrev__outbound *ob, struct vrev__engine *e,
                        const struct vrev__outbound_ops *ops, const char *tag)
{
    ob->ops = ops;
    ob->engine = e;
    ob->tag = NULL;
    ob->tls = NULL;
    ob->layer = NULL;
    memset(&ob->carrier, 0, sizeof(ob->carrier));
    if (tag && !(ob->tag = vrev__strdup(e->ctx, tag)))
        return VREV_ERR_NOMEM;
    return 0;
}

void vrev__outbound_cleanup(struct vrev__outbound *ob)
{
    vrev__free(ob->engine->ctx, ob->tag);
    vrev__tls_ctx_free(ob->tls);
    vrev__carrier_clear(ob->engine->ctx, &ob->carrier);
}

void vrev__outbound_free_picked(struct vrev__outbound *ob, struct vrev__picker *picker, void *ent,
                                size_t bytes)
{
    vrev_ctx *ctx = ob->engine->ctx;
    vrev__wipe(ent, bytes);
    vrev__picker_cleanup(picker, ctx);
    vrev__outbound_cleanup(ob);
    vrev__free(ctx, ob);
}

int vrev__outbound_picked_done(struct vrev__outbound *ob, struct vrev__picker *picker,
                               const void *ent, size_t n, size_t stride, int rc,
                               struct vrev__outbound **out)
{
    if (rc == 0)
        rc = vrev__picker_init(picker, ob->engine->ctx, ent, n, stride);
    if (rc < 0) {
        ob->ops->destroy(ob);
        return rc;
    }
    *out = ob;
    return 0;
}

int vrev__outbound_open_stream(struct vrev__outbound *ob, const struct vrev__link_info *info)
{
    if (info->network == VREV_NET_UDP)
        return VREV_ERR_UNSUPPORTED;
    return ob->ops->handle(ob, info, NULL);
}

void vrev__outbound_log_dial(const struct vrev__outbound *ob, const struct vrev__link_info *info,
                             const struct vrev__addr *to)
{
    vrev_ctx *ctx = ob->engine->ctx;
    if (!vrev__log_enabled(ctx, VREV_LOG_DEBUG))
        return;
    char a[VREV_MUX_TARGET_MAX], t[VREV_MUX_TARGET_MAX] = "";
    vrev__addr_target_text(to, a, sizeof(a));
    bool via = !vrev__addr_equal(to, &info->target); /* a proxy server, or a redirect */
    if (via)
        vrev__addr_target_text(&info->target, t, sizeof(t));
    vrev__log(ctx, VREV_LOG_DEBUG, ob->ops->protocol, VREV__CONN_FMT "[%s] dial %s%s%s",
              VREV__CONN_ARG(info->conn_id), ob->tag ? ob->tag : "", a, via ? " for " : "", t);
}

void *vrev__outbound_req_new(struct vrev__outbound *ob, struct bufferevent *link,
                             const struct vrev__link_info *info, size_t size)
{
    void *r = vrev__calloc(ob->engine->ctx, 1, size);
    if (!r)
        vrev__outbound_finish(ob, link, info->handoff, NULL, VREV_ERR_NOMEM, info->conn_id);
    return r;
}

int vrev__outbound_set_carrier(struct vrev__outbound *ob, const struct vrev__carrier_opts *o)
{
    return vrev__carrier_set(ob->engine->ctx, &ob->carrier, o);
}

void vrev__outbound_set_tls(struct vrev__outbound *ob, struct vrev__tls_ctx *tls)
{
    vrev__tls_ctx_free(ob->tls);
    ob->tls = tls;
}
