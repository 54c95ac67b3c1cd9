/* Address codec: the "port first" form shared by Mux.Cool, VMess and VLESS.
 *
 *   +-----------+----------+----------------------------------------+
 *   | port u16  | type u8  | address                                |
 *   +-----------+----------+----------------------------------------+
 *   type 1: IPv4, 4 bytes   type 2: domain, u8 len + len bytes   type 3: IPv6, 16 bytes
 *
 * Reading follows V2Ray 4.34: a domain starting with a digit or '[' that parses as an IP
 * literal becomes that IP; any other domain must be 1..255 characters of [A-Za-z0-9._-]
 * (an empty domain crashes a 4.34 peer, so we never emit or accept one); IPv4-mapped IPv6
 * addresses become IPv4.
 */
#ifndef VREV_CODEC_ADDR_H
#define VREV_CODEC_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrev/mux.h"

#define VREV_ADDR_DOMAIN_MAX 255

struct vrev__addr {
    uint8_t type; /* VREV_ADDR_IPV4, _DOMAIN or _IPV6 */
    uint8_t len;  /* bytes used in host: 4, 16 or the domain length */
    uint16_t port;
    uint8_t host[VREV_ADDR_DOMAIN_MAX];
};

/* Decode a port-first address from p[0..n). On success *used gets the bytes read.
 * Returns 0, VREV_ERR_ADDR_TRUNCATED, VREV_ERR_ADDR_TYPE or VREV_ERR_ADDR_DOMAIN. */
int vrev__addr_decode(const uint8_t *p, size_t n, struct vrev__addr *a, size_t *used);

/* Bytes vrev__addr_encode() writes for a. */
size_t vrev__addr_encoded_len(const struct vrev__addr *a);

/* Encode a port first. Returns the length written or VREV_ERR_NOSPACE / VREV_ERR_ADDR_TYPE. */
int vrev__addr_encode(const struct vrev__addr *a, uint8_t *out, size_t cap);

/* Parse a host given as text (IPv4, IPv6 with or without brackets, or a domain) with the
 * same rules as decoding. Returns 0, VREV_ERR_INVAL or VREV_ERR_ADDR_*. */
int vrev__addr_from_text(struct vrev__addr *a, const char *host, uint16_t port);

/* Parse "host:port" ("[v6]:port" for IPv6) with the rules of vrev__addr_from_text(); the
 * port is required (0..65535). Returns 0, VREV_ERR_INVAL or VREV_ERR_ADDR_*. */
int vrev__addr_from_hostport(struct vrev__addr *a, const char *text);

/* Is `a` safe to send: a known type with the right length, a valid non-empty domain
 * (a 4.34 peer crashes on an empty one)? Returns 0, VREV_ERR_INVAL or VREV_ERR_ADDR_*. */
int vrev__addr_check(const struct vrev__addr *a);

/* Validate and classify a domain given as bytes (the rules above). */
int vrev__addr_set_domain(struct vrev__addr *a, const uint8_t *name, size_t len);

/* Host as text (IPv6 without brackets). Returns the length or VREV_ERR_NOSPACE. */
int vrev__addr_host_text(const struct vrev__addr *a, char *buf, size_t cap);

/* "host:port", IPv6 in brackets. Returns the length or VREV_ERR_NOSPACE. */
int vrev__addr_target_text(const struct vrev__addr *a, char *buf, size_t cap);

bool vrev__addr_equal(const struct vrev__addr *a, const struct vrev__addr *b);

#endif
