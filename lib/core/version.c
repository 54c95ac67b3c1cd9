#include "crypto/crypto.h"
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
    return vrev__crypto_backend_name();
}
