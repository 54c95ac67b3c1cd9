/* embed_portal: a libvrev portal inside a program's own libevent loop, no JSON.
 *
 *   embed_portal TUNNEL_HOST:PORT PUBLIC_HOST:PORT UUID
 *
 * Bridges connect to TUNNEL; connections to PUBLIC are carried to the bridge's "default"
 * target. Build: cc embed_portal.c $(pkg-config --cflags --libs libvrev libevent) */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>

#include <vrev.h>

static void on_event(int event, const char *name, uint64_t up, uint64_t down, void *user)
{
    (void)name, (void)up, (void)down, (void)user;
    if (event == VREV_EVENT_TUNNEL_UP)
        printf("portal: a bridge is connected\n");
    else if (event == VREV_EVENT_TUNNEL_DOWN)
        printf("portal: a bridge went away\n");
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
        fprintf(stderr, "usage: %s TUNNEL_HOST:PORT PUBLIC_HOST:PORT UUID\n", argv[0]);
        return 2;
    }
    struct event_base *base = event_base_new();
    vrev_ctx *ctx = NULL;
    vrev_tunnel_opts *o = NULL;
    vrev_portal *portal = NULL;
    char err[256] = "";
    int rc = vrev_ctx_new(&ctx, base);
    if (rc == 0)
        rc = vrev_tunnel_opts_new(&o, ctx);
    if (rc == 0)
        rc = vrev_tunnel_opts_set_listen(o, argv[1]);
    if (rc == 0)
        rc = vrev_tunnel_opts_add_public(o, argv[2], NULL);
    if (rc == 0)
        rc = vrev_tunnel_opts_set_id(o, argv[3]);
    if (rc == 0)
        rc = vrev_portal_new(&portal, ctx, o, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "embed_portal: %s\n", err[0] ? err : vrev_tunnel_opts_error(o));
    } else {
        vrev_portal_set_event_cb(portal, on_event, NULL);
        struct event *sig = evsignal_new(base, SIGTERM, on_signal, base);
        evsignal_add(sig, NULL);
        printf("portal: tunnel port %u, public port %u\n", vrev_portal_tunnel_port(portal),
               vrev_portal_public_port(portal, 0));
        fflush(stdout);
        event_base_dispatch(base);
        printf("portal: %llu sessions, %llu bytes up, %llu bytes down\n",
               (unsigned long long)vrev_portal_counter(portal, VREV_COUNTER_SESSIONS),
               (unsigned long long)vrev_portal_counter(portal, VREV_COUNTER_BYTES_UP),
               (unsigned long long)vrev_portal_counter(portal, VREV_COUNTER_BYTES_DOWN));
        event_free(sig);
    }
    vrev_portal_free(portal);
    vrev_tunnel_opts_free(o);
    vrev_ctx_close_lingering(ctx);          /* TLS connections still finishing their close */
    event_base_loop(base, EVLOOP_NONBLOCK); /* let libevent finish closing */
    event_base_free(base);
    vrev_ctx_free(ctx);
    return rc < 0 ? 1 : 0;
}
