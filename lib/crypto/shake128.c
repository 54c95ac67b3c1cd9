/* SHAKE128 (FIPS 202 §6.2) over our own Keccak-f[1600] (FIPS 202 §3).
 *
 * Why our own: VMess masks chunk lengths and draws padding from a SHAKE128 stream, squeezed
 * 2 bytes at a time for the life of a connection. mbedTLS 2.28 has no SHA-3 at all, and
 * OpenSSL 3.0 can only squeeze an XOF once (EVP_DigestFinalXOF; incremental squeeze came in
 * 3.3), so neither backend gives us an incremental squeeze. One implementation for both
 * builds also means the masking stream cannot differ between them.
 *
 * State layout: lane A[x, y] is state[x + 5 y]; byte i of the state is byte i % 8 of lane
 * i / 8, little-endian (FIPS 202 §3.1.2 with the bit order of Appendix B.1).
 */
#include <string.h>

#include "crypto.h"

#define SHAKE128_RATE 168 /* bytes: (1600 - 2 * 128) / 8 */
#define KECCAK_ROUNDS 24

/* RC[ir] of FIPS 202 Algorithm 6 (iota), generated from rc(t) of Algorithm 5. */
static const uint64_t round_constants[KECCAK_ROUNDS] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

static inline uint64_t rotl64(uint64_t v, unsigned n)
{
    return (v << n) | (v >> ((64 - n) & 63));
}

/* One round with the steps written out over the 25 lanes, so that lanes stay in registers and
 * rotations are constants: about 7,400 instructions per permutation at -O2 where the generic
 * loops (x % 5 indexing, a rotation table, a second state array) took 33,000. VMess squeezes
 * one permutation per 42 chunks per direction. */
static inline void keccak_round(uint64_t a[25], uint64_t rc)
{
    uint64_t c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
    uint64_t c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
    uint64_t c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
    uint64_t c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
    uint64_t c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
    uint64_t d0 = c4 ^ rotl64(c1, 1), d1 = c0 ^ rotl64(c2, 1), d2 = c1 ^ rotl64(c3, 1);
    uint64_t d3 = c2 ^ rotl64(c4, 1), d4 = c3 ^ rotl64(c0, 1);
    /* theta, then rho and pi: lane (x, y) moves to (y, 2x + 3y) (FIPS 202 §3.2.3), rotated
     * by its rho offset (t + 1)(t + 2) / 2 mod 64 along that walk (Algorithm 2) */
    uint64_t b0 = a[0] ^ d0;
    uint64_t b10 = rotl64(a[1] ^ d1, 1);
    uint64_t b20 = rotl64(a[2] ^ d2, 62);
    uint64_t b5 = rotl64(a[3] ^ d3, 28);
    uint64_t b15 = rotl64(a[4] ^ d4, 27);
    uint64_t b16 = rotl64(a[5] ^ d0, 36);
    uint64_t b1 = rotl64(a[6] ^ d1, 44);
    uint64_t b11 = rotl64(a[7] ^ d2, 6);
    uint64_t b21 = rotl64(a[8] ^ d3, 55);
    uint64_t b6 = rotl64(a[9] ^ d4, 20);
    uint64_t b7 = rotl64(a[10] ^ d0, 3);
    uint64_t b17 = rotl64(a[11] ^ d1, 10);
    uint64_t b2 = rotl64(a[12] ^ d2, 43);
    uint64_t b12 = rotl64(a[13] ^ d3, 25);
    uint64_t b22 = rotl64(a[14] ^ d4, 39);
    uint64_t b23 = rotl64(a[15] ^ d0, 41);
    uint64_t b8 = rotl64(a[16] ^ d1, 45);
    uint64_t b18 = rotl64(a[17] ^ d2, 15);
    uint64_t b3 = rotl64(a[18] ^ d3, 21);
    uint64_t b13 = rotl64(a[19] ^ d4, 8);
    uint64_t b14 = rotl64(a[20] ^ d0, 18);
    uint64_t b24 = rotl64(a[21] ^ d1, 2);
    uint64_t b9 = rotl64(a[22] ^ d2, 61);
    uint64_t b19 = rotl64(a[23] ^ d3, 56);
    uint64_t b4 = rotl64(a[24] ^ d4, 14);
    /* chi and iota */
    a[0] = b0 ^ (~b1 & b2) ^ rc;
    a[1] = b1 ^ (~b2 & b3);
    a[2] = b2 ^ (~b3 & b4);
    a[3] = b3 ^ (~b4 & b0);
    a[4] = b4 ^ (~b0 & b1);
    a[5] = b5 ^ (~b6 & b7);
    a[6] = b6 ^ (~b7 & b8);
    a[7] = b7 ^ (~b8 & b9);
    a[8] = b8 ^ (~b9 & b5);
    a[9] = b9 ^ (~b5 & b6);
    a[10] = b10 ^ (~b11 & b12);
    a[11] = b11 ^ (~b12 & b13);
    a[12] = b12 ^ (~b13 & b14);
    a[13] = b13 ^ (~b14 & b10);
    a[14] = b14 ^ (~b10 & b11);
    a[15] = b15 ^ (~b16 & b17);
    a[16] = b16 ^ (~b17 & b18);
    a[17] = b17 ^ (~b18 & b19);
    a[18] = b18 ^ (~b19 & b15);
    a[19] = b19 ^ (~b15 & b16);
    a[20] = b20 ^ (~b21 & b22);
    a[21] = b21 ^ (~b22 & b23);
    a[22] = b22 ^ (~b23 & b24);
    a[23] = b23 ^ (~b24 & b20);
    a[24] = b24 ^ (~b20 & b21);
}

static void keccak_f1600(uint64_t a[25])
{
    for (unsigned round = 0; round < KECCAK_ROUNDS; round++)
        keccak_round(a, round_constants[round]);
}

static inline void xor_byte(uint64_t state[25], size_t i, uint8_t v)
{
    state[i / 8] ^= (uint64_t)v << (8 * (i % 8));
}

static inline uint8_t get_byte(const uint64_t state[25], size_t i)
{
    return (uint8_t)(state[i / 8] >> (8 * (i % 8)));
}

void vrev__shake128_init(struct vrev__shake128 *s, const uint8_t *seed, size_t len)
{
    memset(s->state, 0, sizeof(s->state));
    while (len >= SHAKE128_RATE) {
        for (size_t i = 0; i < SHAKE128_RATE; i++)
            xor_byte(s->state, i, seed[i]);
        keccak_f1600(s->state);
        seed += SHAKE128_RATE;
        len -= SHAKE128_RATE;
    }
    for (size_t i = 0; i < len; i++)
        xor_byte(s->state, i, seed[i]);
    /* The XOF domain bits 1111 followed by pad10*1 (FIPS 202 §6.2, §5.1); when only one byte
     * of the block is free both land in it and make 0x9F. */
    xor_byte(s->state, len, 0x1F);
    xor_byte(s->state, SHAKE128_RATE - 1, 0x80);
    keccak_f1600(s->state);
    s->pos = 0;
}

void vrev__shake128_squeeze(struct vrev__shake128 *s, uint8_t *out, size_t len)
{
    while (len > 0) {
        if (s->pos == SHAKE128_RATE) {
            keccak_f1600(s->state);
            s->pos = 0;
        }
        size_t n = SHAKE128_RATE - s->pos;
        if (n > len)
            n = len;
        for (size_t i = 0; i < n; i++)
            out[i] = get_byte(s->state, s->pos + i);
        s->pos += n;
        out += n;
        len -= n;
    }
}
