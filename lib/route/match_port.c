/* Port lists: "80", "1000-2000", "53, 443 ,1000-2000" (V2Ray's PortList string form).
 *
 * Items are separated by ',' and trimmed; empty items are skipped, so "" is a list with no
 * port at all, which V2Ray accepts as a condition that never matches. Each item is a decimal
 * port 0..65535 or "a-b" with a <= b (the ends are trimmed too, which V2Ray does not do; we
 * accept "1000 - 2000" rather than reject it). Signs, hex, and anything else are errors.
 * The list is compiled into sorted, merged intervals and looked up by binary search.
 */
#include <stdlib.h>
#include <string.h>

#include "route_internal.h"

enum { PORT_OK = 0, PORT_SYNTAX = -1, PORT_RANGE = -2 };

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

static int parse_number(const char *s, size_t len, uint16_t *out)
{
    trim(&s, &len);
    if (len == 0)
        return PORT_SYNTAX;
    uint32_t v = 0;
    bool big = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PORT_SYNTAX;
        v = v * 10 + (uint32_t)(s[i] - '0');
        if (v > 65535) {
            big = true; /* keep scanning: "99999x" is a syntax error, not a range one */
            v = 65536;
        }
    }
    if (big)
        return PORT_RANGE;
    *out = (uint16_t)v;
    return PORT_OK;
}

static int item_fail(const struct vrev__route_build *b, const char *field, const char *text,
                     const char *item, size_t len, int why)
{
    return vrev__route_fail(b, VREV_ERR_INVAL,
                            why == PORT_RANGE ? "%s \"%s\": port in \"%.*s\" is out of 0..65535"
                                              : "%s \"%s\": \"%.*s\" is not a port or a range",
                            field, text, (int)len, item);
}

static int parse_item(const struct vrev__route_build *b, const char *field, const char *text,
                      const char *item, size_t len, struct vrev__range16 *out)
{
    const char *dash = memchr(item, '-', len);
    int rc;
    if (!dash) {
        rc = parse_number(item, len, &out->lo);
        out->hi = out->lo;
    } else {
        size_t left = (size_t)(dash - item);
        rc = parse_number(item, left, &out->lo);
        if (rc == PORT_OK)
            rc = parse_number(dash + 1, len - left - 1, &out->hi);
    }
    if (rc != PORT_OK)
        return item_fail(b, field, text, item, len, rc);
    if (out->lo > out->hi)
        return vrev__route_fail(b, VREV_ERR_INVAL,
                                "%s \"%s\": range \"%.*s\" ends before it starts", field, text,
                                (int)len, item);
    return 0;
}

static int range_cmp(const void *pa, const void *pb)
{
    const struct vrev__range16 *a = pa, *b = pb;
    return (int)a->lo - (int)b->lo;
}

/* Sort and merge overlapping or adjacent ranges in place; returns the new count. */
static size_t merge(struct vrev__range16 *r, size_t n)
{
    if (n < 2)
        return n;
    qsort(r, n, sizeof(*r), range_cmp);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if ((uint32_t)r[i].lo <= (uint32_t)r[k].hi + 1) {
            if (r[i].hi > r[k].hi)
                r[k].hi = r[i].hi;
        } else {
            r[++k] = r[i];
        }
    }
    return k + 1;
}

int vrev__port_set_build(const struct vrev__route_build *b, const char *field, const char *text,
                         struct vrev__port_set **out)
{
    size_t items = 1;
    for (const char *p = text; *p; p++)
        items += *p == ',';
    struct vrev__port_set *s = vrev__arena_calloc(b->arena, 1, sizeof(*s));
    if (!s || !(s->r = vrev__arena_calloc(b->arena, items, sizeof(*s->r))))
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        trim(&item, &len);
        if (len) {
            int rc = parse_item(b, field, text, item, len, &s->r[s->n]);
            if (rc < 0)
                return rc;
            s->n++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    s->n = merge(s->r, s->n);
    if (s->n == 0)
        vrev__log(b->arena->ctx, VREV_LOG_WARN, "router",
                  "%s \"%s\" lists no port; the rule can never match", field, text);
    *out = s;
    return 0;
}

bool vrev__port_set_has(const struct vrev__port_set *s, uint16_t port)
{
    size_t lo = 0, hi = s->n;
    /* Find the first range starting after port; the one before it may contain port. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].lo <= port)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && port <= s->r[lo - 1].hi;
}
