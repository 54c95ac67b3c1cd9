/* WebSocket framing (RFC 6455 §5) for the "ws" carrier, sans-IO, over wslay.
 *
 * Where it sits (as V2Ray 4.34 stacks its "ws" transport):
 *
 *   VMess / VLESS / Mux.Cool        the proxy protocol's byte stream, unchanged
 *   ws.h    frames                  this file: the stream as binary messages
 *   http1.h upgrade                 one request, one 101 answer, before the first frame
 *   TLS (optional), TCP
 *
 *   Frame (RFC 6455 §5.2)
 *   +-----+------+--------+------+-------------+------------+--------------------+
 *   | FIN | RSV  | opcode | MASK | len 7 bits  | ext. len   | mask key | payload |
 *   | 1b  | 3b=0 | 4b     | 1b   | 0..125, 126 | 0, 16 or   | 0 or 4   |         |
 *   |     |      |        |      | or 127      | 64 bits    | bytes    |         |
 *   +-----+------+--------+------+-------------+------------+--------------------+
 *   opcodes: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong
 *
 * What V2Ray 4.34 does (gorilla/websocket; tests/vectors/ws/): every write is one binary
 * message (gorilla splits a message into frames of its 4 KiB buffer); its reader takes text and
 * binary messages alike and ignores message boundaries; it never pings; its Close() sends a
 * close frame with status 1000 and closes the TCP connection without waiting for the answer.
 * The client masks, the server does not; each side refuses the other's masking. No extension
 * (no permessage-deflate) and no early data (V2Ray 4.34 has no maxEarlyData: the first frame
 * follows the 101).
 *
 * Why wslay's event API (wslay_event) and not its frame API: the event API already keeps the
 * RFC's state that this carrier needs and that is easy to get wrong — the close handshake,
 * answering pings, interleaving control frames between the fragments of a message, refusing
 * unmasked client frames, bad opcodes, RSV bits, oversized or fragmented control frames,
 * invalid UTF-8 in text — with memory callbacks for I/O. Its "no buffering" mode hands data
 * frames over as they arrive, so a message is never gathered whole. Only our data frames
 * bypass it: wslay_event_queue_msg copies every message into a block of its own before framing
 * it; we frame (and mask) straight into the output buffer instead, at a frame boundary of
 * wslay's own output, so the bulk path costs one copy and no allocation per message.
 * wslay allocates with malloc (it has no allocator hook); our buffers use the context's.
 *
 * Bounds: a data frame longer than max_frame closes the connection (1009); control frames are
 * at most 125 bytes (wslay); pings are counted — more than max_pings between two
 * vrev__ws_tick() calls, or more than max_unanswered pongs not yet written out (consumed),
 * close the connection (1008) with VREV_ERR_WS_FLOOD. A pong counts as written once the output
 * has been consumed up to it, so data queued behind it never makes it look unanswered. Input is
 * never held: every fed byte is parsed and payload goes to on_data at once. Output is held in one
 * buffer whose size vrev__ws_buffered() gives: the glue stops reading its source above a high-water
 * mark.
 *
 * What the glue (lib/net) does: after the upgrade, feed every byte read to vrev__ws_feed();
 * on_data gets the payload (append it to the upper layer's input); write what
 * vrev__ws_pending() gives and vrev__ws_consume() what was written; send the upper layer's
 * bytes with vrev__ws_send(); call vrev__ws_tick() once a second. When the upper layer ends
 * its stream call vrev__ws_close(ws, 1000) (WebSocket has no half-close: V2Ray does the
 * same). After vrev__ws_peer_closed() the peer sends nothing more: end the upper layer's input,
 * flush the pending close answer, then close the connection. An error from vrev__ws_feed()
 * leaves a close frame pending: flush it (bounded in time) and close. TCP EOF without a close
 * frame is V2Ray's normal end too: treat it as EOF, not as an error.
 *
 * Thread safety: one codec belongs to one thread; no shared state. */
#ifndef VREV_CODEC_WS_H
#define VREV_CODEC_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Close status codes (RFC 6455 §7.4.1). */
#define VREV_WS_CLOSE_NORMAL 1000
#define VREV_WS_CLOSE_PROTOCOL 1002
#define VREV_WS_CLOSE_POLICY 1008
#define VREV_WS_CLOSE_TOO_BIG 1009

/* Defaults for zero fields of struct vrev__ws_opts. */
#define VREV_WS_MAX_FRAME (1u << 20)   /* 1 MiB: gorilla sends 4 KiB frames */
#define VREV_WS_SEND_FRAME (16u << 10) /* our data frames carry at most 16 KiB each */
#define VREV_WS_MAX_PINGS 32           /* per tick (a second) */
#define VREV_WS_MAX_UNANSWERED 16

struct vrev__ws;

struct vrev__ws_opts {
    bool client;             /* client role: mask our frames, refuse masked ones */
    size_t max_frame;        /* largest data frame payload accepted */
    size_t send_frame;       /* largest data frame payload we send */
    unsigned max_pings;      /* pings accepted between two ticks */
    unsigned max_unanswered; /* pongs owed (not yet written out) before we give up */
};

/* Payload of a data frame (text or binary), as it arrives: p[0..n) is valid during the call.
 * Return 0, or a negative VREV_ERR_* to stop (vrev__ws_feed() then returns it). The callback
 * must not free the codec. */
typedef int (*vrev__ws_data_cb)(void *user, const uint8_t *p, size_t n);

/* Make a codec. opts may be NULL (a server with the defaults). Returns 0, VREV_ERR_INVAL or
 * VREV_ERR_NOMEM. */
int vrev__ws_new(vrev_ctx *ctx, struct vrev__ws **out, const struct vrev__ws_opts *opts,
                 vrev__ws_data_cb on_data, void *user);
void vrev__ws_free(struct vrev__ws *ws); /* NULL ok */

/* Parse p[0..n) (all of it is taken). Returns 0, or after a bad frame VREV_ERR_WS_FRAME,
 * VREV_ERR_WS_TOO_BIG or VREV_ERR_WS_FLOOD (a close frame is then pending and nothing more is
 * read: every later call returns the same error), on_data's error, or VREV_ERR_NOMEM. Bytes
 * after the peer's close frame are ignored. */
int vrev__ws_feed(struct vrev__ws *ws, const uint8_t *p, size_t n);

/* Frame p[0..n) as binary messages (of at most send_frame bytes each) into the output.
 * n == 0 sends nothing. Returns 0, VREV_ERR_STATE (a close was sent or received, or an error
 * happened: the stream is over) or VREV_ERR_NOMEM. */
int vrev__ws_send(struct vrev__ws *ws, const uint8_t *p, size_t n);

/* Queue a close frame with `status` (0: none); later sends fail. Idempotent. Returns 0 or
 * VREV_ERR_NOMEM. */
int vrev__ws_close(struct vrev__ws *ws, uint16_t status);

/* Wire bytes to write: sets *p and returns their count (0: nothing). Valid until the next call
 * of any function of this codec. */
size_t vrev__ws_pending(struct vrev__ws *ws, const uint8_t **p);
void vrev__ws_consume(struct vrev__ws *ws, size_t n);

/* Bytes the codec holds for output (framed, not yet consumed). */
size_t vrev__ws_buffered(const struct vrev__ws *ws);

/* Start a new ping-counting period (once a second). */
void vrev__ws_tick(struct vrev__ws *ws);

/* The peer's close frame arrived (its input is over); its status (1005 if it gave none). */
bool vrev__ws_peer_closed(const struct vrev__ws *ws);
uint16_t vrev__ws_peer_status(const struct vrev__ws *ws);

/* Both close frames have been exchanged and ours is written out: the connection can go. */
bool vrev__ws_done(struct vrev__ws *ws);

/* The wslay library: it has no version call, and Debian 12's header names a version older
 * than its package (1.0.1-DEV in 1.1.1), so this writes "" (as snprintf) and returns 0. */
int vrev__ws_wslay_version(char *buf, size_t cap);

#endif
