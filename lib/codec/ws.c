/* WebSocket framing over wslay's event API (ws.h): wslay reads every frame and writes the
 * control frames through memory callbacks; our data frames go straight into the output. */
#include "ws.h"

#include <string.h>

#include <wslay/wslay.h>

#include "core/buf.h"
#include "crypto/crypto.h"

struct vrev__ws {
    vrev_ctx *ctx;
    wslay_event_context_ptr ev;
    struct vrev__ws_opts o;
    vrev__ws_data_cb on_data;
    void *user;
    struct vrev__buf out; /* wire bytes not yet consumed */
    const uint8_t *in;    /* the bytes being fed */
    size_t in_len;
    bool data_frame;     /* the frame being read carries payload */
    bool flood;          /* reading stopped: too many pings */
    bool close_queued;   /* vrev__ws_close() was called */
    int err;             /* sticky: the error feed returned */
    int cb_err;          /* on_data's or an output failure */
    unsigned pings;      /* since the last tick */
    unsigned unflushed;  /* pings whose pongs wslay still holds */
    unsigned unanswered; /* pongs in the output, not yet all consumed */
    uint64_t out_total;  /* bytes ever put into the output */
    uint64_t out_done;   /* bytes ever consumed from it */
    uint64_t pong_mark;  /* out_total after the last pongs went in */
    size_t mask_pos;     /* next unused byte of masks */
    uint8_t masks[256];  /* random bytes for client masking keys */
};

/* --- wslay callbacks ----------------------------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, int flags, void *u)
{
    struct vrev__ws *ws = u;
    (void)flags;
    if (ws->in_len == 0) {
        wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ev, const uint8_t *p, size_t len, int flags, void *u)
{
    struct vrev__ws *ws = u;
    (void)flags;
    if (vrev__buf_append(ws->ctx, &ws->out, p, len) < 0) {
        ws->cb_err = VREV_ERR_NOMEM;
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    ws->out_total += len;
    return (ssize_t)len;
}

static int next_mask(struct vrev__ws *ws, uint8_t key[4])
{
    if (ws->mask_pos + 4 > sizeof(ws->masks)) {
        int rc = vrev__random_bytes(ws->masks, sizeof(ws->masks));
        if (rc < 0)
            return rc;
        ws->mask_pos = 0;
    }
    memcpy(key, ws->masks + ws->mask_pos, 4);
    ws->mask_pos += 4;
    return 0;
}

static int genmask_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, void *u)
{
    struct vrev__ws *ws = u;
    for (size_t i = 0; i < len; i += 4) {
        uint8_t key[4];
        if (next_mask(ws, key) < 0) {
            wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        memcpy(buf + i, key, len - i < 4 ? len - i : 4);
    }
    return 0;
}

static void frame_start_cb(wslay_event_context_ptr ev,
                           const struct wslay_event_on_frame_recv_start_arg *a, void *u)
{
    struct vrev__ws *ws = u;
    ws->data_frame = a->opcode == WSLAY_CONTINUATION_FRAME || a->opcode == WSLAY_TEXT_FRAME ||
                     a->opcode == WSLAY_BINARY_FRAME;
    if (a->opcode != WSLAY_PING)
        return;
    /* Each ping makes wslay queue a pong (a malloc'd copy): stop reading at once past a
     * bound rather than answer a flood. */
    if (++ws->pings > ws->o.max_pings || ++ws->unflushed + ws->unanswered > ws->o.max_unanswered) {
        ws->flood = true;
        wslay_event_shutdown_read(ev);
    }
}

static void frame_chunk_cb(wslay_event_context_ptr ev,
                           const struct wslay_event_on_frame_recv_chunk_arg *a, void *u)
{
    struct vrev__ws *ws = u;
    if (!ws->data_frame || a->data_length == 0 || ws->cb_err || ws->flood)
        return;
    int rc = ws->on_data(ws->user, a->data, a->data_length);
    if (rc < 0) {
        ws->cb_err = rc;
        wslay_event_shutdown_read(ev);
    }
}

/* --- life ---------------------------------------------------------------------------------- */

int vrev__ws_new(vrev_ctx *ctx, struct vrev__ws **out, const struct vrev__ws_opts *opts,
                 vrev__ws_data_cb on_data, void *user)
{
    *out = NULL;
    if (!on_data)
        return VREV_ERR_INVAL;
    struct vrev__ws *ws = vrev__calloc(ctx, 1, sizeof(*ws));
    if (!ws)
        return VREV_ERR_NOMEM;
    ws->ctx = ctx;
    ws->on_data = on_data;
    ws->user = user;
    if (opts)
        ws->o = *opts;
    ws->o.max_frame = ws->o.max_frame ? ws->o.max_frame : VREV_WS_MAX_FRAME;
    ws->o.send_frame = ws->o.send_frame ? ws->o.send_frame : VREV_WS_SEND_FRAME;
    ws->o.max_pings = ws->o.max_pings ? ws->o.max_pings : VREV_WS_MAX_PINGS;
    ws->o.max_unanswered = ws->o.max_unanswered ? ws->o.max_unanswered : VREV_WS_MAX_UNANSWERED;
    ws->mask_pos = sizeof(ws->masks);
    struct wslay_event_callbacks cb = {.recv_callback = recv_cb,
                                       .send_callback = send_cb,
                                       .genmask_callback = genmask_cb,
                                       .on_frame_recv_start_callback = frame_start_cb,
                                       .on_frame_recv_chunk_callback = frame_chunk_cb};
    int rc = ws->o.client ? wslay_event_context_client_init(&ws->ev, &cb, ws)
                          : wslay_event_context_server_init(&ws->ev, &cb, ws);
    if (rc != 0) {
        vrev__free(ctx, ws);
        return VREV_ERR_NOMEM;
    }
    wslay_event_config_set_no_buffering(ws->ev, 1);
    wslay_event_config_set_max_recv_msg_length(ws->ev, ws->o.max_frame);
    *out = ws;
    return 0;
}

void vrev__ws_free(struct vrev__ws *ws)
{
    if (!ws)
        return;
    wslay_event_context_free(ws->ev);
    vrev__buf_free(ws->ctx, &ws->out);
    vrev__free(ws->ctx, ws);
}

/* --- input --------------------------------------------------------------------------------- */

static void flush(struct vrev__ws *ws);

/* Why reading stopped, once wslay_event_recv() has returned. */
static int verdict(struct vrev__ws *ws, int r)
{
    if (r == WSLAY_ERR_NOMEM)
        return VREV_ERR_NOMEM;
    if (ws->cb_err) {
        wslay_event_queue_close(ws->ev, 1011, NULL, 0); /* "internal error" */
        return ws->cb_err;
    }
    if (ws->flood) {
        wslay_event_queue_close(ws->ev, VREV_WS_CLOSE_POLICY, NULL, 0);
        return VREV_ERR_WS_FLOOD;
    }
    if (r < 0)
        return VREV_ERR_WS_FRAME;
    if (wslay_event_get_read_enabled(ws->ev) || wslay_event_get_close_received(ws->ev))
        return 0;
    /* wslay refused a frame and queued a close; its status says why (1009: over max_frame,
     * which wslay checks from the header, before any callback) */
    flush(ws);
    return wslay_event_get_status_code_sent(ws->ev) == VREV_WS_CLOSE_TOO_BIG ? VREV_ERR_WS_TOO_BIG
                                                                             : VREV_ERR_WS_FRAME;
}

int vrev__ws_feed(struct vrev__ws *ws, const uint8_t *p, size_t n)
{
    if (ws->err)
        return ws->err;
    if (!wslay_event_get_read_enabled(ws->ev) || n == 0)
        return 0; /* after the peer's close frame nothing counts */
    ws->in = p;
    ws->in_len = n;
    int r = wslay_event_recv(ws->ev);
    ws->in = NULL;
    ws->in_len = 0;
    return ws->err = verdict(ws, r);
}

/* --- output -------------------------------------------------------------------------------- */

/* Move wslay's queued control frames (pongs, close) into the output. */
static void flush(struct vrev__ws *ws)
{
    if (!wslay_event_want_write(ws->ev))
        return;
    if (wslay_event_send(ws->ev) != 0) {
        if (!ws->err)
            ws->err = ws->cb_err ? ws->cb_err : VREV_ERR_NOMEM;
        return;
    }
    if (ws->unflushed) { /* every queued pong is in the output now, before pong_mark */
        ws->unanswered += ws->unflushed;
        ws->unflushed = 0;
        ws->pong_mark = ws->out_total;
    }
}

static void mask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint8_t k8[8];
    uint64_t k, w;
    memcpy(k8, key, 4);
    memcpy(k8 + 4, key, 4);
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i % 4];
}

/* One final binary frame with payload p[0..n), masked in the client role. */
static int put_frame(struct vrev__ws *ws, const uint8_t *p, size_t n)
{
    uint8_t h[14], key[4];
    size_t hl = 0;
    uint8_t m = ws->o.client ? 0x80 : 0;
    h[hl++] = 0x80 | WSLAY_BINARY_FRAME;
    if (n < 126) {
        h[hl++] = (uint8_t)(m | n);
    } else if (n <= 0xffff) {
        h[hl++] = m | 126;
        vrev__put_u16(h + hl, (uint16_t)n);
        hl += 2;
    } else {
        h[hl++] = m | 127;
        vrev__put_u32(h + hl, (uint32_t)((uint64_t)n >> 32));
        vrev__put_u32(h + hl + 4, (uint32_t)n);
        hl += 8;
    }
    if (m) {
        int rc = next_mask(ws, key);
        if (rc < 0)
            return rc;
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    uint8_t *dst = vrev__buf_reserve(ws->ctx, &ws->out, hl + n);
    if (!dst)
        return VREV_ERR_NOMEM;
    memcpy(dst, h, hl);
    memcpy(dst + hl, p, n);
    if (m)
        mask(dst + hl, n, key);
    vrev__buf_commit(&ws->out, hl + n);
    ws->out_total += hl + n;
    return 0;
}

static bool closing(struct vrev__ws *ws)
{
    return ws->err || ws->close_queued || !wslay_event_get_read_enabled(ws->ev) ||
           wslay_event_get_close_sent(ws->ev);
}

int vrev__ws_send(struct vrev__ws *ws, const uint8_t *p, size_t n)
{
    if (closing(ws))
        return VREV_ERR_STATE;
    flush(ws); /* our frames start at a boundary of wslay's */
    if (ws->err)
        return ws->err;
    while (n > 0) {
        size_t k = n < ws->o.send_frame ? n : ws->o.send_frame;
        int rc = put_frame(ws, p, k);
        if (rc < 0)
            return rc;
        p += k;
        n -= k;
    }
    return 0;
}

int vrev__ws_close(struct vrev__ws *ws, uint16_t status)
{
    if (ws->close_queued)
        return 0;
    int r = wslay_event_queue_close(ws->ev, status, NULL, 0);
    if (r == WSLAY_ERR_NOMEM)
        return VREV_ERR_NOMEM;
    ws->close_queued = true; /* WSLAY_ERR_NO_MORE_MSG: a close is already queued */
    return 0;
}

size_t vrev__ws_pending(struct vrev__ws *ws, const uint8_t **p)
{
    flush(ws);
    *p = ws->out.data ? ws->out.data + ws->out.start : NULL;
    return vrev__buf_len(&ws->out);
}

void vrev__ws_consume(struct vrev__ws *ws, size_t n)
{
    size_t held = vrev__buf_len(&ws->out);
    ws->out_done += n < held ? n : held;
    vrev__buf_consume(&ws->out, n);
    /* The output is written in order: once it is written up to the last pong, every pong is
     * answered, however much data keeps following (a bulk download never empties it). */
    if (ws->unanswered && ws->out_done >= ws->pong_mark)
        ws->unanswered = 0;
}

size_t vrev__ws_buffered(const struct vrev__ws *ws)
{
    return vrev__buf_len(&ws->out) + wslay_event_get_queued_msg_length(ws->ev);
}

void vrev__ws_tick(struct vrev__ws *ws)
{
    ws->pings = 0;
}

bool vrev__ws_peer_closed(const struct vrev__ws *ws)
{
    return wslay_event_get_close_received(ws->ev) != 0;
}

uint16_t vrev__ws_peer_status(const struct vrev__ws *ws)
{
    return wslay_event_get_status_code_received(ws->ev);
}

bool vrev__ws_done(struct vrev__ws *ws)
{
    flush(ws);
    return wslay_event_get_close_received(ws->ev) && wslay_event_get_close_sent(ws->ev) &&
           vrev__buf_len(&ws->out) == 0;
}
