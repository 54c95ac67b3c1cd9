/* vrev_ctx: the home of everything other libraries keep global (allocator, logging). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static void *default_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void *default_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    return realloc(ptr, size);
}

static void default_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static const vrev_allocator default_allocator = {
    VREV_ALLOCATOR_ABI, default_malloc, default_realloc, default_free, NULL,
};

int vrev_ctx_new2(vrev_ctx **out, struct event_base *base, const vrev_allocator *alloc)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    if (!alloc)
        alloc = &default_allocator;
    if (alloc->abi != VREV_ALLOCATOR_ABI || !alloc->malloc || !alloc->realloc || !alloc->free)
        return VREV_ERR_INVAL;
    vrev_ctx *ctx = alloc->malloc(sizeof(*ctx), alloc->user);
    if (!ctx)
        return VREV_ERR_NOMEM;
    memset(ctx, 0, sizeof(*ctx));
    ctx->base = base;
    ctx->alloc = *alloc;
    ctx->log_level = VREV_LOG_INFO;
    *out = ctx;
    return 0;
}

int vrev_ctx_new(vrev_ctx **out, struct event_base *base)
{
    return vrev_ctx_new2(out, base, NULL);
}

void vrev_ctx_free(vrev_ctx *ctx)
{
    if (!ctx)
        return;
    vrev_allocator alloc = ctx->alloc;
    alloc.free(ctx, alloc.user);
}

struct event_base *vrev_ctx_base(const vrev_ctx *ctx)
{
    return ctx ? ctx->base : NULL;
}

void vrev_ctx_set_log(vrev_ctx *ctx, int max_level, vrev_log_cb cb, void *user)
{
    if (!ctx)
        return;
    ctx->log_level = max_level;
    ctx->log_cb = cb;
    ctx->log_user = user;
}

const char *vrev_log_level_name(int level)
{
    switch (level) {
    case VREV_LOG_ERROR:
        return "error";
    case VREV_LOG_WARN:
        return "warn";
    case VREV_LOG_INFO:
        return "info";
    case VREV_LOG_DEBUG:
        return "debug";
    default:
        return "?";
    }
}

void vrev__log(vrev_ctx *ctx, int level, const char *component, const char *fmt, ...)
{
    if (!vrev__log_enabled(ctx, level))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ctx->log_cb(level, component ? component : "", line, ctx->log_user);
}

void *vrev__malloc(vrev_ctx *ctx, size_t size)
{
    return ctx->alloc.malloc(size ? size : 1, ctx->alloc.user);
}

void *vrev__calloc(vrev_ctx *ctx, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return NULL;
    void *p = vrev__malloc(ctx, total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *vrev__realloc(vrev_ctx *ctx, void *ptr, size_t size)
{
    return ctx->alloc.realloc(ptr, size ? size : 1, ctx->alloc.user);
}

void vrev__free(vrev_ctx *ctx, void *ptr)
{
    if (ptr)
        ctx->alloc.free(ptr, ctx->alloc.user);
}

void vrev__wipe(void *ptr, size_t len)
{
    volatile uint8_t *p = ptr;
    while (len--)
        *p++ = 0;
}
