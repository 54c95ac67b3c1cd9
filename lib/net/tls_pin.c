/* Certificate pins (tls_pin.h): their text forms and the chain hash they are compared with. */
#include <stdio.h>
#include <string.h>

#include "core/base64.h"
#include "core/core.h"
#include "core/hex.h"
#include "crypto/crypto.h"
#include "tls_pin.h"

/* Go's StdEncoding, as V2Ray reads a pin: '=' padding, CR and LF ignored wherever they are,
 * the bits the padding leaves over need not be zero (Go's decoder is not Strict). */
int vrev__tls_pin_from_base64(const char *s, size_t len, uint8_t out[VREV__TLS_PIN_LEN])
{
    char text[VREV__TLS_PIN_B64_LEN];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            continue;
        if (n == sizeof(text))
            return VREV_ERR_INVAL;
        text[n++] = s[i];
    }
    uint8_t buf[VREV__TLS_PIN_LEN];
    int got = vrev__base64_decode(text, n, buf, sizeof(buf), true);
    if (got != VREV__TLS_PIN_LEN)
        return VREV_ERR_INVAL;
    memcpy(out, buf, sizeof(buf));
    return 0;
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
        int hi = vrev__hex_digit(s[2 * i]), lo = vrev__hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return VREV_ERR_INVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void vrev__tls_pin_base64(const uint8_t pin[VREV__TLS_PIN_LEN], char out[VREV__TLS_PIN_B64_LEN + 1])
{
    vrev__base64_encode(pin, VREV__TLS_PIN_LEN, out);
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
