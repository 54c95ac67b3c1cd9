/* Carriers as bufferevent layers (carrier.h says what a carrier is): the glue between the
 * sans-IO codecs (lib/codec/http1, ws) and a connection.
 *
 *   upper (VMess, VLESS, SOCKS)  <-- bytes -->  [ carrier layer ]  <-- frames -->  lower (tls, tcp)
 *
 * The layer is a bufferevent the upper layer uses as it uses a TCP one: it can be written at
 * once (the bytes wait for the upgrade), its input is the peer's payload, the peer's end
 * (close frame, or the connection's end) is an EOF event, a protocol failure an error event.
 *
 * ws: the client writes the upgrade request at once and reads the 101 (within 8 s, as
 * V2Ray's client); the server reads the request (the inbound's handshake deadline bounds it),
 * answers a refused one as V2Ray does (404 for a wrong path, ...), then raises an error event
 * once the answer is written, so that its owner closes the connection. WebSocket has no
 * half-close: an end of stream from the upper layer (vrev__bev_shutdown_write) puts nothing on
 * the wire (V2Ray sends its close frame only when it closes the connection: ws_layer.c says
 * why); the peer's close frame is an EOF.
 * h2: the client makes one HTTP/2 connection per dial with one stream (h2_layer.c); under TLS
 * the server must choose ALPN "h2", so the TLS client context must offer it. The server
 * (h2_server.c) hands out every stream of a connection as a bufferevent of its own: it is not
 * a layer on one connection, so vrev__carrier_server() does not do it (vrev__h2_serve()).
 *
 * Thread safety: a layer belongs to the thread running its ctx's event_base. */
#ifndef VREV_NET_CARRIER_LAYER_H
#define VREV_NET_CARRIER_LAYER_H

#include <event2/bufferevent.h>

#include "carrier.h"
#include "core/core.h"

/* Options kept by an inbound or outbound: `o`'s strings live in `mem` (one block), its path
 * normalised as V2Ray normalises it ("" -> "/", a leading "/" added). */
struct vrev__carrier {
    struct vrev__carrier_opts o;
    void *mem;
};

/* Copy `src` into `c` (replacing what it held). src NULL or kind TCP: no carrier. Returns 0,
 * VREV_ERR_INVAL (unknown kind, a NULL string in the lists) or VREV_ERR_NOMEM (c unchanged on
 * failure). */
int vrev__carrier_set(vrev_ctx *ctx, struct vrev__carrier *c, const struct vrev__carrier_opts *src);
void vrev__carrier_clear(vrev_ctx *ctx, struct vrev__carrier *c);

/* The ws Host a client sends for a dialed `host` and `port` when no Host is configured, as
 * V2Ray's: "host:port" (IPv6 in brackets), the port left out when it is the scheme's default
 * (80 for ws, 443 for wss). Returns the length or VREV_ERR_NOSPACE. */
int vrev__ws_default_host(const char *host, uint16_t port, bool tls, char *out, size_t cap);

/* Put the carrier's client role on a connected `lower` (TLS already on, if any). host: the
 * Host to send when o->hosts has none (vrev__ws_default_host()). Takes ownership of `lower`
 * (freed on failure). Kind TCP returns `lower` itself. NULL with *err (VREV_ERR_NOMEM,
 * VREV_ERR_INVAL) on failure. */
struct bufferevent *vrev__carrier_client(vrev_ctx *ctx, struct bufferevent *lower,
                                         const struct vrev__carrier_opts *o, const char *host,
                                         int *err);

/* The server role on an accepted `lower` (TLS already on, if any). Same ownership and errors;
 * h2: VREV_ERR_UNSUPPORTED (one connection is many: vrev__h2_serve()). */
struct bufferevent *vrev__carrier_server(vrev_ctx *ctx, struct bufferevent *lower,
                                         const struct vrev__carrier_opts *o, int *err);

/* h2_server.c: serve HTTP/2 on an accepted `lower` (TLS already on, if any), as V2Ray's h2
 * server: every stream whose :authority is one of o->hosts (none: "www.example.com") and
 * whose path starts with o->path gets 200 and becomes a bufferevent handed to `cb`, which owns
 * it from then on (the proxy protocol's connection: its own handshake, its own relay); others
 * get 404. The connection lives while `lower` does or any stream is held; freeing a stream
 * before its end resets it (RST_STREAM CANCEL); `lower` ending is an error event on every
 * stream held. A connection that holds no stream for idle_ms before its first stream, or for
 * idle_later_ms after it, is closed (0: no bound). `gone`
 * (may be NULL) runs when the connection ends by itself (not after vrev__h2_conn_close);
 * the handle is not to be used after it. o's strings are copied. Takes ownership of `lower`.
 * Returns the connection, or NULL with *err = VREV_ERR_NOMEM / VREV_ERR_INVAL (lower freed). */
struct vrev__h2_request;
struct vrev__h2_conn;
typedef void (*vrev__h2_stream_cb)(struct bufferevent *stream, const struct vrev__h2_request *req,
                                   void *user);
typedef void (*vrev__h2_gone_cb)(struct vrev__h2_conn *conn, void *user);
struct vrev__h2_conn *vrev__h2_serve(vrev_ctx *ctx, struct bufferevent *lower,
                                     const struct vrev__carrier_opts *o, uint32_t idle_ms,
                                     uint32_t idle_later_ms, vrev__h2_stream_cb cb,
                                     vrev__h2_gone_cb gone, void *user, int *err);
/* Close the connection now (its owner goes): streams still held get an error event and live
 * on until freed; no callback runs any more. */
void vrev__h2_conn_close(struct vrev__h2_conn *conn);

/* h2_layer.c: the h2 client role (vrev__carrier_client calls it). */
struct bufferevent *vrev__h2_layer_client(vrev_ctx *ctx, struct bufferevent *lower,
                                          const struct vrev__carrier_opts *o, int *err);

#endif
