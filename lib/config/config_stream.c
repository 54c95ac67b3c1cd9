/* streamSettings (WIRE-SPEC §8.5): libvrev carries every proxy over plain TCP, optionally in
 * TLS. Other transports and TCP header obfuscation are refused, since ignoring them would make
 * the peer see bytes it does not expect. */
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"
#include "net/tls_pin.h"

static int check_network(vrev__cfg_loader *L, json_t *obj)
{
    static const char *const others[] = {"kcp",  "mkcp", "ws",           "websocket", "h2",
                                         "http", "ds",   "domainsocket", "quic",      NULL};
    const char *net = "tcp", *key;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "network", &net, NULL));
    if (!strcasecmp(net, "tcp"))
        return 0;
    vrev__cfg_get(L, obj, "network", &key);
    vrev__cfg_push_key(L, key);
    for (size_t i = 0; others[i]; i++)
        if (!strcasecmp(net, others[i]))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                                  "transport \"%s\" is not supported (libvrev speaks tcp only)",
                                  others[i]);
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "unknown transport \"%.32s\"", net);
}

/* certificate / key: an array of lines that 4.34 joins with '\n'. */
static int pem_lines(vrev__cfg_loader *L, json_t *obj, const char *name, const char **out)
{
    json_t *arr, *e;
    const char *key;
    size_t i, total = 0;
    VREV_CFG_TRY(vrev__cfg_array(L, obj, name, &arr, &key));
    if (!arr || json_array_size(arr) == 0)
        return 0;
    vrev__cfg_push_key(L, key);
    json_array_foreach(arr, i, e)
    {
        if (!json_is_string(e)) {
            vrev__cfg_push_index(L, i);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
        }
        total += json_string_length(e) + 1;
    }
    char *p = vrev__cfg_alloc(L, total, 1);
    if (!p)
        return vrev__cfg_nomem(L);
    *out = p;
    json_array_foreach(arr, i, e)
    {
        if (i > 0)
            *p++ = '\n';
        memcpy(p, json_string_value(e), json_string_length(e));
        p += json_string_length(e);
    }
    *p = '\0';
    vrev__cfg_pop(L);
    return 0;
}

/* file and inline text of one PEM item; 4.34 prefers the file when both are given. */
static int pem_item(vrev__cfg_loader *L, json_t *obj, const char *file_key, const char *lines_key,
                    const char **file, const char **text)
{
    const char *key;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, file_key, file, NULL));
    if (*file && !(*file)[0])
        *file = NULL;
    VREV_CFG_TRY(pem_lines(L, obj, lines_key, text));
    if (*file && *text) {
        vrev__cfg_get(L, obj, lines_key, &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "ignored: \"%s\" is also given and wins", file_key);
        vrev__cfg_pop(L);
        *text = NULL;
    }
    return 0;
}

static int cert_usage(vrev__cfg_loader *L, json_t *obj, int *usage)
{
    const char *s = "", *key;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "usage", &s, NULL));
    *usage = VREV_CFG_CERT_ENCIPHERMENT;
    if (!s[0] || !strcasecmp(s, "encipherment"))
        return 0;
    if (!strcasecmp(s, "verify")) {
        *usage = VREV_CFG_CERT_VERIFY;
        return 0;
    }
    vrev__cfg_get(L, obj, "usage", &key);
    vrev__cfg_push_key(L, key);
    if (!strcasecmp(s, "issue"))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                              "certificate usage \"issue\" (signing certificates on the fly) is "
                              "not supported");
    vrev__cfg_warn(L, false, "unknown usage \"%.32s\"; using \"encipherment\" (as V2Ray)", s);
    vrev__cfg_pop(L);
    return 0;
}

static int parse_cert(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_cert *c)
{
    static const char *const known[] = {"certificateFile", "certificate", "keyFile", "key",
                                        "usage",           NULL};
    if (!json_is_object(obj))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected an object");
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(
        pem_item(L, obj, "certificateFile", "certificate", &c->certificate_file, &c->certificate));
    if (!c->certificate_file && !c->certificate)
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "needs \"certificateFile\" or \"certificate\"");
    VREV_CFG_TRY(pem_item(L, obj, "keyFile", "key", &c->key_file, &c->key));
    return cert_usage(L, obj, &c->usage);
}

static int parse_certs(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_tls *tls)
{
    json_t *arr, *e;
    const char *key;
    size_t i;
    VREV_CFG_TRY(vrev__cfg_array(L, obj, "certificates", &arr, &key));
    if (!arr)
        return 0;
    if (!(tls->certs = vrev__cfg_alloc(L, json_array_size(arr) + 1, sizeof(*tls->certs))))
        return vrev__cfg_nomem(L);
    vrev__cfg_push_key(L, key);
    json_array_foreach(arr, i, e)
    {
        vrev__cfg_push_index(L, i);
        VREV_CFG_TRY(parse_cert(L, e, &tls->certs[i]));
        vrev__cfg_pop(L);
    }
    tls->n_certs = json_array_size(arr);
    vrev__cfg_pop(L);
    return 0;
}

/* As v2fly 4.38 reads it: an array of base64 strings (Go's StdEncoding). V2Ray takes a value
 * of any length and then matches no chain with it; a pin that is not 32 bytes is refused here.
 * A server has no use for pins (V2Ray checks them only on a certificate it verifies). */
static int parse_pins(vrev__cfg_loader *L, json_t *obj, bool server, struct vrev__cfg_tls *tls)
{
    json_t *arr, *e;
    const char *key;
    size_t i;
    VREV_CFG_TRY(vrev__cfg_array(L, obj, "pinnedPeerCertificateChainSha256", &arr, &key));
    if (!arr || !json_array_size(arr))
        return 0;
    vrev__cfg_push_key(L, key);
    if (server) {
        vrev__cfg_warn(L, true, "ignored: a server does not check its clients' certificates");
        vrev__cfg_pop(L);
        return 0;
    }
    if (!(tls->pins = vrev__cfg_alloc(L, json_array_size(arr), sizeof(*tls->pins))))
        return vrev__cfg_nomem(L);
    json_array_foreach(arr, i, e)
    {
        vrev__cfg_push_index(L, i);
        if (!json_is_string(e))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
        if (vrev__tls_pin_from_base64(json_string_value(e), json_string_length(e), tls->pins[i]))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                  "not a certificate chain's SHA-256: need the 32 bytes in "
                                  "standard base64 (44 characters, ending in '=')");
        vrev__cfg_pop(L);
    }
    tls->n_pins = json_array_size(arr);
    vrev__cfg_pop(L);
    return 0;
}

static int parse_tls(vrev__cfg_loader *L, json_t *obj, bool server, struct vrev__cfg_tls *tls)
{
    static const char *const known[] = {"serverName",
                                        "allowInsecure",
                                        "alpn",
                                        "certificates",
                                        "disableSystemRoot",
                                        "enableSessionResumption",
                                        "pinnedPeerCertificateChainSha256",
                                        NULL};
    const char *key;
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "serverName", &tls->server_name, NULL));
    if (tls->server_name && !tls->server_name[0])
        tls->server_name = NULL;
    VREV_CFG_TRY(vrev__cfg_bool(L, obj, "allowInsecure", &tls->allow_insecure));
    VREV_CFG_TRY(parse_pins(L, obj, server, tls));
    if (tls->allow_insecure && !tls->n_pins) {
        vrev__cfg_get(L, obj, "allowInsecure", &key);
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, false,
                       "the peer's certificate is NOT verified: anyone on the path "
                       "can intercept this connection");
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(vrev__cfg_strlist(L, obj, "alpn", true, &tls->alpn, NULL));
    VREV_CFG_TRY(parse_certs(L, obj, tls));
    VREV_CFG_TRY(vrev__cfg_bool(L, obj, "disableSystemRoot", &tls->disable_system_root));
    return vrev__cfg_bool(L, obj, "enableSessionResumption", &tls->enable_session_resumption);
}

static bool has_server_cert(const struct vrev__cfg_tls *tls)
{
    for (size_t i = 0; i < tls->n_certs; i++)
        if (tls->certs[i].usage == VREV_CFG_CERT_ENCIPHERMENT &&
            (tls->certs[i].key_file || tls->certs[i].key))
            return true;
    return false;
}

/* tlsSettings next to a security other than "tls": V2Ray ignores them; say so. */
static void ignore_tls_settings(vrev__cfg_loader *L, json_t *tls, const char *key)
{
    if (!tls)
        return;
    vrev__cfg_push_key(L, key);
    vrev__cfg_warn(L, true, "ignored: \"security\" is not \"tls\"");
    vrev__cfg_pop(L);
}

static int parse_security(vrev__cfg_loader *L, json_t *obj, bool server,
                          struct vrev__cfg_stream *out)
{
    const char *sec = "", *key;
    json_t *tls;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "security", &sec, NULL));
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "tlsSettings", &tls, &key));
    if (sec[0] && vrev__ctx_transport(L->ctx, sec)) { /* an embedder's own layer */
        ignore_tls_settings(L, tls, key);
        out->security = VREV_CFG_SECURITY_CUSTOM;
        out->custom = vrev__cfg_strndup(L, sec, strlen(sec));
        return out->custom ? 0 : vrev__cfg_nomem(L);
    }
    if (strcasecmp(sec, "tls") != 0) {
        if (sec[0] && strcasecmp(sec, "none") != 0) {
            vrev__cfg_get(L, obj, "security", &key);
            vrev__cfg_push_key(L, key);
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                                  "security \"%.32s\" is not supported (use \"tls\", \"none\" or a "
                                  "registered transport)",
                                  sec);
        }
        ignore_tls_settings(L, tls, key);
        return 0;
    }
    out->security = VREV_CFG_SECURITY_TLS;
    if (tls) {
        vrev__cfg_push_key(L, key);
        VREV_CFG_TRY(parse_tls(L, tls, server, &out->tls));
    }
    if (server && !has_server_cert(&out->tls))
        return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                              "a TLS server needs a certificate and its key in "
                              "tlsSettings.certificates (usage \"encipherment\")");
    if (tls)
        vrev__cfg_pop(L);
    return 0;
}

static int refuse_proxy_protocol(vrev__cfg_loader *L, json_t *obj)
{
    bool on = false;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_bool(L, obj, "acceptProxyProtocol", &on));
    if (!on)
        return 0;
    vrev__cfg_get(L, obj, "acceptProxyProtocol", &key);
    vrev__cfg_push_key(L, key);
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                          "the PROXY protocol (acceptProxyProtocol) is not supported");
}

static int parse_tcp_settings(vrev__cfg_loader *L, json_t *obj)
{
    static const char *const known[] = {"header", "acceptProxyProtocol", NULL};
    json_t *tcp, *header;
    const char *key, *hkey, *type = "none";
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "tcpSettings", &tcp, &key));
    if (!tcp)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, tcp, known);
    VREV_CFG_TRY(vrev__cfg_object(L, tcp, "header", &header, &hkey));
    if (header) {
        vrev__cfg_push_key(L, hkey);
        VREV_CFG_TRY(vrev__cfg_string(L, header, "type", &type, NULL));
        if (strcasecmp(type, "none") != 0)
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                                  "TCP header type \"%.32s\" is not supported (only \"none\")",
                                  type);
        vrev__cfg_pop(L);
    }
    VREV_CFG_TRY(refuse_proxy_protocol(L, tcp));
    vrev__cfg_pop(L);
    return 0;
}

static int parse_sockopt(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_stream *out)
{
    static const char *const known[] = {"mark", "tcpFastOpen", "tproxy", "acceptProxyProtocol",
                                        NULL};
    json_t *so;
    const char *key, *tproxy = "";
    int64_t mark = 0;
    bool tfo = false, tfo_present;
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "sockopt", &so, &key));
    if (!so)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, so, known);
    VREV_CFG_TRY(vrev__cfg_int(L, so, "mark", INT32_MIN, INT32_MAX, &mark, NULL));
    out->mark = (uint32_t)mark;
    tfo_present = vrev__cfg_get(L, so, "tcpFastOpen", NULL) != NULL;
    VREV_CFG_TRY(vrev__cfg_bool(L, so, "tcpFastOpen", &tfo));
    if (tfo_present)
        out->tcp_fast_open = tfo;
    VREV_CFG_TRY(vrev__cfg_string(L, so, "tproxy", &tproxy, NULL));
    if (!strcasecmp(tproxy, "tproxy"))
        out->tproxy = VREV_CFG_TPROXY_TPROXY;
    else if (!strcasecmp(tproxy, "redirect"))
        out->tproxy = VREV_CFG_TPROXY_REDIRECT;
    VREV_CFG_TRY(refuse_proxy_protocol(L, so));
    vrev__cfg_pop(L);
    return 0;
}

static void warn_other_transports(vrev__cfg_loader *L, json_t *obj)
{
    static const char *const others[] = {"kcpSettings", "wsSettings",   "httpSettings",
                                         "dsSettings",  "quicSettings", NULL};
    const char *key;
    for (size_t i = 0; others[i]; i++) {
        if (!vrev__cfg_get(L, obj, others[i], &key))
            continue;
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "ignored: the network is tcp");
        vrev__cfg_pop(L);
    }
}

int vrev__cfg_stream(vrev__cfg_loader *L, json_t *parent, bool server, struct vrev__cfg_stream *out)
{
    static const char *const known[] = {
        "network",      "security",   "tlsSettings",  "tcpSettings", "kcpSettings", "wsSettings",
        "httpSettings", "dsSettings", "quicSettings", "sockopt",     NULL};
    json_t *obj;
    const char *key;
    out->security = VREV_CFG_SECURITY_NONE;
    out->custom = NULL;
    out->tcp_fast_open = -1;
    VREV_CFG_TRY(vrev__cfg_object(L, parent, "streamSettings", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(check_network(L, obj));
    VREV_CFG_TRY(parse_security(L, obj, server, out));
    VREV_CFG_TRY(parse_tcp_settings(L, obj));
    VREV_CFG_TRY(parse_sockopt(L, obj, out));
    warn_other_transports(L, obj);
    vrev__cfg_pop(L);
    return 0;
}
