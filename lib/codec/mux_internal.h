/* The mux codec's zero-copy entry points, for the libevent glue (lib/reverse/muxconn.c) and the
 * codec's tests: not part of the public API (include/vrev/mux.h), whose users feed bytes and
 * get whole frames.
 *
 * Thread safety: as vrev/mux.h (a vrev_mux belongs to one thread). */
#ifndef VREV_CODEC_MUX_INTERNAL_H
#define VREV_CODEC_MUX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vrev/mux.h"

/* Deliver stream (TCP) payload as it arrives instead of whole frames: the codec then never
 * copies a stream frame's payload. Each frame's header is still acted on first (on_frame,
 * on_open: the frame's data is NULL there, and vrev_mux_frame_data() gives NULL with *len the
 * payload's whole length), then its payload reaches on_data in one or more pieces pointing
 * into the bytes given to vrev_mux_feed(); feeding the bytes of a complete frame at once gives
 * exactly one piece. Datagram (UDP) sessions and frames whose data is discarded are
 * unaffected. Glue that moves payload without copying it (evbuffer chains) pauses in on_data
 * (vrev__mux_pause()) and takes the piece from the end of what vrev_mux_feed() consumed. Off
 * by default. Returns 0, VREV_ERR_INVAL (NULL mux) or VREV_ERR_STATE (inside a frame: call it
 * before feeding, or at a frame boundary). */
int vrev__mux_set_partial_data(vrev_mux *mux, int on);

/* From a callback: make vrev_mux_feed() return after the current frame (backpressure), or,
 * from on_data with vrev__mux_set_partial_data(), right after the piece just delivered (the
 * piece is then the last bytes that call consumed). *consumed then tells how far it got. NULL
 * is a no-op; outside vrev_mux_feed() it does nothing. */
void vrev__mux_pause(vrev_mux *mux);

/* Encode a frame header into out[0..cap): metaLen, metadata and, if `with_data` is nonzero,
 * the Data option and dataLen (data_len bytes of payload follow, written by the caller). For
 * status New, `network`, `host` (IP literal or domain, as text) and `port` give the target
 * (ignored otherwise). `option` may carry VREV_MUX_OPT_ERROR. The text-target form of
 * vrev__mux_encode_header() (codec/mux_frame.h). Returns the header length, VREV_ERR_NOSPACE,
 * VREV_ERR_INVAL, VREV_ERR_RANGE (data_len > 65535) or VREV_ERR_ADDR_*. */
int vrev__mux_encode_header_text(uint8_t *out, size_t cap, uint16_t sid, int status, int option,
                                 int network, const char *host, uint16_t port, int with_data,
                                 size_t data_len);

#endif
