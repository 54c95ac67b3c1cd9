/* Base64 (RFC 4648, standard alphabet, with padding). */
#ifndef VREV_CORE_BASE64_H
#define VREV_CORE_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* Encode in[0..n) into out (4 * ceil(n / 3) characters and a NUL). */
void vrev__base64_encode(const uint8_t *in, size_t n, char *out);

/* Decode p[0..n) (padded, no whitespace) into out[0..cap). Returns the decoded length,
 * VREV_ERR_INVAL (not base64: bad character, length or padding; or, unless any_spare_bits,
 * non-zero bits left over by the padding, which Go's lenient decoder accepts) or
 * VREV_ERR_NOSPACE. */
int vrev__base64_decode(const char *p, size_t n, uint8_t *out, size_t cap, bool any_spare_bits);

#endif
