/* VMess AEAD response header (WIRE-SPEC.md §4.7), server seal and client reader.
 *
 *   off   size   field
 *   0     18     GCM(u16be M)          key KDF16(respKey, "AEAD Resp Header Len Key"),
 *                                      nonce KDF(respIV, "AEAD Resp Header Len IV")[0:12]
 *   18    M+16   GCM(plaintext)        key KDF16(respKey, "AEAD Resp Header Key"),
 *                                      nonce KDF(respIV, "AEAD Resp Header IV")[0:12]
 *   no AAD; respKey/respIV = SHA-256(request body key/IV)[0:16]
 *
 *   plaintext: V (echo of request byte 33) | option | cmd | cmdLen | cmdLen bytes (if cmd)
 *   A 4.34 server sends "V 00 00 00", so the whole header is 38 bytes; it sends a command
 *   (SwitchAccount) only for inbounds with a detour, which clients parse and may ignore.
 */
#include <string.h>

#include "hdr_reader.h"
#include "vmess.h"

enum { ST_LENGTH, ST_BODY, ST_DONE, ST_FAILED };

#define LEN_PART 18

static int response_aead(vrev_ctx *ctx, bool seal, bool length_part, const uint8_t key[16],
                         const uint8_t iv[16], uint8_t *buf, size_t len, uint8_t *tag)
{
    struct vrev__iov ks = length_part ? VREV_VMESS_SALT("AEAD Resp Header Len Key")
                                      : VREV_VMESS_SALT("AEAD Resp Header Key");
    struct vrev__iov ns = length_part ? VREV_VMESS_SALT("AEAD Resp Header Len IV")
                                      : VREV_VMESS_SALT("AEAD Resp Header IV");
    uint8_t k[16], n[32];
    int rc = vrev__vmess_kdf16(key, 16, &ks, 1, k);
    if (rc == 0)
        rc = vrev__vmess_kdf(iv, 16, &ns, 1, n);
    if (rc == 0)
        rc = vrev__vmess_gcm_once(ctx, seal, k, n, NULL, 0, buf, len, tag);
    vrev__wipe(k, sizeof(k));
    vrev__wipe(n, sizeof(n));
    return rc;
}

int vrev__vmess_response_seal(vrev_ctx *ctx, const uint8_t resp_key[16], const uint8_t resp_iv[16],
                              uint8_t v, uint8_t *out, size_t cap)
{
    if (cap < VREV_VMESS_RESPONSE_LEN)
        return VREV_ERR_NOSPACE;
    vrev__put_u16(out, 4);
    uint8_t *body = out + LEN_PART;
    body[0] = v;
    body[1] = body[2] = body[3] = 0;
    int rc = response_aead(ctx, true, true, resp_key, resp_iv, out, 2, out + 2);
    if (rc == 0)
        rc = response_aead(ctx, true, false, resp_key, resp_iv, body, 4, body + 4);
    return rc < 0 ? rc : VREV_VMESS_RESPONSE_LEN;
}

void vrev__vmess_resp_reader_init(struct vrev__vmess_resp_reader *r, vrev_ctx *ctx,
                                  const uint8_t resp_key[16], const uint8_t resp_iv[16], uint8_t v)
{
    memset(r, 0, sizeof(*r));
    r->ctx = ctx;
    memcpy(r->key, resp_key, 16);
    memcpy(r->iv, resp_iv, 16);
    r->v = v;
    r->state = ST_LENGTH;
    r->need = LEN_PART;
}

static int step_length(struct vrev__vmess_resp_reader *r)
{
    int rc = response_aead(r->ctx, false, true, r->key, r->iv, r->buf, 2, r->buf + 2);
    if (rc < 0)
        return rc == VREV_ERR_AUTH ? VREV_ERR_VMESS_RESPONSE : rc;
    size_t m = vrev__get_u16(r->buf);
    if (m < 4 || m > VREV_VMESS_RESPONSE_PLAIN_MAX)
        return VREV_ERR_VMESS_RESPONSE;
    r->state = ST_BODY;
    r->need = LEN_PART + m + 16;
    return 0;
}

static int step_body(struct vrev__vmess_resp_reader *r)
{
    size_t m = r->need - LEN_PART - 16;
    uint8_t *h = r->buf + LEN_PART;
    int rc = response_aead(r->ctx, false, false, r->key, r->iv, h, m, h + m);
    if (rc < 0)
        return rc == VREV_ERR_AUTH ? VREV_ERR_VMESS_RESPONSE : rc;
    uint8_t v = r->v;
    if (!vrev__ct_equal(&h[0], &v, 1))
        return VREV_ERR_VMESS_RESPONSE;
    if (h[2] != 0 && 4 + (size_t)h[3] > m) /* a command must fit; its content is ignored */
        return VREV_ERR_VMESS_RESPONSE;
    r->state = ST_DONE;
    return 0;
}

int vrev__vmess_resp_reader_feed(struct vrev__vmess_resp_reader *r, const uint8_t *p, size_t n,
                                 size_t *used)
{
    *used = 0;
    if (r->state == ST_DONE)
        return 1;
    size_t taken = 0;
    while (r->state != ST_FAILED) {
        if (!vrev__hdr_gather(r->buf, &r->have, r->need, p, n, &taken)) {
            *used = n;
            return 0;
        }
        int rc = r->state == ST_LENGTH ? step_length(r) : step_body(r);
        if (rc < 0) {
            r->state = ST_FAILED;
            r->err = rc;
        } else if (r->state == ST_DONE) {
            *used = taken;
            return 1;
        }
    }
    *used = n;
    return r->err;
}

void vrev__vmess_resp_reader_wipe(struct vrev__vmess_resp_reader *r)
{
    vrev__wipe(r, sizeof(*r));
}
