/* The reverse-proxy control message: protobuf v2ray.core.app.reverse.Control, by hand.
 *
 *   field      number  wire type            encoding
 *   state      1       0 (varint)           key 0x08; omitted when ACTIVE (proto3 default)
 *   random     99      2 (length-delimited) key 0x9a 0x06, varint length, bytes
 *
 * A portal sends one message per frame on the control session (id 1) every 2 s; a bridge
 * that sees a state other than ACTIVE stops using that tunnel for new sessions.
 *
 * Thread safety: pure functions, callable from any thread.
 */
#ifndef VREV_CONTROL_H
#define VREV_CONTROL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vrev_control_state { VREV_CONTROL_ACTIVE = 0, VREV_CONTROL_DRAIN = 1 };

/** Largest control message accepted or produced (one mux datagram). */
#define VREV_CONTROL_MAX 2048

/** Encode a Control message into out[0..cap): state (omitted when ACTIVE) then `random`
 *  (omitted when empty). An ACTIVE message without random bytes is empty (length 0); V2Ray
 *  does not send such a heartbeat at all. Returns the length, VREV_ERR_INVAL (state < 0,
 *  random NULL with a length), VREV_ERR_PROTO_TOO_LARGE or VREV_ERR_NOSPACE. */
VREV_API int vrev_control_encode(uint8_t *out, size_t cap, int state, const uint8_t *random,
                                 size_t random_len);

/** Decode a Control message. *state gets the last state field's value (0 = ACTIVE when absent;
 *  any nonzero value means "not active": 1 is DRAIN, larger values are clamped to INT32_MAX).
 *  Unknown fields of wire types 0, 1, 2 and 5 are skipped.
 *  Returns 0, VREV_ERR_INVAL, VREV_ERR_PROTO_TOO_LARGE (len > VREV_CONTROL_MAX),
 *  VREV_ERR_PROTO_VARINT (over 10 bytes, or truncated), VREV_ERR_PROTO_WIRETYPE (groups,
 *  types 6-7, field number 0) or VREV_ERR_PROTO_TRUNCATED. */
VREV_API int vrev_control_decode(const uint8_t *msg, size_t len, int *state);

/** "ACTIVE", "DRAIN", or "UNKNOWN". Static string. */
VREV_API const char *vrev_control_state_name(int state);

#ifdef __cplusplus
}
#endif
#endif
