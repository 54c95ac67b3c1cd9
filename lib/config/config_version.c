/* The jansson version, for vrev_dependency_version() (lib/api): lib/config is the only user of
 * jansson. jansson_version_str() exists from jansson 2.13. */
#include <jansson.h>
#include <stdio.h>

#include "config/config.h"

int vrev__config_jansson_version(char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s", jansson_version_str());
}
