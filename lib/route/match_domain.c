/* Domain conditions (`domain`), case-sensitive like V2Ray 4.34:
 *
 *   full:x      the name is x                       sorted array, binary search
 *   domain:x    the name is x or ends in ".x"       sorted array, one search per label suffix
 *   keyword:x   the name contains x                 memmem
 *   x           (no prefix) the same as keyword:x   memmem
 *   regexp:x    RE2 x matches anywhere in the name  POSIX ERE (match_regex.c)
 *   dotless:x   no '.' in the name and it contains x (V2Ray builds "^[^.]*x[^.]*$"; a plain x
 *               is matched without a regex, an x with regex syntax goes through the regex)
 *   geosite:, ext:, ext-domain: (and geoip:, ext-ip:)   rejected: no .dat files here
 *
 * "domain:x" agrees with V2Ray's label trie: "domain:.com" matches "a..com" but not "a.com",
 * and "domain:" matches only names ending in '.'.
 */
#include <stdlib.h>
#include <string.h>

#include "route_internal.h"

enum kind { K_FULL, K_SUFFIX, K_SUBSTR, K_DOTLESS, K_REGEX, K_COUNT };

/* The kind of a value and the text after its prefix. dotless: values with regex syntax are
 * reported as K_REGEX, with *rest still the part after "dotless:". */
static enum kind classify(const char *v, const char **rest, bool *dotless)
{
    static const struct {
        const char *prefix;
        enum kind kind;
    } kinds[] = {
        {"full:", K_FULL},    {"domain:", K_SUFFIX},   {"keyword:", K_SUBSTR},
        {"regexp:", K_REGEX}, {"dotless:", K_DOTLESS},
    };
    *dotless = false;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(v, kinds[i].prefix, n) != 0)
            continue;
        *rest = v + n;
        if (kinds[i].kind != K_DOTLESS)
            return kinds[i].kind;
        *dotless = true;
        /* Only domain characters other than '.': the regex would match them literally. */
        return strspn(*rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
                       strlen(*rest)
                   ? K_DOTLESS
                   : K_REGEX;
    }
    *rest = v;
    return K_SUBSTR;
}

static int check_value(const struct vrev__route_build *b, const char *v)
{
    static const char *const data_prefixes[] = {
        "geosite:", "ext:", "ext-domain:", "geoip:", "ext-ip:"};
    if (!v)
        return vrev__route_fail(b, VREV_ERR_INVAL, "domain: null value");
    for (size_t i = 0; i < sizeof(data_prefixes) / sizeof(data_prefixes[0]); i++)
        if (strncmp(v, data_prefixes[i], strlen(data_prefixes[i])) == 0)
            return vrev__route_fail(b, VREV_ERR_UNSUPPORTED,
                                    "domain \"%s\": geoip/geosite data files are not supported", v);
    const char *rest;
    bool dotless;
    classify(v, &rest, &dotless);
    if (dotless && strchr(rest, '.'))
        return vrev__route_fail(b, VREV_ERR_INVAL,
                                "domain \"%s\": a dotless: value must not contain a dot", v);
    return 0;
}

static int alloc_arrays(const struct vrev__route_build *b, const size_t count[K_COUNT],
                        struct vrev__domain_set *s)
{
    struct vrev__arena *a = b->arena;
    if ((count[K_FULL] && !(s->full = vrev__arena_calloc(a, count[K_FULL], sizeof(*s->full)))) ||
        (count[K_SUFFIX] &&
         !(s->suffix = vrev__arena_calloc(a, count[K_SUFFIX], sizeof(*s->suffix)))) ||
        (count[K_SUBSTR] &&
         !(s->substr = vrev__arena_calloc(a, count[K_SUBSTR], sizeof(*s->substr)))) ||
        (count[K_DOTLESS] &&
         !(s->dotless = vrev__arena_calloc(a, count[K_DOTLESS], sizeof(*s->dotless)))) ||
        (count[K_REGEX] && !(s->re = vrev__arena_calloc(a, count[K_REGEX], sizeof(*s->re)))))
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    return 0;
}

static int add_string(const struct vrev__route_build *b, struct vrev__str *arr, size_t *n,
                      const char *s)
{
    size_t len = strlen(s);
    const char *copy = vrev__arena_strndup(b->arena, s, len);
    if (!copy)
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    arr[*n].s = copy;
    arr[(*n)++].len = len;
    return 0;
}

static int add_regex(const struct vrev__route_build *b, struct vrev__domain_set *s, const char *v,
                     const char *rest, bool dotless)
{
    if (!dotless)
        return vrev__regex_compile(b, "domain", v, rest, &s->re[s->n_re++]);
    /* V2Ray pastes the dotless: text into a regex unescaped; so do we. */
    size_t len = strlen(rest), total;
    if (!vrev__add_size(len, sizeof("^[^.]*[^.]*$"), &total))
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    char *pattern = vrev__arena_alloc(b->arena, total);
    if (!pattern)
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    memcpy(pattern, "^[^.]*", 6);
    memcpy(pattern + 6, rest, len);
    memcpy(pattern + 6 + len, "[^.]*$", sizeof("[^.]*$"));
    return vrev__regex_compile(b, "domain", v, pattern, &s->re[s->n_re++]);
}

static int add_value(const struct vrev__route_build *b, struct vrev__domain_set *s, const char *v)
{
    const char *rest;
    bool dotless;
    switch (classify(v, &rest, &dotless)) {
    case K_FULL:
        return add_string(b, s->full, &s->n_full, rest);
    case K_SUFFIX:
        return add_string(b, s->suffix, &s->n_suffix, rest);
    case K_SUBSTR:
        return add_string(b, s->substr, &s->n_substr, rest);
    case K_DOTLESS:
        return add_string(b, s->dotless, &s->n_dotless, rest);
    default:
        return add_regex(b, s, v, rest, dotless);
    }
}

int vrev__domain_set_build(const struct vrev__route_build *b, const struct vrev__strlist *values,
                           struct vrev__domain_set **out)
{
    size_t count[K_COUNT] = {0};
    for (size_t i = 0; i < values->n; i++) {
        int rc = check_value(b, values->v[i]);
        if (rc < 0)
            return rc;
        const char *rest;
        bool dotless;
        count[classify(values->v[i], &rest, &dotless)]++;
    }
    struct vrev__domain_set *s = vrev__arena_calloc(b->arena, 1, sizeof(*s));
    if (!s)
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    int rc = alloc_arrays(b, count, s);
    for (size_t i = 0; rc == 0 && i < values->n; i++)
        rc = add_value(b, s, values->v[i]);
    if (rc < 0)
        return rc;
    vrev__str_sort(s->full, s->n_full);
    vrev__str_sort(s->suffix, s->n_suffix);
    *out = s;
    return 0;
}

static bool suffix_has(const struct vrev__domain_set *s, const char *name, size_t len)
{
    if (vrev__str_sorted_has(s->suffix, s->n_suffix, name, len))
        return true;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '.' &&
            vrev__str_sorted_has(s->suffix, s->n_suffix, name + i + 1, len - i - 1))
            return true;
    return false;
}

/* memmem() is a GNU extension; names are at most 255 bytes, so the plain loop is fine. */
static bool contains(const char *name, size_t len, const struct vrev__str *needle)
{
    if (needle->len == 0)
        return true;
    if (needle->len > len)
        return false;
    const char first = needle->s[0];
    for (size_t i = 0, last = len - needle->len; i <= last; i++)
        if (name[i] == first && memcmp(name + i + 1, needle->s + 1, needle->len - 1) == 0)
            return true;
    return false;
}

static bool regex_has(const struct vrev__domain_set *s, const char *name, size_t len)
{
    char text[VREV_ADDR_DOMAIN_MAX + 1];
    if (len >= sizeof(text))
        return false;
    memcpy(text, name, len);
    text[len] = '\0';
    for (size_t i = 0; i < s->n_re; i++)
        if (regexec(s->re[i], text, 0, NULL, 0) == 0)
            return true;
    return false;
}

bool vrev__domain_set_has(const struct vrev__domain_set *s, const uint8_t *host, size_t len)
{
    const char *name = (const char *)host;
    if (len == 0)
        return false; /* V2Ray: an empty target domain matches nothing */
    if (s->n_full && vrev__str_sorted_has(s->full, s->n_full, name, len))
        return true;
    if (s->n_suffix && suffix_has(s, name, len))
        return true;
    for (size_t i = 0; i < s->n_substr; i++)
        if (contains(name, len, &s->substr[i]))
            return true;
    if (s->n_dotless && !memchr(name, '.', len))
        for (size_t i = 0; i < s->n_dotless; i++)
            if (contains(name, len, &s->dotless[i]))
                return true;
    return s->n_re && regex_has(s, name, len);
}
