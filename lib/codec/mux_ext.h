/* vrev's extensions to Mux.Cool (docs/extensions.md): TLVs in the metadata tail that V2Ray
 * skips, and the per-session flow control they carry. Sans-IO, like the rest of lib/codec.
 *
 * Extension block: a list of TLVs, each
 *
 *   +------+-----+-------------+
 *   | type | len | value       |
 *   |  u8  |  u8 | len bytes   |
 *   +------+-----+-------------+
 *
 *   type 1  HELLO   in a KeepAlive frame (sid 0), sent once per tunnel by each side:
 *                   version u8 (1), flags u8 (bit 0: flow control), window u32be (the
 *                   receive window this side grants each flow-controlled session at its start)
 *   type 2  WINDOW  in a Keep frame without data: u32be more bytes the sender may send on
 *                   that session (1 .. 2^31)
 *   type 3  FLOW    in a New frame, empty: this session is flow-controlled both ways
 *   type 4  BLOCKED in a Keep frame without data, empty: the sender has bytes for that
 *                   session and no credit left (the receiver may grow its window)
 *   type 5  CLIENT  in a New frame (stream sessions), from a peer whose HELLO had flag bit 1:
 *                   the public client's address and the one it connected to, for a PROXY
 *                   header at the service:
 *                   family u8 (4 or 6) | src ip | src port u16be | dst ip | dst port u16be
 *                   (13 or 37 bytes; different families are both sent as IPv6, IPv4 mapped)
 *
 * Unknown types are skipped; a TLV that runs past the block makes the whole block invalid
 * (VREV_ERR_MUX_EXT), which costs the receiver nothing but the extension. */
#ifndef VREV_CODEC_MUX_EXT_H
#define VREV_CODEC_MUX_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "vrev/mux.h"

#define VREV_MUX_EXT_HELLO 1
#define VREV_MUX_EXT_WINDOW 2
#define VREV_MUX_EXT_FLOW 3
#define VREV_MUX_EXT_BLOCKED 4
#define VREV_MUX_EXT_CLIENT 5

#define VREV_MUX_EXT_VERSION 1
#define VREV_MUX_EXT_FLAG_FLOW 0x01
#define VREV_MUX_EXT_FLAG_CLIENT 0x02 /* "send me CLIENT in New frames" */

/* Largest increment one WINDOW may carry; larger grants are split. */
#define VREV_MUX_EXT_WINDOW_MAX 0x80000000u

/* Room for any block this codec writes (a New frame's FLOW and CLIENT together). */
#define VREV_MUX_EXT_MAX 48

/* What an extension block said (fields of absent TLVs are zero). */
struct vrev__mux_ext {
    bool hello;
    uint8_t version;
    uint8_t flags;
    uint32_t hello_window;
    bool window;
    uint32_t window_inc;
    bool flow;
    bool blocked;
    bool client; /* client_src / client_dst: IPv4 or IPv6 with ports (mapped IPv6 as IPv4) */
    struct vrev__addr client_src, client_dst;
};

/* Parse a block. Returns 0, or VREV_ERR_MUX_EXT (a TLV runs past the end, or a known TLV has
 * the wrong length or value: a zero WINDOW, a CLIENT family other than 4 and 6): then *out is
 * all zero. n == 0 is an empty block. */
int vrev__mux_ext_parse(const uint8_t *p, size_t n, struct vrev__mux_ext *out);

/* Encoders: write one TLV into out[0..cap). Return its length or VREV_ERR_NOSPACE (or
 * VREV_ERR_RANGE for a WINDOW of 0 or over VREV_MUX_EXT_WINDOW_MAX). */
int vrev__mux_ext_hello(uint8_t *out, size_t cap, uint8_t flags, uint32_t window);
int vrev__mux_ext_window(uint8_t *out, size_t cap, uint32_t inc);
int vrev__mux_ext_flow(uint8_t *out, size_t cap);
int vrev__mux_ext_blocked(uint8_t *out, size_t cap);
/* CLIENT: src connected to dst (IP addresses; VREV_ERR_ADDR_TYPE for a domain). */
int vrev__mux_ext_client(uint8_t *out, size_t cap, const struct vrev__addr *src,
                         const struct vrev__addr *dst);

/* --- frames with a block (lib/codec/mux.c) ------------------------------------------------- */

/* vrev_mux_open() with `ext` in the New frame's metadata. */
int vrev__mux_open_ext(vrev_mux *mux, int network, const char *host, uint16_t port,
                       const uint8_t *data, size_t len, const uint8_t *ext, size_t ext_len,
                       uint16_t *sid);

/* Queue a frame without data that carries `ext`: a KeepAlive (sid 0) or a Keep for a live
 * session. Returns 0, VREV_ERR_INVAL, VREV_ERR_MUX_NO_SESSION, VREV_ERR_MUX_CLOSED,
 * VREV_ERR_RANGE (block too long) or VREV_ERR_NOMEM. */
int vrev__mux_queue_ext(vrev_mux *mux, uint16_t sid, uint8_t status, const uint8_t *ext,
                        size_t ext_len);

/* --- per-session flow control ------------------------------------------------------------- */

/* One flow-controlled session's two windows. The receiver grants back what its reader has
 * taken, a quarter of its window at a time; when the sender reports that it ran out of credit
 * while the reader keeps up (holds at most a quarter of the window), the window, not the
 * reader, was the limit, and the receiver doubles it up to `max_window` (HTTP/2 and QUIC
 * receivers grow theirs for fast readers the same way). A slow reader never grows it. */
struct vrev__flow {
    uint64_t send_credit; /* we may send this many more bytes */
    uint32_t window;      /* our receive window */
    uint32_t max_window;
    uint64_t peer_credit; /* granted to the peer, not yet received */
    uint64_t owed;        /* taken by our reader (or added by growth), not yet granted */
    bool urgent;          /* grant what is owed now (the window grew) */
    bool starved;         /* sender: out of credit with bytes waiting, BLOCKED said */
};

/* Start: `send` is the window the peer granted (its HELLO), `window`/`max` ours. */
void vrev__flow_init(struct vrev__flow *f, uint32_t send, uint32_t window, uint32_t max);

/* We sent n bytes (n <= send_credit). */
void vrev__flow_sent(struct vrev__flow *f, size_t n);

/* The peer granted inc more bytes. */
void vrev__flow_granted(struct vrev__flow *f, uint32_t inc);

/* n bytes arrived. Returns 0, or VREV_ERR_MUX_FLOW if the peer sent more than it was
 * granted. */
int vrev__flow_received(struct vrev__flow *f, size_t n);

/* The peer is out of credit while our reader holds `held` bytes: what the reader has taken is
 * due at once, and the window grows if the reader keeps up and the peer has really sent at
 * least half of what it was granted. Returns true if a grant is due (vrev__flow_grant() then
 * gives it). */
bool vrev__flow_blocked(struct vrev__flow *f, size_t held);

/* Our reader took n bytes. */
void vrev__flow_consumed(struct vrev__flow *f, size_t n);

/* Whether a grant is due (vrev__flow_grant() would give something). */
bool vrev__flow_due(const struct vrev__flow *f);

/* What to grant now (0: nothing yet), taken from what is owed; at most
 * VREV_MUX_EXT_WINDOW_MAX (call again for the rest). */
uint32_t vrev__flow_grant(struct vrev__flow *f);

#endif
