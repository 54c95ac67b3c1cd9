/* vless outbound: dial the server, send the VLESS request header for the link's target, then
 * relay raw bytes (WIRE-SPEC §5.1). VLESS has no body framing for TCP: after the headers the
 * connection carries the payload as it is, so the link is relayed with the server's socket
 * itself and FIN, backpressure and idle timers work as for freedom.
 *
 *   request  (us -> server)   00 | uuid[16] | 00 (no addons) | 01 (TCP) | port | type | address
 *   response (server -> us)   00 | A | addons[A]     4.34 always sends "00 00", and only with
 *                                                    its first response bytes
 *
 * The uplink never waits for the response header (a 4.34 server writes it only once its
 * target has answered, so waiting would deadlock request/response protocols). Instead the
 * header is stripped from the front of the server's input as it arrives (strip_response).
 *
 * UDP (command 02): every datagram is u16be length + bytes both ways, which is exactly how a
 * packet link frames its datagrams (lib/net/packet.h), so a UDP link is relayed with the
 * socket just the same. The Mux command is not implemented. */
#include <string.h>
#include <sys/socket.h>

#include "codec/vless.h"
#include "proxy.h"

#define LOG_COMPONENT "vless"
#define VLESS_RETRY_STEP_MS 200 /* 4.34: retry.ExponentialBackoff(5, 200) */

#ifndef MSG_MORE
#define MSG_MORE 0
#endif

struct vless_entry {
    struct vrev__addr server; /* first (picker) */
    uint8_t uuid[16];
};

struct vless_out {
    struct vrev__outbound base; /* first */
    struct vrev__picker picker;
    size_t n;
    struct vless_entry ent[];
};

struct vless_req {
    struct vrev__picked_req h; /* first: the outbound, the server and user picked */
    struct vrev__addr target;
    uint8_t command; /* VREV_VLESS_TCP or VREV_VLESS_UDP */
    uint64_t conn_id;
};

/* Write a header so that it leaves in one TCP segment with the first payload, as a 4.34 peer
 * does by buffering its header with the first payload: the kernel holds bytes sent with
 * MSG_MORE until the next write (the relay's first) or for at most 200 ms. Only on a plain
 * socket (a filter, e.g. TLS, reports no fd); anything left over goes through the buffer. */
static int write_early(struct bufferevent *bev, const uint8_t *p, size_t n)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        ssize_t w = send(fd, p, n, MSG_MORE | MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
    }
    return n ? bufferevent_write(bev, p, n) : 0;
}

/* An input-buffer callback that removes the response header from the front of the server's
 * stream as it arrives, before the relay sees it: the read callback waits (low watermark) for
 * as many bytes as the header needs, the header is drained, then the callback removes itself.
 * It keeps no state but the bufferevent (the bytes wait in the buffer until complete), so
 * nothing outlives the bufferevent. A malformed header is an error on the stream. One gap: a
 * server that closes in the middle of its header gets those 1..256 bytes relayed with the EOF
 * (the relay reads what is left on EOF, ignoring the watermark). */
static void strip_response(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    if (info->n_added == 0)
        return;
    struct bufferevent *bev = arg;
    uint8_t hdr[VREV_VLESS_RESPONSE_MAX];
    ev_ssize_t n = evbuffer_copyout(in, hdr, sizeof(hdr));
    struct vrev__vless_addons addons;
    size_t need = 0;
    int rc = n < 0 ? VREV_ERR_IO : vrev__vless_response_parse(hdr, (size_t)n, &addons, &need);
    if (rc == 0) {
        bufferevent_setwatermark(bev, EV_READ, need, 0);
        return;
    }
    evbuffer_remove_cb(in, strip_response, arg);
    if (rc < 0) {
        /* no byte of a bad stream reaches the client: nothing wakes the reader again */
        bufferevent_disable(bev, EV_READ);
        bufferevent_setwatermark(bev, EV_READ, SIZE_MAX, 0);
        evbuffer_drain(in, evbuffer_get_length(in));
        bufferevent_trigger_event(bev, BEV_EVENT_ERROR | BEV_EVENT_READING,
                                  BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    evbuffer_drain(in, (size_t)rc);
}

static int start_stream(struct bufferevent *bev, const struct vless_req *r)
{
    uint8_t hdr[VREV_VLESS_REQUEST_MAX];
    const struct vless_entry *ent = r->h.ent;
    int n =
        vrev__vless_request_encode(hdr, sizeof(hdr), ent->uuid, r->command, &r->target, NULL, 0);
    if (n > 0 && !evbuffer_add_cb(bufferevent_get_input(bev), strip_response, bev))
        n = VREV_ERR_NOMEM;
    if (n > 0) {
        bufferevent_setwatermark(bev, EV_READ, 2, 0); /* the shortest response header */
        if (write_early(bev, hdr, (size_t)n) < 0)
            n = VREV_ERR_NOMEM;
    }
    vrev__wipe(hdr, sizeof(hdr));
    return n < 0 ? n : 0;
}

static void on_dialed(struct bufferevent *link, struct bufferevent *bev, int err, void *user)
{
    struct vless_req *r = user;
    struct vrev__outbound *ob = r->h.ob;
    struct vrev__engine *e = ob->engine;
    struct vrev__handoff *h = r->h.handoff;
    uint64_t id = r->conn_id;
    if (err == 0)
        err = start_stream(bev, r);
    vrev__free(e->ctx, r);
    if (err == 0) {
        vrev__outbound_finish(ob, link, h, bev, 0, id);
        return;
    }
    vrev__picked_req_failed(ob, LOG_COMPONENT, id, link, h, bev, err);
}

static int vless_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                        struct bufferevent *link)
{
    struct vless_out *v = (struct vless_out *)ob;
    struct vless_req *r =
        vrev__picked_req_new(ob, &v->picker, v->ent, sizeof(v->ent[0]), link, info, sizeof(*r));
    if (!r)
        return VREV_ERR_NOMEM;
    r->target = info->target;
    r->command = info->network == VREV_NET_UDP ? VREV_VLESS_UDP : VREV_VLESS_TCP;
    r->conn_id = info->conn_id;
    return vrev__outbound_dial_req(ob, link, info, r->h.ent, VLESS_RETRY_STEP_MS, on_dialed,
                                   vrev__picked_req_release, r);
}

static void vless_destroy(struct vrev__outbound *ob)
{
    struct vless_out *v = (struct vless_out *)ob;
    vrev__outbound_free_picked(ob, &v->picker, v->ent, v->n * sizeof(v->ent[0]));
}

static const struct vrev__outbound_ops vless_ops = {.protocol = "vless",
                                                    .handle = vless_handle,
                                                    .destroy = vless_destroy,
                                                    .open = vrev__outbound_open_stream};

int vrev__vless_out_new(struct vrev__engine *e, const char *tag,
                        const struct vrev__user_out_opts *opts, size_t n,
                        struct vrev__outbound **out)
{
    int rc;
    struct vless_out *v =
        vrev__outbound_picked_new(e, tag, &vless_ops, opts, n, sizeof(*v), sizeof(v->ent[0]), &rc);
    if (!v)
        return rc;
    v->n = n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        memcpy(v->ent[i].uuid, opts[i].uuid, sizeof(v->ent[i].uuid));
        rc = vrev__addr_from_text(&v->ent[i].server, opts[i].address, opts[i].port);
    }
    return vrev__outbound_picked_done(&v->base, &v->picker, v->ent, n, sizeof(v->ent[0]), rc, out);
}
