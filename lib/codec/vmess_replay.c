/* Replay filter for VMess auth IDs and (user, key, IV) triples (WIRE-SPEC.md §4.3, §4.5;
 * RELIABILITY.md §2.1).
 *
 *   time ->   | gen[2] (oldest) | gen[1]          | gen[0] (current) |
 *             | 120 s           | 120 s           | start .. now     |
 *
 * A key is added to the current generation and looked up in all three. Every 120 s the oldest
 * generation is emptied and becomes the current one, so a key added at time t lives until at
 * least t + 240 s and at most t + 360 s. v2fly keeps two cuckoo filters swapped every 120 s,
 * which forgets an auth ID after as little as 120 s while one dated now + 120 stays valid for
 * 240 s; three generations close that gap.
 *
 * Each generation is an open-addressing table of 16-byte keys (linear probing, all-zero slot
 * = empty, the all-zero key kept in a flag). Tables start small and double up to a fixed cap
 * of at least 2 x max_per_period slots, so the load never exceeds 1/2 and memory is bounded.
 * When the current generation already holds max_per_period keys the filter fails closed:
 * new keys are refused (VREV_ERR_VMESS_REPLAY_FULL), nothing is forgotten early.
 */
#include <string.h>

#include "vmess.h"

#define GENERATIONS 3
#define MIN_SLOTS 16
#define MAX_PER_PERIOD ((size_t)1 << 28)

struct generation {
    uint8_t (*slots)[16];
    size_t n_slots; /* 0 or a power of two */
    size_t count;   /* keys held, the all-zero key included */
    bool has_zero;
};

struct vrev__vmess_replay {
    vrev_ctx *ctx;
    size_t max;       /* keys per generation */
    size_t max_slots; /* table size cap */
    bool started;
    int64_t start; /* when the current generation began */
    struct generation gen[GENERATIONS];
};

static const uint8_t zero_key[16];

int vrev__vmess_replay_new(vrev_ctx *ctx, struct vrev__vmess_replay **out, size_t max_per_period)
{
    if (!out || max_per_period == 0 || max_per_period > MAX_PER_PERIOD)
        return VREV_ERR_INVAL;
    struct vrev__vmess_replay *r = vrev__calloc(ctx, 1, sizeof(*r));
    if (!r)
        return VREV_ERR_NOMEM;
    r->ctx = ctx;
    r->max = max_per_period;
    r->max_slots = MIN_SLOTS;
    while (r->max_slots < 2 * max_per_period)
        r->max_slots *= 2;
    *out = r;
    return 0;
}

void vrev__vmess_replay_free(struct vrev__vmess_replay *r)
{
    if (!r)
        return;
    for (int i = 0; i < GENERATIONS; i++)
        vrev__free(r->ctx, r->gen[i].slots);
    vrev__free(r->ctx, r);
}

static size_t slot_of(const uint8_t key[16], size_t n_slots)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    h ^= h >> 29;
    h *= 0x9e3779b97f4a7c15ull; /* keys are already uniform; this only spreads the low bits */
    return (size_t)(h >> 32) & (n_slots - 1);
}

static bool gen_has(const struct generation *g, const uint8_t key[16])
{
    if (memcmp(key, zero_key, 16) == 0)
        return g->has_zero;
    if (g->n_slots == 0)
        return false;
    for (size_t i = slot_of(key, g->n_slots);; i = (i + 1) & (g->n_slots - 1)) {
        if (memcmp(g->slots[i], key, 16) == 0)
            return true;
        if (memcmp(g->slots[i], zero_key, 16) == 0)
            return false; /* load <= 1/2, so an empty slot always ends the probe */
    }
}

static void gen_place(struct generation *g, const uint8_t key[16])
{
    size_t i = slot_of(key, g->n_slots);
    while (memcmp(g->slots[i], zero_key, 16) != 0)
        i = (i + 1) & (g->n_slots - 1);
    memcpy(g->slots[i], key, 16);
}

static int gen_grow(vrev_ctx *ctx, struct generation *g, size_t n_slots)
{
    uint8_t(*slots)[16] = vrev__calloc(ctx, n_slots, 16);
    if (!slots)
        return VREV_ERR_NOMEM;
    struct generation ng = {slots, n_slots, g->count, g->has_zero};
    for (size_t i = 0; i < g->n_slots; i++)
        if (memcmp(g->slots[i], zero_key, 16) != 0)
            gen_place(&ng, g->slots[i]);
    vrev__free(ctx, g->slots);
    *g = ng;
    return 0;
}

static int gen_add(struct vrev__vmess_replay *r, struct generation *g, const uint8_t key[16])
{
    if (memcmp(key, zero_key, 16) == 0) {
        g->has_zero = true;
        g->count++;
        return 0;
    }
    if ((g->count + 1) * 2 > g->n_slots) {
        size_t n = g->n_slots ? g->n_slots * 2 : MIN_SLOTS;
        int rc = gen_grow(r->ctx, g, n < r->max_slots ? n : r->max_slots);
        if (rc < 0)
            return rc;
    }
    gen_place(g, key);
    g->count++;
    return 0;
}

static void gen_clear(struct generation *g)
{
    if (g->slots)
        memset(g->slots, 0, g->n_slots * 16);
    g->count = 0;
    g->has_zero = false;
}

/* Advance the generations to `now`. The emptied oldest table becomes the current one, keeping
 * its allocation. */
static void rotate(struct vrev__vmess_replay *r, int64_t now)
{
    if (!r->started) {
        r->started = true;
        r->start = now;
        return;
    }
    int64_t elapsed;
    if (now < r->start || __builtin_sub_overflow(now, r->start, &elapsed))
        return; /* the clock went back: keep everything */
    int64_t steps = elapsed / VREV_VMESS_REPLAY_PERIOD;
    if (steps == 0)
        return;
    for (int64_t s = 0; s < steps && s < GENERATIONS; s++) {
        struct generation oldest = r->gen[GENERATIONS - 1];
        memmove(&r->gen[1], &r->gen[0], (GENERATIONS - 1) * sizeof(r->gen[0]));
        gen_clear(&oldest);
        r->gen[0] = oldest;
    }
    r->start += steps * VREV_VMESS_REPLAY_PERIOD;
}

int vrev__vmess_replay_check_add(struct vrev__vmess_replay *r, const uint8_t key[16], int64_t now)
{
    rotate(r, now);
    for (int i = 0; i < GENERATIONS; i++)
        if (gen_has(&r->gen[i], key))
            return VREV_ERR_VMESS_REPLAY;
    if (r->gen[0].count >= r->max)
        return VREV_ERR_VMESS_REPLAY_FULL;
    return gen_add(r, &r->gen[0], key);
}

size_t vrev__vmess_replay_count(const struct vrev__vmess_replay *r)
{
    size_t n = 0;
    for (int i = 0; i < GENERATIONS; i++)
        n += r->gen[i].count;
    return n;
}
