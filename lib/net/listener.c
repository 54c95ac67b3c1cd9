/* Listening sockets. A listener that runs out of file descriptors stops accepting for a
 * moment (the pending connections wait in the backlog) instead of spinning on EMFILE.
 *
 * Caps on live connections (vrev__listener_set_caps: limits.conns_per_listener and
 * limits.conns_per_source): a connection counts from its accept until its socket is closed,
 * whoever closes it. Knowing when is the hard part: an accepted socket passes to many owners
 * (handshakes, relays, mux sessions, TLS and VMess layers, an embedder's transport), and
 * libevent 2.1 tells nobody when a bufferevent is freed (no free hook; a VMess filter frees
 * its socket inside libevent). Tokens released by every owner would miss some of these
 * paths, and a filter layer on every connection would cost a copy-free but real hop per read
 * on the 6,000-connections/s path. The kernel knows, though, and says it cheaply:
 * - a descriptor number accept() hands out again was closed: the connection we held under
 *   that number has ended (the common case: the kernel reuses the lowest free number);
 * - otherwise SO_COOKIE, a socket's unique 64-bit identity, taken once at accept: the number
 *   that no longer holds a socket with that cookie no longer holds our connection.
 * So each listener keeps, by descriptor, the cookie and source of what it accepted; a count
 * can only be too high, never too low, and before any refusal the listener sweeps its table
 * (a getsockopt per live connection; at most every SWEEP_MS once there are many) so that a
 * connection closed elsewhere does not keep its place. No SO_COOKIE (not Linux >= 4.14): the
 * connection is not counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net.h"
#include "sources.h"

#define LOG_COMPONENT "net"
#define EMFILE_PAUSE_MS 100
#define SWEEP_MS 200    /* the least time between two sweeps of a large table ... */
#define SWEEP_FREE 1024 /* ... which is one of more live connections than this */

struct held {
    uint64_t cookie;
    struct vrev__source *src; /* NULL: no connection of ours under this number */
};

struct vrev__listener {
    vrev_ctx *ctx;
    struct evconnlistener *lev;
    struct event *resume;
    vrev__accept_cb cb;
    void *user;
    uint16_t port;
    /* caps (vrev__listener_set_caps); counting is off until they are set */
    bool counting;
    uint64_t max_conns, max_per_source;
    struct vrev__sources sources;
    struct held *held; /* by descriptor number */
    size_t n_held;
    uint64_t live, refused;
    uint64_t refused_source; /* of refused: over max_per_source, not max_conns */
    int64_t swept_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t cookie_of(evutil_socket_t fd)
{
#ifdef SO_COOKIE
    uint64_t c = 0;
    socklen_t len = sizeof(c);
    if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) == 0 && len == sizeof(c))
        return c;
#else
    (void)fd;
#endif
    return 0;
}

static void drop(struct vrev__listener *l, size_t fd)
{
    struct vrev__source *s = l->held[fd].src;
    l->held[fd].src = NULL;
    l->live--;
    if (--s->n == 0)
        vrev__sources_remove(&l->sources, s);
}

/* Forget the connections whose sockets have been closed since they were accepted. */
static void sweep(struct vrev__listener *l)
{
    int64_t now = now_ms();
    if (l->live > SWEEP_FREE && now - l->swept_ms < SWEEP_MS)
        return;
    l->swept_ms = now;
    for (size_t fd = 0; fd < l->n_held; fd++)
        if (l->held[fd].src && cookie_of((evutil_socket_t)fd) != l->held[fd].cookie)
            drop(l, fd);
}

static const char *over_cap(const struct vrev__listener *l, const struct vrev__source *s)
{
    if (l->live >= l->max_conns)
        return "too many connections on this listener";
    if (s && s->n >= l->max_per_source)
        return "too many connections from this address";
    return NULL;
}

static void hold(struct vrev__listener *l, evutil_socket_t fd, const struct vrev__source_key *k)
{
    uint64_t cookie = cookie_of(fd);
    if (!cookie)
        return;
    if ((size_t)fd >= l->n_held) {
        size_t n = l->n_held ? l->n_held : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct held *v = vrev__realloc(l->ctx, l->held, n * sizeof(*v));
        if (!v)
            return; /* not counted: a count may be too high, never too low */
        memset(v + l->n_held, 0, (n - l->n_held) * sizeof(*v));
        l->held = v;
        l->n_held = n;
    }
    struct vrev__source *s = vrev__sources_get(&l->sources, k);
    if (!s)
        return;
    s->n++;
    l->live++;
    l->held[fd].cookie = cookie;
    l->held[fd].src = s;
}

/* Within the caps? If so the connection is counted from now on. */
static bool admit(struct vrev__listener *l, evutil_socket_t fd, const struct sockaddr *sa)
{
    if ((size_t)fd < l->n_held && l->held[fd].src)
        drop(l, (size_t)fd); /* the number came back: what we held under it is closed */
    struct vrev__source_key k;
    vrev__source_key_of(&k, sa);
    const char *why = over_cap(l, vrev__sources_find(&l->sources, &k));
    if (why) {
        sweep(l);
        why = over_cap(l, vrev__sources_find(&l->sources, &k));
    }
    if (!why) {
        hold(l, fd, &k);
        return true;
    }
    if (l->live < l->max_conns)
        l->refused_source++;
    if (l->refused++ % 100 == 0) { /* rate-limited: a flood must not flood the log */
        char who[64];
        vrev__source_key_text(&k, who, sizeof(who));
        vrev__log(l->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  "listener on port %u: refused a connection from %s: %s (%llu refused so far)",
                  l->port, who, why, (unsigned long long)l->refused);
    }
    return false;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)lev;
    struct vrev__listener *l = arg;
    if (l->counting && !admit(l, fd, sa)) {
        evutil_closesocket(fd); /* a reset where the listener is armed (arm_abort) */
        return;
    }
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

static int bind_address(const char *host, uint16_t port, struct sockaddr_storage *ss, int *len)
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
    if (l->counting)
        vrev__sources_cleanup(&l->sources);
    vrev__free(l->ctx, l->held);
    vrev__free(l->ctx, l);
}

int vrev__listener_set_caps(struct vrev__listener *l, uint64_t max_conns, uint64_t max_per_source)
{
    if (!l->counting) {
        int rc = vrev__sources_init(&l->sources, l->ctx, sizeof(struct vrev__source));
        if (rc < 0)
            return rc;
        l->counting = true;
    }
    l->max_conns = max_conns;
    l->max_per_source = max_per_source;
    return 0;
}

uint64_t vrev__listener_live(const struct vrev__listener *l)
{
    return l->live;
}

uint64_t vrev__listener_refused(const struct vrev__listener *l)
{
    return l->refused;
}

uint64_t vrev__listener_refused_source(const struct vrev__listener *l)
{
    return l->refused_source;
}

void vrev__listener_arm_abort(struct vrev__listener *l)
{
    /* Linux copies a listener's socket options, SO_LINGER included, to the sockets it accepts:
     * armed here, they cost no system call each. */
    struct linger lg = {1, 0};
    setsockopt(evconnlistener_get_fd(l->lev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void vrev__listener_set_user(struct vrev__listener *l, void *user)
{
    l->user = user;
}

uint16_t vrev__listener_port(const struct vrev__listener *l)
{
    return l->port;
}
