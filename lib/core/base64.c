/* Base64 (RFC 4648, standard alphabet, with padding): the WebSocket handshake's keys, TLS pins
 * as V2Ray writes them. */
#include <string.h>

#include "base64.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void vrev__base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = '\0';
}

static int b64_value(char c)
{
    const char *at = c ? strchr(B64, c) : NULL;
    return at ? (int)(at - B64) : -1;
}

int vrev__base64_decode(const char *p, size_t n, uint8_t *out, size_t cap, bool any_spare_bits)
{
    if (n % 4 != 0)
        return VREV_ERR_INVAL;
    size_t pad = n == 0 ? 0 : (p[n - 1] == '=') + (n > 1 && p[n - 2] == '=');
    size_t len = n / 4 * 3 - pad;
    if (len > cap)
        return VREV_ERR_NOSPACE;
    if (len > (size_t)INT32_MAX)
        return VREV_ERR_INVAL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = (i + j >= n - pad) ? 0 : b64_value(p[i + j]);
            if (d < 0)
                return VREV_ERR_INVAL;
            v = v << 6 | (uint32_t)d;
        }
        uint8_t b[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        for (size_t j = 0; j < 3 && o < len; j++)
            out[o++] = b[j];
        /* the bits a padded group leaves over must be zero (one encoding per value) */
        if (!any_spare_bits && i + 4 == n && ((pad == 1 && b[2]) || (pad == 2 && (b[1] || b[2]))))
            return VREV_ERR_INVAL;
    }
    return (int)len;
}
