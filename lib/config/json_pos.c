/* Positions in the config text. jansson reports no positions for values, so when a message
 * needs one we rescan the comment-free text along the JSON path of the value (a lazy position
 * index: nothing is stored, and a successful load never pays for it). The text has already
 * been parsed by jansson when a path lookup runs, but every scanner here is bounds-checked
 * and terminates on any input anyway (the depth check runs before jansson, on raw text).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config_internal.h"

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_punct(char c)
{
    return c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',';
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

/* s[i] is '"': the offset just past the closing quote (or len). */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

/* The offset just past the value starting at s[i]. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    if (i >= len)
        return len;
    if (s[i] == '"')
        return skip_string(s, len, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < len && !is_ws(s[i]) && !is_punct(s[i]) && s[i] != '"')
            i++;
        return i;
    }
    size_t depth = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, len, i);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return len;
}

static int hex4(const char *s, size_t len, size_t i)
{
    if (i + 4 > len)
        return -1;
    int v = 0;
    for (size_t k = i; k < i + 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the escape at s[i] == '\\' into out; returns the bytes consumed (0: malformed). */
static size_t decode_escape(const char *s, size_t len, size_t i, char *out, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (i + 1 >= len)
        return 0;
    const char *p = memchr(from, s[i + 1], sizeof(from) - 1);
    if (p && s[i + 1]) {
        out[0] = to[p - from];
        *n = 1;
        return 2;
    }
    int cp = s[i + 1] == 'u' ? hex4(s, len, i + 2) : -1;
    if (cp < 0)
        return 0;
    size_t used = 6;
    if (cp >= 0xD800 && cp < 0xDC00 && i + 7 < len && s[i + 6] == '\\' && s[i + 7] == 'u') {
        int lo = hex4(s, len, i + 8);
        if (lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
        }
    }
    *n = put_utf8((uint32_t)cp, out);
    return used;
}

/* Whether the JSON string at s[i] == '"' decodes to exactly `want`; *next: past its end. */
static bool string_equals(const char *s, size_t len, size_t i, const char *want, size_t *next)
{
    size_t w = 0, wlen = strlen(want), j = i + 1;
    bool eq = true;
    while (j < len && s[j] != '"') {
        char buf[4];
        size_t n = 1;
        if (s[j] == '\\') {
            size_t used = decode_escape(s, len, j, buf, &n);
            if (!used) {
                *next = skip_string(s, len, i);
                return false;
            }
            j += used;
        } else {
            buf[0] = s[j++];
        }
        if (w + n > wlen || memcmp(want + w, buf, n) != 0)
            eq = false;
        w += n;
    }
    *next = j < len ? j + 1 : len;
    return eq && w == wlen;
}

/* In the object at s[i] == '{', the last member named key: its value's offset in *val and its
 * key's offset in *key_off. */
static bool find_member(const char *s, size_t len, size_t i, const char *key, size_t *val,
                        size_t *key_off)
{
    bool found = false;
    i = skip_ws(s, len, i + 1);
    while (i < len && s[i] == '"') {
        size_t after, at = i;
        bool eq = string_equals(s, len, i, key, &after);
        i = skip_ws(s, len, after);
        if (i >= len || s[i] != ':')
            return found;
        i = skip_ws(s, len, i + 1);
        if (eq) {
            found = true;
            *val = i;
            *key_off = at;
        }
        i = skip_ws(s, len, skip_value(s, len, i));
        if (i >= len || s[i] != ',')
            break;
        i = skip_ws(s, len, i + 1);
    }
    return found;
}

/* In the array at s[i] == '[', the offset of element `index`. */
static bool find_element(const char *s, size_t len, size_t i, size_t index, size_t *val)
{
    i = skip_ws(s, len, i + 1);
    for (size_t k = 0; k < index; k++) {
        i = skip_ws(s, len, skip_value(s, len, i));
        if (i >= len || s[i] != ',')
            return false;
        i = skip_ws(s, len, i + 1);
    }
    if (i >= len || s[i] == ']')
        return false;
    *val = i;
    return true;
}

bool vrev__json_pos_find(const char *s, size_t len, const struct vrev__cfg_path_item *path,
                         size_t n, bool want_key, size_t *off)
{
    size_t i = skip_ws(s, len, 0);
    *off = i;
    for (size_t k = 0; k < n; k++) {
        size_t val, key_off = 0;
        if (i >= len)
            return false;
        if (path[k].key) {
            if (s[i] != '{' || !find_member(s, len, i, path[k].key, &val, &key_off))
                return false;
        } else if (s[i] != '[' || !find_element(s, len, i, path[k].index, &val)) {
            return false;
        }
        i = val;
        *off = want_key && k + 1 == n && path[k].key ? key_off : val;
    }
    return true;
}

void vrev__json_pos_linecol(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b == '\n') {
            l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80) { /* count characters, not UTF-8 continuation bytes */
            c++;
        }
    }
    *line = l;
    *col = c;
}

bool vrev__json_too_deep(const char *s, size_t len, size_t max, size_t *off)
{
    size_t depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, len, i) - 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max) {
                *off = i;
                return true;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return false;
}

/* The end of the token starting at s[i] (not whitespace). Strings end at their closing quote
 * or, as jansson's lexer sees them, at a raw newline. */
static size_t token_end(const char *s, size_t len, size_t i)
{
    if (is_punct(s[i]))
        return i + 1;
    if (s[i] == '"') {
        for (i++; i < len && s[i] != '\n'; i++) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                return i + 1;
        }
        return i < len ? i : len;
    }
    while (i < len && !is_ws(s[i]) && !is_punct(s[i]) && s[i] != '"')
        i++;
    return i;
}

size_t vrev__json_token_start(const char *s, size_t len, size_t off)
{
    size_t i = 0;
    while (i < len) {
        i = skip_ws(s, len, i);
        if (i >= len || i > off)
            break;
        size_t end = token_end(s, len, i);
        if (end <= i)
            end = i + 1;
        if (off < end)
            return i;
        i = end;
    }
    return off;
}

/* ---- duplicate keys ----
 *
 * jansson keeps the last of two equal keys in an object, silently (JSON_REJECT_DUPLICATES
 * would make it an error, and V2Ray's Go decoder takes them too). A pass over the text finds
 * them so that the loader can say where. Keys are compared as they decode; one longer than
 * KEY_MAX decoded bytes is compared by its raw bytes only. The work is bounded: past
 * DUP_BUDGET comparisons (a hostile object with very many keys) the pass stops. */

#define KEY_MAX 256
#define DUP_BUDGET (4u << 20)

/* Decode the key at s[i] == '"' into out[0..KEY_MAX); false when too long or malformed. */
static bool decode_key(const char *s, size_t len, size_t i, char *out, size_t *n)
{
    size_t j = i + 1, o = 0;
    while (j < len && s[j] != '"') {
        char buf[4];
        size_t k = 1;
        if (s[j] == '\\') {
            size_t used = decode_escape(s, len, j, buf, &k);
            if (!used)
                return false;
            j += used;
        } else {
            buf[0] = s[j++];
        }
        if (o + k > KEY_MAX)
            return false;
        memcpy(out + o, buf, k);
        o += k;
    }
    *n = o;
    return j < len;
}

static bool same_key(const char *s, size_t len, size_t a, size_t b)
{
    size_t ea = skip_string(s, len, a), eb = skip_string(s, len, b);
    if (ea - a == eb - b && !memcmp(s + a, s + b, ea - a))
        return true;
    if (!memchr(s + a, '\\', ea - a) && !memchr(s + b, '\\', eb - b))
        return false; /* no escapes: the raw bytes are the keys */
    char ka[KEY_MAX], kb[KEY_MAX];
    size_t na, nb;
    return decode_key(s, len, a, ka, &na) && decode_key(s, len, b, kb, &nb) && na == nb &&
           !memcmp(ka, kb, na);
}

struct dup_scan {
    const char *s;
    size_t len;
    size_t *keys; /* offsets of the keys of the objects open now, outermost first */
    size_t n, cap;
    size_t budget;
    vrev__json_dup_fn fn;
    void *user;
    bool nomem;
};

static bool push_key(struct dup_scan *d, size_t off, vrev_ctx *ctx)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        size_t *k = vrev__realloc(ctx, d->keys, cap * sizeof(*k));
        if (!k) {
            d->nomem = true;
            return false;
        }
        d->keys = k;
        d->cap = cap;
    }
    d->keys[d->n++] = off;
    return true;
}

/* The value at s[i]; returns the offset past it (the text is valid JSON: jansson read it). */
static size_t scan_value(struct dup_scan *d, size_t i, vrev_ctx *ctx, bool *stop);

static size_t scan_object(struct dup_scan *d, size_t i, vrev_ctx *ctx, bool *stop)
{
    const char *s = d->s;
    size_t first = d->n; /* this object's keys start here */
    i = skip_ws(s, d->len, i + 1);
    while (!*stop && i < d->len && s[i] == '"') {
        for (size_t k = first; k < d->n && !*stop; k++) {
            if (d->budget-- == 0)
                *stop = true;
            else if (same_key(s, d->len, d->keys[k], i))
                d->fn(d->keys[k], i, d->user);
        }
        if (!*stop && !push_key(d, i, ctx))
            *stop = true;
        i = skip_ws(s, d->len, skip_string(s, d->len, i));
        if (i >= d->len || s[i] != ':')
            break;
        i = skip_ws(s, d->len, scan_value(d, skip_ws(s, d->len, i + 1), ctx, stop));
        if (i >= d->len || s[i] != ',')
            break;
        i = skip_ws(s, d->len, i + 1);
    }
    d->n = first;
    return i < d->len ? i + 1 : d->len;
}

static size_t scan_value(struct dup_scan *d, size_t i, vrev_ctx *ctx, bool *stop)
{
    const char *s = d->s;
    if (*stop || i >= d->len)
        return d->len;
    if (s[i] == '{')
        return scan_object(d, i, ctx, stop);
    if (s[i] != '[')
        return skip_value(s, d->len, i);
    i = skip_ws(s, d->len, i + 1);
    while (!*stop && i < d->len && s[i] != ']') {
        i = skip_ws(s, d->len, scan_value(d, i, ctx, stop));
        if (i >= d->len || s[i] != ',')
            break;
        i = skip_ws(s, d->len, i + 1);
    }
    return i < d->len ? i + 1 : d->len;
}

bool vrev__json_dup_keys(vrev_ctx *ctx, const char *s, size_t len, vrev__json_dup_fn fn, void *user)
{
    struct dup_scan d = {.s = s, .len = len, .budget = DUP_BUDGET, .fn = fn, .user = user};
    bool stop = false;
    scan_value(&d, skip_ws(s, len, 0), ctx, &stop);
    vrev__free(ctx, d.keys);
    return !d.nomem;
}
