/* SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for hash tables whose keys
 * a peer chooses (the mux session table), so that nobody without the key can pick inputs that
 * collide. Written from the paper's description; tested against its reference vectors. */
#ifndef VREV_CRYPTO_SIPHASH_H
#define VREV_CRYPTO_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit key as two words: k0 is the key's first 8 bytes read little-endian, k1 the next. */
struct vrev__siphash_key {
    uint64_t k0, k1;
};

uint64_t vrev__siphash24(const struct vrev__siphash_key *key, const uint8_t *p, size_t len);

/* A fresh key from the system's random source. Returns 0 or VREV_ERR_CRYPTO. */
int vrev__siphash_key_random(struct vrev__siphash_key *key);

#endif
