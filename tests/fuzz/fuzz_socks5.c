/* F8: the SOCKS5 parsers, both sides, and the UDP ASSOCIATE datagram header
 * (lib/codec/socks5.c).
 *
 * Input: byte 0 = message kind (low 3 bits: greeting, auth, request, method, auth status,
 * reply, UDP datagram) and split seed; the rest is the stream (or the datagram). Oracles
 * beyond the sanitizers: every prefix either needs more (with a need past the prefix and not
 * past the message) or gives the whole input's result; a reader fed the stream whole and in
 * seeded random pieces gives the same result, byte count and message; decode -> encode ->
 * decode is a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/socks5.h"

enum { GREETING, AUTH, REQUEST, METHOD, STATUS, REPLY, UDP, KINDS };

union msg {
    struct vrev__socks5_greeting greeting;
    struct vrev__socks5_auth auth;
    struct vrev__socks5_request req;
    struct vrev__socks5_udp udp;
    uint8_t byte;
};

static void same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen || (alen && memcmp(a, b, alen) != 0))
        abort();
}

static void same_msg(int kind, const union msg *a, const union msg *b)
{
    switch (kind) {
    case GREETING:
        same_bytes(a->greeting.methods, a->greeting.n_methods, b->greeting.methods,
                   b->greeting.n_methods);
        break;
    case AUTH:
        same_bytes(a->auth.user, a->auth.user_len, b->auth.user, b->auth.user_len);
        same_bytes(a->auth.pass, a->auth.pass_len, b->auth.pass, b->auth.pass_len);
        break;
    case REQUEST:
    case REPLY:
        if (a->req.code != b->req.code || !vrev__addr_equal(&a->req.addr, &b->req.addr))
            abort();
        break;
    case UDP:
        if (!vrev__addr_equal(&a->udp.addr, &b->udp.addr))
            abort();
        same_bytes(a->udp.data, a->udp.data_len, b->udp.data, b->udp.data_len);
        break;
    default:
        if (a->byte != b->byte)
            abort();
    }
}

static int parse(int kind, const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    switch (kind) {
    case GREETING:
        return vrev__socks5_greeting_parse(p, n, &m->greeting, need);
    case AUTH:
        return vrev__socks5_auth_parse(p, n, &m->auth, need);
    case REQUEST:
        return vrev__socks5_request_parse(p, n, &m->req, need);
    case METHOD:
        return vrev__socks5_method_parse(p, n, &m->byte, need);
    case STATUS:
        return vrev__socks5_auth_status_parse(p, n, &m->byte, need);
    default:
        return vrev__socks5_reply_parse(p, n, &m->req, need);
    }
}

static int feed(int kind, struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                size_t *used)
{
    switch (kind) {
    case GREETING:
        return vrev__socks5_greeting_feed(r, &m->greeting, p, n, used);
    case AUTH:
        return vrev__socks5_auth_feed(r, &m->auth, p, n, used);
    case REQUEST:
        return vrev__socks5_request_feed(r, &m->req, p, n, used);
    case METHOD:
        return vrev__socks5_method_feed(r, &m->byte, p, n, used);
    case STATUS:
        return vrev__socks5_auth_status_feed(r, &m->byte, p, n, used);
    default:
        return vrev__socks5_reply_feed(r, &m->req, p, n, used);
    }
}

/* Encode m again; returns the length, or 0 when the message has no encoding (a greeting
 * offering no methods: the encoder insists on 1..255, the parser accepts 0 as V2Ray does). */
static int encode(int kind, const union msg *m, uint8_t *out, size_t cap)
{
    switch (kind) {
    case GREETING:
        if (m->greeting.n_methods == 0)
            return 0;
        return vrev__socks5_greeting_encode(out, cap, m->greeting.methods, m->greeting.n_methods);
    case AUTH:
        return vrev__socks5_auth_encode(out, cap, m->auth.user, m->auth.user_len, m->auth.pass,
                                        m->auth.pass_len);
    case REQUEST:
        return vrev__socks5_request_encode(out, cap, m->req.code, &m->req.addr);
    case METHOD:
        return vrev__socks5_method_encode(out, cap, m->byte);
    case STATUS:
        return vrev__socks5_auth_status_encode(out, cap, m->byte);
    case REPLY:
        return vrev__socks5_reply_encode(out, cap, m->req.code, &m->req.addr);
    default:
        return vrev__socks5_udp_encode(out, cap, &m->udp.addr, m->udp.data, m->udp.data_len);
    }
}

static int parse_any(int kind, const uint8_t *p, size_t n, union msg *m)
{
    size_t need;
    return kind == UDP ? vrev__socks5_udp_parse(p, n, &m->udp) : parse(kind, p, n, m, &need);
}

static void check_fixed_point(int kind, const union msg *m, size_t data_len)
{
    size_t cap = VREV_SOCKS5_AUTH_MAX + data_len;
    uint8_t *out = malloc(cap), *again = malloc(cap);
    union msg m2;
    if (!out || !again)
        abort();
    int n = encode(kind, m, out, cap);
    if (n > 0) {
        int want = kind == UDP ? n - (int)m->udp.data_len : n;
        if (parse_any(kind, out, (size_t)n, &m2) != want)
            abort();
        same_msg(kind, m, &m2);
        if (encode(kind, &m2, again, cap) != n || memcmp(out, again, (size_t)n) != 0)
            abort();
    } else if (n < 0) {
        abort();
    }
    free(out);
    free(again);
}

static void check_prefixes(int kind, const uint8_t *p, size_t n, int whole)
{
    size_t limit = n < 2 * VREV_HDR_READER_MAX ? n : 2 * VREV_HDR_READER_MAX;
    for (size_t k = 0; k < limit; k++) {
        union msg m;
        size_t need = 0;
        int rc = parse(kind, p, k, &m, &need);
        if (whole > 0 && k >= (size_t)whole) {
            if (rc != whole)
                abort();
        } else if (rc == 0) {
            if (need <= k || (whole > 0 && need > (size_t)whole))
                abort();
        } else if (rc != whole) {
            abort();
        }
    }
}

static int feed_pieces(int kind, struct vrev__hdr_reader *r, union msg *m, const uint8_t *p,
                       size_t n, unsigned seed, size_t *total)
{
    int rc = 0;
    *total = 0;
    vrev__hdr_reader_init(r);
    for (size_t off = 0; off < n && rc == 0;) {
        size_t len = n - off, used = 0;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = (seed >> 16) % 23; /* empty pieces too */
            if (piece < len)
                len = piece;
        }
        rc = feed(kind, r, m, p + off, len, &used);
        if (rc == 0 && used != len)
            abort();
        *total += used;
        off += len;
    }
    return rc;
}

static void check_stream(int kind, const uint8_t *p, size_t n, unsigned seed)
{
    union msg whole, a, b;
    struct vrev__hdr_reader ra, rb;
    size_t need = 0, used_a, used_b;
    int rc = parse(kind, p, n, &whole, &need);
    if (rc == 0 && need <= n)
        abort();
    check_prefixes(kind, p, n, rc);
    int rc_a = feed_pieces(kind, &ra, &a, p, n, 0, &used_a);
    int rc_b = feed_pieces(kind, &rb, &b, p, n, seed, &used_b);
    if (rc_a != rc || rc_b != rc || used_a != used_b)
        abort();
    if (rc > 0) {
        if (used_a != (size_t)rc)
            abort();
        same_msg(kind, &whole, &a);
        same_msg(kind, &whole, &b);
        check_fixed_point(kind, &whole, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int kind = data[0] & 7;
    if (kind >= KINDS)
        kind = UDP;
    if (kind != UDP) {
        check_stream(kind, data + 1, size - 1, data[0] | 1u);
        return 0;
    }
    union msg m;
    int rc = vrev__socks5_udp_parse(data + 1, size - 1, &m.udp);
    if (rc > 0) {
        if ((size_t)rc + m.udp.data_len != size - 1 || m.udp.data != data + 1 + rc)
            abort();
        check_fixed_point(UDP, &m, m.udp.data_len);
    }
    return 0;
}
