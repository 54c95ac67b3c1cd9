/* The client's reader of the VMess AEAD response header (lib/codec/vmess_response.c): what a
 * server, or whoever answers in its place, sends back first. Fixed response key and IV.
 *
 * Input: byte 0 = flags, byte 1 = the V byte the client expects echoed. Bit 0 of the flags
 * clear: the rest is the bytes as received. Bit 0 set: the rest is a plaintext (at most
 * VREV_VMESS_RESPONSE_PLAIN_MAX + 8 bytes, so lengths the reader refuses are reached too) that
 * the harness seals as a server would (length part, then body, real keys), followed by 5 bytes
 * of response body; so the replay of `make check`, with real crypto, reaches the checks on the
 * plaintext. Bits 1..7 seed how the input is split.
 *
 * Oracles beyond the sanitizers: fed whole and fed in pieces, the reader gives the same result
 * and, on success, takes the same bytes, never more than the header's and never past the input;
 * a sealed header is accepted exactly when its plaintext is valid (length 4..259, V echoed, a
 * command that fits); an accepted one is 18 + length + 16 bytes long. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/vmess.h"
#include "vrev.h"

static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t iv[16] = {16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};

struct outcome {
    int rc;
    size_t used;
};

static void run(vrev_ctx *ctx, uint8_t v, const uint8_t *p, size_t n, unsigned seed,
                struct outcome *o)
{
    struct vrev__vmess_resp_reader r;
    vrev__vmess_resp_reader_init(&r, ctx, key, iv, v);
    o->rc = 0;
    o->used = 0;
    size_t off = 0;
    while (o->rc == 0 && off < n) {
        size_t k = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 23;
            if (piece < k)
                k = piece;
        }
        size_t used;
        o->rc = vrev__vmess_resp_reader_feed(&r, p + off, k, &used);
        if (used > k || (o->rc == 0 && used != k))
            abort();
        o->used += used;
        off += k;
    }
    vrev__vmess_resp_reader_wipe(&r);
}

/* Seal one part as a server does (WIRE-SPEC §4.7): key and nonce from the response key/IV. */
static void seal(vrev_ctx *ctx, const char *key_salt, const char *iv_salt, uint8_t *buf, size_t len)
{
    struct vrev__iov ks = {key_salt, strlen(key_salt)}, ns = {iv_salt, strlen(iv_salt)};
    uint8_t k[16], nonce[32];
    if (vrev__vmess_kdf16(key, 16, &ks, 1, k) < 0 || vrev__vmess_kdf(iv, 16, &ns, 1, nonce) < 0 ||
        vrev__vmess_gcm_once(ctx, true, k, nonce, NULL, 0, buf, len, buf + len) < 0)
        abort();
}

/* The plaintext rules of the reader. */
static bool valid_plain(const uint8_t *h, size_t m, uint8_t v)
{
    if (m < 4 || m > VREV_VMESS_RESPONSE_PLAIN_MAX || h[0] != v)
        return false;
    return h[2] == 0 || 4 + (size_t)h[3] <= m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    vrev_ctx *ctx;
    if (vrev_ctx_new(&ctx, NULL) < 0)
        abort();
    uint8_t v = data[1];
    const uint8_t *rest = data + 2;
    size_t rest_len = size - 2, n = rest_len, m = 0;
    uint8_t *in;
    bool sealed = data[0] & 1;
    if (sealed) {
        m = rest_len < VREV_VMESS_RESPONSE_PLAIN_MAX + 8 ? rest_len
                                                         : VREV_VMESS_RESPONSE_PLAIN_MAX + 8;
        n = 18 + m + 16 + 5;
        in = malloc(n);
        if (!in)
            abort();
        in[0] = (uint8_t)(m >> 8);
        in[1] = (uint8_t)m;
        seal(ctx, "AEAD Resp Header Len Key", "AEAD Resp Header Len IV", in, 2);
        memcpy(in + 18, rest, m);
        seal(ctx, "AEAD Resp Header Key", "AEAD Resp Header IV", in + 18, m);
        memset(in + 18 + m + 16, 0xee, 5);
    } else {
        in = malloc(n ? n : 1);
        if (!in)
            abort();
        memcpy(in, rest, n);
    }
    struct outcome whole, split;
    run(ctx, v, in, n, 0, &whole);
    run(ctx, v, in, n, data[0] >> 1 | 1u, &split);
    /* after an error the reader swallows whatever it is given: only successes compare bytes */
    if (whole.rc != split.rc || (whole.rc == 1 && whole.used != split.used))
        abort();
    if (whole.rc == 1 && (whole.used > VREV_VMESS_RESPONSE_MAX || whole.used > n))
        abort();
#ifndef VREV_FUZZING /* with real crypto a sealed header is judged by its plaintext alone */
    if (sealed && (whole.rc == 1) != valid_plain(rest, m, v))
        abort();
    if (sealed && whole.rc == 1 && whole.used != 18 + m + 16)
        abort();
#endif
    free(in);
    vrev_ctx_free(ctx);
    return 0;
}
