/* The vrev program's memory policy. A library must not set process-wide malloc policy; the
 * program may, and these two things decide whether memory goes back to the system after a
 * burst of connections. Measured with 1000 tunneled connections (bench/bench.py footprint):
 * 3 s after they closed, a portal had kept +20% (OpenSSL) / +43% (mbedTLS) over its idle RSS
 * and a bridge +66% / +133%; with these, +3% (OpenSSL) / +8..9% (mbedTLS) on both sides.
 *
 * 1. libevent keeps one small record per file descriptor number it has ever watched (16 bytes,
 *    its evmap) until the event_base is freed. Allocated from the heap, each lands between the
 *    buffers of the connection that first used that descriptor, and after the connections
 *    close every such record pins its own 4 KiB page: 1000 descriptors kept 600..900 pages.
 *    libevent's blocks of at most POOL_BLOCK bytes therefore come from a dense pool of their
 *    own (event_set_mem_functions), where 1000 of them take 32 KiB. The catch: memory that
 *    libevent hands out for the caller to free() (evbuffer_readln, evbuffer_readline) may now
 *    come from the pool; nothing in vrev calls those, and nothing may.
 * 2. glibc returns only the top of its heap by itself; pages freed inside it stay resident
 *    until malloc_trim(). The allocators given to libevent and to libvrev count the bytes in
 *    use, and once that has fallen TRIM_DROP below its peak since the last trim, a timer trims
 *    TRIM_DELAY_MS later: once after a burst of closes, not once per close.
 * Each alone leaves most of it (mbedTLS, portal / bridge: pool only +44% / +120%, trim only
 * +38% / +87%). Fixed mmap/trim thresholds (mallopt) made no difference on top: malloc_trim()
 * does not look at them.
 *
 * Single-threaded, like the rest of the program. Under a sanitizer everything here stands
 * aside, so that libevent's allocations stay visible to it. */
#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli.h"

#if defined(__SANITIZE_ADDRESS__)
#define MEM_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define MEM_SANITIZER 1
#endif
#endif
#ifndef MEM_SANITIZER
#define MEM_SANITIZER 0
#endif

#define POOL_BLOCK 32 /* libevent's evmap_io is 16 bytes */
/* 128 Ki descriptors; past them the heap takes over. Address space that is touched only as it
 * is used, but charged in full where overcommit is off (vm.overcommit_memory=2): kept small. */
#define POOL_SPAN ((size_t)4 << 20)
#define TRIM_DROP ((size_t)64 << 10) /* bytes in use below the peak before a trim */
#define TRIM_DELAY_MS 1000           /* after the first drop: a burst ends first */

/* --- the pool of small blocks --------------------------------------------------------------- */

static uint8_t *pool;    /* POOL_SPAN bytes of address space; pages are touched when used */
static size_t pool_used; /* bytes handed out at least once */
static void *pool_free;  /* freed blocks, linked through their first word */

static int in_pool(const void *p)
{
    return pool && (const uint8_t *)p >= pool && (const uint8_t *)p < pool + POOL_SPAN;
}

static void *pool_get(void)
{
    void *p = pool_free;
    if (p) {
        memcpy(&pool_free, p, sizeof(pool_free));
        return p;
    }
    if (!pool || pool_used == POOL_SPAN)
        return NULL; /* the heap takes over */
    p = pool + pool_used;
    pool_used += POOL_BLOCK;
    return p;
}

static void pool_put(void *p)
{
    memcpy(p, &pool_free, sizeof(pool_free));
    pool_free = p;
}

/* --- bytes in use, and the trim they trigger -------------------------------------------------- */

static size_t in_use; /* heap bytes held by libevent and libvrev */
static size_t peak;   /* the most in_use has been since the last trim */
static struct event *trim_timer;

static size_t block_size(void *p)
{
#ifdef __GLIBC__
    return p ? malloc_usable_size(p) : 0;
#else
    (void)p;
    return 0;
#endif
}

static void count_alloc(void *p)
{
    in_use += block_size(p);
    if (in_use > peak)
        peak = in_use;
}

static void count_free(void *p)
{
    size_t n = block_size(p);
    in_use = n < in_use ? in_use - n : 0;
}

static void trim_now(void)
{
#ifdef __GLIBC__
    if (!MEM_SANITIZER) {
        malloc_trim(0);
    }
#endif
    peak = in_use;
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    trim_now();
}

/* Called only from libvrev's frees, which run in event callbacks, where adding an event is
 * allowed (libevent's own frees can come from inside its data structures: those only count). */
static void maybe_schedule_trim(void)
{
    if (trim_timer && peak - in_use >= TRIM_DROP && !event_pending(trim_timer, EV_TIMEOUT, NULL)) {
        struct timeval tv = {TRIM_DELAY_MS / 1000, (TRIM_DELAY_MS % 1000) * 1000};
        event_add(trim_timer, &tv);
    }
}

/* --- libevent's allocator --------------------------------------------------------------------- */

static void *ev_malloc(size_t n)
{
    void *p = n <= POOL_BLOCK ? pool_get() : NULL;
    if (!p) {
        p = malloc(n);
        count_alloc(p);
    }
    return p;
}

static void *ev_realloc(void *p, size_t n)
{
    if (!p)
        return ev_malloc(n);
    if (in_pool(p)) {
        if (n <= POOL_BLOCK)
            return p;
        void *q = malloc(n);
        if (!q)
            return NULL;
        count_alloc(q);
        memcpy(q, p, POOL_BLOCK);
        pool_put(p);
        return q;
    }
    count_free(p);
    void *q = realloc(p, n);
    count_alloc(q ? q : p);
    return q;
}

static void ev_free(void *p)
{
    if (in_pool(p)) {
        pool_put(p);
    } else if (p) {
        count_free(p);
        free(p);
    }
}

/* --- libvrev's allocator ---------------------------------------------------------------------- */

static void *lib_malloc(size_t n, void *user)
{
    (void)user;
    void *p = malloc(n);
    count_alloc(p);
    return p;
}

static void *lib_realloc(void *p, size_t n, void *user)
{
    (void)user;
    count_free(p);
    void *q = realloc(p, n);
    count_alloc(q ? q : p);
    return q;
}

static void lib_free(void *p, void *user)
{
    (void)user;
    if (!p)
        return;
    count_free(p);
    free(p);
    maybe_schedule_trim();
}

static const vrev_allocator lib_allocator = {
    .abi = VREV_ALLOCATOR_ABI, .malloc = lib_malloc, .realloc = lib_realloc, .free = lib_free};

/* --- jansson's allocator: wipe what it frees ----------------------------------------------------
 * The configuration's JSON tree and jansson's lexer buffers hold the file's UUIDs, passwords
 * and inline private keys. libvrev wipes the tree's strings before it frees the tree, but a
 * library must not install allocators for jansson (json_set_alloc_funcs is process-global, and
 * libvrev keeps no global state): the program does, so that everything jansson frees is wiped.
 * Each block carries its size in front (jansson's free function is not told it). */

#define WIPE_HEADER 16 /* keeps malloc's alignment for what follows */

void vrev_cli_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static void *json_malloc(size_t n)
{
    if (n > SIZE_MAX - WIPE_HEADER)
        return NULL;
    unsigned char *p = malloc(n + WIPE_HEADER);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + WIPE_HEADER;
}

static void json_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - WIPE_HEADER;
    size_t n;
    memcpy(&n, p, sizeof(n));
    vrev_cli_wipe(p, n + WIPE_HEADER);
    free(p);
}

/* --- the program's interface -------------------------------------------------------------------
 */

void vrev_cli_mem_init(void)
{
    json_set_alloc_funcs(json_malloc, json_free); /* before any JSON is read */
    if (MEM_SANITIZER)
        return;
    void *span = mmap(NULL, POOL_SPAN, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    pool = span == MAP_FAILED ? NULL : span;
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
}

const vrev_allocator *vrev_cli_allocator(void)
{
    return MEM_SANITIZER ? NULL : &lib_allocator;
}

void vrev_cli_mem_start(struct event_base *base)
{
    if (MEM_SANITIZER)
        return;
    trim_timer = evtimer_new(base, on_trim, NULL);
    trim_now(); /* what reading the configuration left behind */
}

void vrev_cli_mem_stop(void)
{
    if (trim_timer)
        event_free(trim_timer);
    trim_timer = NULL;
}
