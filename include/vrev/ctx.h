/* libvrev context: allocator, logging, event loop.
 *
 * A vrev_ctx holds everything that other libraries keep in globals: the allocator, the log
 * callback and the registry of custom transports (vrev/transport.h). libvrev has no global
 * mutable state, so any number of contexts may coexist in one process.
 *
 * Thread safety: a context and every object created from it belong to the thread that runs
 * its event_base. Distinct contexts may be used from distinct threads concurrently. The one
 * exception is vrev_ctx_post(), which any thread may call: another thread has libvrev do
 * something (stop the loop, free an object, make one) by posting a function that the loop's
 * thread then runs. libvrev never calls evthread_use_pthreads() (it would change libevent for
 * the whole process); the allocator is only ever called from the loop's thread.
 *
 * Callbacks: an object may be freed from inside any callback the context runs (tunnel events,
 * handlers, log and access lines), its own included: the free then stops its callbacks at once
 * and completes in the loop once the callback has returned (so the loop must run once more:
 * vrev_ctx_free() does that for a context with a loop of its own).
 */
#ifndef VREV_CTX_H
#define VREV_CTX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

typedef struct vrev_ctx vrev_ctx;

/** Log levels, most severe first. */
enum vrev_log_level {
    VREV_LOG_ERROR = 0,
    VREV_LOG_WARN = 1,
    VREV_LOG_INFO = 2,
    VREV_LOG_DEBUG = 3
};

/** ABI version of struct vrev_allocator; set .abi to this value. */
#define VREV_ALLOCATOR_ABI 1

/** Caller-supplied allocator. All three functions are required. Each receives .user as its
 *  last argument. realloc(NULL, n) must behave as malloc(n); free(NULL) must be a no-op.
 *  The struct is copied by vrev_ctx_new2(); it need not outlive the call. */
typedef struct vrev_allocator {
    unsigned abi;
    void *(*malloc)(size_t size, void *user);
    void *(*realloc)(void *ptr, size_t size, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} vrev_allocator;

/** Log callback: one call per line, without a trailing newline. `component` names the
 *  module ("mux", "bridge", ...). Both strings are valid during the call only. */
typedef void (*vrev_log_cb)(int level, const char *component, const char *message, void *user);

/** Create a context that runs inside `base` (borrowed; it must outlive the context).
 *  `base` may be NULL for a context that does no I/O (codecs only); event-driven objects
 *  then fail with VREV_ERR_STATE.
 *  Returns 0, VREV_ERR_INVAL (out is NULL) or VREV_ERR_NOMEM. */
VREV_API int vrev_ctx_new(vrev_ctx **out, struct event_base *base);

/** Like vrev_ctx_new(), with a custom allocator (NULL: the C library's).
 *  Returns 0, VREV_ERR_INVAL (out is NULL, or the allocator is incomplete or has an unknown
 *  abi) or VREV_ERR_NOMEM. */
VREV_API int vrev_ctx_new2(vrev_ctx **out, struct event_base *base, const vrev_allocator *alloc);

/** Create a context with an event loop of its own, driven by vrev_ctx_run(): for programs
 *  (and FFI bindings) that have no libevent loop and make no libevent call. `alloc` as for
 *  vrev_ctx_new2() (NULL: the C library's). The loop gets vrev_ctx_post()'s wake-up (one
 *  eventfd, or a pipe's two descriptors, besides the loop's own). vrev_ctx_base() gives the
 *  loop, should the program want to add events of its own. On Linux the loop uses epoll's
 *  change list (libevent's EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, which saves system calls): as
 *  libevent warns for that flag, do not add events on descriptors made with dup() to it. A
 *  loop of the program's own (vrev_ctx_new()) may use the flag or not; libvrev works either
 *  way. Returns 0, VREV_ERR_INVAL, VREV_ERR_NOMEM or VREV_ERR_IO (libevent could not make a
 *  loop, or no descriptor was left for the wake-up). */
VREV_API int vrev_ctx_new_loop(vrev_ctx **out, const vrev_allocator *alloc);

/** Run the context's loop (its own, or the one given at creation): timeout_ms < 0 until
 *  vrev_ctx_stop() is called (a loop of the context's own always has vrev_ctx_post()'s
 *  wake-up to wait for, so it does not return for lack of work; a loop of the program's own
 *  returns when nothing is left to wait for, which with vrev_ctx_post_enable() is not before
 *  vrev_ctx_close_lingering()); 0 one pass over what is ready, without waiting; > 0 at most
 *  that long. Not reentrant (do not call it from a callback or a posted function).
 *  Returns 0, VREV_ERR_INVAL, VREV_ERR_STATE (no loop) or VREV_ERR_IO (the loop failed). */
VREV_API int vrev_ctx_run(vrev_ctx *ctx, int timeout_ms);

/** Make vrev_ctx_run() return once the callbacks running now are done. Call it from the
 *  loop's thread (from a callback, typically). From another thread, post a function that
 *  calls it: vrev_ctx_post(ctx, fn, ctx) with `static void fn(void *c) { vrev_ctx_stop(c); }`.
 *  NULL is a no-op. */
VREV_API void vrev_ctx_stop(vrev_ctx *ctx);

/** Have the context's loop call fn(user), from any thread (libuv's uv_async_send, with a
 *  queue): the loop's thread runs it soon, in a pass of its own, as a callback of the loop:
 *  inside it, every libvrev call on the context is allowed (vrev_ctx_stop(), freeing or
 *  making objects) except vrev_ctx_run() and vrev_ctx_free(). Functions posted from one thread
 *  run in the order they were posted (FIFO), each exactly once; a post made from the loop's
 *  thread (even from inside a posted function) runs in a later pass, never inside this call.
 *  A context with a loop of its own (vrev_ctx_new_loop()) has the wake-up from the start (one
 *  eventfd, or a pipe where there is none, and one event; closed by vrev_ctx_free()); on a
 *  loop of the program's own (vrev_ctx_new()), call vrev_ctx_post_enable() first.
 *  Functions still queued when vrev_ctx_free() is called (or, after vrev_ctx_post_enable(),
 *  vrev_ctx_close_lingering()) are dropped, not run (what they would use may be gone by
 *  then): to run them, stop the loop with a posted function, after the others. Each post
 *  allocates a small node with the C library's malloc(), not the context's allocator, which
 *  libvrev calls only from the loop's thread and which need not be thread-safe; it is freed
 *  in the loop's thread after fn ran. `user` is passed as is. The context must outlive the
 *  call (do not post concurrently with vrev_ctx_free()); posting concurrently with
 *  vrev_ctx_close_lingering() is safe (the post then either is queued before and dropped, or
 *  fails).
 *  Returns 0, VREV_ERR_INVAL (ctx or fn NULL), VREV_ERR_STATE (no wake-up: a context without
 *  a loop of its own on which vrev_ctx_post_enable() was not called, or one whose wake-up
 *  vrev_ctx_close_lingering() closed; fn will not run) or VREV_ERR_NOMEM (fn will not run). */
VREV_API int vrev_ctx_post(vrev_ctx *ctx, void (*fn)(void *user), void *user);

/** Let vrev_ctx_post() work on a context with a loop of the program's own (vrev_ctx_new()),
 *  as libuv's uv_async_init: makes the wake-up (one eventfd, or a pipe where there is none)
 *  and adds a persistent event for it to the program's event_base. Call it from the loop's
 *  thread, before any other thread posts (starting those threads after the call is enough).
 *  From then on the program's loop does not return for lack of events (event_base_dispatch()
 *  waits for posts) until vrev_ctx_close_lingering(), which removes the event, closes the
 *  descriptors and drops what is still queued; posts fail with VREV_ERR_STATE after it. So the
 *  teardown order of vrev_ctx_free() stays as it is: free the objects, call
 *  vrev_ctx_close_lingering(), run the loop once, free the event_base, free the context.
 *  Idempotent: 0 again once enabled, and always 0 on a context made by vrev_ctx_new_loop().
 *  Returns 0, VREV_ERR_INVAL (ctx NULL), VREV_ERR_STATE (a context without a loop, or
 *  vrev_ctx_close_lingering() was called), VREV_ERR_NOMEM or VREV_ERR_IO (no descriptor
 *  left). */
VREV_API int vrev_ctx_post_enable(vrev_ctx *ctx);

/** Free a context. Every object created from it must have been freed first (or, freed from
 *  inside a callback, completed by running the loop once more). libevent
 *  finishes closing connections from inside the event_base (deferred callbacks and
 *  finalizers, which may still use the context's allocator), so on a loop of the program's
 *  own (vrev_ctx_new()), after freeing the objects, call vrev_ctx_close_lingering(), run the
 *  loop once more (event_base_loop(base, EVLOOP_NONBLOCK)) and free the event_base before
 *  freeing the context. A context made by vrev_ctx_new_loop() does all that itself: free the
 *  objects, then the context. NULL is a no-op. */
VREV_API void vrev_ctx_free(vrev_ctx *ctx);

/** Close the connections the context still closes in the background. A TLS connection whose
 *  owner has freed it stays open alone for a moment (at most 10 s) to send its last bytes and
 *  its close_notify and to wait for the peer's end, so that a reset does not destroy what it
 *  sent, as does a vrev_stream closed gracefully with bytes still to send (vrev/stream.h);
 *  these connections belong to the context. This closes them now (gracefully when all
 *  was sent, with a reset otherwise), and from now on the context's connections close at once
 *  when freed, without lingering: call it when the program stops. vrev_ctx_free() does it for
 *  a context made by vrev_ctx_new_loop(); on a loop of the program's own, call it after
 *  freeing the objects and before running the loop the last time and freeing the event_base
 *  (lingering connections are leaked otherwise). It also closes the wake-up that
 *  vrev_ctx_post_enable() made (a context made by vrev_ctx_new_loop() keeps its wake-up until
 *  vrev_ctx_free()). From the loop's thread. NULL is a no-op. */
VREV_API void vrev_ctx_close_lingering(vrev_ctx *ctx);

/** The event_base given at creation (borrowed), or NULL. */
VREV_API struct event_base *vrev_ctx_base(const vrev_ctx *ctx);

/** Install a log callback; lines more verbose than `max_level` are not formatted at all.
 *  cb NULL disables logging (the default). */
VREV_API void vrev_ctx_set_log(vrev_ctx *ctx, int max_level, vrev_log_cb cb, void *user);

/** Log lines are rate-limited per component (a flood of refused connections must not flood
 *  the log): at most `per_second` lines a second after a burst of `burst` (0: as many as
 *  per_second); what is dropped is counted and said in the next line written ("(N more lines
 *  of this kind were not logged)"). Debug lines are never limited. per_second 0: no limit.
 *  Defaults: VREV_LOG_RATE_DEFAULT, VREV_LOG_BURST_DEFAULT. */
#define VREV_LOG_RATE_DEFAULT 10
#define VREV_LOG_BURST_DEFAULT 20
VREV_API void vrev_ctx_set_log_rate(vrev_ctx *ctx, unsigned per_second, unsigned burst);

/** Resource limits (caps on connections, sessions and buffered bytes; names, defaults and
 *  meanings: vrev_limit_info() and the README's "Limits" table). A context holds one value
 *  of each; objects made from the context afterwards copy them (a JSON configuration may
 *  override its instance's copy with "vrev": {"limits": {...}}); "bufferedTotal" is the
 *  context's own and applies at once. Returns 0, VREV_ERR_INVAL (NULL ctx, unknown name) or
 *  VREV_ERR_RANGE. */
VREV_API int vrev_ctx_set_limit(vrev_ctx *ctx, const char *name, uint64_t value);
/** The context's value of limit `name` into *value. Returns 0 or VREV_ERR_INVAL. */
VREV_API int vrev_ctx_get_limit(const vrev_ctx *ctx, const char *name, uint64_t *value);
/** The i-th limit (0, 1, ...): its name (static), with its default, range and a sentence on
 *  what it bounds (static; each out-pointer may be NULL). NULL past the last one. */
VREV_API const char *vrev_limit_info(size_t i, uint64_t *def, uint64_t *lo, uint64_t *hi,
                                     const char **what);

/** Access log callback (V2Ray's access log): one call per connection or session the router
 *  hands to an outbound (accepted = 1), and per connection an inbound turns away in its
 *  handshake (accepted = 0, `reason` says why; `to` is then ""). `from` is the client's
 *  address as "HOST:PORT" ("[V6]:PORT"), or "" when the link has none (a bridge's sessions,
 *  as in V2Ray); `to` is "tcp:HOST:PORT" or "udp:HOST:PORT"; `inbound_tag` and
 *  `outbound_tag` are "" when untagged; `reason` is "" when accepted. No secret (user id,
 *  key) is ever passed. Strings are valid during the call only. */
typedef void (*vrev_access_cb)(const char *from, const char *to, const char *inbound_tag,
                               const char *outbound_tag, int accepted, const char *reason,
                               void *user);

/** Install an access log callback (NULL: none, the default). Events are not rate-limited: the
 *  callback runs once per session. NULL ctx is a no-op. */
VREV_API void vrev_ctx_set_access_log(vrev_ctx *ctx, vrev_access_cb cb, void *user);

/** Format one access event as V2Ray 4.34 writes it in its access log, without the time stamp
 *  its logger puts first: "FROM accepted|rejected TO [OUTBOUND_TAG] REASON" (the bracket part
 *  only with an outbound tag, the reason only when not empty). Arguments as vrev_access_cb's
 *  (NULL counts as ""). Writes at most `cap` bytes into buf, NUL-terminated (buf may be NULL
 *  with cap 0). Returns the length of the whole line (as snprintf), or VREV_ERR_INVAL. */
VREV_API int vrev_access_format(char *buf, size_t cap, const char *from, const char *to,
                                const char *outbound_tag, int accepted, const char *reason);

/** The name of a log level ("error", "warn", "info", "debug"), or "?". Static string. */
VREV_API const char *vrev_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
