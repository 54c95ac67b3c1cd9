/* A growable byte queue: append at the tail, consume from the head. Used for codec output
 * (the "pending/consume" half of the sans-IO shape). Allocates through the context. */
#ifndef VREV_CORE_BUF_H
#define VREV_CORE_BUF_H

#include "core.h"

struct vrev__buf {
    uint8_t *data;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte */
    size_t cap;
};

/* Make room for n more bytes at the tail; returns the tail pointer or NULL (out of memory). */
uint8_t *vrev__buf_reserve(vrev_ctx *ctx, struct vrev__buf *b, size_t n);
int vrev__buf_append(vrev_ctx *ctx, struct vrev__buf *b, const void *p, size_t n);

static inline size_t vrev__buf_len(const struct vrev__buf *b)
{
    return b->end - b->start;
}

static inline void vrev__buf_commit(struct vrev__buf *b, size_t n)
{
    b->end += n;
}

/* Drop queued bytes past the first len (undo of appends made after vrev__buf_len()). */
static inline void vrev__buf_truncate(struct vrev__buf *b, size_t len)
{
    if (len < b->end - b->start)
        b->end = b->start + len;
}

void vrev__buf_consume(struct vrev__buf *b, size_t n);
void vrev__buf_free(vrev_ctx *ctx, struct vrev__buf *b);

#endif
