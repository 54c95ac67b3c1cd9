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

/* Rotation offsets of rho for lane x + 5 y: (t + 1)(t + 2) / 2 mod 64 along the walk
 * (x, y) <- (y, 2x + 3y) from (1, 0) (FIPS 202 Algorithm 2). */
static const unsigned rho_offsets[25] = {
    0,  1,  62, 28, 27, /* y = 0 */
    36, 44, 6,  55, 20, /* y = 1 */
    3,  10, 43, 25, 39, /* y = 2 */
    41, 45, 15, 21, 8,  /* y = 3 */
    18, 2,  61, 56, 14, /* y = 4 */
};

static inline uint64_t rotl64(uint64_t v, unsigned n)
{
    return (v << n) | (v >> ((64 - n) & 63));
}

static void theta(uint64_t a[25])
{
    uint64_t c[5];
    for (unsigned x = 0; x < 5; x++)
        c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (unsigned x = 0; x < 5; x++) {
        uint64_t d = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
        for (unsigned y = 0; y < 25; y += 5)
            a[x + y] ^= d;
    }
}

/* rho and pi together: pi's A'[x, y] = A[(x + 3y) mod 5, x] is the same as moving lane (x, y)
 * to (y, 2x + 3y), which lets us rotate while we move. */
static void rho_pi(const uint64_t a[25], uint64_t b[25])
{
    for (unsigned y = 0; y < 5; y++)
        for (unsigned x = 0; x < 5; x++)
            b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(a[x + 5 * y], rho_offsets[x + 5 * y]);
}

static void chi(uint64_t a[25], const uint64_t b[25])
{
    for (unsigned y = 0; y < 25; y += 5)
        for (unsigned x = 0; x < 5; x++)
            a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y]);
}

static void keccak_f1600(uint64_t a[25])
{
    uint64_t b[25];
    for (unsigned round = 0; round < KECCAK_ROUNDS; round++) {
        theta(a);
        rho_pi(a, b);
        chi(a, b);
        a[0] ^= round_constants[round];
    }
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
