/* muxconn: vrev_mux over a transport bufferevent, sessions over local bufferevents (see
 * muxconn.h). UDP sessions' local sides carry datagrams as u16be length + bytes. */
#include <string.h>

#include "core/core.h"
#include "muxconn.h"
#include "vrev/tunnel.h"

#define LOG_COMPONENT "mux"

struct msession {
    struct msession *prev, *next;
    struct vrev__muxconn *mc;
    struct bufferevent *local; /* NULL: internal */
    uint16_t sid;
    bool udp;
    bool attached; /* still in the codec's table */
    uint64_t rx, tx;  /* payload delivered to / read from the local side */
    char target[64];  /* target host, for events (truncated) */
};

struct vrev__muxconn {
    vrev_ctx *ctx;
    vrev_mux *mux;
    struct bufferevent *transport;
    struct vrev__muxconn_cbs cbs;
    void *user;
    size_t hwm;
    struct msession sessions; /* list head */
    struct msession *blocked; /* the session whose local output stopped the transport */
    bool tx_paused;           /* locals stopped: the transport's output is full */
    bool closed;
    uint64_t rx_bytes; /* session payload delivered to local sides */
    uint64_t tx_bytes; /* session payload read from local sides and sent */
    int busy;
    bool free_pending;
};

static void local_read(struct bufferevent *bev, void *arg);
static void local_write(struct bufferevent *bev, void *arg);
static void local_event(struct bufferevent *bev, short what, void *arg);
static void transport_read(struct bufferevent *bev, void *arg);

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

static void session_event(struct msession *s, int event)
{
    struct vrev__muxconn *mc = s->mc;
    if (s->local && mc->cbs.on_session)
        mc->cbs.on_session(mc, event, s->target, s->rx, s->tx, mc->user);
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
    s->next = mc->sessions.next;
    s->prev = &mc->sessions;
    mc->sessions.next->prev = s;
    mc->sessions.next = s;
    if (local) {
        bufferevent_setcb(local, local_read, local_write, local_event, s);
        bufferevent_setwatermark(local, EV_WRITE, 0, 0);
        bufferevent_enable(local, mc->tx_paused ? EV_WRITE : EV_READ | EV_WRITE);
    }
    return s;
}

static void session_free(struct msession *s, int abort)
{
    struct vrev__muxconn *mc = s->mc;
    if (mc->blocked == s)
        mc->blocked = NULL;
    session_event(s, VREV_EVENT_SESSION_CLOSE);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    if (s->attached)
        vrev_mux_session_set_user(mc->mux, s->sid, NULL);
    if (s->local)
        vrev__bev_close(s->local, abort);
    vrev__free(mc->ctx, s);
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

static void set_locals_reading(struct vrev__muxconn *mc, bool on)
{
    for (struct msession *s = mc->sessions.next; s != &mc->sessions; s = s->next)
        if (s->local && s->attached) {
            if (on)
                bufferevent_enable(s->local, EV_READ);
            else
                bufferevent_disable(s->local, EV_READ);
        }
}

static void flush(struct vrev__muxconn *mc)
{
    const uint8_t *p;
    size_t n = vrev_mux_pending(mc->mux, &p);
    if (n == 0 || mc->closed)
        return;
    bufferevent_write(mc->transport, p, n);
    vrev_mux_consume(mc->mux, n);
    struct evbuffer *out = bufferevent_get_output(mc->transport);
    if (!mc->tx_paused && evbuffer_get_length(out) >= mc->hwm) {
        mc->tx_paused = true;
        set_locals_reading(mc, false);
        bufferevent_setwatermark(mc->transport, EV_WRITE, mc->hwm / 2, 0);
    }
}

static void transport_write(struct bufferevent *bev, void *arg)
{
    struct vrev__muxconn *mc = arg;
    if (mc->tx_paused) {
        mc->tx_paused = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        set_locals_reading(mc, true);
    }
}

/* --- closing ------------------------------------------------------------------------------- */

static void destroy(struct vrev__muxconn *mc)
{
    while (mc->sessions.next != &mc->sessions)
        session_free(mc->sessions.next, 1);
    vrev_mux_free(mc->mux);
    if (mc->transport)
        vrev__bev_close(mc->transport, 1);
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
    (void)mux, (void)f;
    struct vrev__muxconn *mc = user;
    if (mc->cbs.on_frame)
        mc->cbs.on_frame(mc, mc->user);
    return 0;
}

static int mux_open(vrev_mux *mux, uint16_t sid, const vrev_mux_frame *f, void *user)
{
    struct vrev__muxconn *mc = user;
    struct bufferevent *local = mc->cbs.on_open ? mc->cbs.on_open(mc, sid, f, mc->user) : NULL;
    if (vrev_mux_session_user(mux, sid)) /* kept internal */
        return 0;
    if (!local)
        return vrev_mux_end(mux, sid, 1);
    struct msession *s = session_new(mc, sid, local, vrev_mux_frame_network(f) == VREV_NET_UDP);
    if (!s) {
        vrev__bev_close(local, 1);
        return vrev_mux_end(mux, sid, 1);
    }
    vrev_mux_session_set_user(mux, sid, s);
    char host[VREV_MUX_TARGET_MAX];
    if (vrev_mux_frame_host(f, host, sizeof(host)) > 0)
        set_target(s, host);
    session_event(s, VREV_EVENT_SESSION_OPEN);
    return 0;
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
    struct evbuffer *out = bufferevent_get_output(s->local);
    mc->rx_bytes += len;
    s->rx += len;
    if (s->udp) {
        uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
        evbuffer_add(out, hdr, 2);
    }
    evbuffer_add(out, data, len);
    if (evbuffer_get_length(out) >= mc->hwm) {
        /* This session's reader is slow: stop reading the tunnel until it catches up. */
        mc->blocked = s;
        bufferevent_setwatermark(s->local, EV_WRITE, mc->hwm / 2, 0);
        vrev_mux_pause(mux);
    }
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

static void transport_read(struct bufferevent *bev, void *arg)
{
    struct vrev__muxconn *mc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    mc->busy++;
    while (!mc->closed && !mc->blocked && !mc->free_pending &&
           evbuffer_peek(in, -1, NULL, &vec, 1) >= 1 && vec.iov_len) {
        size_t used = 0;
        int rc = vrev_mux_feed(mc->mux, vec.iov_base, vec.iov_len, &used);
        evbuffer_drain(in, used);
        if (rc < 0) {
            vrev__log(mc->ctx, VREV_LOG_WARN, LOG_COMPONENT, "closing tunnel: %s",
                      vrev_strerror(rc));
            fail(mc, rc);
            break;
        }
    }
    if (!mc->closed && !mc->free_pending) {
        flush(mc);
        if (mc->blocked)
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
        evbuffer_drain(in, 2 + len); /* oversized datagrams are dropped, as V2Ray does */
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int send_stream(struct msession *s, struct evbuffer *in)
{
    struct evbuffer_iovec vec;
    while (evbuffer_peek(in, -1, NULL, &vec, 1) >= 1 && vec.iov_len) {
        int rc = vrev_mux_send(s->mc->mux, s->sid, vec.iov_base, vec.iov_len);
        s->mc->tx_bytes += vec.iov_len;
        s->tx += vec.iov_len;
        evbuffer_drain(in, vec.iov_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void local_read(struct bufferevent *bev, void *arg)
{
    struct msession *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!s->attached || s->mc->closed) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    int rc = s->udp ? send_datagrams(s, in) : send_stream(s, in);
    if (rc < 0) {
        vrev_mux_end(s->mc->mux, s->sid, 1);
        s->attached = false;
        session_free(s, 1);
    }
    flush(s->mc);
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
    if (mc->blocked == s) {
        mc->blocked = NULL;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(mc->transport, EV_READ);
        /* frames already buffered below us are not announced again: process them now */
        if (evbuffer_get_length(bufferevent_get_input(mc->transport)))
            transport_read(mc->transport, mc);
    }
}

static void local_event(struct bufferevent *bev, short what, void *arg)
{
    struct msession *s = arg;
    struct vrev__muxconn *mc = s->mc;
    if (!s->attached || mc->closed) {
        session_free(s, 1);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        local_read(bev, arg);
        if (!s->attached) /* failed while sending the rest */
            return;
        vrev_mux_end(mc->mux, s->sid, 0); /* no half-close in Mux.Cool: the session ends */
        vrev_mux_session_set_user(mc->mux, s->sid, NULL);
        session_finish_local(s);
    } else {
        vrev_mux_end(mc->mux, s->sid, 1);
        s->attached = false;
        session_free(s, 1);
    }
    flush(mc);
}

/* --- API ----------------------------------------------------------------------------------- */

int vrev__muxconn_new(vrev_ctx *ctx, int role, struct bufferevent *transport,
                      const struct vrev__policy *policy, const struct vrev__muxconn_cbs *cbs,
                      void *user, struct vrev__muxconn **out)
{
    static const vrev_mux_callbacks mcb = {VREV_MUX_CALLBACKS_ABI, mux_frame, mux_open, mux_data,
                                           mux_close};
    struct vrev__muxconn *mc = vrev__calloc(ctx, 1, sizeof(*mc));
    int rc = mc ? vrev_mux_new(&mc->mux, ctx, role, &mcb, mc) : VREV_ERR_NOMEM;
    if (rc < 0) {
        vrev__free(ctx, mc);
        vrev__bev_close(transport, 1);
        return rc;
    }
    mc->ctx = ctx;
    mc->transport = transport;
    mc->cbs = *cbs;
    mc->user = user;
    mc->hwm = policy->buffer_bytes < 65536 ? 65536 : policy->buffer_bytes;
    mc->sessions.next = mc->sessions.prev = &mc->sessions;
    bufferevent_setcb(transport, transport_read, transport_write, transport_event, mc);
    bufferevent_setwatermark(transport, EV_WRITE, 0, 0);
    bufferevent_enable(transport, EV_READ | EV_WRITE);
    struct bufferevent *below = bufferevent_get_underlying(transport);
    if (below && evbuffer_get_length(bufferevent_get_input(below)))
        bufferevent_trigger(below, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    if (evbuffer_get_length(bufferevent_get_input(transport)))
        bufferevent_trigger(transport, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    *out = mc;
    return 0;
}

int vrev__muxconn_open(struct vrev__muxconn *mc, int network, const struct vrev__addr *target,
                       struct bufferevent *local, const uint8_t *first, size_t first_len,
                       uint16_t *sid)
{
    char host[VREV_ADDR_DOMAIN_MAX + 1];
    int rc = mc->closed ? VREV_ERR_MUX_CLOSED : vrev__addr_host_text(target, host, sizeof(host));
    if (rc >= 0)
        rc = vrev_mux_open(mc->mux, network, host, target->port, first, first_len, sid);
    struct msession *s = NULL;
    if (rc >= 0) {
        s = session_new(mc, *sid, local, network == VREV_NET_UDP);
        if (!s) {
            vrev_mux_end(mc->mux, *sid, 1);
            rc = VREV_ERR_NOMEM;
        } else {
            vrev_mux_session_set_user(mc->mux, *sid, s);
            set_target(s, host);
            session_event(s, VREV_EVENT_SESSION_OPEN);
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

bool vrev__muxconn_closed(const struct vrev__muxconn *mc)
{
    return mc->closed;
}

unsigned vrev__muxconn_active(const struct vrev__muxconn *mc)
{
    return vrev_mux_active_sessions(mc->mux);
}

uint64_t vrev__muxconn_total(const struct vrev__muxconn *mc)
{
    return vrev_mux_total_sessions(mc->mux);
}

void vrev__muxconn_bytes(const struct vrev__muxconn *mc, uint64_t *rx, uint64_t *tx)
{
    *rx = mc ? mc->rx_bytes : 0;
    *tx = mc ? mc->tx_bytes : 0;
}

vrev_mux *vrev__muxconn_codec(struct vrev__muxconn *mc)
{
    return mc->mux;
}
