/* muxconn: vrev_mux over a transport bufferevent, sessions over local bufferevents (see
 * muxconn.h). UDP sessions' local sides carry datagrams as u16be length + bytes.
 *
 * Stream payload is moved, not copied, both ways. Sending, a session's input becomes Keep
 * frames written straight into the transport's output, each a header followed by whole
 * evbuffer chains (up to VREV_MUX_DATA_MAX bytes: a socket read's chain, see lib/net/tcp.c).
 * Receiving, the codec hands stream payload over in pieces (vrev__mux_set_partial_data) that
 * point into the transport's input; each piece is moved to the session's output with
 * evbuffer_remove_buffer, which relinks whole chains and copies only a chain shared with the
 * next frame. Datagrams, control messages and the codec's own frames (New, End) are copied. */
#include <string.h>

#include "codec/mux_ext.h"
#include "codec/mux_frame.h"
#include "codec/mux_guard.h"
#include "codec/mux_internal.h"
#include "core/budget.h"
#include "core/core.h"
#include "core/list.h"
#include "core/timeval.h"
#include "muxconn.h"
#include "vrev/tunnel.h"

#define LOG_COMPONENT "mux"
/* Abuse bounds (RELIABILITY §2.5). Frames the receiver queues by itself in answer to input
 * (End for a dead id, End|Error refusing a New) may add this much to an output that has
 * reached its high-water mark; past it the tunnel is not read until the peer has taken half
 * of its output: a peer that sends and never reads cannot make us queue answers for ever. */
#define REPLY_ALLOWANCE 65536
/* The codec's window (an id is answered once per window), and the empty frames (KeepAlive,
 * Keep carrying nothing) one window may bring before the tunnel is closed: neither V2Ray nor
 * vrev sends them but once in a while (a HELLO, a Keep with no data). */
#define WINDOW_MS 10000
#define EMPTY_FRAMES_MAX 1000

struct msession {
    struct msession *prev, *next;
    struct vrev__muxconn *mc;
    struct bufferevent *local; /* NULL: internal */
    uint16_t sid;
    uint64_t conn_id; /* the connection it carries (vrev__conn_id); 0: none (internal) */
    bool udp;
    bool attached;                    /* still in the codec's table */
    struct evbuffer_cb_entry *out_cb; /* counts the local side's output in mc->held */
    uint64_t rx, tx;  /* payload delivered to / read from the local side (up_down() names them) */
    bool flow;        /* flow-controlled (a vrev peer): never stops the tunnel */
    bool eof_pending; /* the local side ended; bytes wait for credit before End */
    bool withheld;    /* a grant is due but the tunnel is over its cap */
    struct vrev__flow fc;
    struct timeval last; /* last payload either way (policy connIdle) */
    char target[64];     /* target host, for events (truncated) */
};

struct vrev__muxconn {
    vrev_ctx *ctx;
    vrev_mux *mux;
    int role;            /* VREV_MUX_CLIENT (a portal) or VREV_MUX_SERVER (a bridge) */
    uint64_t conn_id;    /* the tunnel's, for log lines (vrev__muxconn_set_conn_id) */
    uint64_t opening_id; /* SERVER: the id of the session on_open is asked about */
    struct bufferevent *transport;
    /* Every frame goes here first, and into the transport's output in one piece later in the
     * same pass of the loop (cork, uncork()): a filter below (the VMess stream, a ws carrier)
     * makes one chunk or frame of each addition to its output, and a TLS layer a record, so a
     * session's New, data and End, or a frame's header and payload, each added alone, cost a
     * seal and a record apiece. */
    struct evbuffer *batch;
    struct event *cork;
    struct vrev__muxconn_cbs cbs;
    void *user;
    size_t hwm;
    struct msession sessions; /* list head */
    struct msession *blocked; /* the session whose local output stopped the transport */
    bool tx_paused;           /* locals stopped: the transport's output is full */
    bool closed;
    /* receiving: the input segment being fed, and the stream piece on_data left in it */
    const uint8_t *seg;
    size_t seg_len;
    struct msession *piece_to; /* NULL: no piece to move */
    size_t piece_off, piece_len;
    uint64_t rx_bytes;   /* session payload delivered to local sides */
    uint64_t tx_bytes;   /* session payload read from local sides and sent */
    struct event *sweep; /* ends sessions idle for idle_ms (V2Ray's connIdle); NULL: none */
    uint32_t idle_ms;
    struct event *stall; /* armed while the transport is stopped for the locals; NULL: none */
    uint32_t stall_ms;
    size_t held;        /* bytes queued for all local sides, not yet written */
    size_t held_cap;    /* policy tunnel_buffer_bytes (0: none) */
    bool over_cap;      /* the transport is stopped until held is down to half the cap */
    bool over_budget;   /* stopped: the context's buffers are full (bufferedTotal, G7) ... */
    size_t budget_mark; /* ... until held is down to half what it was then */
    uint32_t flow_window, flow_max; /* policy; flow_window 0: no flow control offered */
    bool peer_flow;                 /* the peer's HELLO offered flow control */
    bool peer_client;               /* ... asked for CLIENT in New frames */
    uint32_t peer_window;           /* ... and the window it grants each session */
    unsigned withheld;              /* sessions whose grant waits for held to come down */
    /* abuse bounds (RELIABILITY §2.5) */
    uint64_t session_rate, session_burst; /* SERVER: new sessions per second, bucket size */
    uint64_t tokens_milli;                /* the bucket's tokens x 1000 */
    int64_t refilled_ms;                  /* when the bucket was last refilled */
    int64_t window_ms;                    /* when the codec's window began (mux_guard.h) */
    uint64_t refusal_bytes;               /* End frames of sessions refused here (rate, on_open) */
    uint64_t replies_at_full;             /* replies queued when the output last reached hwm */
    bool reply_hold; /* not reading: replies past the allowance wait for the peer */
    bool owner_hold; /* not reading: the owner asked (vrev__muxconn_hold) */
    struct vrev__muxconn_stats stats;
    int busy;
    bool free_pending;
};

static void local_read(struct bufferevent *bev, void *arg);
static void local_write(struct bufferevent *bev, void *arg);
static void local_event(struct bufferevent *bev, short what, void *arg);
static void local_out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);
static void transport_read(struct bufferevent *bev, void *arg);
static void fail(struct vrev__muxconn *mc, int err);
static void grant(struct msession *s);
static void release_withheld(struct vrev__muxconn *mc);
static void arm_stall(struct vrev__muxconn *mc);
static void reset_session(struct msession *s);

/* --- abuse bounds ------------------------------------------------------------------------- */

static int64_t now_ms(const struct vrev__muxconn *mc)
{
    struct timeval tv;
    event_base_gettimeofday_cached(mc->ctx->base, &tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* SERVER: a token for a new session, if the bucket has one. */
static bool take_token(struct vrev__muxconn *mc)
{
    int64_t now = now_ms(mc);
    if (now < mc->refilled_ms) /* the clock went back */
        mc->refilled_ms = now;
    uint64_t cap = mc->session_burst * 1000,
             add = (uint64_t)(now - mc->refilled_ms) * mc->session_rate;
    mc->tokens_milli = add >= cap - mc->tokens_milli ? cap : mc->tokens_milli + add;
    mc->refilled_ms = now;
    if (mc->tokens_milli < 1000)
        return false;
    mc->tokens_milli -= 1000;
    return true;
}

/* Bytes of the frames queued in answer to input, by the codec and by us. */
static uint64_t replies(const struct vrev__muxconn *mc)
{
    struct vrev__mux_guard_stats g;
    vrev__mux_guard_stats(mc->mux, &g);
    return g.reply_bytes + mc->refusal_bytes;
}

/* Refuse session sid (End|Error), counting the End as a reply. */
static int refuse(struct vrev__muxconn *mc, uint16_t sid)
{
    size_t before = vrev_mux_pending(mc->mux, NULL);
    int rc = vrev_mux_end(mc->mux, sid, 1);
    size_t after = vrev_mux_pending(mc->mux, NULL);
    mc->refusal_bytes += after > before ? after - before : 0;
    return rc;
}

/* Answers past the allowance while the output is full: stop reading until it drains. */
static bool over_reply_allowance(struct vrev__muxconn *mc)
{
    if (!mc->tx_paused || mc->reply_hold || replies(mc) - mc->replies_at_full <= REPLY_ALLOWANCE)
        return mc->reply_hold;
    mc->reply_hold = true;
    mc->stats.reply_holds++;
    vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT,
              VREV__CONN_FMT
              "the peer does not read the answers to its frames: tunnel not read until it does",
              VREV__CONN_ARG(mc->conn_id));
    return true;
}

/* A new window of the codec's bounds, every WINDOW_MS. */
static void tick_window(struct vrev__muxconn *mc)
{
    int64_t now = now_ms(mc);
    if (now - mc->window_ms >= WINDOW_MS || now < mc->window_ms) {
        vrev__mux_new_window(mc->mux);
        mc->window_ms = now;
    }
}

/* The context's buffers are full (bufferedTotal) and this tunnel's local sides hold some of
 * it: its own drain will say when to go on (lib/core/budget.h). */
static bool budget_tight(const struct vrev__muxconn *mc)
{
    return mc->held > 0 && vrev__budget_full(mc->ctx);
}

/* --- sessions ------------------------------------------------------------------------------ */

/* Keep the target for events, truncated to fit (it is informational). */
static void set_target(struct msession *s, const char *host)
{
    size_t n = strlen(host);
    if (n >= sizeof(s->target))
        n = sizeof(s->target) - 1;
    memcpy(s->target, host, n);
    s->target[n] = '\0';
}

/* Bytes delivered to (rx) and read from (tx) the local sides, as directions: up is toward the
 * service behind the bridge, down back toward the public client. A CLIENT's local side is the
 * public client (a portal): what it reads goes up. A SERVER's is the service (a bridge): what
 * it delivers goes up. */
static void up_down(const struct vrev__muxconn *mc, uint64_t rx, uint64_t tx, uint64_t *up,
                    uint64_t *down)
{
    bool server = mc->role == VREV_MUX_SERVER;
    *up = server ? rx : tx;
    *down = server ? tx : rx;
}

/* A session's debug lines, which the portal's and the bridge's share: the mux id and the
 * tunnel it is on (so that the two sides of one connection can be matched), its bytes. */
static void log_session(const struct msession *s, int event, uint64_t up, uint64_t down)
{
    const struct vrev__muxconn *mc = s->mc;
    if (event == VREV_EVENT_SESSION_OPEN)
        vrev__log(mc->ctx, VREV_LOG_DEBUG, LOG_COMPONENT,
                  VREV__CONN_FMT "sid %u on tunnel c%llu to %s:%s", VREV__CONN_ARG(s->conn_id),
                  s->sid, (unsigned long long)mc->conn_id, s->udp ? "udp" : "tcp", s->target);
    else
        vrev__log(mc->ctx, VREV_LOG_DEBUG, LOG_COMPONENT,
                  VREV__CONN_FMT "sid %u closed: up %llu, down %llu bytes",
                  VREV__CONN_ARG(s->conn_id), s->sid, (unsigned long long)up,
                  (unsigned long long)down);
}

static void session_event(struct msession *s, int event)
{
    struct vrev__muxconn *mc = s->mc;
    uint64_t up, down;
    up_down(mc, s->rx, s->tx, &up, &down);
    if (s->local && vrev__log_enabled(mc->ctx, VREV_LOG_DEBUG))
        log_session(s, event, up, down);
    if (s->local && mc->cbs.on_session)
        mc->cbs.on_session(mc, event, s->target, up, down, mc->user);
}

static void touch(struct msession *s)
{
    event_base_gettimeofday_cached(s->mc->ctx->base, &s->last);
}

static struct msession *session_new(struct vrev__muxconn *mc, uint16_t sid,
                                    struct bufferevent *local, bool udp)
{
    struct msession *s = vrev__calloc(mc->ctx, 1, sizeof(*s));
    if (!s)
        return NULL;
    s->mc = mc;
    s->sid = sid;
    s->local = local;
    s->udp = udp;
    s->attached = true;
    touch(s);
    VREV__RING_PUSH_FRONT(&mc->sessions, s);
    if (local) {
        struct evbuffer *out = bufferevent_get_output(local);
        if (!(s->out_cb = evbuffer_add_cb(out, local_out_changed, s))) {
            VREV__RING_REMOVE(s);
            vrev__free(mc->ctx, s);
            return NULL;
        }
        mc->held += evbuffer_get_length(out);
        vrev__budget_add(mc->ctx, evbuffer_get_length(out));
        bufferevent_setcb(local, local_read, local_write, local_event, s);
        bufferevent_setwatermark(local, EV_WRITE, 0, 0);
        vrev__bev_enable(local, mc->tx_paused ? EV_WRITE : EV_READ | EV_WRITE);
    }
    return s;
}

/* Reading the transport is stopped for one of these reasons (each clears its own). */
static bool stopped(const struct vrev__muxconn *mc)
{
    return mc->blocked || mc->over_cap || mc->over_budget || mc->reply_hold || mc->owner_hold;
}

/* Nothing stops the transport any more (no blocking session, not over the cap): read on.
 * Frames already buffered are not announced again, so they are processed from the loop (never
 * from here: this runs inside the codec's callbacks too); so are bytes left below a filter
 * transport (VMess over an h2 stream: no new read event comes for them, and the peer, out of
 * credit, sends nothing more). */
static void resume_reading(struct vrev__muxconn *mc)
{
    if (stopped(mc))
        return;
    if (mc->stall && !mc->withheld)
        evtimer_del(mc->stall);
    if (mc->closed)
        return;
    bufferevent_enable(mc->transport, EV_READ);
    vrev__bev_kick_input(mc->transport);
}

/* The session that stopped the transport from being read has drained or is gone. */
static void unblock(struct vrev__muxconn *mc)
{
    bufferevent_setwatermark(mc->blocked->local, EV_WRITE, 0, 0);
    mc->blocked = NULL;
    resume_reading(mc);
}

/* Over the cap, the transport waits until the local sides have written half of it, and
 * flow-controlled sessions get no more credit until then. */
static void check_held(struct vrev__muxconn *mc)
{
    if (mc->over_cap && mc->held <= mc->held_cap / 2) {
        mc->over_cap = false;
        resume_reading(mc);
    }
    if (mc->over_budget && mc->held <= mc->budget_mark / 2) {
        mc->over_budget = false;
        resume_reading(mc);
    }
    if (mc->withheld && mc->held <= mc->held_cap / 2 && !budget_tight(mc))
        release_withheld(mc);
}

static void local_out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct msession *s = arg;
    s->mc->held += info->n_added;
    s->mc->held -= info->n_deleted;
    vrev__budget_add(s->mc->ctx, info->n_added);
    vrev__budget_sub(s->mc->ctx, info->n_deleted);
    if (s->flow && info->n_deleted) { /* the reader took them: the peer may send as many */
        vrev__flow_consumed(&s->fc, info->n_deleted);
        grant(s);
    }
    check_held(s->mc);
}

static void session_free(struct msession *s, int abort)
{
    struct vrev__muxconn *mc = s->mc;
    if (mc->blocked == s) /* e.g. its reader went away with the tunnel waiting for it */
        unblock(mc);
    if (s->withheld)
        mc->withheld--;
    session_event(s, VREV_EVENT_SESSION_CLOSE);
    VREV__RING_REMOVE(s);
    if (s->attached)
        vrev_mux_session_set_user(mc->mux, s->sid, NULL);
    if (s->out_cb) { /* what it still holds is dropped with it */
        struct evbuffer *out = bufferevent_get_output(s->local);
        evbuffer_remove_cb_entry(out, s->out_cb);
        mc->held -= evbuffer_get_length(out);
        vrev__budget_sub(mc->ctx, evbuffer_get_length(out));
    }
    if (s->local)
        vrev__bev_close(s->local, abort);
    vrev__free(mc->ctx, s);
    check_held(mc);
}

/* The session is gone from the codec; its local side gets what is still queued for it, then
 * an end of stream, then it is closed. */
static void session_finish_local(struct msession *s)
{
    s->attached = false;
    if (!s->local || evbuffer_get_length(bufferevent_get_output(s->local)) == 0) {
        session_free(s, 0);
        return;
    }
    bufferevent_disable(s->local, EV_READ);
    bufferevent_setwatermark(s->local, EV_WRITE, 0, 0);
}

/* --- output -------------------------------------------------------------------------------- */

/* A flow-controlled session out of credit, or waiting for credit after its local side ended,
 * is not read. */
static bool may_read(const struct msession *s)
{
    return !s->flow || (s->fc.send_credit > 0 && !s->eof_pending);
}

static void set_locals_reading(struct vrev__muxconn *mc, bool on)
{
    for (struct msession *s = mc->sessions.next; s != &mc->sessions; s = s->next)
        if (s->local && s->attached) {
            if (on && may_read(s))
                bufferevent_enable(s->local, EV_READ);
            else
                bufferevent_disable(s->local, EV_READ);
        }
}

/* After writing to the transport: a full output stops every local side from being read. */
static void check_tx(struct vrev__muxconn *mc)
{
    struct evbuffer *out = bufferevent_get_output(mc->transport);
    if (!mc->tx_paused && evbuffer_get_length(out) + evbuffer_get_length(mc->batch) >= mc->hwm) {
        mc->tx_paused = true;
        mc->replies_at_full = replies(mc);
        set_locals_reading(mc, false);
        bufferevent_setwatermark(mc->transport, EV_WRITE, mc->hwm / 2, 0);
    }
}

/* The frames gathered in mc->batch into the transport's output, at once. */
static void uncork(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__muxconn *mc = arg;
    if (mc->closed || !evbuffer_get_length(mc->batch))
        return;
    if (evbuffer_add_buffer(bufferevent_get_output(mc->transport), mc->batch) < 0) {
        evbuffer_drain(mc->batch, evbuffer_get_length(mc->batch));
        fail(mc, VREV_ERR_NOMEM); /* frames lost: the tunnel cannot go on */
    }
}

/* Frames were added to mc->batch: they go out later in this pass of the loop. */
static void corked(struct vrev__muxconn *mc)
{
    event_active(mc->cork, EV_WRITE, 1);
    check_tx(mc);
}

/* Write the frames the codec has queued (New, End, datagrams, control). */
static void flush(struct vrev__muxconn *mc)
{
    const uint8_t *p;
    size_t n = vrev_mux_pending(mc->mux, &p);
    if (n == 0 || mc->closed)
        return;
    if (evbuffer_add(mc->batch, p, n) < 0) {
        fail(mc, VREV_ERR_NOMEM);
        return;
    }
    vrev_mux_consume(mc->mux, n);
    corked(mc);
}

static void transport_write(struct bufferevent *bev, void *arg)
{
    struct vrev__muxconn *mc = arg;
    if (mc->tx_paused) {
        mc->tx_paused = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        set_locals_reading(mc, true);
        if (mc->reply_hold) { /* the peer reads again: so do we */
            mc->reply_hold = false;
            resume_reading(mc);
        }
    }
}

/* --- flow control (vrev peers only: docs/extensions.md) ----------------------------------- */

/* Queue a frame without data that carries one TLV: on session sid, or a KeepAlive (sid 0). */
static int send_ext(struct vrev__muxconn *mc, uint16_t sid, const uint8_t *tlv, int len)
{
    if (len < 0)
        return len;
    return vrev__mux_queue_ext(mc->mux, sid, sid ? VREV_MUX_KEEP : VREV_MUX_KEEPALIVE, tlv,
                               (size_t)len);
}

/* Offered once per tunnel, in both roles: a V2Ray peer skips the KeepAlive's tail. */
static void send_hello(struct vrev__muxconn *mc)
{
    uint8_t tlv[VREV_MUX_EXT_MAX];
    send_ext(mc, 0, tlv,
             vrev__mux_ext_hello(tlv, sizeof(tlv),
                                 VREV_MUX_EXT_FLAG_FLOW | VREV_MUX_EXT_FLAG_CLIENT,
                                 mc->flow_window));
}

/* Give the peer the credit its session is owed, unless the tunnel's local sides hold more
 * than the cap: then the grant waits until they are down to half of it (the peer's sessions
 * stop, the tunnel goes on), and the stall timer resets the largest holders if nothing
 * drains. */
static void grant(struct msession *s)
{
    struct vrev__muxconn *mc = s->mc;
    if (!s->attached || mc->closed || !vrev__flow_due(&s->fc))
        return;
    if ((mc->held_cap && mc->held >= mc->held_cap) || budget_tight(mc)) {
        if (!s->withheld) {
            s->withheld = true;
            if (mc->withheld++ == 0)
                arm_stall(mc);
        }
        return;
    }
    uint8_t tlv[VREV_MUX_EXT_MAX];
    bool sent = false;
    for (uint32_t g; (g = vrev__flow_grant(&s->fc)) > 0; sent = true)
        if (send_ext(mc, s->sid, tlv, vrev__mux_ext_window(tlv, sizeof(tlv), g)) < 0)
            break;
    if (sent)
        flush(mc);
}

static void release_withheld(struct vrev__muxconn *mc)
{
    mc->withheld = 0;
    if (mc->stall && !mc->blocked && !mc->over_cap)
        evtimer_del(mc->stall);
    for (struct msession *s = mc->sessions.next; s != &mc->sessions; s = s->next)
        if (s->withheld) {
            s->withheld = false;
            s->fc.urgent = true; /* what it was owed goes out now, however little */
            grant(s);
        }
}

/* The peer's credit came: a session that ran out reads its local side again. */
static void credit(struct msession *s, uint32_t inc)
{
    bool was_out = s->fc.send_credit == 0;
    vrev__flow_granted(&s->fc, inc);
    if (!s->local || !s->attached || !was_out)
        return;
    if (!s->mc->tx_paused && !s->eof_pending)
        bufferevent_enable(s->local, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(s->local))) /* read already: sent from the */
        bufferevent_trigger(s->local, EV_READ,                /* loop, not from inside the codec */
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* Out of credit: stop reading the local side; say so once if bytes wait (the peer may grow
 * its window). */
static void starve(struct msession *s, struct evbuffer *in)
{
    bufferevent_disable(s->local, EV_READ);
    if (s->fc.starved || evbuffer_get_length(in) == 0)
        return;
    s->fc.starved = true;
    uint8_t tlv[VREV_MUX_EXT_MAX];
    send_ext(s->mc, s->sid, tlv, vrev__mux_ext_blocked(tlv, sizeof(tlv)));
}

static void take_hello(struct vrev__muxconn *mc, const struct vrev__mux_ext *e)
{
    if (e->version >= VREV_MUX_EXT_VERSION && (e->flags & VREV_MUX_EXT_FLAG_CLIENT))
        mc->peer_client = true;
    if (e->version < VREV_MUX_EXT_VERSION || !(e->flags & VREV_MUX_EXT_FLAG_FLOW) ||
        e->hello_window < 16384)
        return;
    mc->peer_flow = true;
    mc->peer_window =
        e->hello_window > VREV_MUX_EXT_WINDOW_MAX ? VREV_MUX_EXT_WINDOW_MAX : e->hello_window;
}

/* The extension block of a KeepAlive (HELLO) or of a Keep without data (WINDOW, BLOCKED).
 * Blocks are read only once this side has offered the extensions, and Keep blocks only from
 * a peer that has offered them too: what a V2Ray or Xray peer puts there is never read. */
static void take_ext(struct vrev__muxconn *mc, const struct vrev_mux_frame *f)
{
    struct vrev__mux_ext e;
    if (f->status == VREV_MUX_NEW || vrev__mux_ext_parse(f->ext, f->ext_len, &e) < 0)
        return; /* New: read by mux_open */
    if (f->status == VREV_MUX_KEEPALIVE && e.hello) {
        take_hello(mc, &e);
        return;
    }
    struct msession *s =
        f->status == VREV_MUX_KEEP && mc->peer_flow ? vrev_mux_session_user(mc->mux, f->sid) : NULL;
    if (!s || !s->flow)
        return;
    if (e.window)
        credit(s, e.window_inc);
    if (e.blocked && s->local && s->attached &&
        vrev__flow_blocked(&s->fc, evbuffer_get_length(bufferevent_get_output(s->local))))
        grant(s);
}

/* Make a session flow-controlled. What its local side has read but may not send yet waits in
 * its input, bounded by a read high-water mark: re-enabling reading would otherwise take in a
 * whole read (or, from a pair, all its partner holds) for every grant, however small, and a
 * fast source behind a slow peer grew it without limit (170 MB in a bridge's session). */
static void start_flow(struct msession *s)
{
    struct vrev__muxconn *mc = s->mc;
    s->flow = true;
    vrev__flow_init(&s->fc, mc->peer_window, mc->flow_window, mc->flow_max);
    bufferevent_setwatermark(s->local, EV_READ, 0, mc->hwm);
}

bool vrev__muxconn_client(const struct vrev__muxconn *mc, const vrev_mux_frame *f,
                          struct vrev__addr *src, struct vrev__addr *dst)
{
    struct vrev__mux_ext e;
    if (!mc->peer_client || !f->ext_len || vrev__mux_ext_parse(f->ext, f->ext_len, &e) < 0 ||
        !e.client)
        return false;
    *src = e.client_src;
    *dst = e.client_dst;
    return true;
}

/* A session opened with FLOW (from a peer that offered flow control) is flow-controlled. */
static void take_flow(struct msession *s, const struct vrev_mux_frame *f)
{
    struct vrev__muxconn *mc = s->mc;
    struct vrev__mux_ext e;
    if (mc->peer_flow && !s->udp && f->ext_len &&
        vrev__mux_ext_parse(f->ext, f->ext_len, &e) == 0 && e.flow)
        start_flow(s);
}

/* --- closing ------------------------------------------------------------------------------- */

static void destroy(struct vrev__muxconn *mc)
{
    if (mc->sweep)
        event_free(mc->sweep);
    if (mc->stall)
        event_free(mc->stall);
    mc->closed = true;
    while (mc->sessions.next != &mc->sessions)
        session_free(mc->sessions.next, 1);
    vrev_mux_free(mc->mux);
    if (mc->transport)
        vrev__bev_close(mc->transport, 1);
    event_free(mc->cork);
    evbuffer_free(mc->batch);
    vrev__free(mc->ctx, mc);
}

/* The transport is gone: abort every session and tell the owner (last thing we do). */
static void fail(struct vrev__muxconn *mc, int err)
{
    if (mc->closed)
        return;
    mc->closed = true;
    while (mc->sessions.next != &mc->sessions)
        session_free(mc->sessions.next, 1);
    bufferevent_disable(mc->transport, EV_READ | EV_WRITE);
    if (mc->cbs.on_closed)
        mc->cbs.on_closed(mc, err, mc->user);
}

void vrev__muxconn_free(struct vrev__muxconn *mc)
{
    if (!mc)
        return;
    if (mc->busy) {
        mc->free_pending = true;
        return;
    }
    destroy(mc);
}

/* Leave a handler: returns true if the muxconn was freed meanwhile. */
static bool leave(struct vrev__muxconn *mc)
{
    if (--mc->busy == 0 && mc->free_pending) {
        destroy(mc);
        return true;
    }
    return false;
}

/* --- codec callbacks ----------------------------------------------------------------------- */

static int mux_frame(vrev_mux *mux, const vrev_mux_frame *f, void *user)
{
    (void)mux;
    struct vrev__muxconn *mc = user;
    if (f->ext_len && mc->flow_window)
        take_ext(mc, f);
    if (mc->cbs.on_frame)
        mc->cbs.on_frame(mc, mc->user);
    return 0;
}

static int mux_open(vrev_mux *mux, uint16_t sid, const vrev_mux_frame *f, void *user)
{
    struct vrev__muxconn *mc = user;
    if (!take_token(mc)) { /* "Rapid Reset": nothing is dialled or allocated for it */
        mc->stats.refused_rate++;
        vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "tunnel refused sid %u: the peer opens more than %llu "
                                 "sessions a second (burst %llu); %llu refused so far",
                  VREV__CONN_ARG(mc->conn_id), sid, (unsigned long long)mc->session_rate,
                  (unsigned long long)mc->session_burst,
                  (unsigned long long)mc->stats.refused_rate);
        return refuse(mc, sid);
    }
    mc->opening_id = 0; /* given when on_open asks for it (not to a control session) */
    struct bufferevent *local = mc->cbs.on_open ? mc->cbs.on_open(mc, sid, f, mc->user) : NULL;
    if (vrev_mux_session_user(mux, sid)) /* kept internal */
        return 0;
    if (!local)
        return refuse(mc, sid);
    struct msession *s = session_new(mc, sid, local, vrev_mux_frame_network(f) == VREV_NET_UDP);
    if (s)
        s->conn_id = mc->opening_id;
    if (!s) {
        vrev__bev_close(local, 1);
        return vrev_mux_end(mux, sid, 1);
    }
    vrev_mux_session_set_user(mux, sid, s);
    if (mc->flow_window)
        take_flow(s, f);
    char host[VREV_MUX_TARGET_MAX];
    if (vrev_mux_frame_host(f, host, sizeof(host)) > 0)
        set_target(s, host);
    session_event(s, VREV_EVENT_SESSION_OPEN);
    return 0;
}

/* After delivering to a session: a slow reader stops the tunnel until it catches up, and so
 * do all local sides together once they hold held_cap bytes (many slow readers, each under
 * its own limit). */
static void check_rx(struct vrev__muxconn *mc, struct msession *s)
{
    if (s->flow) /* bounded by its window: never stops the tunnel */
        return;
    if (evbuffer_get_length(bufferevent_get_output(s->local)) >= mc->hwm) {
        mc->blocked = s;
        bufferevent_setwatermark(s->local, EV_WRITE, mc->hwm / 2, 0);
    } else if (mc->held_cap && mc->held >= mc->held_cap) {
        mc->over_cap = true;
        mc->stats.cap_stops++;
    } else if (budget_tight(mc)) { /* a V2Ray peer: the stall timeout ends a wait for ever */
        if (!mc->over_budget)
            vrev__budget_log_stop(mc->ctx, LOG_COMPONENT);
        mc->over_budget = true;
        mc->budget_mark = mc->held;
        mc->stats.budget_stops++;
    } else {
        return;
    }
    vrev__mux_pause(mc->mux);
    arm_stall(mc);
}

static void arm_stall(struct vrev__muxconn *mc)
{
    if (mc->stall) {
        struct timeval tv = vrev__ms_to_tv(mc->stall_ms);
        evtimer_add(mc->stall, &tv);
    }
}

static int mux_data(vrev_mux *mux, uint16_t sid, const uint8_t *data, size_t len, void *user)
{
    struct vrev__muxconn *mc = user;
    struct msession *s = vrev_mux_session_user(mux, sid);
    if (!s)
        return 0;
    if (!s->local) {
        if (mc->cbs.on_internal_data)
            mc->cbs.on_internal_data(mc, sid, data, len, mc->user);
        return 0;
    }
    if (s->flow && vrev__flow_received(&s->fc, len) < 0) {
        vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "sid %u: the peer sent past its window: reset",
                  VREV__CONN_ARG(s->conn_id), sid);
        reset_session(s); /* that session, never the tunnel */
        return 0;
    }
    struct evbuffer *out = bufferevent_get_output(s->local);
    mc->rx_bytes += len;
    s->rx += len;
    touch(s);
    if (!s->udp && data >= mc->seg && (size_t)(data - mc->seg) < mc->seg_len) {
        /* A stream piece, the last bytes this feed consumes: transport_read moves it. */
        mc->piece_to = s;
        mc->piece_off = (size_t)(data - mc->seg);
        mc->piece_len = len;
        vrev__mux_pause(mux);
        return 0;
    }
    if (s->udp) {
        uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
        evbuffer_add(out, hdr, 2);
    }
    evbuffer_add(out, data, len);
    check_rx(mc, s);
    return 0;
}

static int mux_close(vrev_mux *mux, uint16_t sid, int error, void *session_user, void *user)
{
    (void)mux, (void)sid, (void)user;
    struct msession *s = session_user;
    if (!s)
        return 0;
    s->attached = false;
    if (error)
        session_free(s, 1); /* End|Error: the local side sees a reset, never a clean end */
    else
        session_finish_local(s);
    return 0;
}

/* --- transport ----------------------------------------------------------------------------- */

/* Move the stream piece on_data found at the end of the `used` bytes just fed. */
static void take_piece(struct vrev__muxconn *mc, struct evbuffer *in, size_t used)
{
    struct msession *s = mc->piece_to;
    struct evbuffer *out = bufferevent_get_output(s->local);
    mc->piece_to = NULL;
    if (mc->piece_off + mc->piece_len == used) {
        evbuffer_drain(in, mc->piece_off);
        if (evbuffer_remove_buffer(in, out, mc->piece_len) != (int)mc->piece_len)
            fail(mc, VREV_ERR_NOMEM); /* the stream is cut: the tunnel cannot go on */
    } else {                          /* not where a piece ends a feed (cannot happen): copy it */
        evbuffer_add(out, mc->seg + mc->piece_off, mc->piece_len);
        evbuffer_drain(in, used);
    }
    if (!mc->closed)
        check_rx(mc, s);
}

static void transport_read(struct bufferevent *bev, void *arg)
{
    struct vrev__muxconn *mc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    mc->busy++;
    tick_window(mc);
    while (!mc->closed && !mc->blocked && !mc->over_cap && !mc->over_budget && !mc->free_pending &&
           !mc->owner_hold && !over_reply_allowance(mc) &&
           evbuffer_peek(in, -1, NULL, &vec, 1) >= 1 && vec.iov_len) {
        size_t used = 0;
        mc->seg = vec.iov_base;
        mc->seg_len = vec.iov_len;
        mc->piece_to = NULL;
        int rc = vrev_mux_feed(mc->mux, vec.iov_base, vec.iov_len, &used);
        if (mc->piece_to)
            take_piece(mc, in, used);
        else
            evbuffer_drain(in, used);
        mc->seg = NULL;
        if (rc < 0) {
            vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT, VREV__CONN_FMT "closing tunnel: %s",
                      VREV__CONN_ARG(mc->conn_id), vrev_strerror(rc));
            fail(mc, rc);
            break;
        }
        if (!mc->free_pending)
            flush(mc); /* answers count against the output limit as they are made */
    }
    if (!mc->closed && !mc->free_pending) {
        flush(mc);
        if (stopped(mc))
            bufferevent_disable(bev, EV_READ);
    }
    leave(mc);
}

static void transport_event(struct bufferevent *bev, short what, void *arg)
{
    struct vrev__muxconn *mc = arg;
    mc->busy++;
    if (what & BEV_EVENT_EOF)
        transport_read(bev, arg); /* frames that came with the end */
    if (!mc->free_pending)
        fail(mc, (what & BEV_EVENT_ERROR) ? VREV_ERR_IO : 0);
    leave(mc);
}

/* --- local sides --------------------------------------------------------------------------- */

static int send_datagrams(struct msession *s, struct evbuffer *in)
{
    uint8_t hdr[2];
    while (evbuffer_copyout(in, hdr, 2) == 2) {
        size_t len = (size_t)hdr[0] << 8 | hdr[1];
        if (evbuffer_get_length(in) < 2 + len)
            break;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)(2 + len));
        int rc = len <= VREV_MUX_PACKET_MAX ? vrev_mux_send(s->mc->mux, s->sid, p + 2, len) : 0;
        s->mc->tx_bytes += len <= VREV_MUX_PACKET_MAX ? len : 0;
        s->tx += len <= VREV_MUX_PACKET_MAX ? len : 0;
        touch(s);
        evbuffer_drain(in, 2 + len); /* oversized datagrams are dropped, as V2Ray does */
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The payload of the next Keep frame: whole chains of `in`, at most VREV_MUX_DATA_MAX bytes,
 * or the first VREV_MUX_DATA_MAX bytes of a larger first chain. */
static size_t frame_payload(struct evbuffer *in)
{
    struct evbuffer_iovec v[16];
    int n = evbuffer_peek(in, -1, NULL, v, 16);
    size_t total = 0;
    for (int i = 0; i < n && i < 16 && total + v[i].iov_len <= VREV_MUX_DATA_MAX; i++)
        total += v[i].iov_len;
    if (total == 0) {
        total = evbuffer_get_length(in);
        total = total < VREV_MUX_DATA_MAX ? total : VREV_MUX_DATA_MAX;
    }
    return total;
}

/* Stream data: Keep frames written behind whatever the codec has queued (this session's New
 * first), header then the payload's chains, moved into mc->batch (corked). */
static int send_stream(struct msession *s, struct evbuffer *in)
{
    struct vrev__muxconn *mc = s->mc;
    struct evbuffer *out = mc->batch;
    uint8_t hdr[8];
    flush(mc);
    if (mc->closed)
        return 0;
    for (size_t n; (n = frame_payload(in)) > 0;) {
        if (s->flow && n > s->fc.send_credit)
            n = (size_t)s->fc.send_credit; /* what the peer's window allows */
        if (n == 0)
            break;
        int hl = vrev__mux_encode_header(hdr, sizeof(hdr), s->sid, VREV_MUX_KEEP, 0, 0, NULL, 1, n);
        if (hl < 0)
            return hl;
        if (evbuffer_add(out, hdr, (size_t)hl) < 0 ||
            evbuffer_remove_buffer(in, out, n) != (int)n) {
            evbuffer_drain(out, evbuffer_get_length(out));
            fail(mc, VREV_ERR_NOMEM); /* a frame is cut: the tunnel cannot go on */
            return 0;
        }
        mc->tx_bytes += n;
        s->tx += n;
        touch(s);
        if (s->flow)
            vrev__flow_sent(&s->fc, n);
    }
    if (evbuffer_get_length(out))
        corked(mc);
    if (s->flow && s->fc.send_credit == 0) {
        starve(s, in);
        flush(mc);
    }
    check_tx(mc);
    return 0;
}

/* Send what a local side has read. Returns false if the session is gone (freed) since. */
static bool send_local(struct msession *s, struct evbuffer *in)
{
    struct vrev__muxconn *mc = s->mc;
    int rc = s->udp ? send_datagrams(s, in) : send_stream(s, in);
    if (mc->closed) /* the tunnel failed: every session was freed */
        return false;
    if (rc < 0) {
        vrev_mux_end(mc->mux, s->sid, 1);
        s->attached = false;
        session_free(s, 1);
        return false;
    }
    return true;
}

/* The local side has ended and all it sent is out: End (no half-close in Mux.Cool). A local
 * side that failed (`dead`) is dropped; its End carries the error flag if bytes it read could
 * not be sent. */
static void end_local(struct msession *s, bool dead)
{
    struct vrev__muxconn *mc = s->mc;
    /* (a datagram session may leave half a datagram: dropped, as it always was) */
    bool cut = s->flow && evbuffer_get_length(bufferevent_get_input(s->local)) > 0;
    vrev_mux_end(mc->mux, s->sid, cut);
    vrev_mux_session_set_user(mc->mux, s->sid, NULL);
    if (dead || cut) {
        s->attached = false;
        session_free(s, 1);
    } else {
        session_finish_local(s);
    }
}

static void local_read(struct bufferevent *bev, void *arg)
{
    struct msession *s = arg;
    struct vrev__muxconn *mc = s->mc;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!s->attached || mc->closed) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    mc->busy++;
    if (send_local(s, in) && s->eof_pending && evbuffer_get_length(in) == 0)
        end_local(s, false);
    flush(mc);
    leave(mc);
}

static void local_write(struct bufferevent *bev, void *arg)
{
    struct msession *s = arg;
    struct vrev__muxconn *mc = s->mc;
    if (!s->attached) { /* finishing: everything was written */
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            session_free(s, 0);
        return;
    }
    if (mc->blocked == s)
        unblock(mc);
}

static void local_event(struct bufferevent *bev, short what, void *arg)
{
    struct msession *s = arg;
    struct vrev__muxconn *mc = s->mc;
    if (!s->attached || mc->closed) {
        session_free(s, 1);
        return;
    }
    mc->busy++;
    /* An end of stream may come with a write error in one event (deferred callbacks OR a
     * read's EOF and a write's EPIPE: the peer closed while output waited). What it sent
     * before closing still goes out and the session ends as at any end of stream, but what is
     * queued for it will never be written: the local side is dropped now rather than left to
     * drain, which would hold the tunnel for ever if its reader had stalled it. */
    bool dead = (what & (BEV_EVENT_ERROR | BEV_EVENT_WRITING)) != 0;
    if (!(what & BEV_EVENT_EOF)) {
        vrev_mux_end(mc->mux, s->sid, 1);
        s->attached = false;
        session_free(s, 1);
    } else if (send_local(s, bufferevent_get_input(bev))) { /* the rest, then End */
        if (s->flow && !dead && evbuffer_get_length(bufferevent_get_input(bev)))
            s->eof_pending = true; /* the rest waits for the peer's credit */
        else
            end_local(s, dead);
    }
    flush(mc);
    leave(mc);
}

/* --- idle sessions ----------------------------------------------------------------------- */

/* A session with no payload either way for idle_ms is ended (End with the error flag; its
 * local side is reset), as V2Ray's connIdle ends the public client's or the target's link. */
static void sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__muxconn *mc = arg;
    struct timeval now, idle = vrev__ms_to_tv(mc->idle_ms), due;
    event_base_gettimeofday_cached(mc->ctx->base, &now);
    mc->busy++;
    for (struct msession *s = mc->sessions.next, *next; !mc->closed && s != &mc->sessions;
         s = next) {
        next = s->next;
        timeradd(&s->last, &idle, &due);
        if (!s->local || timercmp(&now, &due, <))
            continue;
        vrev__log(mc->ctx, VREV_LOG_DEBUG, LOG_COMPONENT,
                  VREV__CONN_FMT "sid %u idle for %u ms: ended", VREV__CONN_ARG(s->conn_id), s->sid,
                  mc->idle_ms);
        if (s->attached)
            vrev_mux_end(mc->mux, s->sid, 1);
        s->attached = false;
        session_free(s, 1);
    }
    if (!mc->closed && !mc->free_pending) {
        flush(mc);
        uint32_t ms = mc->idle_ms / 4 < 10 ? 10 : mc->idle_ms / 4 > 30000 ? 30000 : mc->idle_ms / 4;
        struct timeval tv = vrev__ms_to_tv(ms);
        evtimer_add(mc->sweep, &tv);
    }
    leave(mc);
}

/* Reset a session (End with the error flag; its local side sees a reset). */
static void reset_session(struct msession *s)
{
    if (s->attached)
        vrev_mux_end(s->mc->mux, s->sid, 1);
    s->attached = false;
    session_free(s, 1);
}

/* The session whose local side holds the most. */
static struct msession *largest_holder(struct vrev__muxconn *mc)
{
    struct msession *big = NULL;
    size_t most = 0;
    for (struct msession *s = mc->sessions.next; s != &mc->sessions; s = s->next) {
        size_t n = s->local ? evbuffer_get_length(bufferevent_get_output(s->local)) : 0;
        if (n > most) {
            big = s;
            most = n;
        }
    }
    return big;
}

/* The tunnel has waited stall_ms for its local sides (head-of-line blocking, RELIABILITY
 * §3.6): one session's reader has not taken its bytes while every other session waits behind
 * it, and that session is reset; or, over the tunnel's cap, the sessions holding the most are
 * reset until half the cap is free. Then the tunnel reads on. */
static void stalled(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__muxconn *mc = arg;
    if (mc->closed || !(mc->blocked || mc->over_cap || mc->over_budget || mc->withheld))
        return;
    mc->busy++;
    if (mc->blocked) {
        vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "sid %u stalled the tunnel for %u ms: reset",
                  VREV__CONN_ARG(mc->blocked->conn_id), mc->blocked->sid, mc->stall_ms);
        reset_session(mc->blocked); /* unblocks */
    } else {
        vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "local sides held %zu bytes (cap %zu) for %u ms: resetting the "
                                 "largest",
                  VREV__CONN_ARG(mc->conn_id), mc->held, mc->held_cap, mc->stall_ms);
        struct msession *big; /* the last one resumes reading and granting */
        while (!mc->closed && (mc->over_cap || mc->over_budget || mc->withheld) &&
               (big = largest_holder(mc)))
            reset_session(big);
        if (mc->over_cap || mc->over_budget) { /* nobody holds anything: never stay stopped */
            mc->over_cap = mc->over_budget = false;
            resume_reading(mc);
        }
    }
    flush(mc);
    leave(mc);
}

/* --- API ----------------------------------------------------------------------------------- */

int vrev__muxconn_new(vrev_ctx *ctx, int role, struct bufferevent *transport,
                      const struct vrev__policy *policy, const struct vrev__muxconn_cbs *cbs,
                      void *user, struct vrev__muxconn **out)
{
    static const vrev_mux_callbacks mcb = {.abi = VREV_MUX_CALLBACKS_ABI,
                                           .on_frame = mux_frame,
                                           .on_open = mux_open,
                                           .on_data = mux_data,
                                           .on_close = mux_close};
    struct vrev__muxconn *mc = vrev__calloc(ctx, 1, sizeof(*mc));
    int rc = mc ? vrev_mux_new(&mc->mux, ctx, role, &mcb, mc) : VREV_ERR_NOMEM;
    if (rc < 0) {
        vrev__free(ctx, mc);
        vrev__bev_close(transport, 1);
        return rc;
    }
    mc->ctx = ctx;
    mc->role = role;
    mc->transport = transport;
    mc->cbs = *cbs;
    mc->user = user;
    mc->hwm = policy->buffer_bytes < 65536 ? 65536 : policy->buffer_bytes;
    mc->sessions.next = mc->sessions.prev = &mc->sessions;
    mc->idle_ms = policy->conn_idle_ms;
    mc->stall_ms = policy->stall_ms;
    mc->held_cap = policy->tunnel_buffer_bytes;
    if (mc->held_cap && mc->held_cap < 2 * mc->hwm)
        mc->held_cap = 2 * mc->hwm;
    mc->flow_window = policy->flow_window;
    if (mc->flow_window && mc->flow_window < 65536)
        mc->flow_window = 65536;
    if (mc->flow_window > VREV_MUX_EXT_WINDOW_MAX)
        mc->flow_window = VREV_MUX_EXT_WINDOW_MAX;
    mc->flow_max =
        policy->flow_window_max < mc->flow_window ? mc->flow_window : policy->flow_window_max;
    if (!(mc->batch = evbuffer_new()) || !(mc->cork = event_new(ctx->base, -1, 0, uncork, mc)) ||
        (mc->idle_ms && !(mc->sweep = evtimer_new(ctx->base, sweep, mc))) ||
        (mc->stall_ms && !(mc->stall = evtimer_new(ctx->base, stalled, mc)))) {
        if (mc->cork)
            event_free(mc->cork);
        if (mc->batch)
            evbuffer_free(mc->batch);
        if (mc->sweep)
            event_free(mc->sweep);
        vrev_mux_free(mc->mux);
        vrev__free(ctx, mc);
        vrev__bev_close(transport, 1);
        return VREV_ERR_NOMEM;
    }
    if (mc->sweep) {
        struct timeval tv = {0, 10000};
        evtimer_add(mc->sweep, &tv);
    }
    vrev__mux_set_partial_data(mc->mux, 1);
    vrev__mux_set_empty_cap(mc->mux, EMPTY_FRAMES_MAX);
    mc->session_rate = ctx->limits.session_rate;
    mc->session_burst = ctx->limits.session_burst;
    mc->tokens_milli = mc->session_burst * 1000;
    mc->refilled_ms = mc->window_ms = now_ms(mc);
    if (mc->flow_window) {
        send_hello(mc);
        flush(mc);
    }
    bufferevent_setcb(transport, transport_read, transport_write, transport_event, mc);
    bufferevent_setwatermark(transport, EV_WRITE, 0, 0);
    bufferevent_enable(transport, EV_READ | EV_WRITE);
    vrev__bev_kick_input(transport); /* frames that came with the tunnel's handshake */
    *out = mc;
    return 0;
}

/* The New frame's block: FLOW for a flow-controlled session, CLIENT for a peer that asked. */
static int open_block(const struct vrev__muxconn *mc, bool flow, int network,
                      const struct vrev__addr *const client[2], uint8_t *ext, size_t cap)
{
    int n = flow ? vrev__mux_ext_flow(ext, cap) : 0;
    if (n >= 0 && mc->peer_client && client && network == VREV_NET_TCP) {
        int c = vrev__mux_ext_client(ext + n, cap - (size_t)n, client[0], client[1]);
        if (c > 0) /* not IP addresses: nothing to say */
            n += c;
    }
    return n;
}

int vrev__muxconn_open(struct vrev__muxconn *mc, int network, const struct vrev__addr *target,
                       struct bufferevent *local, const uint8_t *first, size_t first_len,
                       uint16_t *sid)
{
    return vrev__muxconn_open_from(mc, network, target, NULL, local, first, first_len, 0, sid);
}

int vrev__muxconn_open_from(struct vrev__muxconn *mc, int network, const struct vrev__addr *target,
                            const struct vrev__addr *const client[2], struct bufferevent *local,
                            const uint8_t *first, size_t first_len, uint64_t conn_id, uint16_t *sid)
{
    char host[VREV_ADDR_DOMAIN_MAX + 1];
    int rc = mc->closed ? VREV_ERR_MUX_CLOSED : vrev__addr_host_text(target, host, sizeof(host));
    /* With a peer that offered flow control, a stream session is flow-controlled (FLOW). */
    bool flow = mc->peer_flow && mc->flow_window && local && network == VREV_NET_TCP &&
                first_len <= mc->peer_window;
    uint8_t ext[VREV_MUX_EXT_MAX];
    int ext_len = open_block(mc, flow, network, client, ext, sizeof(ext));
    if (rc >= 0 && ext_len < 0)
        rc = ext_len;
    if (rc >= 0)
        rc = vrev__mux_open_ext(mc->mux, network, host, target->port, first, first_len,
                                ext_len > 0 ? ext : NULL, ext_len > 0 ? (size_t)ext_len : 0, sid);
    struct msession *s = NULL;
    if (rc >= 0) {
        s = session_new(mc, *sid, local, network == VREV_NET_UDP);
        if (!s) {
            vrev_mux_end(mc->mux, *sid, 1);
            rc = VREV_ERR_NOMEM;
        } else {
            if (flow) {
                start_flow(s);
                vrev__flow_sent(&s->fc, first_len);
            }
            vrev_mux_session_set_user(mc->mux, *sid, s);
            set_target(s, host);
            s->conn_id = conn_id;
            session_event(s, VREV_EVENT_SESSION_OPEN);
            struct evbuffer *in = local && !s->udp ? bufferevent_get_input(local) : NULL;
            if (in && evbuffer_get_length(in)) { /* read already (vrev__bev_read_now): the */
                mc->busy++;                      /* bytes go out right behind the New frame */
                send_stream(s, in);
                if (leave(mc)) /* the tunnel failed (no memory) and its owner let it go */
                    return 0;
            }
        }
    }
    if (rc < 0 && local)
        vrev__bev_close(local, 1);
    flush(mc);
    return rc < 0 ? rc : 0;
}

void vrev__muxconn_keep_internal(struct vrev__muxconn *mc, uint16_t sid)
{
    struct msession *s = session_new(mc, sid, NULL, true);
    if (s)
        vrev_mux_session_set_user(mc->mux, sid, s);
}

int vrev__muxconn_send_internal(struct vrev__muxconn *mc, uint16_t sid, const uint8_t *data,
                                size_t len)
{
    if (mc->closed)
        return VREV_ERR_MUX_CLOSED;
    int rc = vrev_mux_send(mc->mux, sid, data, len);
    flush(mc);
    return rc;
}

int vrev__muxconn_end(struct vrev__muxconn *mc, uint16_t sid, int error)
{
    if (mc->closed)
        return VREV_ERR_MUX_CLOSED;
    struct msession *s = vrev_mux_session_user(mc->mux, sid);
    int rc = vrev_mux_end(mc->mux, sid, error);
    if (s) {
        s->attached = false;
        if (error)
            session_free(s, 1);
        else
            session_finish_local(s);
    }
    flush(mc);
    return rc;
}

void vrev__muxconn_set_session_rate(struct vrev__muxconn *mc, uint64_t rate, uint64_t burst)
{
    mc->session_rate = rate ? rate : 1;
    mc->session_burst = burst ? burst : 1;
    if (mc->tokens_milli > mc->session_burst * 1000)
        mc->tokens_milli = mc->session_burst * 1000;
}

void vrev__muxconn_hold(struct vrev__muxconn *mc)
{
    if (mc->owner_hold || mc->closed)
        return;
    mc->owner_hold = true;
    vrev__mux_pause(mc->mux); /* no-op outside vrev_mux_feed() */
    bufferevent_disable(mc->transport, EV_READ);
}

void vrev__muxconn_release(struct vrev__muxconn *mc)
{
    if (!mc->owner_hold)
        return;
    mc->owner_hold = false;
    resume_reading(mc);
}

void vrev__muxconn_get_stats(const struct vrev__muxconn *mc, struct vrev__muxconn_stats *st)
{
    struct vrev__mux_guard_stats g;
    vrev__mux_guard_stats(mc->mux, &g);
    *st = mc->stats;
    st->replies_skipped = g.replies_skipped;
    st->empty_frames = g.empty_frames;
}

void vrev__muxconn_add_stats(const struct vrev__muxconn *mc, struct vrev__muxconn_stats *sum)
{
    struct vrev__muxconn_stats st;
    vrev__muxconn_get_stats(mc, &st);
    sum->refused_rate += st.refused_rate;
    sum->replies_skipped += st.replies_skipped;
    sum->reply_holds += st.reply_holds;
    sum->empty_frames += st.empty_frames;
    sum->budget_stops += st.budget_stops;
    sum->cap_stops += st.cap_stops;
}

bool vrev__muxconn_closed(const struct vrev__muxconn *mc)
{
    return mc->closed;
}

bool vrev__muxconn_holding(const struct vrev__muxconn *mc)
{
    return !mc->closed && (mc->blocked || mc->over_cap || mc->over_budget);
}

unsigned vrev__muxconn_active(const struct vrev__muxconn *mc)
{
    return vrev_mux_active_sessions(mc->mux);
}

uint64_t vrev__muxconn_total(const struct vrev__muxconn *mc)
{
    return vrev_mux_total_sessions(mc->mux);
}

void vrev__muxconn_set_conn_id(struct vrev__muxconn *mc, uint64_t conn_id)
{
    mc->conn_id = conn_id;
}

uint64_t vrev__muxconn_conn_id(const struct vrev__muxconn *mc)
{
    return mc->conn_id;
}

uint64_t vrev__muxconn_opening_id(struct vrev__muxconn *mc)
{
    if (!mc->opening_id)
        mc->opening_id = vrev__conn_id(mc->ctx);
    return mc->opening_id;
}

void vrev__muxconn_bytes(const struct vrev__muxconn *mc, uint64_t *up, uint64_t *down)
{
    *up = *down = 0;
    if (mc)
        up_down(mc, mc->rx_bytes, mc->tx_bytes, up, down);
}

vrev_mux *vrev__muxconn_codec(struct vrev__muxconn *mc)
{
    return mc->mux;
}
