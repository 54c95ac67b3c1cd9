/* The libevent version, for vrev_dependency_version() (lib/api): only lib/net includes
 * libevent headers. */
#include <stdio.h>

#include "net/net.h"

int vrev__net_libevent_version(char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s", event_get_version());
}
