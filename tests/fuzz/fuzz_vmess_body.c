/* F4: the VMess body chunk codec, every security x command x option set a 4.34 server
 * accepts, fixed key and IV (those of WIRE-SPEC §10.6).
 *
 * Input: byte 0: bits 0-1 security (AES-128-GCM, ChaCha20-Poly1305, none, none), bits 2-3
 * command (TCP, UDP, Mux, TCP), bit 4 mode; byte 1: option set (index into the accepted
 * ones); byte 2: split seed; the rest is data.
 *   mode 0: the data is a received stream. Oracle: fed whole and fed in pieces, the decoder
 *           gives the same plaintext and the same end (EOF, need-more or the same error),
 *           and never emits more bytes than it took; so does _open_to, offered room that
 *           starts small and grows when it asks (VREV_VMESS_BODY_ROOM).
 *   mode 1: the data is a payload; chunk sizes come from the payload bytes. It is encoded,
 *           ended, and decoded in pieces. Oracle: the same payload comes back, then EOF
 *           (raw mode: no EOF, the transport ends it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/vmess_body.h"
#include "vrev.h"

static const uint8_t key[16] = {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t iv[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t opts[12] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                                 0x06, 0x07, 0x0c, 0x0d, 0x0e, 0x0f};
static const int secs[4] = {3, 4, 5, 5};
static const int cmds[4] = {1, 2, 3, 1};

struct result {
    int end;
    uint8_t *out;
    size_t len;
    size_t used;
};

static int zeros(void *user, uint8_t *out, size_t len)
{
    (void)user;
    memset(out, 0, len);
    return 0;
}

#define NO_ROOM SIZE_MAX /* decode with _open */

/* One call of _open or _open_to (room bytes, in an exact-size buffer so ASan sees overruns;
 * grown when the decoder asks). */
static int open_one(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                    size_t *room, uint8_t **dst, const uint8_t **out, size_t *out_len)
{
    if (*room == NO_ROOM)
        return vrev__vmess_body_open(b, p, n, used, out, out_len);
    free(*dst);
    *dst = *room ? malloc(*room) : NULL;
    if (*room && !*dst)
        abort();
    int rc = vrev__vmess_body_open_to(b, p, n, used, *dst, *room, out, out_len);
    if (rc == VREV_VMESS_BODY_ROOM) {
        if (*out_len <= *room || *out_len > VREV_VMESS_BODY_CHUNK_MAX)
            abort();
        *room = *out_len;
    }
    return rc;
}

static void decode(vrev_ctx *ctx, int sec, int opt, int cmd, const uint8_t *p, size_t n,
                   unsigned seed, size_t room, struct result *r)
{
    uint8_t *dst = NULL;
    struct vrev__vmess_body b;
    if (vrev__vmess_body_init(&b, ctx, sec, opt, cmd, key, iv) < 0)
        abort();
    r->out = malloc(n + 1);
    if (!r->out)
        abort();
    r->len = r->used = 0;
    r->end = VREV_VMESS_BODY_MORE;
    size_t off = 0;
    while (off < n && r->end == VREV_VMESS_BODY_MORE) {
        size_t k = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 300;
            if (piece < k)
                k = piece;
        }
        size_t at = 0, used, out_len;
        const uint8_t *out;
        int rc;
        while ((rc = open_one(&b, p + off + at, k - at, &used, &room, &dst, &out, &out_len)) ==
                   VREV_VMESS_BODY_CHUNK ||
               rc == VREV_VMESS_BODY_ROOM) {
            at += used;
            if (rc == VREV_VMESS_BODY_ROOM)
                continue;
            if (out_len == 0 || r->len + out_len > off + at)
                abort();
            memcpy(r->out + r->len, out, out_len);
            r->len += out_len;
        }
        if (used > k - at)
            abort();
        at += used;
        r->end = rc;
        r->used += at;
        off += k;
    }
    free(dst);
    vrev__vmess_body_cleanup(&b);
}

static void mode_decode(vrev_ctx *ctx, int sec, int opt, int cmd, const uint8_t *p, size_t n,
                        unsigned seed)
{
    struct result whole, split, to;
    decode(ctx, sec, opt, cmd, p, n, 0, NO_ROOM, &whole);
    decode(ctx, sec, opt, cmd, p, n, seed | 1u, NO_ROOM, &split);
    decode(ctx, sec, opt, cmd, p, n, seed | 1u, seed * 7u, &to);
    if (whole.end != split.end || whole.len != split.len ||
        memcmp(whole.out, split.out, whole.len) || whole.len > n)
        abort();
    if (whole.end >= 0 && whole.used != split.used)
        abort();
    if (to.end != whole.end || to.len != whole.len || memcmp(to.out, whole.out, whole.len) ||
        (whole.end >= 0 && to.used != whole.used))
        abort();
    free(whole.out);
    free(split.out);
    free(to.out);
}

static void mode_round_trip(vrev_ctx *ctx, int sec, int opt, int cmd, const uint8_t *p, size_t n,
                            unsigned seed)
{
    struct vrev__vmess_body enc;
    struct vrev__buf wire = {0};
    if (vrev__vmess_body_init(&enc, ctx, sec, opt, cmd, key, iv) < 0)
        abort();
    vrev__vmess_body_set_rand(&enc, zeros, NULL);
    size_t max = vrev__vmess_body_max_payload(&enc), off = 0;
    while (off < n) {
        size_t k = 1 + (size_t)p[off] * 37 % max;
        if (k > n - off)
            k = n - off;
        if (vrev__vmess_body_seal(&enc, p + off, k, &wire) < 0)
            abort();
        off += k;
    }
    if (vrev__vmess_body_seal_eof(&enc, &wire) < 0)
        abort();
    vrev__vmess_body_cleanup(&enc);
    struct result r;
    static const uint8_t none[1];
    const uint8_t *w = wire.data ? wire.data + wire.start : none; /* raw mode, no payload */
    decode(ctx, sec, opt, cmd, w, vrev__buf_len(&wire), seed, seed & 1 ? NO_ROOM : seed * 64u, &r);
    bool raw = sec == 5 && !(opt & 0x01);
    if (r.end != (raw ? VREV_VMESS_BODY_MORE : VREV_VMESS_BODY_EOF) || r.len != n ||
        (n && memcmp(r.out, p, n)))
        abort();
    free(r.out);
    vrev__buf_free(ctx, &wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    vrev_ctx *ctx;
    if (vrev_ctx_new(&ctx, NULL) < 0)
        abort();
    int sec = secs[data[0] & 3], cmd = cmds[(data[0] >> 2) & 3], opt = opts[data[1] % 12];
    unsigned seed = data[2];
    if (data[0] & 0x10)
        mode_round_trip(ctx, sec, opt, cmd, data + 3, size - 3, seed);
    else
        mode_decode(ctx, sec, opt, cmd, data + 3, size - 3, seed);
    vrev_ctx_free(ctx);
    return 0;
}
