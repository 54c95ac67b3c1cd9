/* socks outbound: dial the server, SOCKS5 CONNECT to the link's target, then relay raw bytes
 * (WIRE-SPEC §5.3, RFC 1928/1929). As the 4.34 client does, we offer exactly one method (no
 * auth, or username/password when a user is configured), send the credentials in the same
 * write as the greeting, and ignore the bound address of the reply.
 *
 *   us -> server                         server -> us
 *   05 01 M  [01 ulen user plen pass]    05 M  [01 00]
 *   05 01 00 atyp address port           05 00 00 atyp address port    (REP 00: connected)
 *
 * Until the reply has arrived the handshake is tracked by the engine and bounded by the
 * policy's handshake timeout; the link is not read meanwhile (its bytes wait).
 *
 * A UDP link asks for UDP ASSOCIATE instead (naming the link's target, as the 4.34 client
 * does) and its datagrams go to the relay the reply names (the server's own address when the
 * reply names an unspecified or non-IP one), each behind a SOCKS header naming the target;
 * the association, and so the flow, lasts as long as the TCP connection (udp.c). */
#include <string.h>
#include <sys/socket.h>

#include "codec/socks5.h"
#include "core/timeval.h"
#include "proxy.h"
#include "udp.h"

#define LOG_COMPONENT "socks"
#define SOCKS_RETRY_STEP_MS 100 /* 4.34: retry.ExponentialBackoff(5, 100) */

struct socks_entry {
    struct vrev__addr server; /* first (picker) */
    uint8_t method;           /* VREV_SOCKS5_METHOD_NONE or _PASSWORD */
    uint8_t user_len, pass_len;
    uint8_t user[255];
    uint8_t pass[255];
};

struct socks_out {
    struct vrev__outbound base; /* first */
    struct vrev__picker picker;
    size_t n;
    struct socks_entry ent[];
};

enum step { STEP_METHOD, STEP_AUTH, STEP_REPLY };

struct socks_req {
    struct vrev__conn conn; /* first */
    struct socks_out *ob;
    const struct socks_entry *ent; /* the server and user picked */
    struct bufferevent *link;      /* ours once dialed */
    struct vrev__handoff *handoff; /* instead of a link (proxy.h), ours once dialed */
    struct bufferevent *bev;
    struct event *deadline;
    struct vrev__addr target;
    struct vrev__addr relay; /* UDP: from the reply */
    uint64_t conn_id;
    bool udp;
    enum step step;
    struct vrev__hdr_reader rd;
};

/* close: the connection and the link (or the handoff, told `err`) too. */
static void req_free(struct socks_req *r, bool close, int err)
{
    vrev_ctx *ctx = r->ob->base.engine->ctx;
    vrev__hdr_reader_reset(&r->rd);
    if (r->deadline)
        event_free(r->deadline);
    if (close && r->bev)
        vrev__bev_close(r->bev, 1);
    if (close && (r->link || r->handoff))
        vrev__outbound_finish(&r->ob->base, r->link, r->handoff, NULL, err, r->conn_id);
    vrev__free(ctx, r);
}

static void req_close(struct vrev__conn *c)
{
    req_free((struct socks_req *)c, true, VREV_ERR_STATE);
}

static void fail(struct socks_req *r, int err)
{
    struct vrev__engine *e = r->ob->base.engine;
    char t[VREV_MUX_TARGET_MAX];
    vrev__addr_target_text(&r->target, t, sizeof(t));
    vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT, VREV__CONN_FMT "[%s] %s: %s",
              VREV__CONN_ARG(r->conn_id), r->ob->base.tag ? r->ob->base.tag : "", t,
              vrev_strerror(err));
    vrev__engine_untrack(e, &r->conn);
    req_free(r, true, err);
}

/* The relay the reply named, or the server's address (with the relay's port) when it named
 * none a client can send to. */
static void relay_address(struct socks_req *r, struct vrev__addr *relay)
{
    static const uint8_t zero[16];
    *relay = r->relay;
    if (relay->type != VREV_ADDR_DOMAIN && memcmp(relay->host, zero, relay->len) != 0)
        return;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = vrev__bev_tcp_fd(r->bev);
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        vrev__addr_from_sockaddr(relay, (struct sockaddr *)&ss);
        relay->port = r->relay.port;
    }
}

static void connected(struct socks_req *r)
{
    struct vrev__engine *e = r->ob->base.engine;
    struct bufferevent *link = r->link, *bev = r->bev;
    struct vrev__handoff *h = r->handoff;
    struct vrev__outbound *ob = &r->ob->base;
    struct vrev__addr relay, target = r->target;
    bool udp = r->udp;
    uint64_t id = r->conn_id;
    if (udp)
        relay_address(r, &relay);
    r->link = r->bev = NULL;
    vrev__engine_untrack(e, &r->conn);
    req_free(r, false, 0);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (udp && relay.type != VREV_ADDR_DOMAIN)
        vrev__udp_flow_start_socks(e, link, &relay, bev, &target);
    else if (udp) { /* a name and no socket to take an address from */
        vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT, VREV__CONN_FMT "UDP relay address unusable",
                  VREV__CONN_ARG(id));
        vrev__bev_close(link, 1);
        vrev__bev_close(bev, 1);
    } else /* bytes after the reply move when the relay starts, or wait for the handoff's owner */
        vrev__outbound_finish(ob, link, h, bev, 0, id);
}

static int send_greeting(struct socks_req *r)
{
    const struct socks_entry *s = r->ent;
    uint8_t out[3 + VREV_SOCKS5_AUTH_MAX];
    int n = vrev__socks5_greeting_encode(out, sizeof(out), &s->method, 1);
    if (n > 0 && s->method == VREV_SOCKS5_METHOD_PASSWORD) {
        int a = vrev__socks5_auth_encode(out + n, sizeof(out) - (size_t)n, s->user, s->user_len,
                                         s->pass, s->pass_len);
        n = a < 0 ? a : n + a;
    }
    if (n > 0 && bufferevent_write(r->bev, out, (size_t)n) < 0)
        n = VREV_ERR_NOMEM;
    vrev__wipe(out, sizeof(out));
    return n < 0 ? n : 0;
}

static int send_request(struct socks_req *r)
{
    uint8_t out[VREV_SOCKS5_REQUEST_MAX];
    int n = vrev__socks5_request_encode(
        out, sizeof(out), r->udp ? VREV_SOCKS5_UDP_ASSOCIATE : VREV_SOCKS5_CONNECT, &r->target);
    if (n > 0 && bufferevent_write(r->bev, out, (size_t)n) < 0)
        n = VREV_ERR_NOMEM;
    r->step = STEP_REPLY;
    return n < 0 ? n : 0;
}

/* Feed p[0..n) to the current step (*used gets the bytes taken); 0 or an error. *done is set
 * once the reply has arrived. */
static int advance(struct socks_req *r, const uint8_t *p, size_t n, size_t *used, bool *done)
{
    uint8_t b = 0;
    struct vrev__socks5_request reply;
    int rc;
    if (r->step == STEP_METHOD)
        rc = vrev__socks5_method_feed(&r->rd, &b, p, n, used);
    else if (r->step == STEP_AUTH)
        rc = vrev__socks5_auth_status_feed(&r->rd, &b, p, n, used);
    else
        rc = vrev__socks5_reply_feed(&r->rd, &reply, p, n, used);
    if (rc <= 0)
        return rc;
    vrev__hdr_reader_reset(&r->rd); /* the next message starts after this one */
    switch (r->step) {
    case STEP_METHOD:
        if (b != r->ent->method)
            return VREV_ERR_SOCKS_NO_METHOD;
        if (b == VREV_SOCKS5_METHOD_PASSWORD) {
            r->step = STEP_AUTH;
            return 0;
        }
        return send_request(r);
    case STEP_AUTH:
        return send_request(r);
    default:
        r->relay = reply.addr;
        *done = true;
        return 0;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct socks_req *r = arg;
    struct evbuffer *input = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    while (evbuffer_peek(input, -1, NULL, &vec, 1) >= 1 && vec.iov_len) {
        bool done = false;
        size_t used = 0;
        int rc = advance(r, vec.iov_base, vec.iov_len, &used, &done);
        if (rc < 0) {
            fail(r, rc);
            return;
        }
        evbuffer_drain(input, used);
        if (done) {
            connected(r);
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    fail(arg, what & BEV_EVENT_EOF ? VREV_ERR_TRUNCATED : VREV_ERR_IO);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    fail(arg, VREV_ERR_TIMEOUT);
}

static void on_dialed(struct bufferevent *link, struct bufferevent *bev, int err, void *user)
{
    struct socks_req *r = user;
    struct vrev__engine *e = r->ob->base.engine;
    r->link = link;
    r->bev = bev;
    if (err) { /* the dialer has logged it */
        req_free(r, true, err);
        return;
    }
    vrev__engine_track(e, &r->conn, req_close);
    r->deadline = evtimer_new(e->ctx->base, on_deadline, r);
    err = r->deadline ? send_greeting(r) : VREV_ERR_NOMEM;
    if (err < 0) {
        fail(r, err);
        return;
    }
    uint32_t ms = e->policy.handshake_ms;
    struct timeval tv = vrev__ms_to_tv(ms);
    evtimer_add(r->deadline, &tv);
    bufferevent_setcb(bev, on_read, NULL, on_event, r);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void req_release(void *user) /* the engine stopped before the dial ended */
{
    req_free(user, false, 0); /* nothing dialed yet: no connection, the link is the dialer's */
}

static int socks_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                        struct bufferevent *link)
{
    struct socks_out *s = (struct socks_out *)ob;
    struct socks_req *r = vrev__outbound_req_new(ob, link, info, sizeof(*r));
    if (!r)
        return VREV_ERR_NOMEM;
    r->ob = s;
    r->ent = &s->ent[vrev__picker_pick(&s->picker)];
    r->target = info->target;
    r->udp = info->network == VREV_NET_UDP;
    r->handoff = link ? NULL : info->handoff;
    r->conn_id = info->conn_id;
    vrev__hdr_reader_init(&r->rd);
    return vrev__outbound_dial_req(ob, link, info, &r->ent->server, SOCKS_RETRY_STEP_MS, on_dialed,
                                   req_release, r);
}

static void socks_destroy(struct vrev__outbound *ob)
{
    struct socks_out *s = (struct socks_out *)ob;
    vrev__outbound_free_picked(ob, &s->picker, s->ent, s->n * sizeof(s->ent[0]));
}

static const struct vrev__outbound_ops socks_ops = {.protocol = "socks",
                                                    .handle = socks_handle,
                                                    .destroy = socks_destroy,
                                                    .open = vrev__outbound_open_stream};

static int set_credentials(struct socks_entry *s, const struct vrev__socks_out_opts *opts)
{
    s->method = VREV_SOCKS5_METHOD_NONE;
    if (!opts->user)
        return 0;
    size_t ul = strlen(opts->user), pl = opts->pass ? strlen(opts->pass) : 0;
    if (ul > sizeof(s->user) || pl > sizeof(s->pass))
        return VREV_ERR_RANGE; /* RFC 1929: one length byte each */
    memcpy(s->user, opts->user, ul);
    if (pl)
        memcpy(s->pass, opts->pass, pl);
    s->user_len = (uint8_t)ul;
    s->pass_len = (uint8_t)pl;
    s->method = VREV_SOCKS5_METHOD_PASSWORD;
    return 0;
}

int vrev__socks_out_new(struct vrev__engine *e, const char *tag,
                        const struct vrev__socks_out_opts *opts, size_t n,
                        struct vrev__outbound **out)
{
    int rc;
    struct socks_out *s =
        vrev__outbound_picked_new(e, tag, &socks_ops, opts, n, sizeof(*s), sizeof(s->ent[0]), &rc);
    if (!s)
        return rc;
    s->n = n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = vrev__addr_from_text(&s->ent[i].server, opts[i].address, opts[i].port);
        if (rc == 0)
            rc = set_credentials(&s->ent[i], &opts[i]);
    }
    return vrev__outbound_picked_done(&s->base, &s->picker, s->ent, n, sizeof(s->ent[0]), rc, out);
}
