/* The table of resource limits (limits.h) and the context's API to it (vrev/ctx.h). */
#include <stdio.h>
#include <string.h>

#include "core.h"

struct limit_def {
    const char *name;
    size_t offset;
    uint64_t def, lo, hi;
    const char *what;
};

static const struct limit_def defs[] = {
#define VREV__LIMIT_DEF(f, n, d, lo, hi, w)                                                        \
    {n, offsetof(struct vrev__limits, f), (uint64_t)(d), (uint64_t)(lo), (uint64_t)(hi), w},
    VREV__LIMITS(VREV__LIMIT_DEF)
#undef VREV__LIMIT_DEF
};

#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

static uint64_t *field(struct vrev__limits *l, const struct limit_def *d)
{
    return (uint64_t *)((char *)l + d->offset);
}

static const struct limit_def *find(const char *name)
{
    for (size_t i = 0; name && i < N_DEFS; i++)
        if (!strcmp(defs[i].name, name))
            return &defs[i];
    return NULL;
}

void vrev__limits_default(struct vrev__limits *l)
{
    for (size_t i = 0; i < N_DEFS; i++)
        *field(l, &defs[i]) = defs[i].def;
}

int vrev__limits_set(struct vrev__limits *l, const char *name, uint64_t value, char *err,
                     size_t err_len)
{
    const struct limit_def *d = find(name);
    if (!d) {
        if (err && err_len)
            snprintf(err, err_len, "no limit is named \"%.64s\"", name ? name : "");
        return VREV_ERR_INVAL;
    }
    if (value < d->lo || value > d->hi) {
        if (err && err_len)
            snprintf(err, err_len, "limit %s must be from %llu to %llu", d->name,
                     (unsigned long long)d->lo, (unsigned long long)d->hi);
        return VREV_ERR_RANGE;
    }
    *field(l, d) = value;
    return 0;
}

int vrev__limits_get(const struct vrev__limits *l, const char *name, uint64_t *value)
{
    const struct limit_def *d = find(name);
    if (!d || !value)
        return VREV_ERR_INVAL;
    *value = *field((struct vrev__limits *)l, d);
    return 0;
}

int vrev_ctx_set_limit(vrev_ctx *ctx, const char *name, uint64_t value)
{
    return ctx ? vrev__limits_set(&ctx->limits, name, value, NULL, 0) : VREV_ERR_INVAL;
}

int vrev_ctx_get_limit(const vrev_ctx *ctx, const char *name, uint64_t *value)
{
    return ctx ? vrev__limits_get(&ctx->limits, name, value) : VREV_ERR_INVAL;
}

const char *vrev_limit_info(size_t i, uint64_t *def, uint64_t *lo, uint64_t *hi, const char **what)
{
    if (i >= N_DEFS)
        return NULL;
    if (def)
        *def = defs[i].def;
    if (lo)
        *lo = defs[i].lo;
    if (hi)
        *hi = defs[i].hi;
    if (what)
        *what = defs[i].what;
    return defs[i].name;
}
