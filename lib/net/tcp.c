/* TCP: dialing with a deadline, listening with EMFILE back-off, socket tuning and closing. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "tls.h"

#define LOG_COMPONENT "net"

void vrev__policy_default(struct vrev__policy *p)
{
    p->handshake_ms = 60 * 1000;
    p->conn_idle_ms = 300 * 1000;
    p->uplink_only_ms = 1000;
    p->downlink_only_ms = 1000;
    p->buffer_bytes = 512 * 1024;
}

void vrev__tcp_tune(evutil_socket_t fd)
{
    int one = 1, idle = 30, intvl = 10, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

struct bufferevent *vrev__bev_socket(vrev_ctx *ctx, evutil_socket_t fd)
{
    struct bufferevent *bev =
        bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev && fd >= 0)
        evutil_closesocket(fd);
    return bev;
}

void vrev__addr_from_sockaddr(struct vrev__addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        a->type = VREV_ADDR_IPV4;
        a->len = 4;
        memcpy(a->host, &in->sin_addr, 4);
        a->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        a->type = VREV_ADDR_IPV6;
        a->len = 16;
        memcpy(a->host, &in6->sin6_addr, 16);
        a->port = ntohs(in6->sin6_port);
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a->host, mapped, 12)) { /* V2Ray sees IPv4-mapped peers as IPv4 */
            memmove(a->host, a->host + 12, 4);
            a->type = VREV_ADDR_IPV4;
            a->len = 4;
        }
    }
}

socklen_t vrev__addr_to_sockaddr(const struct vrev__addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->type == VREV_ADDR_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->host, 4);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a->port);
    memcpy(&in6->sin6_addr, a->host, 16);
    return sizeof(*in6);
}

/* --- dial ----------------------------------------------------------------------------------- */

struct vrev__dial {
    vrev_ctx *ctx;
    struct bufferevent *bev;
    vrev__dial_cb cb;
    void *user;
};

static int errno_to_vrev(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return VREV_ERR_CONNREFUSED;
    case ETIMEDOUT:
        return VREV_ERR_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
        return VREV_ERR_NETUNREACH;
    case ENOMEM:
    case ENOBUFS:
        return VREV_ERR_NOMEM;
    default:
        return VREV_ERR_IO;
    }
}

static void dial_finish(struct vrev__dial *d, short events)
{
    struct bufferevent *bev = d->bev;
    vrev__dial_cb cb = d->cb;
    void *user = d->user;
    int sys = EVUTIL_SOCKET_ERROR();
    vrev__free(d->ctx, d);
    if (events & BEV_EVENT_CONNECTED) {
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        bufferevent_set_timeouts(bev, NULL, NULL);
        vrev__tcp_tune(bufferevent_getfd(bev));
        cb(bev, 0, 0, user);
        return;
    }
    int err = VREV_ERR_IO;
    if (events & BEV_EVENT_TIMEOUT) {
        err = VREV_ERR_TIMEOUT;
        sys = ETIMEDOUT;
    } else if (bufferevent_socket_get_dns_error(bev)) {
        err = VREV_ERR_RESOLVE;
        sys = 0;
    } else {
        err = errno_to_vrev(sys);
    }
    bufferevent_free(bev);
    cb(NULL, err, sys, user);
}

static void dial_event(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    dial_finish(arg, events);
}

int vrev__tcp_dial(vrev_ctx *ctx, struct evdns_base *dns, const struct vrev__addr *target,
                   uint32_t timeout_ms, vrev__dial_cb cb, void *user, struct vrev__dial **out)
{
    if (!ctx->base)
        return VREV_ERR_STATE;
    if (target->type == VREV_ADDR_DOMAIN && !dns)
        return VREV_ERR_INVAL;
    struct vrev__dial *d = vrev__calloc(ctx, 1, sizeof(*d));
    if (!d)
        return VREV_ERR_NOMEM;
    d->ctx = ctx;
    d->cb = cb;
    d->user = user;
    d->bev = bufferevent_socket_new(ctx->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!d->bev) {
        vrev__free(ctx, d);
        return VREV_ERR_NOMEM;
    }
    bufferevent_setcb(d->bev, NULL, NULL, dial_event, d);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(d->bev, NULL, &tv); /* a write timeout bounds the connect */
    int rc;
    if (target->type == VREV_ADDR_DOMAIN) {
        char host[VREV_ADDR_DOMAIN_MAX + 1];
        memcpy(host, target->host, target->len);
        host[target->len] = '\0';
        rc = bufferevent_socket_connect_hostname(d->bev, dns, AF_UNSPEC, host, target->port);
    } else {
        struct sockaddr_storage ss;
        socklen_t sl = vrev__addr_to_sockaddr(target, &ss);
        rc = bufferevent_socket_connect(d->bev, (struct sockaddr *)&ss, (int)sl);
    }
    if (rc < 0) {
        /* libevent reports immediate failures (e.g. EMFILE) synchronously */
        int sys = EVUTIL_SOCKET_ERROR();
        bufferevent_free(d->bev);
        vrev__free(ctx, d);
        return sys == EMFILE || sys == ENFILE ? VREV_ERR_NOMEM : errno_to_vrev(sys);
    }
    if (out)
        *out = d;
    return 0;
}

void vrev__tcp_dial_cancel(struct vrev__dial *d)
{
    if (!d)
        return;
    bufferevent_free(d->bev);
    vrev__free(d->ctx, d);
}

/* --- closing -------------------------------------------------------------------------------- */

/* A plain socket bufferevent (not a filter, whose getfd answers its socket's fd, nor a pair). */
static bool is_socket(struct bufferevent *bev)
{
    return !bufferevent_get_underlying(bev) && bufferevent_getfd(bev) >= 0;
}

void vrev__bev_shutdown_write(struct bufferevent *bev)
{
    if (is_socket(bev))
        shutdown(bufferevent_getfd(bev), SHUT_WR);
    else /* a pair or a layer (VMess, TLS): pass an end of stream through it */
        bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
}

void vrev__bev_close(struct bufferevent *bev, int abort)
{
    if (!bev)
        return;
    /* An abort resets the socket at the bottom of the stack, so that the peer sees an error
     * rather than a clean end. */
    for (struct bufferevent *b = bev; abort && b; b = bufferevent_get_underlying(b)) {
        if (vrev__tls_set_abort(b)) /* the TLS layer resets its own socket, no close_notify */
            break;
        if (is_socket(b)) {
            struct linger lg = {1, 0};
            setsockopt(bufferevent_getfd(b), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
    }
    /* Freeing one end of a pair tells the other end nothing: say it explicitly, as an error
     * for an abort, as an end of stream otherwise. */
    struct bufferevent *partner = bufferevent_pair_get_partner(bev);
    if (partner && abort)
        bufferevent_trigger_event(partner, BEV_EVENT_ERROR | BEV_EVENT_READING,
                                  BEV_TRIG_DEFER_CALLBACKS);
    else if (partner)
        bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
    bufferevent_free(bev);
}
