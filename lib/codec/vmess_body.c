/* VMess body chunk codec (WIRE-SPEC.md §4.8). Modes and layouts are drawn in vmess_body.h;
 * the per-chunk rules:
 *
 *   off  size        field
 *   0    2           LenField = L xor Mask
 *   2    L - Pad     AEAD: ciphertext || 16-byte tag (empty payload = end of stream)
 *                    UDP none: payload (L == Pad = end); TCP none: L bytes payload (L == 0 = end)
 *   ..   Pad         random padding (not in TCP none)
 *
 *   S = SHAKE128(body IV of this direction), read 2 bytes at a time as u16be. Per chunk, in
 *   this order: Pad = next(S) mod 64 if GlobalPadding, else 0; Mask = next(S) if ChunkMasking,
 *   else 0. (TCP none draws only Mask, even with GlobalPadding.)
 *   AEAD nonce = u16be(count) || IV[2:12], count = chunks sealed so far, wrapping at 2^16 like
 *   V2Ray (so a direction reuses nonces after 65536 chunks, about 128 MiB: a protocol flaw we
 *   must copy to interoperate). AES-128-GCM key = body key; ChaCha20-Poly1305 key =
 *   MD5(key) || MD5(MD5(key)). No AAD.
 */
#include <string.h>

#include "vmess_body.h"

enum { D_LEN, D_BODY, D_STREAM, D_PAD, D_EOF, D_FAILED };

/* V2Ray 4.34 writes chunks of at most 2048 bytes and reserves 64 for padding. */
#define V2RAY_CHUNK 2048
#define V2RAY_PAD_RESERVE 64
#define V2RAY_STREAM_SLICE 8192
#define TAG VREV_AEAD_TAG_LEN

static uint16_t draw(struct vrev__vmess_body *b)
{
    uint8_t x[2];
    vrev__shake128_squeeze(&b->shake, x, 2);
    return vrev__get_u16(x);
}

static int pick_mode(int security, int options, int command, uint8_t *mode)
{
    if ((options & VREV_VMESS_OPT_AUTH_LENGTH) ||
        ((options & VREV_VMESS_OPT_GLOBAL_PADDING) && !(options & VREV_VMESS_OPT_CHUNK_MASKING)))
        return VREV_ERR_VMESS_OPTIONS;
    if (command != VREV_VMESS_CMD_TCP && command != VREV_VMESS_CMD_UDP &&
        command != VREV_VMESS_CMD_MUX)
        return VREV_ERR_VMESS_COMMAND;
    switch (security) {
    case VREV_VMESS_SEC_AES_128_GCM:
    case VREV_VMESS_SEC_CHACHA20_POLY1305:
        *mode = VREV_VMESS_BODY_AEAD; /* chunked whatever ChunkStream says, as 4.34 does */
        return 0;
    case VREV_VMESS_SEC_NONE:
        if (!(options & VREV_VMESS_OPT_CHUNK_STREAM))
            *mode = VREV_VMESS_BODY_RAW;
        else
            *mode = command == VREV_VMESS_CMD_UDP ? VREV_VMESS_BODY_PACKET : VREV_VMESS_BODY_STREAM;
        return 0;
    default:
        return VREV_ERR_VMESS_SECURITY;
    }
}

static size_t default_max_payload(const struct vrev__vmess_body *b)
{
    size_t reserve = b->padding ? V2RAY_PAD_RESERVE : 0;
    switch (b->mode) {
    case VREV_VMESS_BODY_AEAD:
        return V2RAY_CHUNK - 2 - TAG - reserve;
    case VREV_VMESS_BODY_PACKET:
        return V2RAY_CHUNK - 2 - reserve;
    case VREV_VMESS_BODY_STREAM:
        return V2RAY_STREAM_SLICE;
    default:
        return VREV_VMESS_BODY_CHUNK_MAX;
    }
}

static int make_aead(struct vrev__vmess_body *b, int security, const uint8_t key[16])
{
    if (security == VREV_VMESS_SEC_AES_128_GCM)
        return vrev__aead_new(b->ctx, &b->aead, VREV_AEAD_AES_128_GCM, key, 16);
    uint8_t k[32];
    struct vrev__iov v = {key, 16};
    int rc = vrev__md5(&v, 1, k);
    v.base = k;
    if (rc == 0)
        rc = vrev__md5(&v, 1, k + 16);
    if (rc == 0)
        rc = vrev__aead_new(b->ctx, &b->aead, VREV_AEAD_CHACHA20_POLY1305, k, 32);
    vrev__wipe(k, sizeof(k));
    return rc;
}

int vrev__vmess_body_init(struct vrev__vmess_body *b, vrev_ctx *ctx, int security, int options,
                          int command, const uint8_t key[16], const uint8_t iv[16])
{
    memset(b, 0, sizeof(*b));
    int rc = pick_mode(security, options, command, &b->mode);
    if (rc < 0)
        return rc;
    b->ctx = ctx;
    b->packet = command == VREV_VMESS_CMD_UDP;
    b->masking = (options & VREV_VMESS_OPT_CHUNK_MASKING) != 0;
    b->padding =
        (options & VREV_VMESS_OPT_GLOBAL_PADDING) != 0 && b->mode != VREV_VMESS_BODY_STREAM;
    vrev__shake128_init(&b->shake, iv, 16);
    memcpy(b->nonce, iv, sizeof(b->nonce));
    b->max_payload = default_max_payload(b);
    b->state = D_LEN;
    if (b->mode == VREV_VMESS_BODY_AEAD && (rc = make_aead(b, security, key)) < 0) {
        vrev__vmess_body_cleanup(b);
        return rc;
    }
    return 0;
}

void vrev__vmess_body_cleanup(struct vrev__vmess_body *b)
{
    vrev__aead_free(b->ctx, b->aead);
    if (b->buf) {
        vrev__wipe(b->buf, b->buf_cap);
        vrev__free(b->ctx, b->buf);
    }
    vrev__wipe(b, sizeof(*b));
}

void vrev__vmess_body_set_rand(struct vrev__vmess_body *b, vrev__vmess_rand_fn fn, void *user)
{
    b->rand_fn = fn;
    b->rand_user = user;
    b->pool_left = 0;
}

size_t vrev__vmess_body_max_payload(const struct vrev__vmess_body *b)
{
    return b->max_payload;
}

int vrev__vmess_body_set_max_payload(struct vrev__vmess_body *b, size_t n)
{
    size_t over = (b->mode == VREV_VMESS_BODY_AEAD ? TAG : 0) + (b->padding ? 63 : 0);
    if (n == 0 || n > VREV_VMESS_BODY_CHUNK_MAX - over || b->packet)
        return VREV_ERR_RANGE;
    b->max_payload = n;
    return 0;
}

/* --- encoder -------------------------------------------------------------------------------- */

/* Padding bytes go out in clear after the sealed chunk: random, from the context's pool (or,
 * with a random source of the caller's (tests) or no context, the stream's own). */
static int fill_padding(struct vrev__vmess_body *b, uint8_t *dst, size_t n)
{
    bool shared = !b->rand_fn && b->ctx;
    uint8_t *pool = shared ? b->ctx->pad_pool : b->pool;
    size_t size = shared ? sizeof(b->ctx->pad_pool) : sizeof(b->pool);
    size_t *left = shared ? &b->ctx->pad_left : &b->pool_left;
    while (n) {
        if (*left == 0) {
            int rc = vrev__vmess_random(b->rand_fn, b->rand_user, pool, size);
            if (rc < 0)
                return rc;
            *left = size;
        }
        size_t k = n < *left ? n : *left;
        memcpy(dst, pool + size - *left, k);
        *left -= k;
        dst += k;
        n -= k;
    }
    return 0;
}

static void set_nonce(struct vrev__vmess_body *b)
{
    vrev__put_u16(b->nonce, b->count);
    b->count++;
}

static size_t iov_total(const struct vrev__iov *v, size_t nv)
{
    size_t n = 0;
    for (size_t i = 0; i < nv; i++)
        n += v[i].len;
    return n;
}

static void iov_copy(uint8_t *dst, const struct vrev__iov *v, size_t nv)
{
    for (size_t i = 0; i < nv; i++) {
        if (v[i].len)
            memcpy(dst, v[i].base, v[i].len);
        dst += v[i].len;
    }
}

/* AEAD and UDP-none chunks: LenField, payload (sealed straight from the pieces), padding. */
static int seal_padded(struct vrev__vmess_body *b, const struct vrev__iov *v, size_t nv, size_t n,
                       uint8_t *out)
{
    size_t tag = b->mode == VREV_VMESS_BODY_AEAD ? TAG : 0;
    size_t pad = b->padding ? draw(b) % 64 : 0;
    size_t len = n + tag + pad;
    uint16_t mask = b->masking ? draw(b) : 0;
    vrev__put_u16(out, (uint16_t)(len ^ mask));
    if (tag) {
        set_nonce(b);
        int rc = vrev__aead_seal_iov(b->aead, b->nonce, v, nv, out + 2, out + 2 + n);
        if (rc < 0)
            return rc;
    } else {
        iov_copy(out + 2, v, nv);
    }
    int rc = fill_padding(b, out + 2 + n + tag, pad);
    return rc < 0 ? rc : (int)(2 + len);
}

int vrev__vmess_body_seal_chunk_iov(struct vrev__vmess_body *b, const struct vrev__iov *v,
                                    size_t nv, uint8_t *out, size_t cap)
{
    size_t n = iov_total(v, nv);
    if (b->mode == VREV_VMESS_BODY_RAW) {
        if (cap < n)
            return VREV_ERR_NOSPACE;
        iov_copy(out, v, nv);
        return (int)n;
    }
    if (n > b->max_payload)
        return VREV_ERR_RANGE;
    if (cap < n + VREV_VMESS_BODY_OVERHEAD_MAX)
        return VREV_ERR_NOSPACE;
    if (b->mode != VREV_VMESS_BODY_STREAM)
        return seal_padded(b, v, nv, n, out);
    uint16_t mask = b->masking ? draw(b) : 0;
    vrev__put_u16(out, (uint16_t)(n ^ mask));
    iov_copy(out + 2, v, nv);
    return (int)(2 + n);
}

int vrev__vmess_body_seal_chunk(struct vrev__vmess_body *b, const uint8_t *p, size_t n,
                                uint8_t *out, size_t cap)
{
    struct vrev__iov v = {p, n};
    return vrev__vmess_body_seal_chunk_iov(b, &v, 1, out, cap);
}

int vrev__vmess_body_seal(struct vrev__vmess_body *b, const uint8_t *p, size_t n,
                          struct vrev__buf *out)
{
    if (b->packet && n > b->max_payload)
        return VREV_ERR_VMESS_PACKET_SIZE; /* 4.34 would drop it (and desync its stream) */
    while (n) {
        size_t k = n < b->max_payload ? n : b->max_payload;
        size_t room = k + VREV_VMESS_BODY_OVERHEAD_MAX;
        uint8_t *tail = vrev__buf_reserve(b->ctx, out, room);
        if (!tail)
            return VREV_ERR_NOMEM;
        int w = vrev__vmess_body_seal_chunk(b, p, k, tail, room);
        if (w < 0)
            return w;
        vrev__buf_commit(out, (size_t)w);
        p += k;
        n -= k;
    }
    return 0;
}

int vrev__vmess_body_seal_eof(struct vrev__vmess_body *b, struct vrev__buf *out)
{
    if (b->mode == VREV_VMESS_BODY_RAW)
        return 0;
    uint8_t *tail = vrev__buf_reserve(b->ctx, out, VREV_VMESS_BODY_OVERHEAD_MAX);
    if (!tail)
        return VREV_ERR_NOMEM;
    int w = vrev__vmess_body_seal_chunk(b, NULL, 0, tail, VREV_VMESS_BODY_OVERHEAD_MAX);
    if (w < 0)
        return w;
    vrev__buf_commit(out, (size_t)w);
    return 0;
}

/* --- decoder -------------------------------------------------------------------------------- */

static int reserve_buf(struct vrev__vmess_body *b, size_t n)
{
    if (b->buf_cap >= n)
        return 0;
    size_t cap = n < V2RAY_CHUNK ? V2RAY_CHUNK : n;
    uint8_t *p = vrev__malloc(b->ctx, cap);
    if (!p)
        return VREV_ERR_NOMEM;
    if (b->buf) {
        vrev__wipe(b->buf, b->buf_cap);
        vrev__free(b->ctx, b->buf);
    }
    b->buf = p;
    b->buf_cap = cap;
    return 0;
}

/* LenField complete: draw Pad then Mask, check L, pick the next state. */
static int begin_chunk(struct vrev__vmess_body *b)
{
    size_t pad = b->padding ? draw(b) % 64 : 0;
    uint16_t mask = b->masking ? draw(b) : 0;
    size_t len = (size_t)(vrev__get_u16(b->len_buf) ^ mask);
    size_t tag = b->mode == VREV_VMESS_BODY_AEAD ? TAG : 0;
    b->len_have = 0;
    if (b->mode == VREV_VMESS_BODY_STREAM) {
        if (len == 0) {
            b->state = D_EOF;
            return VREV_VMESS_BODY_EOF;
        }
        b->need = len;
        b->state = D_STREAM;
        return VREV_VMESS_BODY_MORE;
    }
    if (len < tag + pad) /* v2fly subtracts without this check (RELIABILITY.md §2.1) */
        return VREV_ERR_VMESS_CHUNK_LEN;
    b->last = len == tag + pad;
    if (b->last && !tag) { /* UDP none: nothing to verify */
        b->state = D_EOF;
        return VREV_VMESS_BODY_EOF;
    }
    b->need = len - pad;
    b->pad = pad;
    b->have = 0;
    b->state = D_BODY;
    return VREV_VMESS_BODY_MORE;
}

/* Where an AEAD chunk's plaintext goes: the caller's buffer when it fits (open_to), else our
 * own, which is only allocated when first needed (a reader that always gets its chunks whole
 * and has room for them never holds one). */
static int plain_dst(struct vrev__vmess_body *b, size_t plain, uint8_t **dst)
{
    if (plain == 0) { /* the end-of-stream chunk: nothing is written */
        *dst = b->len_buf;
        return 0;
    }
    if (b->room_mode) {
        *dst = b->dst; /* step() made sure it fits */
        return 0;
    }
    int rc = reserve_buf(b, plain);
    *dst = b->buf;
    return rc;
}

/* Body in `body` (gathered into b->buf, or whole in the input): open it, report the chunk or
 * the end. */
static int finish_chunk(struct vrev__vmess_body *b, const uint8_t *body, const uint8_t **out,
                        size_t *out_len)
{
    size_t plain = b->need;
    const uint8_t *res = body;
    if (b->mode == VREV_VMESS_BODY_AEAD) {
        plain -= TAG;
        uint8_t *dst;
        int rc = plain_dst(b, plain, &dst);
        if (rc < 0)
            return rc;
        set_nonce(b);
        rc = vrev__aead_open_to(b->aead, b->nonce, body, plain, body + plain, dst);
        if (rc < 0)
            return rc == VREV_ERR_AUTH ? VREV_ERR_VMESS_CHUNK_AUTH : rc;
        res = dst;
    }
    if (b->last) {
        b->state = D_EOF;
        return VREV_VMESS_BODY_EOF;
    }
    b->state = b->pad ? D_PAD : D_LEN;
    *out = res;
    *out_len = plain;
    return VREV_VMESS_BODY_CHUNK;
}

static size_t gather(uint8_t *dst, size_t *have, size_t need, const uint8_t *p, size_t n)
{
    size_t k = need - *have < n ? need - *have : n;
    if (k)
        memcpy(dst + *have, p, k);
    *have += k;
    return k;
}

/* One state's worth of progress on p[0..n) (n > 0); *k gets the bytes taken. */
static int step(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *k,
                const uint8_t **out, size_t *out_len)
{
    switch (b->state) {
    case D_PAD:
        *k = b->pad < n ? b->pad : n;
        b->pad -= *k;
        if (b->pad == 0)
            b->state = D_LEN;
        return VREV_VMESS_BODY_MORE;
    case D_LEN:
        *k = gather(b->len_buf, &b->len_have, 2, p, n);
        return b->len_have == 2 ? begin_chunk(b) : VREV_VMESS_BODY_MORE;
    case D_STREAM:
        *k = b->need < n ? b->need : n;
        b->need -= *k;
        if (b->need == 0)
            b->state = D_LEN;
        *out = p;
        *out_len = *k;
        return VREV_VMESS_BODY_CHUNK;
    case D_BODY:
        if (b->room_mode && b->mode == VREV_VMESS_BODY_AEAD && b->need - TAG > b->dst_cap) {
            *k = 0;
            *out_len = b->need - TAG;
            return VREV_VMESS_BODY_ROOM;
        }
        if (b->have == 0 && n >= b->need && b->mode == VREV_VMESS_BODY_AEAD) {
            *k = b->need; /* whole in the input: opened from there, no copy */
            return finish_chunk(b, p, out, out_len);
        }
        if (b->have == 0) {
            int rc = reserve_buf(b, b->need);
            if (rc < 0)
                return rc;
        }
        *k = gather(b->buf, &b->have, b->need, p, n);
        return b->have == b->need ? finish_chunk(b, b->buf, out, out_len) : VREV_VMESS_BODY_MORE;
    default:
        *k = 0;
        return VREV_ERR_STATE;
    }
}

static int open_any(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                    const uint8_t **out, size_t *out_len);

int vrev__vmess_body_open(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                          const uint8_t **out, size_t *out_len)
{
    b->room_mode = false;
    return open_any(b, p, n, used, out, out_len);
}

int vrev__vmess_body_open_to(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                             uint8_t *dst, size_t dst_cap, const uint8_t **out, size_t *out_len)
{
    b->room_mode = true;
    b->dst = dst;
    b->dst_cap = dst ? dst_cap : 0;
    int rc = open_any(b, p, n, used, out, out_len);
    b->dst = NULL;
    b->dst_cap = 0;
    return rc;
}

static int open_any(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                    const uint8_t **out, size_t *out_len)
{
    *used = 0;
    *out = NULL;
    *out_len = 0;
    if (b->state == D_FAILED) {
        *used = n;
        return b->err;
    }
    if (b->state == D_EOF)
        return VREV_VMESS_BODY_EOF;
    if (b->mode == VREV_VMESS_BODY_RAW) {
        if (n == 0)
            return VREV_VMESS_BODY_MORE;
        *out = p;
        *out_len = n;
        *used = n;
        return VREV_VMESS_BODY_CHUNK;
    }
    size_t taken = 0;
    int rc = VREV_VMESS_BODY_MORE;
    while (rc == VREV_VMESS_BODY_MORE && taken < n) {
        size_t k = 0;
        rc = step(b, p + taken, n - taken, &k, out, out_len);
        taken += k;
    }
    if (rc < 0) {
        b->state = D_FAILED;
        b->err = rc;
        *out = NULL;
        *out_len = 0;
        taken = n;
    }
    *used = taken;
    return rc;
}
