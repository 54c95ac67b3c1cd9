/* The context's buffer budget (RELIABILITY.md G7: total buffering capped, limits.bufferedTotal,
 * default 256 MiB). ctx->buffered is a plain count of the bytes the context's connections hold
 * in user-space buffers: mux tunnels (what their sessions' local sides have not written yet,
 * lib/reverse/muxconn.c), relays (what each side has not written yet, lib/net/relay.c) and UDP
 * queues (lib/proxy/udp.c) add what they take in and subtract what leaves.
 *
 * The cap is kept by the readers, without a registry of waiters: once the count has reached
 * it, a reader whose own destination still holds bytes stops reading, and reads again when
 * that destination has drained (its write callback says so). A reader whose destination holds
 * nothing reads on: it cannot be woken by its own bytes, and one read's worth is what it can
 * add. So the count passes the cap by at most one read per reader that was reading when the
 * cap was reached, and nobody waits for an event that will not come. */
#ifndef VREV_CORE_BUDGET_H
#define VREV_CORE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"

/* The count has reached the cap. */
static inline bool vrev__budget_full(const vrev_ctx *ctx)
{
    return ctx->buffered >= ctx->limits.buffered_total;
}

static inline void vrev__budget_add(vrev_ctx *ctx, size_t n)
{
    ctx->buffered += n;
}

/* Never below 0: a miscount must not wrap into a full budget that stops every reader. */
static inline void vrev__budget_sub(vrev_ctx *ctx, size_t n)
{
    ctx->buffered = n > ctx->buffered ? 0 : ctx->buffered - n;
}

/* Log (rate-limited, per component) that a reader stopped for the budget. */
void vrev__budget_log_stop(vrev_ctx *ctx, const char *component);

#endif
