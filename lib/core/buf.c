#include <string.h>

#include "buf.h"

uint8_t *vrev__buf_reserve(vrev_ctx *ctx, struct vrev__buf *b, size_t n)
{
    size_t used = b->end - b->start;
    size_t want;
    if (!vrev__add_size(used, n, &want))
        return NULL;
    if (b->cap - b->end >= n)
        return b->data + b->end;
    if (b->cap >= want) { /* enough room once the consumed head is dropped */
        memmove(b->data, b->data + b->start, used);
    } else {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < want) {
            if (cap > SIZE_MAX / 2)
                return NULL;
            cap *= 2;
        }
        uint8_t *p = vrev__malloc(ctx, cap);
        if (!p)
            return NULL;
        if (used)
            memcpy(p, b->data + b->start, used);
        vrev__free(ctx, b->data);
        b->data = p;
        b->cap = cap;
    }
    b->start = 0;
    b->end = used;
    return b->data + b->end;
}

int vrev__buf_append(vrev_ctx *ctx, struct vrev__buf *b, const void *p, size_t n)
{
    uint8_t *tail = vrev__buf_reserve(ctx, b, n);
    if (!tail)
        return VREV_ERR_NOMEM;
    if (n)
        memcpy(tail, p, n);
    b->end += n;
    return 0;
}

void vrev__buf_consume(struct vrev__buf *b, size_t n)
{
    size_t used = b->end - b->start;
    if (n >= used) {
        b->start = b->end = 0;
        return;
    }
    b->start += n;
}

void vrev__buf_free(vrev_ctx *ctx, struct vrev__buf *b)
{
    vrev__free(ctx, b->data);
    memset(b, 0, sizeof(*b));
}
