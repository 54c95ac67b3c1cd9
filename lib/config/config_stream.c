/* streamSettings (WIRE-SPEC §8.5): libvrev carries every proxy over plain TCP, WebSocket
 * ("ws") or HTTP/2 ("h2", "http"), optionally in TLS (net/carrier.h shows how they stack).
 * Other transports and TCP header obfuscation are refused, since ignoring them would make the
 * peer see bytes it does not expect. */
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"
#include "net/tls_pin.h"

static const char *const carrier_names[] = {"tcp", "ws", "h2"};

static int parse_network(vrev__cfg_loader *L, json_t *obj, int *kind)
{
    static const char *const others[] = {"kcp",  "mkcp", "ds",  "domainsocket",
                                         "quic", "grpc", "gun", NULL};
    const char *net = "tcp", *key;
    VREV_CFG_TRY(vrev__cfg_string(L, obj, "network", &net, NULL));
    if (!strcasecmp(net, "tcp")) {
        *kind = VREV_CARRIER_TCP;
        return 0;
    }
    if (!strcasecmp(net, "ws") || !strcasecmp(net, "websocket")) {
        *kind = VREV_CARRIER_WS;
        return 0;
    }
    if (!strcasecmp(net, "h2") || !strcasecmp(net, "http")) {
        *kind = VREV_CARRIER_H2;
        return 0;
    }
    vrev__cfg_get(L, obj, "network", &key);
    vrev__cfg_push_key(L, key);
    for (size_t i = 0; others[i]; i++)
        if (!strcasecmp(net, others[i]))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                                  "transport \"%s\" is not supported (libvrev speaks \"tcp\", "
                                  "\"ws\" and \"h2\"/\"http\")",
                                  others[i]);
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "unknown transport \"%.32s\"", net);
}

/* A path as V2Ray normalizes it: "" -> NULL ("/"), "p" -> "/p". */
static int carrier_path(vrev__cfg_loader *L, json_t *obj, const char *name, const char **out)
{
    const char *p = "";
    VREV_CFG_TRY(vrev__cfg_string(L, obj, name, &p, NULL));
    if (!p[0]) {
        *out = NULL;
        return 0;
    }
    if (p[0] == '/') {
        *out = p;
        return 0;
    }
    size_t n = strlen(p);
    char *q = vrev__cfg_alloc(L, n + 2, 1);
    if (!q)
        return vrev__cfg_nomem(L);
    q[0] = '/';
    memcpy(q + 1, p, n + 1);
    *out = q;
    return 0;
}

/* Keys of later V2Ray versions: accepted, warned about as ignored. */
static void warn_later(vrev__cfg_loader *L, json_t *obj, const char *const *names, const char *why)
{
    const char *key;
    for (size_t i = 0; names[i]; i++) {
        if (!vrev__cfg_get(L, obj, names[i], &key))
            continue;
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "ignored: a later V2Ray version's setting (not in 4.34)%s", why);
        vrev__cfg_pop(L);
    }
}

static int accept_proxy_protocol(vrev__cfg_loader *L, json_t *obj, bool server,
                                 struct vrev__carrier_opts *c);

/* wsSettings.headers: a map of strings (Go's map[string]string). Host is the Host header;
 * the handshake's own headers are refused as V2Ray's dialer (gorilla/websocket) refuses
 * them at every dial. A server has no use for them. */
static int ws_headers(vrev__cfg_loader *L, json_t *ws, bool server, struct vrev__carrier_opts *c)
{
    static const char *const own[] = {"upgrade",
                                      "connection",
                                      "sec-websocket-key",
                                      "sec-websocket-version",
                                      "sec-websocket-extensions",
                                      NULL};
    json_t *h, *v;
    const char *key, *name;
    VREV_CFG_TRY(vrev__cfg_object(L, ws, "headers", &h, &key));
    if (!h || !json_object_size(h))
        return 0;
    vrev__cfg_push_key(L, key);
    if (server) {
        vrev__cfg_warn(L, true, "ignored: a server does not send request headers");
        vrev__cfg_pop(L);
        return 0;
    }
    size_t n = json_object_size(h), k = 0;
    const char **names = vrev__cfg_strv(L, n), **values = vrev__cfg_strv(L, n);
    const char **host = vrev__cfg_strv(L, 1);
    if (!names || !values || !host)
        return vrev__cfg_nomem(L);
    json_object_foreach(h, name, v)
    {
        vrev__cfg_push_key(L, name);
        if (!json_is_string(v))
            return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID, "expected a string");
        for (size_t i = 0; own[i]; i++)
            if (!strcasecmp(name, own[i]))
                return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                                      "the WebSocket handshake sets this header itself (V2Ray "
                                      "refuses it at every dial)");
        const char *val = vrev__cfg_strndup(L, json_string_value(v), json_string_length(v));
        if (!val)
            return vrev__cfg_nomem(L);
        if (!strcasecmp(name, "host")) {
            host[0] = val;
            c->hosts = host;
            c->n_hosts = 1;
        } else {
            if (!(names[k] = vrev__cfg_strndup(L, name, strlen(name))))
                return vrev__cfg_nomem(L);
            values[k++] = val;
        }
        vrev__cfg_pop(L);
    }
    c->header_names = names;
    c->header_values = values;
    c->n_headers = k;
    vrev__cfg_pop(L);
    return 0;
}

static int parse_ws(vrev__cfg_loader *L, json_t *obj, bool server, struct vrev__carrier_opts *c)
{
    static const char *const known[] = {"path",
                                        "headers",
                                        "acceptProxyProtocol",
                                        "maxEarlyData",
                                        "earlyDataHeaderName",
                                        "useBrowserForwarding",
                                        NULL};
    static const char *const later[] = {"maxEarlyData", "earlyDataHeaderName",
                                        "useBrowserForwarding", NULL};
    json_t *ws;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "wsSettings", &ws, &key));
    if (!ws)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, ws, known);
    VREV_CFG_TRY(carrier_path(L, ws, "path", &c->path));
    VREV_CFG_TRY(ws_headers(L, ws, server, c));
    VREV_CFG_TRY(accept_proxy_protocol(L, ws, server, c));
    warn_later(L, ws, later,
               "; early data is neither sent nor read, so a peer that sends it does not connect");
    vrev__cfg_pop(L);
    return 0;
}

static int parse_http(vrev__cfg_loader *L, json_t *obj, struct vrev__carrier_opts *c)
{
    static const char *const known[] = {"host", "path", "method", "headers", NULL};
    static const char *const later[] = {"method", "headers", NULL};
    struct vrev__strlist hosts = {0};
    json_t *h2;
    const char *key;
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "httpSettings", &h2, &key));
    if (!h2)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, h2, known);
    VREV_CFG_TRY(vrev__cfg_strlist(L, h2, "host", false, &hosts, NULL));
    c->hosts = hosts.v;
    c->n_hosts = hosts.n;
    VREV_CFG_TRY(carrier_path(L, h2, "path", &c->path));
    warn_later(L, h2, later, "; requests use PUT and V2Ray 4.34's headers");
    vrev__cfg_pop(L);
    return 0;
}

/* ALPN as V2Ray's dialers and listeners set it: its h2 client offers "h2" first whatever the
 * configuration says and its h2 server always accepts "h2"; its ws client offers "http/1.1"
 * unless "alpn" is given. */
static int carrier_alpn(vrev__cfg_loader *L, bool server, int kind, struct vrev__strlist *alpn)
{
    const char *want = kind == VREV_CARRIER_H2              ? "h2"
                       : kind == VREV_CARRIER_WS && !server ? "http/1.1"
                                                            : NULL;
    if (!want || (kind == VREV_CARRIER_WS && alpn->n))
        return 0;
    for (size_t i = 0; i < alpn->n; i++)
        if (!strcmp(alpn->v[i], want))
            return 0;
    const char **v = vrev__cfg_strv(L, alpn->n + 1);
    if (!v)
        return vrev__cfg_nomem(L);
    size_t at = server ? alpn->n : 0; /* the client offers it first; the server adds it */
    for (size_t i = 0, k = 0; i <= alpn->n; i++)
        v[i] = i == at ? want : alpn->v[k++];
    alpn->v = v;
    alpn->n++;
    return 0;
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

/* tcpSettings / wsSettings.acceptProxyProtocol (and sockopt's under h2): the listener reads a
 * PROXY v1 or v2 header first, as V2Ray 4.34 does (lib/proxy/pp_accept.c). A client never
 * reads one (V2Ray's dialers ignore the key). */
static int accept_proxy_protocol(vrev__cfg_loader *L, json_t *obj, bool server,
                                 struct vrev__carrier_opts *c)
{
    bool on = false;
    VREV_CFG_TRY(vrev__cfg_bool(L, obj, "acceptProxyProtocol", &on));
    if (server) {
        if (on)
            c->accept_proxy_protocol = true;
        return 0;
    }
    if (!on)
        return 0;
    const char *key;
    vrev__cfg_get(L, obj, "acceptProxyProtocol", &key);
    vrev__cfg_push_key(L, key);
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_UNSUPPORTED,
                          "a PROXY header is read by a listener (an inbound) only");
}

static int parse_tcp_settings(vrev__cfg_loader *L, json_t *obj, bool server,
                              struct vrev__carrier_opts *c)
{
    static const char *const known[] = {"header", "acceptProxyProtocol", NULL};
    json_t *tcp, *header;
    const char *key, *hkey, *type = "none";
    VREV_CFG_TRY(vrev__cfg_object(L, obj, "tcpSettings", &tcp, &key));
    if (!tcp)
        return 0;
    vrev__cfg_push_key(L, key);
    if (c->kind != VREV_CARRIER_TCP) { /* V2Ray keeps them for tcp and uses them nowhere else */
        vrev__cfg_warn(L, true, "ignored: the network is %s", carrier_names[c->kind]);
        vrev__cfg_pop(L);
        return 0;
    }
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
    VREV_CFG_TRY(accept_proxy_protocol(L, tcp, server, c));
    vrev__cfg_pop(L);
    return 0;
}

/* sockopt.acceptProxyProtocol: V2Ray 4.34's tcp and ws listeners replace it with their
 * tcpSettings / wsSettings value, so it counts only under h2. */
static int sockopt_proxy_protocol(vrev__cfg_loader *L, json_t *so, bool server,
                                  struct vrev__cfg_stream *out)
{
    const char *key;
    bool on = false;
    if (!server || out->carrier.kind == VREV_CARRIER_H2)
        return accept_proxy_protocol(L, so, server, &out->carrier);
    VREV_CFG_TRY(vrev__cfg_bool(L, so, "acceptProxyProtocol", &on));
    if (on && vrev__cfg_get(L, so, "acceptProxyProtocol", &key)) {
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true,
                       "ignored, as V2Ray 4.34 ignores it for network %s: set "
                       "acceptProxyProtocol in %s",
                       carrier_names[out->carrier.kind],
                       out->carrier.kind == VREV_CARRIER_WS ? "wsSettings" : "tcpSettings");
        vrev__cfg_pop(L);
    }
    return 0;
}

static int parse_sockopt(vrev__cfg_loader *L, json_t *obj, bool server,
                         struct vrev__cfg_stream *out)
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
    VREV_CFG_TRY(sockopt_proxy_protocol(L, so, server, out));
    vrev__cfg_pop(L);
    return 0;
}

/* Settings of a network other than the one in use: V2Ray keeps and ignores them. */
static void warn_other_transports(vrev__cfg_loader *L, json_t *obj, int kind)
{
    static const char *const others[] = {"kcpSettings", "dsSettings", "quicSettings", NULL};
    const char *key;
    for (size_t i = 0; others[i]; i++) {
        if (!vrev__cfg_get(L, obj, others[i], &key))
            continue;
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "ignored: the network is %s", carrier_names[kind]);
        vrev__cfg_pop(L);
    }
}

/* wsSettings / httpSettings next to another network: read as V2Ray reads them (errors
 * there are errors), then ignored with a warning. */
static int carrier_settings(vrev__cfg_loader *L, json_t *obj, bool server,
                            struct vrev__carrier_opts *c)
{
    struct vrev__carrier_opts ws = {.kind = VREV_CARRIER_WS}, h2 = {.kind = VREV_CARRIER_H2};
    const char *key;
    VREV_CFG_TRY(parse_ws(L, obj, server, &ws));
    VREV_CFG_TRY(parse_http(L, obj, &h2));
    if (c->kind == VREV_CARRIER_WS)
        *c = ws;
    else if (c->kind == VREV_CARRIER_H2)
        *c = h2;
    static const char *const names[] = {"wsSettings", "httpSettings"};
    for (int i = 0; i < 2; i++) {
        if (c->kind == i + 1 || !vrev__cfg_get(L, obj, names[i], &key))
            continue;
        vrev__cfg_push_key(L, key);
        vrev__cfg_warn(L, true, "ignored: the network is %s", carrier_names[c->kind]);
        vrev__cfg_pop(L);
    }
    return 0;
}

/* h2: V2Ray's client needs TLS ("TLS must be enabled for http transport"; refused at load
 * here rather than at every dial); its server also serves cleartext h2 (for a front server). */
static int check_h2_tls(vrev__cfg_loader *L, json_t *obj, bool server,
                        const struct vrev__cfg_stream *out)
{
    const char *key;
    if (server || out->carrier.kind != VREV_CARRIER_H2 || out->security == VREV_CFG_SECURITY_TLS)
        return 0;
    vrev__cfg_get(L, obj, "network", &key);
    vrev__cfg_push_key(L, key);
    return vrev__cfg_fail(L, VREV_ERR_CONFIG_INVALID,
                          "an h2 client needs TLS (\"security\": \"tls\"), as V2Ray's");
}

int vrev__cfg_stream(vrev__cfg_loader *L, json_t *parent, bool server, struct vrev__cfg_stream *out)
{
    static const char *const known[] = {
        "network",      "security",   "tlsSettings",  "tcpSettings", "kcpSettings", "wsSettings",
        "httpSettings", "dsSettings", "quicSettings", "sockopt",     NULL};
    json_t *obj;
    const char *key;
    memset(&out->carrier, 0, sizeof(out->carrier));
    out->carrier.kind = VREV_CARRIER_TCP;
    out->security = VREV_CFG_SECURITY_NONE;
    out->custom = NULL;
    out->tcp_fast_open = -1;
    VREV_CFG_TRY(vrev__cfg_object(L, parent, "streamSettings", &obj, &key));
    if (!obj)
        return 0;
    vrev__cfg_push_key(L, key);
    vrev__cfg_check_keys(L, obj, known);
    VREV_CFG_TRY(parse_network(L, obj, &out->carrier.kind));
    VREV_CFG_TRY(parse_security(L, obj, server, out));
    VREV_CFG_TRY(check_h2_tls(L, obj, server, out));
    if (out->security == VREV_CFG_SECURITY_TLS)
        VREV_CFG_TRY(carrier_alpn(L, server, out->carrier.kind, &out->tls.alpn));
    VREV_CFG_TRY(parse_tcp_settings(L, obj, server, &out->carrier));
    VREV_CFG_TRY(carrier_settings(L, obj, server, &out->carrier));
    VREV_CFG_TRY(parse_sockopt(L, obj, server, out));
    warn_other_transports(L, obj, out->carrier.kind);
    vrev__cfg_pop(L);
    return 0;
}
