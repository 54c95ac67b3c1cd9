#include "packet.h"

int vrev__packet_put(struct evbuffer *out, const uint8_t *p, size_t n)
{
    if (n > VREV_PACKET_MAX)
        return -1;
    uint8_t hdr[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    if (evbuffer_add(out, hdr, 2) < 0 || evbuffer_add(out, p, n) < 0)
        return -1;
    return 0;
}

int vrev__packet_take(struct evbuffer *in, uint8_t *buf, size_t cap, size_t *n)
{
    uint8_t hdr[2];
    for (;;) {
        if (evbuffer_copyout(in, hdr, 2) != 2)
            return 0;
        size_t len = (size_t)hdr[0] << 8 | hdr[1];
        if (evbuffer_get_length(in) < 2 + len)
            return 0;
        evbuffer_drain(in, 2);
        if (len > cap) { /* too large for the caller: dropped, as oversized UDP is */
            evbuffer_drain(in, len);
            continue;
        }
        evbuffer_remove(in, buf, len);
        *n = len;
        return 1;
    }
}
