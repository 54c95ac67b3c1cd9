/* acceptProxyProtocol: a listener behind HAProxy, nginx or a load balancer reads the PROXY
 * header (lib/codec/proxy_proto.h) that comes before the connection's own bytes, before TLS,
 * a carrier or the protocol see any of them, and hands the socket on with the client's address
 * as its source.
 *
 * The header is read from the socket itself, never past its end: what the parser has not
 * claimed stays in the kernel (MSG_PEEK, then a read of exactly the header's bytes), so the
 * layers above start on an untouched socket. The wait is a handshake of the inbound (its
 * deadline, policy.handshake, and a place in its pre-auth pool under the proxy's address); a
 * missing or malformed header closes that connection only. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/proxy_proto.h"
#include "inbound.h"

#define LOG_COMPONENT "inbound"

struct pp_wait {
    struct vrev__handshake h; /* first */
    evutil_socket_t fd;       /* -1: handed on */
    struct event *ev;
    vrev__accept_cb next;
    struct sockaddr_storage peer;
    int peer_len;
    size_t have; /* header bytes read into buf */
    size_t skip; /* header bytes past buf still to discard (v2 TLVs) */
    bool parsed; /* hdr holds the header; skip bytes remain */
    struct vrev__pp_header hdr;
    uint8_t buf[VREV_PP_PARSE_MAX];
};

/* The wait ends without a header: closed with a FIN, as a handshake's deadline closes (the
 * listener armed the socket to reset: that is for a stream cut short, and none began). */
static void pp_wipe(struct vrev__handshake *h)
{
    struct pp_wait *w = (struct pp_wait *)h;
    if (w->ev)
        event_free(w->ev);
    if (w->fd >= 0) {
        struct linger lg = {0, 0};
        setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        evutil_closesocket(w->fd);
    }
}

static void refuse(struct pp_wait *w, const char *why)
{
    vrev__handshake_log(&w->h, LOG_COMPONENT, "refused connection from", why);
    vrev__handshake_end(&w->h);
}

/* The header is in: the socket goes on with the header's addresses (LOCAL / UNKNOWN: its own). */
static void hand_on(struct pp_wait *w, const struct vrev__pp_header *hdr)
{
    struct vrev__inbound *in = w->h.in;
    vrev__accept_cb next = w->next;
    evutil_socket_t fd = w->fd;
    struct sockaddr_storage peer = w->peer;
    socklen_t len = (socklen_t)w->peer_len;
    struct vrev__addr local = hdr->dst;
    bool known = hdr->has_addr;
    if (known)
        len = vrev__addr_to_sockaddr(&hdr->src, &peer);
    w->fd = -1;
    vrev__handshake_end(&w->h); /* its place goes back */
    in->pp_local = known ? &local : NULL;
    next(fd, (const struct sockaddr *)&peer, (int)len, in);
    in->pp_local = NULL;
}

/* Discard the v2 TLVs past what the parser needed. 1: done, 0: wait, -1: failed. */
static int discard(struct pp_wait *w)
{
    uint8_t sink[512];
    while (w->skip) {
        ssize_t n = recv(w->fd, sink, w->skip < sizeof(sink) ? w->skip : sizeof(sink), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (n <= 0)
            return -1;
        w->skip -= (size_t)n;
    }
    return 1;
}

/* Look at what has come, take exactly the header's bytes. 1: header parsed into *hdr, 0: wait,
 * -1: refused (*why says why). */
static int take(struct pp_wait *w, struct vrev__pp_header *hdr, const char **why)
{
    ssize_t n = recv(w->fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0) {
        *why = n == 0 ? "closed before its PROXY header" : "read failed before its PROXY header";
        return -1;
    }
    size_t need = 0, seen = w->have + (size_t)n;
    int rc = vrev__pp_parse(w->buf, seen, hdr, &need);
    if (rc < 0) {
        *why = "no valid PROXY protocol header";
        return -1;
    }
    /* all seen bytes are the header's while it is incomplete; once complete, only its own */
    size_t upto = rc > 0 && (size_t)rc < seen ? (size_t)rc : seen;
    ssize_t got = recv(w->fd, w->buf + w->have, upto - w->have, 0);
    if (got != (ssize_t)(upto - w->have)) {
        *why = "read failed in its PROXY header";
        return -1;
    }
    w->have = upto;
    if (rc == 0)
        return 0;
    w->skip = (size_t)rc - upto;
    return 1;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pp_wait *w = arg;
    const char *why = "read failed in its PROXY header";
    int rc = w->parsed ? 1 : take(w, &w->hdr, &why);
    w->parsed = rc > 0;
    if (rc > 0)
        rc = discard(w);
    if (rc > 0)
        hand_on(w, &w->hdr);
    else if (rc < 0)
        refuse(w, why);
}

void vrev__pp_accept(struct vrev__inbound *in, evutil_socket_t fd, const struct sockaddr *peer,
                     int len, vrev__accept_cb next)
{
    struct pp_wait *w =
        (struct pp_wait *)vrev__handshake_open(in, peer, sizeof(struct pp_wait), pp_wipe);
    if (!w) {
        evutil_closesocket(fd);
        return;
    }
    w->fd = fd;
    w->next = next;
    if (len > 0 && (size_t)len <= sizeof(w->peer)) {
        memcpy(&w->peer, peer, (size_t)len);
        w->peer_len = len;
    }
    evutil_make_socket_nonblocking(fd);
    w->ev = event_new(in->engine->ctx->base, fd, EV_READ | EV_PERSIST, on_readable, w);
    if (!w->ev || event_add(w->ev, NULL) < 0)
        vrev__handshake_end(&w->h);
}
