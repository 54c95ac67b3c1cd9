#include <string.h>

#include "mux_table.h"

uint32_t vrev__mux_table_home(const struct vrev__mux_table *t, uint16_t sid, uint32_t cap)
{
    uint8_t b[2] = {(uint8_t)(sid >> 8), (uint8_t)sid};
    return (uint32_t)vrev__siphash24(&t->key, b, sizeof(b)) & (cap - 1);
}

static uint32_t slot_of(const struct vrev__mux_table *t, uint16_t sid)
{
    return vrev__mux_table_home(t, sid, t->cap);
}

struct vrev__mux_session *vrev__mux_table_find(const struct vrev__mux_table *t, uint16_t sid)
{
    if (!t->count)
        return NULL;
    for (uint32_t i = slot_of(t, sid);; i = (i + 1) & (t->cap - 1)) {
        struct vrev__mux_session *s = &t->slots[i];
        if (!s->used)
            return NULL;
        if (s->sid == sid)
            return s;
    }
}

static struct vrev__mux_session *place(struct vrev__mux_table *t, uint16_t sid)
{
    uint32_t i = slot_of(t, sid);
    while (t->slots[i].used)
        i = (i + 1) & (t->cap - 1);
    return &t->slots[i];
}

static int grow(vrev_ctx *ctx, struct vrev__mux_table *t)
{
    uint32_t cap = t->cap ? t->cap * 2 : 16;
    if (!t->keyed) {
        /* no random source (cannot happen on Linux >= 3.17): a key that at least differs
         * per table and per run, from the table's address and the stack's */
        if (vrev__siphash_key_random(&t->key) < 0) {
            t->key.k0 = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
            t->key.k1 = (uint64_t)(uintptr_t)&cap * 0xc2b2ae3d27d4eb4full;
        }
        t->keyed = true;
    }
    struct vrev__mux_session *slots = vrev__calloc(ctx, cap, sizeof(*slots));
    if (!slots)
        return VREV_ERR_NOMEM;
    struct vrev__mux_table old = *t;
    t->slots = slots;
    t->cap = cap;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.slots[i].used)
            *place(t, old.slots[i].sid) = old.slots[i];
    vrev__free(ctx, old.slots);
    return 0;
}

struct vrev__mux_session *vrev__mux_table_insert(vrev_ctx *ctx, struct vrev__mux_table *t,
                                                 uint16_t sid, uint8_t network)
{
    if ((t->count + 1) * 2 > t->cap && grow(ctx, t) < 0)
        return NULL;
    struct vrev__mux_session *s = place(t, sid);
    s->sid = sid;
    s->used = 1;
    s->network = network;
    s->user = NULL;
    t->count++;
    return s;
}

bool vrev__mux_table_remove(struct vrev__mux_table *t, uint16_t sid)
{
    struct vrev__mux_session *s = vrev__mux_table_find(t, sid);
    if (!s)
        return false;
    uint32_t mask = t->cap - 1;
    uint32_t hole = (uint32_t)(s - t->slots);
    /* Backward shift: pull later members of the probe run into the hole when their home
     * slot does not lie strictly between the hole and their position. */
    for (uint32_t j = (hole + 1) & mask; t->slots[j].used; j = (j + 1) & mask) {
        uint32_t home = slot_of(t, t->slots[j].sid);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    memset(&t->slots[hole], 0, sizeof(t->slots[hole]));
    t->count--;
    return true;
}

void vrev__mux_table_free(vrev_ctx *ctx, struct vrev__mux_table *t)
{
    vrev__free(ctx, t->slots);
    memset(t, 0, sizeof(*t));
}
