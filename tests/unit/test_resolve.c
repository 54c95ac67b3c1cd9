/* freedom's domainStrategy and UDP targets given by name (lib/proxy/resolve.c), against a
 * name server of our own on 127.0.0.1 (libevent's evdns server):
 *
 *   dual.vrev.test    A 127.0.0.1, AAAA ::1
 *   v4only.vrev.test  A 127.0.0.1
 *   slow.vrev.test    never answered
 *   anything else     NXDOMAIN
 *
 * Two TCP servers share one port, one on 127.0.0.1 answering "v4", one on [::1] answering
 * "v6", so the address family freedom dialled shows in what comes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include "net/packet.h"
#include "proxy/proxy.h"
#include "testutil.h"

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__engine engine;
    evutil_socket_t dns_fd, udp_fd;
    struct event *udp_ev;
    struct evdns_server_port *dns;
    struct evdns_server_request *held; /* the unanswered query */
    struct evconnlistener *tcp[2];     /* v4, v6 */
    uint16_t tcp_port, udp_port;
    struct bufferevent *client; /* our end of the link */
    struct evbuffer *got;
    int closed;
};

/* --- the name server ------------------------------------------------------------------------ */

static void on_query(struct evdns_server_request *req, void *arg)
{
    struct world *w = arg;
    int err = DNS_ERR_NOTEXIST;
    for (int i = 0; i < req->nquestions; i++) {
        const struct evdns_server_question *q = req->questions[i];
        if (!strcasecmp(q->name, "slow.vrev.test")) {
            w->held = req;
            return;
        }
        bool dual = !strcasecmp(q->name, "dual.vrev.test");
        if (!dual && strcasecmp(q->name, "v4only.vrev.test"))
            continue;
        err = DNS_ERR_NONE;
        if (q->type == EVDNS_TYPE_A) {
            struct in_addr a = {htonl(INADDR_LOOPBACK)};
            evdns_server_request_add_a_reply(req, q->name, 1, &a, 60);
        } else if (q->type == EVDNS_TYPE_AAAA && dual) {
            struct in6_addr a6 = IN6ADDR_LOOPBACK_INIT;
            evdns_server_request_add_aaaa_reply(req, q->name, 1, &a6, 60);
        }
    }
    evdns_server_request_respond(req, err);
}

/* --- the two TCP servers and the UDP echo ------------------------------------------------------
 */

static void tcp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                       void *arg)
{
    (void)l, (void)len, (void)arg;
    const char *who = sa->sa_family == AF_INET6 ? "v6" : "v4";
    if (write(fd, who, 2) != 2)
        fail_msg("write");
    close(fd);
}

static struct evconnlistener *listen_on(struct world *w, int family, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons(port);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(port);
        len = sizeof(*a);
    }
    return evconnlistener_new_bind(w->base, tcp_accept, w,
                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                   (struct sockaddr *)&ss, (int)len);
}

static uint16_t bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static evutil_socket_t udp_socket(void)
{
    evutil_socket_t fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void udp_echo(evutil_socket_t fd, short what, void *arg)
{
    (void)what, (void)arg;
    uint8_t buf[2048];
    struct sockaddr_storage from;
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
    if (n > 0)
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
}

static void world_init(struct world *w, int strategy)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    w->got = evbuffer_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev__engine_init(&w->engine, w->ctx), 0);
    /* the name server */
    w->dns_fd = udp_socket();
    w->dns = evdns_add_server_port_with_base(w->base, w->dns_fd, 0, on_query, w);
    assert_non_null(w->dns);
    struct evdns_base *r = vrev__engine_dns(&w->engine);
    assert_non_null(r);
    char ns[32];
    snprintf(ns, sizeof(ns), "127.0.0.1:%u", bound_port(w->dns_fd));
    assert_int_equal(evdns_base_clear_nameservers_and_suspend(r), 0);
    assert_int_equal(evdns_base_nameserver_ip_add(r, ns), 0);
    assert_int_equal(evdns_base_resume(r), 0);
    evdns_base_search_clear(r); /* the names are absolute */
    /* TCP servers on one port, both families */
    for (int tries = 0; tries < 20 && !w->tcp[0]; tries++) {
        if (w->tcp[1])
            evconnlistener_free(w->tcp[1]);
        w->tcp[1] = listen_on(w, AF_INET6, 0);
        assert_non_null(w->tcp[1]);
        w->tcp_port = bound_port(evconnlistener_get_fd(w->tcp[1]));
        w->tcp[0] = listen_on(w, AF_INET, w->tcp_port);
    }
    assert_non_null(w->tcp[0]);
    /* a UDP echo */
    w->udp_fd = udp_socket();
    w->udp_port = bound_port(w->udp_fd);
    w->udp_ev = event_new(w->base, w->udp_fd, EV_READ | EV_PERSIST, udp_echo, w);
    event_add(w->udp_ev, NULL);
    /* freedom with the strategy */
    struct vrev__outbound *ob;
    struct vrev__freedom_opts f = {.domain_strategy = strategy};
    assert_int_equal(vrev__freedom_new(&w->engine, "direct", &f, &ob), 0);
    assert_int_equal(vrev__engine_add_outbound(&w->engine, ob), 0);
}

static void world_done(struct world *w)
{
    if (w->client)
        bufferevent_free(w->client);
    vrev__engine_cleanup(&w->engine);
    if (w->held)
        evdns_server_request_drop(w->held);
    evdns_close_server_port(w->dns);
    close(w->dns_fd);
    evconnlistener_free(w->tcp[0]);
    evconnlistener_free(w->tcp[1]);
    evbuffer_free(w->got);
    event_free(w->udp_ev);
    close(w->udp_fd);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

/* --- a link into the engine --------------------------------------------------------------- */

static void client_read(struct bufferevent *bev, void *arg)
{
    evbuffer_add_buffer(((struct world *)arg)->got, bufferevent_get_input(bev));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    client_read(bev, arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        ((struct world *)arg)->closed = 1;
}

/* Dispatch a link to host:port, its dial counted on `dialing` (NULL: not counted) and its
 * lines naming connection `conn_id`; our end of it is w->client. */
static void dispatch_as(struct world *w, int network, const char *host, uint16_t port,
                        struct vrev__gauge *dialing, uint64_t conn_id)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_nonblocking(sv[1]);
    struct bufferevent *link = vrev__bev_socket(w->ctx, sv[0]);
    w->client = bufferevent_socket_new(w->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(w->client, client_read, NULL, client_event, w);
    bufferevent_enable(w->client, EV_READ | EV_WRITE);
    struct vrev__link_info info;
    memset(&info, 0, sizeof(info));
    info.network = network;
    info.dialing = dialing;
    info.conn_id = conn_id;
    assert_int_equal(vrev__addr_from_text(&info.target, host, port), 0);
    assert_int_equal(info.target.type, VREV_ADDR_DOMAIN);
    vrev__dispatch(&w->engine, &info, link);
}

static void dispatch(struct world *w, int network, const char *host, uint16_t port)
{
    dispatch_as(w, network, host, port, NULL, 0);
}

static void run_until_closed(struct world *w, size_t want)
{
    for (int i = 0; i < 300 && !w->closed && evbuffer_get_length(w->got) < want; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
}

/* What the TCP servers said to a link dispatched to name:port ("v4", "v6" or ""). */
static void tcp_via(int strategy, const char *name, char out[3])
{
    struct world w;
    world_init(&w, strategy);
    dispatch(&w, VREV_NET_TCP, name, w.tcp_port);
    run_until_closed(&w, 2);
    size_t n = evbuffer_get_length(w.got);
    assert_true(n <= 2);
    evbuffer_remove(w.got, out, n);
    out[n] = '\0';
    world_done(&w);
}

static void test_use_ipv4(void **state)
{
    (void)state;
    char who[3];
    tcp_via(VREV_DS_USE_IPV4, "dual.vrev.test", who);
    assert_string_equal(who, "v4");
}

static void test_use_ipv6(void **state)
{
    (void)state;
    char who[3];
    tcp_via(VREV_DS_USE_IPV6, "dual.vrev.test", who);
    assert_string_equal(who, "v6");
}

/* No address of the wanted family: the name is dialled as is (V2Ray's fallback). */
static void test_use_ipv6_falls_back_to_the_name(void **state)
{
    (void)state;
    char who[3];
    tcp_via(VREV_DS_USE_IPV6, "v4only.vrev.test", who);
    assert_string_equal(who, "v4");
}

/* UseIP picks one of all the answers at random: both families show up. */
static void test_use_ip_picks_at_random(void **state)
{
    (void)state;
    int seen[2] = {0, 0};
    for (int i = 0; i < 20 && !(seen[0] && seen[1]); i++) {
        char who[3];
        tcp_via(VREV_DS_USE_IP, "dual.vrev.test", who);
        assert_true(!strcmp(who, "v4") || !strcmp(who, "v6"));
        seen[who[1] == '6']++;
    }
    assert_true(seen[0] && seen[1]);
}

/* A name that does not exist: the link is closed (dial of the name fails too). */
static void test_unknown_name(void **state)
{
    (void)state;
    char who[3];
    tcp_via(VREV_DS_USE_IPV4, "nowhere.vrev.test", who);
    assert_string_equal(who, "");
}

/* UDP to a name (AsIs too): resolved, datagrams go to the address and back. */
static void test_udp_to_a_name(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, VREV_DS_AS_IS);
    dispatch(&w, VREV_NET_UDP, "v4only.vrev.test", w.udp_port);
    vrev__packet_put(bufferevent_get_output(w.client), (const uint8_t *)"datagram", 8);
    run_until_closed(&w, 10);
    assert_int_equal(evbuffer_get_length(w.got), 10);
    assert_memory_equal(evbuffer_pullup(w.got, -1),
                        "\x00\x08"
                        "datagram",
                        10);
    world_done(&w);
}

static void test_udp_to_an_unknown_name(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, VREV_DS_AS_IS);
    dispatch(&w, VREV_NET_UDP, "nowhere.vrev.test", w.udp_port);
    run_until_closed(&w, 1);
    assert_true(w.closed);
    assert_int_equal(evbuffer_get_length(w.got), 0);
    world_done(&w);
}

/* The engine stops while a name is being resolved: the query is cancelled, the link closed,
 * nothing leaks (ASan) and nothing is called afterwards; the answer ("shut down", from the
 * loop) does not touch the engine, whose memory may be gone by then (a bridge freed). */
static void test_stop_while_resolving(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, VREV_DS_USE_IPV4);
    dispatch(&w, VREV_NET_TCP, "slow.vrev.test", w.tcp_port);
    for (int i = 0; i < 300 && !w.held; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w.base, &tv);
        event_base_dispatch(w.base);
    }
    assert_non_null(w.held);
    vrev__engine_cleanup(&w.engine);
    memset(&w.engine, 0xa5, sizeof(w.engine)); /* gone */
    run_until_closed(&w, 1);
    assert_true(w.closed);
    memset(&w.engine, 0, sizeof(w.engine)); /* cleaned up: world_done's cleanup does nothing */
    world_done(&w);
}

/* --- a dial counted for its owner (a bridge's dialsPerTunnel) ------------------------------ */

static void dial_dropped(void *arg)
{
    (*(int *)arg)++;
}

struct line_seen {
    char line[256];
};

static void note_line(int level, const char *component, const char *message, void *user)
{
    (void)level, (void)component;
    struct line_seen *l = user;
    if (strstr(message, "not resolved"))
        snprintf(l->line, sizeof(l->line), "%s", message);
}

/* A name resolved first (UseIP*) is a dial in progress from the question on: the owner's
 * count holds it while the name is resolved and while the address is dialled, and lets go
 * once, at the end. A name that does not resolve says so with the link's id. */
static void test_resolving_counts_as_dialling(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, VREV_DS_USE_IPV4);
    int drops = 0;
    struct vrev__gauge *g = vrev__gauge_new(w.ctx);
    g->on_drop = dial_dropped;
    g->drop_arg = &drops;
    dispatch_as(&w, VREV_NET_TCP, "slow.vrev.test", w.tcp_port, g, 0);
    for (int i = 0; i < 300 && !w.held; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w.base, &tv);
        event_base_dispatch(w.base);
    }
    assert_non_null(w.held);
    assert_int_equal(g->n, 1); /* the question is out: counted */
    assert_int_equal(drops, 0);
    vrev__engine_cleanup(&w.engine); /* stopped while resolving: counted down, once */
    assert_int_equal(g->n, 0);
    assert_int_equal(drops, 1);
    assert_int_equal(g->refs, 1);
    vrev__gauge_unref(g);
    world_done(&w);

    world_init(&w, VREV_DS_USE_IPV4); /* resolved and dialled: counted down once, at the end */
    g = vrev__gauge_new(w.ctx);
    drops = 0;
    g->on_drop = dial_dropped;
    g->drop_arg = &drops;
    dispatch_as(&w, VREV_NET_TCP, "dual.vrev.test", w.tcp_port, g, 0);
    assert_int_equal(g->n, 1);
    run_until_closed(&w, 2);
    assert_memory_equal(evbuffer_pullup(w.got, -1), "v4", 2);
    assert_int_equal(g->n, 0);
    assert_int_equal(drops, 1);
    assert_int_equal(g->refs, 1);
    vrev__gauge_unref(g);
    world_done(&w);

    world_init(&w, VREV_DS_USE_IPV4);
    struct line_seen seen = {""};
    vrev_ctx_set_log(w.ctx, VREV_LOG_INFO, note_line, &seen);
    dispatch_as(&w, VREV_NET_TCP, "nowhere.vrev.test", w.tcp_port, NULL, 77);
    run_until_closed(&w, 1);
    assert_non_null(strstr(seen.line, "c77 nowhere.vrev.test: not resolved"));
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_use_ipv4),
        cmocka_unit_test(test_use_ipv6),
        cmocka_unit_test(test_use_ipv6_falls_back_to_the_name),
        cmocka_unit_test(test_use_ip_picks_at_random),
        cmocka_unit_test(test_unknown_name),
        cmocka_unit_test(test_udp_to_a_name),
        cmocka_unit_test(test_udp_to_an_unknown_name),
        cmocka_unit_test(test_stop_while_resolving),
        cmocka_unit_test(test_resolving_counts_as_dialling),
    };
    return cmocka_run_group_tests_name("resolve", tests, NULL, NULL);
}
