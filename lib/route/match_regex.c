/* regexp: values. V2Ray compiles them with Go's regexp (RE2 syntax) and asks "does it match
 * anywhere in the name"; we use POSIX <regex.h> (REG_EXTENDED | REG_NOSUB) so there is no
 * regex engine to vendor, after translating the RE2 text into an ERE that accepts the same
 * domain names. The names we match hold only [A-Za-z0-9._-], which makes most of the
 * differences moot; the ones that are not are handled here:
 *
 *   RE2                          POSIX ERE (glibc)             here
 *   \d \w \s \D \W \S            \d is a literal 'd' (!)       -> [[:digit:]] [[:alnum:]_] ...
 *   \. \- \* (escaped punct.)    undefined for non-specials    -> literal, escaped only if special
 *   [\d.] [\.] [a\-z]            '\' is literal in brackets     -> rebuilt from a character set
 *   [[:alpha:]] inside a class   same                          -> folded into the set
 *   \A \z                        -                             -> ^ $ (names hold no newline)
 *   (?:x) (?P<n>x)               no non-capturing groups       -> (x)
 *   leading (?i) (?s) (?m) (?U)  -                             -> REG_ICASE; the rest are moot
 *   x*? x+? x?? x{n,m}?          lazy: no ERE form             -> greedy (same match/no match)
 *   a{,3} a{ x{                  RE2: literal '{'              -> \{
 *   leftmost-first alternation   leftmost-longest              moot: REG_NOSUB only asks "any?"
 *   \b \B                        GNU extension                 -> kept on glibc, else rejected
 *   \pL \Q..\E \x41 \C \1, other flags or mid-pattern (?i)     -> VREV_ERR_UNSUPPORTED
 *
 * Non-ASCII text can never match a name, so classes are rebuilt over printable ASCII only.
 * Matching never allocates through the ctx, but the C library's regexec() may allocate
 * internally (glibc does); rules without regexp: values never call it.
 */
#include <stdio.h>
#include <string.h>

#include "route_internal.h"

#define RE2_MAX_REPEAT 1000

/* glibc's regcomp() copies the tree of x for "x+" and "x{n,m}", so "a++++..." or nested
 * counted repeats grow exponentially (found by fuzzing: gigabytes for a 150-byte pattern).
 * RE2 rejects stacked repeats and we do too; the estimated tree size is capped as well. */
#define ERE_MAX_NODES 20000
#define ERE_MAX_DEPTH 64

enum prev { P_NONE, P_ATOM, P_REPEAT };

struct xlate {
    const char *s;
    size_t i;
    char *out;
    size_t n, cap;
    char *why;
    size_t why_len;
    /* Structure, for RE2's repetition rules and the size estimate. */
    enum prev prev;
    size_t depth;
    size_t total[ERE_MAX_DEPTH + 1]; /* estimated nodes so far, per open group */
    size_t last[ERE_MAX_DEPTH + 1];  /* nodes of the last atom, per open group */
};

static int xfail(struct xlate *x, int rc, const char *why)
{
    if (x->why && x->why_len)
        snprintf(x->why, x->why_len, "%s", why);
    return rc;
}

static int xfail_escape(struct xlate *x, char e, bool in_class)
{
    if (!e)
        return xfail(x, VREV_ERR_INVAL, "trailing backslash");
    if (x->why && x->why_len)
        snprintf(x->why, x->why_len, "escape \\%c is not supported%s", e,
                 in_class ? " in a class" : "");
    return VREV_ERR_UNSUPPORTED;
}

static void put(struct xlate *x, const char *s)
{
    for (; *s; s++) {
        if (x->n + 1 < x->cap)
            x->out[x->n] = *s;
        x->n++;
    }
}

static void putch(struct xlate *x, char c)
{
    char s[2] = {c, '\0'};
    if (c)
        put(x, s);
}

/* A literal character outside brackets. */
static void put_literal(struct xlate *x, char c)
{
    if (strchr(".[]()*+?{}|^$\\", c))
        putch(x, '\\');
    putch(x, c);
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_punct(int c)
{
    return c > 0x20 && c < 0x7f && !is_alpha(c) && !is_digit(c);
}

/* The control character of \n \t \r \f \v \a, or 0. */
static char control_escape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    case 'a':
        return '\a';
    default:
        return 0;
    }
}

/* --- character classes ------------------------------------------------------------------- */

struct charset {
    bool has[128];
};

static bool in_named_class(const char *name, size_t len, int c)
{
#define IS(n) (len == sizeof(n) - 1 && memcmp(name, n, len) == 0)
    bool space = c == ' ' || (c >= '\t' && c <= '\r');
    if (IS("alnum"))
        return is_alpha(c) || is_digit(c);
    if (IS("alpha"))
        return is_alpha(c);
    if (IS("ascii"))
        return c < 128;
    if (IS("blank"))
        return c == ' ' || c == '\t';
    if (IS("cntrl"))
        return c < 0x20 || c == 0x7f;
    if (IS("digit"))
        return is_digit(c);
    if (IS("graph"))
        return c > 0x20 && c < 0x7f;
    if (IS("lower"))
        return c >= 'a' && c <= 'z';
    if (IS("print"))
        return c >= 0x20 && c < 0x7f;
    if (IS("punct"))
        return is_punct(c);
    if (IS("space"))
        return space;
    if (IS("upper"))
        return c >= 'A' && c <= 'Z';
    if (IS("word"))
        return is_alpha(c) || is_digit(c) || c == '_';
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); /* xdigit */
#undef IS
}

static bool known_class(const char *name, size_t len)
{
    static const char *const names[] = {"alnum", "alpha", "ascii", "blank", "cntrl",
                                        "digit", "graph", "lower", "print", "punct",
                                        "space", "upper", "word",  "xdigit"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return true;
    return false;
}

static void add_class(struct charset *cs, const char *name, size_t len, bool negate)
{
    for (int c = 0; c < 128; c++)
        if (in_named_class(name, len, c) != negate)
            cs->has[c] = true;
}

/* "[:name:]" or "[:^name:]" at x->s + x->i; returns 1 if consumed, 0 if not a class. */
static int named_class(struct xlate *x, struct charset *cs)
{
    const char *p = x->s + x->i;
    if (p[0] != '[' || p[1] != ':')
        return 0;
    const char *end = strstr(p + 2, ":]");
    if (!end)
        return 0;
    bool negate = p[2] == '^';
    const char *name = p + 2 + negate;
    size_t len = (size_t)(end - name);
    if (!known_class(name, len))
        return xfail(x, VREV_ERR_INVAL, "unknown character class name");
    add_class(cs, name, len, negate);
    x->i = (size_t)(end + 2 - x->s);
    return 1;
}

/* \d \w \s and their negations as a class name; NULL for other letters. */
static const char *perl_class(char c, bool *negate)
{
    *negate = c == 'D' || c == 'W' || c == 'S';
    switch (c) {
    case 'd':
    case 'D':
        return "digit";
    case 'w':
    case 'W':
        return "word";
    case 's':
    case 'S':
        return "space";
    default:
        return NULL;
    }
}

/* One item of a bracket expression. *ch gets its character, or -1 if it was a class that
 * went straight into cs. */
static int class_item(struct xlate *x, struct charset *cs, int *ch)
{
    int rc = named_class(x, cs);
    if (rc != 0) {
        *ch = -1;
        return rc < 0 ? rc : 0;
    }
    unsigned char c = (unsigned char)x->s[x->i];
    if (c != '\\') {
        *ch = c;
        x->i++;
        return 0;
    }
    char e = x->s[x->i + 1];
    bool negate;
    const char *name = perl_class(e, &negate);
    x->i += 2;
    if (name) {
        add_class(cs, name, strlen(name), negate);
        *ch = -1;
    } else if (control_escape(e)) {
        *ch = control_escape(e);
    } else if (is_punct((unsigned char)e)) {
        *ch = (unsigned char)e;
    } else {
        return xfail_escape(x, e, true);
    }
    return 0;
}

static void add_range(struct charset *cs, int lo, int hi)
{
    for (int c = lo; c <= hi && c < 128; c++)
        cs->has[c] = true;
}

static bool plain_member(int c)
{
    return c != ']' && c != '-' && c != '^' && c != '[';
}

/* Emit a bracket expression for cs: ']' first, '[' late (so no "[:" can form), '^' never
 * first, '-' last. Only printable ASCII is listed: nothing else can be in a name. */
static void put_set(struct xlate *x, const struct charset *cs, bool negate)
{
    size_t count = 0;
    for (int c = 0x20; c < 0x7f; c++)
        count += cs->has[c];
    if (count == 0) {
        put(x, negate ? "." : "[^[:print:][:space:][:cntrl:]]");
        return;
    }
    if (!negate && count == 1 && cs->has['^']) {
        put(x, "\\^");
        return;
    }
    put(x, negate ? "[^" : "[");
    bool any = cs->has[']'];
    if (any)
        putch(x, ']');
    for (int c = 0x20; c < 0x7f; c++)
        if (cs->has[c] && plain_member(c)) {
            putch(x, (char)c);
            any = true;
        }
    if (cs->has['[']) {
        putch(x, '[');
        any = true;
    }
    bool dash_done = false;
    if (cs->has['^']) {
        if (!any && !negate) {
            putch(x, '-'); /* the set is exactly {'-', '^'}: "[-^]" */
            dash_done = true;
        }
        putch(x, '^');
    }
    if (cs->has['-'] && !dash_done)
        putch(x, '-');
    putch(x, ']');
}

static int bracket(struct xlate *x)
{
    struct charset cs;
    memset(&cs, 0, sizeof(cs));
    x->i++;
    bool negate = x->s[x->i] == '^';
    x->i += negate;
    for (bool first = true;; first = false) {
        if (!x->s[x->i])
            return xfail(x, VREV_ERR_INVAL, "missing ]");
        if (x->s[x->i] == ']' && !first)
            break;
        int lo, hi, rc = class_item(x, &cs, &lo);
        if (rc < 0)
            return rc;
        if (lo >= 0 && x->s[x->i] == '-' && x->s[x->i + 1] && x->s[x->i + 1] != ']') {
            x->i++;
            if ((rc = class_item(x, &cs, &hi)) < 0)
                return rc;
            if (hi < 0 || hi < lo)
                return xfail(x, VREV_ERR_INVAL, "invalid character class range");
            add_range(&cs, lo, hi);
        } else if (lo >= 0) {
            add_range(&cs, lo, lo);
        }
    }
    x->i++;
    put_set(x, &cs, negate);
    return 0;
}

/* --- structure: what a repeat applies to, and how big the ERE tree gets ------------------ */

static size_t sat_add(size_t a, size_t b)
{
    return a + b > ERE_MAX_NODES ? ERE_MAX_NODES + 1 : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return b && a > (ERE_MAX_NODES + 1) / b ? ERE_MAX_NODES + 1 : a * b;
}

static int atom(struct xlate *x, size_t size)
{
    x->total[x->depth] = sat_add(x->total[x->depth], size);
    x->last[x->depth] = size;
    x->prev = P_ATOM;
    if (x->total[x->depth] > ERE_MAX_NODES)
        return xfail(x, VREV_ERR_UNSUPPORTED, "regular expression too large");
    return 0;
}

/* The last atom repeated: its tree is copied `copies` times. */
static int repeat(struct xlate *x, size_t copies)
{
    if (x->prev == P_NONE)
        return xfail(x, VREV_ERR_INVAL, "missing argument to repetition operator");
    if (x->prev == P_REPEAT)
        return xfail(x, VREV_ERR_INVAL, "invalid nested repetition operator");
    size_t d = x->depth, grown = sat_mul(x->last[d], copies ? copies : 1);
    x->total[d] = sat_add(x->total[d], grown - x->last[d]);
    x->last[d] = grown;
    x->prev = P_REPEAT;
    if (x->total[d] > ERE_MAX_NODES)
        return xfail(x, VREV_ERR_UNSUPPORTED, "regular expression too large");
    return 0;
}

static int open_group(struct xlate *x)
{
    if (x->depth == ERE_MAX_DEPTH)
        return xfail(x, VREV_ERR_UNSUPPORTED, "regular expression nested too deeply");
    x->depth++;
    x->total[x->depth] = 0;
    x->last[x->depth] = 0;
    x->prev = P_NONE;
    return 0;
}

static int close_group(struct xlate *x)
{
    if (x->depth == 0)
        return xfail(x, VREV_ERR_INVAL, "unexpected )");
    size_t size = sat_add(x->total[x->depth], 1);
    x->depth--;
    x->i++;
    putch(x, ')');
    return atom(x, size);
}

/* --- everything else --------------------------------------------------------------------- */

static int escape(struct xlate *x)
{
    char e = x->s[x->i + 1];
    bool negate;
    const char *name = perl_class(e, &negate);
    if (!e)
        return xfail_escape(x, e, false);
    x->i += 2;
    if (name) {
        put(x, negate ? "[^" : "[");
        put(x, strcmp(name, "word") == 0    ? "[:alnum:]_"
               : strcmp(name, "digit") == 0 ? "[:digit:]"
                                            : "[:space:]");
        putch(x, ']');
    } else if (e == 'A') {
        putch(x, '^');
    } else if (e == 'z') {
        putch(x, '$');
#ifdef __GLIBC__
    } else if (e == 'b' || e == 'B') {
        putch(x, '\\');
        putch(x, e);
#endif
    } else if (control_escape(e)) {
        putch(x, control_escape(e));
    } else if (is_punct((unsigned char)e)) {
        put_literal(x, e);
    } else {
        return xfail_escape(x, e, false);
    }
    return 0;
}

/* "(?:", "(?P<name>", "(?<name>" become "("; any other "(?" is unsupported. */
static int group(struct xlate *x)
{
    const char *p = x->s + x->i;
    if (p[1] != '?') {
        x->i++;
    } else if (p[2] == ':') {
        x->i += 3;
    } else if ((p[2] == 'P' && p[3] == '<') || p[2] == '<') {
        const char *end = strchr(p, '>');
        if (!end)
            return xfail(x, VREV_ERR_INVAL, "unterminated group name");
        x->i = (size_t)(end + 1 - x->s);
    } else {
        return xfail(x, VREV_ERR_UNSUPPORTED,
                     "flag groups other than a leading (?i) are not "
                     "supported");
    }
    putch(x, '(');
    return open_group(x);
}

/* Lazy quantifiers match the same names as greedy ones: drop the '?'. */
static void skip_lazy(struct xlate *x)
{
    if (x->s[x->i] == '?')
        x->i++;
}

static bool read_count(const char *s, size_t *i, unsigned *v)
{
    if (!is_digit((unsigned char)s[*i]))
        return false;
    for (*v = 0; is_digit((unsigned char)s[*i]); (*i)++)
        *v = *v > RE2_MAX_REPEAT ? *v : *v * 10 + (unsigned)(s[*i] - '0');
    return true;
}

/* {n} {n,} {n,m} pass through; anything else is a literal '{' in RE2. */
static int brace(struct xlate *x)
{
    size_t i = x->i + 1;
    unsigned lo, hi;
    bool ok = read_count(x->s, &i, &lo);
    hi = lo;
    if (ok && x->s[i] == ',') {
        i++;
        hi = RE2_MAX_REPEAT;
        if (is_digit((unsigned char)x->s[i]))
            read_count(x->s, &i, &hi);
    }
    if (!ok || x->s[i] != '}') {
        put(x, "\\{");
        x->i++;
        return atom(x, 1);
    }
    if (lo > RE2_MAX_REPEAT || hi > RE2_MAX_REPEAT || lo > hi)
        return xfail(x, VREV_ERR_INVAL, "bad repetition count (RE2 allows up to 1000)");
    /* x{n,m} is n copies plus m - n optional ones; x{n,} is n copies and a star. */
    int rc = repeat(x, x->s[i - 1] == ',' ? (size_t)lo + 1 : hi);
    if (rc < 0)
        return rc;
    for (; x->i <= i; x->i++)
        putch(x, x->s[x->i]);
    skip_lazy(x);
    return 0;
}

/* A leading "(?flags)" group: i, m, s, U; sets REG_ICASE for i. */
static int leading_flags(struct xlate *x, int *cflags)
{
    const char *p = x->s;
    if (p[0] != '(' || p[1] != '?')
        return 0;
    size_t n = strspn(p + 2, "imsU");
    if (n == 0 || p[2 + n] != ')')
        return 0; /* not a flag group: group() decides */
    if (memchr(p + 2, 'i', n))
        *cflags |= REG_ICASE;
    x->i = 3 + n;
    return 0;
}

static int step(struct xlate *x)
{
    char c = x->s[x->i];
    int rc;
    switch (c) {
    case '\\':
        return (rc = escape(x)) < 0 ? rc : atom(x, 1);
    case '[':
        return (rc = bracket(x)) < 0 ? rc : atom(x, 1);
    case '(':
        return group(x);
    case ')':
        return close_group(x);
    case '{':
        return brace(x);
    case '}':
        x->i++;
        put(x, "\\}");
        return atom(x, 1);
    case '|':
        x->i++;
        putch(x, c);
        x->prev = P_NONE;
        return 0;
    case '*':
    case '+':
    case '?':
        /* glibc builds "x+" as "xx*": two copies of x. */
        if ((rc = repeat(x, c == '+' ? 2 : 1)) < 0)
            return rc;
        x->i++;
        putch(x, c);
        skip_lazy(x);
        return 0;
    default:
        x->i++;
        putch(x, c);
        return atom(x, 1);
    }
}

size_t vrev__re2_to_ere_cap(size_t len)
{
    /* The widest expansions: a 3-byte class "[x]" may list ~95 characters; "\W" becomes 14. */
    return len > (SIZE_MAX - 64) / 40 ? SIZE_MAX : len * 40 + 64;
}

int vrev__re2_to_ere(const char *re2, char *out, size_t cap, int *cflags, char *why, size_t why_len)
{
    struct xlate x;
    memset(&x, 0, sizeof(x));
    x.s = re2;
    x.out = out;
    x.cap = cap;
    x.why = why;
    x.why_len = why_len;
    *cflags = REG_EXTENDED | REG_NOSUB;
    int rc = leading_flags(&x, cflags);
    while (rc == 0 && x.s[x.i])
        rc = step(&x);
    if (rc == 0 && x.depth)
        rc = xfail(&x, VREV_ERR_INVAL, "missing )");
    if (rc < 0)
        return rc;
    if (x.n >= cap)
        return xfail(&x, VREV_ERR_NOSPACE, "pattern too long");
    out[x.n] = '\0';
    return 0;
}

int vrev__regex_compile(const struct vrev__route_build *b, const char *field, const char *value,
                        const char *pattern, regex_t **out)
{
    size_t cap = vrev__re2_to_ere_cap(strlen(pattern));
    char *ere = cap == SIZE_MAX ? NULL : vrev__malloc(b->arena->ctx, cap);
    struct vrev__regex_node *node = vrev__arena_alloc(b->arena, sizeof(*node));
    if (!ere || !node) {
        vrev__free(b->arena->ctx, ere);
        return vrev__route_fail(b, VREV_ERR_NOMEM, "out of memory");
    }
    char why[128] = "";
    int cflags, rc = vrev__re2_to_ere(pattern, ere, cap, &cflags, why, sizeof(why));
    if (rc == 0 && (rc = regcomp(&node->re, ere, cflags)) != 0) {
        regerror(rc, &node->re, why, sizeof(why));
        rc = VREV_ERR_INVAL;
    }
    vrev__free(b->arena->ctx, ere);
    if (rc < 0)
        return vrev__route_fail(b, rc, "%s \"%s\": %s regular expression: %s", field, value,
                                rc == VREV_ERR_UNSUPPORTED ? "unsupported" : "invalid", why);
    node->next = *b->regexes;
    *b->regexes = node;
    *out = &node->re;
    return 0;
}
