/* UDP: dokodemo-door's UDP listener (one packet link per client address, WIRE-SPEC §6.1),
 * the SOCKS5 UDP relay (one packet link per client address and destination, §5.3) and
 * freedom's UDP flows (one connected UDP socket per link, §6.2), which a SOCKS outbound also
 * uses towards its server's UDP relay (each datagram behind a SOCKS header, the flow ending
 * with the association's TCP connection). Packet links carry datagrams framed by
 * lib/net/packet.h; an idle flow or peer is closed after the policy's connIdle.
 *
 * The SOCKS relay takes datagrams only from the IP addresses of clients whose UDP ASSOCIATE
 * connection is open (V2Ray 4.34 relays for anyone who can reach the port).
 *
 * Datagrams wait in a link's buffer while whatever carries the link is slow (a tunnel, a
 * proxy server): a client could queue without end (17 MB/s took a portal from 6 to 87 MB in
 * 11 s, issue M7). What waits is bounded: per client (limits.udp_client_bytes), per inbound
 * (limits.udp_inbound_bytes) and, counted into ctx->buffered, by the process-wide
 * limits.buffered_total; past a bound datagrams are dropped, as a full network queue drops
 * them, counted and logged at most every DROP_LOG_EVERY_S. A freedom flow bounds the replies
 * waiting for its link the same way. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/socks5.h"
#include "core/budget.h"
#include "core/list.h"
#include "core/timeval.h"
#include "net/packet.h"
#include "udp.h"

#define LOG_COMPONENT "udp"
#define MAX_PEERS 1024
#define BURST 64 /* datagrams read per wakeup */
#define DROP_LOG_EVERY_S 10
#define LENGTH_PREFIX 2 /* a packet link frames each datagram behind a u16 length */

static uint64_t ms_since(struct event_base *base, const struct timeval *t)
{
    struct timeval now, d;
    event_base_gettimeofday_cached(base, &now);
    timersub(&now, t, &d);
    return (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000;
}

static void arm(struct event *ev, uint32_t ms)
{
    struct timeval tv = vrev__ms_to_tv(ms);
    evtimer_add(ev, &tv);
}

/* --- bytes waiting in a link's buffer ------------------------------------------------------ */

/* What one buffer (a link's output) holds, as counted into the inbound's total (if any) and
 * ctx->buffered; an evbuffer callback keeps it exact as bytes come in and leave. */
struct queue {
    vrev_ctx *ctx;
    size_t *total; /* the inbound's, or NULL */
    struct evbuffer *buf;
    struct evbuffer_cb_entry *cb;
    size_t n;
};

static void queue_count(struct queue *q, size_t n)
{
    if (q->total)
        *q->total = *q->total - q->n + n;
    if (n > q->n)
        vrev__budget_add(q->ctx, n - q->n);
    else
        vrev__budget_sub(q->ctx, q->n - n);
    q->n = n;
}

static void queue_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)info;
    queue_count(arg, evbuffer_get_length(buf));
}

static int queue_watch(struct queue *q, vrev_ctx *ctx, size_t *total, struct bufferevent *bev)
{
    q->ctx = ctx;
    q->total = total;
    q->buf = bufferevent_get_output(bev);
    q->cb = evbuffer_add_cb(q->buf, queue_changed, q);
    if (!q->cb)
        return VREV_ERR_NOMEM;
    queue_count(q, evbuffer_get_length(q->buf));
    return 0;
}

/* Before the buffer goes (it may outlive the owner while a close flushes it). */
static void queue_unwatch(struct queue *q)
{
    if (!q->cb)
        return;
    evbuffer_remove_cb_entry(q->buf, q->cb);
    q->cb = NULL;
    queue_count(q, 0);
}

/* The process-wide cap (bufferedTotal) reached? A datagram is dropped then, not left in the
 * socket: nothing would wake the reader, and the kernel would drop it anyway. */
static bool ctx_full(const vrev_ctx *ctx)
{
    return vrev__budget_full(ctx);
}

/* A datagram dropped: counted; logged at most every DROP_LOG_EVERY_S with the count. */
static void dropped(struct vrev__engine *e, uint64_t *count, struct timeval *last, const char *tag,
                    const char *why)
{
    struct timeval now;
    (*count)++;
    event_base_gettimeofday_cached(e->ctx->base, &now);
    if ((last->tv_sec || last->tv_usec) && now.tv_sec - last->tv_sec < DROP_LOG_EVERY_S)
        return;
    *last = now;
    vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT,
              "[%s] dropping datagrams: %s (%llu dropped so far)", tag ? tag : "", why,
              (unsigned long long)*count);
}

/* --- dokodemo-door over UDP ---------------------------------------------------------------- */

struct udp_peer {
    struct udp_peer *prev, *next;
    struct vrev__udp_in *u;
    struct sockaddr_storage addr;
    socklen_t alen;
    struct vrev__addr dest;  /* SOCKS: the destination of this peer's datagrams */
    struct bufferevent *bev; /* our end of the link's pair */
    struct queue queue;      /* its output: datagrams the link has not taken yet */
    struct timeval last;
};

/* A client IP with open SOCKS associations. */
struct allowed {
    struct vrev__addr ip; /* port 0 */
    unsigned n;
};

struct vrev__udp_in {
    struct vrev__engine *engine;
    const char *tag; /* the inbound's */
    bool socks;      /* a SOCKS relay: each datagram names its destination */
    struct vrev__addr target;
    struct allowed *allowed; /* SOCKS: n_allowed entries */
    size_t n_allowed;
    evutil_socket_t fd;
    struct event *rd;
    struct event *sweep;
    struct udp_peer peers; /* list head */
    size_t n_peers;
    uint16_t port;
    size_t queued;           /* bytes waiting in all peers' links (limits.udp_inbound_bytes) */
    uint64_t dropped;        /* datagrams dropped over a bound */
    uint64_t dropped_client; /* of those: over udpClientBytes */
    uint64_t dropped_budget; /* ... over bufferedTotal */
    struct timeval drop_log; /* when that was last logged */
};

static void peer_free(struct udp_peer *p, int abort)
{
    VREV__RING_REMOVE(p);
    p->u->n_peers--;
    queue_unwatch(&p->queue);
    vrev__bev_close(p->bev, abort);
    vrev__free(p->u->engine->ctx, p);
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    uint8_t scratch[VREV_PACKET_MAX]; /* on the stack: no shared state between threads */
    struct udp_peer *p = arg;
    uint8_t hdr[VREV_SOCKS5_UDP_HEADER_MAX];
    int hlen = p->u->socks ? vrev__socks5_udp_header_encode(hdr, sizeof(hdr), &p->dest) : 0;
    struct iovec iov[2] = {{hdr, hlen > 0 ? (size_t)hlen : 0}, {scratch, 0}};
    struct msghdr m = {
        .msg_name = &p->addr, .msg_namelen = p->alen, .msg_iov = iov, .msg_iovlen = 2};
    size_t n;
    while (vrev__packet_take(bufferevent_get_input(bev), scratch, sizeof(scratch), &n)) {
        iov[1].iov_len = n;
        sendmsg(p->u->fd, &m, 0); /* SOCKS: the header names the destination as the source */
    }
    event_base_gettimeofday_cached(p->u->engine->ctx->base, &p->last);
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    peer_free(arg, 0);
}

static struct udp_peer *peer_find(struct vrev__udp_in *u, const struct sockaddr_storage *a,
                                  socklen_t alen, const struct vrev__addr *dest)
{
    for (struct udp_peer *p = u->peers.next; p != &u->peers; p = p->next)
        if (p->alen == alen && !memcmp(&p->addr, a, alen) &&
            (!u->socks || vrev__addr_equal(&p->dest, dest)))
            return p;
    return NULL;
}

static struct udp_peer *peer_new(struct vrev__udp_in *u, const struct sockaddr_storage *a,
                                 socklen_t alen, const struct vrev__addr *dest)
{
    struct vrev__engine *e = u->engine;
    struct bufferevent *pair[2];
    if (u->n_peers >= MAX_PEERS)
        return NULL;
    struct udp_peer *p = vrev__calloc(e->ctx, 1, sizeof(*p));
    if (!p)
        return NULL;
    if (bufferevent_pair_new(e->ctx->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) <
        0) {
        vrev__free(e->ctx, p);
        return NULL;
    }
    p->u = u;
    memcpy(&p->addr, a, alen);
    p->alen = alen;
    p->dest = *dest;
    p->bev = pair[1];
    if (queue_watch(&p->queue, e->ctx, &u->queued, p->bev) < 0) {
        bufferevent_free(pair[0]);
        bufferevent_free(pair[1]);
        vrev__free(e->ctx, p);
        return NULL;
    }
    VREV__RING_PUSH_FRONT(&u->peers, p);
    u->n_peers++;
    event_base_gettimeofday_cached(e->ctx->base, &p->last);
    bufferevent_setcb(p->bev, peer_read, NULL, peer_event, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.conn_id = vrev__conn_id(e->ctx); /* a flow: one source's datagrams */
    info.inbound_tag = u->tag;
    info.network = VREV_NET_UDP;
    info.target = *dest;
    vrev__addr_from_sockaddr(&info.source, (const struct sockaddr *)a);
    info.has_source = true;
    vrev__dispatch(e, &info, pair[0]);
    return p;
}

static struct allowed *find_allowed(struct vrev__udp_in *u, const struct vrev__addr *ip)
{
    for (size_t i = 0; i < u->n_allowed; i++)
        if (vrev__addr_equal(&u->allowed[i].ip, ip))
            return &u->allowed[i];
    return NULL;
}

static bool is_allowed(struct vrev__udp_in *u, const struct sockaddr *sa)
{
    struct vrev__addr ip;
    vrev__addr_from_sockaddr(&ip, sa);
    ip.port = 0;
    return find_allowed(u, &ip) != NULL;
}

int vrev__udp_in_associate(struct vrev__udp_in *u, const struct vrev__addr *client, bool open)
{
    struct vrev__addr ip = *client;
    ip.port = 0;
    struct allowed *a = find_allowed(u, &ip);
    if (!open) {
        if (a && --a->n == 0)
            *a = u->allowed[--u->n_allowed];
        return 0;
    }
    if (a) {
        a->n++;
        return 0;
    }
    if (u->n_allowed >= MAX_PEERS)
        return VREV_ERR_RANGE;
    a = vrev__realloc(u->engine->ctx, u->allowed, (u->n_allowed + 1) * sizeof(*a));
    if (!a)
        return VREV_ERR_NOMEM;
    u->allowed = a;
    u->allowed[u->n_allowed].ip = ip;
    u->allowed[u->n_allowed++].n = 1;
    return 0;
}

static void on_datagrams(evutil_socket_t fd, short what, void *arg)
{
    uint8_t scratch[VREV_PACKET_MAX]; /* on the stack: no shared state between threads */
    (void)what;
    struct vrev__udp_in *u = arg;
    for (int i = 0; i < BURST; i++) {
        struct sockaddr_storage a;
        socklen_t alen = sizeof(a);
        ssize_t n = recvfrom(fd, scratch, sizeof(scratch), 0, (struct sockaddr *)&a, &alen);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error reported on the socket: nothing to do */
        const struct vrev__addr *dest = &u->target;
        const uint8_t *data = scratch;
        size_t len = (size_t)n;
        struct vrev__socks5_udp d;
        if (u->socks) { /* from an associated client, whole (FRAG 0), well formed: or dropped */
            if (!is_allowed(u, (const struct sockaddr *)&a) ||
                vrev__socks5_udp_parse(scratch, len, &d) <= 0)
                continue;
            dest = &d.addr;
            data = d.data;
            len = d.data_len;
        }
        const struct vrev__limits *lim = &u->engine->limits;
        size_t need = LENGTH_PREFIX + len;
        if (u->queued + need > lim->udp_inbound_bytes || ctx_full(u->engine->ctx)) {
            u->dropped_budget += u->queued + need <= lim->udp_inbound_bytes;
            dropped(u->engine, &u->dropped, &u->drop_log, u->tag,
                    ctx_full(u->engine->ctx) ? "the process holds bufferedTotal bytes"
                                             : "the inbound holds udpInboundBytes");
            continue;
        }
        struct udp_peer *p = peer_find(u, &a, alen, dest);
        if (!p && !(p = peer_new(u, &a, alen, dest)))
            continue; /* too many peers or no memory: the datagram is dropped */
        if (p->queue.n + need > lim->udp_client_bytes) {
            u->dropped_client++;
            dropped(u->engine, &u->dropped, &u->drop_log, u->tag,
                    "a client's link holds udpClientBytes");
            continue;
        }
        vrev__packet_put(bufferevent_get_output(p->bev), data, len);
        event_base_gettimeofday_cached(u->engine->ctx->base, &p->last);
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__udp_in *u = arg;
    uint32_t idle = u->engine->policy.conn_idle_ms;
    for (struct udp_peer *p = u->peers.next, *next; p != &u->peers; p = next) {
        next = p->next;
        if (ms_since(u->engine->ctx->base, &p->last) >= idle)
            peer_free(p, 0);
    }
    arm(u->sweep, idle / 4 < 1000 ? 1000 : idle / 4);
}

static int udp_in_new(struct vrev__engine *e, const char *tag, const char *listen, uint16_t port,
                      const struct vrev__addr *target, struct vrev__udp_in **out)
{
    struct vrev__addr bind_addr;
    int rc = vrev__addr_from_text(&bind_addr, listen && *listen ? listen : "0.0.0.0", port);
    if (rc < 0 || bind_addr.type == VREV_ADDR_DOMAIN)
        return rc < 0 ? rc : VREV_ERR_ADDR_SYNTAX;
    struct vrev__udp_in *u = vrev__calloc(e->ctx, 1, sizeof(*u));
    if (!u)
        return VREV_ERR_NOMEM;
    u->engine = e;
    u->tag = tag;
    u->socks = target == NULL;
    if (target)
        u->target = *target;
    u->peers.next = u->peers.prev = &u->peers;
    struct sockaddr_storage ss;
    socklen_t sl = vrev__addr_to_sockaddr(&bind_addr, &ss);
    int one = 1;
    u->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0 || setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(u->fd, (struct sockaddr *)&ss, sl) < 0) {
        rc = errno == EADDRINUSE ? VREV_ERR_ADDRINUSE : VREV_ERR_IO;
        vrev__udp_in_free(u);
        return rc;
    }
    socklen_t bl = sizeof(ss);
    getsockname(u->fd, (struct sockaddr *)&ss, &bl);
    struct vrev__addr bound;
    vrev__addr_from_sockaddr(&bound, (struct sockaddr *)&ss);
    u->port = bound.port;
    u->rd = event_new(e->ctx->base, u->fd, EV_READ | EV_PERSIST, on_datagrams, u);
    u->sweep = evtimer_new(e->ctx->base, on_sweep, u);
    if (!u->rd || !u->sweep || event_add(u->rd, NULL) < 0) {
        vrev__udp_in_free(u);
        return VREV_ERR_NOMEM;
    }
    arm(u->sweep, 1000);
    *out = u;
    return 0;
}

int vrev__udp_in_new(struct vrev__engine *e, const char *tag, const char *listen, uint16_t port,
                     const struct vrev__addr *target, struct vrev__udp_in **out)
{
    return udp_in_new(e, tag, listen, port, target, out);
}

int vrev__udp_in_new_socks(struct vrev__engine *e, const char *tag, const char *listen,
                           uint16_t port, struct vrev__udp_in **out)
{
    return udp_in_new(e, tag, listen, port, NULL, out);
}

void vrev__udp_in_free(struct vrev__udp_in *u)
{
    if (!u)
        return;
    while (u->peers.next != &u->peers)
        peer_free(u->peers.next, 0);
    if (u->rd)
        event_free(u->rd);
    if (u->sweep)
        event_free(u->sweep);
    if (u->fd >= 0)
        close(u->fd);
    vrev__free(u->engine->ctx, u->allowed);
    vrev__free(u->engine->ctx, u);
}

uint16_t vrev__udp_in_port(const struct vrev__udp_in *u)
{
    return u ? u->port : 0;
}

void vrev__udp_in_drops(const struct vrev__udp_in *u, uint64_t *client, uint64_t *inbound,
                        uint64_t *budget)
{
    *client = u->dropped_client;
    *budget = u->dropped_budget;
    *inbound = u->dropped - u->dropped_client - u->dropped_budget;
}

void vrev__udp_in_stats(const struct vrev__udp_in *u, size_t *queued, uint64_t *dropped)
{
    *queued = u->queued;
    *dropped = u->dropped;
}

/* --- freedom over UDP ---------------------------------------------------------------------- */

struct udp_flow {
    struct vrev__conn conn; /* first */
    struct vrev__engine *engine;
    struct bufferevent *link;
    struct queue queue; /* the link's output: replies it has not taken yet */
    uint64_t dropped;
    struct timeval drop_log;
    evutil_socket_t fd;
    struct event *rd;
    struct event *idle;
    struct timeval last;
    /* SOCKS: the association's connection (NULL: plain freedom) and the SOCKS header that
     * goes before each datagram (the link's target) */
    struct bufferevent *ctl;
    uint8_t hdr[VREV_SOCKS5_UDP_HEADER_MAX];
    size_t hdr_len;
};

static void flow_close(struct vrev__conn *c)
{
    struct udp_flow *f = (struct udp_flow *)c;
    if (f->rd)
        event_free(f->rd);
    if (f->idle)
        event_free(f->idle);
    if (f->fd >= 0)
        close(f->fd);
    if (f->ctl)
        vrev__bev_close(f->ctl, 0);
    queue_unwatch(&f->queue);
    vrev__bev_close(f->link, 0);
    vrev__free(f->engine->ctx, f);
}

static void flow_end(struct udp_flow *f)
{
    vrev__engine_untrack(f->engine, &f->conn);
    flow_close(&f->conn);
}

static void flow_from_link(struct bufferevent *bev, void *arg)
{
    uint8_t scratch[VREV_PACKET_MAX]; /* on the stack: no shared state between threads */
    struct udp_flow *f = arg;
    struct iovec iov[2] = {{f->hdr, f->hdr_len}, {scratch, 0}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    size_t n;
    while (vrev__packet_take(bufferevent_get_input(bev), scratch, sizeof(scratch), &n)) {
        iov[1].iov_len = n;
        sendmsg(f->fd, &m, 0);
        f->engine->stats.bytes_up += n;
    }
    event_base_gettimeofday_cached(f->engine->ctx->base, &f->last);
}

static void flow_link_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    flow_end(arg);
}

static void flow_from_target(evutil_socket_t fd, short what, void *arg)
{
    uint8_t scratch[VREV_PACKET_MAX]; /* on the stack: no shared state between threads */
    (void)what;
    struct udp_flow *f = arg;
    for (int i = 0; i < BURST; i++) {
        ssize_t n = recv(fd, scratch, sizeof(scratch), 0);
        if (n < 0)
            break;
        const uint8_t *data = scratch;
        size_t len = (size_t)n;
        struct vrev__socks5_udp d;
        if (f->ctl) { /* from the relay: whole (FRAG 0) and well formed, or dropped */
            if (vrev__socks5_udp_parse(scratch, len, &d) <= 0)
                continue;
            data = d.data;
            len = d.data_len;
        }
        if (f->queue.n + LENGTH_PREFIX + len > f->engine->limits.udp_client_bytes ||
            ctx_full(f->engine->ctx)) {
            dropped(f->engine, &f->dropped, &f->drop_log, "freedom",
                    ctx_full(f->engine->ctx) ? "the process holds bufferedTotal bytes"
                                             : "a flow's link holds udpClientBytes");
            continue;
        }
        vrev__packet_put(bufferevent_get_output(f->link), data, len);
        f->engine->stats.bytes_down += len;
    }
    event_base_gettimeofday_cached(f->engine->ctx->base, &f->last);
}

static void flow_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct udp_flow *f = arg;
    uint32_t limit = f->engine->policy.conn_idle_ms;
    uint64_t idle = ms_since(f->engine->ctx->base, &f->last);
    if (idle >= limit) {
        flow_end(f);
        return;
    }
    arm(f->idle, (uint32_t)(limit - idle));
}

/* The association's connection carries nothing more; its end (or an error) ends the flow. */
static void flow_ctl_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    flow_end(arg);
}

/* A flow from `link` to the IP `target`; with `ctl`, target is a SOCKS relay and each datagram
 * goes behind a header naming `socks_dest`. Everything given is owned from now on. */
static int flow_start(struct vrev__engine *e, struct bufferevent *link,
                      const struct vrev__addr *target, struct bufferevent *ctl,
                      const struct vrev__addr *socks_dest)
{
    struct udp_flow *f = target->type == VREV_ADDR_DOMAIN /* callers resolve names first */
                             ? NULL
                             : vrev__calloc(e->ctx, 1, sizeof(*f));
    int hl = f && ctl ? vrev__socks5_udp_header_encode(f->hdr, sizeof(f->hdr), socks_dest) : 0;
    if (!f || hl < 0) {
        vrev__free(e->ctx, f);
        vrev__bev_close(link, 1);
        if (ctl)
            vrev__bev_close(ctl, 1);
        return target->type == VREV_ADDR_DOMAIN ? VREV_ERR_INVAL : f ? hl : VREV_ERR_NOMEM;
    }
    f->engine = e;
    f->link = link;
    f->ctl = ctl;
    f->hdr_len = (size_t)hl;
    struct sockaddr_storage ss;
    socklen_t sl = vrev__addr_to_sockaddr(target, &ss);
    f->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = f->fd >= 0 && connect(f->fd, (struct sockaddr *)&ss, sl) == 0 ? 0 : VREV_ERR_IO;
    if (rc == 0)
        rc = queue_watch(&f->queue, e->ctx, NULL, link);
    if (rc == 0) {
        f->rd = event_new(e->ctx->base, f->fd, EV_READ | EV_PERSIST, flow_from_target, f);
        f->idle = evtimer_new(e->ctx->base, flow_idle, f);
        rc = f->rd && f->idle && event_add(f->rd, NULL) == 0 ? 0 : VREV_ERR_NOMEM;
    }
    if (rc < 0) {
        flow_close(&f->conn);
        return rc;
    }
    vrev__engine_track(e, &f->conn, flow_close);
    event_base_gettimeofday_cached(e->ctx->base, &f->last);
    arm(f->idle, e->policy.conn_idle_ms);
    if (ctl) {
        bufferevent_setcb(ctl, vrev__bev_discard_input, NULL, flow_ctl_event, f);
        bufferevent_enable(ctl, EV_READ);
        vrev__bev_kick_input(ctl); /* an end that came with the reply */
    }
    bufferevent_setcb(link, flow_from_link, NULL, flow_link_event, f);
    bufferevent_enable(link, EV_READ | EV_WRITE);
    vrev__bev_kick_input(link); /* datagrams that came before the flow existed */
    return 0;
}

int vrev__udp_flow_start(struct vrev__engine *e, struct bufferevent *link,
                         const struct vrev__addr *target)
{
    return flow_start(e, link, target, NULL, NULL);
}

int vrev__udp_flow_start_socks(struct vrev__engine *e, struct bufferevent *link,
                               const struct vrev__addr *relay, struct bufferevent *ctl,
                               const struct vrev__addr *dest)
{
    return flow_start(e, link, relay, ctl, dest);
}
