/* Config loading: limits, comment removal, jansson, then the top-level sections (log, policy,
 * reverse, inbounds, outbounds, routing) and the cross-checks between them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* ---- arena: one owner for every string and array of a description ---- */

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

struct vrev__config_arena {
    struct arena_block *head;
    size_t block; /* bytes per block */
};

#define ARENA_BLOCK (16 * 1024 - sizeof(struct arena_block))

void *vrev__cfg_alloc(vrev__cfg_loader *L, size_t n, size_t size)
{
    struct vrev__config_arena *a = L->cfg->arena;
    size_t bytes, align = sizeof(max_align_t);
    if (__builtin_mul_overflow(n, size, &bytes) || bytes > VREV_CONFIG_MAX_SIZE * 64)
        return NULL;
    bytes = (bytes + align - 1) / align * align;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > a->block ? bytes : a->block;
        b = vrev__malloc(L->ctx, sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        /* A big allocation gets its own block behind the current one, which keeps its room. */
        if (a->head && cap > a->block) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *vrev__cfg_strndup(vrev__cfg_loader *L, const char *s, size_t len)
{
    char *p = vrev__cfg_alloc(L, len + 1, 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void vrev__config_free(struct vrev__config *cfg)
{
    if (!cfg)
        return;
    struct arena_block *b = cfg->arena ? cfg->arena->head : NULL;
    while (b) {
        struct arena_block *next = b->next;
        vrev__wipe(b->data, b->used); /* UUIDs, passwords, private keys */
        vrev__free(cfg->ctx, b);
        b = next;
    }
    vrev__free(cfg->ctx, cfg->arena);
    vrev__free(cfg->ctx, cfg);
}

/* ---- error text ---- */

size_t vrev__config_error_format(const struct vrev__config_error *e, char *buf, size_t cap)
{
    char pos[48] = "";
    if (e->line)
        snprintf(pos, sizeof(pos), ":%u:%u", e->line, e->column);
    int n = snprintf(buf, cap, "%s%s: %s%s%s", e->file[0] ? e->file : "config", pos, e->path,
                     e->path[0] ? ": " : "", e->message);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- log ---- */

static int log_target(vrev__cfg_loader *L, json_t *obj, const char *name, int *type,
                      const char **path)
{
    const char *s = NULL;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, name, &s, NULL));
    if (!s || !s[0]) {
        *type = VREV_CFG_LOG_CONSOLE;
    } else if (!strcmp(s, "none")) {
        *type = VREV_CFG_LOG_NONE;
    } else {
        *type = VREV_CFG_LOG_FILE;
        *path = s;
    }
    return 0;
}

static int parse_log(vrev__cfg_loader *L, json_t *root, struct vrev__cfg_log *log)
{
    static const char *const known[] = {"access", "error", "loglevel", NULL};
    json_t *obj;
    const char *key, *level = "";
    log->access_type = VREV_CFG_LOG_NONE; /* 4.34 without a "log" object */
    log->error_type = VREV_CFG_LOG_CONSOLE;
    log->level = VREV_LOG_WARN;
    VREV_CFG_TRY(vrev__cfg_object(L, root, "log", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(log_target(L, obj, "access", &log->access_type, &log->access_path));
    VREV_CFG_TRY(log_target(L, obj, "error", &log->error_type, &log->error_path));
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "loglevel", &level, NULL));
    if (!strcasecmp(level, "debug")) {
        log->level = VREV_LOG_DEBUG;
    } else if (!strcasecmp(level, "info")) {
        log->level = VREV_LOG_INFO;
    } else if (!strcasecmp(level, "error")) {
        log->level = VREV_LOG_ERROR;
    } else if (!strcasecmp(level, "none")) {
        log->access_type = log->error_type = VREV_CFG_LOG_NONE;
    } else if (level[0] && strcasecmp(level, "warning")) {
        vrev__cfg_get(L, obj, "loglevel", &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false, "unknown log level \"%.32s\"; using \"warning\"", level);
        vrev__cfg_pop(L);
    }
    vrev__cfg_pop(L);
    return 0;
}

/* ---- policy (defaults: v4.34 features/policy SessionDefault, see config.h) ---- */

static const struct vrev__cfg_level_policy default_policy = {
    .handshake = 60,
    .conn_idle = 300,
    .uplink_only = 1,
    .downlink_only = 1,
    .buffer_size = 512 * 1024,
};

void vrev__config_policy_for_level(const struct vrev__config *cfg, uint32_t level,
                                   struct vrev__cfg_level_policy *out)
{
    for (size_t i = 0; cfg && i < cfg->policy.n_levels; i++) {
        if (cfg->policy.levels[i].level == level) {
            *out = cfg->policy.levels[i];
            return;
        }
    }
    *out = default_policy;
    out->level = level;
    /* Without an app/policy config 4.34 runs features/policy.DefaultManager, whose level 1
     * idles out after 600 s; with one, unlisted levels get the plain defaults. */
    if (level == 1 && !(cfg && cfg->policy.present))
        out->conn_idle = 600;
}

static int parse_level(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_level_policy *p)
{
    static const char *const known[] = {
        "handshake",       "connIdle",          "uplinkOnly", "downlinkOnly",
        "statsUserUplink", "statsUserDownlink", "bufferSize", NULL};
    int64_t kib;
    bool present;
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(vrev__cfg_u32(L, obj, "handshake", &p->handshake));
    VREV_CFG_TRY(vrev__cfg_u32(L, obj, "connIdle", &p->conn_idle));
    VREV_CFG_TRY(vrev__cfg_u32(L, obj, "uplinkOnly", &p->uplink_only));
    VREV_CFG_TRY(vrev__cfg_u32(L, obj, "downlinkOnly", &p->downlink_only));
    VREV_CFG_TRY(vrev__cfg_bool(L, obj, "statsUserUplink", &p->stats_user_uplink));
    VREV_CFG_TRY(vrev__cfg_bool(L, obj, "statsUserDownlink", &p->stats_user_downlink));
    VREV_CFG_TRY(vrev__cfg_int(L, obj, "bufferSize", INT32_MIN, INT32_MAX, &kib, &present));
    if (present)
        p->buffer_size = kib < 0 ? -1 : kib * 1024; /* KiB; negative: unlimited */
    return 0;
}

/* policy.levels: {"0": {...}, "1": {...}}; keys are uint32 in decimal (Go map[uint32]). */
static int parse_levels(vrev__cfg_loader *L, json_t *levels, struct vrev__cfg_policy *pol)
{
    const char *key;
    json_t *v;
    pol->levels = vrev__cfg_alloc(L, json_object_size(levels) + 1, sizeof(*pol->levels));
    if (!pol->levels)
        return vrev__cfg_nomem(L);
    json_object_foreach(levels, key, v)
    {
        char *end;
        vrev__cfg_push_key(L, key);
        unsigned long long lv = strtoull(key, &end, 10);
        if (!key[0] || *end || key[0] == '-' || key[0] == '+' || lv > UINT32_MAX)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "a level must be a number (0..4294967295)");
        if (!json_is_null(v)) {
            if (!json_is_object(v))
                return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
            struct vrev__cfg_level_policy *p = &pol->levels[pol->n_levels++];
            *p = default_policy;
            p->level = (uint32_t)lv;
            VREV_CFG_TRY(parse_level(L, v, p));
        }
        vrev__cfg_pop(L);
    }
    return 0;
}

static int parse_policy(vrev__cfg_loader *L, json_t *root, struct vrev__cfg_policy *pol)
{
    static const char *const known[] = {"levels", "system", NULL};
    static const char *const sys_known[] = {"statsInboundUplink", "statsInboundDownlink",
                                            "statsOutboundUplink", "statsOutboundDownlink", NULL};
    json_t *obj, *sub;
    const char *key, *subkey;
    VREV_CFG_TRY(vrev__cfg_object(L, root, "policy", &obj, &key));
    if (!obj)
        return 0;
    pol->present = true;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "levels", &sub, &subkey));
    if (sub) {
        vrev__cfg_push_key(L, subkey);
        VREV_CFG_TRY(parse_levels(L, sub, pol));
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "system", &sub, &subkey));
    if (sub) {
        vrev__cfg_push_key(L, subkey);
        vrev__cfg_check_keys(L, sub, sys_known);
        VREV_CFG_TRY(vrev__cfg_bool(L, sub, "statsInboundUplink", &pol->stats_inbound_uplink));
        VREV_CFG_TRY(vrev__cfg_bool(L, sub, "statsInboundDownlink", &pol->stats_inbound_downlink));
        VREV_CFG_TRY(vrev__cfg_bool(L, sub, "statsOutboundUplink", &pol->stats_outbound_uplink));
        VREV_CFG_TRY(
            vrev__cfg_bool(L, sub, "statsOutboundDownlink", &pol->stats_outbound_downlink));
        vrev__cfg_pop(L);
    }
    vrev__cfg_pop(L);
    return 0;
}

/* ---- reverse ---- */

static bool valid_domain(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* A member that must be present and non-empty; *key gets its spelling. */
static int required_string(vrev__cfg_loader *L, json_t *obj, const char *name, const char **out,
                           const char **key)
{
    bool present;
    *out = "";
    VREV_CFG_TRY(vrev__cfg_string(L, obj, name, out, &present));
    if (!present)
        return vrev__cfg_fail_missing(L, name);
    vrev__cfg_get(L, obj, name, key);
    if (!(*out)[0]) {
        vrev__cfg_push_key(L, *key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "must not be empty");
    }
    return 0;
}

static int parse_reverse_entry(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_reverse_entry *e)
{
    static const char *const known[] = {"tag", "domain", NULL};
    const char *key;
    if (!json_is_object(obj))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(required_string(L, obj, "tag", &e->tag, &key));
    VREV_CFG_TRY(required_string(L, obj, "domain", &e->domain, &key));
    if (!valid_domain(e->domain)) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "\"%.64s\" is not a valid domain (1..255 characters of letters, "
                              "digits, '.', '-', '_')",
                              e->domain);
    }
    return 0;
}

/* Portal tags are outbound tags, so they must be unique; bridges may share one. */
static int parse_reverse_list(vrev__cfg_loader *L, json_t *obj, const char *name, bool unique,
                              struct vrev__cfg_reverse_entry **out, size_t *n)
{
    json_t *arr, *e;
    const char *key;
    size_t i;
    VREV_CFG_TRY(vrev__cfg_array(L, obj, name, &arr, &key));
    if (!arr)
        return 0;
    if (!(*out = vrev__cfg_alloc(L, json_array_size(arr) + 1, sizeof(**out))))
        return vrev__cfg_nomem(L);
    vrev__cfg_push_key(L, key);
    json_array_foreach(arr, i, e)
    {
        vrev__cfg_push_index(L, i);
        VREV_CFG_TRY(parse_reverse_entry(L, e, &(*out)[i]));
        for (size_t j = 0; unique && j < i; j++) {
            if (!strcmp((*out)[j].tag, (*out)[i].tag)) {
                vrev__cfg_get(L, e, "tag", &key);
                vrev__cfg_push_key(L, key);
                return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                      "portal tag \"%.64s\" is used twice", (*out)[i].tag);
            }
        }
        vrev__cfg_pop(L);
    }
    *n = json_array_size(arr);
    vrev__cfg_pop(L);
    return 0;
}

static int parse_reverse(vrev__cfg_loader *L, json_t *root, struct vrev__cfg_reverse *rev)
{
    static const char *const known[] = {"bridges", "portals", NULL};
    json_t *obj;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_object(L, root, "reverse", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(parse_reverse_list(L, obj, "bridges", false, &rev->bridges, &rev->n_bridges));
    VREV_CFG_TRY(parse_reverse_list(L, obj, "portals", true, &rev->portals, &rev->n_portals));
    vrev__cfg_pop(L);
    return 0;
}

/* ---- inbounds and outbounds: "inbound", "inboundDetour", "inbounds" in 4.34's order ---- */

struct handler_source {
    const char *single; /* deprecated one-object form */
    const char *detour; /* deprecated array form */
    const char *list;
};

static const struct handler_source inbound_source = {"inbound", "inboundDetour", "inbounds"};
static const struct handler_source outbound_source = {"outbound", "outboundDetour", "outbounds"};

static int handler_count(vrev__cfg_loader *L, json_t *root, const struct handler_source *src,
                         json_t **single, json_t **detour, json_t **list, size_t *n)
{
    const char *key;
    VREV_CFG_TRY(vrev__cfg_object(L, root, src->single, single, &key));
    VREV_CFG_TRY(vrev__cfg_array(L, root, src->detour, detour, &key));
    VREV_CFG_TRY(vrev__cfg_array(L, root, src->list, list, &key));
    *n = (*single ? 1 : 0) + json_array_size(*detour) + json_array_size(*list);
    if (*single || *detour) {
        vrev__cfg_get(L, root, *single ? src->single : src->detour, &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "\"%s\" is deprecated; use \"%s\"", key, src->list);
        vrev__cfg_pop(L);
    }
    return 0;
}

/* A handler as compact JSON with sorted keys, in the arena (vrev__cfg_inbound.json). */
static int fingerprint(vrev__cfg_loader *L, json_t *obj, const char **out)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    char *copy = s ? vrev__cfg_strndup(L, s, strlen(s)) : NULL;
    if (s) { /* jansson's allocation: its own free (a program may set them, cli/mem.c) */
        json_malloc_t m;
        json_free_t f;
        json_get_alloc_funcs(&m, &f);
        vrev__wipe(s, strlen(s));
        f(s);
    }
    if (!copy)
        return vrev__cfg_nomem(L);
    *out = copy;
    return 0;
}

/* Tags identify handlers for routing: with two handlers of one tag 4.34 silently keeps the
 * last, so a duplicate is an error here. */
static int one_inbound(vrev__cfg_loader *L, json_t *obj, size_t k, uint16_t legacy_port)
{
    struct vrev__config *cfg = L->cfg;
    struct vrev__cfg_inbound *in = &cfg->inbounds[k];
    const char *key;
    VREV_CFG_TRY(vrev__cfg_inbound(L, obj, in, legacy_port));
    VREV_CFG_TRY(fingerprint(L, obj, &in->json));
    for (size_t i = 0; in->tag[0] && i < k; i++)
        if (!strcmp(cfg->inbounds[i].tag, in->tag)) {
            vrev__cfg_get(L, obj, "tag", &key);
            vrev__cfg_push_key(L, key);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "inbound tag \"%.64s\" is used twice",
                                  in->tag);
        }
    for (size_t i = 0; in->tag[0] && i < cfg->reverse.n_bridges; i++)
        if (!strcmp(cfg->reverse.bridges[i].tag, in->tag)) {
            vrev__cfg_get(L, obj, "tag", &key);
            vrev__cfg_push_key(L, key);
            vrev__cfg_warn(L, false,
                           "\"%.64s\" is also a bridge tag: routing rules on it match "
                           "both",
                           in->tag);
            vrev__cfg_pop(L);
            break;
        }
    return 0;
}

static int one_outbound(vrev__cfg_loader *L, json_t *obj, size_t k, uint16_t unused)
{
    struct vrev__config *cfg = L->cfg;
    struct vrev__cfg_outbound *out = &cfg->outbounds[k];
    const char *key;
    (void)unused;
    VREV_CFG_TRY(vrev__cfg_outbound(L, obj, out));
    VREV_CFG_TRY(fingerprint(L, obj, &out->json));
    for (size_t i = 0; out->tag[0] && i < k; i++)
        if (!strcmp(cfg->outbounds[i].tag, out->tag)) {
            vrev__cfg_get(L, obj, "tag", &key);
            vrev__cfg_push_key(L, key);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "outbound tag \"%.64s\" is used twice", out->tag);
        }
    for (size_t i = 0; out->tag[0] && i < cfg->reverse.n_portals; i++)
        if (!strcmp(cfg->reverse.portals[i].tag, out->tag)) {
            vrev__cfg_get(L, obj, "tag", &key);
            vrev__cfg_push_key(L, key);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "outbound tag \"%.64s\" is also the tag of reverse.portals[%zu] "
                                  "(portals are outbounds too)",
                                  out->tag, i);
        }
    return 0;
}

typedef int (*handler_fn)(vrev__cfg_loader *L, json_t *obj, size_t k, uint16_t legacy_port);

/* Run fn over "single", then every element of "detour", then of "list", as 4.34 concatenates
 * them; the deprecated top-level "port" applies to the first inbound when it has none. */
static int each_handler(vrev__cfg_loader *L, json_t *root, const struct handler_source *src,
                        json_t *single, json_t *detour, json_t *list, handler_fn fn,
                        uint16_t legacy_port, size_t *count)
{
    const char *key;
    size_t k = 0, i;
    json_t *e;
    if (single) {
        vrev__cfg_get(L, root, src->single, &key);
        vrev__cfg_push_key(L, key);
        VREV_CFG_TRY(fn(L, single, k++, legacy_port));
        vrev__cfg_pop(L);
    }
    json_t *arrays[2] = {detour, list};
    const char *names[2] = {src->detour, src->list};
    for (int a = 0; a < 2; a++) {
        if (!arrays[a])
            continue;
        vrev__cfg_get(L, root, names[a], &key);
        vrev__cfg_push_key(L, key);
        json_array_foreach(arrays[a], i, e)
        {
            vrev__cfg_push_index(L, i);
            VREV_CFG_TRY(fn(L, e, k, k == 0 ? legacy_port : 0));
            k++;
            vrev__cfg_pop(L);
        }
        vrev__cfg_pop(L);
    }
    *count = k;
    return 0;
}

static int parse_inbounds(vrev__cfg_loader *L, json_t *root)
{
    json_t *single, *detour, *list;
    size_t n;
    int64_t legacy_port = 0;
    VREV_CFG_TRY(vrev__cfg_int(L, root, "port", 0, 65535, &legacy_port, NULL));
    VREV_CFG_TRY(handler_count(L, root, &inbound_source, &single, &detour, &list, &n));
    if (!(L->cfg->inbounds = vrev__cfg_alloc(L, n + 1, sizeof(*L->cfg->inbounds))))
        return vrev__cfg_nomem(L);
    return each_handler(L, root, &inbound_source, single, detour, list, one_inbound,
                        (uint16_t)legacy_port, &L->cfg->n_inbounds);
}

static int parse_outbounds(vrev__cfg_loader *L, json_t *root)
{
    json_t *single, *detour, *list;
    size_t n;
    VREV_CFG_TRY(handler_count(L, root, &outbound_source, &single, &detour, &list, &n));
    if (!(L->cfg->outbounds = vrev__cfg_alloc(L, n + 1, sizeof(*L->cfg->outbounds))))
        return vrev__cfg_nomem(L);
    return each_handler(L, root, &outbound_source, single, detour, list, one_outbound, 0,
                        &L->cfg->n_outbounds);
}

/* ---- the document ---- */

static int build_outbound_tags(vrev__cfg_loader *L)
{
    struct vrev__config *cfg = L->cfg;
    size_t n = cfg->n_outbounds + cfg->reverse.n_portals;
    const char **v = vrev__cfg_strv(L, n);
    if (!v)
        return vrev__cfg_nomem(L);
    for (size_t i = 0; i < cfg->n_outbounds; i++)
        v[i] = cfg->outbounds[i].tag;
    for (size_t i = 0; i < cfg->reverse.n_portals; i++)
        v[cfg->n_outbounds + i] = cfg->reverse.portals[i].tag;
    cfg->outbound_tags.v = v;
    cfg->outbound_tags.n = n;
    return 0;
}

static int parse_routing_section(vrev__cfg_loader *L, json_t *root)
{
    json_t *obj;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_object(L, root, "routing", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    VREV_CFG_TRY(vrev__cfg_routing(L, obj, &L->cfg->routing));
    vrev__cfg_pop(L);
    return 0;
}

static void warn_ignored_sections(vrev__cfg_loader *L, json_t *root)
{
    static const char *const ignored[] = {"dns", "transport", "api", "stats", NULL};
    const char *key;
    for (size_t i = 0; ignored[i]; i++) {
        if (!vrev__cfg_get(L, root, ignored[i], &key))
            continue;
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "\"%s\" is not supported by libvrev and is ignored", ignored[i]);
        vrev__cfg_pop(L);
    }
}

static int build(vrev__cfg_loader *L, json_t *root)
{
    static const char *const known[] = {
        "log",    "inbounds", "outbounds", "routing",       "reverse",
        "policy", "dns",      "transport", "api",           "stats",
        "port",   "inbound",  "outbound",  "inboundDetour", "outboundDetour",
        "vrev",   NULL};
    struct vrev__config *cfg = L->cfg;
    vrev__cfg_check_keys(L, root, known);
    warn_ignored_sections(L, root);
    VREV_CFG_TRY(parse_log(L, root, &cfg->log));
    VREV_CFG_TRY(parse_policy(L, root, &cfg->policy));
    VREV_CFG_TRY(parse_reverse(L, root, &cfg->reverse));
    VREV_CFG_TRY(vrev__cfg_vrev(L, root, &cfg->vrev));
    VREV_CFG_TRY(parse_inbounds(L, root));
    VREV_CFG_TRY(parse_outbounds(L, root));
    VREV_CFG_TRY(vrev__cfg_vrev_outbounds(L, root));
    VREV_CFG_TRY(build_outbound_tags(L));
    VREV_CFG_TRY(parse_routing_section(L, root));
    vrev__cfg_check_bridge_reach(L, root);
    if (cfg->outbound_tags.n == 0 && (cfg->n_inbounds || cfg->reverse.n_bridges))
        vrev__cfg_warn(L, false, "no outbounds and no portals: every connection is dropped");
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A jansson error -> our error, pointing at the start of the bad token. jansson's "near
 * '...'" is kept only when the token is not a string, which might be a credential. */
static int syntax_error(vrev__cfg_loader *L, const json_error_t *je)
{
    struct vrev__config_error *e = L->err;
    if (json_error_code(je) == json_error_out_of_memory)
        return vrev__cfg_nomem(L);
    size_t pos = je->position > 0 ? (size_t)je->position : 0, at;
    char text[JSON_ERROR_TEXT_LENGTH];
    snprintf(text, sizeof(text), "%s", je->text);
    char *near = strstr(text, " near ");
    if (pos > L->len)
        pos = L->len;
    if (pos > 0 && !(near && strstr(near, "end of file")))
        at = vrev__json_token_start(L->clean, L->len, pos - 1);
    else
        at = pos;
    if (near && near[6] == '\'' && near[7] == '"')
        *near = '\0';
    size_t comma = at;
    while (comma > 0 && is_space(L->clean[comma - 1]))
        comma--;
    e->code = VREV_ERR_CONFIG_SYNTAX;
    if (at < L->len && (L->clean[at] == '}' || L->clean[at] == ']') && comma > 0 &&
        L->clean[comma - 1] == ',') {
        char closer = L->clean[at];
        at = comma - 1;
        snprintf(e->message, sizeof(e->message),
                 "invalid JSON: trailing comma before '%c' (JSON does not allow it)", closer);
    } else {
        snprintf(e->message, sizeof(e->message), "invalid JSON: %s", text);
    }
    vrev__json_pos_linecol(L->text, L->len, at, &e->line, &e->column);
    return e->code;
}

static int limit_error(vrev__cfg_loader *L, size_t off, const char *msg)
{
    struct vrev__config_error *e = L->err;
    e->code = VREV_ERR_CONFIG_LIMIT;
    snprintf(e->message, sizeof(e->message), "%s", msg);
    vrev__json_pos_linecol(L->text, L->len, off, &e->line, &e->column);
    return e->code;
}

/* 4.34 decodes the first JSON value and ignores the rest; so do we, with a warning. */
static void check_trailing(vrev__cfg_loader *L, size_t end)
{
    while (end < L->len && is_space(L->clean[end]))
        end++;
    if (end >= L->len || !vrev__log_enabled(L->ctx, VREV_LOG_WARN))
        return;
    unsigned line, col;
    vrev__json_pos_linecol(L->text, L->len, end, &line, &col);
    vrev__log_all(L->ctx, VREV_LOG_WARN, "config",
                  "%s:%u:%u: text after the JSON object is ignored", L->file, line, col);
}

/* jansson's copies of the text: UUIDs, passwords and inline private keys are string values
 * (and anything may be a key). Wiped before jansson frees them; its lexer's scratch buffer it
 * frees itself, unwiped: only a program may make jansson wipe all it frees
 * (json_set_alloc_funcs is process-global, and the library keeps no global state; the vrev
 * program does it, cli/mem.c). Nesting is at most VREV_CONFIG_MAX_DEPTH (checked first). */
static void wipe_tree(json_t *v)
{
    if (json_is_string(v)) {
        vrev__wipe((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            wipe_tree(json_array_get(v, i));
    } else if (json_is_object(v)) {
        void *it = json_object_iter(v);
        while (it) {
            void *next = json_object_iter_next(v, it); /* the list, not the key's hash */
            wipe_tree(json_object_iter_value(it));
#if JANSSON_VERSION_HEX >= 0x020e00 /* 2.14: keys may hold NUL bytes */
            vrev__wipe((char *)json_object_iter_key(it), json_object_iter_key_len(it));
#else
            vrev__wipe((char *)json_object_iter_key(it), strlen(json_object_iter_key(it)));
#endif
            it = next;
        }
    }
}

/* A key given twice in one object: jansson (like V2Ray's decoder) takes the last without a
 * word, so the first one's value is lost; say where. */
static void warn_duplicate(size_t first, size_t dup, void *user)
{
    vrev__cfg_loader *L = user;
    char key[80];
    size_t n = 0, i = dup + 1;
    while (i < L->len && L->clean[i] != '"' && n + 4 < sizeof(key)) {
        if (L->clean[i] == '\\' && i + 1 < L->len)
            key[n++] = L->clean[i++];
        key[n++] = L->clean[i++];
    }
    key[n] = '\0';
    unsigned line, col;
    vrev__json_pos_linecol(L->text, L->len, first, &line, &col);
    vrev__cfg_warn_at(L, dup, "duplicate key \"%s%s\" (first at %u:%u): only the last one is used",
                      key, i < L->len && L->clean[i] != '"' ? "..." : "", line, col);
}

static int parse_text(vrev__cfg_loader *L, size_t arena_block, struct vrev__config **out)
{
    size_t off;
    if (vrev__json_too_deep(L->clean, L->len, VREV_CONFIG_MAX_DEPTH, &off))
        return limit_error(L, off, "JSON nested deeper than 64 levels");
    json_error_t je;
    json_t *root = json_loadb(L->clean, L->len, JSON_DISABLE_EOF_CHECK, &je);
    if (!root)
        return syntax_error(L, &je);
    int rc = 0;
    if (!json_is_object(root)) {
        L->err->code = rc = VREV_ERR_CONFIG_SYNTAX;
        snprintf(L->err->message, sizeof(L->err->message), "the config must be a JSON object");
        vrev__json_pos_linecol(L->text, L->len, vrev__json_token_start(L->clean, L->len, 0),
                               &L->err->line, &L->err->column);
    }
    if (!rc)
        check_trailing(L, (size_t)je.position);
    if (!rc && vrev__log_enabled(L->ctx, VREV_LOG_WARN) &&
        !vrev__json_dup_keys(L->ctx, L->clean, (size_t)je.position, warn_duplicate, L))
        rc = vrev__cfg_nomem(L);
    struct vrev__config *cfg = rc ? NULL : vrev__calloc(L->ctx, 1, sizeof(*cfg));
    if (!rc && cfg) {
        cfg->ctx = L->ctx;
        if (!(cfg->arena = vrev__calloc(L->ctx, 1, sizeof(*cfg->arena))))
            rc = vrev__cfg_nomem(L);
        else
            cfg->arena->block = arena_block ? arena_block : ARENA_BLOCK;
        L->cfg = cfg;
        if (!rc)
            rc = build(L, root);
    } else if (!rc) {
        rc = vrev__cfg_nomem(L);
    }
    wipe_tree(root);
    json_decref(root);
    if (rc < 0) {
        vrev__config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int vrev__config_load(vrev_ctx *ctx, const char *text, size_t len, const char *filename,
                      struct vrev__config **out, struct vrev__config_error *err)
{
    return vrev__config_load_ex(ctx, text, len, filename, 0, out, err);
}

int vrev__config_load_ex(vrev_ctx *ctx, const char *text, size_t len, const char *filename,
                         size_t arena_block, struct vrev__config **out,
                         struct vrev__config_error *err)
{
    struct vrev__config_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", filename ? filename : "config");
    if (out)
        *out = NULL;
    if (!ctx || !out || (!text && len)) {
        err->code = VREV_ERR_INVAL;
        snprintf(err->message, sizeof(err->message), "invalid argument");
        return VREV_ERR_INVAL;
    }
    if (len > VREV_CONFIG_MAX_SIZE) {
        err->code = VREV_ERR_CONFIG_LIMIT;
        snprintf(err->message, sizeof(err->message),
                 "the config is %zu bytes; the limit is 1 MiB (%zu bytes)", len,
                 VREV_CONFIG_MAX_SIZE);
        return err->code;
    }
    char *clean = vrev__malloc(ctx, len + 1);
    vrev__cfg_loader L = {.ctx = ctx,
                          .text = text ? text : "",
                          .clean = clean,
                          .len = len,
                          .file = err->file,
                          .err = err};
    if (!clean)
        return vrev__cfg_nomem(&L);
    vrev__config_strip_comments(L.text, len, clean);
    clean[len] = '\0';
    /* A UTF-8 byte order mark: Go's decoder rejects it; editors on Windows add it. */
    if (len >= 3 && !memcmp(clean, "\xEF\xBB\xBF", 3))
        memset(clean, ' ', 3);
    int rc = parse_text(&L, arena_block, out);
    vrev__wipe(clean, len);
    vrev__free(ctx, clean);
    return rc;
}
