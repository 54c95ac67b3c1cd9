/* vrev_ctx: the home of everything other libraries keep global (allocator, logging). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

const vrev_allocator vrev__default_allocator = {.abi = VREV_ALLOCATOR_ABI,
                                                .malloc = default_malloc,
                                                .realloc = default_realloc,
                                                .free = default_free};

int vrev_ctx_new2(vrev_ctx **out, struct event_base *base, const vrev_allocator *alloc)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    if (!alloc)
        alloc = &vrev__default_allocator;
    if (alloc->abi != VREV_ALLOCATOR_ABI || !alloc->malloc || !alloc->realloc || !alloc->free)
        return VREV_ERR_INVAL;
    vrev_ctx *ctx = alloc->malloc(sizeof(*ctx), alloc->user);
    if (!ctx)
        return VREV_ERR_NOMEM;
    memset(ctx, 0, sizeof(*ctx));
    ctx->base = base;
    ctx->alloc = *alloc;
    ctx->log_level = VREV_LOG_INFO;
    ctx->log_rate = VREV_LOG_RATE_DEFAULT;
    ctx->log_burst = VREV_LOG_BURST_DEFAULT;
    vrev__limits_default(&ctx->limits);
    *out = ctx;
    return 0;
}

int vrev_ctx_new(vrev_ctx **out, struct event_base *base)
{
    return vrev_ctx_new2(out, base, NULL);
}

void vrev_ctx_close_lingering(vrev_ctx *ctx)
{
    if (!ctx)
        return;
    /* TLS layers freed just before are closed in the loop's next pass (libevent finalizes a
     * bufferevent there): they must not start lingering then */
    ctx->no_linger = true;
    if (ctx->close_lingering)
        ctx->close_lingering(ctx);
    if (ctx->close_post) /* vrev_ctx_post_enable's event must not outlive the program's loop */
        ctx->close_post(ctx);
}

void vrev_ctx_free(vrev_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->free_post) /* its event belongs to the loop */
        ctx->free_post(ctx);
    if (ctx->free_base) {
        /* A program's own loop is gone by now (ctx.h): it closed them itself. */
        vrev_ctx_close_lingering(ctx);
        /* finishes libevent's deferred work, which may still use ctx and the transports'
         * states (a layer's free callback runs there) */
        ctx->free_base(ctx->base);
    }
    for (size_t i = 0; i < ctx->n_transports; i++)
        if (ctx->transports[i].free_state)
            ctx->transports[i].free_state(ctx->transports[i].state);
    vrev__free(ctx, ctx->transports);
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The bucket of `component`: its own, a free one, or the least recently refilled one. */
static struct vrev__log_bucket *log_bucket(vrev_ctx *ctx, const char *component)
{
    struct vrev__log_bucket *b = ctx->log_buckets, *oldest = b;
    for (size_t i = 0; i < VREV__LOG_BUCKETS; i++, b++) {
        if (!strncmp(b->component, component, sizeof(b->component) - 1))
            return b;
        if (!b->component[0] || b->last_ms < oldest->last_ms)
            oldest = b;
        if (!b->component[0])
            break;
    }
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->component, sizeof(oldest->component), "%s", component);
    oldest->milli = ctx->log_burst * 1000u;
    oldest->last_ms = now_ms();
    return oldest;
}

/* May a line of `component` be written now? Debug lines always may (asked for explicitly). */
static bool log_admit(vrev_ctx *ctx, int level, const char *component, uint64_t *suppressed)
{
    *suppressed = 0;
    if (level >= VREV_LOG_DEBUG || ctx->log_rate == 0)
        return true;
    struct vrev__log_bucket *b = log_bucket(ctx, component);
    int64_t now = now_ms(), cap = (int64_t)ctx->log_burst * 1000;
    int64_t milli = b->milli + (now - b->last_ms) * (int64_t)ctx->log_rate;
    b->milli = (uint32_t)(milli > cap ? cap : milli);
    b->last_ms = now;
    if (b->milli < 1000) {
        b->suppressed++;
        return false;
    }
    b->milli -= 1000;
    *suppressed = b->suppressed;
    b->suppressed = 0;
    return true;
}

static void vlog(vrev_ctx *ctx, int level, const char *component, bool limited, const char *fmt,
                 va_list ap) __attribute__((format(printf, 5, 0)));

static void vlog(vrev_ctx *ctx, int level, const char *component, bool limited, const char *fmt,
                 va_list ap)
{
    component = component ? component : "";
    uint64_t suppressed = 0;
    if (limited && !log_admit(ctx, level, component, &suppressed))
        return;
    char line[1024];
    vrev__user_enter(ctx);
    if (suppressed) {
        snprintf(line, sizeof(line), "(%llu more lines of this kind were not logged)",
                 (unsigned long long)suppressed);
        ctx->log_cb(level, component, line, ctx->log_user);
    }
    vsnprintf(line, sizeof(line), fmt, ap);
    ctx->log_cb(level, component, line, ctx->log_user);
    vrev__user_leave(ctx);
}

void vrev__log(vrev_ctx *ctx, int level, const char *component, const char *fmt, ...)
{
    if (!vrev__log_enabled(ctx, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, component, true, fmt, ap);
    va_end(ap);
}

void vrev__log_all(vrev_ctx *ctx, int level, const char *component, const char *fmt, ...)
{
    if (!vrev__log_enabled(ctx, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, component, false, fmt, ap);
    va_end(ap);
}

void vrev_ctx_set_log_rate(vrev_ctx *ctx, unsigned per_second, unsigned burst)
{
    if (!ctx)
        return;
    ctx->log_rate = per_second;
    ctx->log_burst = per_second ? (burst ? burst : per_second) : 0;
    memset(ctx->log_buckets, 0, sizeof(ctx->log_buckets));
}

void *vrev__alloc_malloc(const vrev_allocator *a, size_t size)
{
    return a->malloc(size ? size : 1, a->user);
}

void *vrev__alloc_realloc(const vrev_allocator *a, void *ptr, size_t size)
{
    return a->realloc(ptr, size ? size : 1, a->user);
}

void vrev__alloc_free(const vrev_allocator *a, void *ptr)
{
    if (ptr)
        a->free(ptr, a->user);
}

char *vrev__alloc_strdup(const vrev_allocator *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = vrev__alloc_malloc(a, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *vrev__malloc(vrev_ctx *ctx, size_t size)
{
    return vrev__alloc_malloc(&ctx->alloc, size);
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
    return vrev__alloc_realloc(&ctx->alloc, ptr, size);
}

char *vrev__strdup(vrev_ctx *ctx, const char *s)
{
    return vrev__alloc_strdup(&ctx->alloc, s);
}

void vrev__free(vrev_ctx *ctx, void *ptr)
{
    vrev__alloc_free(&ctx->alloc, ptr);
}

void vrev__wipe(void *ptr, size_t len)
{
    volatile uint8_t *p = ptr;
    while (len--)
        *p++ = 0;
}

const struct vrev__transport *vrev__ctx_transport(const vrev_ctx *ctx, const char *name)
{
    for (size_t i = 0; ctx && name && i < ctx->n_transports; i++)
        if (!strcmp(ctx->transports[i].name, name))
            return &ctx->transports[i];
    return NULL;
}

int vrev_ctx_add_transport(vrev_ctx *ctx, const vrev_transport_ops *ops, void *state)
{
    if (!ctx || !ops || ops->abi != VREV_TRANSPORT_OPS_ABI || !ops->wrap || !ops->name)
        return VREV_ERR_INVAL;
    size_t n = strlen(ops->name);
    if (n == 0 || n > VREV_TRANSPORT_NAME_MAX || !strcasecmp(ops->name, "tls") ||
        !strcasecmp(ops->name, "none") || vrev__ctx_transport(ctx, ops->name))
        return VREV_ERR_INVAL;
    struct vrev__transport *v =
        vrev__realloc(ctx, ctx->transports, (ctx->n_transports + 1) * sizeof(*v));
    if (!v)
        return VREV_ERR_NOMEM;
    ctx->transports = v;
    struct vrev__transport *t = &v[ctx->n_transports++];
    memcpy(t->name, ops->name, n + 1);
    t->wrap = ops->wrap;
    t->free_state = ops->free_state;
    t->state = state;
    return 0;
}
