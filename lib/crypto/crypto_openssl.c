/* The crypto interface over OpenSSL 3 libcrypto (DESIGN.md §7: the fast path on servers).
 *
 * Only EVP interfaces are used: the low-level AES_*, SHA256_*, MD5_* and HMAC_CTX functions
 * are deprecated in OpenSSL 3 and we build with -Werror (HMAC is ours, over EVP_MD_CTX).
 * The AEAD keeps one EVP_CIPHER_CTX per key and re-initialises it with just the nonce for
 * every message: that keeps the key schedule and allocates nothing per chunk. OpenSSL
 * allocates through its own allocator (CRYPTO_set_mem_functions is process-global, so we
 * leave it alone); our objects use the ctx allocator.
 */
#if defined(VREV_CRYPTO_OPENSSL)

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"

/* EVP takes int lengths; larger buffers are fed in pieces of this size. */
#define EVP_PIECE (1 << 30)

const char *vrev__crypto_backend_name(void)
{
    return "openssl";
}

int vrev__crypto_backend_version(char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s", OpenSSL_version(OPENSSL_VERSION));
}

/* Run in[0..len) through EVP_CipherUpdate into out (NULL: AAD, nothing written). */
static int cipher_update(EVP_CIPHER_CTX *c, uint8_t *out, const uint8_t *in, size_t len)
{
    while (len > 0) {
        int n = len > EVP_PIECE ? EVP_PIECE : (int)len;
        int outl = 0;
        if (EVP_CipherUpdate(c, out, &outl, in, n) != 1 || (out && outl != n))
            return VREV_ERR_CRYPTO;
        in += n;
        if (out)
            out += n;
        len -= (size_t)n;
    }
    return 0;
}

/* --- AEAD ---------------------------------------------------------------------------------- */

struct vrev__aead {
    EVP_CIPHER_CTX *cipher; /* holds the key schedule; EVP_CIPHER_CTX_free cleanses it */
};

static const EVP_CIPHER *aead_cipher(int alg, size_t key_len)
{
    if (alg == VREV_AEAD_AES_128_GCM && key_len == 16)
        return EVP_aes_128_gcm();
    if (alg == VREV_AEAD_CHACHA20_POLY1305 && key_len == 32)
        return EVP_chacha20_poly1305();
    return NULL;
}

int vrev__aead_new(vrev_ctx *ctx, struct vrev__aead **out, int alg, const uint8_t *key,
                   size_t key_len)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    const EVP_CIPHER *type = aead_cipher(alg, key_len);
    if (!type || !key)
        return VREV_ERR_INVAL;
    struct vrev__aead *a = vrev__malloc(ctx, sizeof(*a));
    if (!a)
        return VREV_ERR_NOMEM;
    a->cipher = EVP_CIPHER_CTX_new();
    if (!a->cipher) {
        vrev__free(ctx, a);
        return VREV_ERR_NOMEM;
    }
    /* Both ciphers default to a 12-byte nonce, which is what we always pass. */
    if (EVP_CipherInit_ex(a->cipher, type, NULL, key, NULL, 1) != 1) {
        vrev__aead_free(ctx, a);
        return VREV_ERR_CRYPTO;
    }
    *out = a;
    return 0;
}

void vrev__aead_free(vrev_ctx *ctx, struct vrev__aead *a)
{
    if (!a)
        return;
    EVP_CIPHER_CTX_free(a->cipher);
    vrev__wipe(a, sizeof(*a));
    vrev__free(ctx, a);
}

/* Start one message: a NULL cipher and key keep the key schedule and only reset the nonce,
 * the direction and the running MAC. Then feed the AAD. */
static int aead_begin(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                      size_t aad_len, int enc)
{
    if (EVP_CipherInit_ex(a->cipher, NULL, NULL, NULL, nonce, enc) != 1)
        return VREV_ERR_CRYPTO;
    return cipher_update(a->cipher, NULL, aad, aad_len);
}

/* End a sealed message: Final, then the tag. */
static int seal_finish(struct vrev__aead *a, uint8_t tag[16])
{
    uint8_t last[32]; /* AEAD finals write nothing; room in case a provider disagrees */
    int outl = 0;
    if (EVP_CipherFinal_ex(a->cipher, last, &outl) != 1 || outl != 0)
        return VREV_ERR_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->cipher, EVP_CTRL_AEAD_GET_TAG, VREV_AEAD_TAG_LEN, tag) != 1)
        return VREV_ERR_CRYPTO;
    return 0;
}

int vrev__aead_seal(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                    size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[16])
{
    int rc = aead_begin(a, nonce, aad, aad_len, 1);
    if (rc == 0)
        rc = cipher_update(a->cipher, buf, buf, len);
    return rc == 0 ? seal_finish(a, tag) : rc;
}

/* EVP_CipherUpdate takes any lengths for both AEADs, so each piece goes straight to out. */
int vrev__aead_seal_iov(struct vrev__aead *a, const uint8_t nonce[12], const struct vrev__iov *in,
                        size_t n, uint8_t *out, uint8_t tag[16])
{
    int rc = aead_begin(a, nonce, NULL, 0, 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = cipher_update(a->cipher, out, in[i].base, in[i].len);
        out += in[i].len;
    }
    return rc == 0 ? seal_finish(a, tag) : rc;
}

static int aead_decrypt(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, const uint8_t tag[16],
                        uint8_t *out)
{
    uint8_t expect[VREV_AEAD_TAG_LEN]; /* the ctrl takes a non-const pointer */
    uint8_t last[32];
    int outl = 0;
    memcpy(expect, tag, sizeof(expect));
    /* The tag can only be set once the context is in decrypt mode (ChaCha20-Poly1305 refuses
     * it otherwise), so after aead_begin. */
    int rc = aead_begin(a, nonce, aad, aad_len, 0);
    if (rc == 0 &&
        EVP_CIPHER_CTX_ctrl(a->cipher, EVP_CTRL_AEAD_SET_TAG, sizeof(expect), expect) != 1)
        rc = VREV_ERR_CRYPTO;
    if (rc == 0)
        rc = cipher_update(a->cipher, out, in, len);
    /* Final fails exactly when the tag does not match (it does nothing else for an AEAD). */
    if (rc == 0 && EVP_CipherFinal_ex(a->cipher, last, &outl) != 1)
        rc = VREV_ERR_AUTH;
    return rc;
}

int vrev__aead_open(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                    size_t aad_len, uint8_t *buf, size_t len, const uint8_t tag[16])
{
    return aead_decrypt(a, nonce, aad, aad_len, buf, len, tag, buf);
}

int vrev__aead_open_to(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *in, size_t len,
                       const uint8_t tag[16], uint8_t *out)
{
    return aead_decrypt(a, nonce, NULL, 0, in, len, tag, out);
}

/* --- AES-128 single block ------------------------------------------------------------------ */

static int aes128_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16], int enc)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return VREV_ERR_NOMEM;
    int outl = 0;
    int rc = VREV_ERR_CRYPTO;
    /* Padding off: ECB decrypt would otherwise hold the block back for Final. */
    if (EVP_CipherInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL, enc) == 1 &&
        EVP_CIPHER_CTX_set_padding(c, 0) == 1 && EVP_CipherUpdate(c, out, &outl, in, 16) == 1 &&
        outl == 16)
        rc = 0;
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int vrev__aes128_encrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    return aes128_block(key, in, out, 1);
}

int vrev__aes128_decrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    return aes128_block(key, in, out, 0);
}

/* --- AES-128-CFB128 stream ----------------------------------------------------------------- */

struct vrev__aes_cfb {
    EVP_CIPHER_CTX *cipher;
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
    c->cipher = EVP_CIPHER_CTX_new();
    if (!c->cipher) {
        vrev__free(ctx, c);
        return VREV_ERR_NOMEM;
    }
    if (EVP_CipherInit_ex(c->cipher, EVP_aes_128_cfb128(), NULL, key, iv, encrypt) != 1) {
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
    EVP_CIPHER_CTX_free(c->cipher);
    vrev__wipe(c, sizeof(*c));
    vrev__free(ctx, c);
}

int vrev__aes128_cfb_update(struct vrev__aes_cfb *c, uint8_t *buf, size_t len)
{
    return cipher_update(c->cipher, buf, buf, len);
}

/* --- hashes -------------------------------------------------------------------------------- */

/* One explicitly fetched EVP_MD per call: with EVP_sha256() and friends every
 * EVP_DigestInit_ex fetches again, and HMAC below initialises the digest two or three times. */
struct md_job {
    EVP_MD *md;
    EVP_MD_CTX *c;
};

static int md_open(struct md_job *j, const char *name)
{
    j->md = EVP_MD_fetch(NULL, name, NULL);
    j->c = EVP_MD_CTX_new();
    if (!j->md)
        return VREV_ERR_CRYPTO;
    return j->c ? 0 : VREV_ERR_NOMEM;
}

static void md_close(struct md_job *j)
{
    EVP_MD_CTX_free(j->c); /* cleanses the hash state */
    EVP_MD_free(j->md);
}

/* out = H(prefix || v[0] || ... || v[n-1]); prefix may be empty. */
static int md_run(struct md_job *j, const uint8_t *prefix, size_t prefix_len,
                  const struct vrev__iov *v, size_t n, uint8_t *out)
{
    if (EVP_DigestInit_ex(j->c, j->md, NULL) != 1)
        return VREV_ERR_CRYPTO;
    if (prefix_len > 0 && EVP_DigestUpdate(j->c, prefix, prefix_len) != 1)
        return VREV_ERR_CRYPTO;
    for (size_t i = 0; i < n; i++)
        if (v[i].len > 0 && EVP_DigestUpdate(j->c, v[i].base, v[i].len) != 1)
            return VREV_ERR_CRYPTO;
    return EVP_DigestFinal_ex(j->c, out, NULL) == 1 ? 0 : VREV_ERR_CRYPTO;
}

static int digest(const char *name, const struct vrev__iov *v, size_t n, uint8_t *out)
{
    struct md_job j;
    int rc = md_open(&j, name);
    if (rc == 0)
        rc = md_run(&j, NULL, 0, v, n, out);
    md_close(&j);
    return rc;
}

int vrev__sha256(const struct vrev__iov *v, size_t n, uint8_t out[32])
{
    return digest(OSSL_DIGEST_NAME_SHA2_256, v, n, out);
}

int vrev__sha224(const struct vrev__iov *v, size_t n, uint8_t out[28])
{
    return digest(OSSL_DIGEST_NAME_SHA2_224, v, n, out);
}

int vrev__md5(const struct vrev__iov *v, size_t n, uint8_t out[16])
{
    return digest(OSSL_DIGEST_NAME_MD5, v, n, out);
}

int vrev__sha1(const struct vrev__iov *v, size_t n, uint8_t out[20])
{
    return digest(OSSL_DIGEST_NAME_SHA1, v, n, out);
}

/* HMAC (RFC 2104) built on the digest: EVP_MAC and HMAC() cost about 2.8 us per short
 * message in OpenSSL 3.0 (a MAC fetch and two more contexts), twice this. It matters because
 * the VMess KDF nests HMACs: a path of n elements costs 2^n base HMACs, some 40 per handshake. */
#define HMAC_BLOCK 64 /* the block size of SHA-256 and MD5 */

static int hmac_run(struct md_job *j, const uint8_t *key, size_t key_len, const struct vrev__iov *v,
                    size_t n, uint8_t *out, size_t out_len)
{
    uint8_t pad[HMAC_BLOCK] = {0}, inner[EVP_MAX_MD_SIZE];
    struct vrev__iov kv = {key, key_len}, iv = {inner, out_len};
    int rc = 0;
    if (key_len > HMAC_BLOCK)
        rc = md_run(j, NULL, 0, &kv, 1, pad); /* long keys are hashed first */
    else if (key_len > 0)
        memcpy(pad, key, key_len);
    for (size_t i = 0; i < HMAC_BLOCK; i++)
        pad[i] ^= 0x36;
    if (rc == 0)
        rc = md_run(j, pad, HMAC_BLOCK, v, n, inner);
    for (size_t i = 0; i < HMAC_BLOCK; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    if (rc == 0)
        rc = md_run(j, pad, HMAC_BLOCK, &iv, 1, out);
    vrev__wipe(pad, sizeof(pad));
    vrev__wipe(inner, sizeof(inner));
    return rc;
}

static int hmac(const char *name, const uint8_t *key, size_t key_len, const struct vrev__iov *v,
                size_t n, uint8_t *out, size_t out_len)
{
    struct md_job j;
    int rc = md_open(&j, name);
    if (rc == 0)
        rc = hmac_run(&j, key, key_len, v, n, out, out_len);
    md_close(&j);
    return rc;
}

int vrev__hmac_sha256(const uint8_t *key, size_t key_len, const struct vrev__iov *v, size_t n,
                      uint8_t out[32])
{
    return hmac(OSSL_DIGEST_NAME_SHA2_256, key, key_len, v, n, out, 32);
}

int vrev__hmac_md5(const uint8_t *key, size_t key_len, const struct vrev__iov *v, size_t n,
                   uint8_t out[16])
{
    return hmac(OSSL_DIGEST_NAME_MD5, key, key_len, v, n, out, 16);
}

#endif /* VREV_CRYPTO_OPENSSL */
