#include <string.h>

#include "packet.h"

int vrev__packet_put(struct evbuffer *out, const uint8_t *p, size_t n)
{
    if (n > VREV_PACKET_MAX)
        return -1;
    /* One add: whoever watches `out` (a filter's output callback) never sees a datagram's
     * length without its bytes. */
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(2 + n), &vec, 1) < 1)
        return -1;
    uint8_t *dst = vec.iov_base;
    dst[0] = (uint8_t)(n >> 8);
    dst[1] = (uint8_t)n;
    if (n)
        memcpy(dst + 2, p, n);
    vec.iov_len = 2 + n;
    return evbuffer_commit_space(out, &vec, 1) == 0 ? 0 : -1;
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
