/* Internal core services shared by every module: allocation through the context's allocator,
 * logging through the context's callback, checked size arithmetic. */
#ifndef VREV_CORE_CORE_H
#define VREV_CORE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "vrev/ctx.h"
#include "vrev/error.h"
#include "vrev/transport.h"

struct bufferevent;
struct vrev__lingering;
struct vrev__post;

/* An embedder's layer (vrev/transport.h), as registered. */
struct vrev__transport {
    char name[VREV_TRANSPORT_NAME_MAX + 1];
    struct bufferevent *(*wrap)(void *state, struct bufferevent *lower, int role,
                                const char *peer_name, int *err);
    void (*free_state)(void *state);
    void *state;
};

/* Log lines per component are rate-limited (RELIABILITY.md 3.6): a token bucket each. */
#define VREV__LOG_BUCKETS 16
struct vrev__log_bucket {
    char component[16];
    int64_t last_ms;     /* last refill */
    uint32_t milli;      /* tokens x 1000 */
    uint64_t suppressed; /* lines dropped since the last one written */
};

struct vrev_ctx {
    struct event_base *base;
    vrev_allocator alloc;
    vrev_log_cb log_cb;
    void *log_user;
    int log_level;
    vrev_access_cb access_cb; /* vrev_ctx_set_access_log; NULL: none */
    void *access_user;
    unsigned log_rate, log_burst; /* lines per second and burst per component; 0: no limit */
    struct vrev__log_bucket log_buckets[VREV__LOG_BUCKETS];
    uint64_t conn_ids;                  /* the last connection id given out (vrev__conn_id) */
    struct vrev__transport *transports; /* registered by the embedder (vrev/transport.h) */
    size_t n_transports;
    /* a loop of its own (vrev_ctx_new_loop, lib/net/loop.c): freed with the ctx by this */
    void (*free_base)(struct event_base *base);
    /* TLS connections whose owner freed them, still sending their last bytes or waiting for
     * the peer's end (lib/net/tls.c, "lingering close"): the context's, closed by
     * close_lingering (vrev_ctx_close_lingering, vrev_ctx_free) */
    struct vrev__lingering *lingering;
    void (*close_lingering)(vrev_ctx *ctx);
    bool no_linger; /* since vrev_ctx_close_lingering: closed at once, nothing lingers */
    /* random bytes for VMess chunk padding (lib/codec/vmess_body.c), shared by every stream
     * of the context: one getrandom per 4 KiB instead of one per 256 bytes and stream */
    size_t pad_left;
    uint8_t pad_pool[4096];
    struct vrev__limits limits; /* vrev_ctx_set_limit; engines copy them when made */
    uint64_t buffered;          /* bytes held in the context's buffers (limits.buffered_total) */
    /* vrev_ctx_post's queue and wake-up (lib/net/post.c), made with a loop of the context's
     * own, or by vrev_ctx_post_enable on the program's; freed by free_post before the loop.
     * close_post (set by vrev_ctx_post_enable only) closes the wake-up of a program's loop in
     * vrev_ctx_close_lingering, before the program frees its loop. */
    struct vrev__post *post;
    void (*free_post)(vrev_ctx *ctx);
    void (*close_post)(vrev_ctx *ctx);
    unsigned in_user_cb; /* the application's callbacks running now (vrev__user_enter) */
};

/* Around every call into the application from the loop (tunnel events, handlers, log and
 * access lines): while one runs, a portal, bridge or instance that is freed is only marked, and
 * freed from the loop once the callback and the code below it have returned (vrev__defer_free,
 * lib/net/net.h). */
static inline void vrev__user_enter(vrev_ctx *ctx)
{
    ctx->in_user_cb++;
}

static inline void vrev__user_leave(vrev_ctx *ctx)
{
    ctx->in_user_cb--;
}

/* The transport registered under `name`, or NULL. */
const struct vrev__transport *vrev__ctx_transport(const vrev_ctx *ctx, const char *name);

/* vrev__transport_wrap() (lib/net/layer.h) puts one on a connection. */

/* The C library's allocator (what vrev_ctx_new2() takes for NULL). */
extern const vrev_allocator vrev__default_allocator;

/* Allocation through an allocator (vrev/ctx.h's rules: realloc(NULL, n) mallocs, free(NULL)
 * is a no-op; a size of 0 asks for 1 byte). What the vrev__malloc() family does with the
 * context's allocator, for objects made without a context (vrev_tunnel_opts). */
void *vrev__alloc_malloc(const vrev_allocator *a, size_t size);
void *vrev__alloc_realloc(const vrev_allocator *a, void *ptr, size_t size);
void vrev__alloc_free(const vrev_allocator *a, void *ptr);
/* A copy of s (NULL when s is NULL or out of memory), freed with vrev__alloc_free(). */
char *vrev__alloc_strdup(const vrev_allocator *a, const char *s);

void *vrev__malloc(vrev_ctx *ctx, size_t size);
void *vrev__calloc(vrev_ctx *ctx, size_t count, size_t size);
void *vrev__realloc(vrev_ctx *ctx, void *ptr, size_t size);
void vrev__free(vrev_ctx *ctx, void *ptr);
/* A copy of the string s with the context's allocator (freed with vrev__free); NULL when s is
 * NULL or out of memory. */
char *vrev__strdup(vrev_ctx *ctx, const char *s);

/* The error-detail convention of the public constructors and reloads (vrev/error.h): call
 * vrev__err_begin() first, and return through vrev__err_end(), which leaves "" on success and,
 * on failure, vrev_strerror(rc) when nothing more precise was written. err may be NULL; nothing
 * is written when len is 0. vrev__err_end() returns rc. */
void vrev__err_begin(char *err, size_t len);
int vrev__err_end(int rc, char *err, size_t len);

/* Overwrite memory in a way the compiler may not elide (for secrets). */
void vrev__wipe(void *ptr, size_t len);

static inline bool vrev__log_enabled(const vrev_ctx *ctx, int level)
{
    return ctx && ctx->log_cb && level <= ctx->log_level;
}

void vrev__log(vrev_ctx *ctx, int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same without the rate limit, for bursts bounded by their caller (config warnings). */
void vrev__log_all(vrev_ctx *ctx, int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A new connection id: one per accepted connection and per session a bridge is asked to open,
 * from 1, unique within the context. Log lines about a connection start with it, written
 * "c<N> " (VREV__CONN_FMT), so that one connection's lines can be picked out of many. */
static inline uint64_t vrev__conn_id(vrev_ctx *ctx)
{
    return ++ctx->conn_ids;
}
#define VREV__CONN_FMT "c%llu "
#define VREV__CONN_ARG(id) ((unsigned long long)(id))

/* Report an access event (vrev_access_cb) if a callback is installed. `from` may be NULL. */
void vrev__access(vrev_ctx *ctx, const char *from, const char *to, const char *inbound_tag,
                  const char *outbound_tag, int accepted, const char *reason);

/* a + b into *out; false on overflow. */
static inline bool vrev__add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline uint16_t vrev__get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void vrev__put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint32_t vrev__get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void vrev__put_u32(uint8_t *p, uint32_t v)
{
    vrev__put_u16(p, (uint16_t)(v >> 16));
    vrev__put_u16(p + 2, (uint16_t)v);
}

#endif
