/* vmess inbound: read and authenticate the AEAD request header, then dispatch the body stream
 * to its target (WIRE-SPEC §4).
 *
 * Anti-probing (RELIABILITY.md §2.1): a connection whose header fails (unknown user, replay,
 * clock skew, garbage) gets no answer and no early close: its input is read and dropped until
 * the handshake deadline, which does not move with traffic, then it is closed. So neither the
 * timing nor the byte count at which we close tells a prober anything. */
#include <string.h>
#include <time.h>

#include "inbound.h"
#include "net/vmess_stream.h"

#define LOG_COMPONENT "vmess"

struct handshake {
    struct vrev__handshake base; /* first */
    bool rejected;
    struct vrev__vmess_hdr_reader rd;
};

static void wipe(struct vrev__handshake *base)
{
    vrev__vmess_hdr_reader_wipe(&((struct handshake *)base)->rd);
}

static void accepted(struct handshake *h, const struct vrev__vmess_request *req)
{
    struct vrev__inbound *in = h->base.in;
    struct vrev__engine *e = in->engine;
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.conn_id = h->base.conn_id;
    info.inbound_tag = in->tag;
    info.network = req->command == VREV_VMESS_CMD_UDP ? VREV_NET_UDP : VREV_NET_TCP;
    info.target = req->target;
    info.source = h->base.source;
    info.has_source = true;
    info.user = in->emails ? in->emails[h->rd.user] : NULL;
    if (req->command == VREV_VMESS_CMD_MUX) {
        vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "[%s] VMess Mux command (outbound mux) is not supported; closed",
                  VREV__CONN_ARG(info.conn_id), in->tag ? in->tag : "");
        vrev__handshake_end(&h->base);
        return;
    }
    struct bufferevent *lower = vrev__handshake_take(&h->base);
    int err;
    struct bufferevent *stream = vrev__vmess_stream_server(e->ctx, lower, req, &err);
    if (!stream) {
        vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT, VREV__CONN_FMT "[%s] %s",
                  VREV__CONN_ARG(info.conn_id), in->tag ? in->tag : "", vrev_strerror(err));
        return;
    }
    vrev__dispatch(e, &info, stream);
}

static int feed(struct vrev__handshake *base, struct evbuffer *input, const uint8_t *p, size_t n)
{
    struct handshake *h = (struct handshake *)base;
    struct vrev__vmess_request req;
    size_t used = 0;
    int rc = vrev__vmess_hdr_reader_feed(&h->rd, (int64_t)time(NULL), p, n, &used, &req);
    evbuffer_drain(input, used);
    if (rc == 1) {
        accepted(h, &req);
        vrev__wipe(&req, sizeof(req));
    }
    return rc;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct handshake *h = arg;
    vrev__handshake_read(&h->base, bev, &h->rejected, LOG_COMPONENT, feed);
}

static void vmess_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    (void)len;
    struct vrev__inbound *in = user;
    struct handshake *h =
        (struct handshake *)vrev__handshake_new(in, fd, peer, sizeof(struct handshake), wipe);
    if (!h)
        return;
    vrev__vmess_hdr_reader_init(&h->rd, in->engine->ctx, in->users, in->n_users, in->auth_ids,
                                in->sessions);
    bufferevent_setcb(h->base.bev, on_read, NULL, vrev__handshake_on_event, h);
    bufferevent_enable(h->base.bev, EV_READ);
}

static int add_users(struct vrev__inbound *in, const struct vrev__in_user_opts *opts)
{
    vrev_ctx *ctx = in->engine->ctx;
    in->users = vrev__calloc(ctx, opts->n_users, sizeof(*in->users));
    in->emails = vrev__calloc(ctx, opts->n_users, sizeof(*in->emails));
    if (!in->users || !in->emails)
        return VREV_ERR_NOMEM;
    for (size_t i = 0; i < opts->n_users; i++) {
        int rc = vrev__vmess_user_init(&in->users[i], opts->users[i].uuid);
        in->n_users = i + 1;
        if (rc < 0)
            return rc;
        const char *email = opts->users[i].email;
        if (email && !(in->emails[i] = vrev__strdup(ctx, email)))
            return VREV_ERR_NOMEM;
    }
    return 0;
}

int vrev__vmess_in_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__in_user_opts *opts, struct vrev__inbound **out)
{
    *out = NULL;
    if (!opts || opts->n_users == 0)
        return VREV_ERR_INVAL;
    struct vrev__inbound *in = vrev__inbound_alloc(e, tag);
    if (!in)
        return VREV_ERR_NOMEM;
    int rc = add_users(in, opts);
    if (rc == 0)
        rc = vrev__vmess_replay_new(e->ctx, &in->auth_ids, VREV_VMESS_REPLAY_DEFAULT_MAX);
    if (rc == 0)
        rc = vrev__vmess_replay_new(e->ctx, &in->sessions, VREV_VMESS_REPLAY_DEFAULT_MAX);
    if (rc == 0)
        rc = vrev__inbound_listen(in, opts->listen, opts->port, vmess_accept);
    if (rc < 0) {
        vrev__inbound_free(in);
        return rc;
    }
    *out = in;
    return 0;
}
