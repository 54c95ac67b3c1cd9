/* muxconn: a Mux.Cool codec (vrev_mux) bound to a transport bufferevent, with each session
 * bound to a local bufferevent. It is the glue both reverse roles share: the portal (mux
 * client) opens sessions for public connections; the bridge (mux server) accepts sessions
 * and hands each to its router.
 *
 * Flow control: a session whose local side does not drain stops the whole transport from
 * being read (Mux.Cool has no per-session flow control; V2Ray 4.34 blocks the same way), and a
 * transport that does not drain stops every session's local side from being read. Memory is
 * therefore bounded by the high-water marks, not by the peer. */
#ifndef VREV_REVERSE_MUXCONN_H
#define VREV_REVERSE_MUXCONN_H

#include <stdbool.h>

#include "codec/addr.h"
#include "net/net.h"
#include "vrev/mux.h"

struct vrev__muxconn;

struct vrev__muxconn_cbs {
    /* SERVER: the peer opened `sid` (frame = its New frame). Return a local bufferevent to
     * bind it to (the muxconn owns it from then on), or NULL to refuse it (End|Error), or
     * call vrev__muxconn_keep_internal() for a session handled in-process (control). */
    struct bufferevent *(*on_open)(struct vrev__muxconn *mc, uint16_t sid,
                                   const vrev_mux_frame *frame, void *user);
    /* A datagram on an internal session (the control session). */
    void (*on_internal_data)(struct vrev__muxconn *mc, uint16_t sid, const uint8_t *data,
                             size_t len, void *user);
    /* Every frame received (liveness bookkeeping); may be NULL. */
    void (*on_frame)(struct vrev__muxconn *mc, void *user);
    /* A session bound to a local side opened (VREV_EVENT_SESSION_OPEN) or ended
     * (VREV_EVENT_SESSION_CLOSE, with its payload bytes: up toward the service behind the
     * bridge, down back toward the public client; the same in both roles). `target` is the
     * session's target host as text. May be NULL. */
    void (*on_session)(struct vrev__muxconn *mc, int event, const char *target, uint64_t up,
                       uint64_t down, void *user);
    /* The transport ended (err 0: clean EOF) or failed; every session has been aborted. The
     * muxconn is still allocated: free it from here or later. */
    void (*on_closed)(struct vrev__muxconn *mc, int err, void *user);
};

/* What a peer's abuse has cost (RELIABILITY §2.5). */
struct vrev__muxconn_stats {
    uint64_t refused_rate;    /* New frames refused over the session rate (End|Error) */
    uint64_t replies_skipped; /* Keep frames for dead ids not answered (answered already) */
    uint64_t reply_holds;     /* times reading stopped: replies past the output limit */
    uint64_t empty_frames;    /* KeepAlive / empty Keep frames received */
    uint64_t budget_stops;    /* times the tunnel stopped: the context's buffers were full */
    uint64_t cap_stops;       /* ... its sessions held tunnelBuffer bytes (held_cap) */
};

/* Take over `transport` (freed with the muxconn). A SERVER takes new sessions at the rate
 * of the context's limits (sessionRate, sessionBurst) until vrev__muxconn_set_session_rate(). */
int vrev__muxconn_new(vrev_ctx *ctx, int role, struct bufferevent *transport,
                      const struct vrev__policy *policy, const struct vrev__muxconn_cbs *cbs,
                      void *user, struct vrev__muxconn **out);
/* Abort every session and free (the transport is closed without End frames, as V2Ray does on
 * shutdown). Safe from inside a callback. */
void vrev__muxconn_free(struct vrev__muxconn *mc);

/* CLIENT: open a session to target over network, bound to `local` (owned from now on, even on
 * failure). `local` may be NULL for an internal session (its datagrams go through
 * vrev__muxconn_send_internal). */
int vrev__muxconn_open(struct vrev__muxconn *mc, int network, const struct vrev__addr *target,
                       struct bufferevent *local, const uint8_t *first, size_t first_len,
                       uint16_t *sid);

/* The same, saying who the session is for: client[0] the public client's address, client[1]
 * the one it connected to (IP addresses; NULL: unknown). They go to the peer in the New frame
 * (CLIENT, docs/extensions.md) if its HELLO asked for them, for a TCP session. conn_id: the
 * connection the session carries (its log lines start with it; 0: none). */
int vrev__muxconn_open_from(struct vrev__muxconn *mc, int network, const struct vrev__addr *target,
                            const struct vrev__addr *const client[2], struct bufferevent *local,
                            const uint8_t *first, size_t first_len, uint64_t conn_id,
                            uint16_t *sid);

/* The tunnel's own connection id, named in its sessions' debug lines ("c17 sid 5 on tunnel
 * c3"): the id of the link it runs on. 0 until set. */
void vrev__muxconn_set_conn_id(struct vrev__muxconn *mc, uint64_t conn_id);
uint64_t vrev__muxconn_conn_id(const struct vrev__muxconn *mc);
/* SERVER, from on_open: the connection id of the session being opened (given on the first
 * call for it, from the context's counter), for the link the owner makes of it. A session
 * whose on_open never asks (a control session) has none. */
uint64_t vrev__muxconn_opening_id(struct vrev__muxconn *mc);

/* SERVER, from on_open: the public client's address and the one it connected to, if the
 * peer sent them in the New frame `f` (after asking for them: its HELLO). False: unknown. */
bool vrev__muxconn_client(const struct vrev__muxconn *mc, const vrev_mux_frame *f,
                          struct vrev__addr *src, struct vrev__addr *dst);

/* SERVER, from on_open: keep `sid` inside the process (its data goes to on_internal_data). */
void vrev__muxconn_keep_internal(struct vrev__muxconn *mc, uint16_t sid);

/* Send one datagram (or chunk) on an internal session / end it. */
int vrev__muxconn_send_internal(struct vrev__muxconn *mc, uint16_t sid, const uint8_t *data,
                                size_t len);
int vrev__muxconn_end(struct vrev__muxconn *mc, uint16_t sid, int error);

/* SERVER: new sessions accepted per second and at once (a token bucket; RELIABILITY §2.5,
 * "Rapid Reset"): a New beyond it is refused with End|Error before anything is dialled or
 * allocated for it, and counted. An engine passes its own limits (engine->limits). */
void vrev__muxconn_set_session_rate(struct vrev__muxconn *mc, uint64_t rate, uint64_t burst);
/* The owner's backpressure (a bridge whose tunnel has its dials in progress at the cap): from
 * a callback or outside one, stop reading the transport after the current frame until
 * vrev__muxconn_release(). Frames already read wait; nothing is refused. The owner bounds the
 * wait (the stall timeout does not). */
void vrev__muxconn_hold(struct vrev__muxconn *mc);
void vrev__muxconn_release(struct vrev__muxconn *mc);
void vrev__muxconn_get_stats(const struct vrev__muxconn *mc, struct vrev__muxconn_stats *st);
/* Add mc's counters to *sum (a bridge's or portal's, over its tunnels). */
void vrev__muxconn_add_stats(const struct vrev__muxconn *mc, struct vrev__muxconn_stats *sum);

bool vrev__muxconn_closed(const struct vrev__muxconn *mc);
/* The transport is not being read by our own choice: a session's local side (or all of them,
 * over the cap) holds what it cannot write yet. Bounded by the policy's stall timeout. */
bool vrev__muxconn_holding(const struct vrev__muxconn *mc);
unsigned vrev__muxconn_active(const struct vrev__muxconn *mc);
uint64_t vrev__muxconn_total(const struct vrev__muxconn *mc);
vrev_mux *vrev__muxconn_codec(struct vrev__muxconn *mc);
/* Session payload, internal sessions excluded: up toward the service behind the bridge (what
 * a CLIENT read from its local sides, what a SERVER delivered to them), down the other way. */
void vrev__muxconn_bytes(const struct vrev__muxconn *mc, uint64_t *up, uint64_t *down);

#endif
