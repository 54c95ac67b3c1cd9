/* Counts per source address, for caps that one address must not exhaust (the pre-auth pool of
 * an inbound, the connections of a listener). A source is an IPv4 address, or the /64 of an
 * IPv6 address: one host usually holds a whole /64 and can pick any address in it, so a cap
 * per IPv6 address would cap nothing. An IPv4-mapped IPv6 address (a dual-stack listener's
 * view of an IPv4 peer) is the IPv4 address it maps.
 *
 * The table is a chained hash whose function mixes in a random secret of the table's: the keys
 * are chosen by peers, who must not be able to aim every source at one chain.
 * Entries are intrusive: an owner embeds struct vrev__source first in an entry of its own
 * size and keeps what it needs after it. Not thread-safe (one event loop). */
#ifndef VREV_NET_SOURCES_H
#define VREV_NET_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/addr.h"
#include "core/core.h"

struct vrev__source_key {
    uint64_t prefix; /* IPv4: the address (host order); IPv6: the first 64 bits */
    uint8_t family;  /* 4 or 6; 0: no address (counted as one source) */
};

void vrev__source_key_of(struct vrev__source_key *k, const struct sockaddr *sa);
void vrev__source_key_of_addr(struct vrev__source_key *k, const struct vrev__addr *a);
bool vrev__source_key_equal(const struct vrev__source_key *a, const struct vrev__source_key *b);
/* "203.0.113.7" or "2001:db8:1:2::/64", for logs. */
void vrev__source_key_text(const struct vrev__source_key *k, char *buf, size_t len);

struct vrev__source {
    struct vrev__source *chain; /* the table's */
    struct vrev__source_key key;
    uint32_t n; /* the owner's count */
};

struct vrev__sources {
    vrev_ctx *ctx;
    struct vrev__source **slots; /* n_slots, a power of two; NULL until the first add */
    size_t n_slots, n;
    size_t entry_size;
    uint64_t seed[2];
};

/* An empty table whose entries are `entry_size` bytes (>= sizeof(struct vrev__source)).
 * Returns 0 or VREV_ERR_CRYPTO (no random seed). */
int vrev__sources_init(struct vrev__sources *t, vrev_ctx *ctx, size_t entry_size);
/* Free every entry (the owner has dropped its references). */
void vrev__sources_cleanup(struct vrev__sources *t);
struct vrev__source *vrev__sources_find(const struct vrev__sources *t,
                                        const struct vrev__source_key *k);
/* The entry for `k`, added zeroed (n 0) if missing; NULL: out of memory. */
struct vrev__source *vrev__sources_get(struct vrev__sources *t, const struct vrev__source_key *k);
/* Remove and free `s`. */
void vrev__sources_remove(struct vrev__sources *t, struct vrev__source *s);

#endif
