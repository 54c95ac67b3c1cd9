/* vrev_crypto_backend() and vrev_dependency_version(): each library's version comes from the
 * layer that uses it (crypto, net, config, codec), so that this top layer is the only place
 * that knows them all. */
#include "codec/h2.h"
#include "codec/ws.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "net/net.h"
#include "vrev/error.h"
#include "vrev/version.h"

const char *vrev_crypto_backend(void)
{
    return vrev__crypto_backend_name();
}

int vrev_dependency_version(unsigned i, const char **name, char *buf, size_t cap)
{
    static const struct {
        const char *name;
        int (*version)(char *buf, size_t cap);
    } deps[] = {
        {"crypto/TLS", vrev__crypto_backend_version},
        {"libevent", vrev__net_libevent_version},
        {"jansson", vrev__config_jansson_version},
        {"nghttp2", vrev__h2_nghttp2_version},
        {"wslay", vrev__ws_wslay_version},
    };
    if (i >= sizeof(deps) / sizeof(deps[0]))
        return VREV_ERR_RANGE;
    if (!buf && cap)
        return VREV_ERR_INVAL;
    if (name)
        *name = deps[i].name;
    return deps[i].version(buf, cap);
}
