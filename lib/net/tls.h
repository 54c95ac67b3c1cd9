/* TLS as a bufferevent layer (WIRE-SPEC §8.5), client and server, over OpenSSL 3 or mbedTLS 2.28
 * (chosen at build time, DESIGN.md §7).
 *
 *   user  <-- plaintext -->  [ TLS layer ]  <-- TLS records -->  lower (tcp, or any bufferevent)
 *
 * Policy, the same on both backends: TLS 1.2 minimum (1.3 where the backend has it: OpenSSL),
 * ECDHE with AES-GCM or ChaCha20-Poly1305 only, no renegotiation, no session tickets or
 * session cache, no compression. A client verifies the peer unless told not to: the chain
 * against the system roots plus the listed certificates, and the name (a DNS name, or an IP
 * address against the certificate's IP SANs). ALPN only as configured: a client sends none when
 * given none; a server that has a list aborts a handshake whose offer shares nothing with it
 * (as Go >= 1.17 and mbedTLS do), and ignores ALPN when it has none.
 *
 * The wrapped bufferevent behaves like a socket:
 * - it can be written at once; the bytes wait for the handshake. Reading starts by itself (the
 *   handshake needs it) and stops while the user's side is full or EV_READ is disabled on it.
 * - the peer's close_notify is an EOF event (BEV_EVENT_EOF|BEV_EVENT_READING), delivered after
 *   every byte before it. An end of the connection below without close_notify is an error
 *   (truncation must never look like a clean end), so is any TLS failure (handshake, alert,
 *   verification): BEV_EVENT_ERROR, with the reason in vrev__tls_last_error().
 * - an end of stream from the user (bufferevent_flush(bev, EV_WRITE, BEV_FINISHED), i.e.
 *   vrev__bev_shutdown_write) sends close_notify after the pending bytes, then ends the write
 *   direction below; reading goes on (half-close).
 * - freeing it is a close: bytes already accepted (the write callback saw them leave) are
 *   encrypted, close_notify follows, then the connection below ends. On a socket whose kernel
 *   buffer cannot take everything at once, the socket lingers alone in the event loop (writes
 *   the rest, ends its write direction, discards input until the peer ends; at most 10 s
 *   without progress), so keep the loop running for a moment; the context owns the sockets
 *   still lingering and closes them when it goes (vrev_ctx_close_lingering). An abort
 *   (vrev__bev_close(bev, 1)) is the free without close_notify, with an RST on a TCP socket,
 *   so that the peer sees an error. vrev__layer_set_linger() bounds the lingering.
 * It is a layer as layer.h describes (a hidden one: its bufferevent is a filter over a pair).
 * Buffering inside the layer is bounded (64 KiB per stage and direction).
 *
 * Thread safety: a TLS context and its connections belong to the thread running the ctx's
 * event_base. Nothing here touches process-global state (OpenSSL 3 needs no init; mbedTLS gets
 * an entropy source and a DRBG per context). Secrets (keys) are never logged.
 */
#ifndef VREV_NET_TLS_H
#define VREV_NET_TLS_H

#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

struct vrev__tls_client_opts {
    const char *server_name; /* SNI and the name verified; NULL: the name given to wrap */
    bool allow_insecure;     /* no verification at all (the caller logs a warning) */
    bool disable_system_root;
    const char *const *ca_pem; /* extra trusted certificates, PEM text (each may hold many) */
    size_t n_ca_pem;
    const char *const *ca_files; /* extra trusted certificates, PEM files */
    size_t n_ca_files;
    const char *const *alpn; /* offered protocols in order; NULL/0: send no ALPN */
    size_t n_alpn;
    /* Pinning (V2Ray's pinnedPeerCertificateChainSha256, `--pin sha256:...`): SHA-256
     * digests (32 bytes each); when any is given, the server's chain must match one of them
     * (tls_ctx.c says exactly what is hashed) on top of the usual verification. */
    const uint8_t (*pins)[32];
    size_t n_pins;
};

struct vrev__tls_server_opts {
    const char *cert_pem, *cert_file; /* exactly one: the certificate (then its chain) */
    const char *key_pem, *key_file;   /* exactly one: its private key (unencrypted PEM) */
    const char *const *alpn;          /* supported protocols, preferred first; NULL/0: none */
    size_t n_alpn;
};

/* Certificates, keys and settings, loaded once and shared by the connections made with it
 * (reference counted: a context may be freed while its connections live on). */
struct vrev__tls_ctx;

/* Make a client or server context. Returns 0, or: VREV_ERR_INVAL (bad options, unparsable
 * PEM, a certificate that does not match its key, no trusted certificate at all),
 * VREV_ERR_IO (a file cannot be read; the message names it), VREV_ERR_NOMEM, VREV_ERR_CRYPTO
 * (the TLS library failed). On failure `err` (may be NULL) holds a one-line reason. */
int vrev__tls_client_ctx_new(vrev_ctx *ctx, const struct vrev__tls_client_opts *o,
                             struct vrev__tls_ctx **out, char *err, size_t err_len);
int vrev__tls_server_ctx_new(vrev_ctx *ctx, const struct vrev__tls_server_opts *o,
                             struct vrev__tls_ctx **out, char *err, size_t err_len);
/* Drop the caller's reference (NULL is a no-op). */
void vrev__tls_ctx_free(struct vrev__tls_ctx *t);

/* Wrap a connected `lower` bufferevent, owned by the layer from now on (freed on failure too;
 * its callbacks and watermarks are the layer's). Client: the name sent as SNI and verified is
 * the context's server_name, else `name` (V2Ray passes the destination), else the peer's IP;
 * an IP literal is never sent as SNI and is checked against the IP SANs. Server: `name` is
 * ignored. conn_id: the connection's, for the layer's lines (0: none). Returns the
 * bufferevent the user reads and writes (free it with bufferevent_free),
 * or NULL with *err = VREV_ERR_NOMEM / VREV_ERR_CRYPTO / VREV_ERR_INVAL (no name to verify). */
struct bufferevent *vrev__tls_wrap(struct vrev__tls_ctx *t, struct bufferevent *lower,
                                   const char *name, uint64_t conn_id, int *err);

/* After an error event: a short reason for logs, e.g. "certificate verify failed: unable to
 * get local issuer certificate", or "" when there was none. Returns buf. */
const char *vrev__tls_last_error(struct bufferevent *tls_bev, char *buf, size_t len);

/* The negotiated ALPN protocol, or NULL (none, handshake not done, not a TLS bufferevent). */
const char *vrev__tls_alpn(struct bufferevent *tls_bev);

/* True once the handshake (and verification) has succeeded. */
bool vrev__tls_handshake_done(struct bufferevent *tls_bev);

#ifdef VREV_TESTING
/* Tests only (built with -DVREV_TESTING, never in the shipped library): make the transport below
 * behave badly (short reads and writes, spurious would-block) with a pseudo-random sequence
 * from `seed` (0: off). */
void vrev__tls_set_chaos(struct bufferevent *tls_bev, unsigned seed);
#endif

#endif
