/* F1: the Mux.Cool decoder, both roles, with input split at points chosen by the input, with
 * whole frames and with stream payload in pieces (vrev__mux_set_partial_data).
 *
 * Input: byte 0 = role (bit 0) and split seed; the rest is the stream. Oracles beyond the
 * sanitizers: feeding the stream whole and feeding it in random pieces must give the same
 * events, the same bytes per session and the same error at the same offset; with pieces, the
 * same as with whole frames whenever the stream ends at a frame boundary or in an error; the
 * live-session count never exceeds the cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mux_internal.h"
#include "vrev.h"

struct trace {
    uint64_t hash;
    unsigned events;
    int data_sid; /* the session the last data was for, -1 after any other event */
};

static void mix_bytes(struct trace *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        t->hash = (t->hash ^ b[i]) * 0x100000001b3ull;
}

static void mix(struct trace *t, const void *p, size_t n)
{
    mix_bytes(t, p, n);
    t->events++;
    t->data_sid = -1;
}

static int on_frame(vrev_mux *m, const vrev_mux_frame *f, void *user)
{
    (void)m;
    uint8_t h[8] = {(uint8_t)(vrev_mux_frame_sid(f) >> 8), (uint8_t)vrev_mux_frame_sid(f),
                    (uint8_t)vrev_mux_frame_status(f),     (uint8_t)vrev_mux_frame_option(f),
                    (uint8_t)vrev_mux_frame_network(f),    (uint8_t)vrev_mux_frame_addr_type(f)};
    mix(user, h, sizeof(h));
    char target[VREV_MUX_TARGET_MAX];
    int n = vrev_mux_frame_target(f, target, sizeof(target));
    if (n > 0)
        mix(user, target, (size_t)n);
    return 0;
}

static int on_open(vrev_mux *m, uint16_t sid, const vrev_mux_frame *f, void *user)
{
    (void)f;
    mix(user, &sid, sizeof(sid));
    /* refuse every 7th session to exercise End from inside a callback */
    if (sid % 7 == 0)
        return vrev_mux_end(m, sid, 1);
    return 0;
}

/* Data hashes the same however it is cut into calls: a session's bytes, its id once per run. */
static int on_data(vrev_mux *m, uint16_t sid, const uint8_t *d, size_t n, void *user)
{
    (void)m;
    struct trace *t = user;
    if (t->data_sid != sid) {
        mix(t, &sid, sizeof(sid));
        t->data_sid = sid;
    }
    mix_bytes(t, d, n);
    return 0;
}

static int on_close(vrev_mux *m, uint16_t sid, int error, void *session_user, void *user)
{
    (void)m, (void)session_user;
    uint8_t e = (uint8_t)error;
    mix(user, &sid, sizeof(sid));
    mix(user, &e, 1);
    return 0;
}

static int run(const uint8_t *data, size_t size, int role, int pieces, unsigned seed,
               struct trace *t, uint64_t *err_off, size_t *buffered)
{
    vrev_ctx *ctx;
    vrev_mux *m;
    vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI,
                             .on_frame = on_frame,
                             .on_open = on_open,
                             .on_data = on_data,
                             .on_close = on_close};
    if (vrev_ctx_new(&ctx, NULL) < 0)
        abort();
    if (vrev_mux_new(&m, ctx, role, &cb, t) < 0)
        abort();
    vrev_mux_set_max_sessions(m, 64);
    if (vrev__mux_set_partial_data(m, pieces) < 0)
        abort();
    int rc = 0;
    size_t off = 0;
    while (off < size && rc == 0) {
        size_t n = size - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 97;
            if (piece < n)
                n = piece;
        }
        size_t used = 0;
        rc = vrev_mux_feed(m, data + off, n, &used);
        if (rc == 0 && used != n)
            abort(); /* nothing pauses here, so everything must be taken */
        off += n;
        if (vrev_mux_active_sessions(m) > 64)
            abort();
        vrev_mux_consume(m, vrev_mux_pending(m, NULL));
    }
    *err_off = vrev_mux_error_offset(m);
    *buffered = vrev_mux_buffered(m);
    vrev_mux_free(m);
    vrev_ctx_free(ctx);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int role = (data[0] & 1) ? VREV_MUX_SERVER : VREV_MUX_CLIENT;
    unsigned seed = data[0] | 1u;
    struct trace t[4];
    uint64_t off[4];
    size_t buffered[4];
    int rc[4];
    for (int i = 0; i < 4; i++) { /* whole, split; whole in pieces, split in pieces */
        t[i] = (struct trace){0, 0, -1};
        rc[i] =
            run(data + 1, size - 1, role, i >= 2, (i & 1) ? seed : 0, &t[i], &off[i], &buffered[i]);
    }
    for (int i = 1; i < 4; i++) {
        if (i == 2 && rc[0] == 0 && buffered[0] > 0)
            continue; /* cut inside a frame: pieces have delivered part of it */
        int j = i == 3 ? 2 : 0;
        if (rc[i] != rc[j] || t[i].hash != t[j].hash || t[i].events != t[j].events)
            abort();
        if (rc[i] < 0 && off[i] != off[j])
            abort();
    }
    return 0;
}
