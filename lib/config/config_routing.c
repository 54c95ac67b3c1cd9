/* routing (WIRE-SPEC §7): field rules into struct vrev__rule_spec for the router, balancers.
 * Values are checked here so that a bad one is reported with its position; the router
 * checks them again when it compiles the rules. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec/addr.h"
#include "config/config_internal.h"

/* ---- domainStrategy ---- */

static int route_strategy(vrev__cfg_loader *L, json_t *obj, json_t *settings, int *out)
{
    static const struct {
        const char *name;
        int ds;
    } names[] = {{"asis", VREV_CFG_ROUTE_ASIS},
                 {"alwaysip", VREV_CFG_ROUTE_ALWAYS_IP},
                 {"always_ip", VREV_CFG_ROUTE_ALWAYS_IP},
                 {"always-ip", VREV_CFG_ROUTE_ALWAYS_IP},
                 {"ipifnonmatch", VREV_CFG_ROUTE_IP_IF_NON_MATCH},
                 {"ip_if_non_match", VREV_CFG_ROUTE_IP_IF_NON_MATCH},
                 {"ip-if-non-match", VREV_CFG_ROUTE_IP_IF_NON_MATCH},
                 {"ipondemand", VREV_CFG_ROUTE_IP_ON_DEMAND},
                 {"ip_on_demand", VREV_CFG_ROUTE_IP_ON_DEMAND},
                 {"ip-on-demand", VREV_CFG_ROUTE_IP_ON_DEMAND}};
    const char *ds = NULL, *key;
    json_t *where = obj;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "domainStrategy", &ds, NULL));
    if (!ds && settings) { /* the top-level one wins */
        where = settings;
        VREV_CFG_TRY(vrev__cfg_string(L, settings, "domainStrategy", &ds, NULL));
    }
    *out = VREV_CFG_ROUTE_ASIS;
    if (!ds || !ds[0])
        return 0;
    size_t i = 0, n = sizeof(names) / sizeof(names[0]);
    while (i < n && strcasecmp(ds, names[i].name) != 0)
        i++;
    vrev__cfg_get(L, where, "domainStrategy", &key);
    vrev__cfg_push_key(L, key);
    if (i == n)
        vrev__cfg_warn(L, false, "unknown domainStrategy \"%.32s\"; using \"AsIs\" (as V2Ray)", ds);
    else if ((*out = names[i].ds) == VREV_CFG_ROUTE_IP_IF_NON_MATCH ||
             *out == VREV_CFG_ROUTE_IP_ON_DEMAND)
        vrev__cfg_warn(L, false,
                       "libvrev never resolves domains for routing: \"ip\" rules only "
                       "match IP targets (as with \"AsIs\")");
    vrev__cfg_pop(L);
    return 0;
}

/* ---- rule values ---- */

/* A string list member of a rule; *is_array tells whether indices map to JSON elements. */
static int rule_list(vrev__cfg_loader *L, json_t *r, const char *name, struct vrev__strlist *out,
                     bool *is_array, const char **key)
{
    json_t *v = vrev__cfg_get(L, r, name, key);
    *is_array = json_is_array(v);
    out->v = NULL;
    out->n = 0;
    return vrev__cfg_strlist(L, r, name, false, out, NULL);
}

static int unsupported_db(vrev__cfg_loader *L, const char *value)
{
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                          "\"%.64s\" needs a geoip/geosite .dat file, which libvrev does not "
                          "support",
                          value);
}

/* One domain entry: refuse what needs .dat files; check what 4.34 checks. */
static int domain_entry(vrev__cfg_loader *L, const char *d, const char **out)
{
    static const char *const need_value[] = {"regexp:", "domain:", "full:", "keyword:", NULL};
    *out = d;
    static const char *const data_prefixes[] = {
        "geosite:", "ext:", "ext-domain:", "geoip:", "ext-ip:", NULL};
    for (size_t i = 0; data_prefixes[i]; i++)
        if (!strncmp(d, data_prefixes[i], strlen(data_prefixes[i])))
            return unsupported_db(L, d);
    for (size_t i = 0; need_value[i]; i++)
        if (!strcmp(d, need_value[i]))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "\"%s\" needs a value", d);
    if (!strncmp(d, "dotless:", 8) && strchr(d + 8, '.'))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "dotless: \"%.64s\" must not contain a dot", d + 8);
    return 0;
}

/* An IP or CIDR as 4.34's ParseIP reads it (IPv6 may be bracketed; an IPv4-mapped IPv6
 * address is IPv4 with a /96../128 prefix), by the address parser the router uses too. */
static bool valid_cidr(const char *s)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    char host[64];
    struct vrev__addr a;
    unsigned prefix = 0;
    if (alen == 0 || alen >= sizeof(host))
        return false;
    memcpy(host, s, alen);
    host[alen] = '\0';
    if (vrev__addr_from_text(&a, host, 0) < 0 || a.type == VREV_ADDR_DOMAIN)
        return false;
    if (!slash)
        return true;
    if (!slash[1] || strlen(slash + 1) > 3)
        return false;
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        prefix = prefix * 10 + (unsigned)(*p - '0');
    }
    if (a.type == VREV_ADDR_IPV4 && memchr(host, ':', alen))
        return prefix >= 96 && prefix <= 128;
    return prefix <= (a.type == VREV_ADDR_IPV4 ? 32u : 128u);
}

static int ip_entry(vrev__cfg_loader *L, const char *ip, const char **out)
{
    *out = ip;
    if (!strncmp(ip, "geoip:", 6) || !strncmp(ip, "ext:", 4) || !strncmp(ip, "ext-ip:", 7))
        return unsupported_db(L, ip);
    if (!valid_cidr(ip))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "invalid IP or CIDR \"%.64s\" (e.g. 10.0.0.0/8, fd00::/8, 1.2.3.4)",
                              ip);
    return 0;
}

typedef int (*entry_fn)(vrev__cfg_loader *L, const char *in, const char **out);

/* Check (and maybe rewrite) every entry of list, positioned on its element when the list was
 * a JSON array. */
static int each_entry(vrev__cfg_loader *L, struct vrev__strlist *list, bool is_array, entry_fn fn)
{
    const char **v = (const char **)list->v;
    for (size_t i = 0; i < list->n; i++) {
        if (is_array)
            vrev__cfg_push_index(L, i);
        VREV_CFG_TRY(fn(L, v[i], &v[i]));
        if (is_array)
            vrev__cfg_pop(L);
    }
    return 0;
}

/* "domain" and "domains", merged in that order. */
static int rule_domains(vrev__cfg_loader *L, json_t *r, struct vrev__strlist *out)
{
    struct vrev__strlist lists[2];
    const char *names[2] = {"domain", "domains"}, *key;
    bool is_array;
    for (int k = 0; k < 2; k++) {
        VREV_CFG_TRY(rule_list(L, r, names[k], &lists[k], &is_array, &key));
        if (lists[k].n) {
            vrev__cfg_push_key(L, key);
            VREV_CFG_TRY(each_entry(L, &lists[k], is_array, domain_entry));
            vrev__cfg_pop(L);
        }
    }
    if (!lists[1].n) {
        *out = lists[0];
        return 0;
    }
    const char **v = vrev__cfg_strv(L, lists[0].n + lists[1].n);
    if (!v)
        return vrev__cfg_nomem(L);
    for (size_t i = 0; i < lists[0].n; i++)
        v[i] = lists[0].v[i];
    for (size_t i = 0; i < lists[1].n; i++)
        v[lists[0].n + i] = lists[1].v[i];
    out->v = v;
    out->n = lists[0].n + lists[1].n;
    return 0;
}

static int rule_ips(vrev__cfg_loader *L, json_t *r, const char *name, struct vrev__strlist *out)
{
    const char *key;
    bool is_array;
    VREV_CFG_TRY(rule_list(L, r, name, out, &is_array, &key));
    if (!out->n)
        return 0;
    vrev__cfg_push_key(L, key);
    VREV_CFG_TRY(each_entry(L, out, is_array, ip_entry));
    vrev__cfg_pop(L);
    return 0;
}

/* One piece of a port list: "N" or "A-B" (spaces around the piece already trimmed). */
static bool port_piece(const char *s, size_t n, uint16_t *from, uint16_t *to)
{
    const char *dash = memchr(s, '-', n);
    if (!dash)
        return vrev__cfg_parse_port_text(s, n, from) && (*to = *from, true);
    return vrev__cfg_parse_port_text(s, (size_t)(dash - s), from) &&
           vrev__cfg_parse_port_text(dash + 1, n - (size_t)(dash - s) - 1, to) && *from <= *to;
}

/* "80,443, 1000-2000" -> "80,443,1000-2000" ("" when it names no port). */
static int port_list_text(vrev__cfg_loader *L, const char *s, const char **out)
{
    char *buf = vrev__cfg_alloc(L, strlen(s) + 1, 1);
    size_t used = 0;
    if (!buf)
        return vrev__cfg_nomem(L);
    for (const char *p = s;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        uint16_t from, to;
        if (n && !port_piece(p, n, &from, &to))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "invalid port or range \"%.*s\" (e.g. \"53,443,1000-2000\")",
                                  (int)(n > 32 ? 32 : n), p);
        if (n) {
            if (used)
                buf[used++] = ',';
            memcpy(buf + used, p, n);
            used += n;
        }
        if (!end)
            break;
        p = end + 1;
    }
    buf[used] = '\0';
    if (!used)
        vrev__cfg_warn(L, false, "names no port: this condition never matches");
    *out = buf; /* "" stays a (never matching) condition, as in 4.34 */
    return 0;
}

static int rule_ports(vrev__cfg_loader *L, json_t *r, const char *name, const char **out)
{
    const char *key;
    json_t *v = vrev__cfg_get(L, r, name, &key);
    if (!v)
        return 0;
    vrev__cfg_push_key(L, key);
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > 65535)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "port %lld is out of range (0..65535)", (long long)n);
        char num[8] = "";
        /* 4.34 skips a bare 0 but keeps the (now empty) condition: it never matches */
        if (n)
            snprintf(num, sizeof(num), "%u", (unsigned)n);
        else
            vrev__cfg_warn(L, false, "a bare 0 names no port: this condition never matches");
        if (!(*out = vrev__cfg_strndup(L, num, strlen(num))))
            return vrev__cfg_nomem(L);
    } else if (json_is_string(v)) {
        VREV_CFG_TRY(port_list_text(L, json_string_value(v), out));
    } else {
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "expected a port number or a string like \"53,443,1000-2000\"");
    }
    vrev__cfg_pop(L);
    return 0;
}

/* user, inboundTag, protocol: exact strings; warn when only empty ones are given. */
static int exact_list(vrev__cfg_loader *L, json_t *r, const char *name, struct vrev__strlist *out)
{
    const char *key;
    bool is_array;
    VREV_CFG_TRY(rule_list(L, r, name, out, &is_array, &key));
    for (size_t i = 0; i < out->n; i++)
        if (out->v[i][0])
            return 0;
    if (out->n) {
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false, "only empty strings: this condition never matches");
        vrev__cfg_pop(L);
    }
    return 0;
}

static int rule_networks(vrev__cfg_loader *L, json_t *r, unsigned *out)
{
    struct vrev__strlist nets;
    const char *key;
    bool present;
    VREV_CFG_TRY(vrev__cfg_strlist(L, r, "network", false, &nets, &present));
    if (!present || !nets.n)
        return 0;
    vrev__cfg_get(L, r, "network", &key);
    vrev__cfg_push_key(L, key);
    if (!(*out = vrev__cfg_networks(L, &nets)))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "names neither tcp nor udp: the rule could never match");
    vrev__cfg_pop(L);
    return 0;
}

/* ---- tags ---- */

static bool is_outbound_tag(const struct vrev__config *cfg, const char *tag)
{
    for (size_t i = 0; i < cfg->outbound_tags.n; i++)
        if (!strcmp(cfg->outbound_tags.v[i], tag))
            return true;
    return false;
}

static bool is_inbound_tag(const struct vrev__config *cfg, const char *tag)
{
    for (size_t i = 0; i < cfg->n_inbounds; i++)
        if (!strcmp(cfg->inbounds[i].tag, tag))
            return true;
    for (size_t i = 0; i < cfg->reverse.n_bridges; i++)
        if (!strcmp(cfg->reverse.bridges[i].tag, tag))
            return true;
    return false;
}

static bool is_balancer_tag(const struct vrev__cfg_routing *rt, const char *tag)
{
    for (size_t i = 0; i < rt->n_balancers; i++)
        if (!strcmp(rt->balancers[i].tag, tag))
            return true;
    return false;
}

/* outboundTag (wins) or balancerTag. */
static int rule_target(vrev__cfg_loader *L, json_t *r, const struct vrev__cfg_routing *rt,
                       struct vrev__rule_spec *spec)
{
    const char *out = "", *bal = "", *key;
    VREV_CFG_TRY(vrev__cfg_string(L, r, "outboundTag", &out, NULL));
    VREV_CFG_TRY(vrev__cfg_string(L, r, "balancerTag", &bal, NULL));
    if (out[0]) {
        spec->outbound_tag = out;
        vrev__cfg_get(L, r, "outboundTag", &key);
        vrev__cfg_push_key(L, key);
        if (bal[0])
            vrev__cfg_warn(L, false, "balancerTag is ignored: outboundTag wins");
        if (!is_outbound_tag(L->cfg, out))
            vrev__cfg_warn(L, false,
                           "no outbound or portal is tagged \"%.64s\": matching "
                           "connections go to the default outbound",
                           out);
        vrev__cfg_pop(L);
        return 0;
    }
    if (!bal[0])
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "the rule needs an \"outboundTag\" or a \"balancerTag\"");
    spec->balancer_tag = bal;
    if (!is_balancer_tag(rt, bal)) {
        vrev__cfg_get(L, r, "balancerTag", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "no balancer is tagged \"%.64s\"", bal);
    }
    return 0;
}

static void check_inbound_tags(vrev__cfg_loader *L, json_t *r, const struct vrev__strlist *tags)
{
    const char *key;
    for (size_t i = 0; i < tags->n; i++) {
        if (!tags->v[i][0] || is_inbound_tag(L->cfg, tags->v[i]))
            continue;
        vrev__cfg_get(L, r, "inboundTag", &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false, "no inbound or bridge is tagged \"%.64s\"", tags->v[i]);
        vrev__cfg_pop(L);
    }
}

/* ---- rules ---- */

static bool has_condition(const struct vrev__rule_spec *s)
{
    return s->domains.n || s->ips.n || s->ports || s->source_ports || s->networks || s->sources.n ||
           s->users.n || s->inbound_tags.n || s->protocols.n;
}

static int rule_type(vrev__cfg_loader *L, json_t *r)
{
    const char *type = NULL, *key;
    VREV_CFG_TRY(vrev__cfg_string(L, r, "type", &type, NULL));
    if (!type)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "missing \"type\": \"field\"");
    if (strcasecmp(type, "field") != 0) {
        vrev__cfg_get(L, r, "type", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "unknown rule type \"%.32s\" (only \"field\")", type);
    }
    return 0;
}

static int rule_conditions(vrev__cfg_loader *L, json_t *r, struct vrev__rule_spec *spec)
{
    const char *key, *attrs = "";
    VREV_CFG_TRY(rule_domains(L, r, &spec->domains));
    VREV_CFG_TRY(rule_ips(L, r, "ip", &spec->ips));
    VREV_CFG_TRY(rule_ports(L, r, "port", &spec->ports));
    VREV_CFG_TRY(rule_networks(L, r, &spec->networks));
    VREV_CFG_TRY(rule_ips(L, r, "source", &spec->sources));
    VREV_CFG_TRY(rule_ports(L, r, "sourcePort", &spec->source_ports));
    /* Given as is: the router drops empty strings, and a list of only empty strings is a
     * condition that never matches (4.34's matchers do the same). */
    VREV_CFG_TRY(exact_list(L, r, "user", &spec->users));
    VREV_CFG_TRY(exact_list(L, r, "inboundTag", &spec->inbound_tags));
    VREV_CFG_TRY(exact_list(L, r, "protocol", &spec->protocols));
    if (spec->protocols.n) {
        vrev__cfg_get(L, r, "protocol", &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false,
                       "\"protocol\" needs sniffing, which libvrev does not do: this "
                       "condition never matches");
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(vrev__cfg_string(L, r, "attrs", &attrs, NULL));
    if (attrs[0]) {
        vrev__cfg_get(L, r, "attrs", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                              "\"attrs\" (HTTP attribute expressions) is not supported");
    }
    check_inbound_tags(L, r, &spec->inbound_tags);
    return 0;
}

static int parse_rule(vrev__cfg_loader *L, json_t *r, const struct vrev__cfg_routing *rt,
                      struct vrev__rule_spec *spec)
{
    static const char *const known[] = {"type",     "outboundTag", "balancerTag", "domain",
                                        "domains",  "ip",          "port",        "network",
                                        "source",   "sourcePort",  "user",        "inboundTag",
                                        "protocol", "attrs",       NULL};
    if (!json_is_object(r))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    vrev__cfg_check_keys(L, r, known);
    VREV_CFG_TRY(rule_type(L, r));
    VREV_CFG_TRY(rule_target(L, r, rt, spec));
    VREV_CFG_TRY(rule_conditions(L, r, spec));
    if (!has_condition(spec))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "the rule has no condition (V2Ray: \"no effective fields\")");
    return 0;
}

static int parse_rules(vrev__cfg_loader *L, json_t *arr, struct vrev__cfg_routing *rt)
{
    json_t *r;
    size_t i;
    json_array_foreach(arr, i, r)
    {
        vrev__cfg_push_index(L, i);
        VREV_CFG_TRY(parse_rule(L, r, rt, &rt->rules[rt->n_rules]));
        rt->n_rules++;
        vrev__cfg_pop(L);
    }
    return 0;
}

/* ---- balancers ---- */

/* 4.34 would fail every connection routed to such a balancer; the router refuses it. */
static int check_selectors(vrev__cfg_loader *L, const struct vrev__strlist *sel)
{
    const struct vrev__config *cfg = L->cfg;
    for (size_t i = 0; i < sel->n; i++)
        for (size_t k = 0; k < cfg->outbound_tags.n; k++)
            if (cfg->outbound_tags.v[k][0] &&
                !strncmp(cfg->outbound_tags.v[k], sel->v[i], strlen(sel->v[i])))
                return 0;
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                          "no outbound tag starts with any of these selectors");
}

static int balancer_fn(vrev__cfg_loader *L, json_t *b, void *out)
{
    static const char *const known[] = {"tag", "selector", NULL};
    struct vrev__cfg_balancer *bal = out;
    const char *key;
    bool present;
    vrev__cfg_check_keys(L, b, known);
    bal->tag = "";
    VREV_CFG_TRY(vrev__cfg_string(L, b, "tag", &bal->tag, NULL));
    if (!bal->tag[0])
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "a balancer needs a \"tag\"");
    VREV_CFG_TRY(vrev__cfg_strlist(L, b, "selector", false, &bal->selectors, &present));
    if (!bal->selectors.n)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "a balancer needs a \"selector\"");
    vrev__cfg_get(L, b, "selector", &key);
    vrev__cfg_push_key(L, key);
    VREV_CFG_TRY(check_selectors(L, &bal->selectors));
    vrev__cfg_pop(L);
    return 0;
}

static int parse_balancers(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_routing *rt)
{
    const char *key;
    VREV_CFG_TRY(vrev__cfg_each(L, obj, "balancers", sizeof(*rt->balancers), NULL,
                                (void **)&rt->balancers, &rt->n_balancers, balancer_fn));
    for (size_t i = 1; i < rt->n_balancers; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rt->balancers[i].tag, rt->balancers[j].tag) != 0)
                continue;
            vrev__cfg_get(L, obj, "balancers", &key);
            vrev__cfg_push_key(L, key);
            vrev__cfg_push_index(L, i);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "balancer tag \"%.64s\" is used twice", rt->balancers[i].tag);
        }
    }
    return 0;
}

int vrev__cfg_routing(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_routing *rt)
{
    static const char *const known[] = {"domainStrategy", "rules", "balancers", "settings", NULL};
    static const char *const settings_known[] = {"domainStrategy", "rules", NULL};
    json_t *settings, *rules, *old_rules = NULL;
    const char *skey, *rkey, *okey;
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "settings", &settings, &skey));
    VREV_CFG_TRY(route_strategy(L, obj, settings, &rt->domain_strategy));
    VREV_CFG_TRY(parse_balancers(L, obj, rt));
    VREV_CFG_TRY(vrev__cfg_array(L, obj, "rules", &rules, &rkey));
    if (settings) {
        vrev__cfg_push_key(L, skey);
        vrev__cfg_check_keys(L, settings, settings_known);
        vrev__cfg_warn(L, true, "\"routing.settings\" is deprecated; its rules are appended");
        VREV_CFG_TRY(vrev__cfg_array(L, settings, "rules", &old_rules, &okey));
        vrev__cfg_pop(L);
    }
    size_t n = json_array_size(rules) + json_array_size(old_rules);
    if (!(rt->rules = vrev__cfg_alloc(L, n + 1, sizeof(*rt->rules))))
        return vrev__cfg_nomem(L);
    if (rules) {
        vrev__cfg_push_key(L, rkey);
        VREV_CFG_TRY(parse_rules(L, rules, rt));
        vrev__cfg_pop(L);
    }
    if (old_rules) {
        vrev__cfg_push_key(L, skey);
        vrev__cfg_push_key(L, okey);
        VREV_CFG_TRY(parse_rules(L, old_rules, rt));
        vrev__cfg_pop(L);
        vrev__cfg_pop(L);
    }
    return 0;
}
