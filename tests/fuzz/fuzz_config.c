/* F7: the JSON config loader (comment filter, limits, jansson, schema, positions).
 * Oracles: never crash or leak; a failure carries a VREV_ERR_CONFIG_* (or NOMEM) code and a
 * message; a success satisfies the invariants the engine relies on (no alterId > 0 or nil
 * UUID got through, tags unique, every rule has one target and a condition, ports ordered,
 * reverse domains valid, the outbound index space = outbounds + portals) and the router
 * compiles its rules. Warnings are enabled (to a sink) so that the position scanner runs. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static void sink(int level, const char *component, const char *msg, void *user)
{
    (void)level;
    (void)component;
    (void)user;
    if (!msg[0])
        abort();
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_uuid(const struct vrev__cfg_uuid *id)
{
    static const uint8_t zero[16];
    CHECK(memcmp(id->bytes, zero, 16) != 0);
    CHECK(strlen(id->text) == 36);
}

static void check_inbound(const struct vrev__cfg_inbound *in)
{
    CHECK(in->tag && in->listen);
    CHECK(in->port.from <= in->port.to);
    switch (in->protocol) {
    case VREV_CFG_IN_DOKODEMO:
        CHECK(in->settings.dokodemo.address || in->settings.dokodemo.follow_redirect);
        CHECK(in->settings.dokodemo.networks != 0);
        break;
    case VREV_CFG_IN_VMESS:
        CHECK(in->settings.vmess.n_clients > 0);
        for (size_t i = 0; i < in->settings.vmess.n_clients; i++)
            check_uuid(&in->settings.vmess.clients[i].id);
        break;
    case VREV_CFG_IN_VLESS:
        CHECK(in->settings.vless.n_clients > 0);
        for (size_t i = 0; i < in->settings.vless.n_clients; i++)
            check_uuid(&in->settings.vless.clients[i].id);
        break;
    case VREV_CFG_IN_SOCKS:
        CHECK(in->settings.socks.auth != VREV_CFG_SOCKS_PASSWORD ||
              in->settings.socks.n_accounts > 0);
        break;
    default:
        abort();
    }
}

static void check_outbound(const struct vrev__cfg_outbound *o)
{
    CHECK(o->tag);
    CHECK(o->protocol >= VREV_CFG_OUT_FREEDOM && o->protocol <= VREV_CFG_OUT_SOCKS);
    if (o->protocol == VREV_CFG_OUT_VMESS) {
        CHECK(o->settings.vmess.n_servers > 0);
        for (size_t i = 0; i < o->settings.vmess.n_servers; i++) {
            const struct vrev__cfg_server *s = &o->settings.vmess.servers[i];
            CHECK(s->address && s->port > 0 && s->n_users > 0);
            for (size_t k = 0; k < s->n_users; k++)
                check_uuid(&s->users[k].id);
        }
    }
    if (o->protocol == VREV_CFG_OUT_FREEDOM && o->settings.freedom.redirect)
        CHECK(o->settings.freedom.redirect_host != NULL);
}

static void check_rule(const struct vrev__rule_spec *r)
{
    CHECK(!r->outbound_tag != !r->balancer_tag);
    CHECK(r->domains.n || r->ips.n || r->ports || r->source_ports || r->networks || r->sources.n ||
          r->users.n || r->inbound_tags.n || r->protocols.n);
}

/* regexp: values, and dotless: values that 4.34 (and the router) turn into a regexp */
static bool has_regexp(const struct vrev__config *c)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    for (size_t i = 0; i < c->routing.n_rules; i++) {
        for (size_t k = 0; k < c->routing.rules[i].domains.n; k++) {
            const char *d = c->routing.rules[i].domains.v[k];
            if (!strncmp(d, "regexp:", 7) ||
                (!strncmp(d, "dotless:", 8) && strspn(d + 8, plain) != strlen(d + 8)))
                return true;
        }
    }
    return false;
}

/* What the loader accepted, the router compiles (regexps aside: the loader does not compile
 * them, so the router may still refuse one). */
static void check_router(vrev_ctx *ctx, const struct vrev__config *c)
{
    struct vrev__router *r;
    char msg[256];
    int rc = vrev__router_new(ctx, &r);
    for (size_t i = 0; rc == 0 && i < c->routing.n_balancers; i++)
        rc = vrev__router_add_balancer(r, c->routing.balancers[i].tag,
                                       &c->routing.balancers[i].selectors, msg, sizeof(msg));
    for (size_t i = 0; rc == 0 && i < c->routing.n_rules; i++)
        rc = vrev__router_add_rule(r, &c->routing.rules[i], msg, sizeof(msg));
    if (rc == 0)
        rc = vrev__router_finish(r, &c->outbound_tags, msg, sizeof(msg));
    vrev__router_free(r);
    CHECK(rc == 0 || rc == VREV_ERR_NOMEM || has_regexp(c));
}

static void check(const struct vrev__config *c)
{
    for (size_t i = 0; i < c->n_inbounds; i++) {
        check_inbound(&c->inbounds[i]);
        for (size_t k = 0; k < i; k++)
            CHECK(!c->inbounds[i].tag[0] || strcmp(c->inbounds[i].tag, c->inbounds[k].tag));
    }
    for (size_t i = 0; i < c->n_outbounds; i++)
        check_outbound(&c->outbounds[i]);
    CHECK(c->outbound_tags.n == c->n_outbounds + c->reverse.n_portals);
    for (size_t i = 0; i < c->outbound_tags.n; i++)
        for (size_t k = 0; k < i; k++)
            CHECK(!c->outbound_tags.v[i][0] ||
                  strcmp(c->outbound_tags.v[i], c->outbound_tags.v[k]) != 0);
    for (size_t i = 0; i < c->reverse.n_portals; i++) {
        size_t n = strlen(c->reverse.portals[i].domain);
        CHECK(c->reverse.portals[i].tag[0] && n >= 1 && n <= 255);
    }
    for (size_t i = 0; i < c->routing.n_rules; i++)
        check_rule(&c->routing.rules[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vrev_ctx *ctx;
    if (!ctx) {
        if (vrev_ctx_new(&ctx, NULL) < 0)
            abort();
        vrev_ctx_set_log(ctx, VREV_LOG_DEBUG, sink, NULL);
    }
    struct vrev__config *cfg = NULL;
    struct vrev__config_error err;
    int rc = vrev__config_load(ctx, (const char *)data, size, "fuzz.json", &cfg, &err);
    if (rc == 0) {
        CHECK(cfg != NULL);
        check(cfg);
        check_router(ctx, cfg);
        vrev__config_free(cfg);
        return 0;
    }
    CHECK(cfg == NULL && err.code == rc && err.message[0]);
    CHECK(rc == VREV_ERR_NOMEM || rc == VREV_ERR_CONFIG_SYNTAX || rc == VREV_ERR_CONFIG_INVALID ||
          rc == VREV_ERR_CONFIG_UNSUPPORTED || rc == VREV_ERR_CONFIG_LIMIT);
    CHECK(rc != VREV_ERR_CONFIG_SYNTAX || err.line >= 1);
    char buf[1024];
    CHECK(vrev__config_error_format(&err, buf, sizeof(buf)) > 0);
    return 0;
}
