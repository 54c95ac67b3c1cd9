/* vrev_instance: a loaded config (lib/config) assembled into an engine (lib/proxy) with its
 * router, inbounds, outbounds, portals and bridges. */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "instance_internal.h"
#include "net/tls.h"

#define LOG_COMPONENT "instance"

/* A build error: the message names the config element (no line: the loader has checked the
 * syntax and types; these are the things the engine cannot do). */
static int fail(char *err, size_t len, int rc, const char *what, size_t idx, const char *msg)
{
    if (err && len)
        snprintf(err, len, "%s[%zu]: %s", what, idx, msg ? msg : vrev_strerror(rc));
    return rc;
}

/* streamSettings.tlsSettings -> a TLS context (client: what it trusts and checks; server: its
 * certificate). *out stays NULL without TLS. */
static int make_tls(vrev_instance *inst, const struct vrev__cfg_stream *s, bool server,
                    const char *tag, struct vrev__tls_ctx **out, char *msg, size_t len)
{
    *out = NULL;
    if (s->security != VREV_CFG_SECURITY_TLS)
        return 0;
    const struct vrev__cfg_tls *t = &s->tls;
    const char *pem[8], *files[8];
    size_t n_pem = 0, n_files = 0;
    for (size_t i = 0; i < t->n_certs && n_pem < 8 && n_files < 8; i++) {
        if (t->certs[i].certificate)
            pem[n_pem++] = t->certs[i].certificate;
        else if (t->certs[i].certificate_file)
            files[n_files++] = t->certs[i].certificate_file;
    }
    if (server) {
        const struct vrev__cfg_cert *c = t->n_certs ? &t->certs[0] : NULL;
        struct vrev__tls_server_opts so = {.cert_pem = c ? c->certificate : NULL,
                                           .cert_file = c ? c->certificate_file : NULL,
                                           .key_pem = c ? c->key : NULL,
                                           .key_file = c ? c->key_file : NULL,
                                           .alpn = t->alpn.v,
                                           .n_alpn = t->alpn.n};
        return vrev__tls_server_ctx_new(inst->ctx, &so, out, msg, len);
    }
    /* As V2Ray: the client trusts the system roots and every certificate listed. */
    struct vrev__tls_client_opts co = {t->server_name,
                                       t->allow_insecure,
                                       t->disable_system_root,
                                       pem,
                                       n_pem,
                                       files,
                                       n_files,
                                       t->alpn.v,
                                       t->alpn.n,
                                       (const uint8_t(*)[32])t->pins,
                                       t->n_pins};
    if (t->allow_insecure && !t->n_pins)
        vrev__log(inst->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  "[%s] allowInsecure: the server's certificate is not checked", tag);
    return vrev__tls_client_ctx_new(inst->ctx, &co, out, msg, len);
}

static int vmess_security(int cfg)
{
    return cfg == VREV_CFG_VMESS_AUTO ? VREV_VMESS_SEC_AES_128_GCM : cfg;
}

typedef int (*user_outbound_fn)(struct vrev__engine *e, const char *tag,
                                const struct vrev__user_out_opts *opts, size_t n,
                                struct vrev__outbound **out);

/* A vmess or vless outbound (`make`): one entry per configured (server, user). */
static int add_user_outbound(vrev_instance *inst, const char *tag,
                             const struct vrev__cfg_server *srv, size_t ns, user_outbound_fn make,
                             struct vrev__outbound **ob)
{
    size_t n = 0;
    for (size_t i = 0; i < ns; i++)
        n += srv[i].n_users;
    struct vrev__user_out_opts *vo = vrev__calloc(inst->ctx, n, sizeof(*vo));
    if (!vo)
        return VREV_ERR_NOMEM;
    n = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < srv[i].n_users; j++, n++) {
            vo[n].address = srv[i].address;
            vo[n].port = srv[i].port;
            memcpy(vo[n].uuid, srv[i].users[j].id.bytes, 16);
            vo[n].security = vmess_security(srv[i].users[j].security);
        }
    int rc = make(&inst->engine, tag, vo, n, ob);
    vrev__wipe(vo, n * sizeof(*vo));
    vrev__free(inst->ctx, vo);
    return rc;
}

static int add_outbound(vrev_instance *inst, const struct vrev__cfg_outbound *o,
                        struct vrev__outbound **ob, const char **why)
{
    struct vrev__engine *e = &inst->engine;
    switch (o->protocol) {
    case VREV_CFG_OUT_FREEDOM: {
        const struct vrev__cfg_freedom *f = &o->settings.freedom;
        struct vrev__freedom_opts fo = {.redirect_host = f->redirect ? f->redirect_host : NULL,
                                        .redirect_port = f->redirect ? f->redirect_port : 0,
                                        .domain_strategy = f->domain_strategy};
        int rc = vrev__freedom_new(e, o->tag, &fo, ob);
        if (rc == 0)
            vrev__freedom_set_proxy_protocol(*ob, f->proxy_protocol);
        return rc;
    }
    case VREV_CFG_OUT_BLACKHOLE:
        return vrev__blackhole_new(e, o->tag,
                                   o->settings.blackhole.response == VREV_CFG_BLACKHOLE_HTTP, ob);
    case VREV_CFG_OUT_VMESS:
        return add_user_outbound(inst, o->tag, o->settings.vmess.servers,
                                 o->settings.vmess.n_servers, vrev__vmess_out_new, ob);
    case VREV_CFG_OUT_VLESS:
        return add_user_outbound(inst, o->tag, o->settings.vless.servers,
                                 o->settings.vless.n_servers, vrev__vless_out_new, ob);
    case VREV_CFG_OUT_SOCKS: {
        const struct vrev__cfg_socks_server *srv = o->settings.socks.servers;
        size_t ns = o->settings.socks.n_servers;
        size_t n = 0;
        for (size_t i = 0; i < ns; i++) /* a server without users: no auth */
            n += srv[i].n_users ? srv[i].n_users : 1;
        struct vrev__socks_out_opts *so = vrev__calloc(inst->ctx, n, sizeof(*so));
        if (!so)
            return VREV_ERR_NOMEM;
        n = 0;
        for (size_t i = 0; i < ns; i++) {
            const struct vrev__cfg_socks_server *sv = &srv[i];
            for (size_t j = 0; j < (sv->n_users ? sv->n_users : 1); j++, n++) {
                so[n].address = sv->address;
                so[n].port = sv->port;
                so[n].user = sv->n_users ? sv->users[j].user : NULL;
                so[n].pass = sv->n_users ? sv->users[j].pass : NULL;
            }
        }
        int rc = vrev__socks_out_new(e, o->tag, so, n, ob);
        vrev__free(inst->ctx, so);
        if (rc == VREV_ERR_RANGE)
            *why = "a SOCKS user or password is longer than 255 bytes";
        return rc;
    }
    default:
        *why = "this outbound protocol is not supported yet";
        return VREV_ERR_UNSUPPORTED;
    }
}

static const char *carrier_why(int rc)
{
    return rc == VREV_ERR_UNSUPPORTED ? "this carrier (streamSettings.network) is not supported "
                                        "yet"
                                      : NULL;
}

/* streamSettings.network on an outbound: vmess, vless and socks dial their server through it.
 * V2Ray's freedom would dial its targets through it too: refused rather than ignored. A
 * blackhole never dials (V2Ray ignores it there too). */
static int outbound_carrier(struct vrev__outbound *ob, const struct vrev__cfg_outbound *o,
                            const char **why)
{
    const struct vrev__carrier_opts *c = &o->stream.carrier;
    if (c->kind == VREV_CARRIER_TCP || o->protocol == VREV_CFG_OUT_BLACKHOLE)
        return 0;
    if (o->protocol == VREV_CFG_OUT_FREEDOM) {
        *why = "a freedom outbound over ws or h2 is not supported (streamSettings.network: use "
               "tcp)";
        return VREV_ERR_UNSUPPORTED;
    }
    int rc = vrev__outbound_set_carrier(ob, c);
    *why = carrier_why(rc);
    return rc;
}

/* The same on an inbound: vmess, vless and socks accept through it; V2Ray's dokodemo-door
 * would too: refused rather than ignored. */
static int inbound_carrier(struct vrev__inbound *in, const struct vrev__cfg_inbound *c,
                           const char **why)
{
    vrev__inbound_set_accept_proxy(in, c->stream.carrier.accept_proxy_protocol);
    if (c->stream.carrier.kind == VREV_CARRIER_TCP)
        return 0;
    if (c->protocol == VREV_CFG_IN_DOKODEMO) {
        *why = "a dokodemo-door inbound over ws or h2 is not supported (streamSettings.network: "
               "use tcp)";
        return VREV_ERR_UNSUPPORTED;
    }
    int rc = vrev__inbound_set_carrier(in, &c->stream.carrier);
    *why = carrier_why(rc);
    return rc;
}

int vrev__inst_make_outbound(vrev_instance *inst, const struct vrev__cfg_outbound *o, size_t i,
                             struct vrev__outbound **out, char *err, size_t len)
{
    struct vrev__outbound *ob = NULL;
    struct vrev__tls_ctx *tls = NULL;
    const char *why = NULL;
    char msg[256] = "";
    *out = NULL;
    int rc = make_tls(inst, &o->stream, false, o->tag, &tls, msg, sizeof(msg));
    if (rc < 0)
        return fail(err, len, rc, "outbounds", i, msg[0] ? msg : NULL);
    rc = add_outbound(inst, o, &ob, &why);
    if (rc == 0 && (rc = outbound_carrier(ob, o, &why)) < 0)
        ob->ops->destroy(ob);
    if (rc < 0) {
        vrev__tls_ctx_free(tls);
        return fail(err, len, rc, "outbounds", i, why);
    }
    vrev__outbound_set_tls(ob, tls);
    ob->layer = vrev__ctx_transport(inst->ctx, o->stream.custom);
    *out = ob;
    return 0;
}

/* Portals come after the configured outbounds, as 4.34 registers them. */
int vrev__inst_make_portal(vrev_instance *inst, const struct vrev__cfg_reverse_entry *p, size_t i,
                           struct vrev__outbound **out, char *err, size_t len)
{
    struct vrev__portal_opts po = {.domain = p->domain};
    int rc = vrev__portal_new(&inst->engine, p->tag, &po, out);
    return rc < 0 ? fail(err, len, rc, "reverse.portals", i, NULL) : 0;
}

int vrev__inst_make_router(vrev_instance *inst, const struct vrev__config *cfg,
                           struct vrev__router **out, char *err, size_t len)
{
    const struct vrev__cfg_routing *r = &cfg->routing;
    *out = NULL;
    if (r->n_rules == 0 && r->n_balancers == 0)
        return 0;
    char msg[256] = "";
    struct vrev__router *router = NULL;
    int rc = vrev__router_new(inst->ctx, &router);
    for (size_t i = 0; rc == 0 && i < r->n_balancers; i++) {
        rc = vrev__router_add_balancer(router, r->balancers[i].tag, &r->balancers[i].selectors, msg,
                                       sizeof(msg));
        if (rc < 0)
            fail(err, len, rc, "routing.balancers", i, msg);
    }
    for (size_t i = 0; rc == 0 && i < r->n_rules; i++) {
        rc = vrev__router_add_rule(router, &r->rules[i], msg, sizeof(msg));
        if (rc < 0)
            fail(err, len, rc, "routing.rules", i, msg);
    }
    if (rc == 0 && (rc = vrev__router_finish(router, &cfg->outbound_tags, msg, sizeof(msg))) < 0 &&
        err && len)
        snprintf(err, len, "routing: %s", msg[0] ? msg : vrev_strerror(rc));
    if (rc < 0 && err && len && !err[0])
        snprintf(err, len, "routing: %s", vrev_strerror(rc));
    if (rc < 0) {
        vrev__router_free(router);
        return rc;
    }
    *out = router;
    return 0;
}

typedef int (*user_inbound_fn)(struct vrev__engine *e, const char *tag,
                               const struct vrev__in_user_opts *opts, struct vrev__inbound **out);

/* A vmess or vless inbound (`make`) for the configured clients. */
static int add_user_inbound(vrev_instance *inst, const struct vrev__cfg_inbound *c,
                            const struct vrev__cfg_client *clients, size_t n, user_inbound_fn make,
                            struct vrev__inbound **in)
{
    struct vrev__in_user *users = vrev__calloc(inst->ctx, n, sizeof(*users));
    if (!users)
        return VREV_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        memcpy(users[i].uuid, clients[i].id.bytes, 16);
        users[i].email = clients[i].email;
    }
    struct vrev__in_user_opts o = {
        .listen = c->listen, .port = c->port.from, .users = users, .n_users = n};
    int rc = make(&inst->engine, c->tag, &o, in);
    vrev__wipe(users, n * sizeof(*users));
    vrev__free(inst->ctx, users);
    return rc;
}

static int add_inbound(vrev_instance *inst, const struct vrev__cfg_inbound *c,
                       struct vrev__inbound **in, const char **why)
{
    struct vrev__engine *e = &inst->engine;
    if (c->port.from != c->port.to) {
        *why = "port ranges are not supported; give one port";
        return VREV_ERR_UNSUPPORTED;
    }
    switch (c->protocol) {
    case VREV_CFG_IN_DOKODEMO: {
        const struct vrev__cfg_dokodemo *d = &c->settings.dokodemo;
        if (!d->address) {
            *why = "followRedirect without an address is not supported";
            return VREV_ERR_UNSUPPORTED;
        }
        struct vrev__dokodemo_opts o = {c->listen, c->port.from, d->address, d->port, d->networks};
        return vrev__dokodemo_new(e, c->tag, &o, in);
    }
    case VREV_CFG_IN_VMESS:
        return add_user_inbound(inst, c, c->settings.vmess.clients, c->settings.vmess.n_clients,
                                vrev__vmess_in_new, in);
    case VREV_CFG_IN_VLESS:
        return add_user_inbound(inst, c, c->settings.vless.clients, c->settings.vless.n_clients,
                                vrev__vless_in_new, in);
    case VREV_CFG_IN_SOCKS: {
        const struct vrev__cfg_socks_inbound *s = &c->settings.socks;
        size_t n = s->auth == VREV_CFG_SOCKS_PASSWORD ? s->n_accounts : 0;
        struct vrev__socks_in_account *acc = NULL;
        if (n && !(acc = vrev__calloc(inst->ctx, n, sizeof(*acc))))
            return VREV_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            acc[i].user = s->accounts[i].user;
            acc[i].pass = s->accounts[i].pass;
        }
        struct vrev__socks_in_opts o = {c->listen, c->port.from, acc, n, s->udp, s->ip};
        int rc = vrev__socks_in_new(e, c->tag, &o, in);
        vrev__free(inst->ctx, acc);
        if (rc == VREV_ERR_RANGE)
            *why = "a SOCKS account's user or password is longer than 255 bytes";
        else if (rc == VREV_ERR_ADDR_SYNTAX || rc == VREV_ERR_ADDR_DOMAIN)
            *why = "settings.ip is not an address";
        return rc;
    }
    default:
        *why = "this inbound protocol is not supported yet";
        return VREV_ERR_UNSUPPORTED;
    }
}

int vrev__inst_make_inbound(vrev_instance *inst, const struct vrev__cfg_inbound *c, size_t i,
                            struct vrev__inbound **out, char *err, size_t len)
{
    const char *why = NULL;
    struct vrev__tls_ctx *tls = NULL;
    struct vrev__inbound *in = NULL;
    char tmsg[256] = "";
    struct vrev__listener *adopt = inst->engine.adopt; /* a reload's (reload.c) */
    *out = NULL;
    int rc = make_tls(inst, &c->stream, true, c->tag, &tls, tmsg, sizeof(tmsg));
    if (rc < 0)
        return fail(err, len, rc, "inbounds", i, tmsg[0] ? tmsg : NULL);
    rc = add_inbound(inst, c, &in, &why);
    if (rc == 0 && (rc = inbound_carrier(in, c, &why)) < 0) {
        if (adopt && in->listener == adopt) /* still the old inbound's */
            vrev__inbound_drop_adopted(in);
        else
            vrev__inbound_free(in);
        in = NULL;
    }
    if (rc < 0) {
        vrev__tls_ctx_free(tls);
        char msg[200];
        snprintf(msg, sizeof(msg), "%s (listen %s:%u)", why ? why : vrev_strerror(rc), c->listen,
                 c->port.from);
        return fail(err, len, rc, "inbounds", i, msg);
    }
    vrev__inbound_set_tls(in, tls);
    in->layer = vrev__ctx_transport(inst->ctx, c->stream.custom);
    *out = in;
    return 0;
}

int vrev__inst_make_bridge(vrev_instance *inst, const struct vrev__config *cfg, size_t i,
                           struct vrev__bridge **out, char *err, size_t len)
{
    const struct vrev__cfg_reverse_entry *b = &cfg->reverse.bridges[i];
    struct vrev__bridge_opts bo;
    memset(&bo, 0, sizeof(bo));
    bo.domain = b->domain;
    const struct vrev__strlist *allow = vrev__config_bridge_allow(cfg, b->tag);
    if (allow) { /* "vrev": {"bridges": {tag: {"allow": [...]}}} */
        bo.allowed_targets = allow->v;
        bo.n_allowed_targets = allow->n;
    }
    int rc = vrev__bridge_new(&inst->engine, b->tag, &bo, out);
    return rc < 0 ? fail(err, len, rc, "reverse.bridges", i, NULL) : 0;
}

static void apply_policy(vrev_instance *inst, const struct vrev__config *cfg)
{
    struct vrev__cfg_level_policy lp;
    vrev__config_policy_for_level(cfg, 0, &lp);
    struct vrev__policy *p = &inst->engine.policy;
    p->handshake_ms = lp.handshake * 1000;
    p->conn_idle_ms = lp.conn_idle * 1000;
    p->uplink_only_ms = lp.uplink_only * 1000;
    p->downlink_only_ms = lp.downlink_only * 1000;
    if (lp.buffer_size > 0)
        p->buffer_bytes = lp.buffer_size > UINT32_MAX ? UINT32_MAX : (uint32_t)lp.buffer_size;
}

/* "vrev": {"limits": {...}} are the instance's: the context holds them only while the instance
 * is built (and while a reload builds), so that the engine's copy (vrev__engine_init) and
 * whatever else copies the context's limits when it is made take them; then the context gets
 * its own back, except bufferedTotal, which is the context's alone (a budget for all its
 * objects). */
static struct vrev__limits limits_push(vrev_ctx *ctx, const struct vrev__config *cfg)
{
    struct vrev__limits saved = ctx->limits;
    for (size_t i = 0; i < cfg->vrev.n_limits; i++) /* names and ranges checked at load */
        vrev__limits_set(&ctx->limits, cfg->vrev.limits[i].name, cfg->vrev.limits[i].value, NULL,
                         0);
    return saved;
}

static void limits_pop(vrev_ctx *ctx, const struct vrev__limits *saved, bool keep_total)
{
    uint64_t buffered_total = ctx->limits.buffered_total;
    ctx->limits = *saved;
    if (keep_total)
        ctx->limits.buffered_total = buffered_total;
}

int vrev__inst_build(vrev_instance *inst, struct vrev__config *cfg, struct vrev__plan *plan,
                     char *err, size_t len)
{
    struct vrev__limits saved = limits_push(inst->ctx, cfg);
    int rc = vrev__plan_build(inst, cfg, plan, err, len);
    limits_pop(inst->ctx, &saved, rc == 0);
    if (rc < 0)
        return rc;
    vrev__plan_commit(inst, plan);
    inst->log_level = inst->cfg->log.error_type == VREV_CFG_LOG_NONE ? -1 : inst->cfg->log.level;
    return 0;
}

static void instance_free_deferred(void *inst)
{
    vrev_instance_free(inst);
}

static int instance_new_json(vrev_instance **out, vrev_ctx *ctx, const char *text, size_t len,
                             const char *filename, char *err, size_t err_len)
{
    if (!out || !ctx || (!text && len))
        return VREV_ERR_INVAL;
    *out = NULL;
    if (!ctx->base) {
        if (err && err_len)
            snprintf(err, err_len, "the context has no event_base");
        return VREV_ERR_STATE;
    }
    struct vrev__config *cfg = NULL;
    struct vrev__config_error ce;
    int rc = vrev__config_load(ctx, text, len, filename, &cfg, &ce);
    if (rc < 0) {
        if (err && err_len)
            vrev__config_error_format(&ce, err, err_len);
        return rc;
    }
    vrev_instance *inst = vrev__calloc(ctx, 1, sizeof(*inst));
    if (!inst) {
        vrev__config_free(cfg);
        return VREV_ERR_NOMEM;
    }
    inst->ctx = ctx;
    struct vrev__limits saved = limits_push(ctx, cfg);
    rc = vrev__engine_init(&inst->engine, ctx);
    limits_pop(ctx, &saved, false);
    if (rc == 0)
        rc = vrev__defer_init(&inst->defer, ctx, instance_free_deferred, inst);
    if (rc == 0)
        rc = vrev__instance_obs_init(ctx, &inst->obs, cfg);
    if (rc == 0) {
        struct vrev__plan plan;
        apply_policy(inst, cfg);
        rc = vrev__inst_build(inst, cfg, &plan, err, err_len); /* takes cfg */
    } else {
        vrev__config_free(cfg);
    }
    if (rc < 0) {
        if (err && err_len && !err[0])
            snprintf(err, err_len, "%s", vrev_strerror(rc));
        vrev_instance_free(inst);
        return rc;
    }
    *out = inst;
    return 0;
}

int vrev_instance_new_json(vrev_instance **out, vrev_ctx *ctx, const char *text, size_t len,
                           const char *filename, char *err, size_t err_len)
{
    vrev__err_begin(err, err_len);
    return vrev__err_end(instance_new_json(out, ctx, text, len, filename, err, err_len), err,
                         err_len);
}

int vrev_instance_start(vrev_instance *inst)
{
    if (!inst)
        return VREV_ERR_INVAL;
    if (inst->stopped)
        return VREV_ERR_STATE;
    if (!inst->started)
        for (size_t i = 0; i < inst->n_bridges; i++)
            vrev__bridge_start(inst->bridges[i]);
    inst->started = true;
    return 0;
}

int vrev_instance_stop(vrev_instance *inst)
{
    if (!inst)
        return VREV_ERR_INVAL;
    vrev_ctx *ctx = inst->ctx;
    for (size_t i = 0; i < inst->n_bridges; i++)
        vrev__bridge_free(inst->bridges[i]);
    inst->n_bridges = 0;
    vrev__engine_close_all(&inst->engine);
    for (size_t i = 0; i < inst->n_inbounds; i++) {
        vrev__inbound_free(inst->inbounds[i]);
        vrev__free(ctx, inst->inbound_tags[i]);
    }
    inst->n_inbounds = 0;
    vrev__retired_cleanup(&inst->retired_in);
    for (size_t i = 0; i < inst->n_retired_out; i++) /* their dials ended with close_all */
        inst->retired_out[i]->ops->destroy(inst->retired_out[i]);
    inst->n_retired_out = 0;
    vrev__engine_cleanup(&inst->engine); /* every connection, outbound and the resolver */
    vrev__config_free(inst->cfg);
    inst->cfg = NULL;
    inst->stopped = true;
    return 0;
}

void vrev_instance_free(vrev_instance *inst)
{
    if (!inst || vrev__defer_free(&inst->defer, inst->ctx))
        return;
    vrev_ctx *ctx = inst->ctx;
    vrev_instance_stop(inst);
    vrev__free(ctx, inst->bridges);
    vrev__free(ctx, inst->inbounds);
    vrev__free(ctx, inst->inbound_tags);
    vrev__instance_obs_cleanup(ctx, &inst->obs);
    vrev__free(ctx, inst->retired_out);
    vrev__defer_cleanup(&inst->defer);
    vrev__free(ctx, inst);
}

int vrev_instance_log_level(const vrev_instance *inst)
{
    return inst ? inst->log_level : VREV_LOG_WARN;
}

unsigned vrev_instance_inbound_port(const vrev_instance *inst, const char *tag)
{
    for (size_t i = 0; inst && tag && i < inst->n_inbounds; i++)
        if (inst->inbound_tags[i] && !strcmp(inst->inbound_tags[i], tag))
            return vrev__inbound_port(inst->inbounds[i]);
    return 0;
}

void vrev__instance_view(const vrev_instance *inst, struct vrev__instance_view *v)
{
    *v = (struct vrev__instance_view){.engine = &inst->engine,
                                      .inbounds = inst->inbounds,
                                      .n_inbounds = inst->n_inbounds,
                                      .bridges = inst->bridges,
                                      .n_bridges = inst->n_bridges,
                                      .obs = (struct vrev__instance_obs *)&inst->obs,
                                      .reloads_ok = inst->reloads_ok,
                                      .reloads_failed = inst->reloads_failed,
                                      .stopped = inst->stopped};
}
