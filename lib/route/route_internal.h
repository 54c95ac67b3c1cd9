/* Router internals shared by the lib/route sources (not for other modules).
 *
 * Everything a compiled rule points to lives in one arena owned by the router, so a rule is
 * freed with the router and a half-built rule is undone by rolling the arena back. Compiled
 * POSIX regexes are also chained on the router, because regfree() must see each of them.
 *
 * Matching structures are chosen so that vrev__router_pick() never allocates:
 *   full:/domain:   sorted arrays, binary search (domain: looks up every label suffix)
 *   keyword/plain   memmem() over the name (linear in the number of values)
 *   ip/source       sorted, merged [lo, hi] intervals per family, binary search
 *   port/sourcePort sorted, merged [lo, hi] intervals, binary search
 */
#ifndef VREV_ROUTE_INTERNAL_H
#define VREV_ROUTE_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/router.h"

/* --- arena ------------------------------------------------------------------------------- */

struct vrev__arena_chunk;

struct vrev__arena {
    vrev_ctx *ctx;
    struct vrev__arena_chunk *head;
};

struct vrev__arena_mark {
    struct vrev__arena_chunk *chunk;
    size_t used;
};

/* size bytes aligned for any type; NULL on out of memory. */
void *vrev__arena_alloc(struct vrev__arena *a, size_t size);
/* count * size bytes, zeroed; NULL on out of memory or overflow. */
void *vrev__arena_calloc(struct vrev__arena *a, size_t count, size_t size);
/* A NUL-terminated copy of s[0..len). */
char *vrev__arena_strndup(struct vrev__arena *a, const char *s, size_t len);
struct vrev__arena_mark vrev__arena_mark(const struct vrev__arena *a);
/* Free everything allocated after the mark was taken. */
void vrev__arena_rollback(struct vrev__arena *a, struct vrev__arena_mark m);
void vrev__arena_free(struct vrev__arena *a);

/* --- building ---------------------------------------------------------------------------- */

/* A compiled regex, chained on the router for regfree(). Lives in the arena. */
struct vrev__regex_node {
    regex_t re;
    struct vrev__regex_node *next;
};

/* What the condition builders need: where to allocate, where to chain regexes, where to
 * write a message. */
struct vrev__route_build {
    struct vrev__arena *arena;
    struct vrev__regex_node **regexes;
    char *err;
    size_t err_len;
};

/* Write a message into err (if any). Returns rc, so callers can `return vrev__route_fail()`. */
int vrev__route_fail(const struct vrev__route_build *b, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* regfree() every regex chained after `keep` (which stays), and unchain them. */
void vrev__regex_release(struct vrev__regex_node **head, struct vrev__regex_node *keep);

/* A string with its length (not NUL-terminated when it points into a target). */
struct vrev__str {
    const char *s;
    size_t len;
};

/* memcmp order, shorter first on a common prefix. */
int vrev__str_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* Sort v[0..n) in that order; whether sorted v[0..n) holds name[0..len). */
void vrev__str_sort(struct vrev__str *v, size_t n);
bool vrev__str_sorted_has(const struct vrev__str *v, size_t n, const char *name, size_t len);

/* --- domain ------------------------------------------------------------------------------ */

struct vrev__domain_set {
    struct vrev__str *full; /* sorted */
    size_t n_full;
    struct vrev__str *suffix; /* domain:x, sorted */
    size_t n_suffix;
    struct vrev__str *substr; /* keyword:x and plain */
    size_t n_substr;
    struct vrev__str *dotless; /* dotless:x with a literal x: no '.' and contains x */
    size_t n_dotless;
    regex_t **re; /* regexp:x, and dotless:x when x has regex syntax */
    size_t n_re;
};

int vrev__domain_set_build(const struct vrev__route_build *b, const struct vrev__strlist *values,
                           struct vrev__domain_set **out);
bool vrev__domain_set_has(const struct vrev__domain_set *s, const uint8_t *name, size_t len);

/* Translate an RE2 pattern (V2Ray's regexp: syntax) into a POSIX ERE with the same set of
 * matching domain names. out gets a NUL-terminated ERE; *cflags the regcomp() flags.
 * Returns 0, VREV_ERR_INVAL (malformed pattern), VREV_ERR_UNSUPPORTED (RE2 syntax with no
 * ERE equivalent) or VREV_ERR_NOSPACE; why (if not NULL) gets a short reason. */
int vrev__re2_to_ere(const char *re2, char *out, size_t cap, int *cflags, char *why,
                     size_t why_len);

/* Bytes of output vrev__re2_to_ere() may need for an input of len bytes. */
size_t vrev__re2_to_ere_cap(size_t len);

/* Translate, compile and chain a regex. Errors name `value` (the rule's text). */
int vrev__regex_compile(const struct vrev__route_build *b, const char *field, const char *value,
                        const char *pattern, regex_t **out);

/* --- ip ---------------------------------------------------------------------------------- */

struct vrev__range4 {
    uint32_t lo, hi;
};

struct vrev__ip6 {
    uint64_t hi, lo; /* big-endian halves: hi holds bytes 0..7 */
};

struct vrev__range6 {
    struct vrev__ip6 lo, hi;
};

struct vrev__ip_set {
    struct vrev__range4 *v4; /* sorted, disjoint, non-adjacent */
    size_t n4;
    struct vrev__range6 *v6;
    size_t n6;
};

int vrev__ip_set_build(const struct vrev__route_build *b, const char *field,
                       const struct vrev__strlist *values, struct vrev__ip_set **out);
/* False for a domain address. An IPv4-mapped IPv6 address is looked up as IPv4. */
bool vrev__ip_set_has(const struct vrev__ip_set *s, const struct vrev__addr *a);

/* --- port -------------------------------------------------------------------------------- */

struct vrev__range16 {
    uint16_t lo, hi;
};

struct vrev__port_set {
    struct vrev__range16 *r; /* sorted, disjoint, non-adjacent; n == 0 never matches */
    size_t n;
};

int vrev__port_set_build(const struct vrev__route_build *b, const char *field, const char *text,
                         struct vrev__port_set **out);
bool vrev__port_set_has(const struct vrev__port_set *s, uint16_t port);

#endif
