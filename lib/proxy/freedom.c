/* freedom: dial the link's target (or the configured redirect) and relay (WIRE-SPEC §6.2).
 * domainStrategy UseIP / UseIPv4 / UseIPv6 resolve a name first and dial one of its addresses
 * (of that family), picked at random; AsIs dials the name. UDP targets given by name are
 * resolved whatever the strategy (a datagram socket needs an address).
 * A failed dial is retried as V2Ray does (dialer.c); the link is then closed with an error (an
 * RST, or End|Error on a mux session). */
#include <string.h>
#include <sys/socket.h>

#include "codec/proxy_proto.h"
#include "core/list.h"
#include "udp.h"

#define LOG_COMPONENT "freedom"
#define FREEDOM_RETRY_STEP_MS 100

struct fdial;

struct freedom {
    struct vrev__outbound base; /* first */
    struct vrev__addr redirect;
    bool redirect_host;
    uint16_t redirect_port;
    int domain_strategy;
    int proxy_protocol;  /* PROXY header version for TCP targets; 0: none */
    struct fdial *dials; /* the TCP links on their way to a target */
};

/* A TCP link on its way to its target: its id, for the relay's lines, who it is for, for a
 * PROXY header, and its handoff (a link handed over, proxy.h); kept until the dial ends (or the
 * outbound goes: a resolve has no release hook). */
struct fdial {
    struct freedom *f;
    struct fdial *prev, *next;
    uint64_t conn_id;
    struct vrev__addr src, dst;
    bool has_src, has_dst;
    struct vrev__handoff *handoff; /* NULL: a link bufferevent */
    bool dial_once;
    /* A name resolved first (UseIP*): the owner's count of dials in progress, held from the
     * question on, resolving being part of the dial (the dialer is not given it then) */
    struct vrev__gauge *dialing;
};

static void fdial_free(struct fdial *d)
{
    vrev__gauge_end(d->dialing);
    VREV__LIST_REMOVE(d->f->dials, d);
    vrev__free(d->f->base.engine->ctx, d);
}

/* The header goes first, before any of the link's bytes: the client and the address it
 * connected to; without the latter, the target's own (what this connection reached). Neither
 * known: UNKNOWN / LOCAL, and the service uses the connection's address. */
static int put_header(struct fdial *d, struct bufferevent *bev)
{
    if (d->has_src && !d->has_dst) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        evutil_socket_t fd = bufferevent_getfd(bev);
        if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
            vrev__addr_from_sockaddr(&d->dst, (const struct sockaddr *)&ss);
            d->has_dst = true;
        }
    }
    uint8_t hdr[VREV_PP_V1_MAX];
    int n = vrev__pp_encode(hdr, sizeof(hdr), d->f->proxy_protocol, d->has_src ? &d->src : NULL,
                            d->has_dst ? &d->dst : NULL);
    if (n > 0 && evbuffer_add(bufferevent_get_output(bev), hdr, (size_t)n) < 0)
        return VREV_ERR_NOMEM;
    return 0;
}

static void on_dialed(struct bufferevent *link, struct bufferevent *bev, int err, void *user)
{
    struct fdial *d = user;
    struct freedom *f = d->f;
    struct vrev__handoff *h = d->handoff;
    uint64_t id = d->conn_id;
    if (!err && f->proxy_protocol)
        err = put_header(d, bev);
    fdial_free(d);
    if (err && bev)
        vrev__bev_close(bev, 1);
    vrev__outbound_finish(&f->base, link, h, err ? NULL : bev, err, id);
}

static struct fdial *fdial_new(struct freedom *f, const struct vrev__link_info *info,
                               struct bufferevent *link)
{
    struct fdial *d = vrev__calloc(f->base.engine->ctx, 1, sizeof(*d));
    if (!d)
        return NULL;
    d->f = f;
    d->conn_id = info->conn_id;
    d->has_src = info->has_source;
    d->src = info->source;
    d->has_dst = info->has_local;
    d->dst = info->local;
    d->handoff = link ? NULL : info->handoff;
    d->dial_once = info->dial_once;
    VREV__LIST_PUSH(f->dials, d);
    return d;
}

static void fdial_release(void *user) /* the dial was cancelled */
{
    fdial_free(user);
}

/* Dial for a link (info: its dial count and handoff; NULL: none). */
static int dial(struct fdial *d, struct bufferevent *link, const struct vrev__addr *target,
                const struct vrev__link_info *info)
{
    int rc = vrev__outbound_dial(&d->f->base, link, target, FREEDOM_RETRY_STEP_MS, info, on_dialed,
                                 fdial_release, d);
    if (rc < 0) /* neither called */
        fdial_free(d);
    return rc;
}

/* UseIP*: the resolved address is dialled; if the name did not resolve, the name itself (as
 * V2Ray does). */
static void tcp_resolved(struct bufferevent *link, const struct vrev__addr *addr, int err,
                         void *user)
{
    (void)err;
    struct fdial *d = user;
    struct vrev__link_info info = {.conn_id = d->conn_id,
                                   .network = VREV_NET_TCP,
                                   .target = *addr,
                                   .dial_once = d->dial_once,
                                   .handoff = d->handoff}; /* still counted by d */
    dial(d, link, addr, &info);
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
    return strategy == VREV_DS_USE_IPV4   ? AF_INET
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
        return name ? vrev__engine_resolve_for(ob->engine, link, &target, family, info->conn_id,
                                               udp_resolved, f)
                    : vrev__udp_flow_start(ob->engine, link, &target);
    struct fdial *d = fdial_new(f, info, link);
    if (!d) {
        vrev__outbound_finish(ob, link, info->handoff, NULL, VREV_ERR_NOMEM, info->conn_id);
        return VREV_ERR_NOMEM;
    }
    vrev__outbound_log_dial(ob, info, &target);
    if (name && f->domain_strategy != VREV_DS_AS_IS) {
        d->dialing = vrev__gauge_start(info->dialing); /* from the question on */
        int rc = vrev__engine_resolve_for(ob->engine, link, &target, family, info->conn_id,
                                          tcp_resolved, d);
        if (rc < 0) /* tcp_resolved not called */
            fdial_free(d);
        return rc;
    }
    /* counted for the link's owner (a bridge's dials per tunnel) while in progress */
    return dial(d, link, &target, info);
}

static int freedom_open(struct vrev__outbound *ob, const struct vrev__link_info *info)
{
    const struct freedom *f = (const struct freedom *)ob;
    bool name = f->redirect_host ? f->redirect.type == VREV_ADDR_DOMAIN
                                 : info->target.type == VREV_ADDR_DOMAIN;
    /* a datagram flow, and a name resolved first (resolve.c takes a link), relay a pair */
    if (info->network == VREV_NET_UDP || (name && f->domain_strategy != VREV_DS_AS_IS))
        return VREV_ERR_UNSUPPORTED;
    return freedom_handle(ob, info, NULL); /* the stream goes to info->handoff */
}

static void freedom_destroy(struct vrev__outbound *ob)
{
    struct freedom *f = (struct freedom *)ob;
    while (f->dials)
        fdial_free(f->dials);
    vrev__outbound_cleanup(ob);
    vrev__free(ob->engine->ctx, ob);
}

static const struct vrev__outbound_ops freedom_ops = {.protocol = "freedom",
                                                      .handle = freedom_handle,
                                                      .destroy = freedom_destroy,
                                                      .open = freedom_open};

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

void vrev__freedom_set_proxy_protocol(struct vrev__outbound *ob, int version)
{
    ((struct freedom *)ob)->proxy_protocol = version;
}
