/* VLESS request and response headers (WIRE-SPEC §5.1).
 *
 *   request:   00 | uuid[16] | A | addons[A] | cmd | (port u16, type u8, address) unless Mux
 *   response:  00 | A | addons[A]
 *
 *   e.g. tunnel to test.v2fly.org:0, no addons:
 *   00 278487397e6241389fd3098a63964b6b 00 01 0000 02 0e 746573742e7632666c792e6f7267
 *
 * See vless.h for the full byte tables.
 */
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "varint.h"
#include "vless.h"

_Static_assert(VREV_VLESS_REQUEST_MAX <= VREV_HDR_READER_MAX, "reader too small for VLESS");

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_BYTES = 2, WT_FIXED32 = 5 };
#define FIELD_FLOW 1
#define FIELD_SEED 2
#define FIELD_MAX ((1u << 29) - 1) /* protobuf's largest field number */

/* Bytes taken by the value of a field of wire type wt at p[0..n), or 0 if it does not fit.
 * For length-delimited values *body gets the offset of the bytes. */
static size_t value_len(const uint8_t *p, size_t n, unsigned wt, size_t *body)
{
    uint64_t v;
    size_t k;
    switch (wt) {
    case WT_VARINT:
        return vrev__varint_get(p, n, &v);
    case WT_FIXED64:
        return n >= 8 ? 8 : 0;
    case WT_FIXED32:
        return n >= 4 ? 4 : 0;
    case WT_BYTES:
        k = vrev__varint_get(p, n, &v);
        if (k == 0 || v > n - k)
            return 0;
        *body = k;
        return k + (size_t)v;
    default:
        return 0; /* groups (3, 4) and the undefined 6, 7 */
    }
}

/* One field at p[0..n): returns the bytes used or VREV_ERR_VLESS_ADDONS. */
static int addons_field(const uint8_t *p, size_t n, struct vrev__vless_addons *a)
{
    uint64_t key;
    size_t k = vrev__varint_get(p, n, &key);
    uint64_t field = key >> 3;
    if (k == 0 || field == 0 || field > FIELD_MAX)
        return VREV_ERR_VLESS_ADDONS;
    unsigned wt = (unsigned)(key & 7);
    size_t body = 0;
    size_t vlen = value_len(p + k, n - k, wt, &body);
    if (vlen == 0)
        return VREV_ERR_VLESS_ADDONS;
    /* Like protobuf-go, a known field with another wire type is kept as an unknown field. */
    if (wt == WT_BYTES && field == FIELD_FLOW) {
        a->flow = p + k + body;
        a->flow_len = vlen - body;
    } else if (wt == WT_BYTES && field == FIELD_SEED) {
        a->seed = p + k + body;
        a->seed_len = vlen - body;
    }
    return (int)(k + vlen);
}

int vrev__vless_addons_parse(const uint8_t *p, size_t n, struct vrev__vless_addons *a)
{
    memset(a, 0, sizeof(*a));
    if (n > VREV_VLESS_ADDONS_MAX)
        return VREV_ERR_VLESS_ADDONS;
    a->raw = n ? p : NULL;
    a->raw_len = n;
    for (size_t off = 0; off < n;) {
        int rc = addons_field(p + off, n - off, a);
        if (rc < 0)
            return rc;
        off += (size_t)rc;
    }
    return 0;
}

/* Index of id in users, or SIZE_MAX. Every entry is compared in full and the result is
 * selected with masks, so the time does not depend on where (or whether) id matches. */
static size_t find_user(const uint8_t *id, const struct vrev__vless_users *users)
{
    size_t found = SIZE_MAX;
    size_t count = users ? users->count : 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *u = users->uuids + i * VREV_VLESS_UUID_LEN;
        unsigned diff = 0;
        for (size_t j = 0; j < VREV_VLESS_UUID_LEN; j++)
            diff |= (unsigned)(id[j] ^ u[j]);
        size_t hit = (size_t)0 - (size_t)(((diff - 1u) >> 8) & 1u); /* all ones iff diff == 0 */
        found = (found & ~hit) | (i & hit);
    }
    return found;
}

/* Bytes the port-first address at p[0..n) occupies, or the bytes needed to tell (> n). An
 * unknown type reports 3 so that the decoder itself rejects it. */
static size_t addr_span(const uint8_t *p, size_t n)
{
    if (n < 3)
        return 3;
    switch (p[2]) {
    case VREV_ADDR_IPV4:
        return 3 + 4;
    case VREV_ADDR_IPV6:
        return 3 + 16;
    case VREV_ADDR_DOMAIN:
        return n < 4 ? 4 : 4 + (size_t)p[3];
    default:
        return 3;
    }
}

/* The command byte is at p[off - 1]; the address (if any) starts at off. */
static int parse_target(const uint8_t *p, size_t n, size_t off, struct vrev__vless_request *req,
                        size_t *need)
{
    memset(&req->target, 0, sizeof(req->target));
    switch (req->command) {
    case VREV_VLESS_MUX:
        return (int)off;
    case VREV_VLESS_TCP:
    case VREV_VLESS_UDP:
        break;
    default:
        return VREV_ERR_VLESS_COMMAND;
    }
    size_t span = addr_span(p + off, n - off);
    if (n - off < span)
        return vrev__need_more(need, off + span);
    size_t used;
    int rc = vrev__addr_decode(p + off, span, &req->target, &used);
    return rc < 0 ? rc : (int)(off + used);
}

int vrev__vless_request_parse(const uint8_t *p, size_t n, const struct vrev__vless_users *users,
                              struct vrev__vless_request *req, size_t *need)
{
    if (n < 1)
        return vrev__need_more(need, 1);
    if (p[0] != VREV_VLESS_VERSION)
        return VREV_ERR_VLESS_VERSION;
    if (n < 1 + VREV_VLESS_UUID_LEN)
        return vrev__need_more(need, 1 + VREV_VLESS_UUID_LEN);
    size_t user = find_user(p + 1, users);
    if (user == SIZE_MAX)
        return VREV_ERR_VLESS_USER;
    if (n < 18)
        return vrev__need_more(need, 18);
    size_t end = 18 + (size_t)p[17]; /* offset of the command byte */
    if (n < end)
        return vrev__need_more(need, end);
    int rc = vrev__vless_addons_parse(p + 18, p[17], &req->addons);
    if (rc < 0)
        return rc;
    if (n < end + 1)
        return vrev__need_more(need, end + 1);
    req->user = user;
    req->command = p[end];
    return parse_target(p, n, end + 1, req, need);
}

int vrev__vless_response_parse(const uint8_t *p, size_t n, struct vrev__vless_addons *addons,
                               size_t *need)
{
    int rc = vrev__hdr_version(p, n, VREV_VLESS_VERSION, VREV_ERR_VLESS_VERSION, need);
    if (rc <= 0)
        return rc;
    size_t end = 2 + (size_t)p[1];
    if (n < end)
        return vrev__need_more(need, end);
    rc = vrev__vless_addons_parse(p + 2, p[1], addons);
    return rc < 0 ? rc : (int)end;
}

static int check_addons(const uint8_t *addons, size_t len)
{
    struct vrev__vless_addons a;
    if (len && !addons)
        return VREV_ERR_INVAL;
    if (len > VREV_VLESS_ADDONS_MAX)
        return VREV_ERR_RANGE;
    return vrev__vless_addons_parse(addons, len, &a);
}

int vrev__vless_request_encode(uint8_t *out, size_t cap, const uint8_t *uuid, uint8_t command,
                               const struct vrev__addr *target, const uint8_t *addons,
                               size_t addons_len)
{
    if (!uuid || (cap && !out))
        return VREV_ERR_INVAL;
    int rc = check_addons(addons, addons_len);
    if (rc < 0)
        return rc;
    size_t alen = 0;
    if (command == VREV_VLESS_TCP || command == VREV_VLESS_UDP) {
        if ((rc = vrev__addr_check(target)) < 0)
            return rc;
        alen = vrev__addr_encoded_len(target);
    } else if (command != VREV_VLESS_MUX) {
        return VREV_ERR_VLESS_COMMAND;
    }
    size_t total = 19 + addons_len + alen;
    if (cap < total)
        return VREV_ERR_NOSPACE;
    out[0] = VREV_VLESS_VERSION;
    memcpy(out + 1, uuid, VREV_VLESS_UUID_LEN);
    out[17] = (uint8_t)addons_len;
    if (addons_len)
        memcpy(out + 18, addons, addons_len);
    out[18 + addons_len] = command;
    if (alen && (rc = vrev__addr_encode(target, out + 19 + addons_len, alen)) < 0)
        return rc;
    return (int)total;
}

int vrev__vless_response_encode(uint8_t *out, size_t cap, const uint8_t *addons, size_t addons_len)
{
    if (cap && !out)
        return VREV_ERR_INVAL;
    int rc = check_addons(addons, addons_len);
    if (rc < 0)
        return rc;
    if (cap < 2 + addons_len)
        return VREV_ERR_NOSPACE;
    out[0] = VREV_VLESS_VERSION;
    out[1] = (uint8_t)addons_len;
    if (addons_len)
        memcpy(out + 2, addons, addons_len);
    return (int)(2 + addons_len);
}

static int request_cb(const uint8_t *p, size_t n, void *msg, size_t *need, const void *arg)
{
    return vrev__vless_request_parse(p, n, arg, msg, need);
}

static int response_cb(const uint8_t *p, size_t n, void *msg, size_t *need, const void *arg)
{
    (void)arg;
    return vrev__vless_response_parse(p, n, msg, need);
}

int vrev__vless_request_feed(struct vrev__hdr_reader *r, const struct vrev__vless_users *users,
                             struct vrev__vless_request *req, const uint8_t *p, size_t n,
                             size_t *used)
{
    return vrev__hdr_reader_feed(r, request_cb, users, req, p, n, used);
}

int vrev__vless_response_feed(struct vrev__hdr_reader *r, struct vrev__vless_addons *addons,
                              const uint8_t *p, size_t n, size_t *used)
{
    return vrev__hdr_reader_feed(r, response_cb, NULL, addons, p, n, used);
}
