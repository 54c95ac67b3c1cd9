/* Shared definitions for the libvrev public headers. */
#ifndef VREV_COMMON_H
#define VREV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define VREV_API
#elif defined(__GNUC__) || defined(__clang__)
#define VREV_API __attribute__((visibility("default")))
#else
#define VREV_API
#endif

#endif
