/* TCP: dialing with a deadline, listening with EMFILE back-off, socket tuning (large reads and
 * writes), closing. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/timeval.h"
#include "net.h"

#include <event2/bufferevent_struct.h> /* after bufferevent.h, which it needs */

#define LOG_COMPONENT "net"

void vrev__policy_default(struct vrev__policy *p)
{
    p->handshake_ms = 60 * 1000;
    p->conn_idle_ms = 300 * 1000;
    p->uplink_only_ms = 1000;
    p->downlink_only_ms = 1000;
    p->buffer_bytes = 512 * 1024;
    p->stall_ms = 10 * 1000;
    p->tunnel_buffer_bytes = 64u << 20;
    p->flow_window = 512 * 1024;
    p->flow_window_max = 16u << 20;
}

void vrev__tcp_tune(evutil_socket_t fd, bool keepalive)
{
    int one = 1, idle = 30, intvl = 10, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!keepalive)
        return;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* --- large reads and writes ----------------------------------------------------------------- */

/* Most a socket bufferevent reads or writes per readiness event. libevent's defaults (16 KiB
 * per write, and in 2.1 at most 4096 bytes per read: EVBUFFER_MAX_READ, configurable only
 * since 2.2) cost a bulk stream about six system calls per 4 KiB. 256 KiB is what a loopback
 * or LAN socket typically holds at once; the relay and mux high-water marks (>= 64 KiB) bound
 * what piles up above us, one read past them at most. */
#define IO_MAX (256 * 1024)

/* What a readiness report reads first, without asking how much there is: a request or a
 * response of a few KiB takes one readv (a 4 KiB block with libevent's chain header). */
#define FIRST_READ (4096 - 64)

/* One readv of at most `want` bytes into the free space at the end of `in` (the last chain's
 * room, then one new chain). Returns what readv returned; errno is readv's. */
static ssize_t read_some(struct evbuffer *in, evutil_socket_t fd, size_t want)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
    if (nv <= 0) {
        errno = ENOMEM;
        return -1;
    }
    size_t left = want;
    for (int i = 0; i < nv; i++) { /* the reservation may be larger than asked */
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
        left -= iov[i].iov_len;
    }
    ssize_t n = readv(fd, iov, nv);
    if (n > 0) {
        left = (size_t)n;
        for (int i = 0; i < nv; i++) {
            v[i].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
            left -= v[i].iov_len;
        }
        evbuffer_commit_space(in, v, nv);
    }
    return n;
}

#if LIBEVENT_VERSION_NUMBER < 0x02020000
/* Bytes read into one new evbuffer chain: libevent rounds a chain (data + its ~64-byte header)
 * up to a power of two, and glibc serves blocks of 128 KiB and more with mmap, so larger
 * chains would cost a page fault per 4 KiB each time. */
#define READ_CHAIN (64 * 1024 - 256)

static void read_event(struct bufferevent *bev, short what)
{
    bufferevent_disable(bev, EV_READ);
    bufferevent_trigger_event(bev, (short)(BEV_EVENT_READING | what), 0);
}

/* libevent 2.1: the socket bufferevent's read event runs this instead of bufferevent_readcb.
 * It does what that does (watermark, end of stream, errors, timeouts, the read callback)
 * through public calls, but reads up to IO_MAX: FIRST_READ bytes, and when those came, what
 * the socket still holds (FIONREAD, as evbuffer_read sizes it) in chains of READ_CHAIN.
 * Enabling, disabling and suspending reading still go through libevent, which only adds and
 * deletes this event. */
static void socket_read(evutil_socket_t fd, short events, void *arg)
{
    struct bufferevent *bev = arg;
    if (events == EV_TIMEOUT) { /* no byte for the whole read timeout */
        read_event(bev, BEV_EVENT_TIMEOUT);
        return;
    }
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t want = IO_MAX, high = 0, have = evbuffer_get_length(in), got = 0;
    bufferevent_getwatermark(bev, EV_READ, NULL, &high);
    if (high && have >= high)
        return; /* libevent suspends reading when the input reaches its high mark */
    if (high && high - have < want)
        want = high - have;
    evbuffer_unfreeze(in, 0);
    size_t ask = want < FIRST_READ ? want : FIRST_READ;
    ssize_t n = read_some(in, fd, ask);
    int err = errno;
    if (n > 0)
        got = (size_t)n;
    int avail = 0;
    if (n == (ssize_t)ask && got < want && ioctl(fd, FIONREAD, &avail) == 0 && avail > 0) {
        if ((size_t)avail < want - got)
            want = got + (size_t)avail;
        do {
            ask = want - got < READ_CHAIN ? want - got : READ_CHAIN;
            n = read_some(in, fd, ask);
            err = errno;
            if (n > 0)
                got += (size_t)n;
        } while (n == (ssize_t)ask && got < want); /* else drained, failed or ended */
    }
    evbuffer_freeze(in, 0);
    if (got > 0)
        bufferevent_trigger(bev, EV_READ, 0); /* deferred, watermark respected; an end or an
                                                 error shows at the next readiness */
    else if (n == 0)
        read_event(bev, BEV_EVENT_EOF);
    else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
        read_event(bev, BEV_EVENT_ERROR);
}

/* Point the read event of a connected socket bufferevent at socket_read (public since 2.0 in
 * bufferevent_struct.h; the layout is fixed within the 2.1 series). */
static void large_reads(struct bufferevent *bev)
{
    short enabled = bufferevent_get_enabled(bev);
    if (enabled & EV_READ)
        bufferevent_disable(bev, EV_READ);
    event_assign(&bev->ev_read, bufferevent_get_base(bev), bufferevent_getfd(bev),
                 EV_READ | EV_PERSIST | EV_FINALIZE, socket_read, bev);
    if (enabled & EV_READ)
        bufferevent_enable(bev, EV_READ);
}
#else
static void large_reads(struct bufferevent *bev)
{
    evbuffer_set_max_read(bufferevent_get_input(bev), IO_MAX);
    bufferevent_set_max_single_read(bev, IO_MAX);
}
#endif

/* A few KiB added to a connected socket's output are written in the same pass of the loop,
 * once the callbacks already due have run (so that what they add goes out in the same write),
 * instead of at the next readiness report: libevent adds the write event when bytes come
 * (bufferevent_socket_outbuf_cb) and we make it active at once; its callback writes and, when
 * all went out, deletes the event again. With epoll's change list (vrev_ctx_new_loop) the add
 * and the delete cancel out: a request-response exchange costs no epoll_ctl. Larger additions
 * (bulk transfer) wait for the readiness report as before, which lets more pile up behind them
 * (fewer, larger writes; written at once, a bulk stream took 1.6 times the writes). A partial
 * write or an error takes libevent's usual course. Never before the socket is connected:
 * libevent's write callback would take a connect in progress for done. */
#define EAGER_MAX (8 * 1024)

static void eager_write(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    (void)out;
    struct bufferevent *bev = arg;
    if (!info->n_added || info->n_added > EAGER_MAX || !(bufferevent_get_enabled(bev) & EV_WRITE))
        return;
    /* This callback may run before libevent's own (evbuffer_add_cb puts it first), which adds
     * the event only if it is not pending, and an active event counts as pending: add it here
     * (as libevent would, with the write timeout), or a partial write would never go on. */
    if (!event_pending(&bev->ev_write, EV_WRITE, NULL))
        event_add(&bev->ev_write,
                  evutil_timerisset(&bev->timeout_write) ? &bev->timeout_write : NULL);
    event_active(&bev->ev_write, EV_WRITE, 1);
}

/* The I/O of every connected socket bufferevent of libvrev. */
static void large_io(struct bufferevent *bev)
{
    large_reads(bev);
    bufferevent_set_max_single_write(bev, IO_MAX);
    evbuffer_add_cb(bufferevent_get_output(bev), eager_write, bev);
}

struct bufferevent *vrev__bev_socket(vrev_ctx *ctx, evutil_socket_t fd)
{
    struct bufferevent *bev =
        bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev && fd >= 0)
        evutil_closesocket(fd);
    if (bev && fd >= 0)
        large_io(bev);
    return bev;
}

void vrev__addr_from_sockaddr(struct vrev__addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        a->type = VREV_ADDR_IPV4;
        a->len = 4;
        memcpy(a->host, &in->sin_addr, 4);
        a->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        a->type = VREV_ADDR_IPV6;
        a->len = 16;
        memcpy(a->host, &in6->sin6_addr, 16);
        a->port = ntohs(in6->sin6_port);
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a->host, mapped, 12)) { /* V2Ray sees IPv4-mapped peers as IPv4 */
            memmove(a->host, a->host + 12, 4);
            a->type = VREV_ADDR_IPV4;
            a->len = 4;
        }
    }
}

socklen_t vrev__addr_to_sockaddr(const struct vrev__addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->type == VREV_ADDR_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->host, 4);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a->port);
    memcpy(&in6->sin6_addr, a->host, 16);
    return sizeof(*in6);
}

/* --- dial ----------------------------------------------------------------------------------- */

/* The connect is bounded by a timer of the dial's own, not by a write timeout on the socket:
 * libevent 2.1 remembers a persistent event's timeout after bufferevent_set_timeouts() has
 * cleared it (event_del keeps ev_io_timeout), and re-arms it whenever the write event stays
 * pending through a partial write. A connection dialed with a 4 s bound then lost its write
 * event after any 4 s of a full socket (BEV_EVENT_TIMEOUT, writing disabled): a tunnel whose
 * portal stopped reading for that long never wrote again. */
struct vrev__dial {
    vrev_ctx *ctx;
    struct bufferevent *bev;
    struct event *deadline;
    vrev__dial_cb cb;
    void *user;
    bool loopback;
    uint16_t port; /* the target's */
};

/* Keep-alive probes find peers that vanished without a word; on loopback the kernel knows
 * both ends, so a connection to 127.0.0.0/8 or ::1 goes without (three system calls less per
 * connection to a local service). */
static bool is_loopback(const struct vrev__addr *a)
{
    static const uint8_t v6[16] = {[15] = 1};
    return (a->type == VREV_ADDR_IPV4 && a->host[0] == 127) ||
           (a->type == VREV_ADDR_IPV6 && !memcmp(a->host, v6, 16));
}

static int errno_to_vrev(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return VREV_ERR_CONNREFUSED;
    case ETIMEDOUT:
        return VREV_ERR_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
        return VREV_ERR_NETUNREACH;
    case ENOMEM:
    case ENOBUFS:
        return VREV_ERR_NOMEM;
    default:
        return VREV_ERR_IO;
    }
}

/* A dial to a local address where nothing listens can meet itself: the kernel may pick the
 * target's port as the source port, and TCP's simultaneous open then connects the socket to
 * itself. Nothing answers on such a connection, and it holds the port that a listener (a
 * portal restarting on its port) is about to bind. One system call when, as nearly always,
 * the source port differs. */
static bool self_connected(evutil_socket_t fd, uint16_t port)
{
    struct sockaddr_storage here, there;
    socklen_t here_len = sizeof(here), there_len = sizeof(there);
    struct vrev__addr a;
    if (getsockname(fd, (struct sockaddr *)&here, &here_len) < 0)
        return false;
    vrev__addr_from_sockaddr(&a, (struct sockaddr *)&here);
    if (a.port != port || getpeername(fd, (struct sockaddr *)&there, &there_len) < 0)
        return false;
    return here_len == there_len && !memcmp(&here, &there, here_len);
}

static void dial_finish(struct vrev__dial *d, short events)
{
    struct bufferevent *bev = d->bev;
    vrev__dial_cb cb = d->cb;
    void *user = d->user;
    bool loopback = d->loopback;
    uint16_t port = d->port;
    int sys = EVUTIL_SOCKET_ERROR();
    event_free(d->deadline);
    vrev__free(d->ctx, d);
    if ((events & BEV_EVENT_CONNECTED) && self_connected(bufferevent_getfd(bev), port)) {
        /* as if refused: what the address would have said */
        vrev__bev_close(bev, 1); /* reset: no TIME_WAIT holding the port for a minute */
        cb(NULL, VREV_ERR_CONNREFUSED, ECONNREFUSED, user);
        return;
    }
    if (events & BEV_EVENT_CONNECTED) {
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        vrev__tcp_tune(bufferevent_getfd(bev), !loopback);
        large_io(bev);
        cb(bev, 0, 0, user);
        return;
    }
    int err = VREV_ERR_IO;
    if (events & BEV_EVENT_TIMEOUT) {
        err = VREV_ERR_TIMEOUT;
        sys = ETIMEDOUT;
    } else if (bufferevent_socket_get_dns_error(bev)) {
        err = VREV_ERR_RESOLVE;
        sys = 0;
    } else {
        err = errno_to_vrev(sys);
    }
    bufferevent_free(bev);
    cb(NULL, err, sys, user);
}

static void dial_event(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    dial_finish(arg, events);
}

static void dial_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    dial_finish(arg, BEV_EVENT_TIMEOUT);
}

int vrev__tcp_dial(vrev_ctx *ctx, struct evdns_base *dns, const struct vrev__addr *target,
                   uint32_t timeout_ms, vrev__dial_cb cb, void *user, struct vrev__dial **out)
{
    if (!ctx->base)
        return VREV_ERR_STATE;
    if (target->type == VREV_ADDR_DOMAIN && !dns)
        return VREV_ERR_INVAL;
    struct vrev__dial *d = vrev__calloc(ctx, 1, sizeof(*d));
    if (!d)
        return VREV_ERR_NOMEM;
    d->ctx = ctx;
    d->cb = cb;
    d->user = user;
    d->loopback = is_loopback(target);
    d->port = target->port;
    d->bev = bufferevent_socket_new(ctx->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    d->deadline = evtimer_new(ctx->base, dial_expired, d);
    if (!d->bev || !d->deadline) {
        if (d->bev)
            bufferevent_free(d->bev);
        if (d->deadline)
            event_free(d->deadline);
        vrev__free(ctx, d);
        return VREV_ERR_NOMEM;
    }
    bufferevent_setcb(d->bev, NULL, NULL, dial_event, d);
    struct timeval tv = vrev__ms_to_tv(timeout_ms);
    evtimer_add(d->deadline, &tv);
    int rc;
    if (target->type == VREV_ADDR_DOMAIN) {
        char host[VREV_ADDR_DOMAIN_MAX + 1];
        memcpy(host, target->host, target->len);
        host[target->len] = '\0';
        rc = bufferevent_socket_connect_hostname(d->bev, dns, AF_UNSPEC, host, target->port);
    } else {
        struct sockaddr_storage ss;
        socklen_t sl = vrev__addr_to_sockaddr(target, &ss);
        rc = bufferevent_socket_connect(d->bev, (struct sockaddr *)&ss, (int)sl);
    }
    if (rc < 0) {
        /* libevent reports immediate failures (e.g. EMFILE) synchronously */
        int sys = EVUTIL_SOCKET_ERROR();
        bufferevent_free(d->bev);
        event_free(d->deadline);
        vrev__free(ctx, d);
        return sys == EMFILE || sys == ENFILE ? VREV_ERR_NOMEM : errno_to_vrev(sys);
    }
    if (out)
        *out = d;
    return 0;
}

void vrev__tcp_dial_cancel(struct vrev__dial *d)
{
    if (!d)
        return;
    bufferevent_free(d->bev);
    event_free(d->deadline);
    vrev__free(d->ctx, d);
}

/* --- socket helpers ------------------------------------------------------------------------- */

void vrev__bev_enable(struct bufferevent *bev, short what)
{
    bufferevent_enable(bev, what);
    if ((what & EV_WRITE) && vrev__bev_is_socket(bev) &&
        !evbuffer_get_length(bufferevent_get_output(bev)))
        event_del(&bev->ev_write); /* re-added by libevent when bytes come */
}

void vrev__bev_read_now(struct bufferevent *bev)
{
    if (!vrev__bev_is_socket(bev) || (bufferevent_get_enabled(bev) & EV_READ))
        return;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_unfreeze(in, 0);
    read_some(in, bufferevent_getfd(bev), FIRST_READ); /* an end or an error stays to be seen
                                                            when reading is enabled */
    evbuffer_freeze(in, 0);
}

int vrev__tcp_set_user_timeout(evutil_socket_t fd, uint32_t ms)
{
    unsigned int v = ms;
    return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof(v)) == 0 ? 0 : VREV_ERR_IO;
}

void vrev__bev_discard_input(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

/* --- closing -------------------------------------------------------------------------------- */

/* SO_LINGER {1, 0}: closing the socket resets the connection (and drops what it still holds
 * to send); {0, 0}: the usual close, which sends what is held, then a FIN. */
static void set_reset_on_close(evutil_socket_t fd, bool reset)
{
    struct linger lg = {reset ? 1 : 0, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* When a process dies (kill -9, OOM, a crash), the kernel closes its sockets, and a socket
 * with nothing unread ends with a FIN: a stream cut in the middle would look complete to a
 * peer without length framing (a portal killed mid-download ended most downloads so). Armed,
 * the socket is reset instead, by our close or by the kernel's. */
void vrev__bev_arm_abort(struct bufferevent *bev)
{
    evutil_socket_t fd = vrev__bev_tcp_fd(bev);
    if (fd >= 0)
        set_reset_on_close(fd, true);
}

bool vrev__bev_shutdown_write(struct bufferevent *bev)
{
    if (!vrev__bev_is_socket(bev)) { /* a pair or a layer: pass an end of stream through it */
        bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
        return false;
    }
    /* Our whole stream has been handed over: a crash from now on must not reset the connection
     * (the RST would drop what the kernel has not sent yet). */
    set_reset_on_close(bufferevent_getfd(bev), false);
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    return true;
}

/* Set how the socket at the bottom of `bev` closes: reset for an abort, else the usual close
 * (undoing vrev__bev_arm_abort), unless a layer above it closes it itself (TLS: after its
 * close_notify, or with a reset once told to). */
static void set_close_below(struct bufferevent *bev, int abort)
{
    evutil_socket_t fd = vrev__layer_closing(bev, abort != 0);
    if (fd >= 0)
        set_reset_on_close(fd, abort);
}

void vrev__bev_close(struct bufferevent *bev, int abort)
{
    if (!bev)
        return;
    /* An abort resets the socket at the bottom of the stack, so that the peer sees an error
     * rather than a clean end; a graceful close never does, even of an armed socket. */
    set_close_below(bev, abort);
    /* Freeing one end of a pair tells the other end nothing: say it explicitly, as an error
     * for an abort, as an end of stream otherwise. */
    struct bufferevent *partner = bufferevent_pair_get_partner(bev);
    if (partner && abort)
        bufferevent_trigger_event(partner, BEV_EVENT_ERROR | BEV_EVENT_READING,
                                  BEV_TRIG_DEFER_CALLBACKS);
    else if (partner)
        bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
    bufferevent_free(bev);
}
