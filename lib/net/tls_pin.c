/* Certificate pins (tls_pin.h): their text forms and the chain hash they are compared with. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "crypto/crypto.h"
#include "tls_pin.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Go's StdEncoding: groups of four characters, '=' padding only in the last group, CR and LF
 * ignored wherever they are. Trailing bits need not be zero (Go's decoder is not Strict). */
int vrev__tls_pin_from_base64(const char *s, size_t len, uint8_t out[VREV__TLS_PIN_LEN])
{
    int quad[4];
    size_t q = 0, n = 0;
    bool ended = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            continue;
        if (ended)
            return VREV_ERR_INVAL; /* anything after the padded group */
        int v = s[i] == '=' ? 64 : b64_value(s[i]);
        if (v < 0 || (v == 64 && q < 2) || (q == 3 && quad[2] == 64 && v != 64))
            return VREV_ERR_INVAL;
        quad[q++] = v;
        if (q < 4)
            continue;
        int bytes = quad[2] == 64 ? 1 : quad[3] == 64 ? 2 : 3;
        uint32_t bits = (uint32_t)quad[0] << 18 | (uint32_t)quad[1] << 12 |
                        (uint32_t)(quad[2] & 63) << 6 | (uint32_t)(quad[3] & 63);
        for (int k = 0; k < bytes; k++) {
            if (n >= VREV__TLS_PIN_LEN)
                return VREV_ERR_INVAL;
            out[n++] = (uint8_t)(bits >> (16 - 8 * k));
        }
        ended = bytes < 3;
        q = 0;
    }
    return q == 0 && n == VREV__TLS_PIN_LEN ? 0 : VREV_ERR_INVAL;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int vrev__tls_pin_parse(const char *s, uint8_t out[VREV__TLS_PIN_LEN])
{
    static const char prefix[] = "sha256:";
    if (!s || strncmp(s, prefix, sizeof(prefix) - 1))
        return VREV_ERR_INVAL;
    s += sizeof(prefix) - 1;
    size_t len = strlen(s);
    if (len != 2 * VREV__TLS_PIN_LEN)
        return vrev__tls_pin_from_base64(s, len, out);
    for (size_t i = 0; i < VREV__TLS_PIN_LEN; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return VREV_ERR_INVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void vrev__tls_pin_base64(const uint8_t pin[VREV__TLS_PIN_LEN], char out[VREV__TLS_PIN_B64_LEN + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < VREV__TLS_PIN_LEN; i += 3) {
        size_t left = VREV__TLS_PIN_LEN - i;
        uint32_t bits = (uint32_t)pin[i] << 16 | (left > 1 ? (uint32_t)pin[i + 1] << 8 : 0) |
                        (left > 2 ? pin[i + 2] : 0);
        out[o++] = b64[bits >> 18 & 63];
        out[o++] = b64[bits >> 12 & 63];
        out[o++] = left > 1 ? b64[bits >> 6 & 63] : '=';
        out[o++] = left > 2 ? b64[bits & 63] : '=';
    }
    out[o] = '\0';
}

void vrev__tls_chain_hash_init(struct vrev__tls_chain_hash *c)
{
    memset(c, 0, sizeof(*c));
}

int vrev__tls_chain_hash_add(struct vrev__tls_chain_hash *c, const uint8_t *der, size_t len)
{
    uint8_t d[VREV__TLS_PIN_LEN];
    struct vrev__iov one = {der, len};
    int rc = vrev__sha256(&one, 1, d);
    if (rc == 0 && c->n == 0) {
        memcpy(c->h, d, sizeof(d));
    } else if (rc == 0) {
        struct vrev__iov two[2] = {{c->h, sizeof(c->h)}, {d, sizeof(d)}};
        rc = vrev__sha256(two, 2, c->h);
    }
    if (rc == 0)
        c->n++;
    return rc;
}

bool vrev__tls_pin_check(const struct vrev__tls_chain_hash *c,
                         const uint8_t (*pins)[VREV__TLS_PIN_LEN], size_t n, char *err,
                         size_t err_len)
{
    bool match = false;
    for (size_t i = 0; c->n && i < n; i++)
        match |= vrev__ct_equal(c->h, pins[i], VREV__TLS_PIN_LEN);
    if (!match && err && err_len) {
        char text[VREV__TLS_PIN_B64_LEN + 1];
        vrev__tls_pin_base64(c->h, text);
        if (c->n)
            snprintf(err, err_len,
                     "certificate pin mismatch: the server's chain (%zu certificate%s) is "
                     "sha256:%s, which is not pinned",
                     c->n, c->n == 1 ? "" : "s", text);
        else
            snprintf(err, err_len, "certificate pin mismatch: the server sent no certificate");
    }
    return match;
}
