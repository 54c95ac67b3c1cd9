/* socks inbound: SOCKS5 server (WIRE-SPEC §5.3, RFC 1928/1929) with no authentication or
 * username/password accounts. CONNECT (and Tor's RESOLVE commands, which 4.34 treats as
 * CONNECT) is answered with success at once, before the target is reached (as 4.34 does),
 * and the connection itself is dispatched to the target with the username as its user.
 *
 *   client -> us                      us -> client
 *   05 n methods...                   05 M          M = 00 or 02; FF: nothing acceptable
 *   01 ulen user plen pass            01 00         01 FF: refused (4.34's status byte)
 *   05 cmd 00 atyp address port       05 rep 00 atyp address port
 *
 * UDP ASSOCIATE (with "udp": true, as 4.34): the reply names the relay — settings.ip, else the
 * address the client reached, and the inbound's own port, where a UDP socket listens (udp.c).
 * The TCP connection then only keeps the association: it is read and discarded until the
 * client closes it, and while it is open the relay takes datagrams from the client's IP.
 *
 * Refusals are SOCKS replies followed by a close once they are written: no acceptable method,
 * bad credentials, BIND / unknown commands, UDP ASSOCIATE without "udp" (rep 07), unknown
 * address types (rep 08). SOCKS4 and malformed messages are closed without a reply.
 * Pipelined input (greeting, credentials, request and payload in one write, as the 4.34
 * client sends the first two) is read message by message; whatever follows the request stays
 * in the input for the relay. The handshake is bounded by the policy's handshake timeout.
 *
 * Accounts live in the inbound's user slots: slot i holds SHA-256(ulen || user || pass) (so
 * no password is kept, and comparing equal-length digests in constant time is easy), and
 * emails[i] holds the username (the user that routing rules see). */
#include <string.h>
#include <sys/socket.h>

#include "codec/socks5.h"
#include "inbound.h"
#include "udp.h"

#define LOG_COMPONENT "socks"

_Static_assert(sizeof(struct vrev__vmess_user) >= 32, "an account digest fits a user slot");

enum phase { PHASE_GREETING, PHASE_AUTH, PHASE_REQUEST, PHASE_CLOSING };

struct handshake {
    struct vrev__handshake base; /* first */
    enum phase phase;
    size_t account; /* index of the authenticated account, SIZE_MAX for none */
    struct vrev__hdr_reader rd;
};

static int account_digest(const uint8_t *user, size_t ulen, const uint8_t *pass, size_t plen,
                          uint8_t out[32])
{
    uint8_t len = (uint8_t)ulen;
    struct vrev__iov v[3] = {{&len, 1}, {user, ulen}, {pass, plen}};
    return vrev__sha256(v, 3, out);
}

/* The account matching the credentials, or SIZE_MAX; every slot is compared. */
static size_t find_account(const struct vrev__inbound *in, const struct vrev__socks5_auth *a)
{
    uint8_t d[32];
    size_t found = SIZE_MAX;
    if (account_digest(a->user, a->user_len, a->pass, a->pass_len, d) == 0)
        for (size_t i = 0; i < in->n_users; i++)
            if (vrev__ct_equal(&in->users[i], d, sizeof(d)))
                found = i;
    vrev__wipe(d, sizeof(d));
    return found;
}

static void wipe(struct vrev__handshake *base)
{
    vrev__hdr_reader_reset(&((struct handshake *)base)->rd);
}

static void on_written(struct bufferevent *bev, void *arg)
{
    struct handshake *h = arg;
    if (h->phase == PHASE_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        vrev__handshake_end(&h->base);
}

static void refuse(struct handshake *h, const char *why)
{
    vrev__handshake_log(&h->base, LOG_COMPONENT, "refused", why);
    h->phase = PHASE_CLOSING; /* close once the reply (if any) is written */
}

static int reply(struct handshake *h, uint8_t rep, const struct vrev__addr *bound)
{
    uint8_t out[3 + VREV_SOCKS_ADDR_MAX];
    int n = vrev__socks5_reply_encode(out, sizeof(out), rep, bound);
    if (n < 0)
        return n;
    return bufferevent_write(h->base.bev, out, (size_t)n) < 0 ? VREV_ERR_NOMEM : 0;
}

static void accepted(struct handshake *h, const struct vrev__addr *target)
{
    struct vrev__inbound *in = h->base.in;
    struct vrev__engine *e = in->engine;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct vrev__addr bound, *b = NULL;
    if (getsockname(bufferevent_getfd(h->base.bev), (struct sockaddr *)&ss, &sl) == 0) {
        vrev__addr_from_sockaddr(&bound, (struct sockaddr *)&ss);
        b = &bound;
    }
    if (reply(h, VREV_SOCKS5_REP_SUCCEEDED, b) < 0) {
        vrev__handshake_end(&h->base);
        return;
    }
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.conn_id = h->base.conn_id;
    info.inbound_tag = in->tag;
    info.network = VREV_NET_TCP;
    info.target = *target;
    info.source = h->base.source;
    info.has_source = true;
    info.user = h->account != SIZE_MAX && in->emails ? in->emails[h->account] : NULL;
    struct bufferevent *bev = vrev__handshake_take(&h->base);
    bufferevent_disable(bev, EV_READ); /* the relay reads once the target is reached */
    vrev__dispatch(e, &info, bev);
}

static int on_greeting(struct handshake *h, const struct vrev__socks5_greeting *g)
{
    uint8_t want = h->base.in->n_users ? VREV_SOCKS5_METHOD_PASSWORD : VREV_SOCKS5_METHOD_NONE;
    uint8_t m = vrev__socks5_choose_method(g, want), out[2];
    int rc = vrev__socks5_method_encode(out, sizeof(out), m);
    if (rc > 0 && bufferevent_write(h->base.bev, out, 2) < 0)
        rc = VREV_ERR_NOMEM;
    if (m == VREV_SOCKS5_METHOD_UNACCEPTABLE)
        refuse(h, want ? "client offers no username/password authentication"
                       : "client offers no \"no authentication\" method");
    else
        h->phase = m == VREV_SOCKS5_METHOD_PASSWORD ? PHASE_AUTH : PHASE_REQUEST;
    return rc < 0 ? rc : 0;
}

static int on_auth(struct handshake *h, const struct vrev__socks5_auth *a)
{
    h->account = find_account(h->base.in, a);
    uint8_t out[2];
    int rc =
        vrev__socks5_auth_status_encode(out, sizeof(out), h->account == SIZE_MAX ? 0xff : 0x00);
    if (rc > 0 && bufferevent_write(h->base.bev, out, 2) < 0)
        rc = VREV_ERR_NOMEM;
    if (h->account == SIZE_MAX)
        refuse(h, "wrong username or password");
    else
        h->phase = PHASE_REQUEST;
    return rc < 0 ? rc : 0;
}

/* --- UDP associations ------------------------------------------------------------------------ */

/* An open UDP ASSOCIATE connection: tracked by the engine, no timeout (as 4.34). */
struct assoc {
    struct vrev__conn conn; /* first */
    struct vrev__engine *engine;
    struct vrev__udp_in *udp; /* the inbound's relay; the inbound outlives its connections */
    struct bufferevent *bev;
    struct vrev__addr client;
};

static void assoc_close(struct vrev__conn *c)
{
    struct assoc *a = (struct assoc *)c;
    vrev__udp_in_associate(a->udp, &a->client, false);
    vrev__bev_close(a->bev, 0);
    vrev__free(a->engine->ctx, a);
}

static void assoc_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    struct assoc *a = arg;
    vrev__engine_untrack(a->engine, &a->conn);
    assoc_close(&a->conn);
}

/* Reply with the relay's address and keep the connection as the association. Returns 1 (h is
 * gone) or 0 (refused: h closes after the reply). */
static int associate(struct handshake *h)
{
    struct vrev__inbound *in = h->base.in;
    struct vrev__engine *e = in->engine;
    struct vrev__addr relay;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (in->has_announce)
        relay = in->announce;
    else if (getsockname(bufferevent_getfd(h->base.bev), (struct sockaddr *)&ss, &sl) == 0)
        vrev__addr_from_sockaddr(&relay, (struct sockaddr *)&ss);
    else
        vrev__addr_from_text(&relay, "127.0.0.1", 0);
    relay.port = vrev__udp_in_port(in->udp);
    struct assoc *a = vrev__calloc(e->ctx, 1, sizeof(*a));
    int rc = a ? vrev__udp_in_associate(in->udp, &h->base.source, true) : VREV_ERR_NOMEM;
    if (rc == 0 && reply(h, VREV_SOCKS5_REP_SUCCEEDED, &relay) < 0) {
        vrev__udp_in_associate(in->udp, &h->base.source, false);
        rc = VREV_ERR_NOMEM;
    }
    if (rc < 0) {
        vrev__free(e->ctx, a);
        refuse(h, vrev_strerror(rc));
        reply(h, VREV_SOCKS5_REP_FAILURE, NULL);
        return 0;
    }
    a->engine = e;
    a->udp = in->udp;
    a->client = h->base.source;
    char who[VREV_MUX_TARGET_MAX];
    vrev__addr_target_text(&a->client, who, sizeof(who));
    vrev__log(e->ctx, VREV_LOG_INFO, LOG_COMPONENT, VREV__CONN_FMT "[%s] UDP associated for %s",
              VREV__CONN_ARG(h->base.conn_id), in->tag ? in->tag : "", who);
    a->bev = vrev__handshake_take(&h->base);
    vrev__engine_track(e, &a->conn, assoc_close);
    bufferevent_setcb(a->bev, vrev__bev_discard_input, NULL, assoc_event, a);
    bufferevent_enable(a->bev, EV_READ | EV_WRITE);
    vrev__bev_discard_input(a->bev, a);
    return 1;
}

/* Returns 1 when the connection has been dispatched (h is gone). */
static int on_request(struct handshake *h, const struct vrev__socks5_request *req)
{
    switch (req->code) {
    case VREV_SOCKS5_CONNECT:
    case VREV_SOCKS5_TOR_RESOLVE:
    case VREV_SOCKS5_TOR_RESOLVE_PTR:
        accepted(h, &req->addr);
        return 1;
    case VREV_SOCKS5_UDP_ASSOCIATE:
        if (h->base.in->udp)
            return associate(h);
        /* fall through */
    default:
        refuse(h, req->code == VREV_SOCKS5_UDP_ASSOCIATE ? "UDP is off (settings.udp)"
                                                         : "BIND is not supported");
        return reply(h, VREV_SOCKS5_REP_CMD_UNSUPPORTED, NULL);
    }
}

/* One message from p[0..n) (the front of the input): *used gets the bytes still to drain.
 * Returns 0 (go on), 1 (dispatched), or a protocol error for which no reply is due. */
static int advance(struct handshake *h, const uint8_t *p, size_t n, size_t *used)
{
    union {
        struct vrev__socks5_greeting g;
        struct vrev__socks5_auth a;
        struct vrev__socks5_request r;
    } m;
    int rc;
    if (h->phase == PHASE_GREETING)
        rc = vrev__socks5_greeting_feed(&h->rd, &m.g, p, n, used);
    else if (h->phase == PHASE_AUTH)
        rc = vrev__socks5_auth_feed(&h->rd, &m.a, p, n, used);
    else
        rc = vrev__socks5_request_feed(&h->rd, &m.r, p, n, used);
    if (rc == VREV_ERR_SOCKS_COMMAND || rc == VREV_ERR_ADDR_TYPE || rc == VREV_ERR_ADDR_DOMAIN) {
        refuse(h, vrev_strerror(rc));
        return reply(h, vrev__socks5_rep_for_error(rc), NULL);
    }
    if (rc <= 0)
        return rc;
    /* the message is in the reader now: take it off the input before anything else (on
     * success the rest of the input is the payload, and h is gone) */
    evbuffer_drain(bufferevent_get_input(h->base.bev), *used);
    *used = 0;
    if (h->phase == PHASE_GREETING)
        rc = on_greeting(h, &m.g);
    else if (h->phase == PHASE_AUTH)
        rc = on_auth(h, &m.a);
    else
        return on_request(h, &m.r); /* m points into the reader: reset after use */
    vrev__hdr_reader_reset(&h->rd);
    return rc;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct handshake *h = arg;
    struct evbuffer *input = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    while (h->phase != PHASE_CLOSING && evbuffer_peek(input, -1, NULL, &vec, 1) >= 1 &&
           vec.iov_len) {
        size_t used = 0;
        int rc = advance(h, vec.iov_base, vec.iov_len, &used);
        if (rc == 1)
            return;
        if (rc < 0) {
            refuse(h, vrev_strerror(rc));
            vrev__handshake_end(&h->base);
            return;
        }
        evbuffer_drain(input, used);
    }
    if (h->phase == PHASE_CLOSING) {
        evbuffer_drain(input, evbuffer_get_length(input));
        on_written(bev, h);
    }
}

static void socks_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    (void)len;
    struct handshake *h =
        (struct handshake *)vrev__handshake_new(user, fd, peer, sizeof(struct handshake), wipe);
    if (!h)
        return;
    h->account = SIZE_MAX;
    vrev__hdr_reader_init(&h->rd);
    bufferevent_setcb(h->base.bev, on_read, on_written, vrev__handshake_on_event, h);
    bufferevent_enable(h->base.bev, EV_READ | EV_WRITE);
}

static int add_accounts(struct vrev__inbound *in, const struct vrev__socks_in_opts *opts)
{
    vrev_ctx *ctx = in->engine->ctx;
    in->users = vrev__calloc(ctx, opts->n_accounts, sizeof(*in->users));
    in->emails = vrev__calloc(ctx, opts->n_accounts, sizeof(*in->emails));
    if (!in->users || !in->emails)
        return VREV_ERR_NOMEM;
    for (size_t i = 0; i < opts->n_accounts; i++) {
        const char *user = opts->accounts[i].user, *pass = opts->accounts[i].pass;
        if (!user || !pass || strlen(user) > 255 || strlen(pass) > 255)
            return VREV_ERR_RANGE; /* RFC 1929: one length byte each */
        in->n_users = i + 1;
        uint8_t d[32];
        int rc = account_digest((const uint8_t *)user, strlen(user), (const uint8_t *)pass,
                                strlen(pass), d);
        memcpy(&in->users[i], d, sizeof(d));
        vrev__wipe(d, sizeof(d));
        if (rc < 0)
            return rc;
        if (!(in->emails[i] = vrev__strdup(ctx, user)))
            return VREV_ERR_NOMEM;
    }
    return 0;
}

int vrev__socks_in_new(struct vrev__engine *e, const char *tag,
                       const struct vrev__socks_in_opts *opts, struct vrev__inbound **out)
{
    *out = NULL;
    if (!opts || (opts->n_accounts && !opts->accounts))
        return VREV_ERR_INVAL;
    struct vrev__inbound *in = vrev__inbound_alloc(e, tag);
    if (!in)
        return VREV_ERR_NOMEM;
    int rc = opts->n_accounts ? add_accounts(in, opts) : 0;
    if (rc == 0)
        rc = vrev__inbound_listen(in, opts->listen, opts->port, socks_accept);
    if (rc == 0 && opts->udp) /* the relay listens on the same port, as 4.34's */
        rc = vrev__udp_in_new_socks(e, in->tag, opts->listen, vrev__listener_port(in->listener),
                                    &in->udp);
    if (rc == 0 && opts->udp_ip && *opts->udp_ip) {
        rc = vrev__addr_from_text(&in->announce, opts->udp_ip, 0);
        in->has_announce = rc == 0;
    }
    if (rc < 0) {
        vrev__inbound_free(in);
        return rc;
    }
    *out = in;
    return 0;
}
