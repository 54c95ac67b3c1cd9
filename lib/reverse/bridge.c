/* Bridge (WIRE-SPEC §3.4): keeps tunnels to the portal open. A tunnel is a link to
 * TCP <domain>:0 with the bridge's tag as inbound tag, routed by the bridge's own engine to
 * the proxy outbound that reaches the portal (as V2Ray routes it); the outbound dials and sets
 * up its stream (vrev__engine_open) and hands it back, and the bridge is the mux server on
 * that stream itself, with no relay between. New sessions for an internal control domain
 * feed the control handler; all others are dispatched with the bridge tag as inbound tag.
 * The tunnel's socket closes when the portal has been silent for dead_after_ms with bytes of
 * ours unacknowledged (TCP_USER_TIMEOUT, as the portal's own tunnels).
 *
 * Beyond V2Ray, still wire-compatible: a tunnel that has heard nothing (heartbeats come every
 * 2 s) for dead_after_ms is closed; a tunnel that dies is redialled at once, then after a short
 * jittered exponential backoff (25 ms doubling to 100 ms; 2 s after a minute of failures)
 * instead of at the next 2 s tick, so start order does not matter and a restarted portal is
 * served again within about 100 ms of listening; and when every tunnel is full (max_sessions
 * live), another is opened at once rather than by the 16-sessions average of the 2 s check.
 * A drained tunnel is not checked for silence (the portal sends it no heartbeats): it serves
 * its sessions until the portal closes it.
 *
 * Against a hostile portal (issue M7): at most limits.tunnels_per_bridge tunnels are open at
 * once, drained ones included (a portal that drains every tunnel at once would otherwise have
 * one opened per round trip, for ever); at that cap an idle drained tunnel is closed, at most
 * once per monitor period, to make room. Each tunnel has at most limits.dials_per_tunnel dials
 * to local services in progress (a gauge the outbound's dialer counts, proxy.h); at the cap
 * the tunnel is not read until one ends (dial_hold), and after DIALS_HOLD_MS a session beyond
 * it is refused, as one to a target outside allowed_targets is. */
#include <string.h>

#include "core/list.h"
#include "core/timeval.h"
#include "crypto/crypto.h"
#include "muxconn.h"
#include "reverse.h"
#include "vrev/control.h"
#include "vrev/tunnel.h"

#define LOG_COMPONENT "bridge"
/* An immediate redial at most this often: a portal that takes tunnels and drops them at once
 * meets the backoff, not a busy loop. */
#define QUICK_REDIAL_EVERY_MS 1000
/* Failures for this long (an outage, not a restart): redial about every SLOW_MAX_MS. */
#define SLOW_AFTER_MS 60000
#define SLOW_MAX_MS 2000
/* How long a tunnel at its dials in progress cap (dialsPerTunnel) waits, unread, for one to
 * end before it refuses new sessions instead. */
#define DIALS_HOLD_MS 1000

struct bworker {
    struct bworker *prev, *next;
    struct vrev__bridge *bridge;
    struct vrev__handoff *opening; /* while the outbound dials the tunnel; then NULL */
    struct vrev__muxconn *mc;      /* NULL until the tunnel's stream has come */
    uint64_t conn_id;              /* the tunnel's connection id (its lines, its sessions') */
    struct bufferevent *stream;    /* the tunnel's stream, the muxconn's transport */
    struct vrev__gauge *dialing;   /* this tunnel's sessions' dials in progress */
    unsigned sessions;             /* bound to a local side (opened, not yet closed) */
    bool busy;                     /* at dials_per_tunnel (logged once until it is below again) */
    bool holding;                  /* at dials_per_tunnel: the tunnel is not read (dial_hold) */
    struct event *hold_timer;      /* ends the hold after DIALS_HOLD_MS */
    struct timeval last_rx;
    bool active;  /* not drained, not closed */
    bool heard;   /* received at least one frame */
    bool control; /* the portal opened its control session */
    bool full;    /* max_sessions live: another tunnel was asked for */
    bool retired; /* drained by a reload that changed the way to the portal: closed once idle */
};

/* An allowed target: a network and an address (vrev__bridge_target_parse). */
struct target {
    int network;
    struct vrev__addr addr;
};

struct vrev__bridge {
    struct vrev__engine *engine;
    char *tag;
    char *domain;
    struct vrev__bridge_opts opts;
    struct target *allowed;
    size_t n_allowed;
    struct bworker workers;    /* list head */
    unsigned n_workers;        /* drained ones included */
    bool capped;               /* at tunnels_per_bridge (logged once until below again) */
    struct timeval last_evict; /* the last idle drained tunnel closed to make room */
    struct event *monitor;
    uint32_t backoff_ms;       /* next redial delay after a failure */
    struct timeval fail_since; /* when the tunnels were last lost (or the bridge started) */
    struct timeval last_quick; /* the last immediate redial */
    bool failing;              /* the last dial failed (logged once) */
    bool winding_down;         /* vrev__bridge_wind_down(): no new tunnel */
    struct vrev__bridge_stats stats;
    vrev__reverse_notify_fn notify;
    void *notify_user;
};

static void notify(struct vrev__bridge *b, int event)
{
    if (b->notify)
        b->notify(event, NULL, 0, 0, b->notify_user);
}

bool vrev__is_control_domain(const char *host, size_t len)
{
    static const char *const names[] = {VREV_CONTROL_DOMAIN_V2RAY, VREV_CONTROL_DOMAIN_V2FLY,
                                        VREV_CONTROL_DOMAIN_XRAY};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && !memcmp(names[i], host, len))
            return true;
    return false;
}

static void worker_free(struct bworker *w)
{
    struct vrev__bridge *b = w->bridge;
    bool was_up = w->heard;
    w->dialing->on_drop = NULL; /* the dials the muxconn's free cancels must not call back */
    if (w->hold_timer)
        event_free(w->hold_timer);
    vrev__handoff_cancel(w->opening); /* a stream that comes now is closed */
    VREV__RING_REMOVE(w);
    if (w->mc) {
        uint64_t up, down;
        vrev__muxconn_bytes(w->mc, &up, &down);
        b->stats.bytes_up += up;
        b->stats.bytes_down += down;
        vrev__muxconn_add_stats(w->mc, &b->stats.mux);
        vrev__muxconn_free(w->mc);
    }
    vrev__gauge_unref(w->dialing); /* dials still in progress keep it until they end */
    b->stats.tunnels_closed++;
    b->n_workers--;
    vrev__free(b->engine->ctx, w);
    if (was_up) {
        b->stats.tunnels_up--;
        notify(b, VREV_EVENT_TUNNEL_DOWN);
    }
}

static void schedule(struct vrev__bridge *b, uint32_t ms)
{
    struct timeval tv = vrev__ms_to_tv(ms);
    evtimer_add(b->monitor, &tv);
}

static uint64_t ms_between(const struct timeval *a, const struct timeval *b)
{
    if (timercmp(b, a, <))
        return 0;
    struct timeval d;
    timersub(b, a, &d);
    return (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000;
}

/* A jittered exponential backoff: the delay grows x2 per failure, +-20 %, up to backoff_max_ms,
 * or SLOW_MAX_MS once the failures have lasted SLOW_AFTER_MS. */
static uint32_t next_backoff(struct vrev__bridge *b, const struct timeval *now)
{
    uint32_t base = b->backoff_ms;
    uint8_t r = 0;
    vrev__random_bytes(&r, 1);
    uint32_t jitter = base / 5;
    uint32_t delay = base - jitter + (jitter ? (uint32_t)r * 2 * jitter / 255 : 0);
    uint32_t max = b->opts.backoff_max_ms;
    if (ms_between(&b->fail_since, now) >= SLOW_AFTER_MS && max < SLOW_MAX_MS)
        max = SLOW_MAX_MS;
    b->backoff_ms = base * 2 > max ? max : base * 2;
    return delay;
}

/* After losing a tunnel: one that was up is redialled at once (a restarted portal listens
 * again within moments), later failures back off. */
static uint32_t redial_delay(struct vrev__bridge *b, bool was_up)
{
    struct timeval now;
    event_base_gettimeofday_cached(b->engine->ctx->base, &now);
    if (was_up) {
        b->fail_since = now;
        b->backoff_ms = b->opts.backoff_min_ms;
        if (ms_between(&b->last_quick, &now) >= QUICK_REDIAL_EVERY_MS ||
            (b->last_quick.tv_sec == 0 && b->last_quick.tv_usec == 0)) {
            b->last_quick = now;
            return 0;
        }
    }
    return next_backoff(b, &now);
}

/* Can this tunnel take new sessions? */
static bool has_room(const struct bworker *w)
{
    return w->active && !w->full;
}

/* --- sessions ------------------------------------------------------------------------------ */

int vrev__bridge_target_parse(const char *text, int *network, struct vrev__addr *a)
{
    *network = VREV_NET_TCP;
    if (!text)
        return VREV_ERR_INVAL;
    if (!strncmp(text, "tcp:", 4) || !strncmp(text, "udp:", 4)) {
        *network = text[0] == 't' ? VREV_NET_TCP : VREV_NET_UDP;
        text += 4;
    }
    return vrev__addr_from_hostport(a, text);
}

/* Exactly one of the allowed targets: the same network and address (no resolving, no other
 * spelling: "localhost" or "127.1" are not 127.0.0.1). */
static bool allowed(const struct vrev__bridge *b, int network, const struct vrev__addr *t)
{
    if (!b->n_allowed)
        return true;
    for (size_t i = 0; i < b->n_allowed; i++)
        if (b->allowed[i].network == network && vrev__addr_equal(&b->allowed[i].addr, t))
            return true;
    return false;
}

static void refuse(struct vrev__bridge *b, const char *host, const struct vrev__link_info *info,
                   const char *why)
{
    if (b->notify)
        b->notify(VREV_EVENT_SESSION_REFUSED, host, 0, 0, b->notify_user);
    char t[VREV_MUX_TARGET_MAX];
    vrev__addr_target_text(&info->target, t, sizeof(t));
    vrev__log(b->engine->ctx, VREV_LOG_WARN, LOG_COMPONENT,
              VREV__CONN_FMT "[%s] refused session to %s:%s: %s", VREV__CONN_ARG(info->conn_id),
              b->tag ? b->tag : "", info->network == VREV_NET_UDP ? "udp" : "tcp", t, why);
}

/* A tunnel's dials in progress at the cap (a portal's burst of New frames would otherwise open
 * as many connections to the local service at once): the tunnel is not read until one ends,
 * so that a burst waits rather than being refused; after DIALS_HOLD_MS at the cap (a local
 * service that does not answer), new sessions are refused until a dial ends, and the tunnel
 * reads on. */
static void dial_hold(struct bworker *w)
{
    if (w->holding || w->busy || w->dialing->n < w->bridge->engine->limits.dials_per_tunnel)
        return;
    w->holding = true;
    struct timeval tv = vrev__ms_to_tv(DIALS_HOLD_MS);
    evtimer_add(w->hold_timer, &tv);
    vrev__muxconn_hold(w->mc);
}

static void dial_release(struct bworker *w)
{
    if (!w->holding)
        return;
    w->holding = false;
    evtimer_del(w->hold_timer);
    vrev__muxconn_release(w->mc);
}

static void on_dial_drop(void *arg) /* a dial of the tunnel's sessions ended */
{
    struct bworker *w = arg;
    if (w->dialing->n < w->bridge->engine->limits.dials_per_tunnel) {
        w->busy = false;
        dial_release(w);
    }
}

static void on_hold_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bworker *w = arg;
    struct vrev__bridge *b = w->bridge;
    w->busy = true;
    vrev__log(b->engine->ctx, VREV_LOG_WARN, LOG_COMPONENT,
              VREV__CONN_FMT "[%s] %u dials in progress on a tunnel for %u ms (dialsPerTunnel): "
                             "refusing sessions until one ends",
              VREV__CONN_ARG(w->conn_id), b->tag ? b->tag : "", w->dialing->n, DIALS_HOLD_MS);
    dial_release(w);
}

/* At the cap after the hold: refused. */
static bool dials_full(struct bworker *w, const char *host) /* logged by on_hold_timeout */
{
    struct vrev__bridge *b = w->bridge;
    if (w->dialing->n < b->engine->limits.dials_per_tunnel)
        return false;
    b->stats.dials_refused++;
    if (b->notify)
        b->notify(VREV_EVENT_SESSION_REFUSED, host, 0, 0, b->notify_user);
    return true;
}

/* A tunnel now at max_sessions takes no more (the codec refuses them): with no other tunnel that
 * has room, one is opened now. A vrev portal drains a full tunnel itself; a V2Ray portal never
 * does, and picks the least loaded tunnel, so the new one takes the next sessions. */
static void check_full(struct bworker *w)
{
    struct vrev__bridge *b = w->bridge;
    if (w->full || vrev__muxconn_active(w->mc) < b->opts.max_sessions)
        return;
    w->full = true;
    for (struct bworker *o = b->workers.next; o != &b->workers; o = o->next)
        if (has_room(o))
            return;
    vrev__log(b->engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
              "[%s] every tunnel carries %u sessions: opening another", b->tag ? b->tag : "",
              b->opts.max_sessions);
    schedule(b, 0);
}

static struct bufferevent *on_open(struct vrev__muxconn *mc, uint16_t sid, const vrev_mux_frame *f,
                                   void *user)
{
    struct bworker *w = user;
    struct vrev__bridge *b = w->bridge;
    check_full(w);
    char host[VREV_MUX_TARGET_MAX];
    int n = vrev_mux_frame_host(f, host, sizeof(host));
    if (n > 0 && vrev_mux_frame_addr_type(f) == VREV_ADDR_DOMAIN &&
        vrev__is_control_domain(host, (size_t)n)) {
        vrev__muxconn_keep_internal(mc, sid);
        w->control = true;
        return NULL;
    }
    struct vrev__link_info info = {.conn_id = vrev__muxconn_opening_id(mc),
                                   .inbound_tag = b->tag,
                                   .network = vrev_mux_frame_network(f)};
    if (n < 0 || vrev__addr_from_text(&info.target, host, vrev_mux_frame_port(f)) < 0)
        return NULL;
    /* a vrev portal says who the session is for: routing by source, logs, a PROXY header */
    info.has_source = info.has_local = vrev__muxconn_client(mc, f, &info.source, &info.local);
    if (!allowed(b, info.network, &info.target)) {
        b->stats.refused++;
        refuse(b, host, &info, "not an allowed target");
        return NULL;
    }
    if (dials_full(w, host))
        return NULL;
    info.dialing = w->dialing;
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(b->engine->ctx->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                             pair) < 0)
        return NULL;
    b->stats.sessions++;
    vrev__dispatch(b->engine, &info, pair[0]);
    dial_hold(w);
    return pair[1];
}

static void on_control(struct vrev__muxconn *mc, uint16_t sid, const uint8_t *data, size_t len,
                       void *user)
{
    (void)mc, (void)sid;
    struct bworker *w = user;
    int state;
    int rc = vrev_control_decode(data, len, &state);
    if (rc < 0) { /* logged and skipped, as V2Ray does; the control session goes on */
        vrev__log(w->bridge->engine->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "bad control message: %s", VREV__CONN_ARG(w->conn_id),
                  vrev_strerror(rc));
        return;
    }
    if (state != VREV_CONTROL_ACTIVE && w->active) {
        w->active = false;
        w->bridge->stats.drains++;
        vrev__log(w->bridge->engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
                  VREV__CONN_FMT "tunnel drained by the portal; opening a replacement",
                  VREV__CONN_ARG(w->conn_id));
        schedule(w->bridge, 0);
    }
}

static void on_frame(struct vrev__muxconn *mc, void *user)
{
    (void)mc;
    struct bworker *w = user;
    event_base_gettimeofday_cached(w->bridge->engine->ctx->base, &w->last_rx);
    if (!w->heard) {
        w->heard = true;
        w->bridge->stats.tunnels_up++;
        w->bridge->stats.tunnels_up_total++;
        w->bridge->backoff_ms = w->bridge->opts.backoff_min_ms; /* the portal answers again */
        vrev__log(w->bridge->engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
                  VREV__CONN_FMT "[%s] tunnel up", VREV__CONN_ARG(w->conn_id),
                  w->bridge->tag ? w->bridge->tag : "");
        notify(w->bridge, VREV_EVENT_TUNNEL_UP);
    }
}

static void on_session(struct vrev__muxconn *mc, int event, const char *target, uint64_t up,
                       uint64_t down, void *user)
{
    struct bworker *w = user;
    struct vrev__bridge *b = w->bridge;
    if (event == VREV_EVENT_SESSION_CLOSE && w->full) /* counted still: a margin of one */
        w->full = vrev__muxconn_active(mc) > b->opts.max_sessions - 1;
    if (event == VREV_EVENT_SESSION_OPEN)
        w->sessions++;
    else if (event == VREV_EVENT_SESSION_CLOSE && w->sessions)
        w->sessions--;
    if (b->notify)
        b->notify(event, target, up, down, b->notify_user);
}

/* The tunnel ended, or its dial failed: redial now or soon, not at the next tick. */
static void tunnel_lost(struct bworker *w, int err)
{
    struct vrev__bridge *b = w->bridge;
    bool was_active = w->active, was_up = w->heard;
    worker_free(w);
    if (!was_active)
        return;
    if (!was_up && !b->failing) /* once per outage: the dials go on every 100 ms or so */
        vrev__log(b->engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
                  "[%s] no tunnel to the portal (%s): redialling", b->tag ? b->tag : "",
                  err < 0 ? vrev_strerror(err) : "closed");
    b->failing = !was_up;
    schedule(b, redial_delay(b, was_up));
}

static void on_closed(struct vrev__muxconn *mc, int err, void *user)
{
    (void)mc;
    struct bworker *w = user;
    if (err < 0) /* a layer's handshake ends after the handoff (TLS: a certificate, a name) */
        vrev__log_layer_failure(w->bridge->engine->ctx, w->conn_id, w->stream);
    tunnel_lost(w, err);
}

/* --- the monitor --------------------------------------------------------------------------- */

/* The mux server on the tunnel's stream (owned from now on), with the bridge's limits. */
static int start_mux(struct bworker *w, struct bufferevent *stream)
{
    static const struct vrev__muxconn_cbs cbs = {.on_open = on_open,
                                                 .on_internal_data = on_control,
                                                 .on_frame = on_frame,
                                                 .on_session = on_session,
                                                 .on_closed = on_closed};
    struct vrev__bridge *b = w->bridge;
    /* a portal gone with our bytes unacknowledged ends the socket after dead_after_ms, as it
     * ends ours (not below a layer that owns no socket of its own: fd -1) */
    evutil_socket_t fd = vrev__bev_tcp_fd(stream);
    if (fd >= 0)
        vrev__tcp_set_user_timeout(fd, b->opts.dead_after_ms);
    w->stream = stream;
    int rc = vrev__muxconn_new(b->engine->ctx, VREV_MUX_SERVER, stream, &b->engine->policy, &cbs, w,
                               &w->mc);
    if (rc == 0) /* the codec's default (1024) is far below what a portal may send */
        rc = vrev_mux_set_max_sessions(vrev__muxconn_codec(w->mc), b->opts.max_sessions);
    if (rc == 0) { /* the engine's limits: a JSON configuration's "vrev" object may set them */
        vrev__muxconn_set_session_rate(w->mc, b->engine->limits.session_rate,
                                       b->engine->limits.session_burst);
        vrev__muxconn_set_conn_id(w->mc, w->conn_id);
    }
    return rc;
}

/* The outbound has dialed the portal and set up its stream (or failed: a dial that gave up,
 * a handshake that failed, no outbound). */
static void on_tunnel_open(struct bufferevent *stream, int err, void *user)
{
    struct bworker *w = user;
    vrev__handoff_cancel(w->opening); /* our reference: done */
    w->opening = NULL;
    if (err == 0)
        err = start_mux(w, stream);
    if (err < 0)
        tunnel_lost(w, err);
}

static int new_tunnel(struct vrev__bridge *b)
{
    vrev_ctx *ctx = b->engine->ctx;
    struct bworker *w = vrev__calloc(ctx, 1, sizeof(*w));
    if (!w)
        return VREV_ERR_NOMEM;
    w->bridge = b;
    w->active = true;
    w->dialing = vrev__gauge_new(ctx);
    w->hold_timer = evtimer_new(ctx->base, on_hold_timeout, w);
    w->opening = vrev__handoff_new(ctx, on_tunnel_open, w);
    if (!w->dialing || !w->hold_timer || !w->opening) {
        vrev__gauge_unref(w->dialing);
        if (w->hold_timer)
            event_free(w->hold_timer);
        vrev__handoff_cancel(w->opening);
        vrev__free(ctx, w);
        return VREV_ERR_NOMEM;
    }
    w->dialing->on_drop = on_dial_drop;
    w->dialing->drop_arg = w;
    event_base_gettimeofday_cached(ctx->base, &w->last_rx);
    b->n_workers++;
    VREV__RING_PUSH_FRONT(&b->workers, w);
    b->stats.tunnels_opened++;
    w->conn_id = vrev__conn_id(ctx);
    struct vrev__link_info info = {
        .conn_id = w->conn_id,
        .inbound_tag = b->tag,
        .network = VREV_NET_TCP,
        .dial_once = true, /* our own backoff redials, sooner than the dialer's retries */
        .handoff = w->opening,
    };
    vrev__addr_from_text(&info.target, b->domain, 0);
    /* on_tunnel_open may run (and free w, on a failure) before this returns */
    return vrev__engine_open(b->engine, &info);
}

/* A drained tunnel that carries no session (its control session aside). */
static bool idle_drained(const struct bworker *w)
{
    return !w->active && w->sessions == 0;
}

/* Another tunnel, unless limits.tunnels_per_bridge are open (drained ones too: each holds a
 * connection). At the cap, the oldest idle drained tunnel is closed to make room, at most once
 * per monitor period: a portal that drains every tunnel at once gets one new tunnel per period,
 * not one per round trip. */
static void open_tunnel(struct vrev__bridge *b, const struct timeval *now)
{
    uint64_t cap = b->engine->limits.tunnels_per_bridge;
    if (b->n_workers < cap)
        b->capped = false; /* below it on its own: a new episode gets its log line */
    else if (ms_between(&b->last_evict, now) >= b->opts.monitor_ms)
        for (struct bworker *w = b->workers.prev; w != &b->workers; w = w->prev)
            if (idle_drained(w)) { /* the list's tail is the oldest */
                b->last_evict = *now;
                worker_free(w);
                break;
            }
    if (b->n_workers < cap) {
        new_tunnel(b);
        return;
    }
    b->stats.tunnels_capped++;
    if (!b->capped) {
        b->capped = true;
        vrev__log(b->engine->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  "[%s] %u tunnels open (tunnelsPerBridge), drained ones included: opening no "
                  "more until one closes",
                  b->tag ? b->tag : "", b->n_workers);
    }
}

static bool dead(struct vrev__bridge *b, struct bworker *w, const struct timeval *now)
{
    if (w->mc && vrev__muxconn_holding(w->mc)) {
        /* We stopped reading the tunnel ourselves (a local service slower than the portal's
         * sender, with a peer that has no flow control): the portal's frames wait in our
         * buffers. That silence is ours, and the stall timeout ends it. */
        w->last_rx = *now;
        return false;
    }
    struct timeval idle;
    timersub(now, &w->last_rx, &idle);
    uint64_t ms = (uint64_t)idle.tv_sec * 1000 + (uint64_t)idle.tv_usec / 1000;
    return ms >= b->opts.dead_after_ms;
}

static void on_monitor(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__bridge *b = arg;
    struct timeval now;
    event_base_gettimeofday_cached(b->engine->ctx->base, &now);
    unsigned workers = 0, sessions = 0, active = 0;
    for (struct bworker *w = b->workers.next, *next; w != &b->workers; w = next) {
        next = w->next;
        if (w->active && dead(b, w, &now)) {
            vrev__log(b->engine->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                      VREV__CONN_FMT "[%s] tunnel silent for %u ms: closing it",
                      VREV__CONN_ARG(w->conn_id), b->tag ? b->tag : "", b->opts.dead_after_ms);
            b->stats.tunnels_dead++;
            worker_free(w);
            continue;
        }
        if (w->retired && w->sessions == 0) {
            vrev__log(b->engine->ctx, VREV_LOG_INFO, LOG_COMPONENT,
                      VREV__CONN_FMT "[%s] a tunnel of the old settings carries no session: "
                                     "closing it",
                      VREV__CONN_ARG(w->conn_id), b->tag ? b->tag : "");
            worker_free(w);
            continue;
        }
        active += w->active;
        if (!has_room(w))
            continue; /* a drained tunnel serves its sessions until the portal closes it */
        workers++;
        sessions += w->mc ? vrev__muxconn_active(w->mc) : 0;
    }
    b->stats.tunnels_active = active;
    schedule(b, b->opts.monitor_ms);
    /* after the periodic schedule: a tunnel whose dial fails at once reschedules sooner */
    if (!b->winding_down && (workers == 0 || sessions / workers > b->opts.sessions_per_tunnel))
        open_tunnel(b, &now);
}

/* --- API ----------------------------------------------------------------------------------- */

static int copy_opts(struct vrev__bridge *b, const char *tag, const struct vrev__bridge_opts *o)
{
    vrev_ctx *ctx = b->engine->ctx;
    b->opts = *o;
    b->opts.allowed_targets = NULL;
    b->opts.monitor_ms = o->monitor_ms ? o->monitor_ms : 2000;
    b->opts.sessions_per_tunnel = o->sessions_per_tunnel ? o->sessions_per_tunnel : 16;
    b->opts.dead_after_ms = o->dead_after_ms ? o->dead_after_ms : 7000;
    b->opts.backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 25;
    b->opts.backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 100;
    if (b->opts.backoff_max_ms < b->opts.backoff_min_ms)
        b->opts.backoff_max_ms = b->opts.backoff_min_ms;
    unsigned cap = o->max_sessions; /* the control session and one more at least */
    b->opts.max_sessions = !cap || cap > 0xffff ? 0xffff : cap < 2 ? 2 : cap;
    b->backoff_ms = b->opts.backoff_min_ms;
    size_t tl = tag ? strlen(tag) + 1 : 0, dl = strlen(o->domain) + 1;
    if ((tag && !(b->tag = vrev__malloc(ctx, tl))) || !(b->domain = vrev__malloc(ctx, dl)))
        return VREV_ERR_NOMEM;
    if (tag)
        memcpy(b->tag, tag, tl);
    memcpy(b->domain, o->domain, dl);
    if (o->n_allowed_targets) {
        b->allowed = vrev__calloc(ctx, o->n_allowed_targets, sizeof(*b->allowed));
        if (!b->allowed)
            return VREV_ERR_NOMEM;
    }
    for (size_t i = 0; i < o->n_allowed_targets; i++, b->n_allowed++) {
        struct target *t = &b->allowed[i];
        int rc = vrev__bridge_target_parse(o->allowed_targets[i], &t->network, &t->addr);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vrev__bridge_new(struct vrev__engine *e, const char *tag, const struct vrev__bridge_opts *opts,
                     struct vrev__bridge **out)
{
    struct vrev__addr check;
    *out = NULL;
    if (!opts || !opts->domain || vrev__addr_from_text(&check, opts->domain, 0) < 0 ||
        check.type != VREV_ADDR_DOMAIN)
        return VREV_ERR_ADDR_DOMAIN;
    struct vrev__bridge *b = vrev__calloc(e->ctx, 1, sizeof(*b));
    if (!b)
        return VREV_ERR_NOMEM;
    b->engine = e;
    b->workers.next = b->workers.prev = &b->workers;
    b->monitor = evtimer_new(e->ctx->base, on_monitor, b);
    int rc = b->monitor ? copy_opts(b, tag, opts) : VREV_ERR_NOMEM;
    if (rc < 0) {
        vrev__bridge_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int vrev__bridge_start(struct vrev__bridge *b)
{
    event_base_gettimeofday_cached(b->engine->ctx->base, &b->fail_since);
    schedule(b, 0);
    return 0;
}

void vrev__bridge_free(struct vrev__bridge *b)
{
    if (!b)
        return;
    vrev_ctx *ctx = b->engine->ctx;
    while (b->workers.next != &b->workers)
        worker_free(b->workers.next);
    if (b->monitor)
        event_free(b->monitor);
    vrev__free(ctx, b->allowed);
    vrev__free(ctx, b->tag);
    vrev__free(ctx, b->domain);
    vrev__free(ctx, b);
}

void vrev__bridge_adopt(struct vrev__bridge *to, struct vrev__bridge *from)
{
    while (from->workers.next != &from->workers) {
        struct bworker *w = from->workers.next;
        VREV__RING_REMOVE(w);
        w->bridge = to;
        VREV__RING_PUSH_BACK(&to->workers, w);
    }
    to->n_workers = from->n_workers;
    from->n_workers = 0;
    to->stats = from->stats;
    to->fail_since = from->fail_since;
    to->failing = from->failing;
    to->notify = from->notify;
    to->notify_user = from->notify_user;
}

void vrev__bridge_retire_tunnels(struct vrev__bridge *b)
{
    for (struct bworker *w = b->workers.next; w != &b->workers; w = w->next)
        if (w->active) {
            w->active = false;
            w->retired = true;
        }
    schedule(b, 0);
}

void vrev__bridge_wind_down(struct vrev__bridge *b)
{
    b->winding_down = true;
    vrev__bridge_retire_tunnels(b);
}

bool vrev__bridge_idle(const struct vrev__bridge *b)
{
    return b->n_workers == 0;
}

void vrev__bridge_get_stats(const struct vrev__bridge *b, struct vrev__bridge_stats *st)
{
    *st = b->stats;
    st->sessions_active = 0;
    for (const struct bworker *w = b->workers.next; w != &b->workers; w = w->next) {
        if (!w->mc) /* its tunnel still being dialed */
            continue;
        uint64_t up, down;
        vrev__muxconn_bytes(w->mc, &up, &down);
        st->bytes_up += up;
        st->bytes_down += down;
        vrev__muxconn_add_stats(w->mc, &st->mux);
        unsigned n = vrev__muxconn_active(w->mc);
        st->sessions_active += n - (n && w->control ? 1 : 0);
    }
}

void vrev__bridge_set_notify(struct vrev__bridge *b, vrev__reverse_notify_fn fn, void *user)
{
    b->notify = fn;
    b->notify_user = user;
}

const char *vrev__bridge_tag(const struct vrev__bridge *b)
{
    return b->tag;
}

evutil_socket_t vrev__bridge_tunnel_fd(const struct vrev__bridge *b)
{
    for (const struct bworker *w = b->workers.next; w != &b->workers; w = w->next)
        if (w->mc)
            return vrev__bev_tcp_fd(w->stream);
    return -1;
}
