/* Choosing a server and a user for each connection of an outbound with several (vnext /
 * servers), as V2Ray 4.34 does: servers in turn (round robin), a user of that server at
 * random. Entries are (server, user) pairs in config order; consecutive entries naming the
 * same server are that server's users. */
#include "crypto/crypto.h"
#include "proxy.h"

int vrev__picker_init(struct vrev__picker *p, vrev_ctx *ctx, const void *entries, size_t n,
                      size_t stride)
{
    p->n_servers = 0;
    p->next = 0;
    p->first = n ? vrev__calloc(ctx, n + 1, sizeof(*p->first)) : NULL;
    if (!p->first)
        return n ? VREV_ERR_NOMEM : VREV_ERR_INVAL;
    const uint8_t *e = entries;
    for (size_t i = 0; i < n; i++) {
        const struct vrev__addr *a = (const struct vrev__addr *)(e + i * stride);
        if (i == 0 || !vrev__addr_equal(a, (const struct vrev__addr *)(e + (i - 1) * stride)))
            p->first[p->n_servers++] = i;
    }
    p->first[p->n_servers] = n;
    return 0;
}

size_t vrev__picker_pick(struct vrev__picker *p)
{
    size_t s = p->next;
    p->next = (p->next + 1) % p->n_servers;
    size_t lo = p->first[s], users = p->first[s + 1] - lo;
    uint32_t r = 0;
    if (users > 1 && vrev__random_bytes((uint8_t *)&r, sizeof(r)) < 0)
        r = 0;
    return lo + (users > 1 ? r % users : 0);
}

void vrev__picker_cleanup(struct vrev__picker *p, vrev_ctx *ctx)
{
    vrev__free(ctx, p->first);
    p->first = NULL;
    p->n_servers = 0;
}
