/* Counts per source address (sources.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "sources.h"

#define MIN_SLOTS 16

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void key_v4(struct vrev__source_key *k, const uint8_t *a)
{
    k->family = 4;
    k->prefix = (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 | (uint64_t)a[2] << 8 | a[3];
}

static void key_v6(struct vrev__source_key *k, const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, mapped, sizeof(mapped))) {
        key_v4(k, a + 12);
        return;
    }
    k->family = 6;
    k->prefix = load_be64(a);
}

void vrev__source_key_of(struct vrev__source_key *k, const struct sockaddr *sa)
{
    memset(k, 0, sizeof(*k));
    if (sa && sa->sa_family == AF_INET)
        key_v4(k, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    else if (sa && sa->sa_family == AF_INET6)
        key_v6(k, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
}

void vrev__source_key_of_addr(struct vrev__source_key *k, const struct vrev__addr *a)
{
    memset(k, 0, sizeof(*k));
    if (a->type == VREV_ADDR_IPV4)
        key_v4(k, a->host);
    else if (a->type == VREV_ADDR_IPV6)
        key_v6(k, a->host);
}

bool vrev__source_key_equal(const struct vrev__source_key *a, const struct vrev__source_key *b)
{
    return a->family == b->family && a->prefix == b->prefix;
}

void vrev__source_key_text(const struct vrev__source_key *k, char *buf, size_t len)
{
    uint8_t b[16] = {0};
    char ip[INET6_ADDRSTRLEN];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(k->prefix >> (56 - 8 * i));
    if (k->family == 4)
        snprintf(buf, len, "%u.%u.%u.%u", b[4], b[5], b[6], b[7]);
    else if (k->family == 6 && inet_ntop(AF_INET6, b, ip, sizeof(ip)))
        snprintf(buf, len, "%s/64", ip);
    else
        snprintf(buf, len, "?");
}

/* A bijective 64-bit finalizer (MurmurHash3's) over the key and the table's secret. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t slot_of(const struct vrev__sources *t, const struct vrev__source_key *k)
{
    uint64_t h = mix(mix(k->prefix ^ t->seed[0]) ^ t->seed[1] ^ k->family);
    return (size_t)(h & (t->n_slots - 1));
}

int vrev__sources_init(struct vrev__sources *t, vrev_ctx *ctx, size_t entry_size)
{
    memset(t, 0, sizeof(*t));
    t->ctx = ctx;
    t->entry_size =
        entry_size < sizeof(struct vrev__source) ? sizeof(struct vrev__source) : entry_size;
    if (vrev__random_bytes((uint8_t *)t->seed, sizeof(t->seed)) < 0)
        return VREV_ERR_CRYPTO;
    return 0;
}

void vrev__sources_cleanup(struct vrev__sources *t)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        struct vrev__source *s = t->slots[i], *next;
        for (; s; s = next) {
            next = s->chain;
            vrev__free(t->ctx, s);
        }
    }
    vrev__free(t->ctx, t->slots);
    t->slots = NULL;
    t->n_slots = t->n = 0;
}

struct vrev__source *vrev__sources_find(const struct vrev__sources *t,
                                        const struct vrev__source_key *k)
{
    if (!t->n_slots)
        return NULL;
    for (struct vrev__source *s = t->slots[slot_of(t, k)]; s; s = s->chain)
        if (vrev__source_key_equal(&s->key, k))
            return s;
    return NULL;
}

/* Twice the slots once there are as many entries as slots (a failure keeps the old ones:
 * longer chains, still correct). */
static void grow(struct vrev__sources *t)
{
    size_t n = t->n_slots ? t->n_slots * 2 : MIN_SLOTS;
    struct vrev__source **slots = vrev__calloc(t->ctx, n, sizeof(*slots));
    if (!slots)
        return;
    struct vrev__source **old = t->slots;
    size_t n_old = t->n_slots;
    t->slots = slots;
    t->n_slots = n;
    for (size_t i = 0; i < n_old; i++) {
        struct vrev__source *s = old[i], *next;
        for (; s; s = next) {
            next = s->chain;
            size_t j = slot_of(t, &s->key);
            s->chain = slots[j];
            slots[j] = s;
        }
    }
    vrev__free(t->ctx, old);
}

struct vrev__source *vrev__sources_get(struct vrev__sources *t, const struct vrev__source_key *k)
{
    struct vrev__source *s = vrev__sources_find(t, k);
    if (s)
        return s;
    if (t->n >= t->n_slots)
        grow(t);
    if (!t->n_slots || !(s = vrev__calloc(t->ctx, 1, t->entry_size)))
        return NULL;
    s->key = *k;
    size_t j = slot_of(t, k);
    s->chain = t->slots[j];
    t->slots[j] = s;
    t->n++;
    return s;
}

void vrev__sources_remove(struct vrev__sources *t, struct vrev__source *s)
{
    for (struct vrev__source **p = &t->slots[slot_of(t, &s->key)]; *p; p = &(*p)->chain) {
        if (*p == s) {
            *p = s->chain;
            t->n--;
            vrev__free(t->ctx, s);
            return;
        }
    }
}
