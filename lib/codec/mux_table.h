/* The session table of one mux: open addressing on the 16-bit session id, linear probing,
 * backward-shift deletion (no tombstones). Lookups and removals allocate nothing; the table
 * doubles when half full. The ids are the peer's choice, so their slots come from a keyed
 * hash (SipHash, a random key per table drawn when it first grows): a peer that cannot know
 * the key cannot pick ids that pile up in one probe run and make every lookup walk it. */
#ifndef VREV_CODEC_MUX_TABLE_H
#define VREV_CODEC_MUX_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "crypto/siphash.h"

struct vrev__mux_session {
    uint16_t sid;
    uint8_t used;
    uint8_t network;
    void *user;
};

struct vrev__mux_table {
    struct vrev__mux_session *slots;
    uint32_t cap; /* power of two, or 0 */
    uint32_t count;
    bool keyed; /* key drawn (at the first growth, or set by a test) */
    struct vrev__siphash_key key;
};

/* The home slot of sid in a table of `cap` slots (a power of two) under t's key. */
uint32_t vrev__mux_table_home(const struct vrev__mux_table *t, uint16_t sid, uint32_t cap);

struct vrev__mux_session *vrev__mux_table_find(const struct vrev__mux_table *t, uint16_t sid);
/* Insert a session that is not present. Returns it, or NULL when out of memory. */
struct vrev__mux_session *vrev__mux_table_insert(vrev_ctx *ctx, struct vrev__mux_table *t,
                                                 uint16_t sid, uint8_t network);
/* Remove sid; false if it was not there. */
bool vrev__mux_table_remove(struct vrev__mux_table *t, uint16_t sid);
void vrev__mux_table_free(vrev_ctx *ctx, struct vrev__mux_table *t);

#endif
