/* Observability: counters as metrics, readiness, a Prometheus endpoint, and where an
 * instance's configuration wants its logs to go.
 *
 * Every counter below is kept by the library whether or not anyone reads it; the metrics
 * visitors only read them, so they cost nothing until called. The endpoint
 * (vrev_metrics_server) renders the same numbers as Prometheus text over libevent's evhttp,
 * in the context's own event loop.
 *
 * Metric names (all prefixed "vrev_"; labels in braces):
 *   tunnels{role,tag}                      gauge: tunnels open now
 *   tunnels_opened_total{role,tag}         tunnels opened since creation
 *   sessions{role,tag}                     gauge: sessions live now
 *   sessions_total{role,tag}               sessions opened since creation
 *   bytes_total{role,tag,direction}        session payload; direction "up" is what public
 *                                          clients sent towards the services, "down" back
 *   sessions_refused_total{role,tag,reason} reason: "no_tunnel" (portal: none within its wait),
 *                                          "target" (bridge: not one of its targets)
 *   limit_drops_total{limit,...}           work turned away (or held) by a limit of
 *                                          vrev_limit_info(): "sessionRate", "dialsPerTunnel",
 *                                          "tunnelsPerBridge", "bufferedTotal" (times a tunnel
 *                                          stopped reading: the context's buffers were full;
 *                                          datagrams dropped), "tunnelBuffer" (times a tunnel
 *                                          stopped reading: its sessions held that much),
 *                                          "connsPerListener", "connsPerSource" (connections
 *                                          refused at accept), "preauthPerInbound",
 *                                          "preauthPerSource" (handshakes closed for a
 *                                          newcomer), "udpClientBytes", "udpInboundBytes"
 *                                          (datagrams dropped); and the fixed
 *                                          "replyAllowance" (times a tunnel stopped reading: its
 *                                          peer did not read the answers to its frames)
 *   handshake_failures_total{inbound,reason} reason: "rejected" (bad header, unknown user),
 *                                          "timeout", "closed" (by the client), "error"
 *   links_total{inbound,outbound}          connections and sessions routed, by tags
 *   relays{} / relay_bytes_total{direction} direct relays (freedom) live, and their bytes
 *   reloads_total                          configuration reloads (instance)
 *   ready                                  gauge: 1 when ready (see vrev_instance_ready)
 * Roles are "portal" and "bridge"; an untagged object has tag "". Label values are escaped
 * as Prometheus text wants them (backslash, double quote, newline).
 *
 * Thread safety: as the objects read (the thread running their context's event_base).
 */
#ifndef VREV_OBS_H
#define VREV_OBS_H

#include "common.h"
#include "ctx.h"
#include "instance.h"
#include "tunnel.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Kinds of metric (Prometheus TYPE). */
enum vrev_metric_kind { VREV_METRIC_COUNTER = 0, VREV_METRIC_GAUGE = 1 };

/** One sample: `name` (static), `kind` (VREV_METRIC_*), `help` (static, one line), `labels`
 *  as Prometheus writes them between braces, values escaped ("role=\"portal\",tag=\"t\""; ""
 *  for none; valid during the call only), and the value. */
typedef void (*vrev_metric_cb)(const char *name, int kind, const char *help, const char *labels,
                               uint64_t value, void *user);

/** Visit every counter of an instance, a portal or a bridge: one call of `cb` per sample, in
 *  a fixed order (samples of one name are not necessarily adjacent). Returns 0 or
 *  VREV_ERR_INVAL (NULL object or cb). */
VREV_API int vrev_instance_metrics(const vrev_instance *inst, vrev_metric_cb cb, void *user);
VREV_API int vrev_portal_metrics(const vrev_portal *p, vrev_metric_cb cb, void *user);
VREV_API int vrev_bridge_metrics(const vrev_bridge *b, vrev_metric_cb cb, void *user);

/** Readiness: 1 when the object can serve, 0 when not (or NULL). A bridge is ready while it has
 *  a tunnel up; a portal (its listeners are open from creation) while at least one bridge's
 *  tunnel is up, since public connections cannot be carried before; an instance when it is
 *  not stopped and each of its reverse bridges and portals is ready. */
VREV_API int vrev_instance_ready(const vrev_instance *inst);
VREV_API int vrev_portal_ready(const vrev_portal *p);
VREV_API int vrev_bridge_ready(const vrev_bridge *b);

/** The "vrev": {"metrics": "IP:PORT"} of the instance's configuration (borrowed, valid as long
 *  as the instance), or NULL. The library does not serve it by itself: pass it to
 *  vrev_metrics_server_new(). */
VREV_API const char *vrev_instance_metrics_address(const vrev_instance *inst);

/** Where the configuration's "log" object sends a log (V2Ray 4.34's rules). */
enum vrev_log_target {
    VREV_LOG_TARGET_NONE = 0,    /* not written ("none", or no "log" object for access) */
    VREV_LOG_TARGET_CONSOLE = 1, /* V2Ray writes both to standard output */
    VREV_LOG_TARGET_FILE = 2     /* *path names the file */
};
/** The target of the access log (access = 1, "log.access") or of the error log (access = 0,
 *  "log.error"), as VREV_LOG_TARGET_*; for a file, *path (if path is not NULL) gets its name
 *  (borrowed, valid as long as the instance), else NULL. NULL inst: VREV_ERR_INVAL. */
VREV_API int vrev_instance_log_target(const vrev_instance *inst, int access, const char **path);

/* --- the endpoint ------------------------------------------------------------------------ */

typedef struct vrev_metrics_server vrev_metrics_server;

/** Serve GET /metrics (Prometheus text format 0.0.4) and GET /ready (200 "ready", or 503 "not
 *  ready") on `hostport` ("IP:PORT", "[V6]:PORT"; port 0 picks one), in the context's loop,
 *  for what is added with vrev_metrics_server_add_*(). Other paths are answered 404, a request
 *  with a body 413, other methods than GET and HEAD 501. Bounded: request headers up to 8 KiB,
 *  a connection idle 5 s (no whole request yet, or none since the last answer) is closed, a
 *  response is at most 1 MiB (else 500). libevent 2.1's evhttp has no cap on connections: bind
 *  it to a loopback or management address. err, err_len: the error detail (vrev/error.h).
 *  Returns 0, VREV_ERR_INVAL (bad arguments or address), VREV_ERR_STATE (ctx without
 *  event_base), VREV_ERR_NOMEM or VREV_ERR_IO (cannot bind: busy port...). */
VREV_API int vrev_metrics_server_new(vrev_metrics_server **out, vrev_ctx *ctx, const char *hostport,
                                     char *err, size_t err_len);
/** Add an object to serve (borrowed: free the server before the object). At most 16 objects.
 *  Returns 0, VREV_ERR_INVAL or VREV_ERR_RANGE (full). */
VREV_API int vrev_metrics_server_add_instance(vrev_metrics_server *s, const vrev_instance *inst);
VREV_API int vrev_metrics_server_add_portal(vrev_metrics_server *s, const vrev_portal *p);
VREV_API int vrev_metrics_server_add_bridge(vrev_metrics_server *s, const vrev_bridge *b);
/** The port it listens on (0 for NULL). */
VREV_API unsigned vrev_metrics_server_port(const vrev_metrics_server *s);
/** 1 if every object added is ready (as /ready answers), else 0 (none added: 1). */
VREV_API int vrev_metrics_server_ready(const vrev_metrics_server *s);
/** The text /metrics answers, into buf (NUL-terminated, at most cap bytes; buf may be NULL
 *  with cap 0). Returns its whole length (as snprintf), or VREV_ERR_INVAL, VREV_ERR_NOMEM or
 *  VREV_ERR_RANGE (more than 4096 samples or 1 MiB). */
VREV_API int vrev_metrics_server_render(const vrev_metrics_server *s, char *buf, size_t cap);
/** Close the listener and every connection, and free. NULL is a no-op. */
VREV_API void vrev_metrics_server_free(vrev_metrics_server *s);

#ifdef __cplusplus
}
#endif
#endif
