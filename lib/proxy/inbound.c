/* Inbounds: a listener plus what to do with each accepted connection. dokodemo-door sends
 * every connection to one fixed target (WIRE-SPEC §6.1), over TCP and/or UDP (udp.c); vmess
 * lives in vmess_in.c. */
#include <string.h>
#include <time.h>

#include "codec/h2.h"
#include "core/list.h"
#include "core/timeval.h"
#include "inbound.h"
#include "net/tls.h"
#include "udp.h"

#define LOG_COMPONENT "inbound"

struct vrev__inbound *vrev__inbound_alloc(struct vrev__engine *e, const char *tag)
{
    struct vrev__inbound *in = vrev__calloc(e->ctx, 1, sizeof(*in));
    if (!in)
        return NULL;
    in->engine = e;
    if ((tag && !(in->tag = vrev__strdup(e->ctx, tag))) || vrev__preauth_init(in) < 0) {
        vrev__free(e->ctx, in->tag);
        vrev__free(e->ctx, in);
        return NULL;
    }
    return in;
}

/* --- h2: one connection, many streams, each a connection of the inbound ------------------- */

/* An h2 connection of an inbound, with the address its streams come from. */
struct vrev__h2_link {
    struct vrev__inbound *in;
    struct vrev__h2_conn *conn;
    struct sockaddr_storage peer;
    struct vrev__h2_link *prev, *next;
};

static void h2_unlink(struct vrev__h2_link *l)
{
    VREV__LIST_REMOVE(l->in->h2_conns, l);
    vrev__free(l->in->engine->ctx, l);
}

/* A stream passed the host and path checks: it starts its handshake as a connection would. */
static void h2_on_stream(struct bufferevent *stream, const struct vrev__h2_request *req, void *user)
{
    (void)req;
    struct vrev__h2_link *l = user;
    struct vrev__inbound *in = l->in;
    in->stream = stream;
    in->proto_accept(-1, (const struct sockaddr *)&l->peer, (int)sizeof(l->peer), in);
    if (in->stream) /* not taken */
        vrev__bev_close(in->stream, 1);
    in->stream = NULL;
}

static void h2_gone(struct vrev__h2_conn *conn, void *user)
{
    (void)conn;
    h2_unlink(user);
}

static struct bufferevent *socket_below(struct vrev__inbound *in, evutil_socket_t fd,
                                        uint64_t conn_id);

/* The listener's accept: an h2 connection is served here, its streams enter the protocol. A
 * connection is closed when it has held no stream for the handshake deadline
 * (policy.handshake) before its first stream, for policy.connIdle after. */
static void inbound_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    struct vrev__inbound *in = user;
    if (in->carrier.o.kind != VREV_CARRIER_H2) {
        in->proto_accept(fd, peer, len, in);
        return;
    }
    vrev_ctx *ctx = in->engine->ctx;
    struct vrev__h2_link *l = vrev__calloc(ctx, 1, sizeof(*l));
    /* the connection's id names its TLS lines; each stream gets one of its own */
    struct bufferevent *bev = l ? socket_below(in, fd, vrev__conn_id(ctx)) : NULL;
    if (!bev) {
        if (!l)
            evutil_closesocket(fd);
        vrev__free(ctx, l);
        return;
    }
    l->in = in;
    if (len > 0 && (size_t)len <= sizeof(l->peer))
        memcpy(&l->peer, peer, (size_t)len);
    int err;
    const struct vrev__policy *p = &in->engine->policy;
    l->conn = vrev__h2_serve(ctx, bev, &in->carrier.o, p->handshake_ms, p->conn_idle_ms,
                             h2_on_stream, h2_gone, l, &err);
    if (!l->conn) {
        vrev__free(ctx, l);
        return;
    }
    VREV__LIST_PUSH(in->h2_conns, l);
}

static void h2_close_all(struct vrev__inbound *in)
{
    while (in->h2_conns) {
        vrev__h2_conn_close(in->h2_conns->conn);
        h2_unlink(in->h2_conns);
    }
}

/* The listener's accept: a PROXY header first, if the inbound expects one. */
static void listener_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    struct vrev__inbound *in = user;
    if (in->accept_proxy)
        vrev__pp_accept(in, fd, peer, len, inbound_accept);
    else
        inbound_accept(fd, peer, len, in);
}

void vrev__inbound_set_accept_proxy(struct vrev__inbound *in, bool on)
{
    const struct vrev__limits *l = &in->engine->limits;
    in->accept_proxy = on;
    /* behind a proxy every connection comes from its address: only the total can be capped
     * (the caps were set by vrev__inbound_listen, so this cannot fail) */
    if (in->listener)
        vrev__listener_set_caps(in->listener, l->conns_per_listener,
                                on ? l->conns_per_listener : l->conns_per_source);
}

int vrev__inbound_listen(struct vrev__inbound *in, const char *host, uint16_t port,
                         vrev__accept_cb accept)
{
    const struct vrev__limits *l = &in->engine->limits;
    in->proto_accept = accept;
    if (in->engine->adopt) { /* a reload: the old inbound's socket, caps and all */
        in->listener = in->engine->adopt;
        in->engine->adopt = NULL;
        return 0;
    }
    int rc = vrev__listener_new(in->engine->ctx, host, port, listener_accept, in, &in->listener);
    if (rc == 0) /* a public or proxied client: reset if we die mid-stream (lib/net/net.h) */
        vrev__listener_arm_abort(in->listener);
    if (rc == 0)
        rc = vrev__listener_set_caps(in->listener, l->conns_per_listener, l->conns_per_source);
    return rc;
}

/* The socket with TLS (or an embedder's transport) on. */
static struct bufferevent *socket_below(struct vrev__inbound *in, evutil_socket_t fd,
                                        uint64_t conn_id)
{
    vrev_ctx *ctx = in->engine->ctx;
    struct bufferevent *bev = vrev__bev_socket(ctx, fd);
    int err;
    if (bev && in->tls) /* these wraps free bev on failure */
        bev = vrev__tls_wrap(in->tls, bev, NULL, conn_id, &err);
    else if (bev && in->layer)
        bev = vrev__transport_wrap(ctx, in->layer, bev, VREV_TRANSPORT_SERVER, NULL, conn_id, &err);
    return bev;
}

struct bufferevent *vrev__inbound_socket(struct vrev__inbound *in, evutil_socket_t fd,
                                         uint64_t conn_id)
{
    struct bufferevent *bev = socket_below(in, fd, conn_id);
    int err;
    if (bev && in->carrier.o.kind == VREV_CARRIER_WS)
        bev = vrev__carrier_server(in->engine->ctx, bev, &in->carrier.o, &err);
    return bev;
}

int vrev__inbound_set_carrier(struct vrev__inbound *in, const struct vrev__carrier_opts *o)
{
    return vrev__carrier_set(in->engine->ctx, &in->carrier, o);
}

void vrev__inbound_set_tls(struct vrev__inbound *in, struct vrev__tls_ctx *tls)
{
    vrev__tls_ctx_free(in->tls);
    in->tls = tls;
}

/* --- handshakes ----------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How a handshake's connection is closed. Nothing of it may outlive the handshake deadline
 * (issue M7: a TLS layer's lingering close, restarted by every byte, kept sockets of clients
 * trickling a byte every 5 s for days): a graceful end lingers at most until the deadline,
 * the deadline itself and an engine stop close at once, an eviction resets. */
enum close_how {
    KEEP,     /* the connection goes on (vrev__handshake_take) */
    GRACEFUL, /* the protocol ended it, or the client did: what is written still goes out */
    NOW,      /* the deadline, or the engine stops: closed at once, no lingering */
    RESET,    /* evicted for a newcomer */
};

static void close_bev(struct vrev__handshake *h, enum close_how how)
{
    if (how == RESET) {
        vrev__bev_close(h->bev, 1);
        return;
    }
    int64_t left = how == NOW ? 0 : h->until_ms - now_ms();
    /* no-op without TLS; under a carrier, the TLS below it */
    vrev__layer_set_linger(h->bev, left > 0 ? (uint32_t)left : 0);
    vrev__bev_close(h->bev, 0);
}

static void handshake_free(struct vrev__handshake *h, enum close_how how)
{
    vrev_ctx *ctx = h->engine->ctx;
    vrev__preauth_release(h->in, h);
    if (h->wipe)
        h->wipe(h);
    if (h->deadline)
        event_free(h->deadline);
    if (how != KEEP && h->bev)
        close_bev(h, how);
    vrev__free(ctx, h);
}

static void handshake_close(struct vrev__conn *c)
{
    handshake_free((struct vrev__handshake *)c, NOW);
}

void vrev__handshake_end(struct vrev__handshake *h)
{
    vrev__engine_untrack(h->engine, &h->conn);
    handshake_free(h, GRACEFUL);
}

void vrev__handshake_evict(struct vrev__handshake *h)
{
    vrev__engine_untrack(h->engine, &h->conn);
    handshake_free(h, RESET);
}

struct bufferevent *vrev__handshake_take(struct vrev__handshake *h)
{
    struct bufferevent *bev = h->bev;
    h->bev = NULL;
    vrev__engine_untrack(h->engine, &h->conn);
    handshake_free(h, KEEP);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    return bev;
}

void vrev__handshake_log(struct vrev__handshake *h, const char *component, const char *verb,
                         const char *why)
{
    char src[VREV_MUX_TARGET_MAX];
    vrev__addr_target_text(&h->source, src, sizeof(src));
    vrev__log(h->engine->ctx, VREV_LOG_INFO, component, VREV__CONN_FMT "[%s] %s %s: %s",
              VREV__CONN_ARG(h->conn_id), h->in && h->in->tag ? h->in->tag : "", verb, src, why);
    if (!h->failed && h->in)
        h->in->failures.rejected++;
    h->failed = true;
    vrev__access(h->engine->ctx, src, "", h->in ? h->in->tag : NULL, NULL, 0, why);
}

void vrev__handshake_read(struct vrev__handshake *h, struct bufferevent *bev, bool *rejected,
                          const char *component, vrev__handshake_feed_fn feed)
{
    struct evbuffer *input = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    while (!*rejected && evbuffer_peek(input, -1, NULL, &vec, 1) >= 1 && vec.iov_len) {
        int rc = feed(h, input, vec.iov_base, vec.iov_len);
        if (rc > 0)
            return;
        if (rc < 0) {
            vrev__handshake_log(h, component, "rejected", vrev_strerror(rc));
            *rejected = true;
        }
    }
    if (*rejected) /* keep reading, keep quiet, wait for the deadline */
        evbuffer_drain(input, evbuffer_get_length(input));
}

void vrev__handshake_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct vrev__handshake *h = arg;
    if (!h->failed && h->in) {
        if (what & BEV_EVENT_ERROR)
            h->in->failures.error++;
        else
            h->in->failures.closed++;
    }
    vrev__handshake_end(h);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__handshake *h = arg;
    if (!h->failed && h->in)
        h->in->failures.timeout++;
    vrev__engine_untrack(h->engine, &h->conn);
    handshake_free(h, NOW);
}

/* The first line of a connection's life (at debug level): its id, where it came in, from whom. */
static void log_accepted(const struct vrev__inbound *in, uint64_t id, const struct vrev__addr *src)
{
    vrev_ctx *ctx = in->engine->ctx;
    if (!vrev__log_enabled(ctx, VREV_LOG_DEBUG))
        return;
    char from[VREV_MUX_TARGET_MAX];
    vrev__addr_target_text(src, from, sizeof(from));
    vrev__log(ctx, VREV_LOG_DEBUG, LOG_COMPONENT, VREV__CONN_FMT "[%s] accepted from %s",
              VREV__CONN_ARG(id), in->tag ? in->tag : "", from);
}

/* A handshake with a place in the pool and its deadline timer, not yet armed; NULL on failure
 * (no place: out of memory). */
static struct vrev__handshake *handshake_alloc(struct vrev__inbound *in,
                                               const struct sockaddr *peer, size_t size)
{
    struct vrev__engine *e = in->engine;
    struct vrev__handshake *h = vrev__calloc(e->ctx, 1, size);
    if (!h)
        return NULL;
    h->in = in;
    h->engine = e;
    vrev__addr_from_sockaddr(&h->source, peer);
    h->conn_id = vrev__conn_id(e->ctx);
    log_accepted(in, h->conn_id, &h->source);
    if (!vrev__preauth_admit(in, h)) {
        vrev__free(e->ctx, h);
        return NULL;
    }
    if (!(h->deadline = evtimer_new(e->ctx->base, on_deadline, h))) {
        handshake_free(h, KEEP);
        return NULL;
    }
    return h;
}

static void handshake_arm(struct vrev__handshake *h, void (*wipe)(struct vrev__handshake *h))
{
    struct vrev__engine *e = h->engine;
    h->wipe = wipe;
    vrev__engine_track(e, &h->conn, handshake_close);
    uint32_t ms = e->policy.handshake_ms;
    h->until_ms = now_ms() + ms;
    struct timeval tv = vrev__ms_to_tv(ms);
    evtimer_add(h->deadline, &tv);
}

struct vrev__handshake *vrev__handshake_new(struct vrev__inbound *in, evutil_socket_t fd,
                                            const struct sockaddr *peer, size_t size,
                                            void (*wipe)(struct vrev__handshake *h))
{
    struct vrev__handshake *h = handshake_alloc(in, peer, size);
    if (!h) {
        if (fd >= 0)
            evutil_closesocket(fd);
        return NULL; /* an h2 stream not taken: its connection resets it */
    }
    if (fd < 0) { /* an h2 stream (inbound_accept) */
        h->bev = in->stream;
        in->stream = NULL;
    } else {
        h->bev = vrev__inbound_socket(in, fd, h->conn_id);
    }
    if (!h->bev) {
        handshake_free(h, KEEP);
        return NULL;
    }
    handshake_arm(h, wipe);
    return h;
}

struct vrev__handshake *vrev__handshake_open(struct vrev__inbound *in, const struct sockaddr *peer,
                                             size_t size, void (*wipe)(struct vrev__handshake *h))
{
    struct vrev__handshake *h = handshake_alloc(in, peer, size);
    if (h)
        handshake_arm(h, wipe);
    return h;
}

/* --- dokodemo-door ------------------------------------------------------------------------- */

/* The address the client connected to: the PROXY header's, or the socket's own. */
static void local_addr(const struct vrev__inbound *in, evutil_socket_t fd,
                       struct vrev__link_info *info)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (in->pp_local) {
        info->local = *in->pp_local;
        info->has_local = true;
    } else if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        vrev__addr_from_sockaddr(&info->local, (const struct sockaddr *)&ss);
        info->has_local = info->local.type != 0;
    }
}

static void dokodemo_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    (void)len;
    struct vrev__inbound *in = user;
    struct vrev__engine *e = in->engine;
    uint64_t id = vrev__conn_id(e->ctx);
    struct bufferevent *bev = vrev__inbound_socket(in, fd, id);
    if (!bev)
        return;
    /* A client that speaks first has often sent its request by the time it is accepted: what
     * is there goes out with the session's opening (one tunnel write, not two). */
    vrev__bev_read_now(bev);
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.conn_id = id;
    info.inbound_tag = in->tag;
    info.network = VREV_NET_TCP;
    info.target = in->target;
    vrev__addr_from_sockaddr(&info.source, peer);
    info.has_source = true;
    local_addr(in, fd, &info);
    log_accepted(in, info.conn_id, &info.source);
    vrev__dispatch(e, &info, bev);
}

int vrev__dokodemo_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__dokodemo_opts *opts, struct vrev__inbound **out)
{
    *out = NULL;
    if (!opts || !opts->address)
        return VREV_ERR_INVAL;
    struct vrev__inbound *in = vrev__inbound_alloc(e, tag);
    if (!in)
        return VREV_ERR_NOMEM;
    in->networks = opts->networks ? opts->networks : VREV_ROUTE_TCP;
    int rc = vrev__addr_from_text(&in->target, opts->address, opts->target_port);
    if (rc == 0 && (in->networks & VREV_ROUTE_TCP))
        rc = vrev__inbound_listen(in, opts->listen, opts->port, dokodemo_accept);
    if (rc == 0 && (in->networks & VREV_ROUTE_UDP)) /* same port as TCP when that was 0 */
        rc = vrev__udp_in_new(e, in->tag, opts->listen,
                              in->listener ? vrev__listener_port(in->listener) : opts->port,
                              &in->target, &in->udp);
    if (rc < 0) {
        vrev__inbound_free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void vrev__inbound_free(struct vrev__inbound *in)
{
    if (!in)
        return;
    vrev_ctx *ctx = in->engine->ctx;
    vrev__listener_free(in->listener);
    h2_close_all(in);
    vrev__preauth_cleanup(in); /* its handshakes refer to it */
    vrev__udp_in_free(in->udp);
    vrev__tls_ctx_free(in->tls);
    vrev__carrier_clear(ctx, &in->carrier);
    for (size_t i = 0; i < in->n_users; i++) {
        vrev__vmess_user_wipe(&in->users[i]);
        if (in->emails)
            vrev__free(ctx, in->emails[i]);
    }
    vrev__free(ctx, in->users);
    vrev__free(ctx, in->emails);
    vrev__vmess_replay_free(in->auth_ids);
    vrev__vmess_replay_free(in->sessions);
    vrev__free(ctx, in->tag);
    vrev__free(ctx, in);
}

/* --- reload ---------------------------------------------------------------------------------- */

void vrev__inbound_adopt(struct vrev__inbound *to, struct vrev__inbound *from)
{
    from->listener = NULL;
    vrev__listener_set_user(to->listener, to);
}

void vrev__inbound_drop_adopted(struct vrev__inbound *in)
{
    in->listener = NULL;
    vrev__inbound_free(in);
}

void vrev__inbound_close_listener(struct vrev__inbound *in)
{
    vrev__listener_free(in->listener);
    in->listener = NULL;
    if (in->networks) { /* dokodemo-door: its UDP flows end (a SOCKS relay waits, see .h) */
        vrev__udp_in_free(in->udp);
        in->udp = NULL;
    }
}

bool vrev__inbound_idle(const struct vrev__inbound *in)
{
    return !in->listener && !in->udp && !in->h2_conns && in->preauth.n == 0;
}

static void retired_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__retired *r = arg;
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (vrev__inbound_idle(r->v[i]))
            vrev__inbound_free(r->v[i]);
        else
            r->v[n++] = r->v[i];
    r->n = n;
    if (n) {
        struct timeval tv = {1, 0};
        evtimer_add(r->timer, &tv);
    }
}

int vrev__retired_reserve(struct vrev__retired *r, vrev_ctx *ctx, size_t more)
{
    r->ctx = ctx;
    if (!r->timer && !(r->timer = evtimer_new(ctx->base, retired_sweep, r)))
        return VREV_ERR_NOMEM;
    if (r->n + more <= r->cap)
        return 0;
    struct vrev__inbound **v = vrev__realloc(ctx, r->v, (r->n + more) * sizeof(*v));
    if (!v)
        return VREV_ERR_NOMEM;
    r->v = v;
    r->cap = r->n + more;
    return 0;
}

void vrev__retired_add(struct vrev__retired *r, struct vrev__inbound *in)
{
    vrev__inbound_close_listener(in);
    if (vrev__inbound_idle(in)) { /* nothing of it is in use */
        vrev__inbound_free(in);
        return;
    }
    r->v[r->n++] = in;
    struct timeval tv = {1, 0};
    evtimer_add(r->timer, &tv);
}

void vrev__retired_cleanup(struct vrev__retired *r)
{
    for (size_t i = 0; i < r->n; i++)
        vrev__inbound_free(r->v[i]);
    if (r->timer)
        event_free(r->timer);
    if (r->ctx)
        vrev__free(r->ctx, r->v);
    memset(r, 0, sizeof(*r));
}

uint16_t vrev__inbound_port(const struct vrev__inbound *in)
{
    return in->listener ? vrev__listener_port(in->listener) : vrev__udp_in_port(in->udp);
}
