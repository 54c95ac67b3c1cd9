/* The HTTP/2 carrier over nghttp2 (h2.h). nghttp2 does the framing, HPACK, flow-control
 * accounting and the stream state machine; this file holds the streams' buffers, makes V2Ray's
 * requests and answers, and turns nghttp2's callbacks into the carrier's events. */
#include "h2.h"
#include "core/list.h"

#include <string.h>

#include <nghttp2/nghttp2.h>

#include "codec/http1.h"
#include "core/buf.h"

static const char DEFAULT_HOST[] = "www.example.com";

struct stream {
    struct stream *prev, *next; /* every live stream, to free them with the codec */
    int32_t id;
    struct vrev__buf out; /* the upper layer's bytes, not yet framed */
    size_t unconsumed;    /* given to on_data, not yet reported consumed */
    size_t header_bytes;  /* of the header list being received */
    bool ours;            /* client: we opened it (on_close is owed) */
    bool opened;          /* server: on_open took it; client: its 200 arrived */
    bool refused;         /* server: answered 404 or refused; client: not 200 */
    bool ended, deferred, reset_by_us;
    int status;                                  /* client: the answer's :status */
    char *method, *authority, *path, *forwarded; /* server: the request */
};

struct vrev__h2 {
    vrev_ctx *ctx;
    nghttp2_session *s;
    nghttp2_mem mem;
    struct vrev__h2_opts o;
    char *path, *authority, **hosts;
    struct vrev__h2_callbacks cb;
    void *user;
    struct vrev__buf out; /* framed bytes not yet consumed */
    struct stream *streams;
    int err;          /* sticky */
    bool closing;     /* shutdown() called */
    unsigned control; /* control frames since the last tick */
};

/* --- memory and strings -------------------------------------------------------------------- */

static void *mem_malloc(size_t n, void *u)
{
    return vrev__malloc(u, n);
}

static void mem_free(void *p, void *u)
{
    vrev__free(u, p);
}

static void *mem_calloc(size_t k, size_t n, void *u)
{
    return vrev__calloc(u, k, n);
}

static void *mem_realloc(void *p, size_t n, void *u)
{
    return vrev__realloc(u, p, n);
}

static char *dup_n(vrev_ctx *ctx, const char *s, size_t n)
{
    char *d = vrev__malloc(ctx, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A header value we send: visible ASCII only. */
static bool token_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static nghttp2_nv nv(const char *name, const char *value)
{
    return (nghttp2_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
                        strlen(value), NGHTTP2_NV_FLAG_NONE};
}

/* --- streams ------------------------------------------------------------------------------- */

static struct stream *stream_new(struct vrev__h2 *h2, int32_t id)
{
    struct stream *st = vrev__calloc(h2->ctx, 1, sizeof(*st));
    if (!st)
        return NULL;
    st->id = id;
    VREV__LIST_PUSH(h2->streams, st);
    return st;
}

static void stream_free(struct vrev__h2 *h2, struct stream *st)
{
    VREV__LIST_REMOVE(h2->streams, st);
    vrev__buf_free(h2->ctx, &st->out);
    vrev__free(h2->ctx, st->method);
    vrev__free(h2->ctx, st->authority);
    vrev__free(h2->ctx, st->path);
    vrev__free(h2->ctx, st->forwarded);
    vrev__free(h2->ctx, st);
}

/* nghttp2 knows a stream we opened only once its request is framed: until then, our list. */
static struct stream *find(struct vrev__h2 *h2, int32_t sid)
{
    if (sid <= 0)
        return NULL;
    struct stream *st = nghttp2_session_get_stream_user_data(h2->s, sid);
    for (struct stream *x = h2->streams; !st && x; x = x->next)
        if (x->id == sid)
            st = x;
    return st;
}

/* nghttp2 asks for a stream's next bytes to frame. */
static ssize_t read_cb(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *u)
{
    struct stream *st = src->ptr;
    (void)s, (void)sid, (void)u;
    size_t n = vrev__buf_len(&st->out);
    if (n > len)
        n = len;
    if (n > 0) {
        memcpy(buf, st->out.data + st->out.start, n);
        vrev__buf_consume(&st->out, n);
    }
    if (vrev__buf_len(&st->out) == 0 && st->ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void resume(struct vrev__h2 *h2, struct stream *st)
{
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(h2->s, st->id);
    }
}

/* --- the server's side of a request -------------------------------------------------------- */

static int respond(struct vrev__h2 *h2, struct stream *st, int status)
{
    nghttp2_nv h[2];
    size_t n = 0;
    h[n++] = nv(":status", status == 200 ? "200" : "404");
    h[n++] = status == 200 ? nv("cache-control", "no-store") : nv("content-length", "0");
    nghttp2_data_provider prd = {{.ptr = st}, read_cb};
    return nghttp2_submit_response(h2->s, st->id, h, n, status == 200 ? &prd : NULL);
}

static bool host_ok(const struct vrev__h2 *h2, const char *authority)
{
    for (size_t i = 0; authority && i < h2->o.n_hosts; i++)
        if (strcmp(h2->hosts[i], authority) == 0) /* V2Ray: exact, case and port included */
            return true;
    return false;
}

static int decide(struct vrev__h2 *h2, struct stream *st)
{
    if (!host_ok(h2, st->authority) || !st->path ||
        vrev__http1_path_match(st->path, strlen(st->path), h2->path, true) != 1) {
        st->refused = true; /* what V2Ray does: a web server without that page */
        return respond(h2, st, 404);
    }
    struct vrev__h2_request req = {st->method ? st->method : "", st->authority, st->path,
                                   st->forwarded ? st->forwarded : ""};
    if (h2->cb.on_open(h2->user, st->id, &req) < 0) {
        st->refused = true;
        return nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
    }
    st->opened = true;
    return respond(h2, st, 200);
}

/* Keep one request header (the first of each). */
static int keep(struct vrev__h2 *h2, char **slot, const uint8_t *v, size_t n)
{
    if (*slot)
        return 0;
    *slot = dup_n(h2->ctx, (const char *)v, n);
    return *slot ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static bool named(const uint8_t *name, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(name, want, n) == 0;
}

/* --- nghttp2 callbacks --------------------------------------------------------------------- */

static int begin_headers_cb(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    struct vrev__h2 *h2 = u;
    (void)s;
    if (h2->o.client || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct stream *st = stream_new(h2, f->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(h2->s, st->id, st);
    return 0;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *u)
{
    struct vrev__h2 *h2 = u;
    (void)s, (void)flags;
    struct stream *st = find(h2, f->hd.stream_id);
    if (!st)
        return 0;
    st->header_bytes += nlen + vlen + 32; /* RFC 9113 §6.5.2's size of a field */
    if (st->header_bytes > VREV_H2_MAX_HEADER_LIST)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    if (h2->o.client) {
        if (named(name, nlen, ":status") && vlen == 3)
            st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        return 0;
    }
    if (named(name, nlen, ":method"))
        return keep(h2, &st->method, value, vlen);
    if (named(name, nlen, ":authority") || named(name, nlen, "host"))
        return keep(h2, &st->authority, value, vlen);
    if (named(name, nlen, ":path"))
        return keep(h2, &st->path, value, vlen);
    if (named(name, nlen, "x-forwarded-for")) {
        struct vrev__http1_str first =
            vrev__http1_xff_first((struct vrev__http1_str){(const char *)value, vlen});
        return keep(h2, &st->forwarded, (const uint8_t *)first.p, first.len);
    }
    return 0;
}

/* Frames that cost us work and carry nothing: counted per tick. */
static bool count_control(struct vrev__h2 *h2, const nghttp2_frame *f)
{
    bool idle = (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK)) ||
                (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) ||
                f->hd.type == NGHTTP2_PRIORITY ||
                (f->hd.type == NGHTTP2_DATA && f->hd.length == 0 &&
                 !(f->hd.flags & NGHTTP2_FLAG_END_STREAM));
    if (!idle || ++h2->control <= h2->o.max_control)
        return true;
    nghttp2_session_terminate_session(h2->s, NGHTTP2_ENHANCE_YOUR_CALM);
    return false;
}

static void client_answer(struct vrev__h2 *h2, struct stream *st)
{
    if (st->opened || st->refused || (st->status >= 100 && st->status < 200)) {
        st->status = st->status < 200 ? 0 : st->status; /* 1xx: the real answer follows */
        return;
    }
    if (st->status != 200) {
        st->refused = true;
        nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        return;
    }
    st->opened = true;
    if (h2->cb.on_open(h2->user, st->id, NULL) < 0)
        vrev__h2_reset(h2, st->id);
}

static int frame_recv_cb(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    struct vrev__h2 *h2 = u;
    (void)s;
    if (!count_control(h2, f))
        return 0;
    struct stream *st = find(h2, f->hd.stream_id);
    if (!st || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !h2->o.client && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (decide(h2, st) == NGHTTP2_ERR_NOMEM) {
            h2->err = VREV_ERR_NOMEM;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    } else if (f->hd.type == NGHTTP2_HEADERS && h2->o.client) {
        client_answer(h2, st);
    }
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->opened && !st->refused)
        h2->cb.on_end(h2->user, st->id);
    return 0;
}

static int data_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *p, size_t n,
                   void *u)
{
    struct vrev__h2 *h2 = u;
    (void)flags;
    struct stream *st = find(h2, sid);
    if (!st || !st->opened || st->refused || st->reset_by_us) {
        nghttp2_session_consume(s, sid, n); /* nobody reads it: credit back at once */
        return 0;
    }
    st->unconsumed += n;
    if (h2->cb.on_data(h2->user, sid, p, n) < 0)
        vrev__h2_reset(h2, sid);
    return 0;
}

static int stream_close_cb(nghttp2_session *s, int32_t sid, uint32_t code, void *u)
{
    struct vrev__h2 *h2 = u;
    struct stream *st = find(h2, sid);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    if (st->unconsumed) /* the upper layer will not report these any more */
        nghttp2_session_consume_connection(s, st->unconsumed);
    if (st->opened || st->ours) {
        int err = 0;
        if (st->refused)
            err = VREV_ERR_H2_REFUSED;
        else if (st->reset_by_us || !st->opened ||
                 (code != NGHTTP2_NO_ERROR && code != NGHTTP2_CANCEL))
            err = VREV_ERR_H2_RESET;
        h2->cb.on_close(h2->user, sid, err);
    }
    stream_free(h2, st);
    return 0;
}

static int frame_send_cb(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    struct vrev__h2 *h2 = u;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR && !h2->err)
        h2->err = f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM ? VREV_ERR_H2_FLOOD
                                                                    : VREV_ERR_H2_PROTOCOL;
    struct stream *st = f->hd.type == NGHTTP2_HEADERS ? find(h2, f->hd.stream_id) : NULL;
    /* A 404 went out while the peer may still send: end its side too, so that a refused
     * request cannot keep a stream slot. */
    if (st && st->refused && !h2->o.client && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        !nghttp2_session_get_stream_remote_close(s, st->id))
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

/* --- life ---------------------------------------------------------------------------------- */

static int copy_opts(struct vrev__h2 *h2, const struct vrev__h2_opts *o)
{
    static const char *const default_hosts[] = {DEFAULT_HOST};
    h2->o = *o;
    if (!h2->o.path || !*h2->o.path)
        h2->o.path = "/";
    if (!h2->o.authority)
        h2->o.authority = DEFAULT_HOST;
    if (h2->o.n_hosts == 0) {
        h2->o.hosts = default_hosts;
        h2->o.n_hosts = 1;
    }
    if (h2->o.path[0] != '/' || !token_ok(h2->o.path) || !token_ok(h2->o.authority))
        return VREV_ERR_INVAL;
    h2->path = dup_n(h2->ctx, h2->o.path, strlen(h2->o.path));
    h2->authority = dup_n(h2->ctx, h2->o.authority, strlen(h2->o.authority));
    h2->hosts = vrev__calloc(h2->ctx, h2->o.n_hosts, sizeof(char *));
    if (!h2->path || !h2->authority || !h2->hosts)
        return VREV_ERR_NOMEM;
    for (size_t i = 0; i < h2->o.n_hosts; i++) {
        if (!h2->o.hosts[i])
            return VREV_ERR_INVAL;
        if (!(h2->hosts[i] = dup_n(h2->ctx, h2->o.hosts[i], strlen(h2->o.hosts[i]))))
            return VREV_ERR_NOMEM;
    }
    h2->o.stream_window = o->stream_window ? o->stream_window : VREV_H2_STREAM_WINDOW;
    h2->o.conn_window = o->conn_window ? o->conn_window
                        : o->client    ? VREV_H2_CLIENT_CONN_WINDOW
                                       : VREV_H2_SERVER_CONN_WINDOW;
    h2->o.max_streams = o->max_streams ? o->max_streams : VREV_H2_MAX_STREAMS;
    h2->o.max_control = o->max_control ? o->max_control : VREV_H2_MAX_CONTROL;
    h2->o.reset_burst = o->reset_burst ? o->reset_burst : VREV_H2_RESET_BURST;
    h2->o.reset_rate = o->reset_rate ? o->reset_rate : VREV_H2_RESET_RATE;
    return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *c;
    if (nghttp2_session_callbacks_new(&c) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(c, header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(c, frame_send_cb);
    return c;
}

/* The session, with nghttp2's abuse bounds set, and our SETTINGS queued. */
static int session(struct vrev__h2 *h2)
{
    nghttp2_session_callbacks *c = callbacks();
    nghttp2_option *opt = NULL;
    int rc = c ? nghttp2_option_new(&opt) : NGHTTP2_ERR_NOMEM;
    if (rc == 0) {
        nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_option_set_max_outbound_ack(opt, 256);
        nghttp2_option_set_max_settings(opt, 32);
        nghttp2_option_set_max_continuations(opt, 8);
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
        nghttp2_option_set_stream_reset_rate_limit(opt, h2->o.reset_burst, h2->o.reset_rate);
        rc = h2->o.client ? nghttp2_session_client_new3(&h2->s, c, h2, opt, &h2->mem)
                          : nghttp2_session_server_new3(&h2->s, c, h2, opt, &h2->mem);
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(c);
    if (rc != 0)
        return VREV_ERR_NOMEM;
    /* Go's values for the client (a server sees what V2Ray would send); ours for the server */
    nghttp2_settings_entry client_set[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2->o.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 10u << 20}};
    nghttp2_settings_entry server_set[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2->o.max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2->o.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, VREV_H2_MAX_HEADER_LIST}};
    rc = nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, h2->o.client ? client_set : server_set,
                                 3);
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(h2->s, NGHTTP2_FLAG_NONE, 0,
                                                   (int32_t)(h2->o.conn_window & 0x7fffffff));
    return rc == 0 ? 0 : rc == NGHTTP2_ERR_NOMEM ? VREV_ERR_NOMEM : VREV_ERR_INVAL;
}

int vrev__h2_new(vrev_ctx *ctx, struct vrev__h2 **out, const struct vrev__h2_opts *opts,
                 const struct vrev__h2_callbacks *cb, void *user)
{
    *out = NULL;
    if (!opts || !cb || !cb->on_open || !cb->on_data || !cb->on_end || !cb->on_close)
        return VREV_ERR_INVAL;
    struct vrev__h2 *h2 = vrev__calloc(ctx, 1, sizeof(*h2));
    if (!h2)
        return VREV_ERR_NOMEM;
    h2->ctx = ctx;
    h2->cb = *cb;
    h2->user = user;
    h2->mem = (nghttp2_mem){ctx, mem_malloc, mem_free, mem_calloc, mem_realloc};
    int rc = copy_opts(h2, opts);
    if (rc == 0)
        rc = session(h2);
    if (rc < 0) {
        vrev__h2_free(h2);
        return rc;
    }
    *out = h2;
    return 0;
}

void vrev__h2_free(struct vrev__h2 *h2)
{
    if (!h2)
        return;
    nghttp2_session_del(h2->s); /* runs no callbacks */
    while (h2->streams)
        stream_free(h2, h2->streams);
    for (size_t i = 0; h2->hosts && i < h2->o.n_hosts; i++)
        vrev__free(h2->ctx, h2->hosts[i]);
    vrev__free(h2->ctx, h2->hosts);
    vrev__free(h2->ctx, h2->path);
    vrev__free(h2->ctx, h2->authority);
    vrev__buf_free(h2->ctx, &h2->out);
    vrev__free(h2->ctx, h2);
}

/* --- I/O ----------------------------------------------------------------------------------- */

static int map_error(ssize_t rv)
{
    if (rv == NGHTTP2_ERR_NOMEM)
        return VREV_ERR_NOMEM;
    return rv == NGHTTP2_ERR_FLOODED ? VREV_ERR_H2_FLOOD : VREV_ERR_H2_PROTOCOL;
}

/* Frame what nghttp2 has into the output, up to VREV_H2_OUT_CHUNK (nghttp2 gives a frame at a
 * time, so the output passes the bound by at most one frame). */
static void prepare(struct vrev__h2 *h2)
{
    do {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h2->s, &p);
        if (n <= 0) {
            if (n < 0 && !h2->err)
                h2->err = map_error(n);
            return;
        }
        if (vrev__buf_append(h2->ctx, &h2->out, p, (size_t)n) < 0) {
            h2->err = VREV_ERR_NOMEM;
            return;
        }
    } while (vrev__buf_len(&h2->out) < VREV_H2_OUT_CHUNK);
}

int vrev__h2_feed(struct vrev__h2 *h2, const uint8_t *p, size_t n)
{
    if (h2->err)
        return h2->err;
    ssize_t rv = nghttp2_session_mem_recv(h2->s, p, n);
    if (rv < 0) {
        if (!h2->err) /* a callback may have said why (out of memory) */
            h2->err = map_error(rv);
        return h2->err;
    }
    /* A connection error shows as the GOAWAY nghttp2 queued: frame it now to know. Not past
     * the output bound, though: then it shows with a later call. */
    if (vrev__buf_len(&h2->out) < VREV_H2_OUT_CHUNK)
        prepare(h2);
    return h2->err;
}

size_t vrev__h2_pending(struct vrev__h2 *h2, const uint8_t **p)
{
    if (vrev__buf_len(&h2->out) < VREV_H2_OUT_CHUNK)
        prepare(h2);
    *p = h2->out.data ? h2->out.data + h2->out.start : NULL;
    return vrev__buf_len(&h2->out);
}

void vrev__h2_consume(struct vrev__h2 *h2, size_t n)
{
    vrev__buf_consume(&h2->out, n);
}

/* --- streams, for the glue ----------------------------------------------------------------- */

int vrev__h2_open(struct vrev__h2 *h2, int32_t *sid)
{
    if (!h2->o.client || h2->err || h2->closing)
        return VREV_ERR_STATE;
    struct stream *st = stream_new(h2, 0);
    if (!st)
        return VREV_ERR_NOMEM;
    st->ours = true;
    /* V2Ray's request (Go's http2 transport writes the pseudo-headers in this order) */
    nghttp2_nv h[] = {nv(":authority", h2->authority),
                      nv(":method", "PUT"),
                      nv(":path", h2->path),
                      nv(":scheme", "https"),
                      nv("accept-encoding", "identity"),
                      nv("user-agent", "Go-http-client/2.0")};
    nghttp2_data_provider prd = {{.ptr = st}, read_cb};
    int32_t id = nghttp2_submit_request(h2->s, NULL, h, sizeof(h) / sizeof(h[0]), &prd, st);
    if (id < 0) {
        stream_free(h2, st);
        return id == NGHTTP2_ERR_NOMEM ? VREV_ERR_NOMEM : VREV_ERR_STATE;
    }
    st->id = *sid = id;
    return 0;
}

int vrev__h2_send(struct vrev__h2 *h2, int32_t sid, const uint8_t *p, size_t n)
{
    struct stream *st = find(h2, sid);
    if (!st || st->ended || st->refused || st->reset_by_us || h2->err)
        return VREV_ERR_STATE;
    if (n == 0)
        return 0;
    if (vrev__buf_append(h2->ctx, &st->out, p, n) < 0)
        return VREV_ERR_NOMEM;
    resume(h2, st);
    return 0;
}

int vrev__h2_end(struct vrev__h2 *h2, int32_t sid)
{
    struct stream *st = find(h2, sid);
    if (!st || st->refused || st->reset_by_us)
        return VREV_ERR_STATE;
    st->ended = true;
    resume(h2, st);
    return 0;
}

int vrev__h2_reset(struct vrev__h2 *h2, int32_t sid)
{
    struct stream *st = find(h2, sid);
    if (!st || st->reset_by_us)
        return VREV_ERR_STATE;
    st->reset_by_us = true;
    int rc = nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    return rc == 0 ? 0 : rc == NGHTTP2_ERR_NOMEM ? VREV_ERR_NOMEM : VREV_ERR_STATE;
}

void vrev__h2_consumed(struct vrev__h2 *h2, int32_t sid, size_t n)
{
    struct stream *st = find(h2, sid);
    if (!st)
        return;
    if (n > st->unconsumed)
        n = st->unconsumed;
    st->unconsumed -= n;
    if (n && nghttp2_session_consume(h2->s, sid, n) == NGHTTP2_ERR_NOMEM && !h2->err)
        h2->err = VREV_ERR_NOMEM;
}

size_t vrev__h2_out_buffered(const struct vrev__h2 *h2)
{
    return vrev__buf_len(&h2->out);
}

size_t vrev__h2_buffered(struct vrev__h2 *h2, int32_t sid)
{
    struct stream *st = find(h2, sid);
    return st ? vrev__buf_len(&st->out) : 0;
}

void vrev__h2_tick(struct vrev__h2 *h2)
{
    h2->control = 0;
}

int vrev__h2_shutdown(struct vrev__h2 *h2)
{
    h2->closing = true;
    int rc = nghttp2_submit_goaway(h2->s, NGHTTP2_FLAG_NONE,
                                   nghttp2_session_get_last_proc_stream_id(h2->s), NGHTTP2_NO_ERROR,
                                   NULL, 0);
    return rc == NGHTTP2_ERR_NOMEM ? VREV_ERR_NOMEM : 0;
}

bool vrev__h2_done(struct vrev__h2 *h2)
{
    if (vrev__buf_len(&h2->out) == 0)
        prepare(h2);
    return vrev__buf_len(&h2->out) == 0 && !nghttp2_session_want_read(h2->s) &&
           !nghttp2_session_want_write(h2->s);
}
