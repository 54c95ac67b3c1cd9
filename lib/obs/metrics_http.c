/* The metrics endpoint (vrev/obs.h): Prometheus text for /metrics and a readiness answer for
 * /ready, over libevent's evhttp in the context's loop.
 *
 * Bounds: evhttp 2.1 has no cap on connections (2.2's evhttp_set_max_connections), and a
 * bufferevent of our own under it (bevcb) breaks its error replies, so what bounds the
 * descriptors a client can hold is time: a connection that has not sent a whole request
 * within IDLE_S seconds is closed, and an answered one too after as long idle. Requests are
 * small (headers up to 8 KiB, no body, GET or HEAD only: anything else is answered 501). */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/addr.h"
#include "core/core.h"
#include "obs.h"

#define SOURCES_MAX 16
#define IDLE_S 5
#define SAMPLES_MAX 4096
#define RESPONSE_MAX (1u << 20)

enum source_kind { SRC_INSTANCE, SRC_PORTAL, SRC_BRIDGE };

struct vrev_metrics_server {
    vrev_ctx *ctx;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    unsigned port;
    struct {
        int kind;
        const void *obj;
    } src[SOURCES_MAX];
    size_t n_src;
};

/* --- rendering ------------------------------------------------------------------------------ */

struct sample {
    const char *name, *help;
    int kind;
    char *labels;
    uint64_t value;
};

struct samples {
    vrev_ctx *ctx;
    struct sample *v;
    size_t n, cap;
    int err;
};

static void collect(const char *name, int kind, const char *help, const char *labels,
                    uint64_t value, void *user)
{
    struct samples *s = user;
    if (s->err)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct sample *v =
            cap <= SAMPLES_MAX ? vrev__realloc(s->ctx, s->v, cap * sizeof(*v)) : NULL;
        if (!v) {
            s->err = cap <= SAMPLES_MAX ? VREV_ERR_NOMEM : VREV_ERR_RANGE;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    size_t len = strlen(labels) + 1;
    char *copy = vrev__malloc(s->ctx, len);
    if (!copy) {
        s->err = VREV_ERR_NOMEM;
        return;
    }
    memcpy(copy, labels, len);
    s->v[s->n++] = (struct sample){name, help, kind, copy, value};
}

static void visit(const struct vrev_metrics_server *srv, struct samples *s)
{
    for (size_t i = 0; i < srv->n_src; i++) {
        if (srv->src[i].kind == SRC_INSTANCE)
            vrev_instance_metrics(srv->src[i].obj, collect, s);
        else if (srv->src[i].kind == SRC_PORTAL)
            vrev_portal_metrics(srv->src[i].obj, collect, s);
        else
            vrev_bridge_metrics(srv->src[i].obj, collect, s);
    }
    collect("vrev_ready", VREV_METRIC_GAUGE, "1 when every part served is ready (as /ready).", "",
            (uint64_t)vrev_metrics_server_ready(srv), s);
}

/* Prometheus wants the samples of one name together under one HELP and TYPE: they are written
 * by name, in the order names first appear. */
static int write_text(const struct samples *s, struct evbuffer *out)
{
    for (size_t i = 0; i < s->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(s->v[j].name, s->v[i].name);
        if (seen)
            continue;
        if (evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->v[i].name, s->v[i].help,
                                s->v[i].name,
                                s->v[i].kind == VREV_METRIC_GAUGE ? "gauge" : "counter") < 0)
            return VREV_ERR_NOMEM;
        for (size_t j = i; j < s->n; j++) {
            const struct sample *x = &s->v[j];
            if (strcmp(x->name, s->v[i].name))
                continue;
            if (evbuffer_add_printf(out, "%s%s%s%s %llu\n", x->name, x->labels[0] ? "{" : "",
                                    x->labels, x->labels[0] ? "}" : "",
                                    (unsigned long long)x->value) < 0)
                return VREV_ERR_NOMEM;
        }
        if (evbuffer_get_length(out) > RESPONSE_MAX)
            return VREV_ERR_RANGE;
    }
    return 0;
}

static int render(const struct vrev_metrics_server *srv, struct evbuffer *out)
{
    struct samples s = {.ctx = srv->ctx};
    visit(srv, &s);
    int rc = s.err ? s.err : write_text(&s, out);
    for (size_t i = 0; i < s.n; i++)
        vrev__free(srv->ctx, s.v[i].labels);
    vrev__free(srv->ctx, s.v);
    return rc;
}

int vrev_metrics_server_render(const vrev_metrics_server *s, char *buf, size_t cap)
{
    if (!s || (!buf && cap))
        return VREV_ERR_INVAL;
    struct evbuffer *out = evbuffer_new();
    if (!out)
        return VREV_ERR_NOMEM;
    int rc = render(s, out);
    size_t len = evbuffer_get_length(out);
    if (rc == 0 && cap) {
        size_t n = len < cap - 1 ? len : cap - 1;
        evbuffer_copyout(out, buf, n);
        buf[n] = '\0';
    }
    evbuffer_free(out);
    return rc < 0 ? rc : (int)len;
}

int vrev_metrics_server_ready(const vrev_metrics_server *s)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < s->n_src; i++) {
        const void *o = s->src[i].obj;
        int ok = s->src[i].kind == SRC_INSTANCE ? vrev_instance_ready(o)
                 : s->src[i].kind == SRC_PORTAL ? vrev_portal_ready(o)
                                                : vrev_bridge_ready(o);
        if (!ok)
            return 0;
    }
    return 1;
}

/* --- HTTP ----------------------------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct vrev_metrics_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    if (path && !strcmp(path, "/metrics")) {
        if (render(s, body) < 0) {
            evbuffer_drain(body, evbuffer_get_length(body));
            evbuffer_add_printf(body, "cannot render the metrics\n");
            reply(req, HTTP_INTERNAL, "Internal Server Error", "text/plain", body);
        } else {
            reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
        }
    } else if (path && !strcmp(path, "/ready")) {
        int ready = vrev_metrics_server_ready(s);
        evbuffer_add_printf(body, "%s\n", ready ? "ready" : "not ready");
        reply(req, ready ? HTTP_OK : HTTP_SERVUNAVAIL, ready ? "OK" : "Service Unavailable",
              "text/plain", body);
    } else {
        evbuffer_add_printf(body, "not found: try /metrics or /ready\n");
        reply(req, HTTP_NOTFOUND, "Not Found", "text/plain", body);
    }
    evbuffer_free(body);
}

static int fail(char *err, size_t len, int rc, const char *hostport, const char *why)
{
    if (err && len)
        snprintf(err, len, "metrics %s: %s", hostport ? hostport : "(none)", why);
    return rc;
}

static unsigned bound_port(struct evhttp_bound_socket *sock)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    struct vrev__addr a;
    vrev__addr_from_sockaddr(&a, (struct sockaddr *)&ss);
    return a.port;
}

static int server_setup(vrev_metrics_server *s, const struct vrev__addr *a, char *err, size_t len,
                        const char *hostport)
{
    char host[64];
    if (!(s->http = evhttp_new(s->ctx->base)))
        return fail(err, len, VREV_ERR_NOMEM, hostport, "out of memory");
    evhttp_set_timeout(s->http, IDLE_S);
    evhttp_set_max_headers_size(s->http, 8192);
    evhttp_set_max_body_size(s->http, 0);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s->http, on_request, s);
    vrev__addr_host_text(a, host, sizeof(host));
    if (!(s->sock = evhttp_bind_socket_with_handle(s->http, host, a->port)))
        return fail(err, len, VREV_ERR_IO, hostport, "cannot listen (address in use?)");
    s->port = bound_port(s->sock);
    return 0;
}

static int metrics_server_new(vrev_metrics_server **out, vrev_ctx *ctx, const char *hostport,
                              char *err, size_t err_len)
{
    struct vrev__addr a;
    if (!out || !ctx || !hostport)
        return fail(err, err_len, VREV_ERR_INVAL, hostport, "invalid argument");
    *out = NULL;
    if (!ctx->base)
        return fail(err, err_len, VREV_ERR_STATE, hostport, "the context has no event_base");
    if (vrev__addr_from_hostport(&a, hostport) < 0 || a.type == VREV_ADDR_DOMAIN)
        return fail(err, err_len, VREV_ERR_INVAL, hostport,
                    "not an address: need IP:PORT (127.0.0.1:9100, [::1]:9100)");
    vrev_metrics_server *s = vrev__calloc(ctx, 1, sizeof(*s));
    if (!s)
        return fail(err, err_len, VREV_ERR_NOMEM, hostport, "out of memory");
    s->ctx = ctx;
    int rc = server_setup(s, &a, err, err_len, hostport);
    if (rc < 0) {
        vrev_metrics_server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int vrev_metrics_server_new(vrev_metrics_server **out, vrev_ctx *ctx, const char *hostport,
                            char *err, size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(metrics_server_new(out, ctx, hostport, err, err_len), err, err_len);
}

static int add(vrev_metrics_server *s, int kind, const void *obj)
{
    if (!s || !obj)
        return VREV_ERR_INVAL;
    if (s->n_src == SOURCES_MAX)
        return VREV_ERR_RANGE;
    s->src[s->n_src].kind = kind;
    s->src[s->n_src++].obj = obj;
    return 0;
}

int vrev_metrics_server_add_instance(vrev_metrics_server *s, const vrev_instance *inst)
{
    return add(s, SRC_INSTANCE, inst);
}

int vrev_metrics_server_add_portal(vrev_metrics_server *s, const vrev_portal *p)
{
    return add(s, SRC_PORTAL, p);
}

int vrev_metrics_server_add_bridge(vrev_metrics_server *s, const vrev_bridge *b)
{
    return add(s, SRC_BRIDGE, b);
}

unsigned vrev_metrics_server_port(const vrev_metrics_server *s)
{
    return s ? s->port : 0;
}

void vrev_metrics_server_free(vrev_metrics_server *s)
{
    if (!s)
        return;
    if (s->http)
        evhttp_free(s->http); /* the listener and every connection */
    vrev__free(s->ctx, s);
}
