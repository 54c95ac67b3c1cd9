/* Bounds on the work a mux peer can make the codec do (RELIABILITY.md §2.5, the HTTP/2 DoS
 * family mapped to Mux.Cool). The codec has no clock: its glue starts each window.
 *
 *   - Replies: a Keep with data for an id that is not live is answered with End (V2Ray does so
 *     for every such frame), but at most once per id per window, so a stream of Keep frames
 *     for dead ids cannot be turned into a stream of End frames. The bytes of the frames the
 *     codec queues by itself in answer to input are counted, for the glue to hold them to the
 *     transport's output limit.
 *   - Empty frames (KeepAlive; Keep without payload and without an extension block): work and
 *     no progress for any session. Past `cap` in one window the mux is closed. */
#ifndef VREV_CODEC_MUX_GUARD_H
#define VREV_CODEC_MUX_GUARD_H

#include <stdint.h>

#include "vrev/mux.h"

/* Start a window: ids answered may be answered again, the empty-frame count starts at 0. */
void vrev__mux_new_window(vrev_mux *mux);

/* Close the mux (VREV_ERR_RANGE) at the (cap+1)-th empty frame of a window; 0: no cap (the
 * default). */
void vrev__mux_set_empty_cap(vrev_mux *mux, uint32_t cap);

struct vrev__mux_guard_stats {
    uint64_t reply_bytes;     /* bytes of frames queued in answer to input (End for dead ids,
                                 New beyond the session cap) */
    uint64_t replies_skipped; /* Keep frames for dead ids left unanswered (answered already) */
    uint64_t empty_frames;    /* empty frames received in all */
};

void vrev__mux_guard_stats(const vrev_mux *mux, struct vrev__mux_guard_stats *st);

#endif
