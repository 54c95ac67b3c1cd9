/* Reverse control message (wire format in vrev/control.h; WIRE-SPEC §3.3). */
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "varint.h"
#include "vrev/control.h"

#define FIELD_STATE 1
#define FIELD_RANDOM 99

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_BYTES = 2, WT_FIXED32 = 5 };

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

int vrev_control_encode(uint8_t *out, size_t cap, int state, const uint8_t *random,
                        size_t random_len)
{
    if (state < 0 || (random_len && !random) || (cap && !out))
        return VREV_ERR_INVAL;
    if (random_len > VREV_CONTROL_MAX)
        return VREV_ERR_PROTO_TOO_LARGE;
    uint8_t tmp[2 + 10 + 2 + 10];
    size_t hl = 0;
    if (state != VREV_CONTROL_ACTIVE) {
        tmp[hl++] = (FIELD_STATE << 3) | WT_VARINT;
        hl += put_varint(tmp + hl, (uint64_t)state);
    }
    if (random_len) {
        hl += put_varint(tmp + hl, (FIELD_RANDOM << 3) | WT_BYTES);
        hl += put_varint(tmp + hl, random_len);
    }
    if (hl + random_len > VREV_CONTROL_MAX)
        return VREV_ERR_PROTO_TOO_LARGE;
    if (cap < hl + random_len)
        return VREV_ERR_NOSPACE;
    memcpy(out, tmp, hl);
    if (random_len)
        memcpy(out + hl, random, random_len);
    return (int)(hl + random_len);
}

/* Skip the value of a field of wire type wt; returns bytes used or a negative error. */
static int skip_value(const uint8_t *p, size_t n, unsigned wt)
{
    uint64_t v;
    size_t used;
    switch (wt) {
    case WT_VARINT:
        used = vrev__varint_get(p, n, &v);
        return used ? (int)used : VREV_ERR_PROTO_VARINT;
    case WT_FIXED64:
        return n >= 8 ? 8 : VREV_ERR_PROTO_TRUNCATED;
    case WT_FIXED32:
        return n >= 4 ? 4 : VREV_ERR_PROTO_TRUNCATED;
    case WT_BYTES:
        used = vrev__varint_get(p, n, &v);
        if (!used)
            return VREV_ERR_PROTO_VARINT;
        if (v > n - used)
            return VREV_ERR_PROTO_TRUNCATED;
        return (int)(used + v);
    default:
        return VREV_ERR_PROTO_WIRETYPE; /* groups (3, 4) and 6, 7 */
    }
}

int vrev_control_decode(const uint8_t *msg, size_t len, int *state)
{
    if (!state || (len && !msg))
        return VREV_ERR_INVAL;
    if (len > VREV_CONTROL_MAX)
        return VREV_ERR_PROTO_TOO_LARGE;
    int st = VREV_CONTROL_ACTIVE;
    size_t i = 0;
    while (i < len) {
        uint64_t key;
        size_t used = vrev__varint_get(msg + i, len - i, &key);
        if (!used)
            return VREV_ERR_PROTO_VARINT;
        i += used;
        unsigned wt = (unsigned)(key & 7);
        if ((key >> 3) == 0)
            return VREV_ERR_PROTO_WIRETYPE;
        if ((key >> 3) == FIELD_STATE && wt == WT_VARINT) {
            uint64_t v;
            used = vrev__varint_get(msg + i, len - i, &v);
            if (!used)
                return VREV_ERR_PROTO_VARINT;
            /* proto3 enums are int32 on the wire; any nonzero value means "not active". */
            st = v > INT32_MAX ? INT32_MAX : (int)v;
            i += used;
            continue;
        }
        int r = skip_value(msg + i, len - i, wt);
        if (r < 0)
            return r;
        i += (size_t)r;
    }
    *state = st;
    return 0;
}

const char *vrev_control_state_name(int state)
{
    switch (state) {
    case VREV_CONTROL_ACTIVE:
        return "ACTIVE";
    case VREV_CONTROL_DRAIN:
        return "DRAIN";
    default:
        return "UNKNOWN";
    }
}
