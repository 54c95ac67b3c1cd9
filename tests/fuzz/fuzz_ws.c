/* M9: WebSocket frames (lib/codec/ws.c over wslay), what an untrusted peer sends once the
 * upgrade is done, in either role.
 *
 * Input: byte 0 picks the role (bit 0: we are the client), a small max_frame (bit 1), ticks
 * (bit 2) and the piece size (bits 3-7); the rest is fed to the codec. Then the payload it
 * delivered goes back through a second pair of codecs (our client to our server) and must
 * arrive unchanged. Oracles beyond the sanitizers: no more payload out than bytes in; errors
 * are sticky and leave a close frame pending; a stream that ended refuses sends; the output
 * held stays bounded by what the input could ask for. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ws.h"
#include "core/core.h"

struct sink {
    uint8_t buf[1 << 16];
    size_t len;
};

static int take(void *u, const uint8_t *p, size_t n)
{
    struct sink *s = u;
    if (n > sizeof(s->buf) - s->len)
        abort(); /* more payload than input */
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static struct sink got, echoed;
static vrev_ctx *ctx;

static void round_trip(const uint8_t *p, size_t n)
{
    struct vrev__ws *c, *s;
    if (vrev__ws_new(ctx, &c, &(struct vrev__ws_opts){.client = true, .send_frame = 1000}, take,
                     &echoed) != 0)
        abort();
    if (vrev__ws_new(ctx, &s, NULL, take, &echoed) != 0)
        abort();
    echoed.len = 0;
    if (vrev__ws_send(c, p, n) != 0 || vrev__ws_close(c, 1000) != 0)
        abort();
    const uint8_t *w;
    size_t k = vrev__ws_pending(c, &w);
    if (vrev__ws_feed(s, w, k) != 0 || echoed.len != n || memcmp(echoed.buf, p, n) != 0 ||
        !vrev__ws_peer_closed(s))
        abort();
    vrev__ws_free(c);
    vrev__ws_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > sizeof(got.buf))
        return 0;
    if (!ctx && vrev_ctx_new(&ctx, NULL) != 0)
        abort();
    struct vrev__ws_opts o = {.client = data[0] & 1, .max_frame = (data[0] & 2) ? 64 : 0};
    size_t step = (size_t)(data[0] >> 3) + 1;
    struct vrev__ws *ws;
    got.len = 0;
    if (vrev__ws_new(ctx, &ws, &o, take, &got) != 0)
        abort();
    int rc = 0;
    for (size_t off = 1; off < size; off += step) {
        if ((data[0] & 4) && off % 64 == 1)
            vrev__ws_tick(ws);
        rc = vrev__ws_feed(ws, data + off, size - off < step ? size - off : step);
        if (rc < 0)
            break;
    }
    const uint8_t *w;
    size_t out = vrev__ws_pending(ws, &w);
    if (out > 4 * size + 64) /* pongs echo what came in (masked: +4 bytes each), a close */
        abort();
    if (rc < 0) {
        if (vrev__ws_feed(ws, data, 1) != rc || out < 2)
            abort();
    }
    if ((rc < 0 || vrev__ws_peer_closed(ws)) && vrev__ws_send(ws, data, 1) != VREV_ERR_STATE)
        abort();
    vrev__ws_consume(ws, out);
    vrev__ws_free(ws);
    round_trip(got.buf, got.len);
    return 0;
}
