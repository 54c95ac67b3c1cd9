/* VMess key material (WIRE-SPEC.md §4.1, §4.2, §4.7).
 *
 *   UUID text   27848739-7e62-4138-9fd3-098a63964b6b  ->  16 bytes in textual order
 *   cmdKey      MD5( uuid(16) || "c48619fe-8f02-49e0-b9e9-edf763e17e21"(36) )
 *
 *   KDF(key, p1..pn) = Hn(key), where
 *     H0(m) = HMAC-SHA256(key = "VMess AEAD KDF", m)
 *     Hi(m) = H(i-1)( (K xor 0x5c..) || H(i-1)( (K xor 0x36..) || m ) ),  K = pi zero-padded
 *             to the 64-byte block (an HMAC whose hash function is the previous layer)
 *   KDF16 = KDF[0:16]
 *
 *   respBodyKey = SHA-256(reqBodyKey)[0:16]     respBodyIV = SHA-256(reqBodyIV)[0:16]
 */
#include <string.h>

#include "core/hex.h"
#include "vmess.h"

#define KDF_BLOCK 64
#define KDF_BASE_KEY "VMess AEAD KDF"
#define CMD_KEY_SALT "c48619fe-8f02-49e0-b9e9-edf763e17e21"
/* Each layer prepends one pad block to its message before calling the layer below, so the
 * base layer sees at most the caller's key plus one block per path element. */
#define KDF_MSG_MAX (VREV_VMESS_KDF_PATH_MAX + 1)

int vrev__vmess_uuid_parse(const char *text, size_t len, uint8_t out[16])
{
    return vrev__uuid_parse(text, len, out) ? 0 : VREV_ERR_VMESS_UUID;
}

int vrev__vmess_cmd_key(const uint8_t uuid[16], uint8_t out[16])
{
    struct vrev__iov v[2] = {{uuid, 16}, VREV_VMESS_SALT(CMD_KEY_SALT)};
    return vrev__md5(v, 2, out);
}

/* H_depth over the concatenation msg[0..nmsg). Layer 0 is HMAC-SHA256 keyed with the fixed
 * KDF key; layer i > 0 is an HMAC built by hand over layer i-1, keyed with path[i-1]. The
 * recursion is at most VREV_VMESS_KDF_PATH_MAX deep; layer i costs 2^i base HMACs. */
static int layer(const struct vrev__iov *path, size_t depth, const struct vrev__iov *msg,
                 size_t nmsg, uint8_t out[32])
{
    if (depth == 0)
        return vrev__hmac_sha256((const uint8_t *)KDF_BASE_KEY, sizeof(KDF_BASE_KEY) - 1, msg, nmsg,
                                 out);
    uint8_t key[KDF_BLOCK] = {0};
    const struct vrev__iov *p = &path[depth - 1];
    int rc = 0;
    if (p->len > KDF_BLOCK) /* HMAC rule: a long key is first hashed (never the case here) */
        rc = layer(path, depth - 1, p, 1, key);
    else if (p->len)
        memcpy(key, p->base, p->len);
    uint8_t pad[KDF_BLOCK], inner[32];
    struct vrev__iov m[KDF_MSG_MAX + 1];
    for (size_t i = 0; i < KDF_BLOCK; i++)
        pad[i] = key[i] ^ 0x36;
    m[0] = (struct vrev__iov){pad, KDF_BLOCK};
    memcpy(&m[1], msg, nmsg * sizeof(*msg));
    if (rc == 0)
        rc = layer(path, depth - 1, m, nmsg + 1, inner);
    for (size_t i = 0; i < KDF_BLOCK; i++)
        pad[i] = key[i] ^ 0x5c;
    m[1] = (struct vrev__iov){inner, sizeof(inner)};
    if (rc == 0)
        rc = layer(path, depth - 1, m, 2, out);
    vrev__wipe(key, sizeof(key));
    vrev__wipe(pad, sizeof(pad));
    vrev__wipe(inner, sizeof(inner));
    return rc;
}

int vrev__vmess_kdf(const uint8_t *key, size_t key_len, const struct vrev__iov *path, size_t n,
                    uint8_t out[32])
{
    if ((!key && key_len) || n > VREV_VMESS_KDF_PATH_MAX || (n && !path))
        return VREV_ERR_INVAL;
    struct vrev__iov m = {key, key_len};
    return layer(path, n, &m, 1, out);
}

int vrev__vmess_kdf16(const uint8_t *key, size_t key_len, const struct vrev__iov *path, size_t n,
                      uint8_t out[16])
{
    uint8_t full[32];
    int rc = vrev__vmess_kdf(key, key_len, path, n, full);
    if (rc == 0)
        memcpy(out, full, 16);
    vrev__wipe(full, sizeof(full));
    return rc;
}

int vrev__vmess_response_keys(const uint8_t req_key[16], const uint8_t req_iv[16],
                              uint8_t resp_key[16], uint8_t resp_iv[16])
{
    uint8_t d[32];
    struct vrev__iov v = {req_key, 16};
    int rc = vrev__sha256(&v, 1, d);
    if (rc == 0) {
        memcpy(resp_key, d, 16);
        v.base = req_iv;
        rc = vrev__sha256(&v, 1, d);
    }
    if (rc == 0)
        memcpy(resp_iv, d, 16);
    vrev__wipe(d, sizeof(d));
    return rc;
}

int vrev__vmess_random(vrev__vmess_rand_fn fn, void *user, uint8_t *out, size_t len)
{
    if (len == 0)
        return 0;
    return fn ? fn(user, out, len) : vrev__random_bytes(out, len);
}

int vrev__vmess_gcm_once(vrev_ctx *ctx, bool seal, const uint8_t key[16], const uint8_t nonce[12],
                         const uint8_t *aad, size_t aad_len, uint8_t *buf, size_t len,
                         uint8_t tag[16])
{
#ifdef VREV_FUZZING
    /* Fuzzing build only (make fuzz): opening is the identity and never fails, so the
     * fuzzer reaches the parsers behind the tags. Never defined in a normal build. */
    if (!seal)
        return 0;
#endif
    struct vrev__aead *a;
    int rc = vrev__aead_new(ctx, &a, VREV_AEAD_AES_128_GCM, key, 16);
    if (rc < 0)
        return rc;
    if (seal)
        rc = vrev__aead_seal(a, nonce, aad, aad_len, buf, len, tag);
    else
        rc = vrev__aead_open(a, nonce, aad, aad_len, buf, len, tag);
    vrev__aead_free(ctx, a);
    return rc;
}
