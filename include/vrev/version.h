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

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the linked library as VREV_VERSION_NUMBER (compare it with the macro to
 *  detect a header/library mismatch). Thread-safe. */
VREV_API unsigned vrev_version(void);

/** The version of the linked library as "MAJOR.MINOR.PATCH". Static string. Thread-safe. */
VREV_API const char *vrev_version_string(void);

/** The crypto backend the library was built with: "openssl" or "mbedtls". Static string. */
VREV_API const char *vrev_crypto_backend(void);

#ifdef __cplusplus
}
#endif
#endif
