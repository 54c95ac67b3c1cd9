/* vless inbound: read the VLESS request header, answer "00 00" and dispatch the connection
 * itself to the header's target: VLESS has no body framing for TCP, so after the headers the
 * socket carries the payload as it is (WIRE-SPEC §5.1).
 *
 *   request  (client -> us)  00 | uuid[16] | A | addons[A] | cmd | port | type | address
 *   response (us -> client)  00 | 00       (4.34's encoder never writes addons)
 *
 * A 4.34 server writes its response header together with the first response bytes. We send it
 * at once with MSG_MORE, so that the kernel holds it for the first response bytes (or for at
 * most 200 ms) and both leave in one segment, as from 4.34.
 *
 * Anti-probing (RELIABILITY.md §2.1), as in vmess_in.c: a header that fails (unknown UUID,
 * wrong version, bad addons or command) gets no answer and no early close; the input is read
 * and dropped until the handshake deadline, which does not move with traffic. (4.34 without
 * fallbacks closes at once, which tells a prober where the check failed.)
 *
 * The users live in the inbound's vmess user slots: only their uuid field is used. The codec
 * wants the UUIDs as one array, so each handshake carries a copy (wiped when it ends).
 *
 * UDP (command 02): the datagrams that follow the header are u16be length + bytes both ways,
 * the framing of a packet link (lib/net/packet.h): the socket is dispatched as a UDP link as
 * it is. Mux requests are refused (closed with a warning). */
#include <string.h>
#include <sys/socket.h>

#include "codec/vless.h"
#include "inbound.h"

#define LOG_COMPONENT "vless"

#ifndef MSG_MORE
#define MSG_MORE 0
#endif

struct handshake {
    struct vrev__handshake base; /* first */
    bool rejected;
    struct vrev__vless_users users; /* points at uuids */
    struct vrev__hdr_reader rd;
    uint8_t uuids[]; /* n_users * 16 */
};

static void wipe(struct vrev__handshake *base)
{
    struct handshake *h = (struct handshake *)base;
    vrev__hdr_reader_reset(&h->rd);
    vrev__wipe(h->uuids, h->users.count * VREV_VLESS_UUID_LEN);
}

/* "00 00" ahead of the first response bytes (see the top of the file). */
static int send_response_header(struct bufferevent *bev)
{
    static const uint8_t resp[2] = {VREV_VLESS_VERSION, 0};
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && send(fd, resp, sizeof(resp), MSG_MORE | MSG_NOSIGNAL) == sizeof(resp))
        return 0;
    return bufferevent_write(bev, resp, sizeof(resp));
}

static const char *refusal(uint8_t command)
{
    switch (command) {
    case VREV_VLESS_TCP:
    case VREV_VLESS_UDP:
        return NULL;
    default:
        return "the VLESS Mux command (outbound mux) is not supported";
    }
}

static void accepted(struct handshake *h, const struct vrev__vless_request *req)
{
    struct vrev__inbound *in = h->base.in;
    struct vrev__engine *e = in->engine;
    const char *why = refusal(req->command);
    if (!why && send_response_header(h->base.bev) < 0)
        why = vrev_strerror(VREV_ERR_NOMEM);
    if (why) {
        vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT, VREV__CONN_FMT "[%s] %s; closed",
                  VREV__CONN_ARG(h->base.conn_id), in->tag ? in->tag : "", why);
        vrev__handshake_end(&h->base);
        return;
    }
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.conn_id = h->base.conn_id;
    info.inbound_tag = in->tag;
    info.network = req->command == VREV_VLESS_UDP ? VREV_NET_UDP : VREV_NET_TCP;
    info.target = req->target;
    info.source = h->base.source;
    info.has_source = true;
    info.user = in->emails ? in->emails[req->user] : NULL;
    struct bufferevent *bev = vrev__handshake_take(&h->base);
    bufferevent_disable(bev, EV_READ); /* the relay reads once the target is reached */
    vrev__dispatch(e, &info, bev);
}

static int feed(struct vrev__handshake *base, struct evbuffer *input, const uint8_t *p, size_t n)
{
    struct handshake *h = (struct handshake *)base;
    struct vrev__vless_request req;
    size_t used = 0;
    int rc = vrev__vless_request_feed(&h->rd, &h->users, &req, p, n, &used);
    evbuffer_drain(input, used);
    if (rc > 0) /* what follows the header stays in the input for the relay */
        accepted(h, &req);
    return rc;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct handshake *h = arg;
    vrev__handshake_read(&h->base, bev, &h->rejected, LOG_COMPONENT, feed);
}

static void vless_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    (void)len;
    struct vrev__inbound *in = user;
    size_t n = in->n_users * VREV_VLESS_UUID_LEN;
    struct handshake *h =
        (struct handshake *)vrev__handshake_new(in, fd, peer, sizeof(struct handshake) + n, wipe);
    if (!h)
        return;
    for (size_t i = 0; i < in->n_users; i++)
        memcpy(h->uuids + i * VREV_VLESS_UUID_LEN, in->users[i].uuid, VREV_VLESS_UUID_LEN);
    h->users.uuids = h->uuids;
    h->users.count = in->n_users;
    vrev__hdr_reader_init(&h->rd);
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
        memcpy(in->users[i].uuid, opts->users[i].uuid, VREV_VLESS_UUID_LEN);
        in->n_users = i + 1;
        const char *email = opts->users[i].email;
        if (email && !(in->emails[i] = vrev__strdup(ctx, email)))
            return VREV_ERR_NOMEM;
    }
    return 0;
}

int vrev__vless_in_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__in_user_opts *opts, struct vrev__inbound **out)
{
    *out = NULL;
    size_t bytes;
    if (!opts || opts->n_users == 0 ||
        __builtin_mul_overflow(opts->n_users, (size_t)VREV_VLESS_UUID_LEN, &bytes))
        return VREV_ERR_INVAL;
    struct vrev__inbound *in = vrev__inbound_alloc(e, tag);
    if (!in)
        return VREV_ERR_NOMEM;
    int rc = add_users(in, opts);
    if (rc == 0)
        rc = vrev__inbound_listen(in, opts->listen, opts->port, vless_accept);
    if (rc < 0) {
        vrev__inbound_free(in);
        return rc;
    }
    *out = in;
    return 0;
}
