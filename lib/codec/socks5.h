/* SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), both sides, sans-IO.
 *
 *   Greeting (client -> server)            Method selection (server -> client)
 *   +-----+----------+-----------+         +-----+--------+
 *   | VER | NMETHODS | METHODS   |         | VER | METHOD |  METHOD 0xFF: none acceptable
 *   | 05  | 1        | NMETHODS  |         | 05  | 1      |
 *   +-----+----------+-----------+         +-----+--------+
 *
 *   Username/password (client -> server)   Status (server -> client)
 *   +-----+------+-------+------+------+   +-----+--------+
 *   | VER | ULEN | UNAME | PLEN | PASS |   | VER | STATUS |  STATUS 0: success
 *   | 01  | 1    | ULEN  | 1    | PLEN |   | 01  | 1      |
 *   +-----+------+-------+------+------+   +-----+--------+
 *
 *   Request (client -> server)             Reply (server -> client)
 *   +-----+-----+-----+---------+          +-----+-----+-----+---------+
 *   | VER | CMD | RSV | ADDRESS |          | VER | REP | RSV | ADDRESS |  REP 0: succeeded,
 *   | 05  | 1   | 00  | 4+      |          | 05  | 1   | 00  | 4+      |  1..8: RFC errors
 *   +-----+-----+-----+---------+          +-----+-----+-----+---------+
 *
 *   ADDRESS: address first (unlike addr.h), type codes 1/3/4 (unlike addr.h's 1/2/3)
 *   +------+--------------------------------------------+------------+
 *   | ATYP | 1: IPv4, 4 bytes                           | PORT u16be |
 *   |      | 3: domain, u8 len (1..255) + len bytes     |            |
 *   |      | 4: IPv6, 16 bytes                          |            |
 *   +------+--------------------------------------------+------------+
 *
 *   UDP datagram (through the UDP ASSOCIATE relay, both directions)
 *   +-----+------+---------+------+
 *   | RSV | FRAG | ADDRESS | DATA |   FRAG must be 0 (V2Ray drops fragments too)
 *   | 2   | 1    | 4+      | ...  |
 *   +-----+------+---------+------+
 *
 * Captured 4.34 exchange (WIRE-SPEC §10.10): client 050100 / 050100030e746573742e7632666c792e
 * 6f72670000, server 0500 / 050000017f0000012800.
 *
 * Addresses are stored as struct vrev__addr (addr.h types) and read with the same rules as the
 * port-first codec: a domain that is an IP literal becomes that IP, other domains must be
 * [A-Za-z0-9._-], IPv4-mapped IPv6 becomes IPv4. The parsers are stateless (return convention
 * and the reader for split input in hdr_reader.h); parsed pointers point into the parsed
 * bytes. Errors are reported as soon as the offending field is complete, in wire order. On the
 * client side a refusal (method 0xFF, auth status != 0, REP != 0) is an error. All functions
 * are reentrant and thread-safe.
 */
#ifndef VREV_CODEC_SOCKS5_H
#define VREV_CODEC_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "hdr_reader.h"

#define VREV_SOCKS5_VERSION 5
#define VREV_SOCKS5_AUTH_VERSION 1

enum vrev__socks5_method {
    VREV_SOCKS5_METHOD_NONE = 0x00,
    VREV_SOCKS5_METHOD_GSSAPI = 0x01,
    VREV_SOCKS5_METHOD_PASSWORD = 0x02,
    VREV_SOCKS5_METHOD_UNACCEPTABLE = 0xff
};

enum vrev__socks5_command {
    VREV_SOCKS5_CONNECT = 0x01,
    VREV_SOCKS5_BIND = 0x02,
    VREV_SOCKS5_UDP_ASSOCIATE = 0x03,
    VREV_SOCKS5_TOR_RESOLVE = 0xf0, /* Tor extensions; V2Ray treats them as CONNECT */
    VREV_SOCKS5_TOR_RESOLVE_PTR = 0xf1
};

enum vrev__socks5_rep {
    VREV_SOCKS5_REP_SUCCEEDED = 0x00,
    VREV_SOCKS5_REP_FAILURE = 0x01,
    VREV_SOCKS5_REP_NOT_ALLOWED = 0x02,
    VREV_SOCKS5_REP_NET_UNREACHABLE = 0x03,
    VREV_SOCKS5_REP_HOST_UNREACHABLE = 0x04,
    VREV_SOCKS5_REP_CONN_REFUSED = 0x05,
    VREV_SOCKS5_REP_TTL_EXPIRED = 0x06,
    VREV_SOCKS5_REP_CMD_UNSUPPORTED = 0x07,
    VREV_SOCKS5_REP_ATYP_UNSUPPORTED = 0x08
};

enum vrev__socks_atyp {
    VREV_SOCKS_ATYP_IPV4 = 1,
    VREV_SOCKS_ATYP_DOMAIN = 3,
    VREV_SOCKS_ATYP_IPV6 = 4
};

/* Largest messages, for output buffers. */
#define VREV_SOCKS_ADDR_MAX (1 + 1 + VREV_ADDR_DOMAIN_MAX + 2)
#define VREV_SOCKS5_GREETING_MAX (2 + 255)
#define VREV_SOCKS5_AUTH_MAX (3 + 255 + 255)
#define VREV_SOCKS5_REQUEST_MAX (3 + VREV_SOCKS_ADDR_MAX)
#define VREV_SOCKS5_UDP_HEADER_MAX (3 + VREV_SOCKS_ADDR_MAX)

struct vrev__socks5_greeting {
    size_t n_methods;
    const uint8_t *methods; /* borrowed; NULL when n_methods is 0 */
};

/* Secrets: the pointers are borrowed from the parsed bytes; wipe those after use. */
struct vrev__socks5_auth {
    const uint8_t *user;
    size_t user_len;
    const uint8_t *pass;
    size_t pass_len;
};

/* A request (code = CMD) or a reply (code = REP). */
struct vrev__socks5_request {
    uint8_t code;
    struct vrev__addr addr;
};

struct vrev__socks5_udp {
    struct vrev__addr addr;
    const uint8_t *data; /* borrowed, the rest of the datagram */
    size_t data_len;
};

/* --- address-first codec (also Trojan's, WIRE-SPEC §5.2) -------------------------------- */

/* Parse an address-first address. Returns its length, 0 with *need, or VREV_ERR_ADDR_TYPE,
 * _ADDR_DOMAIN (empty or invalid domain). */
int vrev__socks_addr_parse(const uint8_t *p, size_t n, struct vrev__addr *a, size_t *need);

/* Write a address first. Returns the length or VREV_ERR_INVAL, _NOSPACE, _ADDR_TYPE,
 * _ADDR_DOMAIN. */
int vrev__socks_addr_encode(const struct vrev__addr *a, uint8_t *out, size_t cap);

/* --- server side ---------------------------------------------------------------------------- */

/* Greeting. 0 methods is accepted (as V2Ray does); the answer is then 0xFF. Returns the length,
 * 0 with *need, or VREV_ERR_SOCKS_VERSION (a SOCKS4 client gives this; check p[0] == 4). */
int vrev__socks5_greeting_parse(const uint8_t *p, size_t n, struct vrev__socks5_greeting *g,
                                size_t *need);

/* want if the greeting offers it, else VREV_SOCKS5_METHOD_UNACCEPTABLE. */
uint8_t vrev__socks5_choose_method(const struct vrev__socks5_greeting *g, uint8_t want);

/* Username/password. Returns the length, 0 with *need, or VREV_ERR_SOCKS_AUTH_VERSION. */
int vrev__socks5_auth_parse(const uint8_t *p, size_t n, struct vrev__socks5_auth *a, size_t *need);

/* Request: CONNECT, BIND, UDP ASSOCIATE and the Tor commands parse; others give
 * VREV_ERR_SOCKS_COMMAND with req->code set (answer REP 7). RSV is ignored, as V2Ray does.
 * Returns the length, 0 with *need, or VREV_ERR_SOCKS_VERSION, _SOCKS_COMMAND, _ADDR_TYPE,
 * _ADDR_DOMAIN. */
int vrev__socks5_request_parse(const uint8_t *p, size_t n, struct vrev__socks5_request *req,
                               size_t *need);

/* The REP code answering a request that failed to parse with err (7, 8, or 1). */
uint8_t vrev__socks5_rep_for_error(int err);

/* "05 METHOD", "01 STATUS". Return 2 or VREV_ERR_NOSPACE / _INVAL. */
int vrev__socks5_method_encode(uint8_t *out, size_t cap, uint8_t method);
int vrev__socks5_auth_status_encode(uint8_t *out, size_t cap, uint8_t status);

/* Reply with REP rep and the bound address (NULL: 0.0.0.0:0). Returns the length or
 * VREV_ERR_INVAL, _NOSPACE, _ADDR_TYPE, _ADDR_DOMAIN. */
int vrev__socks5_reply_encode(uint8_t *out, size_t cap, uint8_t rep,
                              const struct vrev__addr *bound);

/* --- client side ---------------------------------------------------------------------------- */

/* Greeting offering n_methods (1..255) methods. Returns the length or VREV_ERR_INVAL, _RANGE,
 * _NOSPACE. */
int vrev__socks5_greeting_encode(uint8_t *out, size_t cap, const uint8_t *methods,
                                 size_t n_methods);

/* Username/password, each 0..255 bytes. Returns the length or VREV_ERR_INVAL, _RANGE,
 * _NOSPACE. */
int vrev__socks5_auth_encode(uint8_t *out, size_t cap, const uint8_t *user, size_t user_len,
                             const uint8_t *pass, size_t pass_len);

/* Request. Returns the length or VREV_ERR_INVAL, _NOSPACE, _SOCKS_COMMAND, _ADDR_*. */
int vrev__socks5_request_encode(uint8_t *out, size_t cap, uint8_t cmd,
                                const struct vrev__addr *addr);

/* Method selection. Returns 2, 0 with *need, or VREV_ERR_SOCKS_VERSION, _SOCKS_NO_METHOD
 * (*method is set in every case once known). */
int vrev__socks5_method_parse(const uint8_t *p, size_t n, uint8_t *method, size_t *need);

/* Auth status. The version byte is not checked: V2Ray's client ignores it and some servers
 * answer 05. Returns 2, 0 with *need, or VREV_ERR_AUTH (status != 0; *status set). */
int vrev__socks5_auth_status_parse(const uint8_t *p, size_t n, uint8_t *status, size_t *need);

/* Reply. REP != 0 fails as soon as it is read, without waiting for the address (as V2Ray):
 * VREV_ERR_SOCKS_REFUSED with r->code = REP. Returns the length, 0 with *need, or
 * VREV_ERR_SOCKS_VERSION, _SOCKS_REFUSED, _ADDR_TYPE, _ADDR_DOMAIN. */
int vrev__socks5_reply_parse(const uint8_t *p, size_t n, struct vrev__socks5_request *r,
                             size_t *need);

/* --- UDP ASSOCIATE datagrams (whole datagrams, so a short one is an error) ------------------ */

/* Returns the header length (u->data follows it), or VREV_ERR_TRUNCATED, _SOCKS_FRAGMENT,
 * _ADDR_TYPE, _ADDR_DOMAIN. */
int vrev__socks5_udp_parse(const uint8_t *p, size_t n, struct vrev__socks5_udp *u);

/* The header only (the caller appends the data). Returns the length or VREV_ERR_INVAL,
 * _NOSPACE, _ADDR_*. */
int vrev__socks5_udp_header_encode(uint8_t *out, size_t cap, const struct vrev__addr *addr);

/* Header and data. Returns the length or VREV_ERR_INVAL, _RANGE (> INT_MAX), _NOSPACE,
 * _ADDR_*. */
int vrev__socks5_udp_encode(uint8_t *out, size_t cap, const struct vrev__addr *addr,
                            const uint8_t *data, size_t data_len);

/* --- the parsers through a hdr_reader (input split anywhere; see vrev__hdr_reader_feed) ---- */

int vrev__socks5_greeting_feed(struct vrev__hdr_reader *r, struct vrev__socks5_greeting *g,
                               const uint8_t *p, size_t n, size_t *used);
int vrev__socks5_auth_feed(struct vrev__hdr_reader *r, struct vrev__socks5_auth *a,
                           const uint8_t *p, size_t n, size_t *used);
int vrev__socks5_request_feed(struct vrev__hdr_reader *r, struct vrev__socks5_request *req,
                              const uint8_t *p, size_t n, size_t *used);
int vrev__socks5_method_feed(struct vrev__hdr_reader *r, uint8_t *method, const uint8_t *p,
                             size_t n, size_t *used);
int vrev__socks5_auth_status_feed(struct vrev__hdr_reader *r, uint8_t *status, const uint8_t *p,
                                  size_t n, size_t *used);
int vrev__socks5_reply_feed(struct vrev__hdr_reader *r, struct vrev__socks5_request *rep,
                            const uint8_t *p, size_t n, size_t *used);

#endif
