/* SOCKS5 (RFC 1928, RFC 1929), both sides; byte tables in socks5.h.
 *
 *   greeting   05 NMETHODS METHODS...        method      05 METHOD
 *   auth       01 ULEN UNAME PLEN PASSWD     status      01 STATUS
 *   request    05 CMD 00 ATYP ADDR PORT      reply       05 REP 00 ATYP ADDR PORT
 *   udp        00 00 FRAG ATYP ADDR PORT DATA
 *
 *   e.g. the 4.34 bridge tunnel: 050100 / 0500, then
 *   05 01 00 03 0e 746573742e7632666c792e6f7267 0000 / 05 00 00 01 7f000001 2800
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "core/core.h"
#include "socks5.h"

_Static_assert(VREV_SOCKS5_AUTH_MAX <= VREV_HDR_READER_MAX, "reader too small for SOCKS5");

/* --- address first ---------------------------------------------------------------------- */

/* Address-first bytes p[0..total) rearranged to port first and read by the one shared decoder,
 * so that both encodings normalise alike (IP-literal domains, IPv4-mapped IPv6). */
static int decode_as_port_first(const uint8_t *p, size_t total, uint8_t type, struct vrev__addr *a)
{
    uint8_t tmp[3 + 1 + VREV_ADDR_DOMAIN_MAX];
    memcpy(tmp, p + total - 2, 2);
    tmp[2] = type;
    memcpy(tmp + 3, p + 1, total - 3);
    size_t used;
    int rc = vrev__addr_decode(tmp, total, a, &used);
    return rc < 0 ? rc : (int)total;
}

int vrev__socks_addr_parse(const uint8_t *p, size_t n, struct vrev__addr *a, size_t *need)
{
    if (n < 1)
        return vrev__need_more(need, 1);
    size_t head = 1, alen;
    uint8_t type;
    switch (p[0]) {
    case VREV_SOCKS_ATYP_IPV4:
        type = VREV_ADDR_IPV4;
        alen = 4;
        break;
    case VREV_SOCKS_ATYP_IPV6:
        type = VREV_ADDR_IPV6;
        alen = 16;
        break;
    case VREV_SOCKS_ATYP_DOMAIN:
        if (n < 2)
            return vrev__need_more(need, 2);
        if (p[1] == 0)
            return VREV_ERR_ADDR_DOMAIN; /* would crash a 4.34 peer; never pass one on */
        type = VREV_ADDR_DOMAIN;
        head = 2;
        alen = p[1];
        break;
    default:
        return VREV_ERR_ADDR_TYPE;
    }
    size_t total = head + alen + 2;
    if (n < total)
        return vrev__need_more(need, total);
    return decode_as_port_first(p, total, type, a);
}

static uint8_t atyp_of(uint8_t type)
{
    return type == VREV_ADDR_IPV4     ? VREV_SOCKS_ATYP_IPV4
           : type == VREV_ADDR_DOMAIN ? VREV_SOCKS_ATYP_DOMAIN
                                      : VREV_SOCKS_ATYP_IPV6;
}

/* Port first and address first have the same length: move the port from the front to the
 * back and translate the type code. */
int vrev__socks_addr_encode(const struct vrev__addr *a, uint8_t *out, size_t cap)
{
    uint8_t tmp[3 + 1 + VREV_ADDR_DOMAIN_MAX];
    int rc = vrev__addr_check(a);
    if (rc < 0)
        return rc;
    int n = vrev__addr_encode(a, tmp, sizeof(tmp));
    if (n < 0)
        return n;
    if (cap < (size_t)n)
        return VREV_ERR_NOSPACE;
    out[0] = atyp_of(a->type);
    memcpy(out + 1, tmp + 3, (size_t)n - 3);
    memcpy(out + n - 2, tmp, 2);
    return n;
}

/* Three fixed bytes, then an address: requests, replies and UDP headers. */
static int encode_prefixed(uint8_t *out, size_t cap, uint8_t b0, uint8_t b1, uint8_t b2,
                           const struct vrev__addr *a)
{
    uint8_t tmp[VREV_SOCKS_ADDR_MAX];
    int n = vrev__socks_addr_encode(a, tmp, sizeof(tmp));
    if (n < 0)
        return n;
    if (cap && !out)
        return VREV_ERR_INVAL;
    if (cap < 3 + (size_t)n)
        return VREV_ERR_NOSPACE;
    out[0] = b0;
    out[1] = b1;
    out[2] = b2;
    memcpy(out + 3, tmp, (size_t)n);
    return 3 + n;
}

/* The address after VER, CODE, RSV (RSV is not checked: V2Ray ignores it). */
static int parse_addr_at3(const uint8_t *p, size_t n, struct vrev__socks5_request *r, size_t *need)
{
    if (n < 3)
        return vrev__need_more(need, 3);
    size_t sub = 0;
    int rc = vrev__socks_addr_parse(p + 3, n - 3, &r->addr, &sub);
    if (rc == 0)
        return vrev__need_more(need, 3 + sub);
    return rc < 0 ? rc : 3 + rc;
}

/* --- server side ---------------------------------------------------------------------------- */

int vrev__socks5_greeting_parse(const uint8_t *p, size_t n, struct vrev__socks5_greeting *g,
                                size_t *need)
{
    int rc = vrev__hdr_version(p, n, VREV_SOCKS5_VERSION, VREV_ERR_SOCKS_VERSION, need);
    if (rc <= 0)
        return rc;
    size_t total = 2 + (size_t)p[1];
    if (n < total)
        return vrev__need_more(need, total);
    g->n_methods = p[1];
    g->methods = p[1] ? p + 2 : NULL;
    return (int)total;
}

uint8_t vrev__socks5_choose_method(const struct vrev__socks5_greeting *g, uint8_t want)
{
    for (size_t i = 0; i < g->n_methods; i++)
        if (g->methods[i] == want)
            return want;
    return VREV_SOCKS5_METHOD_UNACCEPTABLE;
}

int vrev__socks5_auth_parse(const uint8_t *p, size_t n, struct vrev__socks5_auth *a, size_t *need)
{
    int rc = vrev__hdr_version(p, n, VREV_SOCKS5_AUTH_VERSION, VREV_ERR_SOCKS_AUTH_VERSION, need);
    if (rc <= 0)
        return rc;
    size_t ulen = p[1];
    if (n < 3 + ulen)
        return vrev__need_more(need, 3 + ulen);
    size_t plen = p[2 + ulen];
    size_t total = 3 + ulen + plen;
    if (n < total)
        return vrev__need_more(need, total);
    a->user = p + 2;
    a->user_len = ulen;
    a->pass = p + 3 + ulen;
    a->pass_len = plen;
    return (int)total;
}

static bool known_command(uint8_t cmd)
{
    return cmd == VREV_SOCKS5_CONNECT || cmd == VREV_SOCKS5_BIND ||
           cmd == VREV_SOCKS5_UDP_ASSOCIATE || cmd == VREV_SOCKS5_TOR_RESOLVE ||
           cmd == VREV_SOCKS5_TOR_RESOLVE_PTR;
}

int vrev__socks5_request_parse(const uint8_t *p, size_t n, struct vrev__socks5_request *req,
                               size_t *need)
{
    int rc = vrev__hdr_version(p, n, VREV_SOCKS5_VERSION, VREV_ERR_SOCKS_VERSION, need);
    if (rc <= 0)
        return rc;
    req->code = p[1];
    if (!known_command(p[1]))
        return VREV_ERR_SOCKS_COMMAND;
    return parse_addr_at3(p, n, req, need);
}

uint8_t vrev__socks5_rep_for_error(int err)
{
    switch (err) {
    case VREV_ERR_SOCKS_COMMAND:
        return VREV_SOCKS5_REP_CMD_UNSUPPORTED;
    case VREV_ERR_ADDR_TYPE:
        return VREV_SOCKS5_REP_ATYP_UNSUPPORTED;
    default:
        return VREV_SOCKS5_REP_FAILURE;
    }
}

static int encode_pair(uint8_t *out, size_t cap, uint8_t b0, uint8_t b1)
{
    if (cap && !out)
        return VREV_ERR_INVAL;
    if (cap < 2)
        return VREV_ERR_NOSPACE;
    out[0] = b0;
    out[1] = b1;
    return 2;
}

int vrev__socks5_method_encode(uint8_t *out, size_t cap, uint8_t method)
{
    return encode_pair(out, cap, VREV_SOCKS5_VERSION, method);
}

int vrev__socks5_auth_status_encode(uint8_t *out, size_t cap, uint8_t status)
{
    return encode_pair(out, cap, VREV_SOCKS5_AUTH_VERSION, status);
}

int vrev__socks5_reply_encode(uint8_t *out, size_t cap, uint8_t rep, const struct vrev__addr *bound)
{
    static const struct vrev__addr unspecified = {.type = VREV_ADDR_IPV4, .len = 4};
    return encode_prefixed(out, cap, VREV_SOCKS5_VERSION, rep, 0, bound ? bound : &unspecified);
}

/* --- client side ---------------------------------------------------------------------------- */

int vrev__socks5_greeting_encode(uint8_t *out, size_t cap, const uint8_t *methods, size_t n_methods)
{
    if (!methods || (cap && !out))
        return VREV_ERR_INVAL;
    if (n_methods < 1 || n_methods > 255)
        return VREV_ERR_RANGE;
    if (cap < 2 + n_methods)
        return VREV_ERR_NOSPACE;
    out[0] = VREV_SOCKS5_VERSION;
    out[1] = (uint8_t)n_methods;
    memcpy(out + 2, methods, n_methods);
    return (int)(2 + n_methods);
}

int vrev__socks5_auth_encode(uint8_t *out, size_t cap, const uint8_t *user, size_t user_len,
                             const uint8_t *pass, size_t pass_len)
{
    if ((user_len && !user) || (pass_len && !pass) || (cap && !out))
        return VREV_ERR_INVAL;
    if (user_len > 255 || pass_len > 255)
        return VREV_ERR_RANGE;
    size_t total = 3 + user_len + pass_len;
    if (cap < total)
        return VREV_ERR_NOSPACE;
    out[0] = VREV_SOCKS5_AUTH_VERSION;
    out[1] = (uint8_t)user_len;
    if (user_len)
        memcpy(out + 2, user, user_len);
    out[2 + user_len] = (uint8_t)pass_len;
    if (pass_len)
        memcpy(out + 3 + user_len, pass, pass_len);
    return (int)total;
}

int vrev__socks5_request_encode(uint8_t *out, size_t cap, uint8_t cmd,
                                const struct vrev__addr *addr)
{
    if (!known_command(cmd))
        return VREV_ERR_SOCKS_COMMAND;
    return encode_prefixed(out, cap, VREV_SOCKS5_VERSION, cmd, 0, addr);
}

int vrev__socks5_method_parse(const uint8_t *p, size_t n, uint8_t *method, size_t *need)
{
    int rc = vrev__hdr_version(p, n, VREV_SOCKS5_VERSION, VREV_ERR_SOCKS_VERSION, need);
    if (rc <= 0)
        return rc;
    *method = p[1];
    return p[1] == VREV_SOCKS5_METHOD_UNACCEPTABLE ? VREV_ERR_SOCKS_NO_METHOD : 2;
}

int vrev__socks5_auth_status_parse(const uint8_t *p, size_t n, uint8_t *status, size_t *need)
{
    if (n < 2)
        return vrev__need_more(need, 2);
    *status = p[1];
    return p[1] == 0 ? 2 : VREV_ERR_AUTH;
}

int vrev__socks5_reply_parse(const uint8_t *p, size_t n, struct vrev__socks5_request *r,
                             size_t *need)
{
    int rc = vrev__hdr_version(p, n, VREV_SOCKS5_VERSION, VREV_ERR_SOCKS_VERSION, need);
    if (rc <= 0)
        return rc;
    r->code = p[1];
    if (p[1] != VREV_SOCKS5_REP_SUCCEEDED)
        return VREV_ERR_SOCKS_REFUSED;
    return parse_addr_at3(p, n, r, need);
}

/* --- UDP ASSOCIATE datagrams ---------------------------------------------------------------- */

int vrev__socks5_udp_parse(const uint8_t *p, size_t n, struct vrev__socks5_udp *u)
{
    if (n < 3)
        return VREV_ERR_TRUNCATED;
    if (p[2] != 0)
        return VREV_ERR_SOCKS_FRAGMENT;
    size_t need;
    int rc = vrev__socks_addr_parse(p + 3, n - 3, &u->addr, &need);
    if (rc == 0)
        return VREV_ERR_TRUNCATED;
    if (rc < 0)
        return rc;
    size_t hdr = 3 + (size_t)rc;
    u->data = p + hdr;
    u->data_len = n - hdr;
    return (int)hdr;
}

int vrev__socks5_udp_header_encode(uint8_t *out, size_t cap, const struct vrev__addr *addr)
{
    return encode_prefixed(out, cap, 0, 0, 0, addr);
}

int vrev__socks5_udp_encode(uint8_t *out, size_t cap, const struct vrev__addr *addr,
                            const uint8_t *data, size_t data_len)
{
    if (data_len && !data)
        return VREV_ERR_INVAL;
    int hdr = vrev__socks5_udp_header_encode(out, cap, addr);
    if (hdr < 0)
        return hdr;
    size_t total;
    if (!vrev__add_size((size_t)hdr, data_len, &total) || total > INT_MAX)
        return VREV_ERR_RANGE;
    if (cap < total)
        return VREV_ERR_NOSPACE;
    if (data_len)
        memcpy(out + hdr, data, data_len);
    return (int)total;
}

/* --- feeds: each typed parser adapted to vrev__hdr_parse_fn, and its typed feed ----------- */

#define SOCKS5_FEED(name, type)                                                                    \
    static int name##_cb(const uint8_t *p, size_t n, void *msg, size_t *need, const void *arg)     \
    {                                                                                              \
        (void)arg;                                                                                 \
        return vrev__socks5_##name##_parse(p, n, msg, need);                                       \
    }                                                                                              \
    int vrev__socks5_##name##_feed(struct vrev__hdr_reader *r, type *msg, const uint8_t *p,        \
                                   size_t n, size_t *used)                                         \
    {                                                                                              \
        return vrev__hdr_reader_feed(r, name##_cb, NULL, msg, p, n, used);                         \
    }

SOCKS5_FEED(greeting, struct vrev__socks5_greeting)
SOCKS5_FEED(auth, struct vrev__socks5_auth)
SOCKS5_FEED(request, struct vrev__socks5_request)
SOCKS5_FEED(method, uint8_t)
SOCKS5_FEED(auth_status, uint8_t)
SOCKS5_FEED(reply, struct vrev__socks5_request)
