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

const char *vrev_crypto_backend(void)
{
#if defined(VREV_CRYPTO_OPENSSL)
    return "openssl";
#elif defined(VREV_CRYPTO_MBEDTLS)
    return "mbedtls";
#else
#error "build with -DVREV_CRYPTO_OPENSSL or -DVREV_CRYPTO_MBEDTLS"
#endif
}
