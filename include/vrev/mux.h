/* Mux.Cool: V2Ray's stream multiplexer, as a sans-IO codec.
 *
 * A vrev_mux owns the session table of one multiplexed connection. Bytes received from the
 * peer go in with vrev_mux_feed(); they come out as callbacks (whole frames, sessions opened,
 * data, sessions closed). Frames to send are produced by vrev_mux_open()/send()/end() and by
 * the codec's own replies; they accumulate in an output queue read with vrev_mux_pending()
 * and released with vrev_mux_consume(). The codec never touches a socket or a clock.
 *
 * Roles: the CLIENT allocates session ids and sends New frames (a V2Ray portal, or a normal
 * outbound with mux); the SERVER accepts New frames (a V2Ray bridge).
 *
 * Wire format (all integers big-endian):
 *
 *   +---------+-----+--------+--------+------------------------------------------+
 *   | metaLen | sid | status | option | New only: network, port, addrType, addr   |
 *   |  u16    | u16 |   u8   |   u8   |   u8       u16   u8        1/4/16+len     |
 *   +---------+-----+--------+--------+------------------------------------------+
 *   then, if option & DATA:  u16 dataLen, dataLen bytes
 *
 * metaLen counts the bytes after itself (4..512). Bytes of metadata beyond those understood
 * are ignored, as V2Ray does.
 *
 * The codec's own replies: End|Error for a New beyond the session cap, and End for a Keep with
 * data on an id that is not live, the latter at most once per id until the id is live again
 * (V2Ray answers every such frame; a peer could turn a stream of them into a stream of Ends).
 *
 * Any protocol error (bad metaLen, status, network or address, an oversized packet, a
 * duplicate New) is fatal for the whole mux connection: vrev_mux_feed() returns the error,
 * and every later call returns VREV_ERR_MUX_CLOSED. The caller closes the connection.
 *
 * Thread safety: a vrev_mux belongs to one thread. Callbacks run inside vrev_mux_feed() on the
 * caller's stack; from a callback, the application may call any vrev_mux function on the same
 * mux, including vrev_mux_free() (the free is deferred until vrev_mux_feed() returns).
 */
#ifndef VREV_MUX_H
#define VREV_MUX_H

#include "common.h"
#include "ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vrev_mux vrev_mux;
typedef struct vrev_mux_frame vrev_mux_frame;

enum vrev_mux_role { VREV_MUX_CLIENT = 0, VREV_MUX_SERVER = 1 };

enum vrev_mux_status {
    VREV_MUX_NEW = 1,
    VREV_MUX_KEEP = 2,
    VREV_MUX_END = 3,
    VREV_MUX_KEEPALIVE = 4
};

/** Option bits. */
#define VREV_MUX_OPT_DATA 0x01
#define VREV_MUX_OPT_ERROR 0x02

/** Network of a session (the New frame's network byte). */
enum vrev_net { VREV_NET_TCP = 1, VREV_NET_UDP = 2 };

/** Address types of the "port first" address encoding. */
enum vrev_addr_type { VREV_ADDR_IPV4 = 1, VREV_ADDR_DOMAIN = 2, VREV_ADDR_IPV6 = 3 };

#define VREV_MUX_META_MIN 4
#define VREV_MUX_META_MAX 512
/** Largest payload of the stream (TCP) frames vrev_mux_open()/vrev_mux_send() queue (what
 *  V2Ray 4.34 sends); receivers accept up to VREV_MUX_DATA_MAX. */
#define VREV_MUX_STREAM_CHUNK 8192
/** Largest dataLen of any frame. Stream receivers, V2Ray 4.34's included, accept it. */
#define VREV_MUX_DATA_MAX 65535
/** Largest datagram in a packet (UDP) session, both ways (V2Ray's limit). */
#define VREV_MUX_PACKET_MAX 2048
/** Largest frame header: metaLen + metadata + dataLen. */
#define VREV_MUX_HEADER_MAX (2 + VREV_MUX_META_MAX + 2)
/** Enough room for any target text from vrev_mux_frame_target(), NUL included. */
#define VREV_MUX_TARGET_MAX 264
/** Default cap on concurrent sessions accepted by a server. */
#define VREV_MUX_DEFAULT_MAX_SESSIONS 1024

/* --- Frames (valid during the callback that receives them) --------------------------------- */

VREV_API uint16_t vrev_mux_frame_sid(const vrev_mux_frame *f);
/** VREV_MUX_NEW .. VREV_MUX_KEEPALIVE. */
VREV_API int vrev_mux_frame_status(const vrev_mux_frame *f);
/** The option byte as received (VREV_MUX_OPT_* bits, others preserved). */
VREV_API int vrev_mux_frame_option(const vrev_mux_frame *f);
/** VREV_NET_TCP or VREV_NET_UDP for New frames; 0 otherwise. */
VREV_API int vrev_mux_frame_network(const vrev_mux_frame *f);
/** VREV_ADDR_* of a New frame's target; 0 otherwise. A domain that is an IP literal, and an
 *  IPv4-mapped IPv6 address, are reported as the IP they denote (as V2Ray reads them). */
VREV_API int vrev_mux_frame_addr_type(const vrev_mux_frame *f);
/** A New frame's target port; 0 otherwise. */
VREV_API uint16_t vrev_mux_frame_port(const vrev_mux_frame *f);
/** Write a New frame's target host as text ("127.0.0.1", "::1", "example.com") into buf.
 *  Returns its length (NUL not counted), VREV_ERR_NOSPACE, or VREV_ERR_STATE (not a New). */
VREV_API int vrev_mux_frame_host(const vrev_mux_frame *f, char *buf, size_t cap);
/** Like vrev_mux_frame_host() as "host:port", IPv6 in brackets ("[::1]:53"). */
VREV_API int vrev_mux_frame_target(const vrev_mux_frame *f, char *buf, size_t cap);
/** The payload; *len gets its length. NULL and 0 when the frame has no Data option. */
VREV_API const uint8_t *vrev_mux_frame_data(const vrev_mux_frame *f, size_t *len);
/** Byte offset of the frame's first byte in the fed stream. */
VREV_API uint64_t vrev_mux_frame_offset(const vrev_mux_frame *f);

/* --- Callbacks ------------------------------------------------------------------------------ */

/** ABI version of struct vrev_mux_callbacks; set .abi to this value. */
#define VREV_MUX_CALLBACKS_ABI 1

/** Event callbacks. Any member may be NULL. A callback returns 0, or a negative VREV_ERR_*
 *  code to stop vrev_mux_feed() at once with that code (the mux is then closed). Pointers
 *  passed to a callback are valid during the call only. */
typedef struct vrev_mux_callbacks {
    unsigned abi;
    /** Every well-formed frame received, before the codec acts on it (inspection, logging). */
    int (*on_frame)(vrev_mux *mux, const vrev_mux_frame *frame, void *user);
    /** SERVER: the peer opened session `sid` (frame is the New frame: network, target). Its
     *  first data, if any, follows through on_data. To refuse the session, call
     *  vrev_mux_end(mux, sid, 1) from here. */
    int (*on_open)(vrev_mux *mux, uint16_t sid, const vrev_mux_frame *frame, void *user);
    /** Data for a live session: a stream chunk (TCP, one frame's payload) or exactly one
     *  datagram (UDP). */
    int (*on_data)(vrev_mux *mux, uint16_t sid, const uint8_t *data, size_t len, void *user);
    /** The peer ended session `sid` (error: 1 if it set the Error option). The session is
     *  already gone from the table when this runs; `session_user` is the pointer that was set
     *  with vrev_mux_session_set_user() (or NULL). */
    int (*on_close)(vrev_mux *mux, uint16_t sid, int error, void *session_user, void *user);
} vrev_mux_callbacks;

/* --- Lifecycle ------------------------------------------------------------------------------ */

/** Create a mux codec. `ctx` (borrowed) provides the allocator and logging; `cb` is copied
 *  (NULL: no callbacks); `user` is passed to every callback.
 *  Returns 0, VREV_ERR_INVAL (bad role, bad abi, NULL out/ctx) or VREV_ERR_NOMEM. */
VREV_API int vrev_mux_new(vrev_mux **out, vrev_ctx *ctx, int role, const vrev_mux_callbacks *cb,
                          void *user);

/** Free the codec and its queued output. NULL is a no-op. Safe inside a callback. */
VREV_API void vrev_mux_free(vrev_mux *mux);

/** Cap on concurrently live sessions (default VREV_MUX_DEFAULT_MAX_SESSIONS, 1..65535).
 *  A SERVER answers a New beyond the cap with End|Error for that id (not fatal); a CLIENT's
 *  vrev_mux_open() fails with VREV_ERR_MUX_TOO_MANY. Returns 0 or VREV_ERR_INVAL. */
VREV_API int vrev_mux_set_max_sessions(vrev_mux *mux, unsigned max);

/* --- Input ---------------------------------------------------------------------------------- */

/** Feed bytes received from the peer, split anywhere. Complete frames are processed in order
 *  and reported through the callbacks; an incomplete frame is buffered inside the codec (at
 *  most one frame, <= 66051 bytes). *consumed (may be NULL) gets the number of bytes taken:
 *  all of them on success.
 *  Returns 0, a protocol error (VREV_ERR_MUX_*, VREV_ERR_ADDR_*), VREV_ERR_NOMEM, a callback's
 *  error, or VREV_ERR_MUX_CLOSED after an earlier fatal error. */
VREV_API int vrev_mux_feed(vrev_mux *mux, const uint8_t *data, size_t len, size_t *consumed);

/** Bytes of an incomplete frame held inside the codec (0 at a frame boundary). A stream that
 *  ends with this nonzero was cut in the middle of a frame. */
VREV_API size_t vrev_mux_buffered(const vrev_mux *mux);

/** The fatal error that closed the mux (0 if none) and the stream offset of the frame that
 *  caused it. */
VREV_API int vrev_mux_error(const vrev_mux *mux);
VREV_API uint64_t vrev_mux_error_offset(const vrev_mux *mux);

/* --- Output --------------------------------------------------------------------------------- */

/** CLIENT: open a session to host:port over `network` and queue its New frame. `host` is an
 *  IPv4 or IPv6 literal (brackets allowed) or a domain of 1..255 characters [A-Za-z0-9._-].
 *  Up to one frame of `data` rides in the New frame (8192 bytes for TCP; the rest is queued
 *  as Keep frames); for UDP `data` is one datagram of at most 2048 bytes. The new id (never
 *  0, never a live id) goes to *sid.
 *  Returns 0, VREV_ERR_MUX_ROLE, VREV_ERR_INVAL, VREV_ERR_ADDR_*, VREV_ERR_MUX_PACKET_SIZE,
 *  VREV_ERR_MUX_TOO_MANY, VREV_ERR_MUX_IDS_EXHAUSTED, VREV_ERR_MUX_CLOSED or VREV_ERR_NOMEM. */
VREV_API int vrev_mux_open(vrev_mux *mux, int network, const char *host, uint16_t port,
                           const uint8_t *data, size_t len, uint16_t *sid);

/** Queue data for a live session as Keep frames (TCP: split at 8192 bytes; UDP: exactly one
 *  datagram <= 2048 bytes). Empty data queues nothing.
 *  Returns 0, VREV_ERR_MUX_NO_SESSION, VREV_ERR_MUX_PACKET_SIZE, VREV_ERR_MUX_CLOSED or
 *  VREV_ERR_NOMEM. */
VREV_API int vrev_mux_send(vrev_mux *mux, uint16_t sid, const uint8_t *data, size_t len);

/** Queue End (with the Error option when `error` is nonzero) and drop the session: Mux.Cool
 *  has no half-close. Returns 0, VREV_ERR_MUX_NO_SESSION, VREV_ERR_MUX_CLOSED or
 *  VREV_ERR_NOMEM. */
VREV_API int vrev_mux_end(vrev_mux *mux, uint16_t sid, int error);

/** Queue a KeepAlive frame (session id 0). Returns 0, VREV_ERR_MUX_CLOSED or VREV_ERR_NOMEM. */
VREV_API int vrev_mux_keepalive(vrev_mux *mux);

/** Queued output: returns its length and points *data at it (valid until the next call on the
 *  mux). */
VREV_API size_t vrev_mux_pending(const vrev_mux *mux, const uint8_t **data);

/** Drop the first n bytes of queued output (they were written). */
VREV_API void vrev_mux_consume(vrev_mux *mux, size_t n);

/* --- Sessions and counters ----------------------------------------------------------------- */

/** Attach an application pointer to a live session. Returns 0 or VREV_ERR_MUX_NO_SESSION. */
VREV_API int vrev_mux_session_set_user(vrev_mux *mux, uint16_t sid, void *user);
/** The pointer set with vrev_mux_session_set_user(), or NULL. */
VREV_API void *vrev_mux_session_user(const vrev_mux *mux, uint16_t sid);
/** VREV_NET_TCP or VREV_NET_UDP for a live session, or VREV_ERR_MUX_NO_SESSION. */
VREV_API int vrev_mux_session_network(const vrev_mux *mux, uint16_t sid);

/** Live sessions. */
VREV_API unsigned vrev_mux_active_sessions(const vrev_mux *mux);
/** Sessions ever opened on this mux (CLIENT: ids allocated; SERVER: New frames accepted). */
VREV_API uint64_t vrev_mux_total_sessions(const vrev_mux *mux);
/** New frames a SERVER refused because of the session cap. */
VREV_API uint64_t vrev_mux_refused_sessions(const vrev_mux *mux);

#ifdef __cplusplus
}
#endif
#endif
