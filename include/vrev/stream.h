/* A byte stream handed to the application: one session of a bridge's in-process handler
 * (vrev_tunnel_opts_add_handler), carrying the public client's bytes both ways as a connected
 * socket would, without a socket and without libevent types.
 *
 * The library fills the stream's input as bytes come from the peer and sends what is written
 * to it; the application reads, writes, ends its sending side, and closes. One callback,
 * with the application's pointer, says what happened: bytes to read, everything written has
 * gone out, the peer's end of stream, an error. Reading can be paused (backpressure: the peer
 * is then held back by the tunnel's flow control), and vrev_stream_buffered() tells how much
 * written data is still waiting to go out (wait for VREV_STREAM_DRAINED before writing more
 * when it grows).
 *
 * Typical use, an echo service (error checks omitted):
 *
 *     static void on_stream(vrev_stream *s, int event, int err, void *user)
 *     {
 *         char buf[4096];
 *         int n;
 *         if (event == VREV_STREAM_READABLE)
 *             while ((n = vrev_stream_read(s, buf, sizeof(buf))) > 0)
 *                 vrev_stream_write(s, buf, (size_t)n);
 *         else if (event == VREV_STREAM_END)
 *             vrev_stream_close(s, 0);   (what was written still goes out, then the end)
 *         else if (event == VREV_STREAM_ERROR)
 *             vrev_stream_close(s, 1);
 *     }
 *     static void on_accept(vrev_stream *s, const char *name, void *user)
 *     {
 *         vrev_stream_set_cb(s, on_stream, user);
 *     }
 *     ...
 *     vrev_tunnel_opts_add_handler(o, "echo", on_accept, NULL);
 *
 * Ownership: the application owns a stream from the accept callback on, and must end it with
 * vrev_stream_close() (every stream before its context is freed). After vrev_stream_close()
 * the handle is gone: no callback runs for it any more, even if the close is called from
 * inside its own callback (which is allowed, and safe).
 *
 * Thread safety: a stream belongs to the thread that runs its context's event loop; call
 * every function from there (from a callback, typically). Callbacks run there.
 */
#ifndef VREV_STREAM_H
#define VREV_STREAM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vrev_stream vrev_stream;

/** What a stream's callback is told (its `event` argument). */
enum vrev_stream_event {
    /** New bytes wait in the input (vrev_stream_read). Edge-triggered: bytes left unread
     *  wait, and the next READABLE comes when more arrive (or on vrev_stream_resume()). Not
     *  while reading is paused. */
    VREV_STREAM_READABLE = 1,
    /** Everything written has left the stream's output buffer (for a handler's session,
     *  vrev_stream_buffered() is then 0): once after each write or run of writes, when the
     *  output empties. */
    VREV_STREAM_DRAINED = 2,
    /** The peer has ended its sending side: what is in the input is the last of it (read it;
     *  vrev_stream_read() then returns 0). Writing may go on until vrev_stream_shutdown() or
     *  vrev_stream_close(). Once. */
    VREV_STREAM_END = 3,
    /** The stream failed (the peer reset it, the tunnel went down, a timeout): `err` says
     *  which (a negative VREV_ERR_*: VREV_ERR_IO, VREV_ERR_TIMEOUT). Nothing more will be
     *  sent or come, but what is left in the input can still be read. Close the stream. Once,
     *  and the last event. */
    VREV_STREAM_ERROR = 4
};

/** A stream's callback: `event` a VREV_STREAM_*, `err` 0 except for VREV_STREAM_ERROR, `user`
 *  as given to vrev_stream_set_cb(). Runs from the event loop; may call any vrev_stream_*
 *  function on `s`, vrev_stream_close() included. */
typedef void (*vrev_stream_cb)(vrev_stream *s, int event, int err, void *user);

/** Set the callback and its user pointer (cb NULL: none; events are then not kept for a
 *  later callback, but bytes wait in the input and the end is remembered). If bytes already
 *  wait, or the peer has already ended or failed, the new callback is told so from the event
 *  loop, after this returns. Returns 0 or VREV_ERR_INVAL (s NULL). */
VREV_API int vrev_stream_set_cb(vrev_stream *s, vrev_stream_cb cb, void *user);

/** Copy up to `cap` bytes of the input into `buf` and remove them from the input. Returns the
 *  bytes copied (at most INT_MAX), 0 when none wait (at the end of the stream, or none yet:
 *  vrev_stream_ended() tells which), or VREV_ERR_INVAL (s NULL, or buf NULL with cap > 0). */
VREV_API int vrev_stream_read(vrev_stream *s, void *buf, size_t cap);

/** Bytes waiting in the input (what vrev_stream_read() can take now). 0 for NULL. */
VREV_API size_t vrev_stream_readable(const vrev_stream *s);

/** 1 once the peer has ended its sending side (VREV_STREAM_END) or the stream failed, and the
 *  input has been read to its end; 0 otherwise (NULL: 0). */
VREV_API int vrev_stream_ended(const vrev_stream *s);

/** Queue `len` bytes (copied) to be sent to the peer. Never a partial write: the stream's
 *  output buffer grows as needed; watch vrev_stream_buffered() and wait for
 *  VREV_STREAM_DRAINED to bound it. Returns 0, VREV_ERR_INVAL (s NULL, or data NULL with
 *  len > 0), VREV_ERR_STATE (after vrev_stream_shutdown(), or the stream failed) or
 *  VREV_ERR_NOMEM. */
VREV_API int vrev_stream_write(vrev_stream *s, const void *data, size_t len);

/** Bytes written and not yet sent: in the stream's output, and in the buffers of the layers
 *  below it that the stream can see. 0 for NULL. */
VREV_API size_t vrev_stream_buffered(const vrev_stream *s);

/** End the sending side: once everything written so far has gone out, the peer sees the end
 *  of the stream (as shutdown(SHUT_WR) on a socket). Reading goes on. Further writes fail
 *  with VREV_ERR_STATE. Returns 0, VREV_ERR_INVAL (NULL) or VREV_ERR_STATE (called twice, or
 *  the stream failed). */
VREV_API int vrev_stream_shutdown(vrev_stream *s);

/** Stop (paused = 1) or restart (0) taking bytes from the peer: while paused the input does
 *  not grow, no READABLE event comes, and the peer is held back once the buffers between
 *  (the tunnel's session window) fill. Restarting with bytes waiting gives a READABLE event
 *  from the loop. Returns 0 or VREV_ERR_INVAL (NULL). */
VREV_API int vrev_stream_pause(vrev_stream *s, int paused);

/** Bytes that came from the peer into the input so far (read or not), and bytes that have
 *  left the stream's output toward the peer (written and no longer buffered by the stream).
 *  0 for NULL. */
VREV_API uint64_t vrev_stream_bytes_in(const vrev_stream *s);
VREV_API uint64_t vrev_stream_bytes_out(const vrev_stream *s);

/** Close and free the stream. abort 0: gracefully, as closing a socket: what was written and
 *  not sent yet still goes out, then the end of the stream (the library keeps the
 *  connection alone for that, at most 10 s, and resets it if the bytes could not go out in
 *  that time, or when the context's lingering connections are closed, vrev_ctx_free /
 *  vrev_ctx_close_lingering); what the peer still sends is discarded. abort 1: at once,
 *  unsent bytes dropped, and the peer sees an error (the public client's connection is
 *  reset), not a clean end. No callback runs for `s` from now on, and `s` must not be used
 *  again. Safe from inside the stream's own callback. NULL is a no-op. */
VREV_API void vrev_stream_close(vrev_stream *s, int abort);

/* --- libevent interop ------------------------------------------------------------------------
 * For programs that run their own libevent loop and want to use a stream's bufferevent
 * directly. Nothing else in this header needs libevent. */

struct bufferevent;

/** The bufferevent under the stream (borrowed: owned by the stream, valid until
 *  vrev_stream_close()). The caller may read its input and add to its output
 *  (bufferevent_read/write, evbuffer_* on bufferevent_get_input/get_output), enable or
 *  disable reading and set watermarks. It must not free it (vrev_stream_close() does), nor
 *  call bufferevent_setcb on it (the stream's callbacks are its own: set them with
 *  vrev_stream_set_cb), nor replace its buffers; and it should not mix vrev_stream_pause()
 *  with its own bufferevent_disable(EV_READ). Bytes added to the output this way count as
 *  written (vrev_stream_bytes_out, VREV_STREAM_DRAINED). NULL for NULL. */
VREV_API struct bufferevent *vrev_stream_bufferevent(vrev_stream *s);

#ifdef __cplusplus
}
#endif
#endif
