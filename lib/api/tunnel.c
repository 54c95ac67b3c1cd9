/* vrev_portal / vrev_bridge: a reverse tunnel assembled directly from options, without JSON.
 * This file: what both share (events, errors, the custom transport and the carrier, the
 * object's start, the counters) and the portal; the bridge is in tunnel_bridge.c.
 *
 * Portal engine: outbound 0 = the portal; a VMess inbound for the bridges; one dokodemo-door
 * inbound per public listener, whose target is the listener's name as a domain, port 0. */
#include <stdio.h>
#include <string.h>

#include "net/tls.h"
#include "obs/obs.h"
#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "tunnel_internal.h"

/* --- shared by the portal and the bridge (declared in tunnel_internal.h) -------------------- */

void vrev__tunnel_call_event(vrev_ctx *ctx, const struct events *ev, int event, const char *name,
                             uint64_t up, uint64_t down)
{
    if (!ev->cb)
        return;
    vrev__user_enter(ctx);
    ev->cb(event, name, up, down, ev->user);
    vrev__user_leave(ctx);
}

int vrev__tunnel_fail(char *err, size_t len, int rc, const char *msg)
{
    if (err && len)
        snprintf(err, len, "%s", msg ? msg : vrev_strerror(rc));
    return rc;
}

void vrev__tunnel_split_hostport(const char *hp, char *host, size_t cap, uint16_t *port)
{
    struct vrev__addr a;
    vrev__addr_from_hostport(&a, hp);
    vrev__addr_host_text(&a, host, cap);
    *port = a.port;
}

int vrev__tunnel_custom_layer(vrev_ctx *ctx, const vrev_tunnel_opts *o,
                              const struct vrev__transport **t, char *err, size_t len)
{
    char msg[128];
    *t = NULL;
    if (!o->transport)
        return 0;
    if (o->tls)
        return vrev__tunnel_fail(err, len, VREV_ERR_INVAL,
                                 "TLS and a custom transport exclude each other");
    if (!(*t = vrev__ctx_transport(ctx, o->transport))) {
        snprintf(msg, sizeof(msg), "no transport named '%s' is registered on the context",
                 o->transport);
        return vrev__tunnel_fail(err, len, VREV_ERR_INVAL, msg);
    }
    return 0;
}

int vrev__tunnel_set_carrier(const vrev_tunnel_opts *o, struct vrev__inbound *in,
                             struct vrev__outbound *ob, const char *ws_host, char *err, size_t len)
{
    struct vrev__carrier_opts c;
    const char *host;
    if (o->carrier == VREV_CARRIER_TCP)
        return 0;
    if (o->transport)
        return vrev__tunnel_fail(err, len, VREV_ERR_INVAL, "a custom transport excludes ws and h2");
    if (ob && o->carrier == VREV_CARRIER_H2 && !o->tls)
        return vrev__tunnel_fail(
            err, len, VREV_ERR_INVAL,
            "a bridge over h2 needs TLS (V2Ray's h2 client speaks it over TLS only)");
    vrev__tunnel_carrier(o, &c, &host);
    if (ws_host && o->carrier == VREV_CARRIER_WS && !c.n_hosts) { /* the name, not the address */
        c.hosts = &ws_host;
        c.n_hosts = 1;
    }
    int rc = in ? vrev__inbound_set_carrier(in, &c) : vrev__outbound_set_carrier(ob, &c);
    return rc < 0 ? vrev__tunnel_fail(err, len, rc, NULL) : 0;
}

int vrev__tunnel_remember(vrev_ctx *ctx, struct vrev__tunnel_reload *rs, const vrev_tunnel_opts *o,
                          int portal)
{
    vrev__tunnel_key(o, portal, 0, rs->tunnel_key);
    rs->heartbeat_ms = o->heartbeat_ms;
    rs->drain_after = o->drain_after;
    rs->dead_after_ms = o->dead_after_ms;
    return (rs->domain = vrev__strdup(ctx, vrev__tunnel_domain(o))) ? 0 : VREV_ERR_NOMEM;
}

void *vrev__tunnel_alloc(vrev_ctx *ctx, const vrev_tunnel_opts *o,
                         int (*check)(const vrev_tunnel_opts *o, char *err, size_t len),
                         size_t size, int *rc, char *err, size_t err_len)
{
    void *obj = NULL;
    if ((*rc = check(o, err, err_len)) == 0 && !(obj = vrev__calloc(ctx, 1, size)))
        *rc = vrev__tunnel_fail(err, err_len, VREV_ERR_NOMEM, NULL);
    return obj;
}

int vrev__tunnel_engine_start(struct vrev__engine *e, struct vrev__defer *d, vrev_ctx *ctx,
                              void (*free_fn)(void *), void *obj, char *err, size_t err_len)
{
    int rc = vrev__engine_init(e, ctx);
    if (rc < 0)
        return vrev__tunnel_fail(err, err_len, rc, "the context has no event_base");
    rc = vrev__defer_init(d, ctx, free_fn, obj);
    return rc < 0 ? vrev__tunnel_fail(err, err_len, rc, NULL) : 0;
}

uint64_t vrev__tunnel_counter_of(const struct vrev__tunnel_counters *c, int counter)
{
    switch (counter) {
    case VREV_COUNTER_TUNNELS:
        return c->tunnels;
    case VREV_COUNTER_TUNNELS_OPENED:
        return c->opened;
    case VREV_COUNTER_SESSIONS:
        return c->sessions;
    case VREV_COUNTER_SESSIONS_ACTIVE:
        return c->active;
    case VREV_COUNTER_REFUSED:
        return c->refused;
    case VREV_COUNTER_BYTES_UP:
        return c->up;
    case VREV_COUNTER_BYTES_DOWN:
        return c->down;
    default:
        return 0;
    }
}

/* --- portal -------------------------------------------------------------------------------- */

static void forward_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    vrev_portal *p = user;
    vrev__tunnel_call_event(p->ctx, &p->ev, event, name, up, down);
}

static void portal_free_deferred(void *p)
{
    vrev_portal_free(p);
}

/* The tunnel listener: VMess with the id, TLS, the carrier. */
int vrev__portal_make_tunnel(vrev_portal *p, const vrev_tunnel_opts *o, struct vrev__inbound **out,
                             char *err, size_t len)
{
    struct vrev__listener *adopt = p->engine.adopt; /* a reload's */
    char host[VREV_MUX_TARGET_MAX], msg[300];
    uint16_t port;
    vrev__tunnel_split_hostport(o->listen, host, sizeof(host), &port);
    struct vrev__in_user u = {0};
    memcpy(u.uuid, o->uuid, 16);
    struct vrev__in_user_opts vi = {host, port, &u, 1};
    struct vrev__inbound *in = NULL;
    int rc = vrev__vmess_in_new(&p->engine, "tunnel", &vi, &in);
    vrev__wipe(&u, sizeof(u));
    p->engine.adopt = NULL;
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "tunnel listener %s: %s", o->listen, vrev_strerror(rc));
        return vrev__tunnel_fail(err, len, rc, msg);
    }
    if (o->tls && (!o->tls_cert || !o->tls_key))
        rc = vrev__tunnel_fail(err, len, VREV_ERR_INVAL,
                               "a portal with TLS needs a certificate and key (--cert F --key F)");
    if (rc == 0 && o->tls) {
        static const char *const h2[] = {"h2"}; /* as V2Ray's h2 server */
        bool is_h2 = o->carrier == VREV_CARRIER_H2;
        struct vrev__tls_server_opts so = {.cert_file = o->tls_cert,
                                           .key_file = o->tls_key,
                                           .alpn = is_h2 ? h2 : NULL,
                                           .n_alpn = is_h2 ? 1 : 0};
        struct vrev__tls_ctx *tls;
        rc = vrev__tls_server_ctx_new(p->ctx, &so, &tls, msg, sizeof(msg));
        if (rc < 0)
            vrev__tunnel_fail(err, len, rc, msg);
        else
            vrev__inbound_set_tls(in, tls);
    }
    if (rc == 0)
        rc = vrev__tunnel_custom_layer(p->ctx, o, &in->layer, err, len);
    if (rc == 0)
        rc = vrev__tunnel_set_carrier(o, in, NULL, NULL, err, len);
    if (rc == 0)
        vrev__inbound_set_accept_proxy(in, o->accept_proxy);
    if (rc < 0) {
        if (adopt && in->listener == adopt)
            vrev__inbound_drop_adopted(in);
        else
            vrev__inbound_free(in);
        return rc;
    }
    *out = in;
    return 0;
}

int vrev__portal_make_public(vrev_portal *p, const vrev_tunnel_opts *o, size_t i,
                             struct vrev__inbound **out, char *err, size_t len)
{
    char host[VREV_MUX_TARGET_MAX], msg[300];
    uint16_t port;
    vrev__tunnel_split_hostport(o->publics[i].hostport, host, sizeof(host), &port);
    struct vrev__dokodemo_opts d = {host, port, o->publics[i].name, 0, VREV_ROUTE_TCP};
    int rc = vrev__dokodemo_new(&p->engine, "public", &d, out);
    p->engine.adopt = NULL;
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "public listener %s: %s", o->publics[i].hostport,
                 vrev_strerror(rc));
        return vrev__tunnel_fail(err, len, rc, msg);
    }
    vrev__inbound_set_accept_proxy(*out, o->accept_proxy);
    return 0;
}

char *vrev__portal_public_key(vrev_ctx *ctx, const struct vrev__tunnel_pair *t)
{
    size_t n = strlen(t->hostport) + strlen(t->name) + 2;
    char *k = vrev__malloc(ctx, n);
    if (k)
        snprintf(k, n, "%s=%s", t->hostport, t->name);
    return k;
}

static int portal_build(vrev_portal *p, const vrev_tunnel_opts *o, char *err, size_t len)
{
    struct vrev__engine *e = &p->engine;
    struct vrev__portal_opts po = {.domain = vrev__tunnel_domain(o),
                                   .heartbeat_ms = o->heartbeat_ms,
                                   .drain_after = o->drain_after,
                                   .dead_after_ms = o->dead_after_ms};
    int rc = vrev__portal_new(e, "portal", &po, &p->portal);
    if (rc == 0)
        rc = vrev__engine_add_outbound(e, p->portal);
    if (rc == 0)
        rc = vrev__tunnel_remember(p->ctx, &p->rs, o, 1);
    if (rc == 0 && !(p->listen = vrev__strdup(p->ctx, o->listen)))
        rc = VREV_ERR_NOMEM;
    if (rc < 0)
        return vrev__tunnel_fail(err, len, rc, NULL);
    vrev__portal_set_notify(p->portal, forward_event, p);
    if ((rc = vrev__portal_make_tunnel(p, o, &p->tunnel, err, len)) < 0)
        return rc;
    p->publics = vrev__calloc(p->ctx, o->n_publics, sizeof(*p->publics));
    p->public_keys = vrev__calloc(p->ctx, o->n_publics, sizeof(*p->public_keys));
    if (!p->publics || !p->public_keys)
        return vrev__tunnel_fail(err, len, VREV_ERR_NOMEM, NULL);
    for (size_t i = 0; i < o->n_publics; i++) {
        if ((rc = vrev__portal_make_public(p, o, i, &p->publics[i], err, len)) < 0)
            return rc;
        p->n_publics = i + 1;
        if (!(p->public_keys[i] = vrev__portal_public_key(p->ctx, &o->publics[i])))
            return vrev__tunnel_fail(err, len, VREV_ERR_NOMEM, NULL);
    }
    return 0;
}

int vrev__portal_check(const vrev_tunnel_opts *o, char *err, size_t len)
{
    if (!o->has_id || !o->listen || !o->n_publics)
        return vrev__tunnel_fail(err, len, VREV_ERR_INVAL,
                                 !o->has_id ? "a portal needs an id (--id UUID)"
                                 : !o->listen
                                     ? "a portal needs a tunnel listener (--listen HOST:PORT)"
                                     : "a portal needs a public listener (--public HOST:PORT)");
    return 0;
}

static int portal_new(vrev_portal **out, vrev_ctx *ctx, const vrev_tunnel_opts *o, char *err,
                      size_t err_len)
{
    if (!out || !ctx || !o)
        return vrev__tunnel_fail(err, err_len, VREV_ERR_INVAL, NULL);
    *out = NULL;
    int rc;
    vrev_portal *p = vrev__tunnel_alloc(ctx, o, vrev__portal_check, sizeof(*p), &rc, err, err_len);
    if (!p)
        return rc;
    p->ctx = ctx;
    rc = vrev__tunnel_engine_start(&p->engine, &p->defer, ctx, portal_free_deferred, p, err,
                                   err_len);
    if (rc == 0)
        rc = portal_build(p, o, err, err_len);
    if (rc < 0) {
        vrev_portal_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int vrev_portal_new(vrev_portal **out, vrev_ctx *ctx, const vrev_tunnel_opts *o, char *err,
                    size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(portal_new(out, ctx, o, err, err_len), err, err_len);
}

void vrev_portal_free(vrev_portal *p)
{
    if (!p)
        return;
    p->ev.cb = NULL; /* no events while tearing down, nor once freed from inside one */
    if (vrev__defer_free(&p->defer, p->ctx))
        return;
    vrev__engine_close_all(&p->engine);
    for (size_t i = 0; i < p->n_publics; i++) {
        vrev__inbound_free(p->publics[i]);
        vrev__free(p->ctx, p->public_keys[i]);
    }
    vrev__inbound_free(p->tunnel);
    vrev__tunnel_reload_cleanup(&p->engine, &p->rs);
    vrev__engine_cleanup(&p->engine);
    vrev__free(p->ctx, p->publics);
    vrev__free(p->ctx, p->public_keys);
    vrev__free(p->ctx, p->listen);
    vrev__defer_cleanup(&p->defer);
    vrev__free(p->ctx, p);
}

void vrev_portal_set_event_cb(vrev_portal *p, vrev_tunnel_event_cb cb, void *user)
{
    p->ev.cb = cb;
    p->ev.user = user;
}

uint64_t vrev_portal_counter(const vrev_portal *p, int counter)
{
    struct vrev__portal_stats st;
    vrev__portal_get_stats(p->portal, &st);
    struct vrev__tunnel_counters c = {st.tunnels_live,    st.tunnels_opened, st.sessions,
                                      st.sessions_active, st.no_tunnel,      st.bytes_up,
                                      st.bytes_down};
    return vrev__tunnel_counter_of(&c, counter);
}

unsigned vrev_portal_tunnel_port(const vrev_portal *p)
{
    return p && p->tunnel ? vrev__inbound_port(p->tunnel) : 0;
}

unsigned vrev_portal_public_port(const vrev_portal *p, size_t i)
{
    return p && i < p->n_publics ? vrev__inbound_port(p->publics[i]) : 0;
}

/* --- metrics and readiness (vrev/obs.h) ------------------------------------------------------ */

int vrev_portal_metrics(const vrev_portal *p, vrev_metric_cb cb, void *user)
{
    if (!p || !cb)
        return VREV_ERR_INVAL;
    struct vrev__metrics m = {cb, user};
    vrev__metrics_portal(&m, p->portal);
    vrev__metrics_inbound(&m, p->tunnel);
    for (size_t i = 0; i < p->n_publics; i++)
        vrev__metrics_inbound(&m, p->publics[i]);
    vrev__metrics_engine(&m, &p->engine);
    vrev__metrics_reloads(&m, vrev_portal_reload_count(p, 0), vrev_portal_reload_count(p, 1));
    return 0;
}

int vrev_portal_ready(const vrev_portal *p)
{
    return p && vrev_portal_counter(p, VREV_COUNTER_TUNNELS) > 0;
}
