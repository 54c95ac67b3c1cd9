/* --limit NAME=VALUE (portal, bridge, run) and `vrev limits`: the context's resource limits
 * (vrev_limit_info, vrev_ctx_set_limit) from the command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Every limit's name, comma-separated, for messages. */
static void all_names(char *buf, size_t cap)
{
    size_t n = 0;
    const char *name;
    buf[0] = '\0';
    for (size_t i = 0; (name = vrev_limit_info(i, NULL, NULL, NULL, NULL)); i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", name);
        if (w < 0 || (size_t)w >= cap - n)
            return;
        n += (size_t)w;
    }
}

/* Decimal digits with an optional binary suffix: k (KiB), m (MiB), g (GiB). */
static int parse_value(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (errno || (shift && end[1]) || (!shift && *end) || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int vrev_cli_limit_add(struct vrev_cli_limits *l, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char name[64], names[512];
    uint64_t value, lo, hi;
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(name)) {
        fprintf(stderr, "vrev: --limit '%s': need NAME=VALUE (vrev limits lists them)\n", arg);
        return -1;
    }
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    const char *known;
    for (size_t i = 0; (known = vrev_limit_info(i, NULL, &lo, &hi, NULL)); i++)
        if (!strcmp(known, name))
            break;
    if (!known) {
        all_names(names, sizeof(names));
        fprintf(stderr, "vrev: --limit %s: no limit is named '%s'; the limits are: %s\n", arg, name,
                names);
        return -1;
    }
    if (parse_value(eq + 1, &value) < 0 || value < lo || value > hi) {
        fprintf(stderr,
                "vrev: --limit %s: %s must be a whole number from %llu to %llu (a k, m or g "
                "suffix multiplies by 1024, 1024^2, 1024^3)\n",
                arg, known, (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    if (l->n >= VREV_CLI_LIMITS_MAX) {
        fprintf(stderr, "vrev: --limit: at most %d of them\n", VREV_CLI_LIMITS_MAX);
        return -1;
    }
    l->v[l->n].name = known;
    l->v[l->n].value = value;
    l->n++;
    return 0;
}

int vrev_cli_limits_apply(const struct vrev_cli_limits *l, vrev_ctx *ctx)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc = vrev_ctx_set_limit(ctx, l->v[i].name, l->v[i].value);
        if (rc < 0) { /* checked when parsed: not expected */
            fprintf(stderr, "vrev: --limit %s: %s\n", l->v[i].name, vrev_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int vrev_cli_limits(int argc, char **argv)
{
    if (argc > 1) {
        int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr, "usage: vrev limits\n  print the resource limits: name, "
                                        "default, range, meaning\n");
        return help ? 0 : 2;
    }
    uint64_t def, lo, hi;
    const char *name, *what;
    printf("%-18s %10s  %-31s %s\n", "NAME", "DEFAULT", "RANGE", "MEANING");
    for (size_t i = 0; (name = vrev_limit_info(i, &def, &lo, &hi, &what)); i++) {
        char range[48];
        snprintf(range, sizeof(range), "%llu..%llu", (unsigned long long)lo,
                 (unsigned long long)hi);
        printf("%-18s %10llu  %-31s %s\n", name, (unsigned long long)def, range, what);
    }
    printf("\nSet with --limit NAME=VALUE (vrev portal, bridge, run; a k, m or g suffix multiplies"
           "\nby 1024, 1024^2, 1024^3), or in a JSON configuration: \"vrev\": {\"limits\": "
           "{\"NAME\": VALUE}}.\n");
    return 0;
}
