/* A context's own event loop (vrev_ctx_new_loop) and running a context's loop: for programs
 * and FFI bindings that do not use libevent themselves. */
#include <event2/event.h>

#include "core/core.h"
#include "core/timeval.h"
#include "net.h"

static void free_own_base(struct event_base *base)
{
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred callbacks and finalizers */
    event_base_free(base);
}

/* epoll's change list: the changes to a descriptor's interest are applied once, before the
 * next wait, so that adding and removing one within a pass costs no system call. A socket
 * bufferevent of libvrev writes in the pass that queued the bytes (tcp.c): its write event is
 * added and, once all is written, removed again, twice epoll_ctl per write without the list.
 * libevent's caveat for the list is descriptors shared through dup(), which libvrev has not. */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

int vrev_ctx_new_loop(vrev_ctx **out, const vrev_allocator *alloc)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    vrev_ctx *ctx;
    int rc = vrev_ctx_new2(&ctx, NULL, alloc);
    if (rc < 0)
        return rc;
    ctx->base = new_base();
    if (!ctx->base) {
        vrev_ctx_free(ctx);
        return VREV_ERR_IO;
    }
    ctx->free_base = free_own_base;
    if ((rc = vrev__post_init(ctx)) < 0) {
        vrev_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

static void time_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

int vrev_ctx_run(vrev_ctx *ctx, int timeout_ms)
{
    if (!ctx)
        return VREV_ERR_INVAL;
    if (!ctx->base)
        return VREV_ERR_STATE;
    if (timeout_ms == 0)
        return event_base_loop(ctx->base, EVLOOP_NONBLOCK) < 0 ? VREV_ERR_IO : 0;
    /* a timer of this call's own (event_base_loopexit's would outlive an early return and cut
     * the next run short) */
    struct event *timer = NULL;
    if (timeout_ms > 0) {
        struct timeval tv = vrev__ms_to_tv(timeout_ms);
        timer = evtimer_new(ctx->base, time_up, ctx->base);
        if (!timer || evtimer_add(timer, &tv) < 0) {
            if (timer)
                event_free(timer);
            return VREV_ERR_NOMEM;
        }
    }
    int rc = event_base_dispatch(ctx->base);
    if (timer)
        event_free(timer);
    return rc < 0 ? VREV_ERR_IO : 0;
}

void vrev_ctx_stop(vrev_ctx *ctx)
{
    if (ctx && ctx->base)
        event_base_loopbreak(ctx->base);
}
