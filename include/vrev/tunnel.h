/* Reverse tunnels without JSON: a portal and a bridge built from a small options object.
 *
 * A portal listens for its bridges on one address (the tunnel listener) and for the public on
 * any number of public listeners, each tied to a target name. A bridge dials the portal and
 * delivers each public connection to the local address registered under that name, and to
 * nothing else: a portal cannot make a bridge reach any other host (such sessions are ended
 * with the error flag and counted).
 *
 * On the wire this is V2Ray's reverse proxy over VMess AEAD (aes-128-gcm unless told
 * otherwise): the session target is the name as a domain with port 0, so a V2Ray bridge or
 * portal configured as vrev_tunnel_opts_print_config() prints interoperates with these.
 *
 * Typical use (error checks omitted):
 *
 *     vrev_tunnel_opts *o;
 *     vrev_tunnel_opts_new(&o, ctx);
 *     vrev_tunnel_opts_set_id(o, "5783a3e7-e373-51cd-8642-c83782b807c5");
 *     vrev_tunnel_opts_set_portal(o, "portal.example.net:443");
 *     vrev_tunnel_opts_add_target(o, "web", "127.0.0.1:8080");
 *     vrev_bridge *b;
 *     vrev_bridge_new(&b, ctx, o, err, sizeof(err));
 *     vrev_tunnel_opts_free(o);
 *     vrev_bridge_start(b);
 *     event_base_dispatch(base);
 *
 * Thread safety: options objects may be used from any one thread at a time; portals and
 * bridges belong to the thread that runs their context's event_base.
 */
#ifndef VREV_TUNNEL_H
#define VREV_TUNNEL_H

#include "common.h"
#include "ctx.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vrev_tunnel_opts vrev_tunnel_opts;
typedef struct vrev_portal vrev_portal;
typedef struct vrev_bridge vrev_bridge;

/** The domain both sides use for the tunnel when none is set (any name works, if both sides
 *  agree; it never needs to resolve). */
#define VREV_TUNNEL_DEFAULT_DOMAIN "tunnel.vrev.internal"
/** The target name of a public listener or local target given without a name. */
#define VREV_TUNNEL_DEFAULT_NAME "default"

/* --- options --------------------------------------------------------------------------------
 * Setters copy their arguments and return 0, VREV_ERR_INVAL (NULL or malformed; the message
 * from vrev_tunnel_opts_error() says what) or VREV_ERR_NOMEM. */

/** Create an empty options object. Everything it allocates (itself, the strings and lists the
 *  setters copy) goes through `ctx`'s allocator (vrev_ctx_new2()), which is copied: the
 *  options may be freed after the context, as long as that allocator still works. ctx NULL:
 *  the C library's allocator (options built before any context). Returns 0, VREV_ERR_INVAL
 *  (out is NULL) or VREV_ERR_NOMEM. */
VREV_API int vrev_tunnel_opts_new(vrev_tunnel_opts **out, vrev_ctx *ctx);
/** Free the options (and wipe the id they hold). NULL is a no-op. */
VREV_API void vrev_tunnel_opts_free(vrev_tunnel_opts *o);
/** The last setter's error message ("" if none). Valid until the next call on o. */
VREV_API const char *vrev_tunnel_opts_error(const vrev_tunnel_opts *o);

/** Both: the VMess user id shared by portal and bridge (a UUID: vrev_uuid_new() or
 *  "vrev uuid" makes one). */
VREV_API int vrev_tunnel_opts_set_id(vrev_tunnel_opts *o, const char *uuid);
/** A new random id (a version 4 UUID) written to out as its canonical text, lower case,
 *  8-4-4-4-12 digits and the NUL (37 bytes, the caller's). Returns 0, VREV_ERR_INVAL (out NULL)
 *  or VREV_ERR_IO (the system's random source failed; out untouched). Thread-safe: uses no
 *  library state. */
VREV_API int vrev_uuid_new(char out[37]);
/** Both: "aes-128-gcm" (default), "chacha20-poly1305" or "none". */
VREV_API int vrev_tunnel_opts_set_security(vrev_tunnel_opts *o, const char *name);
/** Both: the tunnel domain (default VREV_TUNNEL_DEFAULT_DOMAIN). */
VREV_API int vrev_tunnel_opts_set_domain(vrev_tunnel_opts *o, const char *domain);

/** Portal: where bridges connect ("HOST:PORT"; port 0 picks a free one). */
VREV_API int vrev_tunnel_opts_set_listen(vrev_tunnel_opts *o, const char *hostport);
/** Portal: a public listener ("HOST:PORT", port 0 allowed) whose connections go to the
 *  bridge target `name` (NULL: VREV_TUNNEL_DEFAULT_NAME). Names are 1..63 characters of
 *  [A-Za-z0-9._-]. */
VREV_API int vrev_tunnel_opts_add_public(vrev_tunnel_opts *o, const char *hostport,
                                         const char *name);

/** Bridge: the portal's tunnel address ("HOST:PORT"), replacing any portal set or added
 *  before. A host name with several addresses gives a tunnel set to each address, as
 *  vrev_tunnel_opts_add_portal() says. */
VREV_API int vrev_tunnel_opts_set_portal(vrev_tunnel_opts *o, const char *hostport);
/** Bridge: one more portal (up to VREV_TUNNEL_MAX_PORTALS; the same HOST:PORT twice is
 *  VREV_ERR_INVAL). The bridge keeps its own tunnels to each portal, with their own redial
 *  and backoff: when one portal is down the others carry on. Meant for portals behind a load
 *  balancer (README: "Several portals"): any portal may get a public connection, and hands
 *  it to this bridge over its own tunnels.
 *  A host name is resolved (hosts file, then DNS, without blocking the loop) when the bridge
 *  is made, every 30 s, and a few seconds after one of its tunnel sets has no tunnel. Each of
 *  its addresses is taken as a portal of its own (own tunnels, redial and backoff; the
 *  portals beyond VREV_TUNNEL_MAX_PORTALS in all are left out, with a warning), dialled at
 *  that address with the name as TLS server name, checked in the certificate, and as ws Host
 *  (unless vrev_tunnel_opts_set_tls_sni() / vrev_tunnel_opts_set_carrier_host() set them).
 *  An address that appears gets its tunnels; one that goes is no longer dialled and its
 *  tunnels close once they carry no session. A name with one address is dialled by name,
 *  resolved at each dial. A name that does not resolve is logged and retried with a backoff
 *  (1 s doubling to 30 s); its tunnels meanwhile go to the addresses it had (or are dialled by
 *  name). */
VREV_API int vrev_tunnel_opts_add_portal(vrev_tunnel_opts *o, const char *hostport);
/** The most portals one bridge dials. */
#define VREV_TUNNEL_MAX_PORTALS 16
/** Bridge: deliver sessions for `name` (NULL: VREV_TUNNEL_DEFAULT_NAME) to "HOST:PORT". */
VREV_API int vrev_tunnel_opts_add_target(vrev_tunnel_opts *o, const char *name,
                                         const char *hostport);

/** Portal (on = 1): every listener, tunnel and public, reads a PROXY protocol header (v1 or
 *  v2, HAProxy's send-proxy / send-proxy-v2) before anything else, as V2Ray's
 *  acceptProxyProtocol does: the connection's source is then the header's address (logs, the
 *  pre-auth share per source, and the address sent to a bridge for its PROXY header). A
 *  connection without a valid header is closed. Only for listeners that nothing but the proxy
 *  can reach: the header is believed. */
VREV_API int vrev_tunnel_opts_set_accept_proxy_protocol(vrev_tunnel_opts *o, int on);
/** Bridge: before any payload, send the target `name` (NULL: VREV_TUNNEL_DEFAULT_NAME; added
 *  already) a PROXY header of `version` (1: text, 2: binary; 0: none, the default) naming the
 *  public client and the address it connected to, as a vrev portal reports them
 *  (docs/extensions.md). A V2Ray portal does not say: the header is then v1 "UNKNOWN" / v2
 *  "LOCAL" (the service uses the connection's own address). Returns 0 or VREV_ERR_INVAL (no
 *  such target, an in-process handler's, or another version). */
VREV_API int vrev_tunnel_opts_set_target_proxy_protocol(vrev_tunnel_opts *o, const char *name,
                                                        int version);

/** Both: carry the tunnel over TLS (on = 1). A portal then needs a certificate; a bridge
 *  verifies the portal's (system roots plus vrev_tunnel_opts_set_tls_ca(); the name is the
 *  portal's host unless vrev_tunnel_opts_set_tls_sni() says otherwise). */
VREV_API int vrev_tunnel_opts_set_tls(vrev_tunnel_opts *o, int on);
/** Portal: the certificate (chain) and private key, PEM files. */
VREV_API int vrev_tunnel_opts_set_tls_cert(vrev_tunnel_opts *o, const char *cert_file,
                                           const char *key_file);
/** Bridge: a PEM file of certificates to trust besides the system roots (a CA, or the
 *  portal's self-signed certificate). */
VREV_API int vrev_tunnel_opts_set_tls_ca(vrev_tunnel_opts *o, const char *file);
/** Bridge: the name to send (SNI) and verify in the portal's certificate. */
VREV_API int vrev_tunnel_opts_set_tls_sni(vrev_tunnel_opts *o, const char *name);
/** Bridge: pin the portal's certificate chain: "sha256:" and the SHA-256 chain hash, as
 *  64 hex digits or standard base64 (V2Ray's pinnedPeerCertificateChainSha256, v2fly 4.38+):
 *  the hash of the one certificate's DER for a portal that sends its certificate alone, else
 *  h = SHA-256(der0), then h = SHA-256(h || SHA-256(der_i)) over the chain as the portal sends
 *  it. May be given several times (any one matches). The chain must match on top of the usual
 *  verification, or instead of it with vrev_tunnel_opts_set_tls_insecure() (a self-signed
 *  portal). A mismatch fails the handshake; the log names the chain's own hash. */
VREV_API int vrev_tunnel_opts_add_tls_pin(vrev_tunnel_opts *o, const char *pin);
/** Bridge: accept any certificate (on = 1). Insecure: anyone on the path can read the tunnel
 *  and pose as the portal; the bridge logs a warning. */
VREV_API int vrev_tunnel_opts_set_tls_insecure(vrev_tunnel_opts *o, int on);

/** Both: carry the tunnel over the custom transport registered on the context under `name`
 *  (vrev_ctx_add_transport, vrev/transport.h), in place of TLS; NULL or "" for none. Both
 *  ends must use it. The name is looked up by vrev_portal_new() / vrev_bridge_new(), which
 *  fail (VREV_ERR_INVAL) if nothing is registered under it, or if TLS is on as well. */
VREV_API int vrev_tunnel_opts_set_transport(vrev_tunnel_opts *o, const char *name);

/** Both: the carrier below VMess, as V2Ray's streamSettings.network: "tcp" (the default),
 *  "ws" (WebSocket; alias "websocket") or "h2" (HTTP/2; alias "http"). Both ends must use the
 *  same. A bridge over h2 needs TLS (V2Ray's h2 client requires it: vrev_bridge_new() fails
 *  with VREV_ERR_INVAL otherwise); a portal over h2 without TLS serves cleartext HTTP/2, for a
 *  front server that terminates TLS. Excludes a custom transport. Returns 0 or VREV_ERR_INVAL. */
VREV_API int vrev_tunnel_opts_set_carrier(vrev_tunnel_opts *o, const char *network);
/** Both (ws, h2): the HTTP path (wsSettings.path / httpSettings.path); NULL or "" for "/"; a
 *  leading '/' is added as V2Ray adds it. The portal answers other paths 404. Up to 255 of
 *  the characters of a URL path and query. */
VREV_API int vrev_tunnel_opts_set_carrier_path(vrev_tunnel_opts *o, const char *path);
/** ws bridge: the Host header to send (wsSettings.headers.Host; default: the portal's
 *  HOST:PORT as V2Ray sends it); a ws portal does not check it (as V2Ray). h2, both: the one
 *  host (httpSettings.host) the bridge names and the portal accepts (default, as V2Ray:
 *  "www.example.com"). A host name or IP address; NULL or "" restores the default. */
VREV_API int vrev_tunnel_opts_set_carrier_host(vrev_tunnel_opts *o, const char *host);

/** Tunables V2Ray hard-codes (the defaults keep wire behaviour identical to V2Ray 4.34):
 *  portal: heartbeat period (2000 ms) and the lifetime sessions after which a tunnel is drained
 *  (256); bridge: the average live sessions per tunnel above which another is opened (16).
 *  0 restores the default. Returns 0 or VREV_ERR_INVAL. */
VREV_API int vrev_tunnel_opts_set_heartbeat_ms(vrev_tunnel_opts *o, unsigned ms);
VREV_API int vrev_tunnel_opts_set_drain_after(vrev_tunnel_opts *o, unsigned sessions);
VREV_API int vrev_tunnel_opts_set_sessions_per_tunnel(vrev_tunnel_opts *o, unsigned sessions);

/** Both (beyond V2Ray, same wire): how long a tunnel may show no sign of life before it is
 *  closed. Bridge: nothing heard from the portal (heartbeats come every 2 s; default 7000 ms;
 *  the bridge then dials again). Portal: its bytes left unacknowledged, or the bridge's window
 *  left shut, that long (TCP_USER_TIMEOUT on the tunnel's socket; default 10000 ms), so a
 *  bridge whose host has gone stops getting sessions (V2Ray's portal keeps using such a tunnel
 *  for about 15 minutes). 0 restores the default; otherwise 1000..3600000, and on a bridge
 *  more than the portal's heartbeat period. Returns 0 or VREV_ERR_INVAL. */
VREV_API int vrev_tunnel_opts_set_dead_after_ms(vrev_tunnel_opts *o, unsigned ms);

/** A session handed to the application instead of a socket: `stream` (owned by the callee
 *  from now on: end it with vrev_stream_close(), vrev/stream.h) carries the public client's
 *  bytes both ways, as a connected socket would. Set its callback (vrev_stream_set_cb) from
 *  here or later; bytes that come meanwhile wait in its input. `name` is the target name
 *  (valid during the call only). Runs from the event loop; the callee may close the stream
 *  at once (a refusal), and may free the bridge (no session is handed out after that). */
typedef void (*vrev_bridge_accept_cb)(vrev_stream *stream, const char *name, void *user);

/** Bridge: serve target `name` in-process: each of its sessions is given to `cb` as a
 *  vrev_stream in the bridge's event loop (no local socket at all). A configuration with
 *  handlers has no V2Ray equivalent (vrev_tunnel_opts_print_config() then returns
 *  VREV_ERR_UNSUPPORTED). Returns 0, VREV_ERR_INVAL (o or cb NULL, a bad name, a name that
 *  has a target already) or VREV_ERR_NOMEM. */
VREV_API int vrev_tunnel_opts_add_handler(vrev_tunnel_opts *o, const char *name,
                                          vrev_bridge_accept_cb cb, void *user);

/** Print the equivalent V2Ray 4.34 JSON configuration of a portal (as_portal = 1) or a bridge
 *  into buf (NUL-terminated). Returns the length the whole text needs (like snprintf), or a
 *  negative VREV_ERR_* (VREV_ERR_INVAL if a required option is missing). */
VREV_API int vrev_tunnel_opts_print_config(const vrev_tunnel_opts *o, int as_portal, char *buf,
                                           size_t cap);

/* --- events and counters -------------------------------------------------------------------- */

enum vrev_tunnel_event {
    VREV_EVENT_TUNNEL_UP = 1,
    VREV_EVENT_TUNNEL_DOWN = 2,
    VREV_EVENT_SESSION_OPEN = 3,
    VREV_EVENT_SESSION_CLOSE = 4, /* bytes_up/bytes_down are the session's totals */
    VREV_EVENT_SESSION_REFUSED = 5
};

/** Event callback, run from the event loop: `name` is the session's target name; for a
 *  bridge's tunnel events the portal's HOST:PORT as given (which of its portals), or
 *  "NAME:PORT (ADDRESS)" for one of the addresses of a portal given by a name with several
 *  (e.g. "portal.example.net:8443 (2001:db8::7)"); NULL for a portal's tunnel events and
 *  refusals. Valid during the call only. For SESSION_CLOSE,
 * bytes_up is what the public client sent to the service and bytes_down the other way (0
 * otherwise). The portal or bridge may be freed from inside it (vrev/ctx.h, "Callbacks"): no
 * event follows, and the free completes once the callback has returned. */
typedef void (*vrev_tunnel_event_cb)(int event, const char *name, uint64_t bytes_up,
                                     uint64_t bytes_down, void *user);

enum vrev_tunnel_counter {
    VREV_COUNTER_TUNNELS = 1,        /* tunnels up now (bridge: its portal was heard, as
                                        VREV_EVENT_TUNNEL_UP says; a dial in progress, or a
                                        connection the portal never answered, is not up) */
    VREV_COUNTER_TUNNELS_OPENED = 2, /* tunnels that came up since creation */
    VREV_COUNTER_SESSIONS = 3,       /* sessions opened since creation */
    VREV_COUNTER_SESSIONS_ACTIVE = 4,
    VREV_COUNTER_REFUSED = 5,  /* sessions refused (bridge: a target outside its
                                  targets, dialsPerTunnel dials in progress for more
                                  than a second, or over sessionRate; portal: no
                                  tunnel) */
    VREV_COUNTER_BYTES_UP = 6, /* up: public clients -> services behind the bridge */
    VREV_COUNTER_BYTES_DOWN = 7
};

/* --- portal --------------------------------------------------------------------------------- */

/** Create a portal and bind its listeners. Needs: id, listen, at least one public listener.
 *  err, err_len: the error detail (vrev/error.h: "" on success, else what failed). Returns 0,
 *  VREV_ERR_INVAL, VREV_ERR_STATE (ctx without event_base), VREV_ERR_NOMEM or a listener
 *  error (VREV_ERR_ADDRINUSE...). */
VREV_API int vrev_portal_new(vrev_portal **out, vrev_ctx *ctx, const vrev_tunnel_opts *o, char *err,
                             size_t err_len);
/** Free a portal: its listeners, tunnels and sessions close. NULL is a no-op. From inside one
 *  of the context's callbacks (its own events included), it stops the portal's events at once
 *  and completes once the callback has returned (vrev/ctx.h). */
VREV_API void vrev_portal_free(vrev_portal *p);
VREV_API void vrev_portal_set_event_cb(vrev_portal *p, vrev_tunnel_event_cb cb, void *user);
VREV_API uint64_t vrev_portal_counter(const vrev_portal *p, int counter);
/** The bound port of the tunnel listener, and of the i-th public listener (0 if none). */
VREV_API unsigned vrev_portal_tunnel_port(const vrev_portal *p);
VREV_API unsigned vrev_portal_public_port(const vrev_portal *p, size_t i);

/** Apply new options to a running portal (all or nothing: on any error the portal is unchanged,
 *  err gets a message as vrev/error.h says). Live tunnels and sessions stay. The public
 *  listeners are matched by HOST:PORT: one with the same name is kept, one with a new name
 *  takes over the old socket (no connect refused meanwhile), a removed one closes, a new one
 *  binds (a busy port fails the reload). The tunnel listener is kept if its options (id,
 *  listen, TLS certificate and key, transport, carrier) did not change; otherwise a new one (on
 *  the old socket when --listen is the same) takes new handshakes with the new id and settings,
 *  and the old one finishes those under way. The domain, heartbeat, drain threshold and
 *  dead-after need a restart: VREV_ERR_UNSUPPORTED, the message names the option. `o` is read
 *  during the call only. A log line says what was kept. Returns 0, VREV_ERR_INVAL,
 *  VREV_ERR_UNSUPPORTED, VREV_ERR_NOMEM or a listener error. Thread: the loop's. */
VREV_API int vrev_portal_reload(vrev_portal *p, const vrev_tunnel_opts *o, char *err,
                                size_t err_len);
/** Reloads so far: successful (failed 0) or failed (failed != 0). 0 for NULL. */
VREV_API uint64_t vrev_portal_reload_count(const vrev_portal *p, int failed);

/* --- bridge --------------------------------------------------------------------------------- */

/** Create a bridge. Needs: id, portal, at least one target. err, err_len and the return value
 *  as vrev_portal_new(). */
VREV_API int vrev_bridge_new(vrev_bridge **out, vrev_ctx *ctx, const vrev_tunnel_opts *o, char *err,
                             size_t err_len);
/** Start dialing the portal (and keep a tunnel up from now on). Returns 0. */
VREV_API int vrev_bridge_start(vrev_bridge *b);
/** Free a bridge: its tunnels and sessions close. NULL is a no-op. From inside one of the
 *  context's callbacks (its own events and handlers included), as vrev_portal_free(). */
VREV_API void vrev_bridge_free(vrev_bridge *b);
VREV_API void vrev_bridge_set_event_cb(vrev_bridge *b, vrev_tunnel_event_cb cb, void *user);
VREV_API uint64_t vrev_bridge_counter(const vrev_bridge *b, int counter);

/** Apply new options to a running bridge (all or nothing, as vrev_portal_reload()). The
 *  targets (and so what the bridge may reach) are replaced for new sessions; live sessions
 *  stay. Each portal is matched with a running one: the same way to it (its address, id,
 *  security, TLS settings and pins, transport, carrier): its tunnels stay; else the same
 *  address, or else one left over in order: new tunnels are dialled with the new settings
 *  and the old ones close once they carry no session. A running portal left unmatched (one
 *  removed) has its tunnels closed at once, their sessions with them; a new one is dialled. The
 * domain, heartbeat, drain threshold and dead-after need a restart (VREV_ERR_UNSUPPORTED). Returns
 * 0, VREV_ERR_INVAL, VREV_ERR_UNSUPPORTED or VREV_ERR_NOMEM. Thread: the loop's. */
VREV_API int vrev_bridge_reload(vrev_bridge *b, const vrev_tunnel_opts *o, char *err,
                                size_t err_len);
/** Reloads so far: successful (failed 0) or failed (failed != 0). 0 for NULL. */
VREV_API uint64_t vrev_bridge_reload_count(const vrev_bridge *b, int failed);

#ifdef __cplusplus
}
#endif
#endif
