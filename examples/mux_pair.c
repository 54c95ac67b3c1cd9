/* mux_pair: two Mux.Cool codecs talking to each other in memory.
 *
 * A client (a portal, in a reverse tunnel) opens a TCP session and sends a request; the bytes
 * go to a server (a bridge) that answers; the client ends the session. No sockets: the codecs
 * are sans-IO, so moving bytes is the caller's job (here, a memcpy through pending/consume).
 *
 * Build against an installed libvrev:  cc mux_pair.c $(pkg-config --cflags --libs libvrev)
 */
#include <stdio.h>
#include <string.h>

#include <vrev.h>

static int server_open(vrev_mux *mux, uint16_t sid, const vrev_mux_frame *frame, void *user)
{
    (void)mux, (void)user;
    char target[VREV_MUX_TARGET_MAX];
    vrev_mux_frame_target(frame, target, sizeof(target));
    printf("server: session %u opened to %s\n", sid, target);
    return 0;
}

static int server_data(vrev_mux *mux, uint16_t sid, const uint8_t *data, size_t len, void *user)
{
    (void)user;
    printf("server: session %u got %zu bytes: %.*s\n", sid, len, (int)len, (const char *)data);
    static const char reply[] = "HTTP/1.0 200 OK\r\n\r\nhello";
    return vrev_mux_send(mux, sid, (const uint8_t *)reply, sizeof(reply) - 1);
}

static int server_close(vrev_mux *mux, uint16_t sid, int error, void *session_user, void *user)
{
    (void)mux, (void)session_user, (void)user;
    printf("server: session %u ended%s\n", sid, error ? " with error" : "");
    return 0;
}

static int client_data(vrev_mux *mux, uint16_t sid, const uint8_t *data, size_t len, void *user)
{
    (void)mux, (void)user;
    printf("client: session %u got %zu bytes\n", sid, len);
    (void)data;
    return 0;
}

/* Move everything `from` has queued into `to`, as a socket would. */
static int pump(vrev_mux *from, vrev_mux *to)
{
    const uint8_t *p;
    size_t n = vrev_mux_pending(from, &p);
    int rc = n ? vrev_mux_feed(to, p, n, NULL) : 0;
    vrev_mux_consume(from, n);
    return rc;
}

int main(void)
{
    vrev_ctx *ctx = NULL;
    vrev_mux *client = NULL, *server = NULL;
    vrev_mux_callbacks ccb = {.abi = VREV_MUX_CALLBACKS_ABI, .on_data = client_data};
    vrev_mux_callbacks scb = {.abi = VREV_MUX_CALLBACKS_ABI,
                              .on_open = server_open,
                              .on_data = server_data,
                              .on_close = server_close};
    static const char request[] = "GET / HTTP/1.0\r\n\r\n";
    uint16_t sid;
    int rc = vrev_ctx_new(&ctx, NULL);
    if (rc == 0)
        rc = vrev_mux_new(&client, ctx, VREV_MUX_CLIENT, &ccb, NULL);
    if (rc == 0)
        rc = vrev_mux_new(&server, ctx, VREV_MUX_SERVER, &scb, NULL);
    if (rc == 0)
        rc = vrev_mux_open(client, VREV_NET_TCP, "127.0.0.1", 80, (const uint8_t *)request,
                           sizeof(request) - 1, &sid);
    if (rc == 0)
        rc = pump(client, server); /* New + request */
    if (rc == 0)
        rc = pump(server, client); /* Keep + reply */
    if (rc == 0)
        rc = vrev_mux_end(client, sid, 0);
    if (rc == 0)
        rc = pump(client, server); /* End */
    if (rc < 0)
        fprintf(stderr, "mux_pair: %s (%s)\n", vrev_strerror(rc), vrev_err_name(rc));
    else
        printf("libvrev %s: %u session(s) left\n", vrev_version_string(),
               vrev_mux_active_sessions(server));
    vrev_mux_free(client);
    vrev_mux_free(server);
    vrev_ctx_free(ctx);
    return rc < 0 ? 1 : 0;
}
