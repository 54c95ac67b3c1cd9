/* VLESS request and response headers (WIRE-SPEC §5.1), sans-IO: bytes in, results out.
 *
 * Request (client -> server), then raw payload:
 *
 *   off     size  field
 *   +-------+-----+--------------------------------------------------------------+
 *   | 0     | 1   | version = 0 (nothing else exists)                            |
 *   | 1     | 16  | user UUID, raw bytes: the only authentication                |
 *   | 17    | 1   | addons length A                                              |
 *   | 18    | A   | addons: protobuf { string Flow = 1; bytes Seed = 2; }        |
 *   | 18+A  | 1   | command: 1 TCP, 2 UDP, 3 Mux                                 |
 *   | 19+A  | 3+  | port-first address (addr.h); absent for Mux                  |
 *   +-------+-----+--------------------------------------------------------------+
 *
 * Response (server -> client), then raw payload:
 *
 *   +-------+-----+--------------------------------------------------------------+
 *   | 0     | 1   | version = 0 (echoes the request)                             |
 *   | 1     | 1   | addons length A (a 4.34 server always writes 0: "00 00")     |
 *   | 2     | A   | addons, as in the request                                    |
 *   +-------+-----+--------------------------------------------------------------+
 *
 * The parsers are stateless (see hdr_reader.h for the return convention and a reader that
 * gathers split input); parsed pointers point into the parsed bytes. Errors are reported as
 * soon as the offending field is complete, in wire order, so a prefix of an input never gives
 * an error the whole input does not give. All functions are reentrant and thread-safe.
 */
#ifndef VREV_CODEC_VLESS_H
#define VREV_CODEC_VLESS_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "hdr_reader.h"

#define VREV_VLESS_VERSION 0
#define VREV_VLESS_UUID_LEN 16
#define VREV_VLESS_ADDONS_MAX 255
/* version + uuid + addons length + addons + command + port-first domain address */
#define VREV_VLESS_REQUEST_MAX (1 + 16 + 1 + 255 + 1 + 3 + 1 + VREV_ADDR_DOMAIN_MAX)
#define VREV_VLESS_RESPONSE_MAX (1 + 1 + 255)

enum vrev__vless_command { VREV_VLESS_TCP = 1, VREV_VLESS_UDP = 2, VREV_VLESS_MUX = 3 };

/* The addons field. Pointers are borrowed from the parsed bytes; NULL when absent. */
struct vrev__vless_addons {
    const uint8_t *raw; /* the addons bytes as received */
    size_t raw_len;
    const uint8_t *flow; /* field 1 (last occurrence wins, as in protobuf) */
    size_t flow_len;
    const uint8_t *seed; /* field 2 */
    size_t seed_len;
};

/* The UUIDs a server accepts: count * 16 raw bytes, borrowed. */
struct vrev__vless_users {
    const uint8_t *uuids;
    size_t count;
};

struct vrev__vless_request {
    size_t user;     /* index of the matching UUID in the users list */
    uint8_t command; /* VREV_VLESS_TCP, _UDP or _MUX */
    struct vrev__vless_addons addons;
    struct vrev__addr target; /* all zero for Mux */
};

/* Parse protobuf addons p[0..n) (n <= 255): fields 1 and 2 as length-delimited, unknown
 * fields of wire types 0, 1, 2, 5 skipped with bounds. Returns 0 or VREV_ERR_VLESS_ADDONS. */
int vrev__vless_addons_parse(const uint8_t *p, size_t n, struct vrev__vless_addons *a);

/* Server side: parse a request header at p[0..n), checking the UUID in constant time against
 * every entry of users. Returns the header length (> 0), 0 with *need, or
 * VREV_ERR_VLESS_VERSION, _VLESS_USER, _VLESS_ADDONS, _VLESS_COMMAND, _ADDR_TYPE,
 * _ADDR_DOMAIN. */
int vrev__vless_request_parse(const uint8_t *p, size_t n, const struct vrev__vless_users *users,
                              struct vrev__vless_request *req, size_t *need);

/* Client side: write a request header. target is ignored (may be NULL) for Mux; addons
 * (addons_len <= 255, may be NULL when 0) must parse as addons. Returns the length or
 * VREV_ERR_INVAL, _RANGE, _NOSPACE, _VLESS_COMMAND, _VLESS_ADDONS, _ADDR_TYPE, _ADDR_DOMAIN. */
int vrev__vless_request_encode(uint8_t *out, size_t cap, const uint8_t *uuid, uint8_t command,
                               const struct vrev__addr *target, const uint8_t *addons,
                               size_t addons_len);

/* Client side: parse the response header. Returns its length (> 0), 0 with *need, or
 * VREV_ERR_VLESS_VERSION, _VLESS_ADDONS. */
int vrev__vless_response_parse(const uint8_t *p, size_t n, struct vrev__vless_addons *addons,
                               size_t *need);

/* Server side: write a response header (4.34 compatible: addons_len 0 gives "00 00").
 * Returns the length or VREV_ERR_INVAL, _RANGE, _NOSPACE, _VLESS_ADDONS. */
int vrev__vless_response_encode(uint8_t *out, size_t cap, const uint8_t *addons, size_t addons_len);

/* The parsers through a hdr_reader (input split anywhere); see vrev__hdr_reader_feed(). */
int vrev__vless_request_feed(struct vrev__hdr_reader *r, const struct vrev__vless_users *users,
                             struct vrev__vless_request *req, const uint8_t *p, size_t n,
                             size_t *used);
int vrev__vless_response_feed(struct vrev__hdr_reader *r, struct vrev__vless_addons *addons,
                              const uint8_t *p, size_t n, size_t *used);

#endif
