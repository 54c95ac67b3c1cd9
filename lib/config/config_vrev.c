/* The top-level "vrev" object: libvrev's settings that V2Ray has no place for.
 *
 *   "vrev": {
 *     "limits":  { "sessionRate": 5000, "bufferedTotal": 134217728 },
 *     "bridges": { "<reverse.bridges[] tag>": { "allow": ["tcp:127.0.0.1:8080"] } },
 *     "outbounds": { "<freedom outbound tag>": { "proxyProtocol": "v2" } }
 *   }
 *
 * V2Ray 4.34 ignores an unknown top-level key (`v2ray -test -config` says "Configuration OK"
 * for a file with this object), so one file serves both. Inside "vrev" nothing is ignored: an
 * unknown key is an error, as a misspelt limit would otherwise silently keep its default.
 * The check that a bridge's sessions cannot dial whatever the portal names lives here too: it
 * is what "allow" is for. */
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"
#include "reverse/reverse.h"
#include "vrev/ctx.h"

/* ---- limits ---- */

/* The limit whose name is `key` (matched as the loader matches keys), or NULL. */
static const char *limit_name(const char *key, uint64_t *lo, uint64_t *hi)
{
    const char *name;
    for (size_t i = 0; (name = vrev_limit_info(i, NULL, lo, hi, NULL)); i++)
        if (vrev__cfg_key_equal(key, name))
            return name;
    return NULL;
}

static int unknown_limit(vrev__cfg_loader *L, const char *key)
{
    char names[256] = "";
    size_t n = 0;
    const char *name;
    for (size_t i = 0; (name = vrev_limit_info(i, NULL, NULL, NULL, NULL)); i++) {
        int w = snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "", name);
        if (w < 0 || (size_t)w >= sizeof(names) - n)
            break;
        n += (size_t)w;
    }
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "unknown limit \"%.24s\" (limits: %s)", key,
                          names);
}

static int parse_limits(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_vrev *out)
{
    const char *key;
    json_t *v;
    if (!(out->limits = vrev__cfg_alloc(L, json_object_size(obj) + 1, sizeof(*out->limits))))
        return vrev__cfg_nomem(L);
    json_object_foreach(obj, key, v)
    {
        uint64_t lo, hi;
        vrev__cfg_push_key(L, key);
        const char *name = limit_name(key, &lo, &hi);
        if (!name)
            return unknown_limit(L, key);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) < lo || (uint64_t)json_integer_value(v) > hi)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "limit %s must be a whole number from %llu to %llu", name,
                                  (unsigned long long)lo, (unsigned long long)hi);
        out->limits[out->n_limits++] =
            (struct vrev__cfg_limit){name, (uint64_t)json_integer_value(v)};
        vrev__cfg_pop(L);
    }
    return 0;
}

/* ---- bridges' allow-lists ---- */

static bool is_bridge_tag(const struct vrev__config *cfg, const char *tag)
{
    for (size_t i = 0; i < cfg->reverse.n_bridges; i++)
        if (!strcmp(cfg->reverse.bridges[i].tag, tag))
            return true;
    return false;
}

/* Every member of obj must be in known[] (NULL-terminated): an error names the first other. */
static int strict_keys(vrev__cfg_loader *L, json_t *obj, const char *const *known, const char *what)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!vrev__cfg_known_key(key, known)) {
            vrev__cfg_push_key(L, key);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "unknown key \"%.32s\" in %s", key,
                                  what);
        }
    }
    return 0;
}

static int parse_allow(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_bridge_allow *b)
{
    static const char *const known[] = {"allow", NULL};
    const char *key;
    json_t *arr, *e;
    size_t i;
    if (!json_is_object(obj))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    VREV_CFG_TRY(strict_keys(L, obj, known, "a bridge's settings (known: \"allow\")"));
    VREV_CFG_TRY(vrev__cfg_array(L, obj, "allow", &arr, &key));
    if (!arr)
        return vrev__cfg_fail_missing(L, "allow");
    vrev__cfg_push_key(L, key);
    if (!json_array_size(arr)) /* "route everything" would be the opposite of what it says */
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "lists no target: give at least one (\"tcp:HOST:PORT\")");
    const char **v = vrev__cfg_strv(L, json_array_size(arr));
    if (!v)
        return vrev__cfg_nomem(L);
    json_array_foreach(arr, i, e)
    {
        int network;
        struct vrev__addr a;
        vrev__cfg_push_index(L, i);
        if (!json_is_string(e))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
        if (!(v[i] = vrev__cfg_strndup(L, json_string_value(e), json_string_length(e))))
            return vrev__cfg_nomem(L);
        if (strlen(v[i]) != json_string_length(e) ||
            vrev__bridge_target_parse(v[i], &network, &a) < 0)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "not a target: need \"tcp:HOST:PORT\" or \"udp:HOST:PORT\" "
                                  "(an IPv6 host in brackets)");
        vrev__cfg_pop(L);
    }
    b->allow = (struct vrev__strlist){v, json_array_size(arr)};
    vrev__cfg_pop(L);
    return 0;
}

static int parse_bridges(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_vrev *out)
{
    const char *tag;
    json_t *v;
    if (!(out->bridges = vrev__cfg_alloc(L, json_object_size(obj) + 1, sizeof(*out->bridges))))
        return vrev__cfg_nomem(L);
    json_object_foreach(obj, tag, v)
    {
        vrev__cfg_push_key(L, tag);
        if (!is_bridge_tag(L->cfg, tag))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "no bridge in reverse.bridges is tagged \"%.64s\"", tag);
        struct vrev__cfg_bridge_allow *b = &out->bridges[out->n_bridges];
        if (!(b->tag = vrev__cfg_strndup(L, tag, strlen(tag))))
            return vrev__cfg_nomem(L);
        VREV_CFG_TRY(parse_allow(L, v, b));
        out->n_bridges++;
        vrev__cfg_pop(L);
    }
    return 0;
}

/* "metrics": "HOST:PORT" (an IP literal: the endpoint is bound as given, never resolved). */
static int parse_metrics(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_vrev *out)
{
    const char *key;
    struct vrev__addr a;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "metrics", &out->metrics, NULL));
    if (!out->metrics)
        return 0;
    if (vrev__addr_from_hostport(&a, out->metrics) < 0 || a.type == VREV_ADDR_DOMAIN) {
        vrev__cfg_get(L, obj, "metrics", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "not an address: need \"IP:PORT\" (\"127.0.0.1:9100\", "
                              "\"[::1]:9100\")");
    }
    return 0;
}

int vrev__cfg_vrev(vrev__cfg_loader *L, json_t *root, struct vrev__cfg_vrev *out)
{
    static const char *const known[] = {"limits", "bridges", "metrics", "outbounds", NULL};
    json_t *obj, *sub;
    const char *key, *subkey;
    VREV_CFG_TRY(vrev__cfg_object(L, root, "vrev", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    VREV_CFG_TRY(strict_keys(L, obj, known,
                             "\"vrev\" (known: \"limits\", \"bridges\", \"metrics\", "
                             "\"outbounds\")"));
    VREV_CFG_TRY(parse_metrics(L, obj, out));
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "limits", &sub, &subkey));
    if (sub) {
        vrev__cfg_push_key(L, subkey);
        VREV_CFG_TRY(parse_limits(L, sub, out));
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "bridges", &sub, &subkey));
    if (sub) {
        vrev__cfg_push_key(L, subkey);
        VREV_CFG_TRY(parse_bridges(L, sub, out));
        vrev__cfg_pop(L);
    }
    vrev__cfg_pop(L);
    return 0;
}

/* ---- outbounds: a PROXY header to the target ---- */

static struct vrev__cfg_outbound *find_outbound(const struct vrev__config *cfg, const char *tag)
{
    for (size_t i = 0; i < cfg->n_outbounds; i++)
        if (!strcmp(cfg->outbounds[i].tag, tag))
            return &cfg->outbounds[i];
    return NULL;
}

/* "proxyProtocol": "v1" | "v2" | 1 | 2 (Xray's freedom spells it as a number) | 0 | "none" */
static int proxy_version(vrev__cfg_loader *L, json_t *v, int *out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
    *out = s && !strcmp(s, "v1")     ? 1
           : s && !strcmp(s, "v2")   ? 2
           : s && !strcmp(s, "none") ? 0
           : n >= 0 && n <= 2        ? (int)n
                                     : -1;
    if (*out < 0)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "expected \"v1\", \"v2\" (or 1, 2) or \"none\" (0)");
    return 0;
}

static int parse_outbound(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_outbound *o)
{
    static const char *const known[] = {"proxyProtocol", NULL};
    const char *key;
    if (!json_is_object(obj))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    VREV_CFG_TRY(strict_keys(L, obj, known, "an outbound's settings (known: \"proxyProtocol\")"));
    json_t *v = vrev__cfg_get(L, obj, "proxyProtocol", &key);
    if (!v)
        return 0;
    vrev__cfg_push_key(L, key);
    if (o->protocol != VREV_CFG_OUT_FREEDOM)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "a PROXY header is sent by a freedom outbound only");
    VREV_CFG_TRY(proxy_version(L, v, &o->settings.freedom.proxy_protocol));
    vrev__cfg_pop(L);
    return 0;
}

int vrev__cfg_vrev_outbounds(vrev__cfg_loader *L, json_t *root)
{
    json_t *obj, *sub, *v;
    const char *key, *subkey, *tag;
    VREV_CFG_TRY(vrev__cfg_object(L, root, "vrev", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "outbounds", &sub, &subkey));
    if (sub) {
        vrev__cfg_push_key(L, subkey);
        json_object_foreach(sub, tag, v)
        {
            vrev__cfg_push_key(L, tag);
            struct vrev__cfg_outbound *o = find_outbound(L->cfg, tag);
            if (!o)
                return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                      "no outbound in outbounds is tagged \"%.64s\"", tag);
            VREV_CFG_TRY(parse_outbound(L, v, o));
            vrev__cfg_pop(L);
        }
        vrev__cfg_pop(L);
    }
    vrev__cfg_pop(L);
    return 0;
}

const struct vrev__strlist *vrev__config_bridge_allow(const struct vrev__config *cfg,
                                                      const char *tag)
{
    for (size_t i = 0; cfg && tag && i < cfg->vrev.n_bridges; i++)
        if (!strcmp(cfg->vrev.bridges[i].tag, tag))
            return &cfg->vrev.bridges[i].allow;
    return NULL;
}

/* ---- can a bridge's sessions dial whatever the portal names? ----
 *
 * A session the portal opens enters routing with the bridge's tag as its inbound tag. A
 * freedom outbound without "redirect" dials the session's own target: with V2Ray (and so in
 * JSON mode here) the portal then reaches any host and port the bridge can, names resolved by
 * the bridge. The check is conservative: a rule that may apply to the bridge's sessions (its
 * inboundTag lists the bridge, or it has none) counts whatever its other conditions, since the
 * portal picks the target they test; the default outbound counts unless a rule with no other
 * condition catches all the bridge's sessions before it. */

static bool rule_applies(const struct vrev__rule_spec *r, const char *tag)
{
    if (!r->inbound_tags.n)
        return true;
    for (size_t i = 0; i < r->inbound_tags.n; i++)
        if (!strcmp(r->inbound_tags.v[i], tag))
            return true;
    return false;
}

static bool catches_all(const struct vrev__rule_spec *r)
{
    return !r->domains.n && !r->ips.n && !r->ports && !r->source_ports &&
           (!r->networks || r->networks == (VREV_ROUTE_TCP | VREV_ROUTE_UDP)) && !r->sources.n &&
           !r->users.n && !r->protocols.n;
}

static const struct vrev__cfg_balancer *find_balancer(const struct vrev__config *cfg,
                                                      const char *tag)
{
    for (size_t i = 0; tag && i < cfg->routing.n_balancers; i++)
        if (!strcmp(cfg->routing.balancers[i].tag, tag))
            return &cfg->routing.balancers[i];
    return NULL;
}

/* Does rule r send to outbound `out` (directly or through a balancer's selectors)? */
static bool rule_targets(const struct vrev__config *cfg, const struct vrev__rule_spec *r,
                         const char *out)
{
    if (r->outbound_tag)
        return !strcmp(r->outbound_tag, out);
    const struct vrev__cfg_balancer *b = find_balancer(cfg, r->balancer_tag);
    for (size_t i = 0; b && i < b->selectors.n; i++)
        if (!strncmp(out, b->selectors.v[i], strlen(b->selectors.v[i])))
            return true;
    return false;
}

/* How the bridge's sessions reach outbound k: "routing.rules[i]", "the default outbound", or
 * "" (they do not). */
static void reach(const struct vrev__config *cfg, const char *bridge, size_t k, char *how,
                  size_t cap)
{
    const char *tag = cfg->outbounds[k].tag;
    how[0] = '\0';
    for (size_t i = 0; i < cfg->routing.n_rules; i++) {
        const struct vrev__rule_spec *r = &cfg->routing.rules[i];
        if (!rule_applies(r, bridge))
            continue;
        if (tag[0] && rule_targets(cfg, r, tag)) {
            snprintf(how, cap, "by routing.rules[%zu]", i);
            return;
        }
        if (catches_all(r))
            return;
    }
    if (k == 0)
        snprintf(how, cap, "as the default (first) outbound");
}

static void warn_bridge(vrev__cfg_loader *L, json_t *root, size_t b)
{
    const struct vrev__config *cfg = L->cfg;
    const char *tag = cfg->reverse.bridges[b].tag;
    char how[96];
    for (size_t k = 0; k < cfg->n_outbounds; k++) {
        const struct vrev__cfg_outbound *o = &cfg->outbounds[k];
        if (o->protocol != VREV_CFG_OUT_FREEDOM || o->settings.freedom.redirect)
            continue;
        reach(cfg, tag, k, how, sizeof(how));
        if (!how[0])
            continue;
        const char *rkey, *bkey;
        json_t *rev = vrev__cfg_get(L, root, "reverse", &rkey);
        vrev__cfg_get(L, rev, "bridges", &bkey);
        vrev__cfg_push_key(L, rkey);
        vrev__cfg_push_key(L, bkey);
        vrev__cfg_push_index(L, b);
        vrev__cfg_warn(L, false,
                       "the sessions of bridge \"%.40s\" reach freedom outbound \"%.40s\" %s; "
                       "it has no \"redirect\", so the portal can make it dial any host and "
                       "port (as in V2Ray). To allow only some targets, add \"vrev\": "
                       "{\"bridges\": {\"%.40s\": {\"allow\": [\"tcp:HOST:PORT\", ...]}}}",
                       tag, o->tag[0] ? o->tag : "(untagged)", how, tag);
        vrev__cfg_pop(L);
        vrev__cfg_pop(L);
        vrev__cfg_pop(L);
        return; /* one warning per bridge: the fix is the same */
    }
}

void vrev__cfg_check_bridge_reach(vrev__cfg_loader *L, json_t *root)
{
    const struct vrev__config *cfg = L->cfg;
    for (size_t b = 0; b < cfg->reverse.n_bridges; b++) {
        const char *tag = cfg->reverse.bridges[b].tag;
        bool seen = false; /* bridges may share a tag: one warning for it */
        for (size_t j = 0; j < b && !seen; j++)
            seen = !strcmp(cfg->reverse.bridges[j].tag, tag);
        if (!seen && !vrev__config_bridge_allow(cfg, tag))
            warn_bridge(L, root, b);
    }
}
