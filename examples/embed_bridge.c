/* embed_bridge: a libvrev bridge inside a program's own libevent loop, no JSON.
 *
 *   embed_bridge PORTAL_HOST:PORT LOCAL_HOST:PORT UUID
 *   embed_bridge PORTAL_HOST:PORT - UUID
 *
 * Keeps a tunnel to the portal and delivers its sessions to LOCAL (the "default" target),
 * and to nothing else. With "-" for LOCAL it serves them itself, in-process (a vrev_stream
 * each, no socket): a tiny HTTP server answering every request "hello from embed_bridge".
 * Build: cc embed_bridge.c $(pkg-config --cflags --libs libvrev libevent) */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vrev.h>

#define HELLO "hello from embed_bridge\n"

/* One request per connection: read up to the blank line ending its header, answer, close. */
struct http_session {
    char head[4096];
    size_t len;
};

static void on_stream(vrev_stream *s, int event, int err, void *user)
{
    struct http_session *h = user;
    (void)err;
    if (event == VREV_STREAM_READABLE) {
        int n = vrev_stream_read(s, h->head + h->len, sizeof(h->head) - 1 - h->len);
        h->len += n > 0 ? (size_t)n : 0;
        h->head[h->len] = '\0';
        if (!strstr(h->head, "\r\n\r\n") && h->len < sizeof(h->head) - 1)
            return; /* more of the header to come */
        char reply[256];
        int k = snprintf(reply, sizeof(reply),
                         "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                         (int)strlen(HELLO), HELLO);
        vrev_stream_write(s, reply, (size_t)k);
        vrev_stream_close(s, 0); /* the reply still goes out, then the end */
    } else if (event == VREV_STREAM_END || event == VREV_STREAM_ERROR) {
        vrev_stream_close(s, event == VREV_STREAM_ERROR); /* no request came */
    } else {
        return;
    }
    free(h);
}

/* The handler's accept callback: each session arrives as a vrev_stream. */
static void on_session(vrev_stream *s, const char *name, void *user)
{
    (void)name, (void)user;
    struct http_session *h = calloc(1, sizeof(*h));
    if (!h || vrev_stream_set_cb(s, on_stream, h) < 0) {
        free(h);
        vrev_stream_close(s, 1);
    }
}

static void on_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)name, (void)up, (void)down, (void)user;
    if (event == VREV_EVENT_TUNNEL_UP)
        printf("bridge: tunnel up\n");
    else if (event == VREV_EVENT_TUNNEL_DOWN)
        printf("bridge: tunnel down (it will be redialled)\n");
    fflush(stdout);
}

static void on_signal(evutil_socket_t sig, short what, void *base)
{
    (void)sig, (void)what;
    event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORTAL_HOST:PORT LOCAL_HOST:PORT|- UUID\n", argv[0]);
        return 2;
    }
    struct event_base *base = event_base_new();
    vrev_ctx *ctx = NULL;
    vrev_tunnel_opts *o = NULL;
    vrev_bridge *bridge = NULL;
    char err[256] = "";
    int rc = vrev_ctx_new(&ctx, base);
    if (rc == 0)
        rc = vrev_tunnel_opts_new(&o, ctx);
    if (rc == 0)
        rc = vrev_tunnel_opts_set_portal(o, argv[1]);
    if (rc == 0 && strcmp(argv[2], "-") == 0)
        rc = vrev_tunnel_opts_add_handler(o, NULL, on_session, NULL);
    else if (rc == 0)
        rc = vrev_tunnel_opts_add_target(o, NULL, argv[2]);
    if (rc == 0)
        rc = vrev_tunnel_opts_set_id(o, argv[3]);
    if (rc == 0)
        rc = vrev_bridge_new(&bridge, ctx, o, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "embed_bridge: %s\n", err[0] ? err : vrev_tunnel_opts_error(o));
    } else {
        vrev_bridge_set_event_cb(bridge, on_event, NULL);
        vrev_bridge_start(bridge);
        struct event *sig = evsignal_new(base, SIGTERM, on_signal, base);
        evsignal_add(sig, NULL);
        event_base_dispatch(base);
        printf("bridge: %llu sessions\n",
               (unsigned long long)vrev_bridge_counter(bridge, VREV_COUNTER_SESSIONS));
        event_free(sig);
    }
    vrev_bridge_free(bridge);
    vrev_tunnel_opts_free(o);
    vrev_ctx_close_lingering(ctx); /* TLS connections still finishing their close */
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    vrev_ctx_free(ctx);
    return rc < 0 ? 1 : 0;
}
