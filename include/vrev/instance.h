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
 *  here, so a busy port fails now. err, err_len: the error detail (vrev/error.h); for config
 *  errors "FILE:LINE:COL: PATH: what is wrong".
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
                                    size_t len, const char *filename, char *err, size_t err_len);

/** Start what runs by itself (the bridges dial their first tunnels). Returns 0,
 *  VREV_ERR_INVAL or VREV_ERR_STATE (stopped). */
VREV_API int vrev_instance_start(vrev_instance *inst);

/** Stop: close every listener and connection (clients see a reset), end the bridges' tunnels
 *  and dials. The instance then does nothing; it cannot be started again (free it, and make
 *  a new one from the config to restart). Calling it twice is harmless. Returns 0 or
 *  VREV_ERR_INVAL. */
VREV_API int vrev_instance_stop(vrev_instance *inst);

/** Stop (if not stopped yet) and free the instance. NULL is a no-op. From inside one of the
 *  context's callbacks (a log or access line), it completes once the callback has returned
 *  (vrev/ctx.h, "Callbacks"). */
VREV_API void vrev_instance_free(vrev_instance *inst);

/** Re-read the configuration: `text` (a whole V2Ray v4 JSON config, as for
 *  vrev_instance_new_json(); `filename` names it in messages, NULL: "config") replaces the
 *  running one, all or nothing: on any error the instance is unchanged and keeps running the
 *  old configuration, and err (the error detail, vrev/error.h) gets a message naming the file,
 *  and the line and key ("FILE:LINE:COL: PATH: what is wrong") for a config error, or the element
 *  ("FILE: inbounds[2]: ...") for one the engine cannot build.
 *
 *  Nothing that did not change is touched. Elements are compared as written (JSON text, keys
 *  in any order):
 *  - an inbound written the same keeps running as it is; a changed one on the same listen
 *    address and port (port 0: the same tag) takes over the old one's listening socket (no
 *    connect is refused meanwhile), with its new settings (users, ids, TLS, carrier, even
 *    protocol) for new connections; handshakes already under way finish with the old ones.
 *    Removed inbounds close their listeners, new ones bind theirs (a busy port fails the
 *    reload). Established connections are never cut.
 *  - outbounds written the same are kept; changed or new ones apply to new connections.
 *    A reverse portal (reverse.portals) with the same tag and domain keeps its tunnels; a
 *    removed one closes them.
 *  - routing (rules, balancers) is replaced.
 *  - a reverse bridge with the same tag and domain keeps its tunnels and their sessions, and
 *    takes its new "vrev" allow-list; if the outbound its tunnels go through (the portal's
 *    address or credentials) changed, it dials new tunnels and closes the old ones once they
 *    carry no session.
 *  - the log level is taken (vrev_instance_log_level()).
 *  What needs a restart, refused with VREV_ERR_UNSUPPORTED and a message naming the key (the
 *  old configuration keeps running): "policy" (timeouts, buffer size), "vrev.limits", and a
 *  change to an inbound with a UDP side (dokodemo-door network udp, socks udp) that keeps its
 *  address and port. A VMess inbound whose settings changed starts with an empty replay
 *  filter, as after a restart. An outbound replaced by a reload is freed when the instance
 *  stops (a dial in progress may use it); an inbound once its handshakes are over.
 *  A log line (info) says what was kept and changed, never an id or key; a failure is logged
 *  at error. vrev_instance_reload_count() counts both.
 *  Returns 0, VREV_ERR_INVAL (inst NULL, text NULL with len > 0), VREV_ERR_STATE (stopped),
 *  VREV_ERR_NOMEM, VREV_ERR_CONFIG_*, VREV_ERR_UNSUPPORTED or an error from binding a new
 *  listener. `text` and `filename` are borrowed for the call. Call it from the thread running
 *  the context's event_base (a signal handler should only schedule it: vrev(1) does so
 *  through a libevent signal event). */
VREV_API int vrev_instance_reload(vrev_instance *inst, const char *text, size_t len,
                                  const char *filename, char *err, size_t err_len);

/** Reloads so far: successful ones (failed 0) or failed ones (failed != 0). 0 for NULL. */
VREV_API uint64_t vrev_instance_reload_count(const vrev_instance *inst, int failed);

/** The log level the config asks for (VREV_LOG_*; "none" gives -1). */
VREV_API int vrev_instance_log_level(const vrev_instance *inst);

/** The TCP port the inbound tagged `tag` listens on (useful with port 0), or 0. */
VREV_API unsigned vrev_instance_inbound_port(const vrev_instance *inst, const char *tag);

#ifdef __cplusplus
}
#endif
#endif
