/* Protobuf base-128 varints (little-endian groups of 7 bits), shared by the hand-written
 * protobuf readers (reverse Control, VLESS addons). */
#ifndef VREV_CODEC_VARINT_H
#define VREV_CODEC_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Read a varint of at most 10 bytes from p[0..n). Returns the bytes used, or 0 if it is
 * malformed (over 10 bytes, or past 64 bits) or cut short. */
static inline size_t vrev__varint_get(const uint8_t *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        if (i == 9 && p[i] > 1)
            return 0; /* would overflow 64 bits */
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

#endif
