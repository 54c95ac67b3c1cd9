/* vrev_tunnel_opts: the options of a portal or bridge, validated as they are set. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/vmess.h"
#include "net/tls_pin.h"
#include "tunnel_internal.h"
#include "vrev/transport.h"

static int set_err(vrev_tunnel_opts *o, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(vrev_tunnel_opts *o, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof(o->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* Every allocation of an options object goes through the allocator it was made with. */
static char *dup_str(vrev_tunnel_opts *o, const char *s)
{
    return vrev__alloc_strdup(&o->alloc, s);
}

static void o_free(vrev_tunnel_opts *o, void *p)
{
    vrev__alloc_free(&o->alloc, p);
}

int vrev_tunnel_opts_new(vrev_tunnel_opts **out, vrev_ctx *ctx)
{
    if (!out)
        return VREV_ERR_INVAL;
    const vrev_allocator *a = ctx ? &ctx->alloc : &vrev__default_allocator;
    vrev_tunnel_opts *o = vrev__alloc_malloc(a, sizeof(*o));
    if (!(*out = o))
        return VREV_ERR_NOMEM;
    memset(o, 0, sizeof(*o));
    o->alloc = *a;
    o->security = VREV_VMESS_SEC_AES_128_GCM;
    return 0;
}

void vrev_tunnel_opts_free(vrev_tunnel_opts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_publics; i++) {
        o_free(o, o->publics[i].hostport);
        o_free(o, o->publics[i].name);
    }
    for (size_t i = 0; i < o->n_targets; i++) {
        o_free(o, o->targets[i].hostport);
        o_free(o, o->targets[i].name);
    }
    void *owned[] = {o->publics, o->targets, o->tls_cert,     o->tls_key,
                     o->tls_ca,  o->tls_sni, o->tls_pins,     o->transport,
                     o->domain,  o->listen,  o->carrier_path, o->carrier_host};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        o_free(o, owned[i]);
    for (size_t i = 0; i < o->n_portals; i++) {
        o_free(o, o->portals[i]);
        if (o->portal_names)
            o_free(o, o->portal_names[i]);
    }
    o_free(o, o->portals);
    o_free(o, o->portal_names);
    vrev_allocator a = o->alloc;
    vrev__wipe(o, sizeof(*o)); /* the UUID is the shared secret */
    vrev__alloc_free(&a, o);
}

const char *vrev_tunnel_opts_error(const vrev_tunnel_opts *o)
{
    return o ? o->err : "";
}

int vrev_tunnel_opts_set_id(vrev_tunnel_opts *o, const char *uuid)
{
    if (!o)
        return VREV_ERR_INVAL;
    static const uint8_t nil[16] = {0};
    if (!uuid || vrev__vmess_uuid_parse(uuid, strlen(uuid), o->uuid) < 0 ||
        !memcmp(o->uuid, nil, 16)) {
        o->has_id = false;
        return set_err(o, VREV_ERR_INVAL,
                       "invalid id: need a UUID like 5783a3e7-e373-51cd-8642-c83782b807c5 "
                       "(vrev uuid prints a new one)");
    }
    o->has_id = true;
    o->err[0] = '\0';
    return 0;
}

int vrev_tunnel_opts_set_security(vrev_tunnel_opts *o, const char *name)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (name && !strcmp(name, "aes-128-gcm"))
        o->security = VREV_VMESS_SEC_AES_128_GCM;
    else if (name && !strcmp(name, "chacha20-poly1305"))
        o->security = VREV_VMESS_SEC_CHACHA20_POLY1305;
    else if (name && !strcmp(name, "none"))
        o->security = VREV_VMESS_SEC_NONE;
    else
        return set_err(o, VREV_ERR_INVAL,
                       "unknown security '%s' (aes-128-gcm, chacha20-poly1305 or none)",
                       name ? name : "");
    return 0;
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    /* a name that reads as an IP literal would be sent as an IP: keep names symbolic */
    struct vrev__addr a;
    return vrev__addr_from_text(&a, s, 0) == 0 && a.type == VREV_ADDR_DOMAIN;
}

int vrev_tunnel_opts_set_domain(vrev_tunnel_opts *o, const char *domain)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (!name_ok(domain, 255))
        return set_err(o, VREV_ERR_INVAL, "invalid domain '%s': use letters, digits, '.', '-', '_'",
                       domain ? domain : "");
    char *d = dup_str(o, domain);
    if (!d)
        return VREV_ERR_NOMEM;
    o_free(o, o->domain);
    o->domain = d;
    return 0;
}

static int check_hostport(vrev_tunnel_opts *o, const char *hp, bool listen)
{
    struct vrev__addr a;
    if (!hp || vrev__addr_from_hostport(&a, hp) < 0)
        return set_err(o, VREV_ERR_INVAL, "invalid address '%s': need HOST:PORT ([v6]:PORT)",
                       hp ? hp : "");
    if (listen && a.type == VREV_ADDR_DOMAIN)
        return set_err(o, VREV_ERR_INVAL, "listen address '%s' must be an IP address", hp);
    return 0;
}

static int set_addr(vrev_tunnel_opts *o, char **slot, const char *hp, bool listen)
{
    int rc = o ? check_hostport(o, hp, listen) : VREV_ERR_INVAL;
    if (rc < 0)
        return rc;
    char *d = dup_str(o, hp);
    if (!d)
        return VREV_ERR_NOMEM;
    o_free(o, *slot);
    *slot = d;
    return 0;
}

int vrev_tunnel_opts_set_listen(vrev_tunnel_opts *o, const char *hostport)
{
    return set_addr(o, o ? &o->listen : NULL, hostport, true);
}

int vrev_tunnel_opts_add_portal(vrev_tunnel_opts *o, const char *hostport)
{
    int rc = o ? check_hostport(o, hostport, false) : VREV_ERR_INVAL;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < o->n_portals; i++)
        if (!strcmp(o->portals[i], hostport))
            return set_err(o, VREV_ERR_INVAL, "portal '%s' given twice", hostport);
    if (o->n_portals >= VREV_TUNNEL_MAX_PORTALS)
        return set_err(o, VREV_ERR_INVAL, "more than %d portals", VREV_TUNNEL_MAX_PORTALS);
    char **v = vrev__alloc_realloc(&o->alloc, o->portals, (o->n_portals + 1) * sizeof(*v));
    if (!v)
        return VREV_ERR_NOMEM;
    o->portals = v;
    if (!(v[o->n_portals] = dup_str(o, hostport)))
        return VREV_ERR_NOMEM;
    o->n_portals++;
    return 0;
}

int vrev_tunnel_opts_set_portal(vrev_tunnel_opts *o, const char *hostport)
{
    int rc = o ? check_hostport(o, hostport, false) : VREV_ERR_INVAL;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < o->n_portals; i++)
        o_free(o, o->portals[i]);
    o->n_portals = 0;
    return vrev_tunnel_opts_add_portal(o, hostport);
}

static int add_pair(vrev_tunnel_opts *o, struct vrev__tunnel_pair **v, size_t *n, const char *name,
                    const char *hostport, bool listen)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (!name)
        name = VREV_TUNNEL_DEFAULT_NAME;
    struct vrev__addr as_addr;
    bool addr_name = !listen && strchr(name, ':') && vrev__addr_from_hostport(&as_addr, name) == 0;
    if (!addr_name && !name_ok(name, 63))
        return set_err(o, VREV_ERR_INVAL,
                       "invalid target name '%s': 1..63 of letters, digits, '.', '-', '_'%s", name,
                       listen ? "" : ", or the HOST:PORT a portal asks for");
    int rc = hostport ? check_hostport(o, hostport, listen) : 0;
    if (rc < 0)
        return rc;
    struct vrev__tunnel_pair *nv = vrev__alloc_realloc(&o->alloc, *v, (*n + 1) * sizeof(**v));
    if (!nv)
        return VREV_ERR_NOMEM;
    *v = nv;
    memset(&nv[*n], 0, sizeof(nv[*n]));
    nv[*n].name = dup_str(o, name);
    nv[*n].hostport = hostport ? dup_str(o, hostport) : NULL;
    if (!nv[*n].name || (hostport && !nv[*n].hostport)) {
        o_free(o, nv[*n].name);
        o_free(o, nv[*n].hostport);
        return VREV_ERR_NOMEM;
    }
    (*n)++;
    return 0;
}

int vrev_tunnel_opts_add_handler(vrev_tunnel_opts *o, const char *name, vrev_bridge_accept_cb cb,
                                 void *user)
{
    if (!o || !cb)
        return VREV_ERR_INVAL;
    if (name && vrev__tunnel_find_target(o, name) >= 0)
        return set_err(o, VREV_ERR_INVAL, "target name '%s' given twice", name);
    int rc = add_pair(o, &o->targets, &o->n_targets, name, NULL, false);
    if (rc == 0) {
        o->targets[o->n_targets - 1].cb = cb;
        o->targets[o->n_targets - 1].user = user;
    }
    return rc;
}

int vrev_tunnel_opts_add_public(vrev_tunnel_opts *o, const char *hostport, const char *name)
{
    if (o && !hostport)
        return check_hostport(o, NULL, true);
    return add_pair(o, o ? &o->publics : NULL, o ? &o->n_publics : NULL, name, hostport, true);
}

int vrev_tunnel_opts_add_target(vrev_tunnel_opts *o, const char *name, const char *hostport)
{
    if (o && name && vrev__tunnel_find_target(o, name) >= 0)
        return set_err(o, VREV_ERR_INVAL, "target name '%s' given twice", name);
    if (o && !hostport)
        return check_hostport(o, NULL, false);
    return add_pair(o, o ? &o->targets : NULL, o ? &o->n_targets : NULL, name, hostport, false);
}

int vrev_tunnel_opts_set_target_proxy_protocol(vrev_tunnel_opts *o, const char *name, int version)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (!name)
        name = VREV_TUNNEL_DEFAULT_NAME;
    long i = vrev__tunnel_find_target(o, name);
    if (i < 0 || !o->targets[i].hostport)
        return set_err(o, VREV_ERR_INVAL, "proxy-protocol: no target '%s' with a HOST:PORT", name);
    if (version < 0 || version > 2)
        return set_err(o, VREV_ERR_INVAL, "proxy-protocol must be v1 or v2");
    o->targets[i].proxy_protocol = version;
    return 0;
}

int vrev_tunnel_opts_set_accept_proxy_protocol(vrev_tunnel_opts *o, int on)
{
    if (!o)
        return VREV_ERR_INVAL;
    o->accept_proxy = on != 0;
    return 0;
}

long vrev__tunnel_find_target(const vrev_tunnel_opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_targets; i++)
        if (!strcmp(o->targets[i].name, name))
            return (long)i;
    return -1;
}

const char *vrev__tunnel_domain(const vrev_tunnel_opts *o)
{
    return o->domain ? o->domain : VREV_TUNNEL_DEFAULT_DOMAIN;
}

int vrev_tunnel_opts_set_tls(vrev_tunnel_opts *o, int on)
{
    if (!o)
        return VREV_ERR_INVAL;
    o->tls = on != 0;
    return 0;
}

int vrev_tunnel_opts_set_transport(vrev_tunnel_opts *o, const char *name)
{
    if (!o)
        return VREV_ERR_INVAL;
    char *d = NULL;
    if (name && *name) {
        if (!name_ok(name, VREV_TRANSPORT_NAME_MAX))
            return set_err(o, VREV_ERR_INVAL,
                           "invalid transport name '%.40s': up to %d letters, digits, '.', "
                           "'-', '_'",
                           name, VREV_TRANSPORT_NAME_MAX);
        if (!(d = dup_str(o, name)))
            return VREV_ERR_NOMEM;
    }
    o_free(o, o->transport);
    o->transport = d;
    return 0;
}

int vrev_tunnel_opts_set_tls_insecure(vrev_tunnel_opts *o, int on)
{
    if (!o)
        return VREV_ERR_INVAL;
    o->tls_insecure = on != 0;
    return 0;
}

/* Paths go into printed JSON unescaped: keep them plain. */
static int set_path(vrev_tunnel_opts *o, char **slot, const char *path)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (!path || !*path || strpbrk(path, "\"\\\n\r\t"))
        return set_err(o, VREV_ERR_INVAL, "invalid file name '%s'", path ? path : "");
    char *d = dup_str(o, path);
    if (!d)
        return VREV_ERR_NOMEM;
    o_free(o, *slot);
    *slot = d;
    return 0;
}

int vrev_tunnel_opts_set_tls_cert(vrev_tunnel_opts *o, const char *cert_file, const char *key_file)
{
    int rc = set_path(o, o ? &o->tls_cert : NULL, cert_file);
    return rc < 0 ? rc : set_path(o, &o->tls_key, key_file);
}

int vrev_tunnel_opts_set_tls_ca(vrev_tunnel_opts *o, const char *file)
{
    return set_path(o, o ? &o->tls_ca : NULL, file);
}

int vrev_tunnel_opts_add_tls_pin(vrev_tunnel_opts *o, const char *pin)
{
    uint8_t h[VREV__TLS_PIN_LEN];
    if (!o)
        return VREV_ERR_INVAL;
    if (vrev__tls_pin_parse(pin, h) < 0)
        return set_err(o, VREV_ERR_INVAL,
                       "invalid pin '%.80s': need sha256: and the chain's SHA-256 in 64 hex "
                       "digits or base64",
                       pin ? pin : "");
    if (o->n_tls_pins >= 64)
        return set_err(o, VREV_ERR_INVAL, "too many pins (at most 64)");
    uint8_t(*v)[32] = vrev__alloc_realloc(&o->alloc, o->tls_pins, (o->n_tls_pins + 1) * sizeof(*v));
    if (!v)
        return VREV_ERR_NOMEM;
    memcpy(v[o->n_tls_pins++], h, sizeof(h));
    o->tls_pins = v;
    return 0;
}

int vrev_tunnel_opts_set_tls_sni(vrev_tunnel_opts *o, const char *name)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (!name_ok(name, 255))
        return set_err(o, VREV_ERR_INVAL, "invalid TLS server name '%s'", name ? name : "");
    char *d = dup_str(o, name);
    if (!d)
        return VREV_ERR_NOMEM;
    o_free(o, o->tls_sni);
    o->tls_sni = d;
    return 0;
}

bool vrev__tunnel_target_addr(const struct vrev__tunnel_pair *t, struct vrev__addr *a)
{
    return strchr(t->name, ':') && vrev__addr_from_hostport(a, t->name) == 0;
}

int vrev_tunnel_opts_set_heartbeat_ms(vrev_tunnel_opts *o, unsigned ms)
{
    if (!o || ms > 3600 * 1000)
        return VREV_ERR_INVAL;
    o->heartbeat_ms = ms;
    return 0;
}

int vrev_tunnel_opts_set_drain_after(vrev_tunnel_opts *o, unsigned sessions)
{
    if (!o || sessions > 65000) /* session ids are 16 bits: drain well before they run out */
        return VREV_ERR_INVAL;
    o->drain_after = sessions;
    return 0;
}

int vrev_tunnel_opts_set_dead_after_ms(vrev_tunnel_opts *o, unsigned ms)
{
    if (!o || (ms && (ms < 1000 || ms > 3600 * 1000)))
        return VREV_ERR_INVAL;
    o->dead_after_ms = ms;
    return 0;
}

int vrev_tunnel_opts_set_sessions_per_tunnel(vrev_tunnel_opts *o, unsigned sessions)
{
    if (!o || sessions > 65000)
        return VREV_ERR_INVAL;
    o->sessions_per_tunnel = sessions;
    return 0;
}

int vrev_tunnel_opts_set_carrier(vrev_tunnel_opts *o, const char *network)
{
    if (!o)
        return VREV_ERR_INVAL;
    if (!network || !*network || !strcasecmp(network, "tcp"))
        o->carrier = VREV_CARRIER_TCP;
    else if (!strcasecmp(network, "ws") || !strcasecmp(network, "websocket"))
        o->carrier = VREV_CARRIER_WS;
    else if (!strcasecmp(network, "h2") || !strcasecmp(network, "http"))
        o->carrier = VREV_CARRIER_H2;
    else
        return set_err(o, VREV_ERR_INVAL,
                       "unknown transport '%.40s': tcp, ws or h2 (V2Ray's mKCP, QUIC, domain "
                       "sockets and gRPC are not supported)",
                       network);
    return 0;
}

/* A URL path and query: printed into JSON and sent in requests, so kept to RFC 3986's
 * characters (no quote, backslash, space or control). */
static bool path_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/%?", c));
}

int vrev_tunnel_opts_set_carrier_path(vrev_tunnel_opts *o, const char *path)
{
    if (!o)
        return VREV_ERR_INVAL;
    char *d = NULL;
    if (path && *path) {
        size_t n = strlen(path);
        for (size_t i = 0; i < n; i++)
            if (!path_char_ok(path[i]))
                return set_err(o, VREV_ERR_INVAL,
                               "invalid path '%.40s': the characters of a URL path and query "
                               "only",
                               path);
        if (n > 255)
            return set_err(o, VREV_ERR_INVAL, "path longer than 255 characters");
        if (!(d = vrev__alloc_malloc(&o->alloc, n + 2)))
            return VREV_ERR_NOMEM;
        snprintf(d, n + 2, "%s%s", path[0] == '/' ? "" : "/", path);
    }
    o_free(o, o->carrier_path);
    o->carrier_path = d;
    return 0;
}

int vrev_tunnel_opts_set_carrier_host(vrev_tunnel_opts *o, const char *host)
{
    if (!o)
        return VREV_ERR_INVAL;
    char *d = NULL;
    if (host && *host) {
        size_t n = strlen(host);
        bool ok = n <= 255;
        for (size_t i = 0; ok && i < n; i++)
            ok = (host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
                 (host[i] >= '0' && host[i] <= '9') || strchr(".-_:[]", host[i]);
        if (!ok)
            return set_err(o, VREV_ERR_INVAL,
                           "invalid host '%.40s': a host name or IP address (and a port)", host);
        if (!(d = dup_str(o, host)))
            return VREV_ERR_NOMEM;
    }
    o_free(o, o->carrier_host);
    o->carrier_host = d;
    return 0;
}

void vrev__tunnel_carrier(const vrev_tunnel_opts *o, struct vrev__carrier_opts *c,
                          const char **host)
{
    memset(c, 0, sizeof(*c));
    c->kind = o->carrier;
    c->path = o->carrier_path;
    *host = o->carrier_host;
    c->hosts = o->carrier_host ? host : NULL;
    c->n_hosts = o->carrier_host ? 1 : 0;
}

/* --- copies (a bridge keeps the options it was given: tunnel_resolve.c) --- */

static bool copy_str(vrev_tunnel_opts *c, char **to, const char *s)
{
    return !s || (*to = dup_str(c, s));
}

/* Arrays are allocated zeroed before being filled: a failure leaves them fit to free. */
static bool copy_strs(vrev_tunnel_opts *c, char ***to, char *const *v, size_t n)
{
    if (!v)
        return true;
    if (!(*to = vrev__alloc_malloc(&c->alloc, (n + 1) * sizeof(**to))))
        return false;
    memset(*to, 0, (n + 1) * sizeof(**to));
    for (size_t i = 0; i < n; i++)
        if (!copy_str(c, &(*to)[i], v[i]))
            return false;
    return true;
}

static bool copy_pairs(vrev_tunnel_opts *c, struct vrev__tunnel_pair **to,
                       const struct vrev__tunnel_pair *v, size_t n)
{
    if (!v)
        return true;
    if (!(*to = vrev__alloc_malloc(&c->alloc, (n + 1) * sizeof(**to))))
        return false;
    memset(*to, 0, (n + 1) * sizeof(**to));
    for (size_t i = 0; i < n; i++) {
        struct vrev__tunnel_pair *t = &(*to)[i];
        *t = v[i];
        t->name = t->hostport = NULL;
        if (!copy_str(c, &t->name, v[i].name) || !copy_str(c, &t->hostport, v[i].hostport))
            return false;
    }
    return true;
}

vrev_tunnel_opts *vrev__tunnel_opts_copy(const vrev_tunnel_opts *o, vrev_ctx *ctx)
{
    vrev_tunnel_opts *c = vrev__malloc(ctx, sizeof(*c));
    if (!c)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->alloc = ctx->alloc;
    memcpy(c->uuid, o->uuid, sizeof(c->uuid));
    c->has_id = o->has_id;
    c->security = o->security;
    c->heartbeat_ms = o->heartbeat_ms;
    c->drain_after = o->drain_after;
    c->sessions_per_tunnel = o->sessions_per_tunnel;
    c->dead_after_ms = o->dead_after_ms;
    c->tls = o->tls;
    c->tls_insecure = o->tls_insecure;
    c->accept_proxy = o->accept_proxy;
    c->carrier = o->carrier;
    /* counts before arrays: the free below walks the zeroed entries of a partial copy */
    c->n_portals = o->n_portals;
    c->n_publics = o->n_publics;
    c->n_targets = o->n_targets;
    c->n_tls_pins = o->n_tls_pins;
    bool ok = copy_strs(c, &c->portals, o->portals, o->n_portals) &&
              copy_strs(c, &c->portal_names, o->portal_names, o->n_portals) &&
              copy_pairs(c, &c->publics, o->publics, o->n_publics) &&
              copy_pairs(c, &c->targets, o->targets, o->n_targets) &&
              copy_str(c, &c->domain, o->domain) && copy_str(c, &c->listen, o->listen) &&
              copy_str(c, &c->tls_cert, o->tls_cert) && copy_str(c, &c->tls_key, o->tls_key) &&
              copy_str(c, &c->tls_ca, o->tls_ca) && copy_str(c, &c->tls_sni, o->tls_sni) &&
              copy_str(c, &c->transport, o->transport) &&
              copy_str(c, &c->carrier_path, o->carrier_path) &&
              copy_str(c, &c->carrier_host, o->carrier_host);
    if (ok && o->n_tls_pins) {
        size_t pins = o->n_tls_pins * sizeof(*c->tls_pins);
        ok = (c->tls_pins = vrev__alloc_malloc(&c->alloc, pins)) != NULL;
        if (ok)
            memcpy(c->tls_pins, o->tls_pins, o->n_tls_pins * sizeof(*c->tls_pins));
    }
    if (!ok) {
        c->n_portals = c->portals ? c->n_portals : 0;
        c->n_publics = c->publics ? c->n_publics : 0;
        c->n_targets = c->targets ? c->n_targets : 0;
        vrev_tunnel_opts_free(c);
        return NULL;
    }
    return c;
}

static void free_strs(vrev_tunnel_opts *o, char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        o_free(o, v[i]);
    o_free(o, v);
}

int vrev__tunnel_opts_set_portals(vrev_tunnel_opts *o, char *const *portals, char *const *names,
                                  size_t n)
{
    char **p = NULL, **nm = NULL;
    bool ok = copy_strs(o, &p, portals, n) && copy_strs(o, &nm, names, n);
    size_t drop_n = ok ? o->n_portals : n;
    free_strs(o, ok ? o->portals : p, drop_n);
    free_strs(o, ok ? o->portal_names : nm, drop_n);
    if (!ok)
        return VREV_ERR_NOMEM;
    o->portals = p;
    o->portal_names = nm;
    o->n_portals = n;
    return 0;
}
