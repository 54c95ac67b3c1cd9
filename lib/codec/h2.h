/* The HTTP/2 carrier ("network": "h2" / "http") as V2Ray 4.34 speaks it, sans-IO, on nghttp2
 * (nghttp2_session_mem_recv / mem_send: bytes in, bytes out, events through callbacks).
 *
 * Where it sits (as V2Ray stacks it):
 *
 *   VMess / VLESS / Mux.Cool        the proxy protocol's byte stream, unchanged
 *   h2.h    one HTTP/2 stream       this file: a request body up, a response body down
 *   TLS with ALPN "h2"              V2Ray's client requires it; its server also serves
 *                                   cleartext h2 (prior knowledge) when no TLS is set
 *   TCP
 *
 *   Frame (RFC 9113 §4.1)
 *   +-----------------+--------+--------+---+------------------+----------------+
 *   | length (24)     | type 8 | flags 8| R | stream id (31)   | payload        |
 *   +-----------------+--------+--------+---+------------------+----------------+
 *
 * What V2Ray 4.34 does (Go's x/net/http2; tests/vectors/h2/):
 *   client  SETTINGS ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 4 MiB, MAX_HEADER_LIST_SIZE 10 MiB;
 *           WINDOW_UPDATE raising the connection window to 1 GiB; then per connection of the
 *           proxy one stream: HEADERS :authority <a random httpSettings.host, default
 *           "www.example.com">, :method PUT, :path <path, default "/">, :scheme https,
 *           accept-encoding identity, user-agent Go-http-client/2.0 (no END_STREAM), and the
 *           body as DATA. It needs status 200. It ends a stream with RST_STREAM CANCEL, not
 *           END_STREAM (END_STREAM only if its upload ends first). It keeps ONE HTTP/2
 *           connection per destination and multiplexes every proxied connection over it as a
 *           stream of its own: a server must take many concurrent streams per connection.
 *   server  SETTINGS MAX_FRAME_SIZE 1 MiB, MAX_CONCURRENT_STREAMS 250, MAX_HEADER_LIST_SIZE
 *           1048896, INITIAL_WINDOW_SIZE 1 MiB; WINDOW_UPDATE to a 1 MiB connection window.
 *           A request whose :authority is not exactly one of the hosts, or whose path does not
 *           START with the path (a prefix match: /h2/sub passes for /h2), gets 404 with
 *           content-length 0 and END_STREAM; the method is not checked. Otherwise 200 with
 *           cache-control no-store (no date header), then the response body streams; END_STREAM
 *           when its side ends.
 *
 * This codec does the same: the client opens a stream per vrev__h2_open() (one per
 * connection is what the glue needs; more work too), the server accepts up to max_streams
 * concurrent streams, checks host and path as V2Ray does, answers 200 or 404, streams both
 * bodies. END_STREAM from the peer is EOF of its direction (on_end); RST_STREAM NO_ERROR or
 * CANCEL is a normal end of the stream, other codes a reset (on_close with
 * VREV_ERR_H2_RESET).
 *
 * Flow control: automatic WINDOW_UPDATE is off. The glue reports what the upper layer has
 * taken with vrev__h2_consumed(); only then does the peer get credit. So a stream holds at
 * most its window (default 4 MiB, as Go's client) of unread input, a connection at most its
 * connection window. Output: each stream buffers what the upper layer sent until the peer's
 * window lets it go (vrev__h2_buffered(): stop reading the source above a mark), the
 * connection holds framed bytes up to VREV_H2_OUT_CHUNK before the glue writes them.
 *
 * Abuse bounds (nghttp2's, enabled and set here, and ours): concurrent streams; header list
 * size (VREV_H2_MAX_HEADER_LIST, refused with a stream reset); CONTINUATION frames per header
 * block (8); queued SETTINGS/PING acknowledgements (max_outbound_ack); SETTINGS entries per
 * frame (32); incoming RST_STREAM rate (rapid reset; V2Ray clients reset every stream they
 * end, so this is also their sustained stream rate); and our count of PING, SETTINGS,
 * PRIORITY and empty DATA frames per tick. Past one: GOAWAY and VREV_ERR_H2_FLOOD (ours, and
 * nghttp2's queued-acknowledgement bound), or VREV_ERR_H2_PROTOCOL for the reset rate
 * (nghttp2 answers it with GOAWAY INTERNAL_ERROR, as it does some of its allocation
 * failures).
 *
 * What the glue (lib/net) does: the client negotiates ALPN h2 under TLS (refuse otherwise, as
 * V2Ray); feed every byte read to vrev__h2_feed(); write what vrev__h2_pending() gives and
 * vrev__h2_consume() it; pass the upper layer's bytes with vrev__h2_send() and its end with
 * vrev__h2_end() (or vrev__h2_reset() to abort); call vrev__h2_consumed() as the upper layer
 * takes input; call vrev__h2_tick() once a second; close the connection when vrev__h2_done().
 * Callbacks run inside vrev__h2_feed() and vrev__h2_pending(); they may call the stream
 * functions, not vrev__h2_free().
 *
 * Thread safety: one codec belongs to one thread; no shared state. */
#ifndef VREV_CODEC_H2_H
#define VREV_CODEC_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Defaults for zero fields of struct vrev__h2_opts. */
#define VREV_H2_STREAM_WINDOW (4u << 20)       /* Go's client; its server uses 1 MiB */
#define VREV_H2_SERVER_CONN_WINDOW (16u << 20) /* bounds what one connection holds unread */
#define VREV_H2_CLIENT_CONN_WINDOW ((1u << 30) + 65535) /* Go's client: 65535 + 1 GiB */
#define VREV_H2_MAX_STREAMS 128                         /* concurrent, server; Go allows 250 */
#define VREV_H2_MAX_HEADER_LIST (16u << 10)             /* request or response header list, bytes */
#define VREV_H2_MAX_CONTROL 128       /* PING/SETTINGS/PRIORITY/empty DATA per tick */
#define VREV_H2_RESET_BURST 1000      /* incoming RST_STREAM: nghttp2's burst */
#define VREV_H2_RESET_RATE 100        /* ... and per second (nghttp2: 33) */
#define VREV_H2_OUT_CHUNK (64u << 10) /* framed bytes prepared ahead of writing */

struct vrev__h2;

struct vrev__h2_opts {
    bool client;
    const char *path; /* normalised path: client sends it, server matches it as a prefix */
    /* client: the :authority to send (the glue picks one of httpSettings.host at random, as
     * V2Ray does per request). server: the hosts a request's :authority must equal exactly
     * (V2Ray's default when none are configured: "www.example.com"). */
    const char *authority;
    const char *const *hosts;
    size_t n_hosts;
    uint32_t stream_window; /* our receive window per stream */
    uint32_t conn_window;   /* our receive window for the connection */
    uint32_t max_streams;   /* server: concurrent streams */
    unsigned max_control;   /* per tick */
    uint32_t reset_burst, reset_rate;
};

/* A request the server accepted (valid during on_open). Strings are NUL-terminated. */
struct vrev__h2_request {
    const char *method, *authority, *path;
    const char *forwarded; /* the first X-Forwarded-For value, "" if none */
};

struct vrev__h2_callbacks {
    /* Server: a stream whose request passed the checks (req set); return 0 to accept it (200
     * goes out) or a negative VREV_ERR_* to refuse it (RST_STREAM REFUSED_STREAM). Client: the
     * 200 arrived for a stream we opened (req NULL); a negative return resets the stream. */
    int (*on_open)(void *user, int32_t sid, const struct vrev__h2_request *req);
    /* Payload of a stream, as it arrives. Report it through vrev__h2_consumed() once the upper
     * layer takes it. Return 0 or a negative VREV_ERR_* (the stream is then reset). */
    int (*on_data)(void *user, int32_t sid, const uint8_t *p, size_t n);
    /* The peer ended its direction of the stream (END_STREAM): EOF. */
    void (*on_end)(void *user, int32_t sid);
    /* The stream is gone (after on_open, or for a stream the client opened): err 0 (both
     * sides ended, or the peer's RST_STREAM NO_ERROR / CANCEL: V2Ray's way to end),
     * VREV_ERR_H2_RESET (any other reset, ours included), VREV_ERR_H2_REFUSED (client: an
     * answer other than 200). The stream id is invalid afterwards. */
    void (*on_close)(void *user, int32_t sid, int err);
};

/* Make a codec. The client path defaults to "/", its authority to "www.example.com"; the
 * server's hosts to {"www.example.com"} (V2Ray's defaults). Strings are copied. Returns 0,
 * VREV_ERR_INVAL (no callbacks, a path not starting with '/', an authority or host with
 * control characters) or VREV_ERR_NOMEM. */
int vrev__h2_new(vrev_ctx *ctx, struct vrev__h2 **out, const struct vrev__h2_opts *opts,
                 const struct vrev__h2_callbacks *cb, void *user);
void vrev__h2_free(struct vrev__h2 *h2); /* NULL ok; no callbacks run */

/* Parse p[0..n). Returns 0; VREV_ERR_H2_PROTOCOL (a connection error: GOAWAY pending),
 * VREV_ERR_H2_FLOOD (an abuse bound: GOAWAY pending) or VREV_ERR_NOMEM, sticky. Afterwards
 * flush vrev__h2_pending() (bounded in time) and close. While the output holds more than
 * VREV_H2_OUT_CHUNK, a connection error is only seen once that is written (the glue stops
 * reading then anyway); vrev__h2_done() turns true after the GOAWAY. */
int vrev__h2_feed(struct vrev__h2 *h2, const uint8_t *p, size_t n);

/* Client: open a stream (the request goes out with the next pending()). *sid gets its id.
 * Returns 0, VREV_ERR_STATE (server role, or the connection is closing) or VREV_ERR_NOMEM. */
int vrev__h2_open(struct vrev__h2 *h2, int32_t *sid);

/* Queue p[0..n) on a stream. Returns 0, VREV_ERR_STATE (no such stream, or it was ended or
 * refused) or VREV_ERR_NOMEM. */
int vrev__h2_send(struct vrev__h2 *h2, int32_t sid, const uint8_t *p, size_t n);

/* End our direction of a stream once what is queued has gone (END_STREAM). Returns 0 or
 * VREV_ERR_STATE. */
int vrev__h2_end(struct vrev__h2 *h2, int32_t sid);

/* Abort a stream now (RST_STREAM CANCEL, what V2Ray sends when it closes). Returns 0 or
 * VREV_ERR_STATE. on_close follows, with VREV_ERR_H2_RESET. */
int vrev__h2_reset(struct vrev__h2 *h2, int32_t sid);

/* The upper layer took n bytes of the stream's input: credit goes back to the peer. Ignored
 * for a stream that is gone (the codec returned its credit when it closed). */
void vrev__h2_consumed(struct vrev__h2 *h2, int32_t sid, size_t n);

/* Bytes queued on the stream, not yet framed (0 for no such stream). */
size_t vrev__h2_buffered(struct vrev__h2 *h2, int32_t sid);

/* Framed bytes held for writing (the connection's output). */
size_t vrev__h2_out_buffered(const struct vrev__h2 *h2);

/* Wire bytes to write: sets *p and returns their count (0: nothing). Valid until the next
 * call of any function of this codec. May run on_close (a stream reset goes out). */
size_t vrev__h2_pending(struct vrev__h2 *h2, const uint8_t **p);
void vrev__h2_consume(struct vrev__h2 *h2, size_t n);

/* Start a new period for the control-frame count (once a second). */
void vrev__h2_tick(struct vrev__h2 *h2);

/* Stop taking new streams (GOAWAY NO_ERROR); open streams go on. Returns 0 or
 * VREV_ERR_NOMEM. */
int vrev__h2_shutdown(struct vrev__h2 *h2);

/* Nothing more to read or write: the connection can be closed. */
bool vrev__h2_done(struct vrev__h2 *h2);

/* The nghttp2 library at run time (nghttp2_version()), as snprintf into buf. */
int vrev__h2_nghttp2_version(char *buf, size_t cap);

#endif
