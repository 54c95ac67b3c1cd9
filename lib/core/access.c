/* The access log (V2Ray's "log.access"): events through the context, and V2Ray 4.34's line
 * format (common/log/access.go: From, status, To, then " [detour]" and the reason when set). */
#include <stdio.h>

#include "core.h"

void vrev_ctx_set_access_log(vrev_ctx *ctx, vrev_access_cb cb, void *user)
{
    if (!ctx)
        return;
    ctx->access_cb = cb;
    ctx->access_user = user;
}

void vrev__access(vrev_ctx *ctx, const char *from, const char *to, const char *inbound_tag,
                  const char *outbound_tag, int accepted, const char *reason)
{
    if (!ctx || !ctx->access_cb)
        return;
    vrev__user_enter(ctx);
    ctx->access_cb(from ? from : "", to ? to : "", inbound_tag ? inbound_tag : "",
                   outbound_tag ? outbound_tag : "", accepted ? 1 : 0, reason ? reason : "",
                   ctx->access_user);
    vrev__user_leave(ctx);
}

int vrev_access_format(char *buf, size_t cap, const char *from, const char *to,
                       const char *outbound_tag, int accepted, const char *reason)
{
    if (!buf && cap)
        return VREV_ERR_INVAL;
    const char *tag = outbound_tag ? outbound_tag : "";
    const char *why = reason ? reason : "";
    int n = snprintf(buf, cap, "%s %s %s%s%s%s%s%s", from ? from : "",
                     accepted ? "accepted" : "rejected", to ? to : "", tag[0] ? " [" : "", tag,
                     tag[0] ? "]" : "", why[0] ? " " : "", why);
    return n < 0 ? VREV_ERR_INVAL : n;
}
