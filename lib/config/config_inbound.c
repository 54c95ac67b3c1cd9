/* Inbound objects (WIRE-SPEC §8.3) and their protocol settings: dokodemo-door (§6.1), vmess
 * (§8.6), vless (§5.1), socks (§5.3). */
#include <string.h>
#include <strings.h>

#include "codec/addr.h"
#include "config/config_internal.h"

static const char legacy_vmess[] =
    "legacy VMess (alterId > 0) is not supported; use alterId 0 (VMess AEAD)";
static const char no_clients[] = "no clients: nobody could connect";

static int inbound_protocol(vrev__cfg_loader *L, json_t *obj, int *proto)
{
    static const struct vrev__cfg_protocol_name known[] = {{"dokodemo-door", VREV_CFG_IN_DOKODEMO},
                                                           {"vmess", VREV_CFG_IN_VMESS},
                                                           {"vless", VREV_CFG_IN_VLESS},
                                                           {"socks", VREV_CFG_IN_SOCKS},
                                                           {"http", 0},
                                                           {"shadowsocks", 0},
                                                           {"trojan", 0},
                                                           {"mtproto", 0}};
    return vrev__cfg_protocol(L, obj, "inbound", known, sizeof(known) / sizeof(known[0]), proto);
}

static int parse_listen(vrev__cfg_loader *L, json_t *obj, const char **listen)
{
    const char *s = NULL, *key;
    struct vrev__addr a;
    *listen = "0.0.0.0";
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "listen", &s, NULL));
    if (!s)
        return 0;
    vrev__cfg_get(L, obj, "listen", &key);
    vrev__cfg_push_key(L, key);
    if (!s[0])
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "empty listen address");
    if (s[0] == '/' || s[0] == '@')
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                              "listening on a unix socket is not supported");
    /* 4.34 accepts an IP literal or "localhost", nothing else. */
    if (strcmp(s, "localhost") != 0 &&
        (vrev__addr_from_text(&a, s, 0) < 0 || a.type == VREV_ADDR_DOMAIN))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "cannot listen on \"%.64s\": need an IP address", s);
    *listen = s;
    vrev__cfg_pop(L);
    return 0;
}

static bool is_loopback(const char *listen)
{
    return !strcmp(listen, "localhost") || !strncmp(listen, "127.", 4) || !strcmp(listen, "::1") ||
           !strcmp(listen, "[::1]");
}

/* ---- dokodemo-door ---- */

static int parse_dokodemo(vrev__cfg_loader *L, json_t *s, struct vrev__cfg_dokodemo *d)
{
    static const char *const known[] = {"address",        "port",      "network", "timeout",
                                        "followRedirect", "userLevel", NULL};
    struct vrev__strlist nets;
    bool present;
    const char *key;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_address(L, s, "address", false, &d->address));
    VREV_CFG_TRY(vrev__cfg_port(L, s, "port", &d->port, NULL));
    d->networks = VREV_ROUTE_TCP;
    VREV_CFG_TRY(vrev__cfg_strlist(L, s, "network", false, &nets, &present));
    if (present) {
        vrev__cfg_get(L, s, "network", &key);
        vrev__cfg_push_key(L, key);
        d->networks = vrev__cfg_networks(L, &nets);
        if (!d->networks)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "names neither tcp nor udp");
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(vrev__cfg_u32(L, s, "timeout", &d->timeout));
    VREV_CFG_TRY(vrev__cfg_bool(L, s, "followRedirect", &d->follow_redirect));
    VREV_CFG_TRY(vrev__cfg_u32(L, s, "userLevel", &d->user_level));
    if (!d->address && !d->follow_redirect)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "missing \"address\" (the target; required unless followRedirect "
                              "is true)");
    return 0;
}

/* ---- vmess ---- */

/* "alterId": 0 or absent; anything else needs the legacy header, which libvrev refuses. */
static int alter_id(vrev__cfg_loader *L, json_t *obj, bool fatal)
{
    int64_t alter = 0;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_int(L, obj, "alterId", 0, 65535, &alter, NULL));
    if (alter == 0)
        return 0;
    vrev__cfg_get(L, obj, "alterId", &key);
    vrev__cfg_push_key(L, key);
    if (fatal)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED, "%s", legacy_vmess);
    vrev__cfg_warn(L, false, "ignored: %s", legacy_vmess);
    vrev__cfg_pop(L);
    return 0;
}

int vrev__cfg_vmess_alter_id(vrev__cfg_loader *L, json_t *obj)
{
    return alter_id(L, obj, true);
}

static int parse_vmess_client(vrev__cfg_loader *L, json_t *c, struct vrev__cfg_client *out)
{
    static const char *const known[] = {"id", "alterId", "level", "email", "security", NULL};
    vrev__cfg_check_keys(L, c, known);
    VREV_CFG_TRY(vrev__cfg_uuid(L, c, "id", &out->id));
    VREV_CFG_TRY(alter_id(L, c, true));
    VREV_CFG_TRY(vrev__cfg_u8(L, c, "level", &out->level));
    out->flow = "";
    out->email = "";
    return vrev__cfg_string(L, c, "email", &out->email, NULL);
}

static int vmess_client_fn(vrev__cfg_loader *L, json_t *c, void *out)
{
    return parse_vmess_client(L, c, out);
}

static void warn_present(vrev__cfg_loader *L, json_t *obj, const char *name, const char *msg)
{
    const char *key;
    if (!vrev__cfg_get(L, obj, name, &key))
        return;
    vrev__cfg_push_key(L, key);
    vrev__cfg_warn(L, true, "%s", msg);
    vrev__cfg_pop(L);
}

static int parse_vmess_in(vrev__cfg_loader *L, json_t *s, struct vrev__cfg_vmess_inbound *v)
{
    static const char *const known[] = {
        "clients", "default", "detour", "features", "disableInsecureEncryption", NULL};
    json_t *def;
    const char *key;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_each(L, s, "clients", sizeof(*v->clients), no_clients,
                                (void **)&v->clients, &v->n_clients, vmess_client_fn));
    VREV_CFG_TRY(vrev__cfg_object(L, s, "default", &def, &key));
    if (def) { /* only used for users added by detour, which libvrev does not do */
        vrev__cfg_push_key(L, key);
        VREV_CFG_TRY(alter_id(L, def, false));
        vrev__cfg_pop(L);
    }
    warn_present(L, s, "detour", "ignored: VMess detour (dynamic ports) is not supported");
    warn_present(L, s, "features", "ignored: VMess detour (dynamic ports) is not supported");
    return vrev__cfg_bool(L, s, "disableInsecureEncryption", &v->disable_insecure_encryption);
}

/* ---- vless ---- */

int vrev__cfg_vless_flow(vrev__cfg_loader *L, json_t *obj, const char **flow)
{
    const char *key;
    *flow = "";
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "flow", flow, NULL));
    if ((*flow)[0]) {
        vrev__cfg_get(L, obj, "flow", &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false, "flow \"%.32s\" is ignored (as by V2Ray 4.34: no XTLS)", *flow);
        vrev__cfg_pop(L);
    }
    return 0;
}

static int vless_client_fn(vrev__cfg_loader *L, json_t *c, void *out)
{
    static const char *const known[] = {"id", "flow", "level", "email", "encryption", NULL};
    struct vrev__cfg_client *cl = out;
    const char *enc = "", *key;
    vrev__cfg_check_keys(L, c, known);
    VREV_CFG_TRY(vrev__cfg_uuid(L, c, "id", &cl->id));
    VREV_CFG_TRY(vrev__cfg_vless_flow(L, c, &cl->flow));
    VREV_CFG_TRY(vrev__cfg_u8(L, c, "level", &cl->level));
    cl->email = "";
    VREV_CFG_TRY(vrev__cfg_string(L, c, "email", &cl->email, NULL));
    VREV_CFG_TRY(vrev__cfg_string(L, c, "encryption", &enc, NULL));
    if (enc[0]) {
        vrev__cfg_get(L, c, "encryption", &key);
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "\"encryption\" belongs in outbound users; inbound settings take "
                              "\"decryption\": \"none\"");
    }
    return 0;
}

static int parse_vless_in(vrev__cfg_loader *L, json_t *s, struct vrev__cfg_vless_inbound *v)
{
    static const char *const known[] = {"clients", "decryption", "fallback", "fallbacks", NULL};
    const char *dec = NULL, *key;
    json_t *fb;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_each(L, s, "clients", sizeof(*v->clients), no_clients,
                                (void **)&v->clients, &v->n_clients, vless_client_fn));
    VREV_CFG_TRY(vrev__cfg_string(L, s, "decryption", &dec, NULL));
    if (!dec || strcmp(dec, "none") != 0) {
        if (dec && vrev__cfg_get(L, s, "decryption", &key))
            vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "VLESS needs \"decryption\": \"none\" (it has no encryption of "
                              "its own; use TLS)");
    }
    if (vrev__cfg_get(L, s, "fallback", &key)) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "use \"fallbacks\": [{...}] instead of \"fallback\": {...}");
    }
    VREV_CFG_TRY(vrev__cfg_array(L, s, "fallbacks", &fb, &key));
    if (fb && json_array_size(fb) > 0) {
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true,
                       "ignored: VLESS fallbacks are not supported (connections that "
                       "fail authentication are closed)");
        vrev__cfg_pop(L);
    }
    return 0;
}

/* ---- socks ---- */

static int socks_account_fn(vrev__cfg_loader *L, json_t *a, void *out)
{
    static const char *const known[] = {"user", "pass", NULL};
    struct vrev__cfg_socks_account *acc = out;
    vrev__cfg_check_keys(L, a, known);
    acc->user = acc->pass = "";
    VREV_CFG_TRY(vrev__cfg_string(L, a, "user", &acc->user, NULL));
    return vrev__cfg_string(L, a, "pass", &acc->pass, NULL);
}

static int parse_socks_in(vrev__cfg_loader *L, json_t *s, const char *listen,
                          struct vrev__cfg_socks_inbound *v)
{
    static const char *const known[] = {"auth",    "accounts",  "udp", "ip",
                                        "timeout", "userLevel", NULL};
    const char *auth = "noauth", *key;
    vrev__cfg_check_keys(L, s, known);
    VREV_CFG_TRY(vrev__cfg_string(L, s, "auth", &auth, NULL));
    vrev__cfg_get(L, s, "auth", &key);
    if (!strcmp(auth, "password")) {
        v->auth = VREV_CFG_SOCKS_PASSWORD;
    } else if (strcmp(auth, "noauth") != 0) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "unknown auth \"%.32s\" (use \"noauth\" or \"password\"; V2Ray "
                              "would silently use \"noauth\")",
                              auth);
    }
    VREV_CFG_TRY(vrev__cfg_each(L, s, "accounts", sizeof(*v->accounts), NULL, (void **)&v->accounts,
                                &v->n_accounts, socks_account_fn));
    if (v->auth == VREV_CFG_SOCKS_PASSWORD && v->n_accounts == 0) {
        vrev__cfg_push_key(L, key);
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "auth \"password\" needs at least one entry in \"accounts\"");
    }
    if (v->auth == VREV_CFG_SOCKS_NOAUTH && v->n_accounts > 0)
        warn_present(L, s, "accounts", "ignored: \"auth\" is \"noauth\"");
    if (v->auth == VREV_CFG_SOCKS_NOAUTH && !is_loopback(listen))
        vrev__cfg_warn(L, false,
                       "SOCKS without authentication on %s: anyone who reaches this "
                       "port can use it as a proxy",
                       listen);
    VREV_CFG_TRY(vrev__cfg_bool(L, s, "udp", &v->udp));
    VREV_CFG_TRY(vrev__cfg_address(L, s, "ip", false, &v->ip));
    VREV_CFG_TRY(vrev__cfg_u32(L, s, "timeout", &v->timeout));
    return vrev__cfg_u32(L, s, "userLevel", &v->user_level);
}

/* ---- the inbound object ---- */

static int parse_settings(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_inbound *in)
{
    json_t *s;
    VREV_CFG_TRY(vrev__cfg_settings(L, obj, &s));
    switch (in->protocol) {
    case VREV_CFG_IN_DOKODEMO:
        VREV_CFG_TRY(parse_dokodemo(L, s, &in->settings.dokodemo));
        break;
    case VREV_CFG_IN_VMESS:
        VREV_CFG_TRY(parse_vmess_in(L, s, &in->settings.vmess));
        break;
    case VREV_CFG_IN_VLESS:
        VREV_CFG_TRY(parse_vless_in(L, s, &in->settings.vless));
        break;
    default:
        VREV_CFG_TRY(parse_socks_in(L, s, in->listen, &in->settings.socks));
        break;
    }
    vrev__cfg_pop(L);
    return 0;
}

static int parse_extras(vrev__cfg_loader *L, json_t *obj)
{
    json_t *alloc, *sniff;
    const char *key, *strategy = "always";
    bool enabled = false;
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "allocate", &alloc, &key));
    if (alloc) {
        vrev__cfg_push_key(L, key);
        VREV_CFG_TRY(vrev__cfg_string(L, alloc, "strategy", &strategy, NULL));
        if (strcasecmp(strategy, "always") != 0 && vrev__cfg_get(L, alloc, "strategy", &key))
            vrev__cfg_push_key(L, key);
        if (strcasecmp(strategy, "always") != 0)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                                  "port allocation strategy \"%.32s\" is not supported (only "
                                  "\"always\")",
                                  strategy);
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "sniffing", &sniff, &key));
    if (sniff) {
        vrev__cfg_push_key(L, key);
        VREV_CFG_TRY(vrev__cfg_bool(L, sniff, "enabled", &enabled));
        if (enabled)
            vrev__cfg_warn(L, false,
                           "ignored: sniffing is not supported (targets are not "
                           "replaced by the sniffed domain)");
        vrev__cfg_pop(L);
    }
    warn_present(L, obj, "domainOverride", "ignored: deprecated and not supported");
    return 0;
}

int vrev__cfg_inbound(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_inbound *in,
                      uint16_t legacy_port)
{
    static const char *const known[] = {"protocol", "port",     "listen",         "settings",
                                        "tag",      "allocate", "streamSettings", "domainOverride",
                                        "sniffing", NULL};
    bool present;
    if (!json_is_object(obj))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    vrev__cfg_check_keys(L, obj, known);
    in->tag = "";
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "tag", &in->tag, NULL));
    VREV_CFG_TRY(inbound_protocol(L, obj, &in->protocol));
    VREV_CFG_TRY(parse_listen(L, obj, &in->listen));
    VREV_CFG_TRY(vrev__cfg_port_range(L, obj, "port", &in->port, &present));
    if (!present && legacy_port) {
        in->port.from = in->port.to = legacy_port;
    } else if (!present) {
        return vrev__cfg_fail_missing(L, "port");
    }
    VREV_CFG_TRY(parse_extras(L, obj));
    VREV_CFG_TRY(vrev__cfg_stream(L, obj, true, &in->stream));
    return parse_settings(L, obj, in);
}
