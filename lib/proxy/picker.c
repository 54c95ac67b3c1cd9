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

void *vrev__outbound_picked_new(struct vrev__engine *e, const char *tag,
                                const struct vrev__outbound_ops *ops, const void *opts, size_t n,
                                size_t head, size_t ent_size, int *rc)
{
    *rc = VREV_ERR_INVAL;
    if (!opts || n == 0 || n > (SIZE_MAX - head) / ent_size)
        return NULL;
    struct vrev__outbound *ob = vrev__calloc(e->ctx, 1, head + n * ent_size);
    if (!ob) {
        *rc = VREV_ERR_NOMEM;
        return NULL;
    }
    *rc = vrev__outbound_init(ob, e, ops, tag);
    return ob;
}

void *vrev__picked_req_new(struct vrev__outbound *ob, struct vrev__picker *picker, const void *ent,
                           size_t stride, struct bufferevent *link,
                           const struct vrev__link_info *info, size_t size)
{
    struct vrev__picked_req *r = vrev__outbound_req_new(ob, link, info, size);
    if (r) {
        r->ob = ob;
        r->ent = (const uint8_t *)ent + vrev__picker_pick(picker) * stride;
        r->handoff = link ? NULL : info->handoff;
    }
    return r;
}

void vrev__picked_req_release(void *req) /* the engine stopped before the dial ended */
{
    struct vrev__picked_req *r = req;
    vrev__free(r->ob->engine->ctx, r);
}

void vrev__picked_req_failed(struct vrev__outbound *ob, const char *component, uint64_t conn_id,
                             struct bufferevent *link, struct vrev__handoff *h,
                             struct bufferevent *bev, int err)
{
    /* A stream opener (a bridge's tunnel: h) says why once per outage itself; its redials
     * would otherwise repeat this line several times a second. */
    if (err != VREV_ERR_CONNREFUSED && err != VREV_ERR_TIMEOUT)
        vrev__log(ob->engine->ctx, h ? VREV_LOG_DEBUG : VREV_LOG_WARN, component,
                  VREV__CONN_FMT "[%s] %s", VREV__CONN_ARG(conn_id), ob->tag ? ob->tag : "",
                  vrev_strerror(err));
    if (bev)
        bufferevent_free(bev);
    vrev__outbound_finish(ob, link, h, NULL, err, conn_id);
}
