/* Outbound objects (WIRE-SPEC §8.4) and their protocol settings: freedom (§6.2), blackhole,
 * vmess (§4.6, §8.6), vless (§5.1), socks (§5.3). */
#include <string.h>
#include <strings.h>

#include "codec/addr.h"
#include "config/config_internal.h"

static int outbound_protocol(vrev__cfg_loader *L, json_t *obj, int *proto)
{
    static const struct vrev__cfg_protocol_name known[] = {{"freedom", VREV_CFG_OUT_FREEDOM},
                                                           {"blackhole", VREV_CFG_OUT_BLACKHOLE},
                                                           {"vmess", VREV_CFG_OUT_VMESS},
                                                           {"vless", VREV_CFG_OUT_VLESS},
                                                           {"socks", VREV_CFG_OUT_SOCKS},
                                                           {"http", 0},
                                                           {"shadowsocks", 0},
                                                           {"trojan", 0},
                                                           {"mtproto", 0},
                                                           {"dns", 0}};
    return vrev__cfg_protocol(L, obj, "outbound", known, sizeof(known) / sizeof(known[0]), proto);
}

/* ---- freedom ---- */

static int domain_strategy(vrev__cfg_loader *L, json_t *s, int *out)
{
    static const struct {
        const char *name;
        int ds;
    } names[] = {{"asis", VREV_CFG_DS_ASIS},          {"useip", VREV_CFG_DS_USE_IP},
                 {"use_ip", VREV_CFG_DS_USE_IP},      {"useip4", VREV_CFG_DS_USE_IPV4},
                 {"useipv4", VREV_CFG_DS_USE_IPV4},   {"use_ipv4", VREV_CFG_DS_USE_IPV4},
                 {"use_ip_v4", VREV_CFG_DS_USE_IPV4}, {"use_ip4", VREV_CFG_DS_USE_IPV4},
                 {"useip6", VREV_CFG_DS_USE_IPV6},    {"useipv6", VREV_CFG_DS_USE_IPV6},
                 {"use_ipv6", VREV_CFG_DS_USE_IPV6},  {"use_ip_v6", VREV_CFG_DS_USE_IPV6},
                 {"use_ip6", VREV_CFG_DS_USE_IPV6}};
    const char *v = "", *key;
    VREV_CFG_TRY(vrev__cfg_string(L, s, "domainStrategy", &v, NULL));
    *out = VREV_CFG_DS_ASIS;
    if (!v[0])
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcasecmp(v, names[i].name)) {
            *out = names[i].ds;
            return 0;
        }
    }
    vrev__cfg_get(L, s, "domainStrategy", &key);
    vrev__cfg_push_key(L, key);
    vrev__cfg_warn(L, false, "unknown domainStrategy \"%.32s\"; using \"AsIs\" (as V2Ray)", v);
    vrev__cfg_pop(L);
    return 0;
}

/* "host:port" as Go's net.SplitHostPort reads it: IPv6 in brackets, host may be empty. */
static int parse_redirect(vrev__cfg_loader *L, const char *s, struct vrev__cfg_freedom *f)
{
    const char *host = s, *host_end, *port;
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(s, ']');
        if (!host_end || host_end[1] != ':')
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "invalid redirect \"%.64s\": need \"[IPv6]:port\"", s);
        port = host_end + 2;
    } else {
        host_end = strrchr(s, ':');
        if (!host_end)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "invalid redirect \"%.64s\": missing \":port\"", s);
        if (memchr(s, ':', (size_t)(host_end - s)))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "invalid redirect \"%.64s\": put an IPv6 address in brackets", s);
        port = host_end + 1;
    }
    if (!vrev__cfg_parse_port_text(port, strlen(port), &f->redirect_port))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "invalid redirect \"%.64s\": the port must be 0..65535", s);
    f->redirect_host = vrev__cfg_strndup(L, host, (size_t)(host_end - host));
    if (!f->redirect_host)
        return vrev__cfg_nomem(L);
    struct vrev__addr a;
    if (f->redirect_host[0] && vrev__addr_from_text(&a, f->redirect_host, 0) < 0)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "invalid redirect \"%.64s\": the host is neither an IP address nor "
                              "a domain",
                              s);
    f->redirect = true;
    return 0;
}

static int parse_freedom(vrev__cfg_loader *L, json_t *s, struct vrev__cfg_freedom *f)
{
    static const char *const known[] = {"domainStrategy", "timeout", "redirect", "userLevel", NULL};
    const char *redirect = "", *key;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(domain_strategy(L, s, &f->domain_strategy));
    VREV_CFG_TRY(vrev__cfg_u32(L, s, "timeout", &f->timeout));
    VREV_CFG_TRY(vrev__cfg_u32(L, s, "userLevel", &f->user_level));
    VREV_CFG_TRY(vrev__cfg_string(L, s, "redirect", &redirect, NULL));
    if (!redirect[0]) /* 4.34: an empty redirect is no redirect */
        return 0;
    vrev__cfg_get(L, s, "redirect", &key);
    vrev__cfg_push_key(L, key);
    VREV_CFG_TRY(parse_redirect(L, redirect, f));
    vrev__cfg_pop(L);
    return 0;
}

/* ---- blackhole ---- */

static int parse_blackhole(vrev__cfg_loader *L, json_t *s, struct vrev__cfg_blackhole *b)
{
    static const char *const known[] = {"response", NULL};
    static const char *const response_known[] = {"type", NULL};
    json_t *resp;
    const char *key, *type = NULL;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_object(L, s, "response", &resp, &key));
    if (!resp)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, resp, response_known);
    VREV_CFG_TRY(vrev__cfg_string(L, resp, "type", &type, NULL));
    if (!type)
        return vrev__cfg_fail_missing(L, "type");
    if (!strcasecmp(type, "http")) {
        b->response = VREV_CFG_BLACKHOLE_HTTP;
    } else if (strcasecmp(type, "none") != 0) {
        vrev__cfg_get(L, resp, "type", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "unknown response type \"%.32s\" (use \"none\" or \"http\")", type);
    }
    vrev__cfg_pop(L);
    return 0;
}

/* ---- vmess ---- */

static int vmess_security(vrev__cfg_loader *L, json_t *u, int *out)
{
    const char *sec = "", *key;
    VREV_CFG_TRY(vrev__cfg_string(L, u, "security", &sec, NULL));
    vrev__cfg_get(L, u, "security", &key);
    *out = VREV_CFG_VMESS_AUTO;
    if (!strcasecmp(sec, "aes-128-gcm")) {
        *out = VREV_CFG_VMESS_AES_128_GCM;
    } else if (!strcasecmp(sec, "chacha20-poly1305")) {
        *out = VREV_CFG_VMESS_CHACHA20_POLY1305;
    } else if (!strcasecmp(sec, "none")) {
        *out = VREV_CFG_VMESS_NONE;
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false, "security \"none\": the payload is not encrypted");
        vrev__cfg_pop(L);
    } else if (sec[0] && strcasecmp(sec, "auto") != 0) {
        /* "zero", "aes-128-cfb", typos: all AUTO in 4.34 (WIRE-SPEC §4.6). */
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false,
                       "security \"%.32s\" is unknown to V2Ray 4.34, which uses \"auto\""
                       " (aes-128-gcm) instead; so does libvrev",
                       sec);
        vrev__cfg_pop(L);
    }
    return 0;
}

static int vmess_user_fn(vrev__cfg_loader *L, json_t *u, void *out)
{
    static const char *const known[] = {"id", "alterId", "security", "level", "email", NULL};
    struct vrev__cfg_user *user = out;
    vrev__cfg_check_keys(L, u, known);
    VREV_CFG_TRY(vrev__cfg_uuid(L, u, "id", &user->id));
    VREV_CFG_TRY(vrev__cfg_vmess_alter_id(L, u));
    VREV_CFG_TRY(vmess_security(L, u, &user->security));
    VREV_CFG_TRY(vrev__cfg_u8(L, u, "level", &user->level));
    user->flow = "";
    user->email = "";
    return vrev__cfg_string(L, u, "email", &user->email, NULL);
}

static const char no_users[] = "no users: the server could not be authenticated to";

/* A vmess or vless server, its users read by user_fn. */
static int server_fn(vrev__cfg_loader *L, json_t *s, void *out,
                     int (*user_fn)(vrev__cfg_loader *L, json_t *u, void *out))
{
    static const char *const known[] = {"address", "port", "users", NULL};
    struct vrev__cfg_server *srv = out;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_address(L, s, "address", true, &srv->address));
    VREV_CFG_TRY(vrev__cfg_server_port(L, s, "port", &srv->port));
    return vrev__cfg_each(L, s, "users", sizeof(*srv->users), no_users, (void **)&srv->users,
                          &srv->n_users, user_fn);
}

static int vmess_server_fn(vrev__cfg_loader *L, json_t *s, void *out)
{
    return server_fn(L, s, out, vmess_user_fn);
}

/* ---- vless ---- */

static int vless_user_fn(vrev__cfg_loader *L, json_t *u, void *out)
{
    static const char *const known[] = {"id", "encryption", "flow", "level", "email", NULL};
    struct vrev__cfg_user *user = out;
    const char *enc = NULL, *key;
    vrev__cfg_check_keys(L, u, known);
    VREV_CFG_TRY(vrev__cfg_uuid(L, u, "id", &user->id));
    VREV_CFG_TRY(vrev__cfg_string(L, u, "encryption", &enc, NULL));
    if (!enc || strcmp(enc, "none") != 0) { /* case-sensitive in 4.34 */
        if (enc && vrev__cfg_get(L, u, "encryption", &key))
            vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "VLESS users need \"encryption\": \"none\" (VLESS has no "
                              "encryption of its own; use TLS)");
    }
    VREV_CFG_TRY(vrev__cfg_vless_flow(L, u, &user->flow));
    VREV_CFG_TRY(vrev__cfg_u8(L, u, "level", &user->level));
    user->email = "";
    return vrev__cfg_string(L, u, "email", &user->email, NULL);
}

static int vless_server_fn(vrev__cfg_loader *L, json_t *s, void *out)
{
    return server_fn(L, s, out, vless_user_fn);
}

/* ---- socks ---- */

static int socks_user_fn(vrev__cfg_loader *L, json_t *u, void *out)
{
    static const char *const known[] = {"user", "pass", "level", "email", NULL};
    struct vrev__cfg_socks_user *user = out;
    vrev__cfg_check_keys(L, u, known);
    user->user = user->pass = user->email = "";
    VREV_CFG_TRY(vrev__cfg_string(L, u, "user", &user->user, NULL));
    VREV_CFG_TRY(vrev__cfg_string(L, u, "pass", &user->pass, NULL));
    VREV_CFG_TRY(vrev__cfg_u8(L, u, "level", &user->level));
    return vrev__cfg_string(L, u, "email", &user->email, NULL);
}

static int socks_server_fn(vrev__cfg_loader *L, json_t *s, void *out)
{
    static const char *const known[] = {"address", "port", "users", NULL};
    struct vrev__cfg_socks_server *srv = out;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_address(L, s, "address", true, &srv->address));
    VREV_CFG_TRY(vrev__cfg_server_port(L, s, "port", &srv->port));
    return vrev__cfg_each(L, s, "users", sizeof(*srv->users), NULL, (void **)&srv->users,
                          &srv->n_users, socks_user_fn);
}

/* ---- the outbound object ---- */

static int parse_settings(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_outbound *o)
{
    static const char *const vnext_known[] = {"vnext", NULL};
    static const char *const servers_known[] = {"servers", NULL};
    json_t *s;
    VREV_CFG_TRY(vrev__cfg_settings(L, obj, &s));
    switch (o->protocol) {
    case VREV_CFG_OUT_FREEDOM:
        VREV_CFG_TRY(parse_freedom(L, s, &o->settings.freedom));
        break;
    case VREV_CFG_OUT_BLACKHOLE:
        VREV_CFG_TRY(parse_blackhole(L, s, &o->settings.blackhole));
        break;
    case VREV_CFG_OUT_VMESS:
        vrev__cfg_check_keys(L, s, vnext_known);
        VREV_CFG_TRY(vrev__cfg_each(L, s, "vnext", sizeof(*o->settings.vmess.servers),
                                    "no servers in \"vnext\"", (void **)&o->settings.vmess.servers,
                                    &o->settings.vmess.n_servers, vmess_server_fn));
        break;
    case VREV_CFG_OUT_VLESS:
        vrev__cfg_check_keys(L, s, vnext_known);
        VREV_CFG_TRY(vrev__cfg_each(L, s, "vnext", sizeof(*o->settings.vless.servers),
                                    "no servers in \"vnext\"", (void **)&o->settings.vless.servers,
                                    &o->settings.vless.n_servers, vless_server_fn));
        break;
    default:
        vrev__cfg_check_keys(L, s, servers_known);
        VREV_CFG_TRY(vrev__cfg_each(
            L, s, "servers", sizeof(*o->settings.socks.servers), "no servers in \"servers\"",
            (void **)&o->settings.socks.servers, &o->settings.socks.n_servers, socks_server_fn));
        break;
    }
    vrev__cfg_pop(L);
    return 0;
}

static int parse_send_through(vrev__cfg_loader *L, json_t *obj, const char **out)
{
    const char *key;
    struct vrev__addr a;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "sendThrough", out, NULL));
    if (!*out)
        return 0;
    if (vrev__addr_from_text(&a, *out, 0) < 0 || a.type == VREV_ADDR_DOMAIN) {
        vrev__cfg_get(L, obj, "sendThrough", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "sendThrough must be a local IP address, not \"%.64s\"", *out);
    }
    return 0;
}

static int parse_mux(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_outbound *o)
{
    static const char *const known[] = {"enabled", "concurrency", NULL};
    json_t *mux;
    const char *key, *ekey;
    bool enabled = false;
    int64_t conc = 0;
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "mux", &mux, &key));
    if (!mux)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, mux, known);
    VREV_CFG_TRY(vrev__cfg_bool(L, mux, "enabled", &enabled));
    if (enabled) {
        vrev__cfg_get(L, mux, "enabled", &ekey);
        vrev__cfg_push_key(L, ekey);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                              "mux on an outbound is not supported (a reverse tunnel is already "
                              "multiplexed; never enable mux on it)");
    }
    VREV_CFG_TRY(vrev__cfg_int(L, mux, "concurrency", INT16_MIN, INT16_MAX, &conc, NULL));
    o->mux_concurrency = (int16_t)conc;
    vrev__cfg_pop(L);
    return 0;
}

int vrev__cfg_outbound(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_outbound *o)
{
    static const char *const known[] = {"protocol",       "sendThrough",   "tag", "settings",
                                        "streamSettings", "proxySettings", "mux", NULL};
    const char *key;
    if (!json_is_object(obj))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    vrev__cfg_check_keys(L, obj, known);
    o->tag = "";
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "tag", &o->tag, NULL));
    VREV_CFG_TRY(outbound_protocol(L, obj, &o->protocol));
    VREV_CFG_TRY(parse_send_through(L, obj, &o->send_through));
    if (vrev__cfg_get(L, obj, "proxySettings", &key)) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                              "proxySettings (chaining outbounds) is not supported");
    }
    VREV_CFG_TRY(parse_mux(L, obj, o));
    VREV_CFG_TRY(vrev__cfg_stream(L, obj, false, &o->stream));
    return parse_settings(L, obj, o);
}
