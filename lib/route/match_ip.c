/* IP conditions (`ip`, `source`): CIDR "a.b.c.d/n", "x::/n", or a bare IP (/32, /128).
 *
 * The host part is read by vrev__addr_from_text(), the reader the codecs use, so brackets are
 * accepted ("[::1]/128") and an IPv4-mapped IPv6 address becomes IPv4, like V2Ray's
 * net.ParseAddress. A mapped address with a prefix is taken relative to the IPv6 form
 * ("::ffff:10.0.0.0/104" = 10.0.0.0/8); V2Ray would reject a prefix above 32 there, and a
 * mapped prefix below /96 is rejected here as it would cover non-mapped IPv6 space too.
 * Each CIDR becomes a [lo, hi] interval; the intervals of one condition are sorted and merged
 * per family, and a lookup is a binary search.
 */
#include <stdlib.h>
#include <string.h>

#include "route_internal.h"

struct cidr {
    bool v6;
    uint8_t ip[16];
    unsigned prefix;
};

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int parse_prefix(const char *s, unsigned *out)
{
    unsigned v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1000)
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return 0;
}

static int ip_fail(const struct vrev__route_build *b, const char *field, const char *v,
                   const char *why)
{
    return vrev__route_fail(b, VREV_ERR_INVAL, "%s \"%s\": %s", field, v, why);
}

static int parse_cidr(const struct vrev__route_build *b, const char *field, const char *v,
                      struct cidr *c)
{
    const char *slash = strchr(v, '/');
    size_t hostlen = slash ? (size_t)(slash - v) : strlen(v);
    char host[64];
    struct vrev__addr a;
    if (hostlen == 0 || hostlen >= sizeof(host))
        return ip_fail(b, field, v, "not an IP address or CIDR");
    memcpy(host, v, hostlen);
    host[hostlen] = '\0';
    if (vrev__addr_from_text(&a, host, 0) < 0 || a.type == VREV_ADDR_DOMAIN)
        return ip_fail(b, field, v, "not an IP address or CIDR");
    c->v6 = a.type == VREV_ADDR_IPV6;
    memcpy(c->ip, a.host, c->v6 ? 16 : 4);
    unsigned max = c->v6 ? 128 : 32;
    c->prefix = max;
    if (!slash)
        return 0;
    if (parse_prefix(slash + 1, &c->prefix) < 0)
        return ip_fail(b, field, v, "the prefix length is not a number");
    if (!c->v6 && memchr(host, ':', hostlen)) {
        if (c->prefix < 96 || c->prefix > 128)
            return ip_fail(b, field, v, "an IPv4-mapped prefix must be /96../128");
        c->prefix -= 96;
    } else if (c->prefix > max) {
        return ip_fail(b, field, v, c->v6 ? "prefix length above 128" : "prefix length above 32");
    }
    return 0;
}

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t load64(const uint8_t *p)
{
    return (uint64_t)load32(p) << 32 | load32(p + 4);
}

/* The top `bits` bits set (bits 0..width). */
static uint64_t top_mask(unsigned bits, unsigned width)
{
    if (bits == 0)
        return 0;
    uint64_t all = width == 64 ? UINT64_MAX : ((uint64_t)1 << width) - 1;
    return (all << (width - bits)) & all;
}

static struct vrev__range4 range4(const struct cidr *c)
{
    uint32_t ip = load32(c->ip), mask = (uint32_t)top_mask(c->prefix, 32);
    struct vrev__range4 r = {ip & mask, ip | ~mask};
    return r;
}

static struct vrev__range6 range6(const struct cidr *c)
{
    unsigned p = c->prefix;
    uint64_t mhi = top_mask(p > 64 ? 64 : p, 64), mlo = top_mask(p > 64 ? p - 64 : 0, 64);
    uint64_t hi = load64(c->ip), lo = load64(c->ip + 8);
    struct vrev__range6 r = {{hi & mhi, lo & mlo}, {hi | ~mhi, lo | ~mlo}};
    return r;
}

static int cmp6(const struct vrev__ip6 *a, const struct vrev__ip6 *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

static int range4_cmp(const void *pa, const void *pb)
{
    const struct vrev__range4 *a = pa, *b = pb;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static int range6_cmp(const void *pa, const void *pb)
{
    const struct vrev__range6 *a = pa, *b = pb;
    return cmp6(&a->lo, &b->lo);
}

/* Sort, then merge overlapping or adjacent intervals in place; returns the new count. */
static size_t merge4(struct vrev__range4 *r, size_t n)
{
    if (n < 2)
        return n;
    qsort(r, n, sizeof(*r), range4_cmp);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (r[k].hi == UINT32_MAX || r[i].lo <= r[k].hi + 1) {
            if (r[i].hi > r[k].hi)
                r[k].hi = r[i].hi;
        } else {
            r[++k] = r[i];
        }
    }
    return k + 1;
}

/* True if b starts at or before a's end + 1. */
static bool touches6(const struct vrev__ip6 *a_hi, const struct vrev__ip6 *b_lo)
{
    if (a_hi->hi == UINT64_MAX && a_hi->lo == UINT64_MAX)
        return true;
    struct vrev__ip6 next = {a_hi->lo == UINT64_MAX ? a_hi->hi + 1 : a_hi->hi, a_hi->lo + 1};
    return cmp6(b_lo, &next) <= 0;
}

static size_t merge6(struct vrev__range6 *r, size_t n)
{
    if (n < 2)
        return n;
    qsort(r, n, sizeof(*r), range6_cmp);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (touches6(&r[k].hi, &r[i].lo)) {
            if (cmp6(&r[i].hi, &r[k].hi) > 0)
                r[k].hi = r[i].hi;
        } else {
            r[++k] = r[i];
        }
    }
    return k + 1;
}

static int check_value(const struct vrev__route_build *b, const char *field, const char *v)
{
    static const char *const data_prefixes[] = {"geoip:", "ext:", "ext-ip:"};
    if (!v)
        return vrev__route_fail(b, VREV_ERR_INVAL, "%s: null value", field);
    for (size_t i = 0; i < sizeof(data_prefixes) / sizeof(data_prefixes[0]); i++)
        if (strncmp(v, data_prefixes[i], strlen(data_prefixes[i])) == 0)
            return vrev__route_fail(b, VREV_ERR_UNSUPPORTED,
                                    "%s \"%s\": geoip/geosite data files are not supported", field,
                                    v);
    return 0;
}

int vrev__ip_set_build(const struct vrev__route_build *b, const char *field,
                       const struct vrev__strlist *values, struct vrev__ip_set **out)
{
    struct vrev__ip_set *s = vrev__arena_calloc(b->arena, 1, sizeof(*s));
    if (!s || !(s->v4 = vrev__arena_calloc(b->arena, values->n, sizeof(*s->v4))) ||
        !(s->v6 = vrev__arena_calloc(b->arena, values->n, sizeof(*s->v6))))
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < values->n; i++) {
        struct cidr c;
        int rc = check_value(b, field, values->v[i]);
        if (rc == 0)
            rc = parse_cidr(b, field, values->v[i], &c);
        if (rc < 0)
            return rc;
        if (c.v6)
            s->v6[s->n6++] = range6(&c);
        else
            s->v4[s->n4++] = range4(&c);
    }
    s->n4 = merge4(s->v4, s->n4);
    s->n6 = merge6(s->v6, s->n6);
    *out = s;
    return 0;
}

static bool has4(const struct vrev__ip_set *s, uint32_t ip)
{
    size_t lo = 0, hi = s->n4;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v4[mid].lo <= ip)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && ip <= s->v4[lo - 1].hi;
}

static bool has6(const struct vrev__ip_set *s, const struct vrev__ip6 *ip)
{
    size_t lo = 0, hi = s->n6;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp6(&s->v6[mid].lo, ip) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && cmp6(ip, &s->v6[lo - 1].hi) <= 0;
}

bool vrev__ip_set_has(const struct vrev__ip_set *s, const struct vrev__addr *a)
{
    if (a->type == VREV_ADDR_IPV4)
        return has4(s, load32(a->host));
    if (a->type != VREV_ADDR_IPV6)
        return false;
    /* The codecs normalise mapped addresses already; a hand-built one is handled the same. */
    if (memcmp(a->host, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0)
        return has4(s, load32(a->host + 12));
    struct vrev__ip6 ip = {load64(a->host), load64(a->host + 8)};
    return has6(s, &ip);
}
