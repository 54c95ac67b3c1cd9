/* An instance: a V2Ray v4 JSON configuration brought to life (inbounds, outbounds, routing,
 * reverse bridges and portals) inside a context's event loop.
 *
 * Thread safety: an instance belongs to the thread that runs its context's event_base.
 */
#ifndef VREV_INSTANCE_H
#define VREV_INSTANCE_H

#include "common.h"
#include "ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vrev_instance vrev_instance;

/** Build an instance from a V2Ray v4 JSON config (comments allowed; text need not be
 *  NUL-terminated). `filename` names it in messages (NULL: "config"). Listeners are bound
 *  here, so a busy port fails now. On failure, err (if not NULL) receives a one-line message,
 *  "FILE:LINE:COL: PATH: what is wrong" for config errors.
 *  Besides V2Ray's keys the config may hold a "vrev" object (V2Ray 4.34 ignores it):
 *  "limits" sets resource limits (names and ranges as vrev_limit_info()) for this instance
 *  only, over the context's (vrev_ctx_set_limit()); "bufferedTotal" among them is set on the
 *  context itself. "bridges": {"<reverse.bridges tag>": {"allow": ["tcp:HOST:PORT",
 *  "udp:HOST:PORT", ...]}} limits what the portal may make that bridge reach (without it, as
 *  in V2Ray, a freedom outbound without "redirect" dials any target the portal names; the
 *  load warns when a bridge's sessions can reach one). Unknown keys inside "vrev" are errors.
 *  The context must have an event_base. Returns 0, VREV_ERR_INVAL, VREV_ERR_STATE (no
 *  event_base), VREV_ERR_NOMEM, VREV_ERR_CONFIG_* or an error from binding a listener. */
VREV_API int vrev_instance_new_json(vrev_instance **out, vrev_ctx *ctx, const char *text,
                                    size_t len, const char *filename, char *err,
                                    size_t err_len);

/** Start what runs by itself (the bridges dial their first tunnels). Returns 0,
 *  VREV_ERR_INVAL or VREV_ERR_STATE (stopped). */
VREV_API int vrev_instance_start(vrev_instance *inst);

/** Stop: close every listener and connection (clients see a reset), end the bridges' tunnels
 *  and dials. The instance then does nothing; it cannot be started again (free it, and make
 *  a new one from the config to restart). Calling it twice is harmless. Returns 0 or
 *  VREV_ERR_INVAL. */
VREV_API int vrev_instance_stop(vrev_instance *inst);

/** Stop (if not stopped yet) and free the instance. NULL is a no-op. */
VREV_API void vrev_instance_free(vrev_instance *inst);

/** The log level the config asks for (VREV_LOG_*; "none" gives -1). */
VREV_API int vrev_instance_log_level(const vrev_instance *inst);

/** The TCP port the inbound tagged `tag` listens on (useful with port 0), or 0. */
VREV_API unsigned vrev_instance_inbound_port(const vrev_instance *inst, const char *tag);

#ifdef __cplusplus
}
#endif
#endif
