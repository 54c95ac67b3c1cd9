/* The loader's toolbox: the JSON path stack, error and warning messages with positions, and
 * typed access to object members with Go encoding/json's matching rules. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/addr.h"
#include "config/config_internal.h"
#include "core/hex.h"

/* ---- path ---- */

void vrev__cfg_push_key(vrev__cfg_loader *L, const char *key)
{
    if (L->depth < VREV_CFG_PATH_MAX)
        L->path[L->depth] = (struct vrev__cfg_path_item){key, 0};
    L->depth++;
}

void vrev__cfg_push_index(vrev__cfg_loader *L, size_t index)
{
    if (L->depth < VREV_CFG_PATH_MAX)
        L->path[L->depth] = (struct vrev__cfg_path_item){.key = NULL, .index = index};
    L->depth++;
}

void vrev__cfg_pop(vrev__cfg_loader *L)
{
    if (L->depth > 0)
        L->depth--;
}

/* Append s to buf[*n..cap), escaping bytes that would garble a one-line message. */
static void append_clean(char *buf, size_t cap, size_t *n, const char *s)
{
    for (; *s && *n + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            if (*n + 5 >= cap)
                break;
            *n += (size_t)snprintf(buf + *n, cap - *n, "\\x%02x", c);
        } else {
            buf[(*n)++] = (char)c;
        }
    }
    buf[*n] = '\0';
}

void vrev__cfg_path_text(const struct vrev__cfg_path_item *path, size_t n, char *buf, size_t cap)
{
    size_t used = 0;
    if (!cap)
        return;
    buf[0] = '\0';
    for (size_t k = 0; k < n && used + 1 < cap; k++) {
        if (path[k].key) {
            if (k > 0)
                append_clean(buf, cap, &used, ".");
            append_clean(buf, cap, &used, path[k].key);
        } else {
            char idx[32];
            snprintf(idx, sizeof(idx), "[%zu]", path[k].index);
            append_clean(buf, cap, &used, idx);
        }
    }
}

static size_t path_len(const vrev__cfg_loader *L)
{
    return L->depth < VREV_CFG_PATH_MAX ? L->depth : VREV_CFG_PATH_MAX;
}

/* line/column of the value (or key) at the current path. */
static void position(const vrev__cfg_loader *L, bool at_key, unsigned *line, unsigned *col)
{
    size_t off;
    vrev__json_pos_find(L->clean, L->len, L->path, path_len(L), at_key, &off);
    vrev__json_pos_linecol(L->text, L->len, off, line, col);
}

__attribute__((format(printf, 3, 0))) static void set_message(char *dst, size_t cap,
                                                              const char *fmt, va_list ap)
{
    char raw[512];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    size_t n = 0;
    dst[0] = '\0';
    append_clean(dst, cap, &n, raw);
}

int vrev__cfg_fail(vrev__cfg_loader *L, int code, const char *fmt, ...)
{
    struct vrev__config_error *e = L->err;
    va_list ap;
    va_start(ap, fmt);
    set_message(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    e->code = code;
    vrev__cfg_path_text(L->path, path_len(L), e->path, sizeof(e->path));
    position(L, false, &e->line, &e->column);
    return code;
}

int vrev__cfg_fail_missing(vrev__cfg_loader *L, const char *name)
{
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "missing \"%s\"", name);
}

int vrev__cfg_nomem(vrev__cfg_loader *L)
{
    struct vrev__config_error *e = L->err;
    e->code = VREV_ERR_NOMEM;
    e->line = e->column = 0;
    e->path[0] = '\0';
    snprintf(e->message, sizeof(e->message), "out of memory");
    return VREV_ERR_NOMEM;
}

/* Whether one more warning may be written (the budget of VREV_CFG_MAX_WARNINGS). */
static bool warning_allowed(vrev__cfg_loader *L)
{
    if (!vrev__log_enabled(L->ctx, VREV_LOG_WARN))
        return false;
    if (++L->warnings > VREV_CFG_MAX_WARNINGS) {
        if (L->warnings == VREV_CFG_MAX_WARNINGS + 1)
            vrev__log_all(L->ctx, VREV_LOG_WARN, "config", "%s: further warnings suppressed",
                          L->file);
        return false;
    }
    return true;
}

void vrev__cfg_warn_at(vrev__cfg_loader *L, size_t off, const char *fmt, ...)
{
    if (!warning_allowed(L))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    set_message(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned line, col;
    vrev__json_pos_linecol(L->text, L->len, off, &line, &col);
    vrev__log_all(L->ctx, VREV_LOG_WARN, "config", "%s:%u:%u: %s", L->file, line, col, msg);
}

void vrev__cfg_warn(vrev__cfg_loader *L, bool at_key, const char *fmt, ...)
{
    if (!warning_allowed(L))
        return;
    char msg[512], path[256]; /* one line of the log (1024 bytes) */
    va_list ap;
    va_start(ap, fmt);
    set_message(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vrev__cfg_path_text(L->path, path_len(L), path, sizeof(path));
    unsigned line, col;
    position(L, at_key, &line, &col);
    vrev__log_all(L->ctx, VREV_LOG_WARN, "config", "%s:%u:%u: %s%s%s", L->file, line, col, path,
                  path[0] ? ": " : "", msg);
}

/* ---- member access ---- */

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Go folds these two non-ASCII runes onto ASCII letters (unicode.SimpleFold). */
static size_t special_fold(const char *s, char *out)
{
    if ((unsigned char)s[0] == 0xC5 && (unsigned char)s[1] == 0xBF) { /* U+017F long s */
        *out = 's';
        return 2;
    }
    if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x84 &&
        (unsigned char)s[2] == 0xAA) { /* U+212A Kelvin sign */
        *out = 'k';
        return 3;
    }
    return 0;
}

bool vrev__cfg_key_equal(const char *doc_key, const char *name)
{
    const char *a = doc_key, *b = name;
    while (*a && *b) {
        char c;
        size_t n = special_fold(a, &c);
        if (n) {
            a += n;
        } else {
            c = fold(*a++);
        }
        if (c != fold(*b++))
            return false;
    }
    return !*a && !*b;
}

json_t *vrev__cfg_get(vrev__cfg_loader *L, json_t *obj, const char *name, const char **spelled)
{
    (void)L;
    const char *key, *found_key = NULL;
    json_t *v, *found = NULL;
    json_object_foreach(obj, key, v)
    {
        if (vrev__cfg_key_equal(key, name)) {
            found = v;
            found_key = key;
        }
    }
    if (spelled)
        *spelled = found_key;
    return json_is_null(found) ? NULL : found;
}

/* Keys that differ only in case all set the same field; Go keeps the last. Quadratic, so
 * only for objects of a sane size. */
static void check_case_duplicates(vrev__cfg_loader *L, json_t *obj)
{
    if (json_object_size(obj) > 64)
        return;
    const char *key, *other;
    json_t *v, *w;
    json_object_foreach(obj, key, v)
    {
        bool later = false;
        json_object_foreach(obj, other, w)
        {
            if (other == key) {
                later = true;
                continue;
            }
            if (later && vrev__cfg_key_equal(other, key)) {
                vrev__cfg_push_key(L, key);
                vrev__cfg_warn(L, true, "\"%s\" is also set as \"%s\"; the last one wins", key,
                               other);
                vrev__cfg_pop(L);
                break;
            }
        }
    }
}

bool vrev__cfg_known_key(const char *key, const char *const *known)
{
    size_t i = 0;
    while (known[i] && !vrev__cfg_key_equal(key, known[i]))
        i++;
    return known[i] != NULL;
}

void vrev__cfg_check_keys(vrev__cfg_loader *L, json_t *obj, const char *const *known)
{
    if (!vrev__log_enabled(L->ctx, VREV_LOG_WARN))
        return;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!vrev__cfg_known_key(key, known)) {
            vrev__cfg_push_key(L, key);
            vrev__cfg_warn(L, true, "unknown key \"%.64s\" ignored", key);
            vrev__cfg_pop(L);
        }
    }
    check_case_duplicates(L, obj);
}

static int member_of_type(vrev__cfg_loader *L, json_t *obj, const char *name, json_type type,
                          const char *what, json_t **out, const char **spelled)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    *out = NULL;
    if (spelled)
        *spelled = key;
    if (!v)
        return 0;
    if (json_typeof(v) != type) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected %s", what);
    }
    *out = v;
    return 0;
}

int vrev__cfg_object(vrev__cfg_loader *L, json_t *obj, const char *name, json_t **out,
                     const char **spelled)
{
    return member_of_type(L, obj, name, JSON_OBJECT, "an object", out, spelled);
}

int vrev__cfg_array(vrev__cfg_loader *L, json_t *obj, const char *name, json_t **out,
                    const char **spelled)
{
    return member_of_type(L, obj, name, JSON_ARRAY, "an array", out, spelled);
}

int vrev__cfg_string(vrev__cfg_loader *L, json_t *obj, const char *name, const char **out,
                     bool *present)
{
    json_t *v;
    const char *key;
    if (present)
        *present = false;
    VREV_CFG_TRY(member_of_type(L, obj, name, JSON_STRING, "a string", &v, &key));
    if (!v)
        return 0;
    char *s = vrev__cfg_strndup(L, json_string_value(v), json_string_length(v));
    if (!s)
        return vrev__cfg_nomem(L);
    *out = s;
    if (present)
        *present = true;
    return 0;
}

int vrev__cfg_bool(vrev__cfg_loader *L, json_t *obj, const char *name, bool *out)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected true or false");
    }
    *out = json_is_true(v);
    return 0;
}

int vrev__cfg_int(vrev__cfg_loader *L, json_t *obj, const char *name, int64_t min, int64_t max,
                  int64_t *out, bool *present)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    if (present)
        *present = false;
    if (!v)
        return 0;
    vrev__cfg_push_key(L, key);
    if (json_is_real(v))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a whole number");
    if (!json_is_integer(v))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a number");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "%lld is out of range (%lld..%lld)",
                              (long long)n, (long long)min, (long long)max);
    vrev__cfg_pop(L);
    *out = (int64_t)n;
    if (present)
        *present = true;
    return 0;
}

int vrev__cfg_u32(vrev__cfg_loader *L, json_t *obj, const char *name, uint32_t *out)
{
    int64_t v;
    bool present;
    VREV_CFG_TRY(vrev__cfg_int(L, obj, name, 0, UINT32_MAX, &v, &present));
    if (present)
        *out = (uint32_t)v;
    return 0;
}

int vrev__cfg_u8(vrev__cfg_loader *L, json_t *obj, const char *name, uint8_t *out)
{
    int64_t v;
    bool present;
    VREV_CFG_TRY(vrev__cfg_int(L, obj, name, 0, UINT8_MAX, &v, &present));
    if (present)
        *out = (uint8_t)v;
    return 0;
}

const char **vrev__cfg_strv(vrev__cfg_loader *L, size_t n)
{
    return vrev__cfg_alloc(L, n ? n : 1, sizeof(const char *));
}

/* Split s at commas (4.34 does not trim the pieces). */
static int split_commas(vrev__cfg_loader *L, const char *s, bool drop_empty,
                        struct vrev__strlist *out)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    const char **v = vrev__cfg_strv(L, n);
    if (!v)
        return vrev__cfg_nomem(L);
    size_t k = 0;
    for (const char *p = s;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len || !drop_empty) {
            if (!(v[k++] = vrev__cfg_strndup(L, p, len)))
                return vrev__cfg_nomem(L);
        }
        if (!end)
            break;
        p = end + 1;
    }
    out->v = v;
    out->n = k;
    return 0;
}

static int string_array(vrev__cfg_loader *L, json_t *arr, bool drop_empty,
                        struct vrev__strlist *out)
{
    const char **v = vrev__cfg_strv(L, json_array_size(arr));
    if (!v)
        return vrev__cfg_nomem(L);
    size_t k = 0, i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (!json_is_string(e)) {
            vrev__cfg_push_index(L, i);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
        }
        if (drop_empty && json_string_length(e) == 0)
            continue;
        if (!(v[k++] = vrev__cfg_strndup(L, json_string_value(e), json_string_length(e))))
            return vrev__cfg_nomem(L);
    }
    out->v = v;
    out->n = k;
    return 0;
}

int vrev__cfg_strlist(vrev__cfg_loader *L, json_t *obj, const char *name, bool drop_empty,
                      struct vrev__strlist *out, bool *present)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    if (present)
        *present = false;
    if (!v)
        return 0;
    vrev__cfg_push_key(L, key);
    if (json_is_array(v))
        VREV_CFG_TRY(string_array(L, v, drop_empty, out));
    else if (json_is_string(v))
        VREV_CFG_TRY(split_commas(L, json_string_value(v), drop_empty, out));
    else
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "expected an array of strings or a comma-separated string");
    vrev__cfg_pop(L);
    if (present)
        *present = true;
    return 0;
}

unsigned vrev__cfg_networks(vrev__cfg_loader *L, const struct vrev__strlist *names)
{
    unsigned bits = 0;
    for (size_t i = 0; i < names->n; i++) {
        if (!strcasecmp(names->v[i], "tcp"))
            bits |= VREV_ROUTE_TCP;
        else if (!strcasecmp(names->v[i], "udp"))
            bits |= VREV_ROUTE_UDP;
        else
            vrev__cfg_warn(L, false,
                           "network \"%.32s\" ignored (only \"tcp\" and \"udp\"; "
                           "V2Ray does not trim spaces either)",
                           names->v[i]);
    }
    return bits;
}

int vrev__cfg_each(vrev__cfg_loader *L, json_t *obj, const char *name, size_t size,
                   const char *empty_msg, void **out, size_t *n, vrev__cfg_elem_fn fn)
{
    json_t *arr, *e;
    const char *key;
    size_t i;
    *n = 0;
    VREV_CFG_TRY(vrev__cfg_array(L, obj, name, &arr, &key));
    if (!arr || json_array_size(arr) == 0) {
        if (!empty_msg)
            return 0;
        if (arr)
            vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "%s", empty_msg);
    }
    char *v = vrev__cfg_alloc(L, json_array_size(arr), size);
    if (!v)
        return vrev__cfg_nomem(L);
    vrev__cfg_push_key(L, key);
    json_array_foreach(arr, i, e)
    {
        vrev__cfg_push_index(L, i);
        if (!json_is_object(e))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
        VREV_CFG_TRY(fn(L, e, v + i * size));
        vrev__cfg_pop(L);
    }
    vrev__cfg_pop(L);
    *out = v;
    *n = json_array_size(arr);
    return 0;
}

/* ---- ports ---- */

/* Decimal digits only (Go's strconv.ParseUint base 10), 0..65535. */
bool vrev__cfg_parse_port_text(const char *s, size_t n, uint16_t *out)
{
    uint32_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
        if (v > 65535)
            return false;
    }
    *out = (uint16_t)v;
    return true;
}

int vrev__cfg_port(vrev__cfg_loader *L, json_t *obj, const char *name, uint16_t *out, bool *present)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    if (present)
        *present = false;
    if (!v)
        return 0;
    vrev__cfg_push_key(L, key);
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > 65535)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "port %lld is out of range (0..65535)", (long long)n);
        *out = (uint16_t)n;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!vrev__cfg_parse_port_text(s, json_string_length(v), out))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "invalid port \"%.32s\" (expected 0..65535)", s);
    } else if (json_is_real(v)) {
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a whole number");
    } else {
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a number");
    }
    vrev__cfg_pop(L);
    if (present)
        *present = true;
    return 0;
}

int vrev__cfg_server_port(vrev__cfg_loader *L, json_t *obj, const char *name, uint16_t *out)
{
    bool present;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_port(L, obj, name, out, &present));
    if (!present)
        return vrev__cfg_fail_missing(L, name);
    if (*out == 0) {
        vrev__cfg_get(L, obj, name, &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "port 0 cannot be dialled");
    }
    return 0;
}

/* "N", "A-B" (4.34's parseStringPort after "env:" expansion). */
static bool parse_range_text(const char *s, struct vrev__cfg_port_range *out)
{
    const char *dash = strchr(s, '-');
    if (!dash)
        return vrev__cfg_parse_port_text(s, strlen(s), &out->from) && (out->to = out->from, true);
    return vrev__cfg_parse_port_text(s, (size_t)(dash - s), &out->from) &&
           vrev__cfg_parse_port_text(dash + 1, strlen(dash + 1), &out->to);
}

static int range_from_string(vrev__cfg_loader *L, const char *s, struct vrev__cfg_port_range *out)
{
    if (!strncmp(s, "env:", 4)) {
        const char *val = getenv(s + 4);
        if (!val)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "environment variable %.64s is not set", s + 4);
        if (!parse_range_text(val, out))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "environment variable %.64s=\"%.32s\" is not a port or range",
                                  s + 4, val);
    } else if (!parse_range_text(s, out)) {
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "invalid port \"%.32s\" (expected N, \"A-B\" or \"env:NAME\")", s);
    }
    if (out->from > out->to)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "invalid port range %u-%u", out->from,
                              out->to);
    return 0;
}

int vrev__cfg_port_range(vrev__cfg_loader *L, json_t *obj, const char *name,
                         struct vrev__cfg_port_range *out, bool *present)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    *present = false;
    if (!v)
        return 0;
    vrev__cfg_push_key(L, key);
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > 65535)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "port %lld is out of range (0..65535)", (long long)n);
        out->from = out->to = (uint16_t)n;
    } else if (json_is_string(v)) {
        VREV_CFG_TRY(range_from_string(L, json_string_value(v), out));
    } else if (json_is_real(v)) {
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a whole number");
    } else {
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a number or a string");
    }
    vrev__cfg_pop(L);
    *present = true;
    return 0;
}

int vrev__cfg_settings(vrev__cfg_loader *L, json_t *obj, json_t **s)
{
    const char *key;
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "settings", s, &key));
    vrev__cfg_push_key(L, key ? key : "settings");
    return 0;
}

int vrev__cfg_protocol(vrev__cfg_loader *L, json_t *obj, const char *what,
                       const struct vrev__cfg_protocol_name *known, size_t n, int *proto)
{
    const char *p = NULL, *key;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "protocol", &p, NULL));
    if (!p)
        return vrev__cfg_fail_missing(L, "protocol");
    vrev__cfg_get(L, obj, "protocol", &key);
    vrev__cfg_push_key(L, key);
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(p, known[i].name) != 0)
            continue;
        if (!known[i].proto)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                                  "%s protocol \"%s\" is not supported", what, known[i].name);
        *proto = known[i].proto;
        vrev__cfg_pop(L);
        return 0;
    }
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "unknown %s protocol \"%.32s\"", what, p);
}

/* ---- ids and addresses ---- */

bool vrev__cfg_parse_uuid(const char *s, struct vrev__cfg_uuid *out)
{
    if (!vrev__uuid_parse(s, strlen(s), out->bytes))
        return false;
    vrev__uuid_format(out->bytes, out->text);
    return true;
}

int vrev__cfg_uuid(vrev__cfg_loader *L, json_t *obj, const char *name, struct vrev__cfg_uuid *out)
{
    static const uint8_t zero[16];
    static const char doc_example[] = "27848739-7e62-4138-9fd3-098a63964b6b";
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    if (!v)
        return vrev__cfg_fail_missing(L, name);
    vrev__cfg_push_key(L, key);
    /* Never echo the value: it is the credential. */
    if (!json_is_string(v))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
    if (!vrev__cfg_parse_uuid(json_string_value(v), out))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "invalid UUID (expected 8-4-4-4-12 or 32 hex digits)");
    if (!memcmp(out->bytes, zero, 16))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "the nil UUID is not a valid user id");
    if (!strcmp(out->text, doc_example))
        vrev__cfg_warn(L, false,
                       "this is the example UUID from the V2Ray documentation; "
                       "anyone can guess it");
    vrev__cfg_pop(L);
    return 0;
}

int vrev__cfg_address(vrev__cfg_loader *L, json_t *obj, const char *name, bool required,
                      const char **out)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, obj, name, &key);
    if (!v)
        return required ? vrev__cfg_fail_missing(L, name) : 0;
    vrev__cfg_push_key(L, key);
    if (!json_is_string(v))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
    const char *s = json_string_value(v);
    struct vrev__addr a;
    if (json_string_length(v) == 0)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "empty address");
    if (vrev__addr_from_text(&a, s, 0) < 0)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "invalid address \"%.64s\" (need an IP address or a domain of "
                              "letters, digits, '.', '-', '_')",
                              s);
    if (!(*out = vrev__cfg_strndup(L, s, json_string_length(v))))
        return vrev__cfg_nomem(L);
    vrev__cfg_pop(L);
    return 0;
}
