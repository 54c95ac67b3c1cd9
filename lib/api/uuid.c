/* vrev_uuid_new(): a fresh id for vrev_tunnel_opts_set_id() (and the CLI's `vrev uuid`). */
#include "core/hex.h"
#include "crypto/crypto.h"
#include "vrev/error.h"
#include "vrev/tunnel.h"

int vrev_uuid_new(char out[37])
{
    if (!out)
        return VREV_ERR_INVAL;
    uint8_t u[16];
    int rc = vrev__random_bytes(u, sizeof(u));
    if (rc < 0)
        return rc;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 (random) */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* the RFC 4122 variant */
    vrev__uuid_format(u, out);
    return 0;
}
