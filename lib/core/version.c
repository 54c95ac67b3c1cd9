/* The library's own version. What it runs on (vrev_crypto_backend, vrev_dependency_version)
 * is asked of the layers that use each library: lib/api/api_version.c. */
#include "vrev/version.h"

#define VREV_STR_(x) #x
#define VREV_STR(x) VREV_STR_(x)

unsigned vrev_version(void)
{
    return VREV_VERSION_NUMBER;
}

const char *vrev_version_string(void)
{
    return VREV_STR(VREV_VERSION_MAJOR) "." VREV_STR(VREV_VERSION_MINOR) "." VREV_STR(
        VREV_VERSION_PATCH);
}
