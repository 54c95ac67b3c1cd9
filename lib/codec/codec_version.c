/* The versions of the carrier codecs' libraries, for vrev_dependency_version() (lib/api). */
#include <nghttp2/nghttp2.h>
#include <stdio.h>

#include "codec/h2.h"
#include "codec/ws.h"

int vrev__h2_nghttp2_version(char *buf, size_t cap)
{
    const nghttp2_info *info = nghttp2_version(0);
    return snprintf(buf, cap, "%s", info ? info->version_str : "");
}

int vrev__ws_wslay_version(char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s", "");
}
