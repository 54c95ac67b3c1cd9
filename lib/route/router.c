/* Router: V2Ray v4 "field" rules compiled once, matched without allocation (WIRE-SPEC §7).
 *
 * Behaviour follows V2Ray 4.34 (app/router, infra/conf/router.go) where the spec is silent:
 *  - A list given but holding only empty strings (inboundTag [""]) is a present condition
 *    that never matches, as in V2Ray; so is an empty port list ("" or ","). Both are logged.
 *  - Duplicate outbound tags resolve to the last one (V2Ray keeps tagged handlers in a map);
 *    an outbound with an empty tag cannot be named and is never a balancer candidate.
 *  - A duplicate balancer tag: the last definition wins (also a map in V2Ray), with a warning.
 *  - A balancer whose selectors match no outbound is an error at vrev__router_finish(), even
 *    if no rule uses it (V2Ray would fail each connection routed to it at run time).
 *  - Unknown target parts (NULL target, source, tag, user or protocol; network 0) make the
 *    conditions on them false.
 *
 * Thread safety: building (add_rule, add_balancer, finish) belongs to one thread. After a
 * successful vrev__router_finish() the router is read-only: vrev__router_pick() may run on any
 * number of threads at once until vrev__router_free().
 *
 * Allocation: vrev__router_pick() makes no allocation through the ctx, and none at all unless
 * a rule has a regexp: value (the C library's regexec() may allocate internally; glibc does).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_internal.h"

#define NO_BALANCER SIZE_MAX

/* A list of strings matched exactly (inboundTag, user) or as prefixes (protocol). */
struct tag_set {
    struct vrev__str *v; /* exact sets are sorted */
    size_t n;
};

struct rule {
    /* Conditions; NULL (0 for networks) when absent. */
    struct vrev__domain_set *domains;
    struct vrev__ip_set *ips;
    struct vrev__ip_set *sources;
    struct vrev__port_set *ports;
    struct vrev__port_set *source_ports;
    struct tag_set *users;
    struct tag_set *inbound_tags;
    struct tag_set *protocols;
    unsigned networks;
    /* Target: exactly one tag is set (outboundTag wins when the spec has both). */
    const char *outbound_tag;
    const char *balancer_tag;
    size_t outbound; /* resolved by finish; 0 (default) for an unknown tag */
    size_t balancer; /* resolved by finish; NO_BALANCER for an outbound rule */
};

struct balancer {
    const char *tag;
    struct vrev__str *selectors;
    size_t n_selectors;
    size_t *candidates; /* outbound indexes, set by finish */
    size_t n_candidates;
};

struct vrev__router {
    vrev_ctx *ctx;
    struct vrev__arena arena;
    struct vrev__regex_node *regexes;
    struct rule *rules;
    size_t n_rules, cap_rules;
    struct balancer *balancers;
    size_t n_balancers, cap_balancers;
    bool finished;
};

/* --- arena ------------------------------------------------------------------------------- */

#define ARENA_CHUNK 4096

struct vrev__arena_chunk {
    struct vrev__arena_chunk *prev;
    size_t used, cap;
    max_align_t data[];
};

void *vrev__arena_alloc(struct vrev__arena *a, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    if (size > SIZE_MAX - align)
        return NULL;
    size = (size + align - 1) & ~(align - 1);
    struct vrev__arena_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK, total;
        if (!vrev__add_size(sizeof(*c), cap, &total))
            return NULL;
        c = vrev__malloc(a->ctx, total);
        if (!c)
            return NULL;
        c->prev = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

void *vrev__arena_calloc(struct vrev__arena *a, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return NULL;
    void *p = vrev__arena_alloc(a, total);
    if (p)
        memset(p, 0, total);
    return p;
}

char *vrev__arena_strndup(struct vrev__arena *a, const char *s, size_t len)
{
    size_t total;
    if (!vrev__add_size(len, 1, &total))
        return NULL;
    char *p = vrev__arena_alloc(a, total);
    if (p) {
        if (len)
            memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

struct vrev__arena_mark vrev__arena_mark(const struct vrev__arena *a)
{
    struct vrev__arena_mark m = {a->head, a->head ? a->head->used : 0};
    return m;
}

void vrev__arena_rollback(struct vrev__arena *a, struct vrev__arena_mark m)
{
    while (a->head && a->head != m.chunk) {
        struct vrev__arena_chunk *prev = a->head->prev;
        vrev__free(a->ctx, a->head);
        a->head = prev;
    }
    if (a->head)
        a->head->used = m.used;
}

void vrev__arena_free(struct vrev__arena *a)
{
    struct vrev__arena_mark none = {0};
    vrev__arena_rollback(a, none);
}

/* --- shared helpers ---------------------------------------------------------------------- */

int vrev__route_fail(const struct vrev__route_build *b, int rc, const char *fmt, ...)
{
    if (b && b->err && b->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err, b->err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void vrev__regex_release(struct vrev__regex_node **head, struct vrev__regex_node *keep)
{
    while (*head && *head != keep) {
        regfree(&(*head)->re);
        *head = (*head)->next;
    }
}

int vrev__str_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int str_qsort_cmp(const void *pa, const void *pb)
{
    const struct vrev__str *a = pa, *b = pb;
    return vrev__str_cmp(a->s, a->len, b->s, b->len);
}

void vrev__str_sort(struct vrev__str *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), str_qsort_cmp);
}

bool vrev__str_sorted_has(const struct vrev__str *v, size_t n, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = vrev__str_cmp(v[mid].s, v[mid].len, name, len);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* --- tag sets ---------------------------------------------------------------------------- */

static int tag_set_build(const struct vrev__route_build *b, const char *field,
                         const struct vrev__strlist *list, bool sorted, struct tag_set **out)
{
    struct tag_set *t = vrev__arena_calloc(b->arena, 1, sizeof(*t));
    if (!t || !(t->v = vrev__arena_calloc(b->arena, list->n, sizeof(*t->v))))
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        const char *s = list->v[i];
        if (!s)
            return vrev__route_fail(b, VREV_ERR_INVAL, "%s: null value", field);
        if (!*s)
            continue; /* V2Ray drops empty strings */
        size_t len = strlen(s);
        const char *copy = vrev__arena_strndup(b->arena, s, len);
        if (!copy)
            return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
        t->v[t->n].s = copy;
        t->v[t->n++].len = len;
    }
    if (t->n == 0)
        vrev__log(b->arena->ctx, VREV_LOG_WARN, "router",
                  "%s lists only empty strings; the rule can never match", field);
    if (sorted)
        vrev__str_sort(t->v, t->n);
    *out = t;
    return 0;
}

static bool tag_set_has(const struct tag_set *t, const char *s)
{
    if (!s || !*s)
        return false;
    return vrev__str_sorted_has(t->v, t->n, s, strlen(s));
}

static bool tag_set_has_prefix_of(const struct tag_set *t, const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; i < t->n; i++)
        if (strncmp(s, t->v[i].s, t->v[i].len) == 0)
            return true;
    return false;
}

/* --- router ------------------------------------------------------------------------------ */

int vrev__router_new(vrev_ctx *ctx, struct vrev__router **out)
{
    if (!out)
        return VREV_ERR_INVAL;
    *out = NULL;
    if (!ctx)
        return VREV_ERR_INVAL;
    struct vrev__router *r = vrev__calloc(ctx, 1, sizeof(*r));
    if (!r)
        return VREV_ERR_NOMEM;
    r->ctx = ctx;
    r->arena.ctx = ctx;
    *out = r;
    return 0;
}

void vrev__router_free(struct vrev__router *r)
{
    if (!r)
        return;
    vrev__regex_release(&r->regexes, NULL);
    vrev__arena_free(&r->arena);
    vrev__free(r->ctx, r->rules);
    vrev__free(r->ctx, r->balancers);
    vrev__free(r->ctx, r);
}

/* Make room for one more element in a vector of `size`-byte elements. */
static int reserve(vrev_ctx *ctx, void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8, bytes;
    if (ncap < *cap || __builtin_mul_overflow(ncap, size, &bytes))
        return VREV_ERR_NOMEM;
    void *p = vrev__realloc(ctx, *v, bytes);
    if (!p)
        return VREV_ERR_NOMEM;
    *v = p;
    *cap = ncap;
    return 0;
}

static bool spec_has_condition(const struct vrev__rule_spec *s)
{
    return s->domains.n || s->ips.n || s->ports || s->source_ports || s->networks || s->sources.n ||
           s->users.n || s->inbound_tags.n || s->protocols.n;
}

static int check_spec(const struct vrev__route_build *b, const struct vrev__rule_spec *s)
{
    bool out = s->outbound_tag && *s->outbound_tag, bal = s->balancer_tag && *s->balancer_tag;
    if (!out && !bal)
        return vrev__route_fail(b, VREV_ERR_INVAL, "rule has neither outboundTag nor balancerTag");
    if (!spec_has_condition(s))
        return vrev__route_fail(b, VREV_ERR_INVAL, "rule has no effective fields");
    if (s->networks & ~(unsigned)(VREV_ROUTE_TCP | VREV_ROUTE_UDP))
        return vrev__route_fail(b, VREV_ERR_INVAL, "network: unknown network bits 0x%x",
                                s->networks);
    const struct vrev__strlist *lists[] = {&s->domains, &s->ips,          &s->sources,
                                           &s->users,   &s->inbound_tags, &s->protocols};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (lists[i]->n && !lists[i]->v)
            return vrev__route_fail(b, VREV_ERR_INVAL, "rule has a list without values");
    return 0;
}

static int build_lists(const struct vrev__route_build *b, const struct vrev__rule_spec *s,
                       struct rule *rule)
{
    int rc = 0;
    if (s->domains.n)
        rc = vrev__domain_set_build(b, &s->domains, &rule->domains);
    if (rc == 0 && s->ips.n)
        rc = vrev__ip_set_build(b, "ip", &s->ips, &rule->ips);
    if (rc == 0 && s->sources.n)
        rc = vrev__ip_set_build(b, "source", &s->sources, &rule->sources);
    if (rc == 0 && s->ports)
        rc = vrev__port_set_build(b, "port", s->ports, &rule->ports);
    if (rc == 0 && s->source_ports)
        rc = vrev__port_set_build(b, "sourcePort", s->source_ports, &rule->source_ports);
    if (rc == 0 && s->users.n)
        rc = tag_set_build(b, "user", &s->users, true, &rule->users);
    if (rc == 0 && s->inbound_tags.n)
        rc = tag_set_build(b, "inboundTag", &s->inbound_tags, true, &rule->inbound_tags);
    if (rc == 0 && s->protocols.n)
        rc = tag_set_build(b, "protocol", &s->protocols, false, &rule->protocols);
    return rc;
}

static int build_rule(const struct vrev__route_build *b, const struct vrev__rule_spec *s,
                      struct rule *rule)
{
    memset(rule, 0, sizeof(*rule));
    rule->networks = s->networks;
    rule->balancer = NO_BALANCER;
    int rc = build_lists(b, s, rule);
    if (rc < 0)
        return rc;
    const char *tag = s->outbound_tag && *s->outbound_tag ? s->outbound_tag : s->balancer_tag;
    const char *copy = vrev__arena_strndup(b->arena, tag, strlen(tag));
    if (!copy)
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    if (tag == s->outbound_tag)
        rule->outbound_tag = copy;
    else
        rule->balancer_tag = copy;
    return 0;
}

int vrev__router_add_rule(struct vrev__router *r, const struct vrev__rule_spec *spec, char *err,
                          size_t err_len)
{
    struct vrev__route_build b = {.arena = r ? &r->arena : NULL,
                                  .regexes = r ? &r->regexes : NULL,
                                  .err = err,
                                  .err_len = err_len};
    if (!r || !spec)
        return vrev__route_fail(&b, VREV_ERR_INVAL, "no router or rule");
    if (r->finished)
        return vrev__route_fail(&b, VREV_ERR_STATE, "router already finished");
    int rc = check_spec(&b, spec);
    if (rc < 0)
        return rc;
    if (reserve(r->ctx, (void **)&r->rules, r->n_rules, &r->cap_rules, sizeof(*r->rules)) < 0)
        return vrev__route_fail(&b, VREV_ERR_NOMEM, "out of memory");
    struct vrev__arena_mark mark = vrev__arena_mark(&r->arena);
    struct vrev__regex_node *regexes = r->regexes;
    rc = build_rule(&b, spec, &r->rules[r->n_rules]);
    if (rc < 0) {
        vrev__regex_release(&r->regexes, regexes);
        vrev__arena_rollback(&r->arena, mark);
        return rc;
    }
    r->n_rules++;
    return 0;
}

/* --- balancers --------------------------------------------------------------------------- */

static int build_balancer(const struct vrev__route_build *b, const char *tag,
                          const struct vrev__strlist *selectors, struct balancer *bal)
{
    memset(bal, 0, sizeof(*bal));
    bal->tag = vrev__arena_strndup(b->arena, tag, strlen(tag));
    bal->selectors = vrev__arena_calloc(b->arena, selectors->n, sizeof(*bal->selectors));
    if (!bal->tag || !bal->selectors)
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < selectors->n; i++) {
        const char *s = selectors->v[i];
        if (!s)
            return vrev__route_fail(b, VREV_ERR_INVAL, "balancer \"%s\": null selector", tag);
        size_t len = strlen(s);
        if (!(bal->selectors[i].s = vrev__arena_strndup(b->arena, s, len)))
            return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
        bal->selectors[i].len = len;
    }
    bal->n_selectors = selectors->n;
    return 0;
}

int vrev__router_add_balancer(struct vrev__router *r, const char *tag,
                              const struct vrev__strlist *selectors, char *err, size_t err_len)
{
    struct vrev__route_build b = {.arena = r ? &r->arena : NULL, .err = err, .err_len = err_len};
    if (!r)
        return vrev__route_fail(&b, VREV_ERR_INVAL, "no router");
    if (r->finished)
        return vrev__route_fail(&b, VREV_ERR_STATE, "router already finished");
    if (!tag || !*tag)
        return vrev__route_fail(&b, VREV_ERR_INVAL, "balancer has an empty tag");
    if (!selectors || !selectors->n || !selectors->v)
        return vrev__route_fail(&b, VREV_ERR_INVAL, "balancer \"%s\": empty selector list", tag);
    if (reserve(r->ctx, (void **)&r->balancers, r->n_balancers, &r->cap_balancers,
                sizeof(*r->balancers)) < 0)
        return vrev__route_fail(&b, VREV_ERR_NOMEM, "out of memory");
    struct vrev__arena_mark mark = vrev__arena_mark(&r->arena);
    int rc = build_balancer(&b, tag, selectors, &r->balancers[r->n_balancers]);
    if (rc < 0) {
        vrev__arena_rollback(&r->arena, mark);
        return rc;
    }
    for (size_t i = 0; i < r->n_balancers; i++)
        if (strcmp(r->balancers[i].tag, tag) == 0)
            vrev__log(r->ctx, VREV_LOG_WARN, "router",
                      "balancer \"%s\" defined twice; the last definition wins", tag);
    r->n_balancers++;
    return 0;
}

/* --- finish ------------------------------------------------------------------------------ */

static const char *outbound_at(const struct vrev__strlist *tags, size_t i)
{
    const char *t = tags->v[i];
    return t && *t ? t : NULL;
}

/* The index of the last outbound named tag (V2Ray keeps them in a map), or SIZE_MAX. */
static size_t find_outbound(const struct vrev__strlist *tags, const char *tag)
{
    for (size_t i = tags->n; i-- > 0;) {
        const char *t = outbound_at(tags, i);
        if (t && strcmp(t, tag) == 0)
            return i;
    }
    return SIZE_MAX;
}

static bool selected(const struct balancer *bal, const char *tag)
{
    for (size_t i = 0; i < bal->n_selectors; i++)
        if (strncmp(tag, bal->selectors[i].s, bal->selectors[i].len) == 0)
            return true;
    return false;
}

static int resolve_balancer(const struct vrev__route_build *b, struct balancer *bal,
                            const struct vrev__strlist *tags)
{
    bal->n_candidates = 0;
    if (tags->n && !(bal->candidates = vrev__arena_calloc(b->arena, tags->n, sizeof(size_t))))
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < tags->n; i++) {
        const char *t = outbound_at(tags, i);
        /* A tag shadowed by a later duplicate is not a handler of its own. */
        if (t && selected(bal, t) && find_outbound(tags, t) == i)
            bal->candidates[bal->n_candidates++] = i;
    }
    if (bal->n_candidates == 0)
        return vrev__route_fail(b, VREV_ERR_INVAL,
                                "balancer \"%s\": no outbound tag starts with any of its "
                                "selectors",
                                bal->tag);
    return 0;
}

static size_t find_balancer(const struct vrev__router *r, const char *tag)
{
    for (size_t i = r->n_balancers; i-- > 0;)
        if (strcmp(r->balancers[i].tag, tag) == 0)
            return i;
    return NO_BALANCER;
}

static int resolve_rule(const struct vrev__route_build *b, struct vrev__router *r, size_t i,
                        const struct vrev__strlist *tags)
{
    struct rule *rule = &r->rules[i];
    if (rule->balancer_tag) {
        rule->balancer = find_balancer(r, rule->balancer_tag);
        if (rule->balancer == NO_BALANCER)
            return vrev__route_fail(b, VREV_ERR_INVAL, "rule %zu: balancer \"%s\" not found", i + 1,
                                    rule->balancer_tag);
        return 0;
    }
    rule->outbound = find_outbound(tags, rule->outbound_tag);
    if (rule->outbound == SIZE_MAX) {
        vrev__log(r->ctx, VREV_LOG_WARN, "router",
                  "rule %zu: outbound \"%s\" not found; its traffic goes to the default "
                  "outbound",
                  i + 1, rule->outbound_tag);
        rule->outbound = 0;
    }
    return 0;
}

int vrev__router_finish(struct vrev__router *r, const struct vrev__strlist *outbound_tags,
                        char *err, size_t err_len)
{
    struct vrev__route_build b = {.arena = r ? &r->arena : NULL, .err = err, .err_len = err_len};
    if (!r)
        return vrev__route_fail(&b, VREV_ERR_INVAL, "no router");
    if (r->finished)
        return vrev__route_fail(&b, VREV_ERR_STATE, "router already finished");
    struct vrev__strlist none = {0};
    const struct vrev__strlist *tags = outbound_tags && outbound_tags->v ? outbound_tags : &none;
    int rc;
    for (size_t i = 0; i < r->n_balancers; i++)
        if ((rc = resolve_balancer(&b, &r->balancers[i], tags)) < 0)
            return rc;
    for (size_t i = 0; i < r->n_rules; i++)
        if ((rc = resolve_rule(&b, r, i, tags)) < 0)
            return rc;
    r->finished = true;
    return 0;
}

/* --- pick -------------------------------------------------------------------------------- */

static bool port_ok(const struct vrev__port_set *s, const struct vrev__addr *a)
{
    return a && vrev__port_set_has(s, a->port);
}

static bool domain_ok(const struct vrev__domain_set *s, const struct vrev__addr *a)
{
    return a && a->type == VREV_ADDR_DOMAIN && vrev__domain_set_has(s, a->host, a->len);
}

/* Cheap conditions first; the result does not depend on the order (AND). */
static bool rule_matches(const struct rule *rule, const struct vrev__route_ctx *c)
{
    if (rule->inbound_tags && !tag_set_has(rule->inbound_tags, c->inbound_tag))
        return false;
    if (rule->networks && !(rule->networks & c->network))
        return false;
    if (rule->ports && !port_ok(rule->ports, c->target))
        return false;
    if (rule->source_ports && !port_ok(rule->source_ports, c->source))
        return false;
    if (rule->users && !tag_set_has(rule->users, c->user))
        return false;
    if (rule->protocols && !tag_set_has_prefix_of(rule->protocols, c->protocol))
        return false;
    if (rule->sources && !(c->source && vrev__ip_set_has(rule->sources, c->source)))
        return false;
    if (rule->ips && !(c->target && vrev__ip_set_has(rule->ips, c->target)))
        return false;
    if (rule->domains && !domain_ok(rule->domains, c->target))
        return false;
    return true;
}

size_t vrev__router_pick(const struct vrev__router *r, const struct vrev__route_ctx *c,
                         uint32_t random)
{
    if (!r || !c || !r->finished)
        return 0;
    for (size_t i = 0; i < r->n_rules; i++) {
        const struct rule *rule = &r->rules[i];
        if (!rule_matches(rule, c))
            continue;
        if (rule->balancer == NO_BALANCER)
            return rule->outbound;
        const struct balancer *bal = &r->balancers[rule->balancer];
        /* Multiply-shift maps the 32-bit random uniformly enough onto n without a division. */
        return bal->candidates[(size_t)(((uint64_t)random * bal->n_candidates) >> 32)];
    }
    return 0;
}
