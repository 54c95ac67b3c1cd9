/* HTTP/1.1 message heads for the WebSocket carrier's upgrade (RFC 7230 §3, RFC 6455 §4),
 * sans-IO: bytes in, a parsed head, "need more" or an error out; heads written into a buffer
 * the caller gives. No libevent, no clock, no socket.
 *
 * Where it sits (as V2Ray 4.34 stacks its "ws" transport):
 *
 *   VMess / VLESS / Mux.Cool       the proxy protocol, unchanged
 *   ws.h   WebSocket frames        binary messages carry the proxy protocol's bytes
 *   http1.h  upgrade handshake     this file: one request, one 101 answer, then frames
 *   TLS (optional), TCP
 *
 * The exchange (what Debian's V2Ray 4.34 sends, tests/vectors/ws/):
 *
 *   client                                         server
 *   GET /path HTTP/1.1                             HTTP/1.1 101 Switching Protocols
 *   Host: <wsSettings.headers.Host or address>     Upgrade: websocket
 *   User-Agent: Go-http-client/1.1                 Connection: Upgrade
 *   Connection: Upgrade                            Sec-WebSocket-Accept: base64(SHA-1(key +
 *   Sec-WebSocket-Key: base64(16 random bytes)         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
 *   Sec-WebSocket-Version: 13
 *   Upgrade: websocket
 *   <other wsSettings.headers, sorted by name>
 *
 * V2Ray's server compares the decoded URL path (no query) with its path before anything else
 * and answers a mismatch with a bare 404 (a probe sees a web server); then gorilla/websocket
 * answers 405 to a method other than GET and 400 to a missing Upgrade / Connection token,
 * version or key. It checks no Host and no key format, and takes HTTP/1.0; we check the key
 * (16 bytes of base64, as RFC 6455 asks) and answer 426 to a version other than 13 (RFC 6455
 * §4.2.2; gorilla says 400), and refuse HTTP/1.0 (RFC 6455 §4.1): no real client differs.
 *
 * What the glue (lib/net) does: on the server, feed the connection's first bytes to a
 * vrev__http1_reader until it returns the head length; run vrev__ws_check_request(); write
 * vrev__ws_write_101() or vrev__http1_write_error() for the status it gave (on a reader error:
 * vrev__http1_write_unreadable()) and close after an error; bytes after the head are WebSocket
 * frames. On the client, write vrev__ws_write_request(), read the answer with a reader and
 * vrev__ws_check_response(). Bound the handshake in time (V2Ray: 4 s server, 8 s client).
 *
 * Thread safety: all functions are reentrant; a reader belongs to one connection. */
#ifndef VREV_CODEC_HTTP1_H
#define VREV_CODEC_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base64.h"

/* A head is at most this long (request line, headers, the empty line) and has at most this
 * many header lines: an upgrade needs some 300 bytes and 8 headers; nginx and CDNs add a few.
 * V2Ray's server allows 2048 + 4096 bytes. */
#define VREV_HTTP1_HEAD_MAX 8192
#define VREV_HTTP1_HEADERS_MAX 64

/* Pieces of a head point into the reader's buffer (not NUL-terminated). */
struct vrev__http1_str {
    const char *p;
    size_t len;
};

struct vrev__http1_header {
    struct vrev__http1_str name;  /* as sent; compare case-insensitively */
    struct vrev__http1_str value; /* leading and trailing spaces and tabs removed */
};

struct vrev__http1_head {
    bool response;
    int minor;                             /* HTTP/1.<minor> */
    struct vrev__http1_str method, target; /* requests */
    int status;                            /* responses: 100..999 */
    struct vrev__http1_str reason;
    size_t n_headers;
    struct vrev__http1_header headers[VREV_HTTP1_HEADERS_MAX];
};

/* Gathers one head that may arrive in any pieces, and parses it. */
struct vrev__http1_reader {
    bool response; /* parse a status line instead of a request line */
    size_t len;    /* bytes in buf */
    size_t scan;   /* where the search for the empty line resumes */
    size_t done;   /* head length once parsed */
    int err;       /* the error returned, if any */
    struct vrev__http1_head head;
    char buf[VREV_HTTP1_HEAD_MAX];
};

void vrev__http1_reader_init(struct vrev__http1_reader *r, bool response);

/* Take bytes from p[0..n) until the head is complete. *used gets the bytes taken: all of p
 * while more are needed, only the head's own bytes once complete (what follows is the next
 * layer's: WebSocket frames). Returns the head length (> 0; again on later calls, taking
 * nothing), 0 if more bytes are needed, VREV_ERR_HTTP_HEAD_SIZE (no end within
 * VREV_HTTP1_HEAD_MAX bytes, or more than VREV_HTTP1_HEADERS_MAX headers: answer 431) or
 * VREV_ERR_HTTP_HEAD (malformed: answer 400). After an error every call returns it again.
 * The parsed head is r->head; it points into r->buf. */
int vrev__http1_reader_feed(struct vrev__http1_reader *r, const uint8_t *p, size_t n, size_t *used);

/* Parse a complete head p[0..n) (ending with its empty line) into *h, pointing into p.
 * Returns 0, VREV_ERR_HTTP_HEAD or VREV_ERR_HTTP_HEAD_SIZE. Lines may end in CRLF or LF;
 * obsolete line folding, spaces before a colon and control characters are refused. */
int vrev__http1_parse(const char *p, size_t n, bool response, struct vrev__http1_head *h);

/* The value of the first header called `name` (ASCII case-insensitive), or NULL. */
const struct vrev__http1_str *vrev__http1_get(const struct vrev__http1_head *h, const char *name);

/* How many headers are called `name`. */
size_t vrev__http1_count(const struct vrev__http1_head *h, const char *name);

/* Whether any header called `name` lists `token` (comma-separated, case-insensitive), as in
 * "Connection: keep-alive, Upgrade". */
bool vrev__http1_has_token(const struct vrev__http1_head *h, const char *name, const char *token);

/* Whether a request target's path — without query, without scheme://authority of an absolute
 * URL, %-escapes decoded, as Go's URL.Path — equals `want` (prefix: starts with it, V2Ray's
 * h2 check). Returns 1, 0, or -1 for a bad %-escape. */
int vrev__http1_path_match(const char *target, size_t len, const char *want, bool prefix);

/* The first address of an X-Forwarded-For value ("client, proxy1, proxy2": the client as the
 * first proxy saw it, which is what V2Ray takes), trimmed; len 0 if there is none. */
struct vrev__http1_str vrev__http1_xff_first(struct vrev__http1_str xff);

/* An IMF-fixdate ("Sun, 06 Dec 2026 08:31:22 GMT", 29 characters and a NUL) for a Date header,
 * from seconds since 1970 that the caller reads from its clock. */
void vrev__http1_date(int64_t unix_seconds, char out[30]);

/* An error answer as V2Ray's Go server writes it, into out[0..cap): 404 (a bare "Not Found"
 * with Content-Length 0, what a wrong path or host gets), 400, 405 and 426 (gorilla's
 * text/plain answers with Sec-Websocket-Version: 13), 431 and any other status (Go's
 * "Connection: close" answer to a head it cannot read). `date` is vrev__http1_date()'s string
 * or NULL (no Date header). The glue closes the connection after writing it. Returns the
 * length, VREV_ERR_NOSPACE or VREV_ERR_INVAL (status outside 400..599). */
int vrev__http1_write_error(char *out, size_t cap, int status, const char *date);

/* The answer to a head the reader refused (its error code): Go's 431 to an oversized head,
 * its 400 to a malformed one. Returns the length or VREV_ERR_NOSPACE. */
int vrev__http1_write_unreadable(char *out, size_t cap, int err);

/* --- WebSocket upgrade (RFC 6455 §4) -------------------------------------------------------- */

#define VREV_WS_KEY_LEN 24    /* base64 of 16 bytes */
#define VREV_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

/* What the server checks. path: the normalised wsSettings.path ("/" if empty, a leading "/"
 * added); host: NULL for any Host (V2Ray checks none), or a name that must match the Host
 * header (case-insensitive; a port in the header is ignored if `host` has none). */
struct vrev__ws_server_opts {
    const char *path;
    const char *host;
};

/* The result of checking an upgrade request. */
struct vrev__ws_request {
    int status;                       /* 101: accept; else the error status to answer */
    struct vrev__http1_str key;       /* Sec-WebSocket-Key (status 101) */
    struct vrev__http1_str host;      /* Host header (len 0 if absent) */
    struct vrev__http1_str forwarded; /* X-Forwarded-For as sent (len 0 if absent) */
};

/* Check a request head as V2Ray's server does, in its order: the path (404), the Host if
 * configured (404), the method GET (405), HTTP/1.1 (400), the Connection and Upgrade tokens
 * (400), one key of 16 bytes in base64 (400), Sec-WebSocket-Version 13 (missing: 400, other:
 * 426). A target may be a path or an absolute URL; the query is ignored and %-escapes are
 * decoded before the comparison (bad escapes: 400). Fills *out and returns out->status. */
int vrev__ws_check_request(const struct vrev__http1_head *h, const struct vrev__ws_server_opts *o,
                           struct vrev__ws_request *out);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC 6455 GUID)), NUL-terminated.
 * Returns 0 or VREV_ERR_CRYPTO. */
int vrev__ws_accept(const char *key, size_t key_len, char out[VREV_WS_ACCEPT_LEN + 1]);

/* The server's 101 answer to a checked request (status 101). Returns the length,
 * VREV_ERR_NOSPACE or VREV_ERR_CRYPTO. */
int vrev__ws_write_101(char *out, size_t cap, const struct vrev__ws_request *req);

/* The client's request, laid out as gorilla/websocket (V2Ray's client) lays it out: Host,
 * User-Agent (Go's, unless `headers` has one), then every other header sorted by name.
 * key: 16 random bytes from the caller; its base64 goes to `key_out` (NUL-terminated) for
 * vrev__ws_check_response(). host: the Host value (wsSettings.headers' Host, else the
 * address as "name" or "name:port"). headers: wsSettings.headers other than Host (names and
 * values without CR, LF or NUL; the handshake's own headers are refused as gorilla refuses
 * them). Returns the length, VREV_ERR_NOSPACE or VREV_ERR_INVAL. */
int vrev__ws_write_request(char *out, size_t cap, const char *host, const char *path,
                           const struct vrev__http1_header *headers, size_t n_headers,
                           const uint8_t key[16], char key_out[VREV_WS_KEY_LEN + 1]);

/* Check the server's answer: status 101, the Upgrade and Connection tokens, the
 * Sec-WebSocket-Accept for our key, no extension we did not offer. Returns 0 or
 * VREV_ERR_WS_HANDSHAKE. */
int vrev__ws_check_response(const struct vrev__http1_head *h, const char *key);

#endif
