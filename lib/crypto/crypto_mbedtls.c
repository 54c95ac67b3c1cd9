/* The crypto interface over mbedTLS 2.28 (DESIGN.md §7: always supported; routers and small
 * systems).
 *
 * Only the *_ret hash functions are used: 2.28 marks the older void ones deprecated and we
 * build with -Werror. The AEAD contexts live inside our object, so they come from the ctx
 * allocator; mbedtls_gcm_setkey and mbedtls_md_setup still allocate a little through
 * mbedTLS's own (process-global) calloc. Every mbedtls_*_free zeroizes its context.
 */
#if defined(VREV_CRYPTO_MBEDTLS)

#include <stdio.h>
#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/cipher.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/md5.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "crypto.h"

const char *vrev__crypto_backend_name(void)
{
    return "mbedtls";
}

int vrev__crypto_backend_version(char *buf, size_t cap)
{
    char v[32]; /* mbedtls_version_get_string_full writes at most 18 bytes */
    mbedtls_version_get_string_full(v);
    return snprintf(buf, cap, "%s", v);
}

/* --- AEAD ---------------------------------------------------------------------------------- */

struct vrev__aead {
    int alg;
    union {
        mbedtls_gcm_context gcm;
        mbedtls_chachapoly_context chachapoly;
    } u;
};

static int aead_setkey(struct vrev__aead *a, const uint8_t *key)
{
    int ret;
    if (a->alg == VREV_AEAD_AES_128_GCM) {
        mbedtls_gcm_init(&a->u.gcm);
        ret = mbedtls_gcm_setkey(&a->u.gcm, MBEDTLS_CIPHER_ID_AES, key, 128);
    } else {
        mbedtls_chachapoly_init(&a->u.chachapoly);
        ret = mbedtls_chachapoly_setkey(&a->u.chachapoly, key);
    }
    if (ret == MBEDTLS_ERR_CIPHER_ALLOC_FAILED)
        return VREV_ERR_NOMEM;
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__aead_new(vrev_ctx *ctx, struct vrev__aead **out, int alg, const uint8_t *key,
                   size_t key_len)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    bool ok = (alg == VREV_AEAD_AES_128_GCM && key_len == 16) ||
              (alg == VREV_AEAD_CHACHA20_POLY1305 && key_len == 32);
    if (!ok || !key)
        return VREV_ERR_INVAL;
    struct vrev__aead *a = vrev__malloc(ctx, sizeof(*a));
    if (!a)
        return VREV_ERR_NOMEM;
    a->alg = alg;
    int rc = aead_setkey(a, key);
    if (rc < 0) {
        vrev__aead_free(ctx, a);
        return rc;
    }
    *out = a;
    return 0;
}

void vrev__aead_free(vrev_ctx *ctx, struct vrev__aead *a)
{
    if (!a)
        return;
    if (a->alg == VREV_AEAD_AES_128_GCM)
        mbedtls_gcm_free(&a->u.gcm);
    else
        mbedtls_chachapoly_free(&a->u.chachapoly);
    vrev__wipe(a, sizeof(*a));
    vrev__free(ctx, a);
}

static int aead_encrypt(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
                        uint8_t tag[16])
{
    int ret;
    if (a->alg == VREV_AEAD_AES_128_GCM)
        ret = mbedtls_gcm_crypt_and_tag(&a->u.gcm, MBEDTLS_GCM_ENCRYPT, len, nonce,
                                        VREV_AEAD_NONCE_LEN, aad, aad_len, in, out,
                                        VREV_AEAD_TAG_LEN, tag);
    else
        ret = mbedtls_chachapoly_encrypt_and_tag(&a->u.chachapoly, len, nonce, aad, aad_len, in,
                                                 out, tag);
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__aead_seal(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                    size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[16])
{
    return aead_encrypt(a, nonce, aad, aad_len, buf, len, buf, tag);
}

/* Both check the tag in constant time and zero the output when it does not match. */
static int aead_decrypt(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, const uint8_t tag[16],
                        uint8_t *out)
{
    int ret;
    if (a->alg == VREV_AEAD_AES_128_GCM) {
        ret = mbedtls_gcm_auth_decrypt(&a->u.gcm, len, nonce, VREV_AEAD_NONCE_LEN, aad, aad_len,
                                       tag, VREV_AEAD_TAG_LEN, in, out);
        if (ret == MBEDTLS_ERR_GCM_AUTH_FAILED)
            return VREV_ERR_AUTH;
    } else {
        ret = mbedtls_chachapoly_auth_decrypt(&a->u.chachapoly, len, nonce, aad, aad_len, tag, in,
                                              out);
        if (ret == MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED)
            return VREV_ERR_AUTH;
    }
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__aead_open(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                    size_t aad_len, uint8_t *buf, size_t len, const uint8_t tag[16])
{
    return aead_decrypt(a, nonce, aad, aad_len, buf, len, tag, buf);
}

/* One piece is sealed straight into out. mbedtls_gcm_update in 2.28 takes only multiples of
 * 16 bytes before its last call, so several pieces are gathered into out first and sealed
 * there in place. */
int vrev__aead_seal_iov(struct vrev__aead *a, const uint8_t nonce[12], const struct vrev__iov *in,
                        size_t n, uint8_t *out, uint8_t tag[16])
{
    if (n == 1 && in[0].len > 0)
        return aead_encrypt(a, nonce, NULL, 0, in[0].base, in[0].len, out, tag);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i].len > 0)
            memcpy(out + len, in[i].base, in[i].len);
        len += in[i].len;
    }
    return aead_encrypt(a, nonce, NULL, 0, out, len, out, tag);
}

int vrev__aead_open_to(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *in, size_t len,
                       const uint8_t tag[16], uint8_t *out)
{
    return aead_decrypt(a, nonce, NULL, 0, in, len, tag, out);
}

/* --- AES-128 single block ------------------------------------------------------------------ */

static int aes128_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16], int mode)
{
    mbedtls_aes_context aes;
    mbedtls_aes_init(&aes);
    int ret = mode == MBEDTLS_AES_ENCRYPT ? mbedtls_aes_setkey_enc(&aes, key, 128)
                                          : mbedtls_aes_setkey_dec(&aes, key, 128);
    if (ret == 0)
        ret = mbedtls_aes_crypt_ecb(&aes, mode, in, out);
    mbedtls_aes_free(&aes);
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__aes128_encrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    return aes128_block(key, in, out, MBEDTLS_AES_ENCRYPT);
}

int vrev__aes128_decrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    return aes128_block(key, in, out, MBEDTLS_AES_DECRYPT);
}

/* --- AES-128-CFB128 stream ----------------------------------------------------------------- */

struct vrev__aes_cfb {
    mbedtls_aes_context aes; /* CFB runs the forward cipher in both directions */
    uint8_t iv[16];          /* the running feedback register */
    size_t iv_off;           /* bytes of iv used so far; lets calls split mid-block */
    int mode;
};

int vrev__aes128_cfb_new(vrev_ctx *ctx, struct vrev__aes_cfb **out, const uint8_t key[16],
                         const uint8_t iv[16], bool encrypt)
{
    if (!out || !key || !iv)
        return VREV_ERR_INVAL;
    *out = NULL;
    struct vrev__aes_cfb *c = vrev__malloc(ctx, sizeof(*c));
    if (!c)
        return VREV_ERR_NOMEM;
    mbedtls_aes_init(&c->aes);
    memcpy(c->iv, iv, sizeof(c->iv));
    c->iv_off = 0;
    c->mode = encrypt ? MBEDTLS_AES_ENCRYPT : MBEDTLS_AES_DECRYPT;
    if (mbedtls_aes_setkey_enc(&c->aes, key, 128) != 0) {
        vrev__aes128_cfb_free(ctx, c);
        return VREV_ERR_CRYPTO;
    }
    *out = c;
    return 0;
}

void vrev__aes128_cfb_free(vrev_ctx *ctx, struct vrev__aes_cfb *c)
{
    if (!c)
        return;
    mbedtls_aes_free(&c->aes);
    vrev__wipe(c, sizeof(*c));
    vrev__free(ctx, c);
}

int vrev__aes128_cfb_update(struct vrev__aes_cfb *c, uint8_t *buf, size_t len)
{
    int ret = mbedtls_aes_crypt_cfb128(&c->aes, c->mode, len, &c->iv_off, c->iv, buf, buf);
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

/* --- hashes -------------------------------------------------------------------------------- */

static int sha256_family(const struct vrev__iov *v, size_t n, uint8_t *out, int is224)
{
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    int ret = mbedtls_sha256_starts_ret(&c, is224);
    for (size_t i = 0; i < n && ret == 0; i++)
        if (v[i].len > 0)
            ret = mbedtls_sha256_update_ret(&c, v[i].base, v[i].len);
    /* finish writes 32 bytes even for SHA-224; only 28 of them are the digest. */
    uint8_t full[32];
    if (ret == 0)
        ret = mbedtls_sha256_finish_ret(&c, full);
    mbedtls_sha256_free(&c);
    if (ret == 0)
        memcpy(out, full, is224 ? 28 : 32);
    vrev__wipe(full, sizeof(full)); /* callers hash keys (VMess response keys) */
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__sha256(const struct vrev__iov *v, size_t n, uint8_t out[32])
{
    return sha256_family(v, n, out, 0);
}

int vrev__sha224(const struct vrev__iov *v, size_t n, uint8_t out[28])
{
    return sha256_family(v, n, out, 1);
}

int vrev__md5(const struct vrev__iov *v, size_t n, uint8_t out[16])
{
    mbedtls_md5_context c;
    mbedtls_md5_init(&c);
    int ret = mbedtls_md5_starts_ret(&c);
    for (size_t i = 0; i < n && ret == 0; i++)
        if (v[i].len > 0)
            ret = mbedtls_md5_update_ret(&c, v[i].base, v[i].len);
    if (ret == 0)
        ret = mbedtls_md5_finish_ret(&c, out);
    mbedtls_md5_free(&c);
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__sha1(const struct vrev__iov *v, size_t n, uint8_t out[20])
{
    mbedtls_sha1_context c;
    mbedtls_sha1_init(&c);
    int ret = mbedtls_sha1_starts_ret(&c);
    for (size_t i = 0; i < n && ret == 0; i++)
        if (v[i].len > 0)
            ret = mbedtls_sha1_update_ret(&c, v[i].base, v[i].len);
    if (ret == 0)
        ret = mbedtls_sha1_finish_ret(&c, out);
    mbedtls_sha1_free(&c);
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

static int hmac(mbedtls_md_type_t type, const uint8_t *key, size_t key_len,
                const struct vrev__iov *v, size_t n, uint8_t *out)
{
    mbedtls_md_context_t c;
    mbedtls_md_init(&c);
    int ret = mbedtls_md_setup(&c, mbedtls_md_info_from_type(type), 1);
    if (ret == MBEDTLS_ERR_MD_ALLOC_FAILED) {
        mbedtls_md_free(&c);
        return VREV_ERR_NOMEM;
    }
    if (ret == 0)
        ret = mbedtls_md_hmac_starts(&c, key, key_len);
    for (size_t i = 0; i < n && ret == 0; i++)
        if (v[i].len > 0)
            ret = mbedtls_md_hmac_update(&c, v[i].base, v[i].len);
    if (ret == 0)
        ret = mbedtls_md_hmac_finish(&c, out);
    mbedtls_md_free(&c); /* zeroizes the key pads */
    return ret == 0 ? 0 : VREV_ERR_CRYPTO;
}

int vrev__hmac_sha256(const uint8_t *key, size_t key_len, const struct vrev__iov *v, size_t n,
                      uint8_t out[32])
{
    return hmac(MBEDTLS_MD_SHA256, key, key_len, v, n, out);
}

int vrev__hmac_md5(const uint8_t *key, size_t key_len, const struct vrev__iov *v, size_t n,
                   uint8_t out[16])
{
    return hmac(MBEDTLS_MD_MD5, key, key_len, v, n, out);
}

#endif /* VREV_CRYPTO_MBEDTLS */
