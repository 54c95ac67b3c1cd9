/* Internal crypto interface (DESIGN.md §7): one small set of primitives, implemented over
 * OpenSSL libcrypto (crypto_openssl.c, -DVREV_CRYPTO_OPENSSL) or mbedTLS 2.28
 * (crypto_mbedtls.c, -DVREV_CRYPTO_MBEDTLS), plus what neither gives us directly
 * (SHAKE128 in shake128.c, FNV-1a, CRC32 in hash.c). Codecs use only this header.
 *
 * All functions are thread-safe (no shared state); objects belong to one thread.
 * Every function returning int returns 0 or a negative VREV_ERR_*.
 */
#ifndef VREV_CRYPTO_CRYPTO_H
#define VREV_CRYPTO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* A piece of a message for one-shot hashes over several buffers. */
struct vrev__iov {
    const void *base;
    size_t len;
};

/* --- AEAD ---------------------------------------------------------------------------------- */

enum vrev__aead_alg {
    VREV_AEAD_AES_128_GCM = 1,       /* 16-byte key */
    VREV_AEAD_CHACHA20_POLY1305 = 2, /* 32-byte key */
};
#define VREV_AEAD_TAG_LEN 16
#define VREV_AEAD_NONCE_LEN 12

struct vrev__aead; /* key schedule held by the backend */

/* Create an AEAD for `alg` with `key` (16 bytes for AES-128-GCM, 32 for ChaCha20-Poly1305).
 * Returns 0, VREV_ERR_INVAL (wrong key length / alg), VREV_ERR_NOMEM or VREV_ERR_CRYPTO. */
int vrev__aead_new(vrev_ctx *ctx, struct vrev__aead **out, int alg, const uint8_t *key,
                   size_t key_len);
void vrev__aead_free(vrev_ctx *ctx, struct vrev__aead *a); /* wipes the key; NULL ok */

/* Encrypt buf[0..len) in place and write the 16-byte tag to `tag`. aad may be NULL if 0. */
int vrev__aead_seal(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                    size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[16]);

/* Verify `tag` and decrypt buf[0..len) in place. Returns 0 or VREV_ERR_AUTH (buf content is
 * then unspecified), VREV_ERR_CRYPTO. */
int vrev__aead_open(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *aad,
                    size_t aad_len, uint8_t *buf, size_t len, const uint8_t tag[16]);

/* Encrypt the concatenation of in[0..n) into out and write the 16-byte tag (no AAD: the VMess
 * body). out may be in[0].base when n == 1 (in place); otherwise it must not overlap the
 * input. Lets a writer seal straight from its queue's pieces into the wire buffer. */
int vrev__aead_seal_iov(struct vrev__aead *a, const uint8_t nonce[12], const struct vrev__iov *in,
                        size_t n, uint8_t *out, uint8_t tag[16]);

/* Verify `tag` and decrypt in[0..len) into out (no AAD). out may equal in; otherwise the two
 * must not overlap. Lets a reader open a chunk straight from its input into its output. Returns
 * 0 or VREV_ERR_AUTH (out content is then unspecified), VREV_ERR_CRYPTO. */
int vrev__aead_open_to(struct vrev__aead *a, const uint8_t nonce[12], const uint8_t *in, size_t len,
                       const uint8_t tag[16], uint8_t *out);

/* --- AES-128 single block (VMess auth ID) --------------------------------------------------- */

int vrev__aes128_encrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
int vrev__aes128_decrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);

/* --- hashes -------------------------------------------------------------------------------- */

/* SHA-256 of the concatenation of n pieces. */
int vrev__sha256(const struct vrev__iov *v, size_t n, uint8_t out[32]);
/* HMAC-SHA256(key, concatenation of n pieces). */
int vrev__hmac_sha256(const uint8_t *key, size_t key_len, const struct vrev__iov *v, size_t n,
                      uint8_t out[32]);
/* MD5 of the concatenation of n pieces (VMess cmdKey and ChaCha key expansion; not for
 * security decisions of our own). */
int vrev__md5(const struct vrev__iov *v, size_t n, uint8_t out[16]);

/* SHA-1 of the concatenation of n pieces: only for the WebSocket handshake's
 * Sec-WebSocket-Accept (RFC 6455 §4.2.2), which is a fixed transform, not a security check. */
int vrev__sha1(const struct vrev__iov *v, size_t n, uint8_t out[20]);

/* CRC-32 (IEEE 802.3, as zlib's crc32): pass crc = 0 to start, feed the previous value to
 * continue. */
uint32_t vrev__crc32(uint32_t crc, const uint8_t *p, size_t len);
/* FNV-1a 32-bit over p[0..len). */
uint32_t vrev__fnv1a32(const uint8_t *p, size_t len);

/* SHAKE128 XOF (FIPS 202): absorb once, then squeeze any number of bytes in any pieces. */
struct vrev__shake128 {
    uint64_t state[25];
    size_t pos; /* next byte to squeeze within the rate (168 bytes) */
};
void vrev__shake128_init(struct vrev__shake128 *s, const uint8_t *seed, size_t len);
void vrev__shake128_squeeze(struct vrev__shake128 *s, uint8_t *out, size_t len);

/* --- misc ---------------------------------------------------------------------------------- */

/* Cryptographically secure random bytes (getrandom(2)). */
int vrev__random_bytes(uint8_t *out, size_t len);

/* Constant-time equality of two buffers of the same length. */
bool vrev__ct_equal(const void *a, const void *b, size_t len);

/* The backend's name: "openssl" or "mbedtls". */
const char *vrev__crypto_backend_name(void);

/* The backend library as it reports itself at run time ("OpenSSL 3.0.19 27 Jan 2026",
 * "mbed TLS 2.28.3"); the TLS side (lib/net/tls_*.c) is the same library. Writes into buf as
 * snprintf does and returns what snprintf returns. Thread-safe. */
int vrev__crypto_backend_version(char *buf, size_t cap);

/* --- additions for the legacy (alterId > 0) envelope and Trojan (WIRE-SPEC §4.10) ---------- */

/* SHA-224 of the concatenation of n pieces (Trojan password hash). */
int vrev__sha224(const struct vrev__iov *v, size_t n, uint8_t out[28]);
/* HMAC-MD5(key, concatenation of n pieces) (legacy VMess auth, §4.4). */
int vrev__hmac_md5(const uint8_t *key, size_t key_len, const struct vrev__iov *v, size_t n,
                   uint8_t out[16]);

/* AES-128-CFB128 as one stream per direction (legacy header and LEGACY body, §4.8): calls to
 * _update continue the stream, so any split of the input gives the same output. */
struct vrev__aes_cfb;

/* Returns 0, VREV_ERR_INVAL (a NULL argument), VREV_ERR_NOMEM or VREV_ERR_CRYPTO. `encrypt`
 * picks the direction. */
int vrev__aes128_cfb_new(vrev_ctx *ctx, struct vrev__aes_cfb **out, const uint8_t key[16],
                         const uint8_t iv[16], bool encrypt);
void vrev__aes128_cfb_free(vrev_ctx *ctx, struct vrev__aes_cfb *c); /* wipes the key; NULL ok */
/* Encrypt or decrypt buf[0..len) in place. Returns 0 or VREV_ERR_CRYPTO. */
int vrev__aes128_cfb_update(struct vrev__aes_cfb *c, uint8_t *buf, size_t len);

#endif
