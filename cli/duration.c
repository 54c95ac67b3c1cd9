/* Durations on the command line (--heartbeat, --dead-after): "500ms", "10s", "2m", or a plain
 * number of seconds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int vrev_cli_parse_duration_ms(const char *opt, const char *s, unsigned *ms)
{
    static const struct {
        const char *suffix;
        unsigned long long ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}};
    if (*s >= '0' && *s <= '9') { /* strtoull would take a sign or blanks */
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        for (size_t i = 0; !errno && i < sizeof(units) / sizeof(units[0]); i++) {
            if (!strcmp(end, units[i].suffix) && v <= VREV_CLI_DURATION_MAX_MS / units[i].ms) {
                *ms = (unsigned)(v * units[i].ms);
                return 0;
            }
        }
    }
    fprintf(stderr,
            "vrev: %s '%s': not a duration (500ms, 10s, 2m, or a number of seconds; at most "
            "%us)\n",
            opt, s, VREV_CLI_DURATION_MAX_MS / 1000);
    return -1;
}
