/* The context's buffer budget (budget.h). */
#include "budget.h"

void vrev__budget_log_stop(vrev_ctx *ctx, const char *component)
{
    vrev__log(ctx, VREV_LOG_INFO, component,
              "%llu bytes buffered (bufferedTotal %llu): reading paused until they drain",
              (unsigned long long)ctx->buffered, (unsigned long long)ctx->limits.buffered_total);
}
