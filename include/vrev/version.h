/* libvrev version: the single place the version is defined.
 * The Makefile reads VREV_VERSION_MAJOR/MINOR/PATCH from this file. */
#ifndef VREV_VERSION_H
#define VREV_VERSION_H

#define VREV_VERSION_MAJOR 0
#define VREV_VERSION_MINOR 1
#define VREV_VERSION_PATCH 0

/** The version as one number: major * 10000 + minor * 100 + patch. */
#define VREV_VERSION_NUMBER                                                                        \
    (VREV_VERSION_MAJOR * 10000 + VREV_VERSION_MINOR * 100 + VREV_VERSION_PATCH)

#include <stddef.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the linked library as VREV_VERSION_NUMBER (compare it with the macro to
 *  detect a header/library mismatch). Thread-safe. */
VREV_API unsigned vrev_version(void);

/** The version of the linked library as "MAJOR.MINOR.PATCH". Static string. Thread-safe. */
VREV_API const char *vrev_version_string(void);

/** The crypto backend the library was built with: "openssl" or "mbedtls" (TLS uses the same
 *  library). Static string. Thread-safe. */
VREV_API const char *vrev_crypto_backend(void);

/** The libraries the linked libvrev runs on, one per index: call with i = 0, 1, ... until it
 *  returns VREV_ERR_RANGE. In order: "crypto/TLS" (the backend: OpenSSL or mbed TLS, as the
 *  library names itself, e.g. "OpenSSL 3.0.19 27 Jan 2026" or "mbed TLS 2.28.3"), "libevent",
 *  "jansson", "nghttp2", "wslay".
 *  @param i     the index
 *  @param name  if not NULL, receives the entry's name (a static string)
 *  @param buf   receives the version the library reports at run time, NUL-terminated and cut
 *               to cap - 1 bytes; "" for a library that has no way to tell it (wslay). May be
 *               NULL if cap is 0.
 *  @return the length of the whole version text (as snprintf: cap or more means it was cut),
 *          VREV_ERR_RANGE past the last entry, VREV_ERR_INVAL for a NULL buf with cap > 0.
 *  Thread-safe. */
VREV_API int vrev_dependency_version(unsigned i, const char **name, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
