/* The "ws" carrier as a bufferevent filter over the connection below it (tcp, or tls).
 *
 *   upper <-- payload -->  [ filter: upgrade head, then ws frames ]  <-- wire -->  lower
 *
 * Why a filter (as the VMess stream) and not a pair (as TLS): the upgrade comes before any
 * payload and needs nothing from the upper layer, so libevent's filter limits (it reads below
 * only while the upper layer reads; it passes the lower layer's EOF and errors up) do no harm:
 * the lower's EOF is the normal end of a V2Ray ws connection, and an error is one. Backpressure:
 * libevent feeds the filter only while its input is under its high-water mark (and then stops
 * the layer below reading), a read mark below bounds that one anyway; libevent hands the filter the
 * room left under the lower's write mark; the codec's own output is moved below at once
 * (vrev__ws_buffered() stays at a frame).
 *
 * Both roles hold the upper layer's bytes until the upgrade is done (gorilla refuses frames
 * sent before its 101), then a deferred flush sends them.
 *
 * Ends. WebSocket has no half-close, and V2Ray sends its close frame (1000) only when it closes
 * the whole connection, after both directions are over: an end of stream from the upper layer
 * (BEV_FINISHED; a VMess upper layer has already sent its end-of-stream chunk inside) puts
 * nothing on the wire, and the TLS below is told to ignore it too (vrev__layer_keep_open): a close
 * frame, or a close_notify, would make the peer end both directions (our codec stops sending
 * after a close; gorilla's reader fails on either, and V2Ray then drops the session), losing
 * what the other direction still carries. The connection ends when the upper layer frees it
 * (TCP FIN or close_notify: V2Ray takes either for an end), or with the peer's close frame, which
 * the codec answers, and which is an EOF here. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "carrier_layer.h"
#include "codec/http1.h"
#include "codec/ws.h"
#include "crypto/crypto.h"
#include "net.h"

#define CLIENT_HANDSHAKE_S 8 /* V2Ray's client: HandshakeTimeout 8 s */
#define LOWER_HIGH_WATER (256 * 1024)
/* What the layer below may hold of unparsed input (libevent stops it reading too while the
 * filter's input is over the upper layer's read mark, if it sets one). */
#define LOWER_READ_WATER (64 * 1024)
#define ANSWER_MAX 1024

struct wsl {
    vrev_ctx *ctx;
    struct bufferevent *self, *lower;
    struct vrev__ws *ws;
    struct vrev__http1_reader *reader; /* until the upgrade is done */
    struct event *tick, *kick;
    struct evbuffer *dst;              /* the filter's input, while feeding */
    struct evbuffer_cb_entry *drained; /* a refused request: close once the answer is out */
    char *path;                        /* server: the path to check */
    char key[VREV_WS_KEY_LEN + 1];     /* client: our key */
    unsigned ticks;
    bool client, upgraded, failed, refused, eof_raised;
};

static void wsl_free(void *arg)
{
    struct wsl *v = arg;
    if (v->drained)
        evbuffer_remove_cb_entry(bufferevent_get_output(v->lower), v->drained);
    if (v->tick)
        event_free(v->tick);
    if (v->kick)
        event_free(v->kick);
    vrev__ws_free(v->ws);
    vrev__free(v->ctx, v->reader);
    vrev__free(v->ctx, v->path);
    vrev__free(v->ctx, v);
}

/* libevent 2.1 ignores BEV_ERROR from a filter: raise the error event ourselves, once. */
static enum bufferevent_filter_result fail(struct wsl *v, struct evbuffer *src, short what)
{
    evbuffer_drain(src, evbuffer_get_length(src));
    if (!v->failed) {
        v->failed = true;
        bufferevent_trigger_event(v->self, BEV_EVENT_ERROR | what, BEV_TRIG_DEFER_CALLBACKS);
    }
    return BEV_ERROR;
}

/* Move the codec's wire bytes (frames, pongs, close frames) below, in order. */
static int flush_codec(struct wsl *v)
{
    struct evbuffer *out = bufferevent_get_output(v->lower);
    const uint8_t *p;
    size_t n;
    while ((n = vrev__ws_pending(v->ws, &p)) > 0) {
        if (evbuffer_add(out, p, n) < 0)
            return VREV_ERR_NOMEM;
        vrev__ws_consume(v->ws, n);
    }
    return 0;
}

static int on_payload(void *user, const uint8_t *p, size_t n)
{
    struct wsl *v = user;
    return evbuffer_add(v->dst, p, n) == 0 ? 0 : VREV_ERR_NOMEM;
}

static int first_segment(struct evbuffer *src, const uint8_t **p, size_t *n)
{
    struct evbuffer_iovec vec;
    if (evbuffer_peek(src, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0)
        return 0;
    *p = vec.iov_base;
    *n = vec.iov_len;
    return 1;
}

/* --- the upgrade ---------------------------------------------------------------------------- */

static void on_answer_out(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)info;
    struct wsl *v = arg;
    if (evbuffer_get_length(buf) == 0 && !v->failed) {
        v->failed = true;
        bufferevent_trigger_event(v->self, BEV_EVENT_ERROR | BEV_EVENT_READING,
                                  BEV_TRIG_DEFER_CALLBACKS);
    }
}

/* Server: answer a refused request, then close once the answer has gone below. */
static enum bufferevent_filter_result refuse(struct wsl *v, struct evbuffer *src, int status,
                                             int reader_err)
{
    char ans[ANSWER_MAX], date[30];
    vrev__http1_date((int64_t)time(NULL), date);
    int n = reader_err ? vrev__http1_write_unreadable(ans, sizeof(ans), reader_err)
                       : vrev__http1_write_error(ans, sizeof(ans), status, date);
    struct evbuffer *out = bufferevent_get_output(v->lower);
    evbuffer_drain(src, evbuffer_get_length(src));
    v->refused = true;
    if (n <= 0 || evbuffer_add(out, ans, (size_t)n) < 0 ||
        !(v->drained = evbuffer_add_cb(out, on_answer_out, v)))
        return fail(v, src, BEV_EVENT_READING);
    return BEV_NEED_MORE;
}

static void upgraded(struct wsl *v)
{
    v->upgraded = true;
    vrev__free(v->ctx, v->reader);
    v->reader = NULL;
    event_active(v->kick, EV_TIMEOUT, 1); /* what the upper layer wrote meanwhile */
}

static enum bufferevent_filter_result check_head(struct wsl *v, struct evbuffer *src)
{
    const struct vrev__http1_head *h = &v->reader->head;
    if (v->client) {
        if (vrev__ws_check_response(h, v->key) < 0)
            return fail(v, src, BEV_EVENT_READING);
        upgraded(v);
        return BEV_OK;
    }
    struct vrev__ws_server_opts so = {.path = v->path};
    struct vrev__ws_request req;
    if (vrev__ws_check_request(h, &so, &req) != 101)
        return refuse(v, src, req.status, 0);
    char ans[ANSWER_MAX];
    int n = vrev__ws_write_101(ans, sizeof(ans), &req);
    if (n <= 0 || bufferevent_write(v->lower, ans, (size_t)n) < 0)
        return fail(v, src, BEV_EVENT_READING);
    upgraded(v);
    return BEV_OK;
}

static enum bufferevent_filter_result read_head(struct wsl *v, struct evbuffer *src)
{
    const uint8_t *p;
    size_t n, used;
    while (!v->upgraded && first_segment(src, &p, &n)) {
        int rc = vrev__http1_reader_feed(v->reader, p, n, &used);
        evbuffer_drain(src, used);
        if (rc < 0)
            return v->client ? fail(v, src, BEV_EVENT_READING) : refuse(v, src, 0, rc);
        if (rc > 0) {
            enum bufferevent_filter_result r = check_head(v, src);
            if (r != BEV_OK)
                return r;
        }
    }
    return v->upgraded ? BEV_OK : BEV_NEED_MORE;
}

/* --- frames --------------------------------------------------------------------------------- */

static enum bufferevent_filter_result filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                void *arg)
{
    (void)mode;
    struct wsl *v = arg;
    if (v->failed)
        return fail(v, src, BEV_EVENT_READING);
    if (v->refused || v->eof_raised) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_NEED_MORE;
    }
    if (!v->upgraded) {
        enum bufferevent_filter_result r = read_head(v, src);
        if (r != BEV_OK)
            return r;
    }
    /* Payload is never larger than its frames: feeding at most `limit` wire bytes keeps the
     * filter's input near its high-water mark; the rest waits below. */
    size_t budget = limit < 0 ? SIZE_MAX : (size_t)limit, start = evbuffer_get_length(dst);
    const uint8_t *p;
    size_t n;
    int rc = 0;
    v->dst = dst;
    while (rc == 0 && budget > 0 && !vrev__ws_peer_closed(v->ws) && first_segment(src, &p, &n)) {
        if (n > budget)
            n = budget;
        rc = vrev__ws_feed(v->ws, p, n);
        evbuffer_drain(src, n);
        budget -= n;
    }
    v->dst = NULL;
    if (flush_codec(v) < 0 || rc < 0) /* a bad frame: its close frame goes out first */
        return fail(v, src, BEV_EVENT_READING);
    if (vrev__ws_peer_closed(v->ws)) {
        evbuffer_drain(src, evbuffer_get_length(src)); /* nothing follows a close frame */
        v->eof_raised = true;
        bufferevent_trigger_event(v->self, BEV_EVENT_EOF | BEV_EVENT_READING,
                                  BEV_TRIG_DEFER_CALLBACKS);
    }
    return evbuffer_get_length(dst) > start ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result filter_out(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *arg)
{
    struct wsl *v = arg;
    if (v->failed)
        return fail(v, src, BEV_EVENT_WRITING);
    (void)mode;       /* an end of stream puts nothing on the wire (see the top) */
    if (!v->upgraded) /* held until the 101 (the kick sends it) */
        return BEV_NEED_MORE;
    size_t budget = limit < 0 ? SIZE_MAX : (size_t)limit, start = evbuffer_get_length(dst);
    const uint8_t *p;
    size_t n;
    while (evbuffer_get_length(dst) - start < budget && first_segment(src, &p, &n)) {
        if (n > VREV_WS_SEND_FRAME)
            n = VREV_WS_SEND_FRAME;
        int rc = vrev__ws_send(v->ws, p, n);
        evbuffer_drain(src, n);
        if (rc == VREV_ERR_STATE) /* the peer closed: nobody reads this any more */
            break;
        if (rc < 0 || flush_codec(v) < 0)
            return fail(v, src, BEV_EVENT_WRITING);
    }
    if (vrev__ws_peer_closed(v->ws))
        evbuffer_drain(src, evbuffer_get_length(src));
    return BEV_OK;
}

/* --- timers --------------------------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct wsl *v = arg;
    if (v->upgraded) {
        vrev__ws_tick(v->ws);
        return;
    }
    if (v->client && ++v->ticks >= CLIENT_HANDSHAKE_S && !v->failed) {
        v->failed = true;
        bufferevent_trigger_event(v->self, BEV_EVENT_TIMEOUT | BEV_EVENT_READING,
                                  BEV_TRIG_DEFER_CALLBACKS);
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct wsl *v = arg;
    bufferevent_flush(v->self, EV_WRITE, BEV_NORMAL);
}

/* --- making one ----------------------------------------------------------------------------- */

static struct wsl *wsl_new(vrev_ctx *ctx, bool client)
{
    struct wsl *v = vrev__calloc(ctx, 1, sizeof(*v));
    if (!v)
        return NULL;
    v->ctx = ctx;
    v->client = client;
    struct vrev__ws_opts wo = {.client = client};
    struct timeval sec = {1, 0};
    v->reader = vrev__malloc(ctx, sizeof(*v->reader));
    v->tick = event_new(ctx->base, -1, EV_PERSIST, on_tick, v);
    v->kick = event_new(ctx->base, -1, 0, on_kick, v);
    if (!v->reader || !v->tick || !v->kick || event_add(v->tick, &sec) < 0 ||
        vrev__ws_new(ctx, &v->ws, &wo, on_payload, v) < 0) {
        wsl_free(v);
        return NULL;
    }
    vrev__http1_reader_init(v->reader, client);
    return v;
}

static struct bufferevent *wrap(struct wsl *v, struct bufferevent *lower, int *err)
{
    v->lower = lower;
    v->self = vrev__layer_filter_new(lower, filter_in, filter_out, wsl_free, v);
    if (!v->self) {
        *err = VREV_ERR_NOMEM;
        return NULL;
    }
    bufferevent_setwatermark(lower, EV_WRITE, 0, LOWER_HIGH_WATER);
    bufferevent_setwatermark(lower, EV_READ, 0, LOWER_READ_WATER);
    vrev__layer_keep_open(lower); /* no half-close (see the top); no-op without TLS */
    *err = 0;
    return v->self;
}

static struct bufferevent *ws_client(vrev_ctx *ctx, struct bufferevent *lower,
                                     const struct vrev__carrier_opts *o, const char *host, int *err)
{
    struct vrev__http1_header hdrs[VREV_HTTP1_HEADERS_MAX];
    size_t nh = o->n_headers < VREV_HTTP1_HEADERS_MAX ? o->n_headers : VREV_HTTP1_HEADERS_MAX;
    for (size_t i = 0; i < nh; i++) {
        hdrs[i].name.p = o->header_names[i];
        hdrs[i].name.len = strlen(o->header_names[i]);
        hdrs[i].value.p = o->header_values[i];
        hdrs[i].value.len = strlen(o->header_values[i]);
    }
    if (o->n_hosts > 0)
        host = o->hosts[0];
    uint8_t key[16];
    char req[VREV_HTTP1_HEAD_MAX];
    struct wsl *v = host ? wsl_new(ctx, true) : NULL;
    int n = VREV_ERR_NOMEM;
    if (!host)
        n = VREV_ERR_INVAL;
    else if (v && (n = vrev__random_bytes(key, sizeof(key))) == 0)
        n = vrev__ws_write_request(req, sizeof(req), host, o->path ? o->path : "/", hdrs, nh, key,
                                   v->key);
    if (n > 0 && bufferevent_write(lower, req, (size_t)n) < 0)
        n = VREV_ERR_NOMEM;
    if (n <= 0) {
        if (v)
            wsl_free(v);
        bufferevent_free(lower);
        *err = n < 0 ? n : VREV_ERR_INVAL;
        return NULL;
    }
    return wrap(v, lower, err);
}

static struct bufferevent *ws_server(vrev_ctx *ctx, struct bufferevent *lower,
                                     const struct vrev__carrier_opts *o, int *err)
{
    struct wsl *v = wsl_new(ctx, false);
    if (v && !(v->path = vrev__strdup(ctx, o->path ? o->path : "/"))) {
        wsl_free(v);
        v = NULL;
    }
    if (!v) {
        bufferevent_free(lower);
        *err = VREV_ERR_NOMEM;
        return NULL;
    }
    return wrap(v, lower, err);
}

struct bufferevent *vrev__carrier_client(vrev_ctx *ctx, struct bufferevent *lower,
                                         const struct vrev__carrier_opts *o, const char *host,
                                         int *err)
{
    *err = 0;
    if (!o || o->kind == VREV_CARRIER_TCP)
        return lower;
    if (o->kind == VREV_CARRIER_WS)
        return ws_client(ctx, lower, o, host, err);
    if (o->kind == VREV_CARRIER_H2)
        return vrev__h2_layer_client(ctx, lower, o, err);
    bufferevent_free(lower);
    *err = VREV_ERR_INVAL;
    return NULL;
}

struct bufferevent *vrev__carrier_server(vrev_ctx *ctx, struct bufferevent *lower,
                                         const struct vrev__carrier_opts *o, int *err)
{
    *err = 0;
    if (!o || o->kind == VREV_CARRIER_TCP)
        return lower;
    if (o->kind == VREV_CARRIER_WS)
        return ws_server(ctx, lower, o, err);
    bufferevent_free(lower);
    *err = o->kind == VREV_CARRIER_H2 ? VREV_ERR_UNSUPPORTED : VREV_ERR_INVAL;
    return NULL;
}

/* --- options -------------------------------------------------------------------------------- */

int vrev__ws_default_host(const char *host, uint16_t port, bool tls, char *out, size_t cap)
{
    bool v6 = strchr(host, ':') != NULL;
    int n = port == (tls ? 443 : 80)
                ? snprintf(out, cap, v6 ? "[%s]" : "%s", host)
                : snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    return n < 0 || (size_t)n >= cap ? VREV_ERR_NOSPACE : n;
}
