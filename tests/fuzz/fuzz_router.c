/* F8: the router's rule compiler and matchers.
 *
 * Input: rule lines, a NUL byte, target lines (without a NUL: the first half is rules and the
 * second half targets). A rule line "p <list>" sets the port list, "i <value>" adds an ip
 * value, a line starting "regexp:" or "dotless:" goes to a regex rule, any other line is a
 * domain value. The rules are added in the order domain, ip, port, regex (outbounds 1..4).
 * A target line is "host" or "host port".
 *
 * Oracles: a naive reference written here, independently of lib/route, for full:, domain:,
 * keyword:, plain values, CIDRs and port lists decides which of the first three rules
 * matches; the router must agree, and must accept or reject the domain and port rules exactly
 * when the reference does. The RE2 translator must never run out of its computed buffer.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route_internal.h"
#include "route/router.h"

#define MAX_VALUES 64
#define MAX_LINE 300

struct values {
    const char *v[MAX_VALUES];
    size_t n;
};

struct input {
    char text[2][4096]; /* NUL-separated lines of each half */
    struct values domains, ips, regexes, targets;
    const char *ports;
};

/* --- input splitting --------------------------------------------------------------------- */

static void push(struct values *vs, const char *s)
{
    if (vs->n < MAX_VALUES)
        vs->v[vs->n++] = s;
}

/* Copy data into buf as NUL-terminated lines (a NUL inside a line ends it early). */
static size_t split_lines(const uint8_t *data, size_t size, char *buf, size_t cap,
                          const char **lines, size_t max)
{
    size_t n = 0, w = 0, start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t len = i - start;
        if (len > MAX_LINE)
            len = MAX_LINE;
        if (w + len + 1 > cap)
            break;
        memcpy(buf + w, data + start, len);
        buf[w + len] = '\0';
        lines[n++] = buf + w;
        w += len + 1;
        start = i + 1;
    }
    return n;
}

static void parse_input(struct input *in, const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t half = nul ? (size_t)(nul - data) : size / 2;
    size_t rest = nul ? half + 1 : half;
    const char *lines[MAX_VALUES * 4];
    size_t n = split_lines(data, half, in->text[0], sizeof(in->text[0]), lines, MAX_VALUES * 4);
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i];
        if (l[0] == 'p' && l[1] == ' ')
            in->ports = l + 2;
        else if (l[0] == 'i' && l[1] == ' ')
            push(&in->ips, l + 2);
        else if (strncmp(l, "regexp:", 7) == 0 || strncmp(l, "dotless:", 8) == 0)
            push(&in->regexes, l);
        else
            push(&in->domains, l);
    }
    in->targets.n = split_lines(data + rest, size - rest, in->text[1], sizeof(in->text[1]),
                                in->targets.v, MAX_VALUES);
}

/* --- the reference ----------------------------------------------------------------------- */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ref_domain_unsupported(const struct values *vs)
{
    static const char *const data[] = {"geosite:", "ext:", "ext-domain:", "geoip:", "ext-ip:"};
    for (size_t i = 0; i < vs->n; i++)
        for (size_t k = 0; k < sizeof(data) / sizeof(data[0]); k++)
            if (starts(vs->v[i], data[k]))
                return true;
    return false;
}

static bool ref_domain_one(const char *v, const char *name)
{
    size_t n = strlen(name);
    if (starts(v, "full:"))
        return strcmp(name, v + 5) == 0;
    if (starts(v, "domain:")) {
        const char *x = v + 7;
        size_t k = strlen(x);
        if (strcmp(name, x) == 0)
            return true;
        return n > k && strcmp(name + n - k, x) == 0 && name[n - k - 1] == '.';
    }
    if (starts(v, "keyword:"))
        v += 8;
    return strstr(name, v) != NULL;
}

static bool ref_domain(const struct values *vs, const char *name)
{
    for (size_t i = 0; i < vs->n; i++)
        if (ref_domain_one(vs->v[i], name))
            return true;
    return false;
}

struct ref_ports {
    uint32_t lo[512], hi[512];
    size_t n;
};

static bool blank(char c)
{
    return c && strchr(" \t\n\r\f\v", c);
}

/* A decimal port between s and end, blanks around it, leading zeros allowed. */
static bool ref_number(const char *s, const char *end, uint32_t *v)
{
    while (s < end && blank(*s))
        s++;
    while (end > s && blank(end[-1]))
        end--;
    while (end - s > 1 && *s == '0')
        s++;
    if (s == end || end - s > 5)
        return false;
    *v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        *v = *v * 10 + (uint32_t)(*s - '0');
    }
    return *v <= 65535;
}

static bool ref_parse_ports(const char *text, struct ref_ports *p)
{
    p->n = 0;
    for (const char *s = text;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *first = s;
        while (first < end && blank(*first))
            first++;
        if (first < end) {
            const char *dash = memchr(s, '-', (size_t)(end - s));
            uint32_t lo, hi;
            if (dash ? !(ref_number(s, dash, &lo) && ref_number(dash + 1, end, &hi))
                     : !ref_number(s, end, &lo))
                return false;
            if (!dash)
                hi = lo;
            if (lo > hi || p->n == 512)
                return false;
            p->lo[p->n] = lo;
            p->hi[p->n++] = hi;
        }
        if (!comma)
            return true;
        s = comma + 1;
    }
}

static bool ref_ports_has(const struct ref_ports *p, uint32_t port)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->lo[i] <= port && port <= p->hi[i])
            return true;
    return false;
}

struct ref_cidr {
    int family;
    uint8_t ip[16];
    unsigned prefix;
};

/* Only the plain forms: "a.b.c.d[/n]" and unbracketed, non-mapped IPv6 "x::y[/n]". */
static bool ref_parse_cidr(const char *v, struct ref_cidr *c)
{
    char host[64];
    const char *slash = strchr(v, '/');
    size_t len = slash ? (size_t)(slash - v) : strlen(v);
    if (len == 0 || len >= sizeof(host))
        return false;
    memcpy(host, v, len);
    host[len] = '\0';
    c->family = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(c->family, host, c->ip) != 1)
        return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family == AF_INET6 && memcmp(c->ip, mapped, 12) == 0)
        return false;
    unsigned max = c->family == AF_INET ? 32 : 128;
    c->prefix = max;
    if (!slash)
        return true;
    const char *p = slash + 1;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 3)
        return false;
    c->prefix = (unsigned)atoi(p);
    return c->prefix <= max;
}

static bool ref_cidr_has(const struct ref_cidr *c, const struct vrev__addr *a)
{
    if ((c->family == AF_INET) != (a->type == VREV_ADDR_IPV4) || a->type == VREV_ADDR_DOMAIN)
        return false;
    for (unsigned bit = 0; bit < c->prefix; bit++) {
        unsigned byte = bit / 8, mask = 0x80u >> (bit % 8);
        if ((c->ip[byte] & mask) != (a->host[byte] & mask))
            return false;
    }
    return true;
}

/* --- the run ----------------------------------------------------------------------------- */

struct refs {
    bool domain_added, ip_added, port_added, regex_added, ip_known;
    struct ref_ports ports;
    struct ref_cidr cidrs[MAX_VALUES];
};

static int add(struct vrev__router *r, const struct values *domains, const struct values *ips,
               const char *ports, const char *tag)
{
    char err[256];
    struct vrev__rule_spec s = {.outbound_tag = tag, .ports = ports};
    if (domains)
        s.domains = (struct vrev__strlist){domains->v, domains->n};
    if (ips)
        s.ips = (struct vrev__strlist){ips->v, ips->n};
    return vrev__router_add_rule(r, &s, err, sizeof(err));
}

static void check_translator(const struct values *regexes)
{
    for (size_t i = 0; i < regexes->n; i++) {
        const char *re = regexes->v[i] + (starts(regexes->v[i], "regexp:") ? 7 : 8);
        size_t cap = vrev__re2_to_ere_cap(strlen(re));
        char *out = malloc(cap);
        int cflags;
        if (!out)
            return;
        if (vrev__re2_to_ere(re, out, cap, &cflags, NULL, 0) == VREV_ERR_NOSPACE)
            abort();
        free(out);
    }
}

static void add_rules(struct vrev__router *r, const struct input *in, struct refs *ref)
{
    if (in->domains.n) {
        int rc = add(r, &in->domains, NULL, NULL, "d");
        if (rc != (ref_domain_unsupported(&in->domains) ? VREV_ERR_UNSUPPORTED : 0))
            abort();
        ref->domain_added = rc == 0;
    }
    if (in->ips.n) {
        ref->ip_added = add(r, NULL, &in->ips, NULL, "i") == 0;
        ref->ip_known = true;
        for (size_t i = 0; i < in->ips.n; i++)
            ref->ip_known = ref->ip_known && ref_parse_cidr(in->ips.v[i], &ref->cidrs[i]);
    }
    if (in->ports) {
        ref->port_added = add(r, NULL, NULL, in->ports, "p") == 0;
        if (ref->port_added != ref_parse_ports(in->ports, &ref->ports))
            abort();
    }
    if (in->regexes.n) {
        ref->regex_added = add(r, &in->regexes, NULL, NULL, "r") == 0;
        check_translator(&in->regexes);
    }
}

/* The reference's outbound, or -1 when it cannot tell (an ip or regex rule it cannot model). */
static int expected(const struct input *in, const struct refs *ref, const struct vrev__addr *t)
{
    if (ref->domain_added && t->type == VREV_ADDR_DOMAIN) {
        char name[VREV_ADDR_DOMAIN_MAX + 1];
        memcpy(name, t->host, t->len);
        name[t->len] = '\0';
        if (ref_domain(&in->domains, name))
            return 1;
    }
    if (ref->ip_added) {
        if (!ref->ip_known)
            return -1;
        for (size_t i = 0; i < in->ips.n; i++)
            if (ref_cidr_has(&ref->cidrs[i], t))
                return 2;
    }
    if (ref->port_added && ref_ports_has(&ref->ports, t->port))
        return 3;
    return ref->regex_added ? -1 : 0;
}

static void run_target(const struct vrev__router *r, const struct input *in, const struct refs *ref,
                       const char *line)
{
    char host[MAX_LINE + 1];
    snprintf(host, sizeof(host), "%s", line);
    char *space = strchr(host, ' ');
    uint16_t port = 0;
    if (space) {
        *space = '\0';
        port = (uint16_t)strtoul(space + 1, NULL, 10);
    }
    struct vrev__addr t;
    if (vrev__addr_from_text(&t, host, port) < 0)
        return;
    struct vrev__route_ctx c = {.inbound_tag = "in", .network = VREV_ROUTE_TCP, .target = &t};
    size_t got = vrev__router_pick(r, &c, port);
    int want = expected(in, ref, &t);
    if (got > 4 || (want >= 0 && got != (size_t)want) || (want < 0 && got == 1))
        abort();
    c.source = &t; /* exercise the source-side paths too */
    if (vrev__router_pick(r, &c, port) > 4)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct input in;
    memset(&in, 0, sizeof(in));
    parse_input(&in, data, size);
    vrev_ctx *ctx;
    struct vrev__router *r;
    if (vrev_ctx_new(&ctx, NULL) < 0)
        return 0;
    if (vrev__router_new(ctx, &r) < 0) {
        vrev_ctx_free(ctx);
        return 0;
    }
    struct refs ref;
    memset(&ref, 0, sizeof(ref));
    add_rules(r, &in, &ref);
    const char *const outbounds[] = {"default", "d", "i", "p", "r"};
    struct vrev__strlist tags = {outbounds, 5};
    if (vrev__router_finish(r, &tags, NULL, 0) < 0)
        abort();
    for (size_t i = 0; i < in.targets.n; i++)
        run_target(r, &in, &ref, in.targets.v[i]);
    vrev__router_free(r);
    vrev_ctx_free(ctx);
    return 0;
}
