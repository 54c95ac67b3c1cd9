/* SipHash-2-4 (see siphash.h): an ARX permutation on four 64-bit words; each 8-byte block of
 * the message is xored into v3, put through 2 rounds, then into v0; the last block carries
 * the message length in its top byte; 4 rounds finish. */
#include "siphash.h"

#include "core/core.h"
#include "crypto.h"

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void round_(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13) ^ s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16) ^ s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21) ^ s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17) ^ s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void absorb(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    round_(s);
    round_(s);
    s->v0 ^= m;
}

static uint64_t le64(const uint8_t *p, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= (uint64_t)p[i] << (8 * i);
    return m;
}

uint64_t vrev__siphash24(const struct vrev__siphash_key *key, const uint8_t *p, size_t len)
{
    /* the initial words are "somepseudorandomlygeneratedbytes" in ASCII, xored with the key */
    struct sip s = {key->k0 ^ 0x736f6d6570736575ull, key->k1 ^ 0x646f72616e646f6dull,
                    key->k0 ^ 0x6c7967656e657261ull, key->k1 ^ 0x7465646279746573ull};
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8)
        absorb(&s, le64(p + i, 8));
    uint64_t last = len > whole ? le64(p + whole, len - whole) : 0;
    absorb(&s, last | (uint64_t)(len & 0xff) << 56);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        round_(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

int vrev__siphash_key_random(struct vrev__siphash_key *key)
{
    uint8_t b[16];
    if (vrev__random_bytes(b, sizeof(b)) < 0)
        return VREV_ERR_CRYPTO;
    key->k0 = le64(b, 8);
    key->k1 = le64(b + 8, 8);
    vrev__wipe(b, sizeof(b));
    return 0;
}
