/* Dialing on behalf of a link, with V2Ray's retries: 5 attempts in all, the k-th retry after
 * k * step milliseconds (freedom: 100 ms steps; VMess/VLESS outbounds: 200 ms), or a single
 * attempt for a link whose owner retries on its own (a bridge's tunnel). Until the
 * callback runs, the engine owns the link: stopping the engine closes it and releases the
 * caller's state, and so does the link failing meanwhile (a mux session reset by its peer: a
 * rapid reset must not leave dials behind). A link without a bufferevent (a bridge's tunnel,
 * vrev__engine_open) is its handoff instead: stopping the engine finishes it with an error.
 * A dial may be counted on a gauge while it is in progress (proxy.h). */
#include <string.h>

#include "core/timeval.h"
#include "net/tls.h"
#include "proxy.h"

#define DIAL_ATTEMPTS 5
#define DIAL_TIMEOUT_MS 4000

struct link_dial {
    struct vrev__conn conn; /* first */
    struct vrev__engine *engine;
    struct bufferevent *link;      /* NULL: handed over instead (handoff) */
    struct vrev__handoff *handoff; /* the engine's reference while dialing; NULL: a link */
    struct vrev__addr target;
    struct vrev__tls_ctx *tls;                /* borrowed from the outbound */
    const struct vrev__transport *layer;      /* an embedder's transport, also borrowed */
    const struct vrev__carrier_opts *carrier; /* borrowed too; NULL: none */
    uint32_t step_ms;
    int attempt;
    struct vrev__dial *dial;
    struct event *retry;
    struct vrev__gauge *dialing; /* counted on while in progress; NULL: not counted */
    uint64_t conn_id;            /* the link's, for the lines */
    vrev__link_dialed_fn done;
    void (*release)(void *user);
    void *user;
};

static void link_dial_free(struct link_dial *d, bool close_link)
{
    vrev_ctx *ctx = d->engine->ctx;
    vrev__tcp_dial_cancel(d->dial);
    vrev__gauge_end(d->dialing);
    if (d->retry)
        event_free(d->retry);
    if (close_link && d->link)
        vrev__bev_close(d->link, 1);
    else if (close_link && d->handoff)
        vrev__handoff_finish(d->handoff, NULL, VREV_ERR_STATE);
    vrev__free(ctx, d);
}

static void link_dial_close(struct vrev__conn *c) /* the engine stops */
{
    struct link_dial *d = (struct link_dial *)c;
    if (d->release)
        d->release(d->user);
    link_dial_free(d, true);
}

static void attempt(struct link_dial *d);

/* The link failed while its dial is in progress: give up the dial. An end of stream is not a
 * failure (a client may half-close right after its request): the dial goes on. */
static void on_link_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct link_dial *d = arg;
    if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    vrev__engine_untrack(d->engine, &d->conn);
    link_dial_close(&d->conn);
}

static void on_dialed(struct bufferevent *bev, int err, int sys, void *user)
{
    struct link_dial *d = user;
    d->dial = NULL;
    if (err && d->step_ms && ++d->attempt < DIAL_ATTEMPTS) {
        struct timeval tv = vrev__ms_to_tv((uint32_t)d->attempt * d->step_ms);
        evtimer_add(d->retry, &tv);
        return;
    }
    struct vrev__engine *e = d->engine;
    struct bufferevent *link = d->link;
    vrev__link_dialed_fn done = d->done;
    void *cb_user = d->user;
    if (!err) /* a bridge's local service, a proxy's target: reset if we die mid-stream */
        vrev__bev_arm_abort(bev);
    if (!err && (d->tls || d->layer)) { /* TLS checks the server's name against its cert */
        char host[VREV_ADDR_DOMAIN_MAX + 1] = "";
        if (d->target.type == VREV_ADDR_DOMAIN)
            vrev__addr_host_text(&d->target, host, sizeof(host));
        if (d->tls)
            bev = vrev__tls_wrap(d->tls, bev, host[0] ? host : NULL, d->conn_id, &err);
        else
            bev = vrev__transport_wrap(e->ctx, d->layer, bev, VREV_TRANSPORT_CLIENT,
                                       host[0] ? host : NULL, d->conn_id, &err);
    }
    if (!err && d->carrier && d->carrier->kind != VREV_CARRIER_TCP) {
        char name[VREV_ADDR_DOMAIN_MAX + 1], host[VREV_ADDR_DOMAIN_MAX + 16];
        vrev__addr_host_text(&d->target, name, sizeof(name));
        if (vrev__ws_default_host(name, d->target.port, d->tls != NULL, host, sizeof(host)) < 0)
            host[0] = 0;
        bev = vrev__carrier_client(e->ctx, bev, d->carrier, host, &err);
    }
    if (err) {
        char t[VREV_MUX_TARGET_MAX];
        vrev__addr_target_text(&d->target, t, sizeof(t));
        /* a single attempt's owner retries soon and says so itself */
        vrev__log(e->ctx, d->step_ms ? VREV_LOG_INFO : VREV_LOG_DEBUG, "dial",
                  VREV__CONN_FMT "%s: gave up after %d attempts: %s%s%s",
                  VREV__CONN_ARG(d->conn_id), t, d->step_ms ? DIAL_ATTEMPTS : 1, vrev_strerror(err),
                  sys ? ": " : "", sys ? strerror(sys) : "");
        e->stats.dial_failures++;
    }
    vrev__engine_untrack(e, &d->conn);
    link_dial_free(d, false);
    if (link)
        bufferevent_setcb(link, NULL, NULL, NULL, NULL);
    done(link, bev, err, cb_user);
}

static void attempt(struct link_dial *d)
{
    struct vrev__engine *e = d->engine;
    struct evdns_base *dns = d->target.type == VREV_ADDR_DOMAIN ? vrev__engine_dns(e) : NULL;
    int rc = vrev__tcp_dial(e->ctx, dns, &d->target, DIAL_TIMEOUT_MS, on_dialed, d, &d->dial);
    if (rc < 0) {
        d->dial = NULL;
        on_dialed(NULL, rc, 0, d);
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    attempt(arg);
}

struct vrev__gauge *vrev__gauge_new(vrev_ctx *ctx)
{
    struct vrev__gauge *g = vrev__calloc(ctx, 1, sizeof(*g));
    if (g) {
        g->ctx = ctx;
        g->refs = 1;
    }
    return g;
}

struct vrev__gauge *vrev__gauge_ref(struct vrev__gauge *g)
{
    g->refs++;
    return g;
}

void vrev__gauge_unref(struct vrev__gauge *g)
{
    if (g && --g->refs == 0)
        vrev__free(g->ctx, g);
}

struct vrev__gauge *vrev__gauge_start(struct vrev__gauge *g)
{
    if (g)
        g->n++;
    return g ? vrev__gauge_ref(g) : NULL;
}

void vrev__gauge_end(struct vrev__gauge *g)
{
    if (!g)
        return;
    g->n--;
    if (g->on_drop)
        g->on_drop(g->drop_arg);
    vrev__gauge_unref(g);
}

int vrev__outbound_dial_req(struct vrev__outbound *ob, struct bufferevent *link,
                            const struct vrev__link_info *info, const struct vrev__addr *server,
                            uint32_t step_ms, vrev__link_dialed_fn done,
                            void (*release)(void *user), void *req)
{
    vrev__outbound_log_dial(ob, info, server);
    int rc = vrev__outbound_dial(ob, link, server, step_ms, info, done, release, req);
    if (rc < 0)
        vrev__free(ob->engine->ctx, req);
    return rc;
}

int vrev__outbound_dial(struct vrev__outbound *ob, struct bufferevent *link,
                        const struct vrev__addr *target, uint32_t step_ms,
                        const struct vrev__link_info *info, vrev__link_dialed_fn done,
                        void (*release)(void *user), void *user)
{
    struct vrev__engine *e = ob->engine;
    struct vrev__handoff *h = link || !info ? NULL : info->handoff;
    struct link_dial *d = vrev__calloc(e->ctx, 1, sizeof(*d));
    if (d)
        d->retry = evtimer_new(e->ctx->base, on_retry, d);
    if (!d || !d->retry) {
        vrev__free(e->ctx, d);
        vrev__outbound_finish(ob, link, h, NULL, VREV_ERR_NOMEM, info ? info->conn_id : 0);
        return VREV_ERR_NOMEM;
    }
    *d = (struct link_dial){.engine = e,
                            .link = link,
                            .handoff = h,
                            .target = *target,
                            .tls = ob->tls,
                            .layer = ob->layer,
                            .carrier = &ob->carrier.o,
                            .step_ms = info && info->dial_once ? 0 : step_ms,
                            .retry = d->retry,
                            .conn_id = info ? info->conn_id : 0,
                            .done = done,
                            .release = release,
                            .user = user};
    d->dialing = vrev__gauge_start(info ? info->dialing : NULL);
    vrev__engine_track(e, &d->conn, link_dial_close);
    if (link)
        bufferevent_setcb(link, NULL, NULL, on_link_event, d);
    attempt(d);
    return 0;
}
