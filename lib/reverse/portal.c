/* Portal (WIRE-SPEC §3.5): an outbound. A link whose target is the portal's domain becomes a
 * tunnel: a mux client with the control session (id 1) and a heartbeat every 2 s, DRAIN once
 * more than 256 sessions have been opened on it, closed once the bridge has stopped taking its
 * bytes for dead_after_ms (TCP_USER_TIMEOUT; V2Ray keeps such a tunnel for minutes). Any other
 * link becomes a session on the tunnel with the fewest live sessions among those that are
 * neither closed (the 4.34 picker picks a closed one for up to 30 s: §3.7), nor draining, nor
 * full (max_sessions live; 65535, all the ids Mux.Cool has). A tunnel that fills up is drained
 * at once, so that the bridge opens another. With no such tunnel, a link waits (FIFO, up to
 * wait_ms) for one to come up, then is refused: V2Ray's picker falls back to a draining tunnel
 * instead, which only postpones its retirement, and its bridge opens a replacement at its next
 * 2 s tick, not at once. A drained tunnel keeps its sessions until they end. */
#include <string.h>

#include "core/list.h"
#include "core/timeval.h"
#include "crypto/crypto.h"
#include "muxconn.h"
#include "reverse.h"
#include "vrev/control.h"
#include "vrev/tunnel.h"

#define LOG_COMPONENT "portal"
#define DRAIN_CHECK_MS 16000 /* V2Ray's idle ticker for a drained tunnel */
/* Sooner than that once a replacement is up: a drained tunnel is checked this long after the
 * replacement came and after each of its sessions ended, so that it closes (and its buffers and
 * session table go) about a second after a burst of connections, not up to 16 s later. */
#define IDLE_CHECK_MS 1000
/* A bound on the links waiting for a tunnel (each holds a descriptor and ~300 bytes). */
#define WAIT_MAX 65536

/* A public link waiting for a usable tunnel. */
/* Who a session is for (vrev__link_info source and local), sent to a bridge that asks. */
struct client {
    struct vrev__addr src, dst;
    bool known;
};

struct waiter {
    struct waiter *next;
    struct bufferevent *link;
    uint64_t conn_id;
    struct vrev__addr target;
    int network;
    struct client client;
    struct timeval until;
};

struct pworker {
    struct pworker *prev, *next;
    struct portal *portal;
    struct vrev__muxconn *mc;
    uint64_t conn_id;    /* the tunnel's link's (its log lines start with it) */
    struct event *timer; /* heartbeat, then (draining) the idle check */
    uint16_t control_sid;
    bool draining;
    bool announced; /* TUNNEL_UP was reported */
};

struct portal {
    struct vrev__outbound base; /* first */
    char *domain;
    char *control_domain;
    uint32_t heartbeat_ms;
    uint32_t drain_after;
    uint32_t dead_after_ms;
    uint32_t wait_ms;
    unsigned max_sessions;  /* per tunnel, control session included */
    struct pworker workers; /* list head */
    struct waiter *wait_head, **wait_tail;
    size_t n_waiting;
    struct event *wait_timer; /* the head's deadline */
    struct vrev__portal_stats stats;
    vrev__reverse_notify_fn notify;
    void *notify_user;
};

static void serve_waiting(struct portal *p);

static void notify(struct portal *p, int event)
{
    if (p->notify)
        p->notify(event, NULL, 0, 0, p->notify_user);
}

static void worker_free(struct pworker *w)
{
    struct portal *p = w->portal;
    VREV__RING_REMOVE(w);
    if (w->timer)
        event_free(w->timer);
    w->timer = NULL; /* freeing the mux below ends its sessions: nothing may arm it then */
    uint64_t up, down;
    vrev__muxconn_bytes(w->mc, &up, &down);
    p->stats.bytes_up += up;
    p->stats.bytes_down += down;
    vrev__muxconn_add_stats(w->mc, &p->stats.mux);
    vrev__muxconn_free(w->mc);
    p->stats.tunnels_closed++;
    p->stats.tunnels_live--;
    bool announced = w->announced;
    vrev__free(p->base.engine->ctx, w);
    if (announced)
        notify(p, VREV_EVENT_TUNNEL_DOWN);
}

static void arm(struct pworker *w, uint32_t ms)
{
    struct timeval tv = vrev__ms_to_tv(ms);
    evtimer_add(w->timer, &tv);
}

/* Another tunnel takes new sessions: a drained one may close as soon as it is idle. */
static bool has_replacement(const struct pworker *w)
{
    const struct pworker *head = &w->portal->workers;
    for (const struct pworker *o = head->next; o != head; o = o->next)
        if (o != w && !o->draining && !vrev__muxconn_closed(o->mc))
            return true;
    return false;
}

static void recheck_soon(struct pworker *w)
{
    if (w->timer && w->draining && has_replacement(w))
        arm(w, IDLE_CHECK_MS);
}

/* One Control message: state plus 0..63 random bytes, as a 4.34 portal sends. */
static int control_message(int state, uint8_t *out, size_t cap)
{
    uint8_t rnd[64];
    if (vrev__random_bytes(rnd, sizeof(rnd)) < 0)
        return VREV_ERR_CRYPTO;
    return vrev_control_encode(out, cap, state, rnd + 1, rnd[0] % 64);
}

/* Tell the bridge to open another tunnel; this one takes no new sessions and closes once its
 * sessions have ended. */
static void drain(struct pworker *w, const char *why)
{
    struct portal *p = w->portal;
    uint8_t msg[128];
    int n = control_message(VREV_CONTROL_DRAIN, msg, sizeof(msg));
    if (n > 0)
        vrev__muxconn_send_internal(w->mc, w->control_sid, msg, (size_t)n);
    w->draining = true;
    vrev__muxconn_end(w->mc, w->control_sid, 0);
    vrev__log(p->base.engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
              VREV__CONN_FMT "[%s] tunnel drained after %llu sessions (%s, %u live)",
              VREV__CONN_ARG(w->conn_id), p->base.tag ? p->base.tag : "",
              (unsigned long long)vrev__muxconn_total(w->mc), why, vrev__muxconn_active(w->mc));
    arm(w, DRAIN_CHECK_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pworker *w = arg;
    struct portal *p = w->portal;
    if (w->draining) { /* idle check: a drained tunnel closes once it carries nothing */
        if (vrev__muxconn_active(w->mc) == 0)
            worker_free(w);
        else
            arm(w, DRAIN_CHECK_MS);
        return;
    }
    if (vrev__muxconn_total(w->mc) > p->drain_after) {
        drain(w, "lifetime limit");
        return;
    }
    uint8_t msg[128];
    int n = control_message(VREV_CONTROL_ACTIVE, msg, sizeof(msg));
    if (n > 0) /* an empty ACTIVE message is not sent at all, as in V2Ray */
        vrev__muxconn_send_internal(w->mc, w->control_sid, msg, (size_t)n);
    arm(w, p->heartbeat_ms);
}

static void on_session(struct vrev__muxconn *mc, int event, const char *target, uint64_t up,
                       uint64_t down, void *user)
{
    (void)mc;
    struct pworker *w = user;
    struct portal *p = w->portal;
    if (p->notify)
        p->notify(event, target, up, down, p->notify_user);
    if (event == VREV_EVENT_SESSION_CLOSE) /* the session is still counted: check from the loop */
        recheck_soon(w);
}

static void on_closed(struct vrev__muxconn *mc, int err, void *user)
{
    (void)mc;
    struct pworker *w = user;
    vrev__log(w->portal->base.engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
              VREV__CONN_FMT "[%s] tunnel closed%s%s", VREV__CONN_ARG(w->conn_id),
              w->portal->base.tag ? w->portal->base.tag : "", err ? ": " : "",
              err ? vrev_strerror(err) : "");
    worker_free(w);
}

static int new_tunnel(struct portal *p, struct bufferevent *link, uint64_t conn_id)
{
    vrev_ctx *ctx = p->base.engine->ctx;
    struct pworker *w = vrev__calloc(ctx, 1, sizeof(*w));
    if (w)
        w->timer = evtimer_new(ctx->base, on_timer, w);
    if (!w || !w->timer) {
        vrev__free(ctx, w);
        vrev__bev_close(link, 1);
        return VREV_ERR_NOMEM;
    }
    static const struct vrev__muxconn_cbs cbs = {.on_session = on_session, .on_closed = on_closed};
    w->portal = p;
    w->conn_id = conn_id;
    VREV__RING_PUSH_FRONT(&p->workers, w);
    p->stats.tunnels_opened++;
    p->stats.tunnels_live++;
    int rc =
        vrev__muxconn_new(ctx, VREV_MUX_CLIENT, link, &p->base.engine->policy, &cbs, w, &w->mc);
    if (rc == 0) /* the codec's default (1024) would refuse sessions long before the ids end */
        rc = vrev_mux_set_max_sessions(vrev__muxconn_codec(w->mc), p->max_sessions);
    if (rc == 0)
        vrev__muxconn_set_conn_id(w->mc, conn_id);
    struct vrev__addr control;
    uint8_t msg[128];
    int n = rc < 0 ? rc : control_message(VREV_CONTROL_ACTIVE, msg, sizeof(msg));
    if (n >= 0)
        rc = vrev__addr_from_text(&control, p->control_domain, 0);
    if (n >= 0 && rc == 0) /* the first heartbeat rides in the New frame */
        rc = vrev__muxconn_open(w->mc, VREV_NET_UDP, &control, NULL, msg, (size_t)n,
                                &w->control_sid);
    if (n < 0 || rc < 0) {
        worker_free(w);
        return n < 0 ? n : rc;
    }
    /* Heartbeats go out every 2 s: a bridge that has gone is noticed dead_after_ms later. */
    evutil_socket_t fd = vrev__bev_tcp_fd(link);
    if (fd < 0 || vrev__tcp_set_user_timeout(fd, p->dead_after_ms) < 0)
        vrev__log(ctx, VREV_LOG_DEBUG, LOG_COMPONENT,
                  VREV__CONN_FMT "[%s] tunnel not over a TCP socket: no dead-bridge timeout",
                  VREV__CONN_ARG(conn_id), p->base.tag ? p->base.tag : "");
    vrev__log(ctx, VREV_LOG_INFO, LOG_COMPONENT, VREV__CONN_FMT "[%s] tunnel up (%u live)",
              VREV__CONN_ARG(conn_id), p->base.tag ? p->base.tag : "", p->stats.tunnels_live);
    arm(w, p->heartbeat_ms);
    w->announced = true;
    notify(p, VREV_EVENT_TUNNEL_UP);
    for (struct pworker *o = p->workers.next; o != &p->workers; o = o->next)
        recheck_soon(o);
    serve_waiting(p);
    return 0;
}

/* A tunnel that may take a new session. */
static bool usable(const struct pworker *w)
{
    return !w->draining && !vrev__muxconn_closed(w->mc) &&
           vrev__muxconn_active(w->mc) < w->portal->max_sessions;
}

static struct pworker *pick(struct portal *p)
{
    struct pworker *best = NULL;
    unsigned best_count = 0;
    for (struct pworker *w = p->workers.next; w != &p->workers; w = w->next) {
        if (!usable(w))
            continue;
        unsigned n = vrev__muxconn_active(w->mc);
        if (!best || n < best_count) {
            best = w;
            best_count = n;
        }
    }
    return best;
}

static bool is_portal_domain(const struct portal *p, const struct vrev__addr *t)
{
    return t->type == VREV_ADDR_DOMAIN && t->len == strlen(p->domain) &&
           memcmp(t->host, p->domain, t->len) == 0;
}

static void refuse(struct portal *p, struct bufferevent *link, uint64_t conn_id, const char *why)
{
    p->stats.no_tunnel++;
    notify(p, VREV_EVENT_SESSION_REFUSED);
    vrev__log(p->base.engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
              VREV__CONN_FMT "[%s] %s; connection refused", VREV__CONN_ARG(conn_id),
              p->base.tag ? p->base.tag : "", why);
    vrev__bev_close(link, 1);
}

static void client_of(const struct vrev__link_info *info, struct client *c)
{
    c->known = info->has_source && info->has_local;
    if (c->known) {
        c->src = info->source;
        c->dst = info->local;
    }
}

static int open_session(struct portal *p, struct pworker *w, int network,
                        const struct vrev__addr *target, const struct client *c,
                        struct bufferevent *link, uint64_t conn_id)
{
    uint64_t closed = p->stats.tunnels_closed;
    uint16_t sid;
    const struct vrev__addr *const addrs[2] = {&c->src, &c->dst};
    int rc = vrev__muxconn_open_from(w->mc, network, target, c->known ? addrs : NULL, link, NULL, 0,
                                     conn_id, &sid);
    if (rc == 0)
        p->stats.sessions++;
    if (p->stats.tunnels_closed != closed) /* the tunnel failed meanwhile: w is gone */
        return rc;
    if (usable(w) || w->draining || vrev__muxconn_closed(w->mc))
        return rc;
    drain(w, "full"); /* the bridge opens another at once; links wait for it meanwhile */
    return rc;
}

/* --- links waiting for a tunnel ---------------------------------------------------------- */

static void arm_wait(struct portal *p)
{
    if (!p->wait_head) {
        evtimer_del(p->wait_timer);
        return;
    }
    struct timeval now, left = {0, 0};
    event_base_gettimeofday_cached(p->base.engine->ctx->base, &now);
    if (timercmp(&p->wait_head->until, &now, >))
        timersub(&p->wait_head->until, &now, &left);
    evtimer_add(p->wait_timer, &left);
}

static struct waiter *pop_waiter(struct portal *p)
{
    struct waiter *q = p->wait_head;
    p->wait_head = q->next;
    if (!p->wait_head)
        p->wait_tail = &p->wait_head;
    p->n_waiting--;
    return q;
}

/* A link waits in FIFO order, not read from, until a tunnel can take it or wait_ms pass. */
static int wait_for_tunnel(struct portal *p, const struct vrev__link_info *info,
                           struct bufferevent *link)
{
    vrev_ctx *ctx = p->base.engine->ctx;
    struct waiter *q = p->n_waiting < WAIT_MAX ? vrev__calloc(ctx, 1, sizeof(*q)) : NULL;
    if (!q) {
        refuse(p, link, info->conn_id,
               p->n_waiting < WAIT_MAX ? "no memory to wait for a tunnel"
                                       : "too many connections wait for a tunnel");
        return VREV_ERR_STATE;
    }
    q->link = link;
    q->conn_id = info->conn_id;
    q->target = info->target;
    q->network = info->network;
    client_of(info, &q->client);
    struct timeval now, wait = vrev__ms_to_tv(p->wait_ms);
    event_base_gettimeofday_cached(ctx->base, &now);
    timeradd(&now, &wait, &q->until);
    bufferevent_setcb(link, NULL, NULL, NULL, NULL);
    bufferevent_disable(link, EV_READ);
    *p->wait_tail = q;
    p->wait_tail = &q->next;
    if (p->n_waiting++ == 0)
        arm_wait(p);
    p->stats.waited++;
    vrev__log(ctx, VREV_LOG_DEBUG, LOG_COMPONENT, VREV__CONN_FMT "[%s] waits for a tunnel",
              VREV__CONN_ARG(q->conn_id), p->base.tag ? p->base.tag : "");
    return 0;
}

static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct portal *p = arg;
    struct timeval now;
    event_base_gettimeofday_cached(p->base.engine->ctx->base, &now);
    while (p->wait_head && !timercmp(&p->wait_head->until, &now, >)) {
        struct waiter *q = pop_waiter(p);
        refuse(p, q->link, q->conn_id, "no usable tunnel came in time");
        vrev__free(p->base.engine->ctx, q);
    }
    arm_wait(p);
}

/* A tunnel came up: the waiting links go to it (and to others as it fills). */
static void serve_waiting(struct portal *p)
{
    struct pworker *w;
    while (p->wait_head && (w = pick(p))) {
        struct waiter *q = pop_waiter(p);
        open_session(p, w, q->network, &q->target, &q->client, q->link, q->conn_id);
        vrev__free(p->base.engine->ctx, q);
    }
    arm_wait(p);
}

static int portal_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                         struct bufferevent *link)
{
    struct portal *p = (struct portal *)ob;
    if (is_portal_domain(p, &info->target))
        return new_tunnel(p, link, info->conn_id);
    struct pworker *w = p->wait_head ? NULL : pick(p); /* first come, first served */
    if (!w)
        return wait_for_tunnel(p, info, link);
    struct client c;
    client_of(info, &c);
    return open_session(p, w, info->network, &info->target, &c, link, info->conn_id);
}

static void portal_destroy(struct vrev__outbound *ob)
{
    struct portal *p = (struct portal *)ob;
    vrev_ctx *ctx = ob->engine->ctx;
    while (p->wait_head) {
        struct waiter *q = pop_waiter(p);
        vrev__bev_close(q->link, 1);
        vrev__free(ctx, q);
    }
    if (p->wait_timer)
        event_free(p->wait_timer);
    while (p->workers.next != &p->workers)
        worker_free(p->workers.next);
    vrev__free(ctx, p->domain);
    vrev__free(ctx, p->control_domain);
    vrev__outbound_cleanup(ob);
    vrev__free(ctx, p);
}

static const struct vrev__outbound_ops portal_ops = {
    .protocol = "portal", .handle = portal_handle, .destroy = portal_destroy};

int vrev__portal_new(struct vrev__engine *e, const char *tag, const struct vrev__portal_opts *opts,
                     struct vrev__outbound **out)
{
    struct vrev__addr check;
    if (!opts || !opts->domain || vrev__addr_from_text(&check, opts->domain, 0) < 0 ||
        check.type != VREV_ADDR_DOMAIN)
        return VREV_ERR_ADDR_DOMAIN;
    struct portal *p = vrev__calloc(e->ctx, 1, sizeof(*p));
    if (!p)
        return VREV_ERR_NOMEM;
    p->workers.next = p->workers.prev = &p->workers;
    p->wait_tail = &p->wait_head;
    int rc = vrev__outbound_init(&p->base, e, &portal_ops, tag);
    if (rc == 0 && !(p->wait_timer = evtimer_new(e->ctx->base, on_wait_timer, p)))
        rc = VREV_ERR_NOMEM;
    const char *cd = opts->control_domain ? opts->control_domain : VREV_CONTROL_DOMAIN_V2RAY;
    if (rc == 0 && (!(p->domain = vrev__strdup(e->ctx, opts->domain)) ||
                    !(p->control_domain = vrev__strdup(e->ctx, cd))))
        rc = VREV_ERR_NOMEM;
    if (rc < 0) {
        portal_destroy(&p->base);
        return rc;
    }
    p->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 2000;
    p->drain_after = opts->drain_after ? opts->drain_after : 256;
    p->dead_after_ms = opts->dead_after_ms ? opts->dead_after_ms : 10000;
    unsigned cap = opts->max_sessions; /* the control session and one more at least */
    p->max_sessions = !cap || cap > 0xffff ? 0xffff : cap < 2 ? 2 : cap;
    p->wait_ms = opts->wait_ms ? opts->wait_ms : 5000;
    *out = &p->base;
    return 0;
}

void vrev__portal_get_stats(const struct vrev__outbound *ob, struct vrev__portal_stats *st)
{
    const struct portal *p = (const struct portal *)ob;
    *st = p->stats;
    st->sessions_active = 0;
    for (const struct pworker *w = p->workers.next; w != &p->workers; w = w->next) {
        uint64_t up, down;
        vrev__muxconn_bytes(w->mc, &up, &down);
        st->bytes_up += up;
        st->bytes_down += down;
        vrev__muxconn_add_stats(w->mc, &st->mux);
        unsigned n = vrev__muxconn_active(w->mc);
        st->sessions_active += n - (n && !w->draining ? 1 : 0); /* not the control session */
    }
}

void vrev__portal_set_notify(struct vrev__outbound *ob, vrev__reverse_notify_fn fn, void *user)
{
    struct portal *p = (struct portal *)ob;
    p->notify = fn;
    p->notify_user = user;
}
