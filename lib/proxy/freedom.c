/* freedom: dial the link's target (or the configured redirect) and relay (WIRE-SPEC §6.2).
 * domainStrategy UseIP / UseIPv4 / UseIPv6 resolve a name first and dial one of its addresses
 * (of that family), picked at random; AsIs dials the name. UDP targets given by name are
 * resolved whatever the strategy (a datagram socket needs an address).
 * A failed dial is retried as V2Ray does (dialer.c); the link is then closed with an error (an
 * RST, or End|Error on a mux session). */
#include <string.h>
#include <sys/socket.h>

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

/* UseIP*: the resolved address is dialled; if the name did not resolve, the name itself (as
 * V2Ray does). */
static void tcp_resolved(struct bufferevent *link, const struct vrev__addr *addr, int err,
                         void *user)
{
    (void)err;
    struct freedom *f = user;
    vrev__outbound_dial(&f->base, link, addr, FREEDOM_RETRY_STEP_MS, NULL, on_dialed, NULL, f);
}

/* A UDP socket needs an address: a name is resolved whatever the strategy. */
static void udp_resolved(struct bufferevent *link, const struct vrev__addr *addr, int err,
                         void *user)
{
    struct freedom *f = user;
    if (err < 0) {
        vrev__bev_close(link, 1);
        return;
    }
    vrev__udp_flow_start(f->base.engine, link, addr);
}

static int family_for(int strategy)
{
    return strategy == VREV_DS_USE_IPV4 ? AF_INET
           : strategy == VREV_DS_USE_IPV6 ? AF_INET6
                                          : AF_UNSPEC;
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
    int family = family_for(f->domain_strategy);
    bool name = target.type == VREV_ADDR_DOMAIN;
    if (info->network == VREV_NET_UDP)
        return name ? vrev__engine_resolve_for(ob->engine, link, &target, family, udp_resolved, f)
                    : vrev__udp_flow_start(ob->engine, link, &target);
    if (name && f->domain_strategy != VREV_DS_AS_IS)
        return vrev__engine_resolve_for(ob->engine, link, &target, family, tcp_resolved, f);
    /* counted for the link's owner (a bridge's dials per tunnel) while in progress */
    return vrev__outbound_dial(ob, link, &target, FREEDOM_RETRY_STEP_MS, info->dialing,
                                       on_dialed, NULL, f);
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
