/* Listening sockets. A listener that runs out of file descriptors stops accepting for a
 * moment (the pending connections wait in the backlog) instead of spinning on EMFILE. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

#define LOG_COMPONENT "net"
#define EMFILE_PAUSE_MS 100

struct vrev__listener {
    vrev_ctx *ctx;
    struct evconnlistener *lev;
    struct event *resume;
    vrev__accept_cb cb;
    void *user;
    uint16_t port;
};

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
    (void)lev;
    struct vrev__listener *l = arg;
    l->cb(fd, sa, len, l->user);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__listener *l = arg;
    evconnlistener_enable(l->lev);
}

static void on_error(struct evconnlistener *lev, void *arg)
{
    struct vrev__listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        vrev__log(l->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  "listener on port %u: %s; pausing accepts for %d ms", l->port, strerror(e),
                  EMFILE_PAUSE_MS);
        evconnlistener_disable(lev);
        struct timeval tv = {0, EMFILE_PAUSE_MS * 1000};
        evtimer_add(l->resume, &tv);
        return;
    }
    vrev__log(l->ctx, VREV_LOG_WARN, LOG_COMPONENT, "listener on port %u: accept: %s", l->port,
              strerror(e));
}

static int bind_address(const char *host, uint16_t port, struct sockaddr_storage *ss,
                        int *len)
{
    struct vrev__addr a;
    memset(ss, 0, sizeof(*ss));
    if (!host || !*host)
        host = "0.0.0.0";
    int rc = vrev__addr_from_text(&a, host, port);
    if (rc < 0 || a.type == VREV_ADDR_DOMAIN)
        return rc < 0 ? rc : VREV_ERR_ADDR_SYNTAX; /* listen addresses are IP literals */
    if (a.type == VREV_ADDR_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, a.host, 4);
        *len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, a.host, 16);
        *len = sizeof(*in6);
    }
    return 0;
}

int vrev__listener_new(vrev_ctx *ctx, const char *host, uint16_t port, vrev__accept_cb cb,
                       void *user, struct vrev__listener **out)
{
    struct sockaddr_storage ss;
    int sl;
    *out = NULL;
    if (!ctx->base)
        return VREV_ERR_STATE;
    int rc = bind_address(host, port, &ss, &sl);
    if (rc < 0)
        return rc;
    struct vrev__listener *l = vrev__calloc(ctx, 1, sizeof(*l));
    if (!l)
        return VREV_ERR_NOMEM;
    l->ctx = ctx;
    l->cb = cb;
    l->user = user;
    l->resume = evtimer_new(ctx->base, on_resume, l);
    unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    if (l->resume)
        l->lev = evconnlistener_new_bind(ctx->base, on_accept, l, flags, 1024,
                                         (struct sockaddr *)&ss, sl);
    if (!l->lev) {
        int e = EVUTIL_SOCKET_ERROR();
        vrev__listener_free(l);
        return e == EADDRINUSE ? VREV_ERR_ADDRINUSE : e == ENOMEM ? VREV_ERR_NOMEM : VREV_ERR_IO;
    }
    evconnlistener_set_error_cb(l->lev, on_error);
    vrev__tcp_tune(evconnlistener_get_fd(l->lev), true); /* inherited by accepted sockets */
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&bound, &bl) == 0)
        l->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                   : ((struct sockaddr_in6 *)&bound)->sin6_port);
    *out = l;
    return 0;
}

void vrev__listener_free(struct vrev__listener *l)
{
    if (!l)
        return;
    if (l->lev)
        evconnlistener_free(l->lev);
    if (l->resume)
        event_free(l->resume);
    vrev__free(l->ctx, l);
}

void vrev__listener_arm_abort(struct vrev__listener *l)
{
    /* Linux copies a listener's socket options, SO_LINGER included, to the sockets it accepts:
     * armed here, they cost no system call each. */
    struct linger lg = {1, 0};
    setsockopt(evconnlistener_get_fd(l->lev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

uint16_t vrev__listener_port(const struct vrev__listener *l)
{
    return l->port;
}
