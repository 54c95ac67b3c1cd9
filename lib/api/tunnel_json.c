/* vrev_tunnel_opts_print_config(): the V2Ray 4.34 JSON equivalent of a CLI portal or bridge
 * (it runs under both `vrev run -c` and V2Ray). Every string in it was validated by the
 * setters (names, domains, host:port, UUID), so none needs JSON escaping. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "codec/addr.h"
#include "codec/vmess.h"
#include "core/hex.h"
#include "net/tls_pin.h"
#include "tunnel_internal.h"

struct out {
    char *buf;
    size_t cap;
    size_t len; /* as if the buffer were large enough */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static const char *security_name(int s)
{
    return s == VREV_VMESS_SEC_CHACHA20_POLY1305 ? "chacha20-poly1305"
           : s == VREV_VMESS_SEC_NONE            ? "none"
                                                 : "aes-128-gcm";
}

static void listen_fields(struct out *o, const char *hostport)
{
    struct vrev__addr a;
    char host[64];
    vrev__addr_from_hostport(&a, hostport);
    vrev__addr_host_text(&a, host, sizeof(host));
    put(o, "\"listen\": \"%s\", \"port\": %u", host, (unsigned)a.port);
}

/* "network" and its settings, inside streamSettings (nothing for tcp). */
static void carrier_fields(struct out *o, const vrev_tunnel_opts *t, bool portal)
{
    const char *path = t->carrier_path ? t->carrier_path : "/";
    /* --accept-proxy-protocol: where V2Ray 4.34 reads it for each network */
    const char *pp = ", \"acceptProxyProtocol\": true";
    bool accept = portal && t->accept_proxy;
    if (t->carrier == VREV_CARRIER_WS) {
        put(o, "\"network\": \"ws\", \"wsSettings\": { \"path\": \"%s\"", path);
        if (!portal && t->carrier_host) /* a V2Ray ws server does not check it */
            put(o, ", \"headers\": { \"Host\": \"%s\" }", t->carrier_host);
        put(o, "%s }, ", accept ? pp : "");
    } else if (t->carrier == VREV_CARRIER_H2) {
        put(o, "\"network\": \"h2\", \"httpSettings\": { \"path\": \"%s\"", path);
        if (t->carrier_host)
            put(o, ", \"host\": [ \"%s\" ]", t->carrier_host);
        put(o, " }, %s", accept ? "\"sockopt\": { \"acceptProxyProtocol\": true }, " : "");
    } else if (accept) {
        put(o, "\"tcpSettings\": { \"acceptProxyProtocol\": true }, ");
    }
}

static void portal_json(struct out *o, const vrev_tunnel_opts *t, const char *id)
{
    put(o, "{\n  \"log\": { \"loglevel\": \"warning\" },\n");
    put(o, "  \"reverse\": { \"portals\": [ { \"tag\": \"portal\", \"domain\": \"%s\" } ] },\n",
        vrev__tunnel_domain(t));
    put(o, "  \"inbounds\": [\n    { \"tag\": \"tunnel\", ");
    listen_fields(o, t->listen);
    put(o,
        ", \"protocol\": \"vmess\",\n      \"settings\": { \"clients\": [ { \"id\": \"%s\", "
        "\"alterId\": 0 } ] }",
        id);
    if (t->tls || t->transport || t->carrier != VREV_CARRIER_TCP || t->accept_proxy) {
        put(o, ",\n      \"streamSettings\": { ");
        carrier_fields(o, t, true);
        if (t->tls)
            put(o,
                "\"security\": \"tls\", \"tlsSettings\": { \"certificates\": [ { "
                "\"certificateFile\": \"%s\", \"keyFile\": \"%s\" } ] } }",
                t->tls_cert ? t->tls_cert : "", t->tls_key ? t->tls_key : "");
        else
            put(o, "\"security\": \"%s\" }", t->transport ? t->transport : "none");
    }
    put(o, " }");
    for (size_t i = 0; i < t->n_publics; i++) {
        put(o, ",\n    { \"tag\": \"public-%zu\", ", i);
        listen_fields(o, t->publics[i].hostport);
        put(o,
            ", \"protocol\": \"dokodemo-door\",\n      \"settings\": { \"address\": \"%s\", "
            "\"port\": 0, \"network\": \"tcp\" }%s }",
            t->publics[i].name,
            t->accept_proxy ? ",\n      \"streamSettings\": { \"tcpSettings\": { "
                              "\"acceptProxyProtocol\": true } }"
                            : "");
    }
    put(o, "\n  ],\n  \"outbounds\": [ { \"tag\": \"block\", \"protocol\": \"blackhole\", "
           "\"settings\": {} } ],\n");
    put(o, "  \"routing\": { \"rules\": [\n    { \"type\": \"field\", \"inboundTag\": "
           "[ \"tunnel\"");
    for (size_t i = 0; i < t->n_publics; i++)
        put(o, ", \"public-%zu\"", i);
    put(o, " ], \"outboundTag\": \"portal\" }\n  ] }\n}\n");
}

/* "inboundTag": every bridge's tag. */
static void put_from(struct out *o, const vrev_tunnel_opts *t)
{
    char btag[32], itag[32];
    put(o, "\"inboundTag\": [ ");
    for (size_t i = 0; i < t->n_portals; i++) {
        vrev__tunnel_leg_tags(t, i, btag, itag);
        put(o, "%s\"%s\"", i ? ", " : "", btag);
    }
    put(o, " ]");
}

/* A routing rule sending TCP sessions to exactly `a` to outbound target-<i>. */
static void put_target_rule(struct out *o, const vrev_tunnel_opts *t, const struct vrev__addr *a,
                            size_t i)
{
    char h[VREV_ADDR_DOMAIN_MAX + 1];
    vrev__addr_host_text(a, h, sizeof(h));
    put(o, ",\n    { \"type\": \"field\", ");
    put_from(o, t);
    put(o,
        ", \"network\": \"tcp\", "
        "\"%s\": [ \"%s%s\" ], \"port\": \"%u\", \"outboundTag\": \"target-%zu\" }",
        a->type == VREV_ADDR_DOMAIN ? "domain" : "ip", a->type == VREV_ADDR_DOMAIN ? "full:" : "",
        h, (unsigned)a->port, i);
}

/* The VMess outbound to portal `hostport`, tag `tag`. */
static void interconn_json(struct out *o, const vrev_tunnel_opts *t, const char *id,
                           const char *hostport, const char *tag)
{
    struct vrev__addr a;
    char host[VREV_ADDR_DOMAIN_MAX + 1];
    vrev__addr_from_hostport(&a, hostport);
    vrev__addr_host_text(&a, host, sizeof(host));
    put(o,
        "    { \"tag\": \"%s\", \"protocol\": \"vmess\",\n"
        "      \"settings\": { \"vnext\": [ { \"address\": \"%s\", \"port\": %u, \"users\": "
        "[ { \"id\": \"%s\", \"alterId\": 0, \"security\": \"%s\" } ] } ] }",
        tag, host, (unsigned)a.port, id, security_name(t->security));
    if (t->tls || t->transport || t->carrier != VREV_CARRIER_TCP)
        put(o, ",\n      \"streamSettings\": { ");
    carrier_fields(o, t, false);
    if (t->tls) {
        put(o, "\"security\": \"tls\", \"tlsSettings\": { ");
        /* Go (V2Ray) refuses a TLS client without a server name: say which name to check,
         * the portal's host (an IP is checked against the certificate's IP SANs). */
        put(o, "\"serverName\": \"%s\", ", t->tls_sni ? t->tls_sni : host);
        if (t->tls_insecure)
            put(o, "\"allowInsecure\": true, ");
        if (t->tls_ca)
            put(o, "\"certificates\": [ { \"certificateFile\": \"%s\", \"usage\": \"verify\" } ], ",
                t->tls_ca);
        /* v2fly 4.38 and later check it; 4.34 ignores the key */
        for (size_t i = 0; i < t->n_tls_pins; i++) {
            char b64[VREV__TLS_PIN_B64_LEN + 1];
            vrev__tls_pin_base64(t->tls_pins[i], b64);
            put(o, "%s\"%s\"%s", i ? ", " : "\"pinnedPeerCertificateChainSha256\": [ ", b64,
                i + 1 == t->n_tls_pins ? " ], " : "");
        }
        /* V2Ray's h2 client offers h2 whatever it is told; say it */
        put(o, "\"alpn\": [ \"%s\" ] } }", t->carrier == VREV_CARRIER_H2 ? "h2" : "http/1.1");
    } else if (t->transport || t->carrier != VREV_CARRIER_TCP) {
        put(o, "\"security\": \"%s\" }", t->transport ? t->transport : "none");
    }
    put(o, " }");
}

/* One reverse bridge, interconn outbound and tunnel rule per portal (tags as the bridge's
 * own, vrev__tunnel_leg_tags). */
static void bridge_json(struct out *o, const vrev_tunnel_opts *t, const char *id)
{
    const char *d = vrev__tunnel_domain(t);
    char btag[32], itag[32];
    put(o, "{\n  \"log\": { \"loglevel\": \"warning\" },\n  \"reverse\": { \"bridges\": [ ");
    for (size_t i = 0; i < t->n_portals; i++) {
        vrev__tunnel_leg_tags(t, i, btag, itag);
        put(o, "%s{ \"tag\": \"%s\", \"domain\": \"%s\" }", i ? ", " : "", btag, d);
    }
    put(o, " ] },\n  \"outbounds\": [\n");
    for (size_t i = 0; i < t->n_portals; i++) {
        vrev__tunnel_leg_tags(t, i, btag, itag);
        put(o, "%s", i ? ",\n" : "");
        interconn_json(o, t, id, t->portals[i], itag);
    }
    for (size_t i = 0; i < t->n_targets; i++)
        put(o,
            ",\n    { \"tag\": \"target-%zu\", \"protocol\": \"freedom\", \"settings\": "
            "{ \"redirect\": \"%s\" } }",
            i, t->targets[i].hostport);
    put(o, ",\n    { \"tag\": \"deny\", \"protocol\": \"blackhole\", \"settings\": {} }\n  ],\n");
    put(o, "  \"routing\": { \"rules\": [");
    for (size_t i = 0; i < t->n_portals; i++) {
        vrev__tunnel_leg_tags(t, i, btag, itag);
        put(o,
            "%s\n    { \"type\": \"field\", \"inboundTag\": [ \"%s\" ], \"domain\": "
            "[ \"full:%s\" ], \"outboundTag\": \"%s\" }",
            i ? "," : "", btag, d, itag);
    }
    for (size_t i = 0; i < t->n_targets; i++) {
        struct vrev__addr ta;
        if (vrev__tunnel_target_addr(&t->targets[i], &ta)) /* the HOST:PORT the portal asks for */
            put_target_rule(o, t, &ta, i);
        else {
            put(o, ",\n    { \"type\": \"field\", ");
            put_from(o, t);
            put(o,
                ", \"network\": \"tcp\", \"domain\": [ \"full:%s\" ], \"outboundTag\": "
                "\"target-%zu\" }",
                t->targets[i].name, i);
        }
    }
    /* as the bridge itself: each target's own HOST:PORT reaches it too (a V2Ray portal set up
     * as its documentation shows names the real service) */
    for (size_t i = 0; i < t->n_targets; i++) {
        struct vrev__addr ta;
        if (vrev__addr_from_hostport(&ta, t->targets[i].hostport) == 0)
            put_target_rule(o, t, &ta, i);
    }
    /* nothing else: a portal cannot make this bridge reach other hosts */
    put(o, ",\n    { \"type\": \"field\", ");
    put_from(o, t);
    put(o, ", \"outboundTag\": \"deny\" }\n  ] }");
    /* PROXY headers to targets: libvrev's key (V2Ray 4.34 ignores the object and sends none) */
    const char *sep = ",\n  \"vrev\": { \"outbounds\": { ";
    for (size_t i = 0; i < t->n_targets; i++)
        if (t->targets[i].proxy_protocol) {
            put(o, "%s\"target-%zu\": { \"proxyProtocol\": \"v%d\" }", sep, i,
                t->targets[i].proxy_protocol);
            sep = ", ";
        }
    put(o, "%s\n}\n", sep[0] == ',' && sep[1] == '\n' ? "" : " } }");
}

int vrev_tunnel_opts_print_config(const vrev_tunnel_opts *t, int as_portal, char *buf, size_t cap)
{
    if (!t || (cap && !buf) || !t->has_id)
        return VREV_ERR_INVAL;
    if (as_portal ? (!t->listen || !t->n_publics) : (!t->n_portals || !t->n_targets))
        return VREV_ERR_INVAL;
    for (size_t i = 0; !as_portal && i < t->n_targets; i++)
        if (!t->targets[i].hostport) /* an in-process handler has no JSON equivalent */
            return VREV_ERR_UNSUPPORTED;
    char id[37];
    vrev__uuid_format(t->uuid, id);
    struct out o = {buf, cap, 0};
    if (as_portal)
        portal_json(&o, t, id);
    else
        bridge_json(&o, t, id);
    vrev__wipe(id, sizeof(id));
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len > INT32_MAX ? VREV_ERR_RANGE : (int)o.len;
}
