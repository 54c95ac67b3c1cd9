/* vrev_mux: the Mux.Cool session layer over the frame parser (behaviour rules in
 * WIRE-SPEC §2.8: what each side does with each frame). */
#include <string.h>

#include "core/buf.h"
#include "core/core.h"
#include "mux_ext.h"
#include "mux_frame.h"
#include "mux_guard.h"
#include "mux_internal.h"
#include "mux_table.h"

#define LOG_COMPONENT "mux"
/* Largest frame: metaLen + 512 bytes of metadata + dataLen + 65535 bytes of data. */
#define FRAME_MAX (2 + VREV_MUX_META_MAX + 2 + 0xffff)

struct vrev_mux {
    vrev_ctx *ctx;
    int role;
    vrev_mux_callbacks cb;
    void *user;
    unsigned max_sessions;
    struct vrev__mux_table sessions;
    uint16_t next_id; /* client: last id allocated */
    uint64_t total;
    uint64_t refused;

    /* abuse bounds (mux_guard.h) */
    uint8_t *answered;  /* a bit per id answered with End in this window (NULL: none yet) */
    bool answered_any;  /* some bit is set */
    uint32_t empty;     /* empty frames in this window */
    uint32_t empty_cap; /* 0: none */
    struct vrev__mux_guard_stats guard;

    /* input */
    uint8_t *rbuf; /* reassembly of a frame split across feeds */
    size_t rlen;
    size_t rcap;
    uint64_t offset; /* stream offset of the next unconsumed byte */
    bool pieces;     /* stream payload delivered as it arrives (vrev__mux_set_partial_data) */
    uint16_t psid;   /* pieces: the session whose payload is arriving */
    size_t premain;  /* pieces: payload bytes of the current frame still to come */
    int error;
    uint64_t error_offset;
    int depth; /* callbacks currently on the stack */
    bool paused;
    bool free_pending;

    struct vrev__buf out;
};

/* --- frames -------------------------------------------------------------------------------- */

uint16_t vrev_mux_frame_sid(const vrev_mux_frame *f)
{
    return f->sid;
}

int vrev_mux_frame_status(const vrev_mux_frame *f)
{
    return f->status;
}

int vrev_mux_frame_option(const vrev_mux_frame *f)
{
    return f->option;
}

int vrev_mux_frame_network(const vrev_mux_frame *f)
{
    return f->status == VREV_MUX_NEW ? f->network : 0;
}

int vrev_mux_frame_addr_type(const vrev_mux_frame *f)
{
    return f->status == VREV_MUX_NEW ? f->target.type : 0;
}

uint16_t vrev_mux_frame_port(const vrev_mux_frame *f)
{
    return f->status == VREV_MUX_NEW ? f->target.port : 0;
}

int vrev_mux_frame_host(const vrev_mux_frame *f, char *buf, size_t cap)
{
    if (f->status != VREV_MUX_NEW)
        return VREV_ERR_STATE;
    return vrev__addr_host_text(&f->target, buf, cap);
}

int vrev_mux_frame_target(const vrev_mux_frame *f, char *buf, size_t cap)
{
    if (f->status != VREV_MUX_NEW)
        return VREV_ERR_STATE;
    return vrev__addr_target_text(&f->target, buf, cap);
}

const uint8_t *vrev_mux_frame_data(const vrev_mux_frame *f, size_t *len)
{
    if (len)
        *len = f->data_len;
    return f->data;
}

uint64_t vrev_mux_frame_offset(const vrev_mux_frame *f)
{
    return f->offset;
}

/* --- lifecycle ----------------------------------------------------------------------------- */

int vrev_mux_new(vrev_mux **out, vrev_ctx *ctx, int role, const vrev_mux_callbacks *cb, void *user)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    if (!ctx || (role != VREV_MUX_CLIENT && role != VREV_MUX_SERVER))
        return VREV_ERR_INVAL;
    if (cb && cb->abi != VREV_MUX_CALLBACKS_ABI)
        return VREV_ERR_INVAL;
    vrev_mux *m = vrev__calloc(ctx, 1, sizeof(*m));
    if (!m)
        return VREV_ERR_NOMEM;
    m->ctx = ctx;
    m->role = role;
    if (cb)
        m->cb = *cb;
    m->user = user;
    m->max_sessions = VREV_MUX_DEFAULT_MAX_SESSIONS;
    *out = m;
    return 0;
}

static void destroy(vrev_mux *m)
{
    vrev_ctx *ctx = m->ctx;
    vrev__mux_table_free(ctx, &m->sessions);
    vrev__buf_free(ctx, &m->out);
    vrev__free(ctx, m->rbuf);
    vrev__free(ctx, m->answered);
    vrev__free(ctx, m);
}

void vrev_mux_free(vrev_mux *m)
{
    if (!m)
        return;
    if (m->depth > 0) {
        m->free_pending = true;
        m->paused = true;
        return;
    }
    destroy(m);
}

int vrev_mux_set_max_sessions(vrev_mux *m, unsigned max)
{
    if (!m || max == 0 || max > 0xffff)
        return VREV_ERR_INVAL;
    m->max_sessions = max;
    return 0;
}

/* --- output -------------------------------------------------------------------------------- */

/* Queue one whole frame: header and payload are appended together, so frames of different
 * sessions never interleave. */
static int queue_spec(vrev_mux *m, const struct vrev__mux_frame_spec *spec, const uint8_t *data)
{
    uint8_t *tail = vrev__buf_reserve(m->ctx, &m->out, VREV_MUX_HEADER_MAX + spec->data_len);
    if (!tail)
        return VREV_ERR_NOMEM;
    int hl = vrev__mux_encode_spec(tail, VREV_MUX_HEADER_MAX, spec);
    if (hl < 0)
        return hl;
    if (spec->data_len)
        memcpy(tail + hl, data, spec->data_len);
    vrev__buf_commit(&m->out, (size_t)hl + spec->data_len);
    return 0;
}

static int queue_frame(vrev_mux *m, uint16_t sid, uint8_t status, uint8_t option, uint8_t network,
                       const struct vrev__addr *target, const uint8_t *data, size_t len,
                       int with_data)
{
    struct vrev__mux_frame_spec spec =
        vrev__mux_spec(sid, status, option, network, target, with_data, len);
    return queue_spec(m, &spec, data);
}

/* Stream data goes out in Keep frames of at most VREV_MUX_STREAM_CHUNK bytes. */
static int queue_stream(vrev_mux *m, uint16_t sid, const uint8_t *data, size_t len)
{
    while (len) {
        size_t n = len < VREV_MUX_STREAM_CHUNK ? len : VREV_MUX_STREAM_CHUNK;
        int rc = queue_frame(m, sid, VREV_MUX_KEEP, 0, 0, NULL, data, n, 1);
        if (rc < 0)
            return rc;
        data += n;
        len -= n;
    }
    return 0;
}

/* --- abuse bounds (mux_guard.h) ----------------------------------------------------------- */

#define ID_BITS_BYTES (0x10000 / 8)

/* An id that is live again may be answered again once it dies. */
static void forget_answer(vrev_mux *m, uint16_t sid)
{
    if (m->answered)
        m->answered[sid >> 3] &= (uint8_t) ~(1u << (sid & 7));
}

/* Whether sid may be answered now; marks it answered. Without memory for the bitmap the
 * answer is skipped: it is a courtesy, never needed for correctness (the End that ended the
 * session went out when it ended). */
static bool may_answer(vrev_mux *m, uint16_t sid)
{
    if (!m->answered && !(m->answered = vrev__calloc(m->ctx, 1, ID_BITS_BYTES)))
        return false;
    uint8_t bit = (uint8_t)(1u << (sid & 7));
    if (m->answered[sid >> 3] & bit)
        return false;
    m->answered[sid >> 3] |= bit;
    m->answered_any = true;
    return true;
}

void vrev__mux_new_window(vrev_mux *m)
{
    if (m->answered_any)
        memset(m->answered, 0, ID_BITS_BYTES);
    m->answered_any = false;
    m->empty = 0;
}

void vrev__mux_set_empty_cap(vrev_mux *m, uint32_t cap)
{
    m->empty_cap = cap;
}

void vrev__mux_guard_stats(const vrev_mux *m, struct vrev__mux_guard_stats *st)
{
    *st = m->guard;
}

static int alloc_id(vrev_mux *m, uint16_t *sid)
{
    /* Pre-increment like V2Ray (first id 1), skip 0 and live ids after a wrap. */
    for (uint32_t tries = 0; tries < 0x10000; tries++) {
        uint16_t id = ++m->next_id;
        if (id != 0 && !vrev__mux_table_find(&m->sessions, id)) {
            *sid = id;
            return 0;
        }
    }
    return VREV_ERR_MUX_IDS_EXHAUSTED;
}

int vrev_mux_open(vrev_mux *m, int network, const char *host, uint16_t port, const uint8_t *data,
                  size_t len, uint16_t *sid)
{
    return vrev__mux_open_ext(m, network, host, port, data, len, NULL, 0, sid);
}

int vrev__mux_open_ext(vrev_mux *m, int network, const char *host, uint16_t port,
                       const uint8_t *data, size_t len, const uint8_t *ext, size_t ext_len,
                       uint16_t *sid)
{
    if (!m || !host || !sid || (len && !data))
        return VREV_ERR_INVAL;
    if (m->error)
        return VREV_ERR_MUX_CLOSED;
    if (m->role != VREV_MUX_CLIENT)
        return VREV_ERR_MUX_ROLE;
    if (network != VREV_NET_TCP && network != VREV_NET_UDP)
        return VREV_ERR_INVAL;
    if (network == VREV_NET_UDP && len > VREV_MUX_PACKET_MAX)
        return VREV_ERR_MUX_PACKET_SIZE;
    if (m->sessions.count >= m->max_sessions)
        return VREV_ERR_MUX_TOO_MANY;
    struct vrev__addr target;
    int rc = vrev__addr_from_text(&target, host, port);
    if (rc < 0)
        return rc;
    uint16_t id;
    if ((rc = alloc_id(m, &id)) < 0)
        return rc;
    size_t first = len < VREV_MUX_STREAM_CHUNK ? len : VREV_MUX_STREAM_CHUNK;
    size_t mark = vrev__buf_len(&m->out);
    struct vrev__mux_frame_spec spec = {.sid = id,
                                        .status = VREV_MUX_NEW,
                                        .network = (uint8_t)network,
                                        .target = &target,
                                        .ext = ext,
                                        .ext_len = ext_len,
                                        .with_data = len > 0,
                                        .data_len = first};
    rc = queue_spec(m, &spec, data);
    if (rc == 0 && len > first)
        rc = queue_stream(m, id, data + first, len - first);
    if (rc == 0 && !vrev__mux_table_insert(m->ctx, &m->sessions, id, (uint8_t)network))
        rc = VREV_ERR_NOMEM;
    if (rc == 0)
        forget_answer(m, id);
    if (rc < 0) {
        vrev__buf_truncate(&m->out, mark); /* nothing of a failed open leaves the codec */
        m->next_id--;
        return rc;
    }
    m->total++;
    *sid = id;
    return 0;
}

int vrev_mux_send(vrev_mux *m, uint16_t sid, const uint8_t *data, size_t len)
{
    if (!m || (len && !data))
        return VREV_ERR_INVAL;
    if (m->error)
        return VREV_ERR_MUX_CLOSED;
    struct vrev__mux_session *s = vrev__mux_table_find(&m->sessions, sid);
    if (!s)
        return VREV_ERR_MUX_NO_SESSION;
    if (len == 0)
        return 0;
    if (s->network == VREV_NET_UDP) {
        if (len > VREV_MUX_PACKET_MAX)
            return VREV_ERR_MUX_PACKET_SIZE;
        return queue_frame(m, sid, VREV_MUX_KEEP, 0, 0, NULL, data, len, 1);
    }
    size_t mark = vrev__buf_len(&m->out);
    int rc = queue_stream(m, sid, data, len);
    if (rc < 0)
        vrev__buf_truncate(&m->out, mark);
    return rc;
}

int vrev_mux_end(vrev_mux *m, uint16_t sid, int error)
{
    if (!m)
        return VREV_ERR_INVAL;
    if (m->error)
        return VREV_ERR_MUX_CLOSED;
    if (!vrev__mux_table_find(&m->sessions, sid))
        return VREV_ERR_MUX_NO_SESSION;
    int rc = queue_frame(m, sid, VREV_MUX_END, error ? VREV_MUX_OPT_ERROR : 0, 0, NULL, NULL, 0, 0);
    if (rc < 0)
        return rc;
    vrev__mux_table_remove(&m->sessions, sid);
    return 0;
}

int vrev__mux_queue_ext(vrev_mux *m, uint16_t sid, uint8_t status, const uint8_t *ext,
                        size_t ext_len)
{
    if (!m || (status != VREV_MUX_KEEP && status != VREV_MUX_KEEPALIVE))
        return VREV_ERR_INVAL;
    if (m->error)
        return VREV_ERR_MUX_CLOSED;
    if (status == VREV_MUX_KEEP && !vrev__mux_table_find(&m->sessions, sid))
        return VREV_ERR_MUX_NO_SESSION;
    struct vrev__mux_frame_spec spec = {
        .sid = sid, .status = status, .ext = ext, .ext_len = ext_len};
    return queue_spec(m, &spec, NULL);
}

int vrev_mux_keepalive(vrev_mux *m)
{
    if (!m)
        return VREV_ERR_INVAL;
    if (m->error)
        return VREV_ERR_MUX_CLOSED;
    return queue_frame(m, 0, VREV_MUX_KEEPALIVE, 0, 0, NULL, NULL, 0, 0);
}

size_t vrev_mux_pending(const vrev_mux *m, const uint8_t **data)
{
    if (data)
        *data = m->out.data ? m->out.data + m->out.start : NULL;
    return vrev__buf_len(&m->out);
}

void vrev_mux_consume(vrev_mux *m, size_t n)
{
    vrev__buf_consume(&m->out, n);
}

int vrev__mux_encode_header_text(uint8_t *out, size_t cap, uint16_t sid, int status, int option,
                                 int network, const char *host, uint16_t port, int with_data,
                                 size_t data_len)
{
    if (!out || status < VREV_MUX_NEW || status > VREV_MUX_KEEPALIVE || option < 0 || option > 0xff)
        return VREV_ERR_INVAL;
    struct vrev__addr target;
    if (status == VREV_MUX_NEW) {
        if (network != VREV_NET_TCP && network != VREV_NET_UDP)
            return VREV_ERR_INVAL;
        int rc = vrev__addr_from_text(&target, host, port);
        if (rc < 0)
            return rc;
    }
    return vrev__mux_encode_header(out, cap, sid, (uint8_t)status, (uint8_t)option,
                                   (uint8_t)network, &target, with_data, data_len);
}

/* --- sessions ------------------------------------------------------------------------------ */

int vrev_mux_session_set_user(vrev_mux *m, uint16_t sid, void *user)
{
    struct vrev__mux_session *s = m ? vrev__mux_table_find(&m->sessions, sid) : NULL;
    if (!s)
        return VREV_ERR_MUX_NO_SESSION;
    s->user = user;
    return 0;
}

void *vrev_mux_session_user(const vrev_mux *m, uint16_t sid)
{
    struct vrev__mux_session *s = m ? vrev__mux_table_find(&m->sessions, sid) : NULL;
    return s ? s->user : NULL;
}

int vrev_mux_session_network(const vrev_mux *m, uint16_t sid)
{
    struct vrev__mux_session *s = m ? vrev__mux_table_find(&m->sessions, sid) : NULL;
    return s ? s->network : VREV_ERR_MUX_NO_SESSION;
}

unsigned vrev_mux_active_sessions(const vrev_mux *m)
{
    return m ? m->sessions.count : 0;
}

uint64_t vrev_mux_total_sessions(const vrev_mux *m)
{
    return m ? m->total : 0;
}

uint64_t vrev_mux_refused_sessions(const vrev_mux *m)
{
    return m ? m->refused : 0;
}

int vrev_mux_error(const vrev_mux *m)
{
    return m ? m->error : VREV_ERR_INVAL;
}

uint64_t vrev_mux_error_offset(const vrev_mux *m)
{
    return m ? m->error_offset : 0;
}

size_t vrev_mux_buffered(const vrev_mux *m)
{
    if (!m)
        return 0;
    return m->rlen + (m->premain ? 1 : 0); /* mid-payload of a frame delivered in pieces */
}

int vrev__mux_set_partial_data(vrev_mux *m, int on)
{
    if (!m || m->rlen || m->premain)
        return m ? VREV_ERR_STATE : VREV_ERR_INVAL;
    m->pieces = on != 0;
    return 0;
}

void vrev__mux_pause(vrev_mux *m)
{
    if (m)
        m->paused = true;
}

/* --- input --------------------------------------------------------------------------------- */

static int fail(vrev_mux *m, int err, uint64_t offset)
{
    if (!m->error) {
        m->error = err;
        m->error_offset = offset;
        vrev__log(m->ctx, VREV_LOG_WARN, LOG_COMPONENT, "closing mux: %s at offset %llu",
                  vrev_strerror(err), (unsigned long long)offset);
    }
    return err;
}

/* Run a callback with the reentrancy bookkeeping that makes vrev_mux_free() safe in it. */
#define CALL(m, rc, fn, ...)                                                                       \
    do {                                                                                           \
        (m)->depth++;                                                                              \
        (rc) = (m)->cb.fn((m), __VA_ARGS__, (m)->user);                                            \
        (m)->depth--;                                                                              \
    } while (0)

/* An End the codec queues by itself in answer to input (counted: mux_guard.h). */
static int reply_end(vrev_mux *m, uint16_t sid, uint8_t option)
{
    size_t before = vrev__buf_len(&m->out);
    int rc = queue_frame(m, sid, VREV_MUX_END, option, 0, NULL, NULL, 0, 0);
    m->guard.reply_bytes += vrev__buf_len(&m->out) - before;
    return rc;
}

/* KeepAlive, or a Keep that carries neither payload nor an extension block. */
static int count_empty(vrev_mux *m, const struct vrev_mux_frame *f)
{
    if (f->status == VREV_MUX_KEEP ? f->data_len || f->ext_len : f->status != VREV_MUX_KEEPALIVE)
        return 0;
    m->guard.empty_frames++;
    if (m->empty_cap && ++m->empty > m->empty_cap) {
        vrev__log(m->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  "more than %u empty frames in one window (a flood): closing the mux",
                  m->empty_cap);
        return VREV_ERR_RANGE;
    }
    return 0;
}

static int on_new(vrev_mux *m, const struct vrev_mux_frame *f)
{
    int rc = 0;
    if (m->role == VREV_MUX_CLIENT)
        return 0; /* a client never accepts sessions: discard, as V2Ray does */
    if (f->sid == 0)
        return VREV_ERR_MUX_SESSION_ID;
    if (vrev__mux_table_find(&m->sessions, f->sid))
        return VREV_ERR_MUX_DUP_SESSION; /* never orphan the live session */
    if (f->network == VREV_NET_UDP && f->data_len > VREV_MUX_PACKET_MAX)
        return VREV_ERR_MUX_PACKET_SIZE;
    if (m->sessions.count >= m->max_sessions) {
        m->refused++;
        return reply_end(m, f->sid, VREV_MUX_OPT_ERROR);
    }
    if (!vrev__mux_table_insert(m->ctx, &m->sessions, f->sid, f->network))
        return VREV_ERR_NOMEM;
    forget_answer(m, f->sid);
    m->total++;
    if (m->cb.on_open)
        CALL(m, rc, on_open, f->sid, f);
    if (rc == 0 && f->data && f->data_len && m->cb.on_data && !m->free_pending &&
        vrev__mux_table_find(&m->sessions, f->sid))
        CALL(m, rc, on_data, f->sid, f->data, f->data_len);
    return rc;
}

static int on_keep(vrev_mux *m, const struct vrev_mux_frame *f)
{
    int rc = 0;
    if (!(f->option & VREV_MUX_OPT_DATA))
        return 0;
    struct vrev__mux_session *s = vrev__mux_table_find(&m->sessions, f->sid);
    if (!s) { /* the peer still talks to a session we dropped: tell it again, once a window */
        if (may_answer(m, f->sid))
            return reply_end(m, f->sid, 0);
        m->guard.replies_skipped++;
        return 0;
    }
    if (s->network == VREV_NET_UDP && f->data_len > VREV_MUX_PACKET_MAX)
        return VREV_ERR_MUX_PACKET_SIZE;
    if (f->data && f->data_len && m->cb.on_data) /* no data pointer: it comes in pieces */
        CALL(m, rc, on_data, f->sid, f->data, f->data_len);
    return rc;
}

static int on_end(vrev_mux *m, const struct vrev_mux_frame *f)
{
    int rc = 0;
    struct vrev__mux_session *s = vrev__mux_table_find(&m->sessions, f->sid);
    if (!s)
        return 0;
    void *session_user = s->user;
    vrev__mux_table_remove(&m->sessions, f->sid);
    if (m->cb.on_close)
        CALL(m, rc, on_close, f->sid, (f->option & VREV_MUX_OPT_ERROR) ? 1 : 0, session_user);
    return rc;
}

static int process(vrev_mux *m, struct vrev_mux_frame *f)
{
    int rc = count_empty(m, f);
    if (rc < 0)
        return rc;
    if (m->cb.on_frame) {
        CALL(m, rc, on_frame, f);
        if (rc < 0 || m->free_pending)
            return rc;
    }
    switch (f->status) {
    case VREV_MUX_NEW:
        return on_new(m, f);
    case VREV_MUX_KEEP:
        return on_keep(m, f);
    case VREV_MUX_END:
        return on_end(m, f);
    default:
        return 0; /* KeepAlive: nothing to do, data discarded */
    }
}

/* Append input to the reassembly buffer until the frame (with `head`: its header) is complete.
 * *taken gets the bytes taken from data. Returns the length of the complete frame (or header),
 * with *done set; 0 while incomplete; or a negative error. */
static int reassemble(vrev_mux *m, const uint8_t *data, size_t len, struct vrev_mux_frame *f,
                      bool *done, size_t *taken, bool head)
{
    *taken = 0;
    *done = false;
    for (;;) {
        size_t need = 0;
        int r = head ? vrev__mux_parse_head(m->rbuf, m->rlen, f, &need)
                     : vrev__mux_parse(m->rbuf, m->rlen, f, &need);
        if (r != 0) {
            *done = r > 0;
            return r; /* the frame's (or header's) length, or an error */
        }
        if (need > m->rcap) {
            size_t cap = need < 1024 ? 1024 : FRAME_MAX;
            uint8_t *p = vrev__realloc(m->ctx, m->rbuf, cap);
            if (!p)
                return VREV_ERR_NOMEM;
            m->rbuf = p;
            m->rcap = cap;
        }
        size_t n = need - m->rlen;
        if (n > len - *taken)
            n = len - *taken;
        if (n == 0)
            return 0;
        memcpy(m->rbuf + m->rlen, data + *taken, n);
        m->rlen += n;
        *taken += n;
    }
}

/* Pieces: a frame whose payload is delivered as it arrives (stream data for a live TCP
 * session, or a server's New for TCP). Anything else (datagrams, data nobody takes) is taken
 * whole, as without pieces, so that every check and reply happens exactly as it would. */
static bool is_piecewise(const vrev_mux *m, const struct vrev_mux_frame *f)
{
    if (!m->pieces || f->data_len == 0)
        return false;
    if (f->status == VREV_MUX_NEW)
        return m->role == VREV_MUX_SERVER && f->network == VREV_NET_TCP;
    if (f->status != VREV_MUX_KEEP)
        return false;
    const struct vrev__mux_session *s = vrev__mux_table_find(&m->sessions, f->sid);
    return s && s->network == VREV_NET_TCP;
}

/* The header of a piecewise frame is complete: act on it, then expect its payload. */
static int start_pieces(vrev_mux *m, struct vrev_mux_frame *f)
{
    m->psid = f->sid;
    m->premain = f->data_len;
    int rc = process(m, f); /* f->data is NULL: no data is delivered from here */
    return rc < 0 ? fail(m, rc, f->offset) : 0;
}

/* The next piece of the current frame's payload, to its session if it is still live. */
static int feed_piece(vrev_mux *m, const uint8_t *data, size_t len, size_t *used)
{
    size_t n = len < m->premain ? len : m->premain;
    uint64_t at = m->offset;
    *used = n;
    m->offset += n;
    m->premain -= n;
    int rc = 0;
    if (m->cb.on_data && !m->free_pending && vrev__mux_table_find(&m->sessions, m->psid))
        CALL(m, rc, on_data, m->psid, data, n);
    return rc < 0 ? fail(m, rc, at) : 0;
}

/* A frame split across feeds: gather it in rbuf. With pieces, its header first: a piecewise
 * frame leaves rbuf as soon as its header is whole, before any of its payload is copied. */
static int feed_split(vrev_mux *m, const uint8_t *data, size_t len, size_t *used)
{
    struct vrev_mux_frame f;
    bool done = false;
    size_t more = 0;
    uint64_t start = m->offset - m->rlen;
    int r = 0;
    *used = 0;
    if (m->pieces) {
        r = reassemble(m, data, len, &f, &done, used, true);
        if (r > 0 && m->rlen == (size_t)r && is_piecewise(m, &f)) {
            m->offset += *used;
            f.offset = start;
            m->rlen = 0;
            return start_pieces(m, &f);
        }
    }
    if (r >= 0)
        r = reassemble(m, data + *used, len - *used, &f, &done, &more, false);
    *used += more;
    m->offset += *used;
    if (r < 0)
        return fail(m, r, start);
    if (!done)
        return 0;
    f.offset = start;
    m->rlen = 0;
    int rc = process(m, &f);
    return rc < 0 ? fail(m, rc, start) : 0;
}

static int feed_one(vrev_mux *m, const uint8_t *data, size_t len, size_t *used)
{
    struct vrev_mux_frame f;
    size_t need;
    if (m->premain)
        return feed_piece(m, data, len, used);
    if (m->rlen)
        return feed_split(m, data, len, used);
    int r = m->pieces ? vrev__mux_parse_head(data, len, &f, &need) : 0;
    if (r > 0 && is_piecewise(m, &f)) {
        f.offset = m->offset;
        *used = (size_t)r;
        m->offset += (size_t)r;
        return start_pieces(m, &f);
    }
    if (r >= 0)
        r = vrev__mux_parse(data, len, &f, &need);
    if (r < 0)
        return fail(m, r, m->offset);
    if (r == 0)
        return feed_split(m, data, len, used);
    /* the whole frame is in the caller's buffer: no copy */
    f.offset = m->offset;
    *used = (size_t)r;
    m->offset += (size_t)r;
    int rc = process(m, &f);
    return rc < 0 ? fail(m, rc, f.offset) : 0;
}

int vrev_mux_feed(vrev_mux *m, const uint8_t *data, size_t len, size_t *consumed)
{
    size_t done = 0;
    int rc = 0;
    if (consumed)
        *consumed = 0;
    if (!m || (len && !data))
        return VREV_ERR_INVAL;
    if (m->error)
        return VREV_ERR_MUX_CLOSED;
    m->paused = false;
    m->depth++; /* a free from a callback must wait until we are out of here */
    while (done < len && !m->paused) {
        size_t used = 0;
        rc = feed_one(m, data + done, len - done, &used);
        done += used;
        if (rc < 0)
            break;
    }
    m->depth--;
    if (consumed)
        *consumed = done;
    if (m->free_pending && m->depth == 0)
        destroy(m);
    return rc;
}
