/* TLS as a bufferevent layer: the glue shared by both backends (tls_backend.h).
 *
 *   user bufferevent         bufferevent pair          engine (OpenSSL or mbedTLS)
 *   self (filter, no-op) --> outer ======== inner <--> records <--> lower (tcp, ...)
 *
 * The user gets `self`, a pass-through filter over one end of a pair; the engine sits between
 * the other end (`inner`) and `lower`. Why not a plain filter over `lower`: libevent 2.1's
 * filters pass the lower layer's EOF and errors straight up, ignore BEV_ERROR from a filter,
 * and stop reading below while the user has EV_READ disabled, which would stall a handshake
 * and strand bytes already read when reading resumes. Why not hand out the pair end: freeing
 * one end of a pair tells the other end nothing, and the filter's free callback does. The pair
 * gives backpressure for free (watermarks on both ends; each stage holds at most STAGE_CAP),
 * and every event reaches the user through `outer`, whose callbacks libevent removes when the
 * user frees `self`, so nothing is ever raised on a freed bufferevent.
 *
 * libevent's bufferevent_openssl is not used: in 2.1 it does not implement close_notify on
 * BEV_FINISHED (no half-close), and its handling of an unexpected EOF changed under OpenSSL 3.
 * One glue for both backends also keeps their behaviour identical.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"
#include "tls_backend.h"

#define LOG_COMPONENT "tls"
#define STAGE_CAP (64 * 1024) /* bytes per buffering stage and direction */
#define CHUNK 16384           /* plaintext per record */

enum { ST_HANDSHAKE, ST_OPEN, ST_FAILED };

struct tconn {
    struct vrev__layer layer; /* first: the mark's argument is the connection */
    vrev_ctx *ctx;
    uint64_t conn_id;        /* for the lines; 0: none */
    struct vrev__tls_ctx *t; /* a reference */
    struct vrev__tls_engine *eng;
    struct vrev__tls_io io;
    struct bufferevent *self, *outer, *inner, *lower;
    struct evbuffer_cb_entry *outer_in_cb;
    int state;
    bool busy, again;
    bool lower_reading;
    bool user_done;   /* the user's end of stream arrived on `inner` */
    bool keep_open;   /* ... is ignored (vrev__layer_keep_open) */
    bool notify_sent; /* our close_notify is out */
    bool lower_shut;  /* and the write direction below has ended */
    bool peer_done;   /* the peer's close_notify was read */
    bool eof_sent;    /* ... and passed to the user */
    bool aborted;
    size_t wr_len;      /* after AGAIN from a write: retry with the same length (and bytes) */
    uint32_t linger_ms; /* the most the close may linger (vrev__layer_set_linger) */
    char alpn[256];
    char err[VREV__TLS_ERR_LEN];
};

static const struct vrev__layer_ops tls_layer; /* below: the connection as a layer */

/* --- lower-transport I/O for the backends -------------------------------------------------- */

#ifdef VREV_TESTING
/* xorshift32: a bad transport for tests; true when this call should pretend to block. */
static bool chaos(struct vrev__tls_io *io, size_t *len)
{
    uint32_t x = io->chaos;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    io->chaos = x;
    if (x % 4 == 0) {
        io->spurious = true;
        return true;
    }
    *len = 1 + (x >> 8) % *len;
    return false;
}
#endif

int vrev__tls_io_recv(struct vrev__tls_io *io, uint8_t *buf, size_t len)
{
    if (len == 0)
        return VREV__TLS_AGAIN;
    if (len > INT_MAX)
        len = INT_MAX;
#ifdef VREV_TESTING
    if (io->chaos && evbuffer_get_length(io->in) && chaos(io, &len))
        return VREV__TLS_AGAIN;
#endif
    int n = evbuffer_remove(io->in, buf, len);
    if (n > 0)
        return n;
    if (io->eof) {
        io->hit_eof = true;
        return 0;
    }
    return VREV__TLS_AGAIN;
}

int vrev__tls_io_send(struct vrev__tls_io *io, const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (len > INT_MAX)
        len = INT_MAX;
#ifdef VREV_TESTING
    if (io->chaos && chaos(io, &len))
        return VREV__TLS_AGAIN;
#endif
    return evbuffer_add(io->out, buf, len) == 0 ? (int)len : VREV__TLS_FAILED;
}

/* --- one connection ------------------------------------------------------------------------- */

static void pump(struct tconn *c);

static void set_lower_reading(struct tconn *c, bool on)
{
    if (on == c->lower_reading)
        return;
    c->lower_reading = on;
    if (on)
        bufferevent_enable(c->lower, EV_READ);
    else
        bufferevent_disable(c->lower, EV_READ);
}

/* Every event reaches the user through `outer`: once the user has freed `self`, libevent has
 * removed outer's callbacks and the event goes nowhere. */
static void raise_event(struct tconn *c, short what)
{
    bufferevent_trigger_event(c->outer, what, BEV_TRIG_DEFER_CALLBACKS);
}

static void fail(struct tconn *c, short what, const char *reason)
{
    if (c->state == ST_FAILED)
        return;
    c->state = ST_FAILED;
    snprintf(c->err, sizeof(c->err), "%s", reason && *reason ? reason : "TLS failure");
    set_lower_reading(c, false);
    vrev__log(c->ctx, VREV_LOG_DEBUG, LOG_COMPONENT, VREV__CONN_FMT "connection failed: %s",
              VREV__CONN_ARG(c->conn_id), c->err);
    raise_event(c, (short)(BEV_EVENT_ERROR | what));
}

/* An end of stream below explains a failure better than whatever the library said about it. */
static const char *engine_reason(struct tconn *c, bool handshake)
{
    if (c->io.hit_eof)
        return handshake ? "connection closed during the TLS handshake"
                         : "connection closed without TLS close_notify (truncated)";
    return vrev__tls_engine_error(c->eng);
}

static void handshake(struct tconn *c)
{
    int r = vrev__tls_engine_handshake(c->eng);
    if (r == VREV__TLS_AGAIN)
        return;
    if (r != 0) {
        fail(c, BEV_EVENT_READING, engine_reason(c, true));
        return;
    }
    c->state = ST_OPEN;
    const char *alpn = vrev__tls_engine_alpn(c->eng);
    snprintf(c->alpn, sizeof(c->alpn), "%s", alpn ? alpn : "");
    if (vrev__log_enabled(c->ctx, VREV_LOG_DEBUG)) {
        char d[128];
        vrev__tls_engine_describe(c->eng, d, sizeof(d));
        vrev__log(c->ctx, VREV_LOG_DEBUG, LOG_COMPONENT,
                  VREV__CONN_FMT "handshake done: %s, ALPN %s", VREV__CONN_ARG(c->conn_id), d,
                  c->alpn[0] ? c->alpn : "none");
    }
}

/* Pass the peer's end of stream up once every byte before it has reached the user's side. */
static void deliver_eof(struct tconn *c)
{
    if (!c->peer_done || c->eof_sent || c->state == ST_FAILED)
        return;
    if (evbuffer_get_length(bufferevent_get_output(c->inner)) ||
        evbuffer_get_length(bufferevent_get_input(c->outer)))
        return; /* inner_io or outer_input_cb comes back here */
    c->eof_sent = true;
    raise_event(c, BEV_EVENT_EOF | BEV_EVENT_READING);
}

static void read_records(struct tconn *c)
{
    struct evbuffer *dst = bufferevent_get_output(c->inner);
    while (!c->peer_done && c->state == ST_OPEN) {
        if (evbuffer_get_length(dst) >= STAGE_CAP) {
            set_lower_reading(c, false); /* the user's side is full: inner_io resumes */
            return;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(dst, CHUNK, &v, 1) < 1) {
            fail(c, BEV_EVENT_READING, "out of memory");
            return;
        }
        int n = vrev__tls_engine_read(c->eng, v.iov_base, v.iov_len < CHUNK ? v.iov_len : CHUNK);
        if (n > 0) {
            v.iov_len = (size_t)n;
            evbuffer_commit_space(dst, &v, 1);
        } else if (n == VREV__TLS_AGAIN) {
            break;
        } else if (n == VREV__TLS_CLOSED) {
            c->peer_done = true;
        } else {
            fail(c, BEV_EVENT_READING, engine_reason(c, false));
            return;
        }
    }
    set_lower_reading(c, !c->peer_done);
}

/* After the user's end of stream and the bytes before it: close_notify, then end the write
 * direction below once it has drained. */
static void end_writes(struct tconn *c)
{
    if (c->state != ST_OPEN)
        return;
    if (c->user_done && !c->notify_sent && !c->wr_len &&
        !evbuffer_get_length(bufferevent_get_input(c->inner))) {
        int r = vrev__tls_engine_close_notify(c->eng);
        if (r == VREV__TLS_AGAIN)
            return;
        if (r < 0) {
            fail(c, BEV_EVENT_WRITING, vrev__tls_engine_error(c->eng));
            return;
        }
        c->notify_sent = true;
        bufferevent_setwatermark(c->lower, EV_WRITE, 0, 0); /* hear when all has left */
    }
    if (c->notify_sent && !c->lower_shut &&
        !evbuffer_get_length(bufferevent_get_output(c->lower))) {
        c->lower_shut = true;
        vrev__bev_shutdown_write(c->lower);
    }
}

/* The plaintext of the next record: whole chains of src, up to CHUNK bytes. The layer above
 * (one VMess chunk of at most 16209 bytes per chain) then goes out one record per chain with
 * nothing for evbuffer_pullup to copy; small chains are gathered up to RECORD_MIN, but never
 * with part of a large one: a chain cut short somewhere on the way makes one short record
 * rather than shifting every later record off its chain (each then a 16 KiB copy). */
#define RECORD_MIN 1024
#define RECORD_PEEK 8

static size_t record_len(struct evbuffer *src, size_t len)
{
    struct evbuffer_iovec v[RECORD_PEEK];
    int k = evbuffer_peek(src, -1, NULL, v, RECORD_PEEK);
    size_t n = 0;
    for (int i = 0; i < k && i < RECORD_PEEK && n < RECORD_MIN; i++) {
        if (n + v[i].iov_len > CHUNK)
            return n ? n : CHUNK;
        n += v[i].iov_len;
    }
    return n && n <= len ? n : (len < CHUNK ? len : CHUNK);
}

static void write_records(struct tconn *c)
{
    struct evbuffer *src = bufferevent_get_input(c->inner);
    struct evbuffer *out = bufferevent_get_output(c->lower);
    while (!c->notify_sent && c->state == ST_OPEN) {
        size_t len = evbuffer_get_length(src);
        if (len == 0 || evbuffer_get_length(out) >= STAGE_CAP)
            break; /* lower_write resumes */
        /* After AGAIN the library wants the very same bytes and length again. */
        size_t n = c->wr_len ? c->wr_len : record_len(src, len);
        const uint8_t *p = evbuffer_pullup(src, (ev_ssize_t)n);
        if (!p) {
            fail(c, BEV_EVENT_WRITING, "out of memory");
            return;
        }
        int w = vrev__tls_engine_write(c->eng, p, n);
        if (w == VREV__TLS_AGAIN) {
            c->wr_len = n;
            break;
        }
        if (w <= 0) {
            fail(c, BEV_EVENT_WRITING, vrev__tls_engine_error(c->eng));
            return;
        }
        evbuffer_drain(src, (size_t)w);
        c->wr_len = 0;
    }
    end_writes(c);
}

static void pump(struct tconn *c)
{
    if (c->busy) {
        c->again = true;
        return;
    }
    c->busy = true;
    do {
        c->again = false;
#ifdef VREV_TESTING
        c->io.spurious = false;
#endif
        if (c->state == ST_HANDSHAKE)
            handshake(c);
        if (c->state == ST_OPEN) {
            read_records(c);
            write_records(c);
            deliver_eof(c);
        }
#ifdef VREV_TESTING
        /* A pretend block (tests) has no event to wake us: go round again. */
        if (c->io.spurious && c->state != ST_FAILED)
            c->again = true;
#endif
    } while (c->again);
    c->busy = false;
}

/* --- callbacks ------------------------------------------------------------------------------ */

static void lower_io(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pump(arg);
}

static void lower_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct tconn *c = arg;
    if ((what & BEV_EVENT_EOF) && !(what & (BEV_EVENT_WRITING | BEV_EVENT_ERROR))) {
        c->io.eof = true;
        c->lower_reading = false; /* a socket bufferevent stops reading at EOF by itself */
        if (!c->peer_done)
            pump(c); /* the engine meets the end after the bytes still buffered */
        return;
    }
    if (c->peer_done && c->notify_sent)
        return; /* both directions are complete: nothing can be lost any more */
    char reason[128];
    int e = EVUTIL_SOCKET_ERROR();
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(reason, sizeof(reason), "connection timed out");
    else if (e)
        snprintf(reason, sizeof(reason), "connection error: %s", evutil_socket_error_to_string(e));
    else
        snprintf(reason, sizeof(reason), "connection error");
    fail(c, what & (BEV_EVENT_READING | BEV_EVENT_WRITING), reason);
}

/* inner's read and write callbacks: the user wrote, or the user's side took our bytes. */
static void inner_io(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pump(arg);
}

/* inner's events (through its mark, layer.h) */
static void inner_event(struct vrev__layer *l, short what)
{
    struct tconn *c = (struct tconn *)l;
    if (what & BEV_EVENT_EOF) {
        if (c->keep_open) /* a layer above has no half-close: only the free ends it */
            return;
        c->user_done = true; /* bufferevent_flush(self, EV_WRITE, BEV_FINISHED) */
        pump(c);
    } else if (what & BEV_EVENT_ERROR) {
        c->aborted = true;
    }
}

static void outer_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_deleted)
        deliver_eof(arg);
}

/* --- closing -------------------------------------------------------------------------------- */

static bool write_all(struct tconn *c, const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = c->wr_len ? c->wr_len : (n < CHUNK ? n : CHUNK);
        int w = vrev__tls_engine_write(c->eng, p, k);
        if (w <= 0)
            return false;
        c->wr_len = 0;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Encrypt what the user was told is written: inner's input, then outer's output (read in
 * place: a pair keeps the front of that buffer frozen). */
static bool flush_plaintext(struct tconn *c)
{
    struct evbuffer *bufs[2] = {bufferevent_get_input(c->inner), bufferevent_get_output(c->outer)};
    for (int i = 0; i < 2; i++) {
        size_t left = evbuffer_get_length(bufs[i]), off = 0;
        while (left) {
            struct evbuffer_ptr pos;
            struct evbuffer_iovec v;
            if (evbuffer_ptr_set(bufs[i], &pos, off, EVBUFFER_PTR_SET) < 0 ||
                evbuffer_peek(bufs[i], (ev_ssize_t)left, &pos, &v, 1) < 1 || !v.iov_len)
                return false;
            size_t k = v.iov_len < left ? v.iov_len : left;
            if (!write_all(c, v.iov_base, k))
                return false;
            off += k;
            left -= k;
        }
    }
    return true;
}

/* --- lingering close ----------------------------------------------------------------------- */

/* After the user has freed the layer, the socket below may still hold records the kernel had
 * no room for: it is left to finish alone (vrev__bev_linger), for at most c->linger_ms and
 * LINGER_MS. A handshake ending at its deadline lingers not at all (vrev__layer_set_linger
 * 0). */
#define LINGER_MS 10000

static void linger(struct tconn *c, struct bufferevent *lower, bool peer_ended)
{
    vrev__bev_linger(c->ctx, lower, c->linger_ms < LINGER_MS ? c->linger_ms : LINGER_MS,
                     peer_ended);
}

/* Like closing a socket: what the user was told is written goes out, then close_notify, then
 * the end of the connection; after an abort (vrev__layer_closing), no close_notify and an RST. */
static void close_lower(struct tconn *c)
{
    struct bufferevent *lower = c->lower;
    bufferevent_setcb(lower, NULL, NULL, NULL, NULL);
#ifdef VREV_TESTING
    c->io.chaos = 0;
#endif
    bool abort = c->aborted;
    if (!abort && c->state == ST_OPEN && !c->notify_sent)
        abort = !flush_plaintext(c) || vrev__tls_engine_close_notify(c->eng) != 0;
    evutil_socket_t fd = bufferevent_getfd(lower);
    if (abort || fd < 0) { /* a pair or filter below takes everything at once */
        vrev__bev_close(lower, abort);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(lower);
    evbuffer_unfreeze(out, 1); /* a socket bufferevent keeps its output's front frozen */
    while (evbuffer_get_length(out) && evbuffer_write(out, fd) > 0)
        ;
    evbuffer_freeze(out, 1);
    if (!evbuffer_get_length(out) && c->io.eof)
        vrev__bev_close(lower, false); /* all out, and nothing more can arrive */
    else
        linger(c, lower, c->io.eof);
}

/* The filter's free callback: the user has freed `self`. */
static void self_destroyed(void *arg)
{
    struct tconn *c = arg;
    evbuffer_remove_cb_entry(bufferevent_get_input(c->outer), c->outer_in_cb);
    close_lower(c);
    bufferevent_free(c->inner);
    bufferevent_free(c->outer);
    vrev__tls_engine_free(c->eng);
    vrev__tls_ctx_free(c->t);
    vrev__free(c->ctx, c);
}

/* --- wrap ----------------------------------------------------------------------------------- */

static bool ip_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf,
                         (socklen_t)len) != NULL;
    if (ss->ss_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) /* checked against an IPv4 SAN, as V2Ray sees the peer */
        return inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len) != NULL;
    return inet_ntop(AF_INET6, a, buf, (socklen_t)len) != NULL;
}

/* The name a client sends and checks: configured, else given, else the peer's address. */
static int pick_name(const struct vrev__tls_common *tc, struct bufferevent *lower, const char *name,
                     char *buf, size_t len, const char **out, bool *is_ip)
{
    *out = NULL;
    *is_ip = false;
    if (tc->server)
        return 0;
    const char *n = tc->server_name ? tc->server_name : name;
    if (n && *n) {
        size_t l = strlen(n);
        if (n[0] == '[' && l > 2 && n[l - 1] == ']' && l - 2 < len) { /* "[::1]" */
            memcpy(buf, n + 1, l - 2);
            buf[l - 2] = '\0';
            n = buf;
        }
        unsigned char tmp[16];
        *is_ip = inet_pton(AF_INET, n, tmp) == 1 || inet_pton(AF_INET6, n, tmp) == 1;
        *out = n;
        return 0;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = bufferevent_getfd(lower);
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ip_text(&ss, buf, len)) {
        *out = buf;
        *is_ip = true;
        return 0;
    }
    return tc->insecure ? 0 : VREV_ERR_INVAL;
}

/* The user's bytes pass to outer whole chains at a time: libevent's default pass-through
 * (evbuffer_remove_buffer up to the room under outer's high-water mark) copies the chain it
 * cuts, and the cut pieces later cost write_records a pullup copy as well. Whole chains up to
 * the room, or the room's worth when the first chain alone is larger. */
static enum bufferevent_filter_result pass_chains(struct evbuffer *src, struct evbuffer *dst,
                                                  ev_ssize_t limit,
                                                  enum bufferevent_flush_mode mode, void *arg)
{
    (void)mode, (void)arg;
    size_t len = evbuffer_get_length(src), n = 0;
    if (limit >= 0 && (size_t)limit < len) {
        struct evbuffer_ptr at;
        struct evbuffer_iovec v;
        evbuffer_ptr_set(src, &at, 0, EVBUFFER_PTR_SET);
        while (evbuffer_peek(src, -1, &at, &v, 1) >= 1 && v.iov_len <= (size_t)limit - n) {
            n += v.iov_len;
            if (v.iov_len == 0 || evbuffer_ptr_set(src, &at, v.iov_len, EVBUFFER_PTR_ADD) < 0)
                break;
        }
        len = n ? n : (size_t)limit;
    }
    if (len && evbuffer_remove_buffer(src, dst, len) < 0)
        return BEV_ERROR;
    return BEV_OK;
}

static int make_bevs(struct tconn *c)
{
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(bufferevent_get_base(c->lower), BEV_OPT_DEFER_CALLBACKS, pair) < 0)
        return VREV_ERR_NOMEM;
    c->outer = pair[0];
    c->inner = pair[1];
    c->outer_in_cb = evbuffer_add_cb(bufferevent_get_input(c->outer), outer_input_cb, c);
    if (c->outer_in_cb)
        c->self = bufferevent_filter_new(c->outer, NULL, pass_chains, BEV_OPT_DEFER_CALLBACKS,
                                         self_destroyed, c);
    if (!c->self) {
        if (c->outer_in_cb)
            evbuffer_remove_cb_entry(bufferevent_get_input(c->outer), c->outer_in_cb);
        bufferevent_free(c->inner);
        bufferevent_free(c->outer);
        return VREV_ERR_NOMEM;
    }
    return 0;
}

static void start(struct tconn *c)
{
    /* The filter stops filling outer's output at STAGE_CAP, the pair moves at most STAGE_CAP
     * into inner's input; the callbacks come back at half. */
    bufferevent_setwatermark(c->outer, EV_WRITE, STAGE_CAP / 2, STAGE_CAP);
    bufferevent_setwatermark(c->inner, EV_READ, 0, STAGE_CAP);
    bufferevent_setwatermark(c->inner, EV_WRITE, STAGE_CAP / 2, 0);
    vrev__layer_mark(c->inner, inner_io, inner_io, &c->layer);
    bufferevent_enable(c->inner, EV_READ | EV_WRITE);
    bufferevent_setwatermark(c->lower, EV_READ, 0, 0);
    bufferevent_setwatermark(c->lower, EV_WRITE, STAGE_CAP / 2, 0);
    bufferevent_setcb(c->lower, lower_io, lower_io, lower_event, c);
    bufferevent_enable(c->lower, EV_READ | EV_WRITE);
    c->lower_reading = true;
    pump(c); /* a client's hello, or bytes that arrived before the wrap */
}

struct bufferevent *vrev__tls_wrap(struct vrev__tls_ctx *t, struct bufferevent *lower,
                                   const char *name, uint64_t conn_id, int *err)
{
    int rc = t && lower ? 0 : VREV_ERR_INVAL;
    struct tconn *c = NULL;
    char buf[INET6_ADDRSTRLEN + 8];
    const char *check = NULL;
    bool is_ip = false;
    if (rc == 0)
        rc = pick_name(vrev__tls_common_of(t), lower, name, buf, sizeof(buf), &check, &is_ip);
    if (rc == 0 && !(c = vrev__calloc(vrev__tls_common_of(t)->ctx, 1, sizeof(*c))))
        rc = VREV_ERR_NOMEM;
    if (rc == 0) {
        c->layer.ops = &tls_layer;
        c->ctx = vrev__tls_common_of(t)->ctx;
        c->conn_id = conn_id;
        c->linger_ms = LINGER_MS;
        c->lower = lower;
        c->io.in = bufferevent_get_input(lower);
        c->io.out = bufferevent_get_output(lower);
        rc = vrev__tls_engine_new(t, &c->io, check, is_ip, &c->eng);
    }
    if (rc == 0 && (rc = make_bevs(c)) < 0)
        vrev__tls_engine_free(c->eng);
    if (rc < 0) {
        if (c)
            vrev__free(c->ctx, c);
        if (lower)
            bufferevent_free(lower);
        if (err)
            *err = rc;
        return NULL;
    }
    c->t = t;
    vrev__tls_common_of(t)->refs++;
    start(c);
    if (err)
        *err = 0;
    return c->self;
}

/* --- the layer (layer.h) and accessors ------------------------------------------------------ */

static struct bufferevent *layer_lower(struct vrev__layer *l)
{
    return ((struct tconn *)l)->lower;
}

/* The close is ours either way: close_notify and the end below, or a reset (close_lower). */
static bool layer_closing(struct vrev__layer *l, bool abort)
{
    if (abort)
        ((struct tconn *)l)->aborted = true;
    return true;
}

static void layer_keep_open(struct vrev__layer *l)
{
    ((struct tconn *)l)->keep_open = true;
}

static const char *layer_alpn(struct vrev__layer *l)
{
    return ((struct tconn *)l)->alpn;
}

static const char *layer_failure(struct vrev__layer *l)
{
    return ((struct tconn *)l)->err;
}

static void layer_set_linger(struct vrev__layer *l, uint32_t ms)
{
    ((struct tconn *)l)->linger_ms = ms;
}

static const struct vrev__layer_ops tls_layer = {
    .name = "tls",
    .lower = layer_lower,
    .closing = layer_closing,
    .keep_open = layer_keep_open,
    .alpn = layer_alpn,
    .failure = layer_failure,
    .set_linger = layer_set_linger,
    .event = inner_event,
};

static struct tconn *conn_of(struct bufferevent *bev)
{
    struct vrev__layer *l = vrev__layer_of(bev);
    return l && l->ops == &tls_layer ? (struct tconn *)l : NULL;
}

const char *vrev__tls_last_error(struct bufferevent *tls_bev, char *buf, size_t len)
{
    struct tconn *c = conn_of(tls_bev);
    if (buf && len)
        snprintf(buf, len, "%s", c ? c->err : "");
    return buf;
}

const char *vrev__tls_alpn(struct bufferevent *tls_bev)
{
    struct tconn *c = conn_of(tls_bev);
    return c && c->alpn[0] ? c->alpn : NULL;
}

bool vrev__tls_handshake_done(struct bufferevent *tls_bev)
{
    struct tconn *c = conn_of(tls_bev);
    return c && c->state == ST_OPEN;
}

#ifdef VREV_TESTING
void vrev__tls_set_chaos(struct bufferevent *tls_bev, unsigned seed)
{
    struct tconn *c = conn_of(tls_bev);
    if (c)
        c->io.chaos = seed;
}
#endif
