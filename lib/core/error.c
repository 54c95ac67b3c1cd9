/* One error table (include/vrev/error.h) drives both lookups; the error-detail convention. */
#include <stdio.h>

#include "core.h"
#include "vrev/error.h"

const char *vrev_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define VREV_ERR_MSG_(name, value, msg)                                                            \
    case value:                                                                                    \
        return msg;
        VREV_ERRNO_MAP(VREV_ERR_MSG_)
#undef VREV_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *vrev_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define VREV_ERR_NAME_(name, value, msg)                                                           \
    case value:                                                                                    \
        return #name;
        VREV_ERRNO_MAP(VREV_ERR_NAME_)
#undef VREV_ERR_NAME_
    default:
        return "UNKNOWN";
    }
}

void vrev__err_begin(char *err, size_t len)
{
    if (err && len)
        err[0] = '\0';
}

int vrev__err_end(int rc, char *err, size_t len)
{
    if (!err || !len)
        return rc;
    if (rc >= 0)
        err[0] = '\0';
    else if (!err[0])
        snprintf(err, len, "%s", vrev_strerror(rc));
    err[len - 1] = '\0'; /* whatever wrote it, a string */
    return rc;
}
