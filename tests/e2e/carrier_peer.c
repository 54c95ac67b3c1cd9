/* A peer for tests/e2e/test_carrier_codecs.py: drives the sans-IO codecs lib/codec/http1, ws
 * and h2 over a plain non-blocking socket and poll(), so that they meet the real V2Ray 4.34
 * before the event-loop glue of lib/net exists. Loopback only.
 *
 *   carrier_peer ws-server             listen on 127.0.0.1 (port printed as "port N"), answer
 *                                      upgrades for /ray, echo every payload, until killed
 *   carrier_peer ws-client PORT BYTES  upgrade (Host ws.example.com, path /ray), send BYTES
 *                                      of a pattern, check the echo, close 1000
 *   carrier_peer h2-server             listen, serve h2 (host h2.example.com, path /h2) with
 *                                      prior knowledge, echo every stream, until killed
 *   carrier_peer h2-client PORT BYTES  h2 with prior knowledge, one stream, BYTES up, check
 *                                      the echo, end it with RST_STREAM CANCEL as V2Ray does
 *
 * Exit status 0 when the exchange checked out; a message on stderr otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/h2.h"
#include "codec/http1.h"
#include "codec/ws.h"
#include "crypto/crypto.h"

#define HIGH (256u << 10) /* stop sending above this much held output */

static vrev_ctx *ctx;

static void die(const char *what, int rc)
{
    fprintf(stderr, "carrier_peer: %s: %d %s\n", what, rc, rc < 0 ? vrev_strerror(rc) : "");
    exit(1);
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 8) * 13 + (i >> 16));
}

/* --- one connection ------------------------------------------------------------------------ */

struct peer {
    int fd;
    bool eof, finished;
    size_t total, sent, received; /* clients: the pattern's bytes */
    /* ws */
    struct vrev__http1_reader *reader;
    struct vrev__ws *ws;
    char pre[1024]; /* the handshake's own bytes, written before any frame */
    size_t pre_len, pre_off;
    char key[VREV_WS_KEY_LEN + 1];
    bool upgraded;
    /* h2 */
    struct vrev__h2 *h2;
    int32_t sid;
};

static int check_pattern(struct peer *pr, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(pr->received + i))
            die("echo differs at byte", (int)(pr->received + i));
    pr->received += n;
    return 0;
}

/* ws: a server echoes, a client checks. */
static int ws_data(void *u, const uint8_t *p, size_t n)
{
    struct peer *pr = u;
    if (pr->total == 0)
        return vrev__ws_send(pr->ws, p, n);
    return check_pattern(pr, p, n);
}

static void ws_server_handshake(struct peer *pr, const uint8_t *p, size_t n)
{
    size_t used;
    int rc = vrev__http1_reader_feed(pr->reader, p, n, &used);
    if (rc == 0)
        return;
    struct vrev__ws_request w = {0};
    int len = rc < 0 ? vrev__http1_write_unreadable(pr->pre, sizeof(pr->pre), rc) : 0;
    if (rc > 0) {
        struct vrev__ws_server_opts o = {.path = "/ray"};
        int status = vrev__ws_check_request(&pr->reader->head, &o, &w);
        len = status == 101 ? vrev__ws_write_101(pr->pre, sizeof(pr->pre), &w)
                            : vrev__http1_write_error(pr->pre, sizeof(pr->pre), status, NULL);
        pr->upgraded = status == 101;
    }
    if (len < 0)
        die("answer", len);
    pr->pre_len = (size_t)len;
    if (!pr->upgraded)
        pr->finished = true; /* after the error answer */
    else if (used < n && (rc = vrev__ws_feed(pr->ws, p + used, n - used)) < 0)
        die("ws feed", rc);
}

static void ws_client_handshake(struct peer *pr, const uint8_t *p, size_t n)
{
    size_t used;
    int rc = vrev__http1_reader_feed(pr->reader, p, n, &used);
    if (rc == 0)
        return;
    if (rc < 0 || (rc = vrev__ws_check_response(&pr->reader->head, pr->key)) < 0)
        die("101 answer", rc);
    pr->upgraded = true;
    if (used < n && (rc = vrev__ws_feed(pr->ws, p + used, n - used)) < 0)
        die("ws feed", rc);
}

static void ws_input(struct peer *pr, const uint8_t *p, size_t n)
{
    if (!pr->upgraded) {
        if (pr->total)
            ws_client_handshake(pr, p, n);
        else
            ws_server_handshake(pr, p, n);
        return;
    }
    int rc = vrev__ws_feed(pr->ws, p, n);
    if (rc < 0)
        die("ws feed", rc);
}

static size_t ws_output(struct peer *pr, const uint8_t **p)
{
    if (pr->pre_off < pr->pre_len) {
        *p = (const uint8_t *)pr->pre + pr->pre_off;
        return pr->pre_len - pr->pre_off;
    }
    return pr->upgraded ? vrev__ws_pending(pr->ws, p) : 0;
}

static void ws_written(struct peer *pr, size_t n)
{
    if (pr->pre_off < pr->pre_len)
        pr->pre_off += n;
    else
        vrev__ws_consume(pr->ws, n);
}

static void ws_step(struct peer *pr)
{
    uint8_t chunk[16384];
    while (pr->upgraded && pr->total && pr->sent < pr->total && vrev__ws_buffered(pr->ws) < HIGH) {
        size_t k = pr->total - pr->sent < sizeof(chunk) ? pr->total - pr->sent : sizeof(chunk);
        for (size_t i = 0; i < k; i++)
            chunk[i] = pattern(pr->sent + i);
        int rc = vrev__ws_send(pr->ws, chunk, k);
        if (rc < 0)
            die("ws send", rc);
        pr->sent += k;
    }
    if (pr->total && pr->received == pr->total && vrev__ws_close(pr->ws, 1000) == 0 &&
        vrev__ws_done(pr->ws))
        pr->finished = true;
    if (!pr->total && pr->upgraded && vrev__ws_peer_closed(pr->ws) && vrev__ws_done(pr->ws))
        pr->finished = true;
}

/* h2: a server echoes each stream, a client checks its one stream. */
static int h2_open(void *u, int32_t sid, const struct vrev__h2_request *req)
{
    (void)u, (void)sid, (void)req;
    return 0;
}

static int h2_data(void *u, int32_t sid, const uint8_t *p, size_t n)
{
    struct peer *pr = u;
    vrev__h2_consumed(pr->h2, sid, n);
    if (pr->total == 0)
        return vrev__h2_send(pr->h2, sid, p, n);
    return check_pattern(pr, p, n);
}

static void h2_end(void *u, int32_t sid)
{
    struct peer *pr = u;
    if (pr->total == 0)
        vrev__h2_end(pr->h2, sid);
}

static void h2_close(void *u, int32_t sid, int err)
{
    struct peer *pr = u;
    if (pr->total && err != VREV_ERR_H2_RESET)
        die("stream closed early", err);
    (void)sid;
}

static const struct vrev__h2_callbacks H2_CB = {
    .on_open = h2_open, .on_data = h2_data, .on_end = h2_end, .on_close = h2_close};

static void h2_step(struct peer *pr)
{
    uint8_t chunk[16384];
    while (pr->total && pr->sent < pr->total && vrev__h2_buffered(pr->h2, pr->sid) < HIGH) {
        size_t k = pr->total - pr->sent < sizeof(chunk) ? pr->total - pr->sent : sizeof(chunk);
        for (size_t i = 0; i < k; i++)
            chunk[i] = pattern(pr->sent + i);
        int rc = vrev__h2_send(pr->h2, pr->sid, chunk, k);
        if (rc < 0)
            die("h2 send", rc);
        pr->sent += k;
    }
    if (pr->total && pr->received == pr->total && pr->sid) {
        vrev__h2_reset(pr->h2, pr->sid);
        pr->sid = 0;
    }
    if (pr->total && !pr->sid) {
        const uint8_t *p;
        pr->finished = vrev__h2_pending(pr->h2, &p) == 0;
    }
}

/* --- the loop ------------------------------------------------------------------------------ */

static void run(struct peer *pr)
{
    static uint8_t buf[65536];
    while (!pr->finished) {
        const uint8_t *out;
        size_t n = pr->h2 ? vrev__h2_pending(pr->h2, &out) : ws_output(pr, &out);
        struct pollfd p = {pr->fd, (short)((pr->eof ? 0 : POLLIN) | (n ? POLLOUT : 0)), 0};
        if (!p.events)
            break;
        if (poll(&p, 1, 20000) <= 0)
            die("poll timed out", -errno);
        if (p.revents & POLLOUT) {
            ssize_t w = write(pr->fd, out, n);
            if (w < 0 && errno != EAGAIN)
                die("write", -errno);
            if (w > 0 && pr->h2)
                vrev__h2_consume(pr->h2, (size_t)w);
            else if (w > 0)
                ws_written(pr, (size_t)w);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(pr->fd, buf, sizeof(buf));
            if (r == 0 || (r < 0 && errno != EAGAIN))
                pr->eof = true;
            int rc = 0;
            if (r > 0 && pr->h2)
                rc = vrev__h2_feed(pr->h2, buf, (size_t)r);
            else if (r > 0)
                ws_input(pr, buf, (size_t)r);
            if (rc < 0)
                die("h2 feed", rc);
        }
        if (pr->h2)
            h2_step(pr);
        else
            ws_step(pr);
        if (pr->eof && !pr->total)
            break; /* a server's peer went away */
    }
    if (pr->total && pr->received != pr->total)
        die("echo incomplete at", (int)pr->received);
}

static void peer_init(struct peer *pr, int fd, bool ws, size_t total)
{
    memset(pr, 0, sizeof(*pr));
    pr->fd = fd;
    pr->total = total;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int rc;
    if (ws) {
        pr->reader = malloc(sizeof(*pr->reader));
        if (!pr->reader)
            die("malloc", VREV_ERR_NOMEM);
        vrev__http1_reader_init(pr->reader, total != 0);
        struct vrev__ws_opts o = {.client = total != 0};
        rc = vrev__ws_new(ctx, &pr->ws, &o, ws_data, pr);
    } else {
        const char *hosts[] = {"h2.example.com"};
        struct vrev__h2_opts o = {.client = total != 0,
                                  .path = "/h2",
                                  .authority = "h2.example.com",
                                  .hosts = hosts,
                                  .n_hosts = 1};
        rc = vrev__h2_new(ctx, &pr->h2, &o, &H2_CB, pr);
        if (rc == 0 && total)
            rc = vrev__h2_open(pr->h2, &pr->sid);
    }
    if (rc < 0)
        die("codec", rc);
}

static void peer_free(struct peer *pr)
{
    close(pr->fd);
    vrev__ws_free(pr->ws);
    vrev__h2_free(pr->h2);
    free(pr->reader);
}

static _Noreturn void serve(bool ws)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0)
        die("listen", -errno);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) { /* one connection at a time is enough for the tests */
        int fd = accept(s, NULL, NULL);
        if (fd < 0)
            die("accept", -errno);
        struct peer pr;
        peer_init(&pr, fd, ws, 0);
        run(&pr);
        peer_free(&pr);
    }
}

static int connect_to(int port, bool ws, size_t total)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect", -errno);
    struct peer pr;
    peer_init(&pr, fd, ws, total);
    if (ws) {
        uint8_t key[16];
        vrev__random_bytes(key, sizeof(key));
        int len = vrev__ws_write_request(pr.pre, sizeof(pr.pre), "ws.example.com", "/ray", NULL, 0,
                                         key, pr.key);
        if (len < 0)
            die("request", len);
        pr.pre_len = (size_t)len;
    }
    run(&pr);
    peer_free(&pr);
    printf("ok %zu bytes echoed\n", total);
    return 0;
}

int main(int argc, char **argv)
{
    if (vrev_ctx_new(&ctx, NULL) != 0)
        die("ctx", VREV_ERR_NOMEM);
    if (argc == 2 && strcmp(argv[1], "ws-server") == 0)
        serve(true);
    if (argc == 2 && strcmp(argv[1], "h2-server") == 0)
        serve(false);
    if (argc == 4 && strcmp(argv[1], "ws-client") == 0)
        return connect_to(atoi(argv[2]), true, strtoul(argv[3], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "h2-client") == 0)
        return connect_to(atoi(argv[2]), false, strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: carrier_peer ws-server|h2-server|ws-client PORT BYTES|"
                    "h2-client PORT BYTES\n");
    return 2;
}
