/* A peer for tests/e2e/test_carrier_layers.py: the carrier layers of lib/net (ws both roles,
 * h2 client) on libevent, against the real V2Ray 4.34. Loopback only.
 *
 *   layer_peer ws-server             listen on 127.0.0.1 (port printed as "port N"), put the ws
 *                                    server layer (path /ray) on each connection, echo, until
 *                                    killed
 *   layer_peer ws-client PORT BYTES  the ws client layer (Host ws.example.com, path /ray): send
 *                                    BYTES of a pattern, check the echo
 *   layer_peer h2-client PORT BYTES  the h2 client layer with prior knowledge (host
 *                                    h2.example.com, path /h2): the same
 *   layer_peer h2-server TLSDIR      listen, TLS (TLSDIR/server.crt, ALPN h2) then the h2
 *                                    server (host h2.example.com, path /h2): echo every stream
 *
 * Exit status 0 when the exchange checked out ("ok N bytes echoed"); a message on stderr
 * otherwise. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/carrier_layer.h"
#include "net/net.h"
#include "net/tls.h"

static struct event_base *base;
static vrev_ctx *ctx;
static size_t total, sent, received;
static int status = 1;

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 12));
}

static void done(int rc, const char *why)
{
    if (why)
        fprintf(stderr, "layer_peer: %s\n", why);
    status = rc;
    event_base_loopbreak(base);
}

/* --- client --------------------------------------------------------------------------------- */

static void client_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    uint8_t chunk[16384];
    struct evbuffer *out = bufferevent_get_output(bev);
    while (sent < total && evbuffer_get_length(out) < (256u << 10)) {
        size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(sent + i);
        evbuffer_add(out, chunk, n);
        sent += n;
    }
}

static void client_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    uint8_t chunk[16384];
    int n;
    while ((n = evbuffer_remove(bufferevent_get_input(bev), chunk, sizeof(chunk))) > 0) {
        for (int i = 0; i < n; i++)
            if (chunk[i] != pattern(received + (size_t)i)) {
                fprintf(stderr, "byte %zu differs\n", received + (size_t)i);
                done(1, NULL);
                return;
            }
        received += (size_t)n;
    }
    if (received == total) {
        printf("ok %zu bytes echoed\n", total);
        done(0, NULL);
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    client_read(bev, arg);
    if (status != 0)
        done(1, what & BEV_EVENT_EOF ? "end before the whole echo" : "error");
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    done(1, "timeout");
}

static int client(const struct vrev__carrier_opts *o, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        return 1;
    }
    evutil_make_socket_nonblocking(fd);
    int err;
    struct bufferevent *bev =
        vrev__carrier_client(ctx, vrev__bev_socket(ctx, fd), o, "127.0.0.1", &err);
    if (!bev) {
        fprintf(stderr, "layer: %s\n", vrev_strerror(err));
        return 1;
    }
    bufferevent_setcb(bev, client_read, client_write, client_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    client_write(bev, NULL);
    struct event *t = evtimer_new(base, on_timeout, NULL);
    struct timeval tv = {30, 0};
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    event_free(t);
    bufferevent_free(bev);
    return status;
}

/* --- server --------------------------------------------------------------------------------- */

static const struct vrev__carrier_opts ws_server_opts = {.kind = VREV_CARRIER_WS, .path = "/ray"};

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what, (void)arg;
    bufferevent_free(bev);
}

static void on_accept(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    (void)peer, (void)len, (void)user;
    int err;
    struct bufferevent *bev =
        vrev__carrier_server(ctx, vrev__bev_socket(ctx, fd), &ws_server_opts, &err);
    if (!bev)
        return;
    bufferevent_setcb(bev, echo_read, NULL, echo_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct vrev__tls_ctx *tls;
static const char *const h2_host[] = {"h2.example.com"};
static const struct vrev__carrier_opts h2_server_opts = {
    .kind = VREV_CARRIER_H2, .path = "/h2", .hosts = h2_host, .n_hosts = 1};

static void on_stream(struct bufferevent *stream, const struct vrev__h2_request *req, void *user)
{
    (void)req, (void)user;
    bufferevent_setcb(stream, echo_read, NULL, echo_event, NULL);
    bufferevent_enable(stream, EV_READ | EV_WRITE);
}

static void on_accept_h2(evutil_socket_t fd, const struct sockaddr *peer, int len, void *user)
{
    (void)peer, (void)len, (void)user;
    int err;
    struct bufferevent *bev = vrev__tls_wrap(tls, vrev__bev_socket(ctx, fd), NULL, 0, &err);
    if (bev)
        vrev__h2_serve(ctx, bev, &h2_server_opts, 0, 0, on_stream, NULL, NULL, &err);
}

static int server(const char *tls_dir)
{
    struct vrev__listener *l;
    if (tls_dir) {
        char crt[512], key[512], err[256];
        static const char *const alpn[] = {"h2"};
        snprintf(crt, sizeof(crt), "%s/server.crt", tls_dir);
        snprintf(key, sizeof(key), "%s/server.key", tls_dir);
        struct vrev__tls_server_opts so = {
            .cert_file = crt, .key_file = key, .alpn = alpn, .n_alpn = 1};
        if (vrev__tls_server_ctx_new(ctx, &so, &tls, err, sizeof(err)) < 0) {
            fprintf(stderr, "tls: %s\n", err);
            return 1;
        }
    }
    if (vrev__listener_new(ctx, "127.0.0.1", 0, tls_dir ? on_accept_h2 : on_accept, NULL, &l) < 0)
        return 1;
    printf("port %u\n", vrev__listener_port(l));
    fflush(stdout);
    event_base_dispatch(base);
    vrev__listener_free(l);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const ws_host[] = {"ws.example.com"};
    const struct vrev__carrier_opts ws = {
        .kind = VREV_CARRIER_WS, .path = "/ray", .hosts = ws_host, .n_hosts = 1};
    const struct vrev__carrier_opts h2 = {
        .kind = VREV_CARRIER_H2, .path = "/h2", .hosts = h2_host, .n_hosts = 1};
    base = event_base_new();
    if (!base || vrev_ctx_new(&ctx, base) < 0)
        return 1;
    int rc = 2;
    if (argc == 2 && strcmp(argv[1], "ws-server") == 0)
        rc = server(NULL);
    else if (argc == 3 && strcmp(argv[1], "h2-server") == 0)
        rc = server(argv[2]);
    else if (argc == 4 &&
             (strcmp(argv[1], "ws-client") == 0 || strcmp(argv[1], "h2-client") == 0)) {
        total = strtoull(argv[3], NULL, 10);
        rc = client(argv[1][0] == 'w' ? &ws : &h2, atoi(argv[2]));
    } else {
        fprintf(stderr, "usage: layer_peer ws-server | h2-server TLSDIR | ws-client PORT BYTES | "
                        "h2-client PORT BYTES\n");
    }
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred callbacks release their references */
    event_base_free(base);                  /* runs libevent's deferred frees, using the ctx */
    vrev_ctx_free(ctx);
    return rc;
}
