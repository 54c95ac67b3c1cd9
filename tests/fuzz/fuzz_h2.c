/* M9: the HTTP/2 carrier (lib/codec/h2.c over nghttp2), what an untrusted peer sends to an h2
 * listener or answers an h2 client.
 *
 * Input: byte 0 picks the role (bit 0: we are the client, with two streams open), whether the
 * client preface is prepended for a server (bit 1: the fuzzer need not find it), ticks (bit 2)
 * and the piece size (bits 3-7); the rest is fed in pieces. The callbacks act on the streams
 * as a glue would, driven by the input: send back, end, reset, consume. Oracles beyond the
 * sanitizers: errors are sticky; the output held stays bounded; no stream outlives the codec
 * (LeakSanitizer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/h2.h"
#include "core/core.h"

struct world {
    struct vrev__h2 *h2;
    const uint8_t *script;
    size_t script_len, at;
};

static uint8_t next(struct world *w)
{
    return w->script_len ? w->script[w->at++ % w->script_len] : 0;
}

static int on_open(void *u, int32_t sid, const struct vrev__h2_request *req)
{
    struct world *w = u;
    (void)req;
    uint8_t b = next(w);
    if (b % 7 == 0)
        return VREV_ERR_STATE;
    if (b % 5 == 0)
        vrev__h2_send(w->h2, sid, (const uint8_t *)"hello", 5);
    return 0;
}

static int on_data(void *u, int32_t sid, const uint8_t *p, size_t n)
{
    struct world *w = u;
    uint8_t b = next(w);
    if (b & 1)
        vrev__h2_consumed(w->h2, sid, n);
    if (b & 2)
        vrev__h2_send(w->h2, sid, p, n);
    if (b == 0xff)
        return VREV_ERR_NOMEM;
    return 0;
}

static void on_end(void *u, int32_t sid)
{
    struct world *w = u;
    if (next(w) & 1)
        vrev__h2_end(w->h2, sid);
    else
        vrev__h2_reset(w->h2, sid);
}

static void on_close(void *u, int32_t sid, int err)
{
    (void)u, (void)sid, (void)err;
}

static const struct vrev__h2_callbacks CB = {
    .on_open = on_open, .on_data = on_data, .on_end = on_end, .on_close = on_close};
static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
static vrev_ctx *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!ctx && vrev_ctx_new(&ctx, NULL) != 0)
        abort();
    const char *hosts[] = {"h2.example.com"};
    struct vrev__h2_opts o = {.client = data[0] & 1,
                              .path = "/h2",
                              .authority = "h2.example.com",
                              .hosts = hosts,
                              .n_hosts = 1};
    struct world w = {.script = data, .script_len = size};
    if (vrev__h2_new(ctx, &w.h2, &o, &CB, &w) != 0)
        abort();
    int32_t sid;
    if (o.client && (vrev__h2_open(w.h2, &sid) != 0 || vrev__h2_open(w.h2, &sid) != 0 ||
                     vrev__h2_send(w.h2, sid, (const uint8_t *)"up", 2) != 0))
        abort();
    int rc = 0;
    if (!o.client && (data[0] & 2))
        rc = vrev__h2_feed(w.h2, (const uint8_t *)PREFACE, sizeof(PREFACE) - 1);
    size_t step = (size_t)(data[0] >> 3) * 8 + 1;
    for (size_t off = 1; rc == 0 && off < size; off += step) {
        if ((data[0] & 4) && off % 128 == 1)
            vrev__h2_tick(w.h2);
        rc = vrev__h2_feed(w.h2, data + off, size - off < step ? size - off : step);
        const uint8_t *p;
        size_t n = vrev__h2_pending(w.h2, &p);
        if (n > VREV_H2_OUT_CHUNK + (1u << 20))
            abort();
        vrev__h2_consume(w.h2, n);
    }
    if (rc < 0 && vrev__h2_feed(w.h2, data, 1) != rc)
        abort();
    (void)vrev__h2_done(w.h2);
    vrev__h2_free(w.h2);
    return 0;
}
