/* freedom: dial the link's target (or the configured redirect) and relay (WIRE-SPEC §6.2).
 * A failed dial is retried as V2Ray does (dialer.c); the link is then closed with an error (an
 * RST, or End|Error on a mux session). */
#include <string.h>

#include "proxy.h"
#include "udp.h"

#define LOG_COMPONENT "freedom"
#define FREEDOM_RETRY_STEP_MS 100

struct freedom {
    struct vrev__outbound base; /* first */
    struct vrev__addr redirect;
    bool redirect_host;
    uint16_t redirect_port;
    int domain_strategy;
};

static void on_dialed(struct bufferevent *link, struct bufferevent *bev, int err, void *user)
{
    struct freedom *f = user;
    if (err) {
        vrev__bev_close(link, 1);
        return;
    }
    vrev__engine_relay(f->base.engine, link, bev);
}

static int freedom_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                          struct bufferevent *link)
{
    struct freedom *f = (struct freedom *)ob;
    /* redirect: the address is replaced unless unset, the port unless 0 (V2Ray's rule) */
    struct vrev__addr target = info->target;
    if (f->redirect_host) {
        uint16_t port = target.port;
        target = f->redirect;
        target.port = port;
    }
    if (f->redirect_port)
        target.port = f->redirect_port;
    if (info->network == VREV_NET_UDP)
        return vrev__udp_flow_start(ob->engine, link, &target);
    return vrev__outbound_dial(ob, link, &target, FREEDOM_RETRY_STEP_MS, on_dialed, f);
}

static void freedom_destroy(struct vrev__outbound *ob)
{
    vrev__outbound_cleanup(ob);
    vrev__free(ob->engine->ctx, ob);
}

static const struct vrev__outbound_ops freedom_ops = {"freedom", freedom_handle,
                                                      freedom_destroy};

int vrev__freedom_new(struct vrev__engine *e, const char *tag,
                      const struct vrev__freedom_opts *opts, struct vrev__outbound **out)
{
    struct freedom *f = vrev__calloc(e->ctx, 1, sizeof(*f));
    if (!f)
        return VREV_ERR_NOMEM;
    int rc = vrev__outbound_init(&f->base, e, &freedom_ops, tag);
    if (rc == 0 && opts && opts->redirect_host && *opts->redirect_host &&
        strcmp(opts->redirect_host, "0.0.0.0") != 0) {
        rc = vrev__addr_from_text(&f->redirect, opts->redirect_host, 0);
        f->redirect_host = true;
    }
    if (rc < 0) {
        freedom_destroy(&f->base);
        return rc;
    }
    if (opts) {
        f->redirect_port = opts->redirect_port;
        f->domain_strategy = opts->domain_strategy;
    }
    *out = &f->base;
    return 0;
}
