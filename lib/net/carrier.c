/* Carrier options kept by an inbound or an outbound (carrier_layer.h): one block holding the
 * pointer arrays and the strings, so that one free releases them. */
#include <string.h>

#include "carrier_layer.h"

struct sizer {
    size_t ptrs, chars;
};

static bool count(struct sizer *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!list || !list[i])
            return false;
        s->chars += strlen(list[i]) + 1;
    }
    s->ptrs += n;
    return true;
}

static const char *put(char **chars, const char *str, bool slash)
{
    char *start = *chars, *d = start;
    size_t n = strlen(str);
    if (slash)
        *d++ = '/';
    memcpy(d, str, n + 1);
    *chars = d + n + 1;
    return start;
}

static const char *const *put_list(const char ***ptrs, char **chars, const char *const *list,
                                   size_t n)
{
    const char **out = *ptrs;
    for (size_t i = 0; i < n; i++)
        out[i] = put(chars, list[i], false);
    *ptrs += n;
    return n ? out : NULL;
}

int vrev__carrier_set(vrev_ctx *ctx, struct vrev__carrier *c, const struct vrev__carrier_opts *src)
{
    if (!src || src->kind == VREV_CARRIER_TCP) {
        vrev__carrier_clear(ctx, c);
        return 0;
    }
    if (src->kind != VREV_CARRIER_WS && src->kind != VREV_CARRIER_H2)
        return VREV_ERR_INVAL;
    /* V2Ray's GetNormalizedPath: "" is "/", a path without its leading "/" gets one */
    const char *path = src->path && src->path[0] ? src->path : "/";
    bool slash = path[0] != '/';
    struct sizer s = {0, strlen(path) + 2};
    if (!count(&s, src->hosts, src->n_hosts) || !count(&s, src->header_names, src->n_headers) ||
        !count(&s, src->header_values, src->n_headers))
        return VREV_ERR_INVAL;
    void *mem = vrev__malloc(ctx, s.ptrs * sizeof(char *) + s.chars);
    if (!mem)
        return VREV_ERR_NOMEM;
    const char **ptrs = mem;
    char *chars = (char *)(ptrs + s.ptrs);
    vrev__carrier_clear(ctx, c);
    c->mem = mem;
    c->o = *src;
    c->o.path = put(&chars, path, slash);
    c->o.hosts = put_list(&ptrs, &chars, src->hosts, src->n_hosts);
    c->o.header_names = put_list(&ptrs, &chars, src->header_names, src->n_headers);
    c->o.header_values = put_list(&ptrs, &chars, src->header_values, src->n_headers);
    return 0;
}

void vrev__carrier_clear(vrev_ctx *ctx, struct vrev__carrier *c)
{
    vrev__free(ctx, c->mem);
    memset(c, 0, sizeof(*c));
}
