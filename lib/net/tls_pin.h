/* Certificate pinning as V2Ray reads tlsSettings.pinnedPeerCertificateChainSha256 (v2fly
 * 4.38 onwards; 4.34 does not know the key and ignores it, so a 4.34 client does not pin).
 *
 * What is hashed (transport/internet/tls/pin.go there, GenerateCertChainHash): the server's
 * chain as it sent it, certificate by certificate in the order sent (its own first), DER:
 *
 *     h = SHA-256(der[0]);  for i >= 1: h = SHA-256(h || SHA-256(der[i]))
 *
 * so for a server that sends its certificate alone, the pin is the SHA-256 of that
 * certificate's DER. The pin is written as standard base64 with padding (Go's
 * base64.StdEncoding: 44 characters for 32 bytes). V2Ray checks it after the usual
 * verification, and instead of it with allowInsecure (Go still calls VerifyPeerCertificate
 * then): so do we.
 */
#ifndef VREV_NET_TLS_PIN_H
#define VREV_NET_TLS_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VREV__TLS_PIN_LEN 32
#define VREV__TLS_PIN_B64_LEN 44 /* without the NUL */

/* s[0..len) as Go's base64.StdEncoding.DecodeString reads it (padding required; CR and LF
 * skipped), decoding to exactly 32 bytes. Returns 0 or VREV_ERR_INVAL. */
int vrev__tls_pin_from_base64(const char *s, size_t len, uint8_t out[VREV__TLS_PIN_LEN]);
/* The command line's form: "sha256:" then 64 hex digits or the base64 above. Returns 0 or
 * VREV_ERR_INVAL. */
int vrev__tls_pin_parse(const char *s, uint8_t out[VREV__TLS_PIN_LEN]);
/* Standard base64 with padding, NUL-terminated. */
void vrev__tls_pin_base64(const uint8_t pin[VREV__TLS_PIN_LEN],
                          char out[VREV__TLS_PIN_B64_LEN + 1]);

/* The chain hash, one certificate (DER) at a time in the order the peer sent them. */
struct vrev__tls_chain_hash {
    uint8_t h[VREV__TLS_PIN_LEN];
    size_t n; /* certificates added */
};
void vrev__tls_chain_hash_init(struct vrev__tls_chain_hash *c);
int vrev__tls_chain_hash_add(struct vrev__tls_chain_hash *c, const uint8_t *der, size_t len);

/* Whether the finished hash equals one of the n pins (each compared in constant time). With
 * no match, a one-line reason naming the chain's own pin (public: it is a hash of the
 * certificates the server shows everyone) goes to err. */
bool vrev__tls_pin_check(const struct vrev__tls_chain_hash *c,
                         const uint8_t (*pins)[VREV__TLS_PIN_LEN], size_t n, char *err,
                         size_t err_len);

#endif
