/* One error table (include/vrev/error.h) drives both lookups. */
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
