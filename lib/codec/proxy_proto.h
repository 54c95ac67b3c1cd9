/* PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2): the client's
 * address that a proxy in front of us (HAProxy, nginx, a load balancer) puts before the
 * connection's first byte, and that we put before the bytes we hand a local service.
 * Sans-IO: a stateless parser and an encoder, no socket, no clock.
 *
 * Version 1, text, at most 107 bytes with its CRLF:
 *
 *   "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
 *   "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
 *   "PROXY UNKNOWN[ anything]\r\n"           (no address: the connection's own is used)
 *
 * Version 2, binary, 16 bytes then `len` more:
 *
 *   +--------------------------------------+---------+--------+---------+------------------+
 *   | signature (12)                       | ver|cmd |  fam   | len u16 | addresses | TLVs |
 *   | 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A  | 0x2? u8 |   u8   |   be    |           |      |
 *   +--------------------------------------+---------+--------+---------+------------------+
 *   cmd 0 LOCAL (no address), 1 PROXY;  fam: high nibble 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX,
 *   low nibble 0 UNSPEC, 1 STREAM, 2 DGRAM.
 *   INET:  src(4) dst(4) sport(2) dport(2)       = 12 bytes
 *   INET6: src(16) dst(16) sport(2) dport(2)     = 36 bytes
 *   UNIX:  src(108) dst(108)                      = 216 bytes (read, no address taken)
 *   TLVs after the address block are skipped unread.
 *
 * Not thread-safe state: there is none; every function may be called from any thread. */
#ifndef VREV_CODEC_PROXY_PROTO_H
#define VREV_CODEC_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define VREV_PP_V1_MAX 107 /* the longest version 1 header, CRLF included */
/* The bytes the parser may need to see of any header: a version 2 preamble and the largest
 * address block (UNIX); a version 1 header is shorter. */
#define VREV_PP_PARSE_MAX (16 + 216)
#define VREV_PP_V2_MAX (16 + 36) /* the longest header vrev__pp_encode() writes, v2 */

/* What a header said. */
struct vrev__pp_header {
    int version;   /* 1 or 2 */
    bool has_addr; /* false: v1 UNKNOWN, v2 LOCAL, or a family without IP addresses */
    /* with has_addr: IPv4 or IPv6 (an IPv4-mapped IPv6 address is taken as IPv4), ports set */
    struct vrev__addr src, dst;
};

/* Parse a header at the start of p[0..n) (picohttpparser-shaped, never reading past p[n)).
 * Returns the header's length L (> 0) once the bytes it needs are there: all of it for v1,
 * the 16-byte preamble and the address block for v2 (TLVs after the block are skipped unread,
 * so L may exceed n: the caller discards L bytes); 0 if more are needed, *need then being the
 * length that makes progress (> n; at most VREV_PP_PARSE_MAX), and every one of p[0..n) is
 * a header byte; or VREV_ERR_PROXY_HEADER (no header, or a malformed one: the caller closes the
 * connection). *out is set only when L is returned. */
int vrev__pp_parse(const uint8_t *p, size_t n, struct vrev__pp_header *out, size_t *need);

/* Write a header of `version` (1 or 2) into out[0..cap) saying that `src` connected to `dst`
 * (IPv4 or IPv6 addresses with ports; different families are both written as IPv6, IPv4
 * mapped). src or dst NULL, or not an IP address: v1 "PROXY UNKNOWN\r\n", v2 LOCAL (the
 * receiver then uses the connection's own address). Returns the length written,
 * VREV_ERR_NOSPACE (cap below VREV_PP_V1_MAX or VREV_PP_V2_MAX always suffices) or
 * VREV_ERR_INVAL (another version). */
int vrev__pp_encode(uint8_t *out, size_t cap, int version, const struct vrev__addr *src,
                    const struct vrev__addr *dst);

#endif
