/* F7: the VLESS request and response header parsers (lib/codec/vless.c).
 *
 * Input: byte 0 = which header (bit 0: 0 request, 1 response) and split seed; the rest is
 * the stream. Oracles beyond the sanitizers: every prefix either needs more (with a need
 * past the prefix and not past the header) or gives the whole input's result; a reader fed
 * the stream whole and in seeded random pieces gives the same result, the same byte count
 * and the same header; decode -> encode -> decode is a fixed point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/vless.h"

/* the WIRE-SPEC §10.10 UUID, and one differing in the last byte */
static const uint8_t ids[32] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38, 0x9f, 0xd3, 0x09,
                                0x8a, 0x63, 0x96, 0x4b, 0x6b, 0x27, 0x84, 0x87, 0x39, 0x7e, 0x62,
                                0x41, 0x38, 0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6c};
static const struct vrev__vless_users users = {ids, 2};

union msg {
    struct vrev__vless_request req;
    struct vrev__vless_addons resp;
};

static void same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen || (alen && memcmp(a, b, alen) != 0) || (a == NULL) != (b == NULL))
        abort();
}

static void same_addons(const struct vrev__vless_addons *a, const struct vrev__vless_addons *b)
{
    same_bytes(a->raw, a->raw_len, b->raw, b->raw_len);
    same_bytes(a->flow, a->flow_len, b->flow, b->flow_len);
    same_bytes(a->seed, a->seed_len, b->seed, b->seed_len);
}

static void same_msg(int response, const union msg *a, const union msg *b)
{
    if (response) {
        same_addons(&a->resp, &b->resp);
        return;
    }
    if (a->req.user != b->req.user || a->req.command != b->req.command ||
        !vrev__addr_equal(&a->req.target, &b->req.target))
        abort();
    same_addons(&a->req.addons, &b->req.addons);
}

static int parse(int response, const uint8_t *p, size_t n, union msg *m, size_t *need)
{
    return response ? vrev__vless_response_parse(p, n, &m->resp, need)
                    : vrev__vless_request_parse(p, n, &users, &m->req, need);
}

static int feed(int response, struct vrev__hdr_reader *r, union msg *m, const uint8_t *p, size_t n,
                size_t *used)
{
    return response ? vrev__vless_response_feed(r, &m->resp, p, n, used)
                    : vrev__vless_request_feed(r, &users, &m->req, p, n, used);
}

static void check_prefixes(int response, const uint8_t *p, size_t n, int whole)
{
    size_t limit = n < 2 * VREV_HDR_READER_MAX ? n : 2 * VREV_HDR_READER_MAX;
    for (size_t k = 0; k < limit; k++) {
        union msg m;
        size_t need = 0;
        int rc = parse(response, p, k, &m, &need);
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

/* Feed p[0..n) in pieces (seed 0: at once); returns the result, *total = bytes taken. */
static int feed_pieces(int response, struct vrev__hdr_reader *r, union msg *m, const uint8_t *p,
                       size_t n, unsigned seed, size_t *total)
{
    int rc = 0;
    *total = 0;
    vrev__hdr_reader_init(r);
    for (size_t off = 0; off < n && rc == 0;) {
        size_t len = n - off, used = 0;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = (seed >> 16) % 41; /* empty pieces too */
            if (piece < len)
                len = piece;
        }
        rc = feed(response, r, m, p + off, len, &used);
        if (rc == 0 && used != len)
            abort();
        *total += used;
        off += len;
    }
    return rc;
}

static void check_fixed_point(int response, const union msg *m)
{
    uint8_t out[VREV_VLESS_REQUEST_MAX], again[VREV_VLESS_REQUEST_MAX];
    union msg m2;
    size_t need;
    int n, n2;
    if (response) {
        n = vrev__vless_response_encode(out, sizeof(out), m->resp.raw, m->resp.raw_len);
    } else {
        n = vrev__vless_request_encode(out, sizeof(out), ids + 16 * m->req.user, m->req.command,
                                       &m->req.target, m->req.addons.raw, m->req.addons.raw_len);
    }
    if (n <= 0 || parse(response, out, (size_t)n, &m2, &need) != n)
        abort();
    same_msg(response, m, &m2);
    if (response)
        n2 = vrev__vless_response_encode(again, sizeof(again), m2.resp.raw, m2.resp.raw_len);
    else
        n2 =
            vrev__vless_request_encode(again, sizeof(again), ids + 16 * m2.req.user, m2.req.command,
                                       &m2.req.target, m2.req.addons.raw, m2.req.addons.raw_len);
    if (n2 != n || memcmp(out, again, (size_t)n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int response = data[0] & 1;
    unsigned seed = data[0] | 1u;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    union msg whole, a, b;
    struct vrev__hdr_reader ra, rb;
    size_t need = 0, used_a, used_b;
    int rc = parse(response, p, n, &whole, &need);
    if (rc == 0 && need <= n)
        abort();
    check_prefixes(response, p, n, rc);
    int rc_a = feed_pieces(response, &ra, &a, p, n, 0, &used_a);
    int rc_b = feed_pieces(response, &rb, &b, p, n, seed, &used_b);
    if (rc_a != rc || rc_b != rc || used_a != used_b)
        abort();
    if (rc > 0) {
        if (used_a != (size_t)rc)
            abort();
        same_msg(response, &whole, &a);
        same_msg(response, &whole, &b);
        check_fixed_point(response, &whole);
    }
    return 0;
}
