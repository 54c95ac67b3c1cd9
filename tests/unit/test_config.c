/* lib/config: the V2Ray v4 JSON loader. Example configs (tests/vectors/configs) load into the
 * expected description; bad configs fail with the expected code, path, message and position;
 * the comment filter, key matching, limits, warnings and the allocation-failure sweep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "testutil.h"
#include "vrev.h"

/* ---- harness: one ctx whose log lines are collected ---- */

static char logbuf[16384];

static void collect(int level, const char *component, const char *msg, void *user)
{
    (void)level;
    (void)component;
    (void)user;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

static vrev_ctx *new_ctx(void)
{
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    vrev_ctx_set_log(ctx, VREV_LOG_DEBUG, collect, NULL);
    logbuf[0] = '\0';
    return ctx;
}

/* Load text (copied to an exactly-sized buffer, so over-reads trip ASan) as "t.json". */
static int load(vrev_ctx *ctx, const char *text, struct vrev__config **cfg,
                struct vrev__config_error *e)
{
    size_t len = strlen(text);
    char *copy = (char *)tu_dup(text, len);
    int rc = vrev__config_load(ctx, copy, len, "t.json", cfg, e);
    free(copy);
    return rc;
}

static struct vrev__config *load_ok(vrev_ctx *ctx, const char *text)
{
    struct vrev__config *cfg = NULL;
    struct vrev__config_error e;
    int rc = load(ctx, text, &cfg, &e);
    if (rc) {
        char msg[1024];
        vrev__config_error_format(&e, msg, sizeof(msg));
        fail_msg("load failed (%d): %s", rc, msg);
    }
    return cfg;
}

static struct vrev__config *load_file(vrev_ctx *ctx, const char *name)
{
    char rel[256];
    size_t len;
    snprintf(rel, sizeof(rel), "configs/%s", name);
    uint8_t *text = tu_load(rel, &len);
    struct vrev__config *cfg = NULL;
    struct vrev__config_error e;
    int rc = vrev__config_load(ctx, (const char *)text, len, name, &cfg, &e);
    free(text);
    if (rc) {
        char msg[1024];
        vrev__config_error_format(&e, msg, sizeof(msg));
        fail_msg("%s failed (%d): %s", name, rc, msg);
    }
    return cfg;
}

/* Expect a failure: code, and the formatted error (file:line:col: path: message) exactly. */
static void expect_error(const char *text, int code, const char *formatted)
{
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *cfg = (struct vrev__config *)1;
    struct vrev__config_error e;
    int rc = load(ctx, text, &cfg, &e);
    char msg[1024];
    vrev__config_error_format(&e, msg, sizeof(msg));
    if (rc != code || strcmp(msg, formatted) != 0)
        fail_msg("for %s\n  got  %d %s\n  want %d %s", text, rc, msg, code, formatted);
    assert_null(cfg);
    assert_int_equal(e.code, code);
    vrev_ctx_free(ctx);
}

static void assert_strlist(const struct vrev__strlist *l, size_t n, ...)
{
    va_list ap;
    assert_int_equal(l->n, n);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->v[i], va_arg(ap, const char *));
    va_end(ap);
}

/* ---- example configs ---- */

static void test_bridge(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "bridge.json");
    assert_int_equal(c->log.level, VREV_LOG_WARN);
    assert_int_equal(c->log.error_type, VREV_CFG_LOG_CONSOLE);
    assert_int_equal(c->log.access_type, VREV_CFG_LOG_CONSOLE); /* 4.34: "log" given */
    assert_int_equal(c->reverse.n_bridges, 1);
    assert_string_equal(c->reverse.bridges[0].tag, "bridge");
    assert_string_equal(c->reverse.bridges[0].domain, "test.v2fly.org");
    assert_int_equal(c->reverse.n_portals, 0);
    assert_int_equal(c->n_inbounds, 0);
    assert_int_equal(c->n_outbounds, 2);

    const struct vrev__cfg_outbound *o = &c->outbounds[0];
    assert_string_equal(o->tag, "out");
    assert_int_equal(o->protocol, VREV_CFG_OUT_FREEDOM);
    assert_true(o->settings.freedom.redirect);
    assert_string_equal(o->settings.freedom.redirect_host, "127.0.0.1");
    assert_int_equal(o->settings.freedom.redirect_port, 18000);
    assert_int_equal(o->settings.freedom.domain_strategy, VREV_CFG_DS_ASIS);
    assert_int_equal(o->stream.security, VREV_CFG_SECURITY_NONE);

    o = &c->outbounds[1];
    assert_string_equal(o->tag, "interconn");
    assert_int_equal(o->protocol, VREV_CFG_OUT_VMESS);
    assert_int_equal(o->settings.vmess.n_servers, 1);
    const struct vrev__cfg_server *s = &o->settings.vmess.servers[0];
    assert_string_equal(s->address, "127.0.0.1");
    assert_int_equal(s->port, 10240);
    assert_int_equal(s->n_users, 1);
    static const uint8_t id[16] = {0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38,
                                   0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b};
    assert_memory_equal(s->users[0].id.bytes, id, 16);
    assert_string_equal(s->users[0].id.text, "27848739-7e62-4138-9fd3-098a63964b6b");
    assert_int_equal(s->users[0].security, VREV_CFG_VMESS_AES_128_GCM);
    assert_string_equal(s->users[0].email, "");

    assert_int_equal(c->routing.n_rules, 2);
    const struct vrev__rule_spec *r = &c->routing.rules[0];
    assert_strlist(&r->inbound_tags, 1, "bridge");
    assert_strlist(&r->domains, 1, "full:test.v2fly.org");
    assert_string_equal(r->outbound_tag, "interconn");
    assert_null(r->balancer_tag);
    assert_null(r->ports);
    assert_int_equal(r->networks, 0);
    r = &c->routing.rules[1];
    assert_strlist(&r->inbound_tags, 1, "bridge");
    assert_int_equal(r->domains.n, 0);
    assert_string_equal(r->outbound_tag, "out");
    assert_strlist(&c->outbound_tags, 2, "out", "interconn");
    /* the documentation's example UUID is accepted with a warning */
    assert_non_null(strstr(logbuf, "bridge.json:11:28: outbounds[1].settings.vnext[0].users[0].id: "
                                   "this is the example UUID"));
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_portal(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "portal.json");
    assert_int_equal(c->log.access_type, VREV_CFG_LOG_NONE); /* no "log": 4.34 defaults */
    assert_int_equal(c->log.error_type, VREV_CFG_LOG_CONSOLE);
    assert_int_equal(c->log.level, VREV_LOG_WARN);
    assert_int_equal(c->reverse.n_portals, 1);
    assert_string_equal(c->reverse.portals[0].tag, "portal");
    assert_int_equal(c->n_inbounds, 2);
    const struct vrev__cfg_inbound *in = &c->inbounds[0];
    assert_string_equal(in->tag, "external");
    assert_int_equal(in->protocol, VREV_CFG_IN_DOKODEMO);
    assert_string_equal(in->listen, "127.0.0.1");
    assert_int_equal(in->port.from, 18080);
    assert_int_equal(in->port.to, 18080);
    assert_string_equal(in->settings.dokodemo.address, "127.0.0.1");
    assert_int_equal(in->settings.dokodemo.port, 18000);
    assert_int_equal(in->settings.dokodemo.networks, VREV_ROUTE_TCP);
    assert_false(in->settings.dokodemo.follow_redirect);
    in = &c->inbounds[1];
    assert_string_equal(in->tag, "interconn");
    assert_int_equal(in->protocol, VREV_CFG_IN_VMESS);
    assert_int_equal(in->port.from, 10240);
    assert_int_equal(in->settings.vmess.n_clients, 1);
    assert_string_equal(in->settings.vmess.clients[0].id.text,
                        "27848739-7e62-4138-9fd3-098a63964b6b");
    assert_int_equal(c->n_outbounds, 1);
    assert_int_equal(c->outbounds[0].protocol, VREV_CFG_OUT_BLACKHOLE);
    assert_int_equal(c->outbounds[0].settings.blackhole.response, VREV_CFG_BLACKHOLE_NONE);
    assert_strlist(&c->outbound_tags, 2, "block", "portal");
    assert_int_equal(c->routing.n_rules, 2);
    assert_string_equal(c->routing.rules[0].outbound_tag, "portal");
    assert_strlist(&c->routing.rules[1].inbound_tags, 1, "interconn");
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_seed_configs(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "seed-bridge.json");
    assert_int_equal(c->n_outbounds, 2);
    assert_string_equal(c->outbounds[0].settings.freedom.redirect_host, "127.0.0.1");
    assert_int_equal(c->outbounds[0].settings.freedom.redirect_port, 80);
    const struct vrev__cfg_server *s = &c->outbounds[1].settings.vmess.servers[0];
    assert_string_equal(s->address, "203.0.113.7");
    assert_int_equal(s->port, 1024);
    assert_int_equal(s->users[0].security, VREV_CFG_VMESS_AUTO); /* no "security" */
    assert_string_equal(c->outbounds[1].tag, "interconn");
    vrev__config_free(c);

    c = load_file(ctx, "seed-portal.json");
    assert_int_equal(c->n_inbounds, 2);
    assert_string_equal(c->inbounds[0].listen, "0.0.0.0");
    assert_int_equal(c->inbounds[0].port.from, 80);
    assert_int_equal(c->inbounds[1].port.from, 1024);
    assert_int_equal(c->n_outbounds, 0);
    assert_strlist(&c->outbound_tags, 1, "portal"); /* the portal is the default outbound */
    assert_null(strstr(logbuf, "no outbounds"));
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_vless_tls(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "portal-vless-tls.json");
    assert_int_equal(c->log.level, VREV_LOG_INFO);
    assert_int_equal(c->log.access_type, VREV_CFG_LOG_NONE);
    const struct vrev__cfg_inbound *in = &c->inbounds[0];
    assert_int_equal(in->settings.dokodemo.networks, VREV_ROUTE_TCP | VREV_ROUTE_UDP);
    in = &c->inbounds[1];
    assert_int_equal(in->protocol, VREV_CFG_IN_VLESS);
    assert_string_equal(in->listen, "::");
    assert_int_equal(in->port.from, 8443); /* given as a string */
    assert_int_equal(in->settings.vless.n_clients, 1);
    assert_string_equal(in->settings.vless.clients[0].email, "bridge@vrev.test");
    assert_string_equal(in->settings.vless.clients[0].flow, "");
    assert_int_equal(in->stream.security, VREV_CFG_SECURITY_TLS);
    assert_strlist(&in->stream.tls.alpn, 2, "h2", "http/1.1");
    assert_int_equal(in->stream.tls.n_certs, 1);
    assert_string_equal(in->stream.tls.certs[0].certificate_file,
                        "tests/vectors/configs/portal-test.crt");
    assert_string_equal(in->stream.tls.certs[0].key_file, "tests/vectors/configs/portal-test.key");
    assert_null(in->stream.tls.certs[0].certificate);
    assert_int_equal(in->stream.tls.certs[0].usage, VREV_CFG_CERT_ENCIPHERMENT);
    assert_int_equal(c->outbounds[0].settings.blackhole.response, VREV_CFG_BLACKHOLE_HTTP);
    assert_strlist(&c->routing.rules[0].inbound_tags, 2, "public", "tunnel");
    vrev__config_free(c);

    c = load_file(ctx, "bridge-vless-tls.json");
    const struct vrev__cfg_outbound *o = &c->outbounds[0];
    assert_int_equal(o->protocol, VREV_CFG_OUT_VLESS);
    const struct vrev__cfg_server *s = &o->settings.vless.servers[0];
    assert_string_equal(s->address, "portal.vrev.test");
    assert_int_equal(s->port, 8443);
    assert_string_equal(s->users[0].id.text, "b831381d-6324-4d53-ad4f-8cda48b30811");
    assert_int_equal(o->stream.security, VREV_CFG_SECURITY_TLS);
    assert_string_equal(o->stream.tls.server_name, "portal.vrev.test");
    assert_strlist(&o->stream.tls.alpn, 2, "h2", "http/1.1"); /* from "h2,http/1.1" */
    assert_int_equal(o->stream.tls.certs[0].usage, VREV_CFG_CERT_VERIFY);
    const char *pem = o->stream.tls.certs[0].certificate;
    assert_non_null(pem);
    assert_memory_equal(pem, "-----BEGIN CERTIFICATE-----\nMIIBsTCC", 36);
    assert_non_null(strstr(pem, "hSLegsk=\n-----END CERTIFICATE-----"));
    assert_int_equal(pem[strlen(pem) - 1], '-'); /* joined, no trailing newline (as 4.34) */
    assert_null(o->stream.tls.certs[0].key);
    o = &c->outbounds[1];
    assert_string_equal(o->settings.freedom.redirect_host, "127.0.0.1");
    assert_int_equal(o->settings.freedom.redirect_port, 0); /* keep the target's port */
    assert_strlist(&c->routing.rules[0].domains, 1, "full:tunnel.vrev.test");
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_vmess_tls(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "portal-vmess-tls.json");
    const struct vrev__cfg_inbound *in = &c->inbounds[0];
    assert_int_equal(in->port.from, 8000);
    assert_int_equal(in->port.to, 8003);
    assert_string_equal(in->settings.dokodemo.address, "10.0.0.2");
    in = &c->inbounds[1];
    const struct vrev__cfg_vmess_inbound *v = &in->settings.vmess;
    assert_int_equal(v->n_clients, 2);
    assert_string_equal(v->clients[0].id.text, "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d");
    assert_string_equal(v->clients[1].id.text, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    assert_int_equal(v->clients[1].level, 1);
    assert_string_equal(v->clients[1].email, "bridge-b");
    assert_true(v->disable_insecure_encryption);
    const struct vrev__cfg_cert *cert = &in->stream.tls.certs[0];
    assert_null(cert->certificate_file);
    assert_non_null(strstr(cert->key, "-----BEGIN PRIVATE KEY-----\nMIGHAgEA"));
    assert_int_equal(c->n_outbounds, 0);
    assert_strlist(&c->routing.rules[0].inbound_tags, 2, "web", "tunnel");
    vrev__config_free(c);

    c = load_file(ctx, "bridge-vmess-tls.json");
    const struct vrev__cfg_outbound *o = &c->outbounds[0];
    assert_int_equal(o->settings.freedom.domain_strategy, VREV_CFG_DS_USE_IPV4);
    assert_false(o->settings.freedom.redirect);
    o = &c->outbounds[1];
    assert_int_equal(o->stream.security, VREV_CFG_SECURITY_TLS); /* "TLS" */
    assert_true(o->stream.tls.disable_system_root);
    assert_int_equal(o->settings.vmess.servers[0].users[0].security,
                     VREV_CFG_VMESS_CHACHA20_POLY1305);
    assert_int_equal(o->mux_concurrency, 0);
    assert_string_equal(c->routing.rules[1].ports, "80,443,8000-8003");
    assert_int_equal(c->routing.domain_strategy, VREV_CFG_ROUTE_ASIS);
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_socks_pair(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "portal-socks.json");
    const struct vrev__cfg_socks_inbound *s = &c->inbounds[1].settings.socks;
    assert_int_equal(s->auth, VREV_CFG_SOCKS_PASSWORD);
    assert_int_equal(s->n_accounts, 1);
    assert_string_equal(s->accounts[0].user, "bridge");
    assert_string_equal(s->accounts[0].pass, "s3cret");
    assert_false(s->udp);
    assert_null(s->ip);
    assert_int_equal(c->outbounds[0].protocol, VREV_CFG_OUT_BLACKHOLE); /* no settings: {} */
    vrev__config_free(c);

    c = load_file(ctx, "bridge-socks.json");
    const struct vrev__cfg_freedom *f = &c->outbounds[0].settings.freedom;
    assert_true(f->redirect);
    assert_string_equal(f->redirect_host, ""); /* ":18000": only the port is replaced */
    assert_int_equal(f->redirect_port, 18000);
    const struct vrev__cfg_socks_server *srv = &c->outbounds[1].settings.socks.servers[0];
    assert_string_equal(srv->address, "127.0.0.1");
    assert_int_equal(srv->port, 10240);
    assert_int_equal(srv->n_users, 1);
    assert_string_equal(srv->users[0].pass, "s3cret");
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_full(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_file(ctx, "full.json");
    assert_int_equal(c->log.access_type, VREV_CFG_LOG_FILE);
    assert_string_equal(c->log.access_path, "/var/log/vrev/access.log");
    assert_int_equal(c->log.error_type, VREV_CFG_LOG_CONSOLE);
    assert_int_equal(c->log.level, VREV_LOG_DEBUG);

    assert_true(c->policy.present);
    assert_int_equal(c->policy.n_levels, 2);
    struct vrev__cfg_level_policy p;
    vrev__config_policy_for_level(c, 0, &p);
    assert_int_equal(p.handshake, 4);
    assert_int_equal(p.conn_idle, 120);
    assert_int_equal(p.uplink_only, 2);
    assert_int_equal(p.downlink_only, 5);
    assert_int_equal(p.buffer_size, 64 * 1024);
    assert_true(p.stats_user_uplink);
    assert_false(p.stats_user_downlink);
    vrev__config_policy_for_level(c, 1, &p);
    assert_int_equal(p.level, 1);
    assert_int_equal(p.handshake, 60);
    assert_int_equal(p.conn_idle, 300); /* listed: defaults + overrides, no 600 */
    assert_int_equal(p.buffer_size, -1);
    vrev__config_policy_for_level(c, 9, &p);
    assert_int_equal(p.conn_idle, 300);
    assert_true(c->policy.stats_inbound_uplink);
    assert_false(c->policy.stats_inbound_downlink);
    assert_true(c->policy.stats_outbound_downlink);

    const struct vrev__cfg_inbound *in = &c->inbounds[0];
    assert_int_equal(in->protocol, VREV_CFG_IN_SOCKS); /* "PROTOCOL": "Socks" */
    assert_int_equal(in->settings.socks.n_accounts, 2);
    assert_true(in->settings.socks.udp);
    assert_string_equal(in->settings.socks.ip, "127.0.0.1");
    assert_int_equal(in->settings.socks.user_level, 1);
    in = &c->inbounds[1];
    assert_null(in->settings.dokodemo.address);
    assert_true(in->settings.dokodemo.follow_redirect);
    assert_int_equal(in->settings.dokodemo.timeout, 30);
    assert_int_equal(in->stream.tproxy, VREV_CFG_TPROXY_TPROXY);
    assert_int_equal(in->stream.mark, 255);
    assert_int_equal(in->stream.tcp_fast_open, 1);
    assert_int_equal(c->inbounds[0].stream.tcp_fast_open, -1);

    const struct vrev__cfg_outbound *o = &c->outbounds[0];
    assert_int_equal(o->settings.freedom.domain_strategy, VREV_CFG_DS_USE_IP);
    assert_string_equal(o->settings.freedom.redirect_host, "::1");
    assert_int_equal(o->settings.freedom.redirect_port, 8080);
    assert_int_equal(o->settings.freedom.user_level, 1);
    o = &c->outbounds[1];
    assert_string_equal(o->send_through, "127.0.0.1");
    assert_int_equal(o->mux_concurrency, -1);
    assert_int_equal(o->settings.vmess.n_servers, 2);
    assert_int_equal(o->settings.vmess.servers[0].users[0].security, VREV_CFG_VMESS_NONE);
    assert_int_equal(o->settings.vmess.servers[0].users[0].level, 1);
    assert_string_equal(o->settings.vmess.servers[1].address, "2001:db8::1");
    assert_int_equal(o->settings.vmess.servers[1].port, 8443);
    o = &c->outbounds[2];
    assert_string_equal(o->settings.vless.servers[0].users[0].flow, "xtls-rprx-direct");
    assert_int_equal(o->stream.security, VREV_CFG_SECURITY_TLS);
    assert_int_equal(o->stream.tls.n_certs, 0);
    assert_strlist(&c->outbound_tags, 5, "direct", "proxy-1", "proxy-2", "blocked", "portal");

    assert_int_equal(c->routing.n_balancers, 1);
    assert_string_equal(c->routing.balancers[0].tag, "lb");
    assert_strlist(&c->routing.balancers[0].selectors, 1, "proxy-");
    assert_int_equal(c->routing.n_rules, 7);
    const struct vrev__rule_spec *r = c->routing.rules;
    assert_strlist(&r[0].domains, 2, "full:a.tunnel.test", "domain:b.tunnel.test");
    assert_strlist(&r[0].inbound_tags, 3, "bridge-a", "bridge-b", ""); /* the router drops "" */
    assert_strlist(&r[1].ips, 3, "10.0.0.0/8", "fd00::/8", "192.168.1.1");
    assert_string_equal(r[2].ports, "53");
    assert_int_equal(r[2].networks, VREV_ROUTE_UDP);
    assert_strlist(&r[3].sources, 2, "127.0.0.1/32", "::1");
    assert_string_equal(r[3].source_ports, "1024-65535");
    assert_strlist(&r[3].users, 1, "u1");
    assert_null(r[3].outbound_tag);
    assert_string_equal(r[3].balancer_tag, "lb");
    assert_strlist(&r[4].domains, 5, "dotless:", "dotless:intra", "regexp:^ads\\.", "keyword:track",
                   "example");
    assert_string_equal(r[5].ports, "80,443,8000-8080");
    assert_int_equal(r[5].networks, VREV_ROUTE_TCP);
    assert_strlist(&r[6].inbound_tags, 1, "socks-in"); /* from routing.settings.rules */
    assert_string_equal(r[6].outbound_tag, "proxy-1");

    assert_non_null(strstr(logbuf, "full.json:13:3: dns: \"dns\" is not supported"));
    assert_non_null(strstr(logbuf, "full.json:14:3: stats: \"stats\" is not supported"));
    assert_non_null(strstr(logbuf, "security \"none\": the payload is not encrypted"));
    assert_non_null(strstr(logbuf, "flow \"xtls-rprx-direct\" is ignored"));
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

/* ---- errors: code, position, path and message ---- */

static const struct {
    const char *json;
    int code;
    const char *formatted;
} bad[] = {
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\", \"alterId\": 64}]}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:131: inbounds[0].settings.clients[0].alterId: legacy VMess (alterId > 0) is not "
     "supported; use alterId 0 (VMess AEAD)"},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\"address\": \"a.b\", "
     "\"port\": 1, \"users\": [{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6c\", \"alterId\": "
     "1}]}]}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:159: outbounds[0].settings.vnext[0].users[0].alterId: legacy VMess (alterId > 0) is "
     "not supported; use alterId 0 (VMess AEAD)"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"mux\": {\"enabled\": true}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:59: outbounds[0].mux.enabled: mux on an outbound is not supported (a reverse tunnel "
     "is already multiplexed; never enable mux on it)"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": \"kcp\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:70: outbounds[0].streamSettings.network: transport \"kcp\" is not supported "
     "(libvrev speaks \"tcp\", \"ws\" and \"h2\"/\"http\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": "
     "\"QUIC\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:70: outbounds[0].streamSettings.network: transport \"quic\" is not supported "
     "(libvrev speaks \"tcp\", \"ws\" and \"h2\"/\"http\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": "
     "\"grpc\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:70: outbounds[0].streamSettings.network: transport \"grpc\" is not supported "
     "(libvrev speaks \"tcp\", \"ws\" and \"h2\"/\"http\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": "
     "\"domainsocket\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:70: outbounds[0].streamSettings.network: transport \"domainsocket\" is not "
     "supported (libvrev speaks \"tcp\", \"ws\" and \"h2\"/\"http\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": \"h2\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:70: outbounds[0].streamSettings.network: an h2 client needs TLS (\"security\": "
     "\"tls\"), as V2Ray's"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": \"ws\", "
     "\"wsSettings\": {\"headers\": {\"Host\": \"a\", \"upgrade\": \"h2c\"}}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:127: outbounds[0].streamSettings.wsSettings.headers.upgrade: the WebSocket "
     "handshake sets this header itself (V2Ray refuses it at every dial)"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": \"ws\", "
     "\"wsSettings\": {\"headers\": {\"Host\": 1}}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:111: outbounds[0].streamSettings.wsSettings.headers.Host: expected a string"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\"}]}, \"streamSettings\": {\"network\": \"ws\", "
     "\"wsSettings\": {\"acceptProxyProtocol\": 1}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:197: inbounds[0].streamSettings.wsSettings.acceptProxyProtocol: expected true or "
     "false"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": "
     "\"carrier-pigeon\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:70: outbounds[0].streamSettings.network: unknown transport \"carrier-pigeon\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"ip\": [\"geoip:cn\"], \"outboundTag\": \"a\"}]}}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:101: routing.rules[0].ip[0]: \"geoip:cn\" needs a geoip/geosite .dat file, which "
     "libvrev does not support"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"domain\": \"baidu.com,geosite:cn\", \"outboundTag\": \"a\"}]}}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:104: routing.rules[0].domain: \"geosite:cn\" needs a geoip/geosite .dat file, which "
     "libvrev does not support"},
    {"{\"inbounds\": [{\"protocol\": \"trojan\", \"port\": 1}]}", VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:28: inbounds[0].protocol: inbound protocol \"trojan\" is not supported"},
    {"{\"inbounds\": [{\"protocol\": \"foo\", \"port\": 1}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:28: inbounds[0].protocol: unknown inbound protocol \"foo\""},
    {"{\"outbounds\": [{\"protocol\": \"DNS\"}]}", VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:29: outbounds[0].protocol: outbound protocol \"dns\" is not supported"},
    {"{\"outbounds\": [{\"protocol\": \"shadowsocks\"}]}", VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:29: outbounds[0].protocol: outbound protocol \"shadowsocks\" is not supported"},
    {"{\"inbounds\": [{\"protocol\": \"http\", \"port\": 1}]}", VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:28: inbounds[0].protocol: inbound protocol \"http\" is not supported"},
    {"{\"inbounds\": [{\"protocol\": \"vless\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\"}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:60: inbounds[0].settings: VLESS needs \"decryption\": \"none\" (it has no "
     "encryption of its own; use TLS)"},
    {"{\"inbounds\": [{\"protocol\": \"vless\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\"}], \"decryption\": \"None\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:136: inbounds[0].settings.decryption: VLESS needs \"decryption\": \"none\" (it has "
     "no encryption of its own; use TLS)"},
    {"{\"inbounds\": [{\"protocol\": \"vless\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\", \"encryption\": \"none\"}], \"decryption\": "
     "\"none\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:134: inbounds[0].settings.clients[0].encryption: \"encryption\" belongs in outbound "
     "users; inbound settings take \"decryption\": \"none\""},
    {"{\"outbounds\": [{\"protocol\": \"vless\", \"settings\": {\"vnext\": [{\"address\": \"a.b\", "
     "\"port\": 1, \"users\": [{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6c\"}]}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:101: outbounds[0].settings.vnext[0].users[0]: VLESS users need \"encryption\": "
     "\"none\" (VLESS has no encryption of its own; use TLS)"},
    {"{\"outbounds\": [{\"protocol\": \"vless\", \"settings\": {\"vnext\": [{\"address\": \"a.b\", "
     "\"port\": 1, \"users\": [{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6c\", \"encryption\": "
     "\"auto\"}]}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:162: outbounds[0].settings.vnext[0].users[0].encryption: VLESS users need "
     "\"encryption\": \"none\" (VLESS has no encryption of its own; use TLS)"},
    {"{\"reverse\": {\"bridges\": [{\"tag\": \"\", \"domain\": \"x.y\"}]}}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:34: reverse.bridges[0].tag: must not be empty"},
    {"{\"reverse\": {\"bridges\": [{\"domain\": \"x.y\"}]}}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:26: reverse.bridges[0]: missing \"tag\""},
    {"{\"reverse\": {\"portals\": [{\"tag\": \"p\", \"domain\": \"a b\"}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:49: reverse.portals[0].domain: \"a b\" is not a valid domain (1..255 characters of "
     "letters, digits, '.', '-', '_')"},
    {"{\"reverse\": {\"portals\": [{\"tag\": \"p\"}]}}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:26: reverse.portals[0]: missing \"domain\""},
    {"{\"reverse\": {\"portals\": [{\"tag\": \"p\", \"domain\": \"a\"}, {\"tag\": \"p\", "
     "\"domain\": \"b\"}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:63: reverse.portals[1].tag: portal tag \"p\" is used twice"},
    {"{\"reverse\": {\"portals\": [{\"tag\": \"p\", \"domain\": \"a\"}]}, \"outbounds\": "
     "[{\"protocol\": \"freedom\", \"tag\": \"p\"}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:102: outbounds[0].tag: outbound tag \"p\" is also the tag of reverse.portals[0] "
     "(portals are outbounds too)"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"tag\": \"x\"}, {\"protocol\": "
     "\"socks\", \"port\": 2, \"tag\": \"x\"}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:101: inbounds[1].tag: inbound tag \"x\" is used twice"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"x\"}, {\"protocol\": \"blackhole\", "
     "\"tag\": \"x\"}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:86: outbounds[1].tag: outbound tag \"x\" is used twice"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"outboundTag\": \"a\", \"port\": 80}]}}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:76: routing.rules[0]: missing \"type\": \"field\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"chinaip\", \"outboundTag\": \"a\", \"port\": 80}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:85: routing.rules[0].type: unknown rule type \"chinaip\" (only \"field\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"port\": 80}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:76: routing.rules[0]: the rule needs an \"outboundTag\" or a \"balancerTag\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\"}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:76: routing.rules[0]: the rule has no condition (V2Ray: \"no effective fields\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"balancerTag\": \"b\", \"port\": 80}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:109: routing.rules[0].balancerTag: no balancer is tagged \"b\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"attrs\": \"attrs[':method'] == 'GET'\"}]}}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:123: routing.rules[0].attrs: \"attrs\" (HTTP attribute expressions) is not "
     "supported"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"port\": \"80-\"}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:122: routing.rules[0].port: invalid port or range \"80-\" (e.g. "
     "\"53,443,1000-2000\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"network\": \"foo\"}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:125: routing.rules[0].network: names neither tcp nor udp: the rule could never "
     "match"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"ip\": [\"1.2.3.4/33\"]}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:121: routing.rules[0].ip[0]: invalid IP or CIDR \"1.2.3.4/33\" (e.g. 10.0.0.0/8, "
     "fd00::/8, 1.2.3.4)"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"domain\": [\"x\", \"domain:\"]}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:130: routing.rules[0].domain[1]: \"domain:\" needs a value"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"domain\": [\"dotless:a.b\"]}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:125: routing.rules[0].domain[0]: dotless: \"a.b\" must not contain a dot"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"balancers\": "
     "[{\"tag\": \"b\", \"selector\": []}]}}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:80: routing.balancers[0]: a balancer needs a \"selector\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"balancers\": "
     "[{\"tag\": \"b\", \"selector\": \"a\"}, {\"tag\": \"b\", \"selector\": \"a\"}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:111: routing.balancers[1]: balancer tag \"b\" is used twice"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": \"abc\"}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:45: inbounds[0].port: invalid port \"abc\" (expected N, \"A-B\" or \"env:NAME\")"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 70000}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:45: inbounds[0].port: port 70000 is out of range (0..65535)"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": \"1010-1000\"}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:45: inbounds[0].port: invalid port range 1010-1000"},
    {"{\"inbounds\": [{\"protocol\": \"socks\"}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:15: inbounds[0]: missing \"port\""},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1.5}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:45: inbounds[0].port: expected a whole number"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": \"env:VREV_SURELY_UNSET_VAR\"}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:45: inbounds[0].port: environment variable VREV_SURELY_UNSET_VAR is not set"},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\"address\": \"a.b\", "
     "\"port\": true, \"users\": []}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:88: outbounds[0].settings.vnext[0].port: expected a number"},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\"address\": \"a.b\", "
     "\"port\": 0, \"users\": []}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:88: outbounds[0].settings.vnext[0].port: port 0 cannot be dialled"},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\"address\": \"a.b\", "
     "\"port\": 1, \"users\": []}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:100: outbounds[0].settings.vnext[0].users: no users: the server could not be "
     "authenticated to"},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": []}}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:60: outbounds[0].settings.vnext: no servers in \"vnext\""},
    {"{\"outbounds\": [{\"protocol\": \"vmess\"}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:16: outbounds[0].settings: no servers in \"vnext\""},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\"port\": 1, "
     "\"users\": [{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6c\"}]}]}}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:61: outbounds[0].settings.vnext[0]: missing \"address\""},
    {"{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\"address\": \"a b\", "
     "\"port\": 1, \"users\": [{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6c\"}]}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:73: outbounds[0].settings.vnext[0].address: invalid address \"a b\" (need an IP "
     "address or a domain of letters, digits, '.', '-', '_')"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6\"}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:80: inbounds[0].settings.clients[0].id: invalid UUID (expected 8-4-4-4-12 or 32 hex "
     "digits)"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"00000000-0000-0000-0000-000000000000\"}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:80: inbounds[0].settings.clients[0].id: the nil UUID is not a valid user id"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6cX\"}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:80: inbounds[0].settings.clients[0].id: invalid UUID (expected 8-4-4-4-12 or 32 hex "
     "digits)"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"278487397e62-4138-9fd3-098a63964b6c\"}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:80: inbounds[0].settings.clients[0].id: invalid UUID (expected 8-4-4-4-12 or 32 hex "
     "digits)"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{}]}}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:73: inbounds[0].settings.clients[0]: missing \"id\""},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": []}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:72: inbounds[0].settings.clients: no clients: nobody could connect"},
    {"{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\", \"level\": 256}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:129: inbounds[0].settings.clients[0].level: 256 is out of range (0..255)"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"settings\": {\"auth\": "
     "\"Password\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:69: inbounds[0].settings.auth: unknown auth \"Password\" (use \"noauth\" or "
     "\"password\"; V2Ray would silently use \"noauth\")"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"settings\": {\"auth\": "
     "\"password\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:69: inbounds[0].settings.auth: auth \"password\" needs at least one entry in "
     "\"accounts\""},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"streamSettings\": {\"security\": "
     "\"tls\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:66: inbounds[0].streamSettings: a TLS server needs a certificate and its key in "
     "tlsSettings.certificates (usage \"encipherment\")"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"streamSettings\": {\"security\": "
     "\"tls\", \"tlsSettings\": {\"certificates\": [{\"certificateFile\": \"a.crt\"}]}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:101: inbounds[0].streamSettings.tlsSettings: a TLS server needs a certificate and "
     "its key in tlsSettings.certificates (usage \"encipherment\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"security\": \"xtls\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:71: outbounds[0].streamSettings.security: security \"xtls\" is not supported (use "
     "\"tls\", \"none\" or a registered transport)"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"tcpSettings\": "
     "{\"header\": {\"type\": \"http\"}}}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:85: outbounds[0].streamSettings.tcpSettings.header: TCP header type \"http\" is not "
     "supported (only \"none\")"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"proxySettings\": {\"tag\": \"x\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:57: outbounds[0].proxySettings: proxySettings (chaining outbounds) is not "
     "supported"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"listen\": \"/run/v.sock\"}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:47: inbounds[0].listen: listening on a unix socket is not supported"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"listen\": \"example.com\"}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:58: inbounds[0].listen: cannot listen on \"example.com\": need an IP address"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"settings\": {\"redirect\": \"bad\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:65: outbounds[0].settings.redirect: invalid redirect \"bad\": missing \":port\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"settings\": {\"redirect\": \"::1:80\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:65: outbounds[0].settings.redirect: invalid redirect \"::1:80\": put an IPv6 "
     "address in brackets"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"settings\": {\"redirect\": \"a:99999\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:65: outbounds[0].settings.redirect: invalid redirect \"a:99999\": the port must be "
     "0..65535"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"settings\": {\"redirect\": \"a b:80\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:65: outbounds[0].settings.redirect: invalid redirect \"a b:80\": the host is "
     "neither an IP address nor a domain"},
    {"{\"inbounds\": [{\"protocol\": \"dokodemo-door\", \"port\": 1}]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:15: inbounds[0].settings: missing \"address\" (the target; required unless "
     "followRedirect is true)"},
    {"{\"inbounds\": [{\"protocol\": \"dokodemo-door\", \"port\": 1, \"settings\": {\"address\": "
     "\"1.2.3.4\", \"network\": \"icmp\"}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:102: inbounds[0].settings.network: names neither tcp nor udp"},
    {"[1]", VREV_ERR_CONFIG_SYNTAX, "t.json:1:1: the config must be a JSON object"},
    {"{", VREV_ERR_CONFIG_SYNTAX,
     "t.json:1:2: invalid JSON: string or '}' expected near end of file"},
    {"{\"a\": 1,}", VREV_ERR_CONFIG_SYNTAX,
     "t.json:1:8: invalid JSON: trailing comma before '}' (JSON does not allow it)"},
    {"{\"a\": [1, 2 , ] }", VREV_ERR_CONFIG_SYNTAX,
     "t.json:1:13: invalid JSON: trailing comma before ']' (JSON does not allow it)"},
    {"{\"log\": \"x\"}", VREV_ERR_CONFIG_INVALID, "t.json:1:9: log: expected an object"},
    {"{\"policy\": {\"levels\": {\"abc\": {}}}}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:31: policy.levels.abc: a level must be a number (0..4294967295)"},
    {"{\"policy\": {\"levels\": {\"0\": {\"handshake\": -1}}}}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:43: policy.levels.0.handshake: -1 is out of range (0..4294967295)"},
    {"{\"outbounds\": [{\"protocol\": \"blackhole\", \"settings\": {\"response\": {\"type\": "
     "\"foo\"}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:76: outbounds[0].settings.response.type: unknown response type \"foo\" (use "
     "\"none\" or \"http\")"},
    {"{\"outbounds\": [{\"protocol\": \"blackhole\", \"settings\": {\"response\": {}}}]}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:67: outbounds[0].settings.response: missing \"type\""},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"allocate\": {\"strategy\": "
     "\"random\"}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:73: inbounds[0].allocate.strategy: port allocation strategy \"random\" is not "
     "supported (only \"always\")"},
    {"{\"inbounds\": [{\"protocol\": \"vless\", \"port\": 1, \"settings\": {\"clients\": [{\"id\": "
     "\"27848739-7e62-4138-9fd3-098a63964b6c\"}], \"decryption\": \"none\", \"fallback\": {}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:156: inbounds[0].settings.fallback: use \"fallbacks\": [{...}] instead of "
     "\"fallback\": {...}"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"streamSettings\": {\"security\": "
     "\"tls\", \"tlsSettings\": {\"certificates\": [{\"certificateFile\": \"a\", \"keyFile\": "
     "\"b\", \"usage\": \"issue\"}]}}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:169: inbounds[0].streamSettings.tlsSettings.certificates[0].usage: certificate "
     "usage \"issue\" (signing certificates on the fly) is not supported"},
    {"{\"inbounds\": [{\"protocol\": \"socks\", \"port\": 1, \"streamSettings\": {\"security\": "
     "\"tls\", \"tlsSettings\": {\"certificates\": [{\"keyFile\": \"b\"}]}}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:119: inbounds[0].streamSettings.tlsSettings.certificates[0]: needs "
     "\"certificateFile\" or \"certificate\""},
    {"{\"inbounds\": [{\"protocol\": \"vless\"}], \"port\": 5}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:15: inbounds[0].settings: no clients: nobody could connect"},
    {"{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6c\" \"x\": 1}", VREV_ERR_CONFIG_SYNTAX,
     "t.json:1:47: invalid JSON: '}' expected"},
    {"{\"id\" \"27848739-7e62-4138-9fd3-098a63964b6c\"}", VREV_ERR_CONFIG_SYNTAX,
     "t.json:1:7: invalid JSON: ':' expected"},
    {"{\"inbounds\": {}}", VREV_ERR_CONFIG_INVALID, "t.json:1:14: inbounds: expected an array"},
    {"{\"inbounds\": [1]}", VREV_ERR_CONFIG_INVALID,
     "t.json:1:15: inbounds[0]: expected an object"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"sendThrough\": \"example.com\"}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:55: outbounds[0].sendThrough: sendThrough must be a local IP address, not "
     "\"example.com\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"sockopt\": "
     "{\"acceptProxyProtocol\": true}}}]}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:94: outbounds[0].streamSettings.sockopt.acceptProxyProtocol: a PROXY header is "
     "read by a listener (an inbound) only"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"ip\": \"ext:x.dat:y\"}]}}",
     VREV_ERR_CONFIG_UNSUPPORTED,
     "t.json:1:120: routing.rules[0].ip: \"ext:x.dat:y\" needs a geoip/geosite .dat file, which "
     "libvrev does not support"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"port\": true}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:122: routing.rules[0].port: expected a port number or a string like "
     "\"53,443,1000-2000\""},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"rules\": "
     "[{\"type\": \"field\", \"outboundTag\": \"a\", \"inboundTag\": [1]}]}}",
     VREV_ERR_CONFIG_INVALID, "t.json:1:129: routing.rules[0].inboundTag[0]: expected a string"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"mux\": {\"concurrency\": 40000}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:63: outbounds[0].mux.concurrency: 40000 is out of range (-32768..32767)"},
    {"{\"Outbounds\": [{\"Protocol\": \"vmess\", \"Settings\": {\"Vnext\": [{\"Address\": \"a.b\", "
     "\"Port\": \"x\"}]}}]}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:88: Outbounds[0].Settings.Vnext[0].Port: invalid port \"x\" (expected 0..65535)"},
    {"{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": {\"balancers\": "
     "[{\"tag\": \"b\", \"selector\": [\"x\", \"y\"]}]}}",
     VREV_ERR_CONFIG_INVALID,
     "t.json:1:105: routing.balancers[0].selector: no outbound tag starts with any of these "
     "selectors"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i].json, bad[i].code, bad[i].formatted);
}

/* The example of the brief: comments of all three kinds before the bad value keep the
 * line and column exact. */
static void test_error_position_multiline(void **state)
{
    (void)state;
    expect_error(
        "// a bridge with a bad port\n"
        "{\n"
        "  \"reverse\": {\n"
        "    \"bridges\": [{\"tag\": \"bridge\", \"domain\": \"test.v2fly.org\"}]\n"
        "  },\n"
        "  /* outbounds:\n"
        "     out, then interconn */\n"
        "  \"outbounds\": [\n"
        "    {\"tag\": \"out\", \"protocol\": \"freedom\"},\n"
        "    {\"tag\": \"interconn\", \"protocol\": \"vmess\", \"settings\": {\"vnext\": [{\n"
        "      \"address\": \"127.0.0.1\",  # the portal\n"
        "      \"port\":   true,\n"
        "      \"users\": [{\"id\": \"9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d\"}]}]}}\n"
        "  ]\n"
        "}\n",
        VREV_ERR_CONFIG_INVALID,
        "t.json:12:17: outbounds[1].settings.vnext[0].port: expected a number");
    /* columns count characters, not bytes; a tab is one */
    expect_error("{\"log\": {\"loglevel\": \"\xc3\xa9\xc3\xa9\"}, \"inbounds\":\t7}",
                 VREV_ERR_CONFIG_INVALID, "t.json:1:41: inbounds: expected an array");
    /* keys written with escapes are found by their decoded names */
    expect_error("{\"\\u006fut\\u0062ounds\": [{\"pro\\u0074ocol\": \"freedom\", \"mux\": "
                 "{\"enabled\": 1}}]}",
                 VREV_ERR_CONFIG_INVALID,
                 "t.json:1:74: outbounds[0].mux.enabled: expected true or false");
    /* a syntax error after a block comment spanning lines */
    expect_error("{\n/* one\n two */ \"a\": [1,\n 2,\n]}", VREV_ERR_CONFIG_SYNTAX,
                 "t.json:4:3: invalid JSON: trailing comma before ']' (JSON does not allow it)");
}

/* ---- the comment filter ---- */

static void strip_case(const char *in, const char *want)
{
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    assert_non_null(out);
    vrev__config_strip_comments(in, n, out);
    out[n] = '\0';
    if (strcmp(out, want) != 0)
        fail_msg("strip(%s)\n  got  [%s]\n  want [%s]", in, out, want);
    /* in place gives the same */
    memcpy(out, in, n + 1);
    vrev__config_strip_comments(out, n, out);
    assert_string_equal(out, want);
    free(out);
}

static void test_comment_filter(void **state)
{
    (void)state;
    strip_case("{\"a//b\": \"c#d\"}", "{\"a//b\": \"c#d\"}");
    strip_case("{\"x\\\"//\": 1}", "{\"x\\\"//\": 1}");
    strip_case("{\"a\": 1} // c", "{\"a\": 1}     ");
    strip_case("# c\nx", "   \nx");
    strip_case("/* multi\nline */x", "        \n       x");
    strip_case("a /* x */ b", "a         b");
    strip_case("'//' x", "'//' x");         /* single quotes are tracked, as in 4.34 */
    strip_case("'a\\'#' x", "'a\\'#' x");   /* ... with escapes */
    strip_case("\\#x", "\\#x");             /* a backslash outside strings protects */
    strip_case("/* a *\n/x", "      \n x"); /* 4.34: "*\n/" closes */
    strip_case("/*/ x */y", "        y");
    strip_case("/**/y", "    y");
    strip_case("/* a ** b */y", "            y");
    strip_case("1/2", "1/2");
    strip_case("x/", "x/");
    strip_case("/* never closed\n\n", "               \n\n");
    strip_case("// \xc3\xa9\r\nx", "      \nx"); /* bytes of a comment all become spaces */
}

static void test_comments_in_config(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_ok(
        ctx, "# leading\n{ // a\n \"outbounds\": [ /* x */ {\"protocol\": \"freedom\",\n"
             " \"tag\": \"a//b#c\", /* multi\n line */ \"settings\": {\"redirect\": \"h:1\"}}]"
             "} # trailing\n");
    assert_string_equal(c->outbounds[0].tag, "a//b#c");
    vrev__config_free(c);
    /* a comment inside a string with an escaped quote is no comment */
    c = load_ok(ctx, "{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"x\\\"//y\"}]}");
    assert_string_equal(c->outbounds[0].tag, "x\"//y");
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

/* ---- keys: case, duplicates, null, unknown ---- */

static void test_keys(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    /* any case, and Go's two non-ASCII folds (U+017F long s, U+212A Kelvin) */
    struct vrev__config *c = load_ok(
        ctx, "{\"OUTBOUNDS\": [{\"pRoToCoL\": \"FREEDOM\", \"TAG\": \"x\", "
             "\"\xc5\xbf"
             "ettings\": {\"Redirect\": \":1\"}}], \"inbounds\": [{\"protocol\": "
             "\"socks\", \"port\": 1, \"listen\": \"127.0.0.1\", \"streamSettings\": "
             "{\"security\": \"tls\", \"tlsSettings\": {\"certificates\": [{\"certificateFile\": "
             "\"c\", \"\xe2\x84\xaa"
             "eyFile\": \"k\"}]}}}]}");
    assert_int_equal(c->outbounds[0].protocol, VREV_CFG_OUT_FREEDOM);
    assert_string_equal(c->outbounds[0].tag, "x");
    assert_int_equal(c->outbounds[0].settings.freedom.redirect_port, 1);
    assert_string_equal(c->inbounds[0].stream.tls.certs[0].key_file, "k");
    vrev__config_free(c);

    /* duplicates: the last wins, with a warning for case variants */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\", \"Tag\": \"b\"},"
                     " {\"protocol\": \"freedom\", \"tag\": \"c\", \"tag\": \"d\"}]}");
    assert_string_equal(c->outbounds[0].tag, "b");
    assert_string_equal(c->outbounds[1].tag, "d");
    assert_non_null(strstr(logbuf, "t.json:1:40: outbounds[0].tag: \"tag\" is also set as \"Tag\"; "
                                   "the last one wins"));
    vrev__config_free(c);

    /* null is absent (Go leaves the field alone) */
    c = load_ok(ctx, "{\"log\": null, \"routing\": null, \"outbounds\": [{\"protocol\": "
                     "\"freedom\", \"tag\": null, \"settings\": null, \"mux\": null}]}");
    assert_string_equal(c->outbounds[0].tag, "");
    assert_int_equal(c->log.access_type, VREV_CFG_LOG_NONE);
    assert_int_equal(c->routing.n_rules, 0);
    vrev__config_free(c);

    /* unknown keys: a warning at the key, loading goes on */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"outbounds\": [{\"protocol\": \"freedom\", \"foo\": 1}],\n \"bar\": {}}");
    assert_non_null(strstr(logbuf, "t.json:1:40: outbounds[0].foo: unknown key \"foo\" ignored"));
    assert_non_null(strstr(logbuf, "t.json:2:2: bar: unknown key \"bar\" ignored"));
    vrev__config_free(c);

    /* keys with control characters do not break the log line */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"a\\nb\": 1}");
    assert_non_null(strstr(logbuf, "a\\x0ab: unknown key \"a\\x0ab\" ignored"));
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

static void test_warnings(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    /* bounded: a hostile file cannot make the loader rescan the text without end */
    char text[8192] = "{";
    for (int i = 0; i < 100; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s\"k%d\": %d", i ? ", " : "",
                 i, i);
    strcat(text, "}");
    struct vrev__config *c = load_ok(ctx, text);
    size_t lines = 0;
    for (const char *p = logbuf; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 65);
    assert_non_null(strstr(logbuf, "t.json: further warnings suppressed"));
    vrev__config_free(c);

    /* 4.34 decodes the first value only */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"log\": {}} xyz");
    assert_non_null(strstr(logbuf, "t.json:1:13: text after the JSON object is ignored"));
    vrev__config_free(c);

    /* deprecated and ignored sections; risky settings */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"api\": {}, \"transport\": {}, \"inbounds\": [{\"protocol\": \"socks\", "
                     "\"port\": 1080, \"sniffing\": {\"enabled\": true}}], \"outbounds\": "
                     "[{\"protocol\": \"freedom\", \"streamSettings\": {\"security\": \"tls\", "
                     "\"tlsSettings\": {\"allowInsecure\": true}, \"wsSettings\": {}}}]}");
    assert_non_null(strstr(logbuf, "api: \"api\" is not supported by libvrev and is ignored"));
    assert_non_null(strstr(logbuf, "transport: \"transport\" is not supported"));
    assert_non_null(strstr(logbuf, "inbounds[0].sniffing: ignored: sniffing is not supported"));
    assert_non_null(strstr(logbuf, "inbounds[0].settings: SOCKS without authentication on "
                                   "0.0.0.0: anyone"));
    assert_non_null(strstr(logbuf, "allowInsecure: the peer's certificate is NOT verified"));
    assert_non_null(strstr(logbuf, "streamSettings.wsSettings: ignored: the network is tcp"));
    vrev__config_free(c);

    /* routing cross-checks */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": "
                     "{\"domainStrategy\": \"IPIfNonMatch\", \"rules\": [{\"type\": \"field\", "
                     "\"inboundTag\": \"nobody\", \"outboundTag\": \"nowhere\"}, {\"type\": "
                     "\"field\", \"network\": \"tcp, udp\", \"protocol\": [\"http\"], "
                     "\"outboundTag\": \"a\"}]}}");
    assert_non_null(strstr(logbuf, "routing.domainStrategy: libvrev never resolves domains"));
    assert_non_null(strstr(logbuf, "routing.rules[0].inboundTag: no inbound or bridge is tagged "
                                   "\"nobody\""));
    assert_non_null(strstr(logbuf, "routing.rules[0].outboundTag: no outbound or portal is tagged "
                                   "\"nowhere\""));
    assert_non_null(strstr(logbuf, "routing.rules[1].network: network \" udp\" ignored"));
    assert_non_null(strstr(logbuf, "routing.rules[1].protocol: \"protocol\" needs sniffing"));
    assert_int_equal(c->routing.rules[1].networks, VREV_ROUTE_TCP); /* as 4.34: udp lost */
    assert_int_equal(c->routing.domain_strategy, VREV_CFG_ROUTE_IP_IF_NON_MATCH);
    vrev__config_free(c);

    /* conditions that 4.34 keeps but that can never match: kept, with a warning */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\"}], \"routing\": "
                     "{\"rules\": [{\"type\": \"field\", \"inboundTag\": \"\", \"outboundTag\": "
                     "\"a\"}, {\"type\": \"field\", \"port\": 0, \"outboundTag\": \"a\"}, "
                     "{\"type\": \"field\", \"port\": \" , \", \"outboundTag\": \"a\"}]}}");
    assert_strlist(&c->routing.rules[0].inbound_tags, 1, "");
    assert_string_equal(c->routing.rules[1].ports, "");
    assert_string_equal(c->routing.rules[2].ports, "");
    assert_non_null(strstr(logbuf, "routing.rules[0].inboundTag: only empty strings: this "
                                   "condition never matches"));
    assert_non_null(strstr(logbuf, "routing.rules[1].port: a bare 0 names no port"));
    assert_non_null(strstr(logbuf, "routing.rules[2].port: names no port"));
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

/* streamSettings.network ws / h2 with their settings, as V2Ray 4.34 reads them. */
static void test_carriers(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c =
        load_ok(ctx, "{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": "
                     "{\"network\": \"websocket\", \"security\": \"tls\", \"wsSettings\": "
                     "{\"Path\": \"p?ed=2048\", \"headers\": {\"host\": \"cdn.example\", "
                     "\"X-A\": \"1\"}, \"maxEarlyData\": 2048, \"useBrowserForwarding\": "
                     "true},\n\"httpSettings\": {\"host\": \"a\"}}}]}");
    const struct vrev__carrier_opts *k = &c->outbounds[0].stream.carrier;
    assert_int_equal(k->kind, VREV_CARRIER_WS);
    assert_string_equal(k->path, "/p?ed=2048"); /* normalized as V2Ray: a leading '/' */
    assert_int_equal(k->n_hosts, 1);
    assert_string_equal(k->hosts[0], "cdn.example");
    assert_int_equal(k->n_headers, 1);
    assert_string_equal(k->header_names[0], "X-A");
    assert_string_equal(k->header_values[0], "1");
    /* V2Ray's ws client offers http/1.1 when no alpn is given */
    assert_strlist(&c->outbounds[0].stream.tls.alpn, 1, "http/1.1");
    assert_non_null(strstr(logbuf, "t.json:1:186: outbounds[0].streamSettings.wsSettings."
                                   "maxEarlyData: ignored: a later V2Ray version's setting"));
    assert_non_null(strstr(logbuf, "wsSettings.useBrowserForwarding: ignored: a later V2Ray"));
    assert_non_null(strstr(logbuf, "t.json:2:1: outbounds[0].streamSettings.httpSettings: "
                                   "ignored: the network is ws"));
    vrev__config_free(c);

    /* h2 ("http"): hosts as a StringList, ALPN h2 offered first by the client, added by the
     * server; ws without TLS; no settings: path "/" (NULL) */
    logbuf[0] = '\0';
    c = load_ok(ctx,
                "{\"inbounds\": [{\"protocol\": \"vless\", \"port\": 1, \"settings\": "
                "{\"decryption\": \"none\", \"clients\": [{\"id\": "
                "\"27848739-7e62-4138-9fd3-098a63964b6c\"}]}, \"streamSettings\": {\"network\": "
                "\"h2\", \"security\": \"tls\", \"tlsSettings\": {\"alpn\": [\"http/1.1\"], "
                "\"certificates\": [{\"certificate\": [\"x\"], \"key\": [\"y\"]}]}, "
                "\"httpSettings\": {\"host\": [\"a.example\", \"b.example\"], \"path\": \"/h\", "
                "\"method\": \"PUT\"}, \"tcpSettings\": {\"header\": {\"type\": \"http\"}}}}], "
                "\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"network\": "
                "\"HTTP\", \"security\": \"tls\", \"tlsSettings\": {\"alpn\": \"http/1.1\"}, "
                "\"httpSettings\": {\"host\": \"a.example,b.example\"}}}, {\"protocol\": "
                "\"freedom\", \"streamSettings\": {\"network\": \"ws\", \"wsSettings\": "
                "{\"headers\": {\"X\": \"y\"}}}}, {\"protocol\": \"freedom\", \"streamSettings\": "
                "{\"network\": \"ws\"}}]}");
    k = &c->inbounds[0].stream.carrier;
    assert_int_equal(k->kind, VREV_CARRIER_H2);
    assert_string_equal(k->path, "/h");
    assert_int_equal(k->n_hosts, 2);
    assert_string_equal(k->hosts[1], "b.example");
    assert_strlist(&c->inbounds[0].stream.tls.alpn, 2, "http/1.1", "h2");
    assert_non_null(strstr(logbuf, "inbounds[0].streamSettings.httpSettings.method: ignored: a "
                                   "later V2Ray version's setting"));
    assert_non_null(strstr(logbuf, "inbounds[0].streamSettings.tcpSettings: ignored: the "
                                   "network is h2"));
    k = &c->outbounds[0].stream.carrier;
    assert_int_equal(k->kind, VREV_CARRIER_H2);
    assert_null(k->path);
    assert_int_equal(k->n_hosts, 2);
    assert_string_equal(k->hosts[0], "a.example");
    assert_strlist(&c->outbounds[0].stream.tls.alpn, 2, "h2", "http/1.1");
    k = &c->outbounds[1].stream.carrier;
    assert_int_equal(k->kind, VREV_CARRIER_WS);
    assert_int_equal(k->n_hosts, 0);
    assert_int_equal(k->n_headers, 1);
    assert_int_equal(c->outbounds[1].stream.tls.alpn.n, 0);
    k = &c->outbounds[2].stream.carrier;
    assert_int_equal(k->kind, VREV_CARRIER_WS);
    assert_null(k->path);
    assert_int_equal(k->n_headers, 0);
    assert_int_equal(c->outbounds[2].stream.carrier.kind, VREV_CARRIER_WS);
    vrev__config_free(c);

    /* a server's ws headers are ignored; tcp keeps carrier tcp */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"inbounds\": [{\"protocol\": \"socks\", \"listen\": \"127.0.0.1\", "
                     "\"port\": 1, \"streamSettings\": {\"network\": \"ws\", \"wsSettings\": "
                     "{\"path\": \"/w\", \"headers\": {\"Host\": \"h\"}}}}], \"outbounds\": "
                     "[{\"protocol\": \"freedom\"}]}");
    assert_int_equal(c->inbounds[0].stream.carrier.kind, VREV_CARRIER_WS);
    assert_string_equal(c->inbounds[0].stream.carrier.path, "/w");
    assert_int_equal(c->inbounds[0].stream.carrier.n_hosts, 0);
    assert_non_null(strstr(logbuf, "wsSettings.headers: ignored: a server does not send"));
    assert_int_equal(c->outbounds[0].stream.carrier.kind, VREV_CARRIER_TCP);
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

/* Every rule the loader accepts from the example configs, the router compiles. */
static void router_accepts(const struct vrev__config *c, const char *name)
{
    struct vrev__router *r;
    char msg[256] = "";
    assert_int_equal(vrev__router_new(c->ctx, &r), 0);
    for (size_t i = 0; i < c->routing.n_balancers; i++)
        if (vrev__router_add_balancer(r, c->routing.balancers[i].tag,
                                      &c->routing.balancers[i].selectors, msg, sizeof(msg)) < 0)
            fail_msg("%s: balancer %zu: %s", name, i, msg);
    for (size_t i = 0; i < c->routing.n_rules; i++)
        if (vrev__router_add_rule(r, &c->routing.rules[i], msg, sizeof(msg)) < 0)
            fail_msg("%s: rule %zu: %s", name, i, msg);
    if (vrev__router_finish(r, &c->outbound_tags, msg, sizeof(msg)) < 0)
        fail_msg("%s: finish: %s", name, msg);
    vrev__router_free(r);
}

static void test_router_accepts(void **state)
{
    (void)state;
    static const char *const names[] = {"bridge.json",
                                        "portal.json",
                                        "seed-bridge.json",
                                        "seed-portal.json",
                                        "bridge-vless-tls.json",
                                        "portal-vless-tls.json",
                                        "bridge-vmess-tls.json",
                                        "portal-vmess-tls.json",
                                        "bridge-socks.json",
                                        "portal-socks.json",
                                        "full.json"};
    vrev_ctx *ctx = new_ctx();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct vrev__config *c = load_file(ctx, names[i]);
        router_accepts(c, names[i]);
        vrev__config_free(c);
    }
    vrev_ctx_free(ctx);
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    (void)state;
    char text[256];
    /* depth 65 (an object and 64 arrays) is refused at the 65th bracket */
    snprintf(text, sizeof(text), "{\"x\": %.64s%.64s}",
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_error(text, VREV_ERR_CONFIG_LIMIT, "t.json:1:70: JSON nested deeper than 64 levels");
    /* depth 64 loads; brackets in strings and comments do not count */
    snprintf(text, sizeof(text), "{\"x\": %.63s%.63s, \"y\": \"[[[[\" /* [[[[ */}",
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    vrev_ctx *ctx = new_ctx();
    vrev__config_free(load_ok(ctx, text));

    /* size: exactly 1 MiB loads, one byte more does not */
    size_t max = VREV_CONFIG_MAX_SIZE;
    char *big = malloc(max + 1);
    assert_non_null(big);
    memset(big, ' ', max + 1);
    memcpy(big, "{}", 2);
    struct vrev__config *c;
    struct vrev__config_error e;
    assert_int_equal(vrev__config_load(ctx, big, max, "big.json", &c, &e), 0);
    vrev__config_free(c);
    assert_int_equal(vrev__config_load(ctx, big, max + 1, "big.json", &c, &e),
                     VREV_ERR_CONFIG_LIMIT);
    assert_null(c);
    char msg[512];
    vrev__config_error_format(&e, msg, sizeof(msg));
    assert_string_equal(msg, "big.json: the config is 1048577 bytes; the limit is 1 MiB "
                             "(1048576 bytes)");
    free(big);
    vrev_ctx_free(ctx);
}

/* ---- policy defaults (4.34 source, not the documentation: see config.h) ---- */

static void test_policy_defaults(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_ok(ctx, "{}");
    struct vrev__cfg_level_policy p;
    vrev__config_policy_for_level(c, 0, &p);
    assert_int_equal(p.handshake, 60);
    assert_int_equal(p.conn_idle, 300);
    assert_int_equal(p.uplink_only, 1);
    assert_int_equal(p.downlink_only, 1);
    assert_int_equal(p.buffer_size, 512 * 1024);
    vrev__config_policy_for_level(c, 1, &p);
    assert_int_equal(p.conn_idle, 600); /* DefaultManager, no "policy" object */
    vrev__config_free(c);
    vrev__config_policy_for_level(NULL, 1, &p);
    assert_int_equal(p.conn_idle, 600);

    c = load_ok(ctx, "{\"policy\": {\"levels\": {\"0\": {\"connIdle\": 30}, \"5\": null}}}");
    assert_int_equal(c->policy.n_levels, 1);
    vrev__config_policy_for_level(c, 0, &p);
    assert_int_equal(p.conn_idle, 30);
    assert_int_equal(p.handshake, 60);
    vrev__config_policy_for_level(c, 1, &p);
    assert_int_equal(p.conn_idle, 300); /* a policy object exists: plain defaults */
    vrev__config_free(c);
    vrev_ctx_free(ctx);
}

/* ---- deprecated top-level forms, env ports, misc ---- */

static void test_legacy_sections(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_ok(
        ctx, "{\"port\": 1080, \"inbound\": {\"protocol\": \"socks\", \"listen\": \"127.0.0.1\"},"
             " \"inboundDetour\": [{\"protocol\": \"socks\", \"port\": 1081, \"listen\": "
             "\"localhost\"}], \"outboundDetour\": [{\"protocol\": \"freedom\", \"tag\": \"d\"}],"
             " \"outbound\": {\"protocol\": \"blackhole\", \"tag\": \"b\"}}");
    assert_int_equal(c->n_inbounds, 2);
    assert_int_equal(c->inbounds[0].port.from, 1080); /* the top-level "port" */
    assert_int_equal(c->inbounds[1].port.from, 1081);
    assert_string_equal(c->inbounds[1].listen, "localhost");
    assert_strlist(&c->outbound_tags, 2, "b", "d"); /* "outbound" first, as in 4.34 */
    assert_non_null(strstr(logbuf, "inbound: \"inbound\" is deprecated; use \"inbounds\""));
    vrev__config_free(c);
    expect_error("{\"inboundDetour\": [{\"protocol\": \"socks\", \"port\": 1}, {\"protocol\": 1}]}",
                 VREV_ERR_CONFIG_INVALID,
                 "t.json:1:67: inboundDetour[1].protocol: expected a "
                 "string");
    vrev_ctx_free(ctx);
}

static void test_env_port(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    setenv("VREV_TEST_CONFIG_PORT", "2000-2002", 1);
    struct vrev__config *c = load_ok(ctx, "{\"inbounds\": [{\"protocol\": \"socks\", \"listen\": "
                                          "\"::1\", \"port\": \"env:VREV_TEST_CONFIG_PORT\"}]}");
    assert_int_equal(c->inbounds[0].port.from, 2000);
    assert_int_equal(c->inbounds[0].port.to, 2002);
    vrev__config_free(c);
    setenv("VREV_TEST_CONFIG_PORT", "x", 1);
    expect_error(
        "{\"inbounds\": [{\"protocol\": \"socks\", \"port\": \"env:VREV_TEST_CONFIG_PORT\"}]}",
        VREV_ERR_CONFIG_INVALID,
        "t.json:1:45: inbounds[0].port: environment variable VREV_TEST_CONFIG_PORT=\"x\" "
        "is not a port or range");
    unsetenv("VREV_TEST_CONFIG_PORT");
    vrev_ctx_free(ctx);
}

static void test_args_and_format(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = (struct vrev__config *)1;
    struct vrev__config_error e;
    assert_int_equal(vrev__config_load(NULL, "{}", 2, NULL, &c, &e), VREV_ERR_INVAL);
    assert_null(c);
    assert_int_equal(vrev__config_load(ctx, "{}", 2, NULL, NULL, &e), VREV_ERR_INVAL);
    assert_int_equal(vrev__config_load(ctx, NULL, 2, NULL, &c, NULL), VREV_ERR_INVAL);
    assert_int_equal(vrev__config_load(ctx, NULL, 0, NULL, &c, &e), VREV_ERR_CONFIG_SYNTAX);
    char msg[256];
    vrev__config_error_format(&e, msg, sizeof(msg));
    assert_string_equal(msg, "config:1:1: invalid JSON: '[' or '{' expected near end of file");
    assert_int_equal(vrev__config_load(ctx, "{}", 2, NULL, &c, NULL), 0); /* err optional */
    vrev__config_free(c);
    vrev__config_free(NULL);

    /* the formatter leaves out what is unknown and reports the length it needs */
    struct vrev__config_error f = {.code = VREV_ERR_CONFIG_INVALID, .line = 3, .column = 9};
    snprintf(f.file, sizeof(f.file), "a.json");
    snprintf(f.message, sizeof(f.message), "bad");
    assert_int_equal(vrev__config_error_format(&f, msg, sizeof(msg)), strlen("a.json:3:9: bad"));
    assert_string_equal(msg, "a.json:3:9: bad");
    snprintf(f.path, sizeof(f.path), "x[1]");
    vrev__config_error_format(&f, msg, sizeof(msg));
    assert_string_equal(msg, "a.json:3:9: x[1]: bad");
    f.line = 0;
    vrev__config_error_format(&f, msg, sizeof(msg));
    assert_string_equal(msg, "a.json: x[1]: bad");
    char small[8];
    assert_int_equal(vrev__config_error_format(&f, small, sizeof(small)), strlen(msg));
    assert_string_equal(small, "a.json:");
    vrev_ctx_free(ctx);
}

/* Credentials never appear in messages or log lines. */
static void test_no_secrets(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c;
    struct vrev__config_error e;
    char msg[1024];
    static const char *const texts[] = {
        ("{\"inbounds\": [{\"protocol\": \"vmess\", \"port\": 1, \"settings\": {\"clients\": "
         "[{\"id\": \"SECRET-9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d\"}]}}]}"),
        "{\"id\" \"SECRET-9b1deb4d\"}",
        "{\"x\": \"SECRET-9b1deb4d\" \"y\"}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_true(load(ctx, texts[i], &c, &e) < 0);
        vrev__config_error_format(&e, msg, sizeof(msg));
        assert_null(strstr(msg, "SECRET"));
    }
    logbuf[0] = '\0';
    vrev__config_free(load_file(ctx, "bridge.json"));
    vrev__config_free(load_file(ctx, "portal-vmess-tls.json"));
    vrev__config_free(load_file(ctx, "portal-socks.json"));
    assert_null(strstr(logbuf, "27848739"));
    assert_null(strstr(logbuf, "9b1deb4d"));
    assert_null(strstr(logbuf, "s3cret"));
    assert_null(strstr(logbuf, "PRIVATE"));
    vrev_ctx_free(ctx);
}

/* tlsSettings.pinnedPeerCertificateChainSha256, as v2fly 4.38 reads it (4.34 ignores it):
 * base64 SHA-256 chain hashes on a client; refused unless 32 bytes; ignored on a server. */
static void test_pins(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_ok(
        ctx,
        "{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"security\": "
        "\"tls\", \"tlsSettings\": {\"allowInsecure\": true,\n"
        "\"pinnedPeerCertificateChainSha256\": [\"LR27Sw7+VEI2vw5Np/q1hMK4njySaIKS9UIo+dnDs2w=\","
        " \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]}}}]}");
    const struct vrev__cfg_tls *t = &c->outbounds[0].stream.tls;
    assert_int_equal(t->n_pins, 2);
    static const uint8_t first[4] = {0x2d, 0x1d, 0xbb, 0x4b};
    assert_memory_equal(t->pins[0], first, 4);
    for (int i = 0; i < 32; i++)
        assert_int_equal(t->pins[1][i], i);
    /* pinned: allowInsecure is not "NOT verified" */
    assert_null(strstr(logbuf, "NOT verified"));
    vrev__config_free(c);
    /* a server: ignored, with a warning */
    logbuf[0] = '\0';
    c = load_ok(ctx, "{\"inbounds\": [{\"protocol\": \"vless\", \"port\": 1, \"settings\": "
                     "{\"clients\": [{\"id\": \"27848739-7e62-4138-9fd3-098a63964b6b\"}], "
                     "\"decryption\": \"none\"}, \"streamSettings\": {\"security\": \"tls\", "
                     "\"tlsSettings\": {\"certificates\": [{\"certificate\": [\"x\"], \"key\": "
                     "[\"y\"]}], \"pinnedPeerCertificateChainSha256\": "
                     "[\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"]}}}]}");
    assert_int_equal(c->inbounds[0].stream.tls.n_pins, 0);
    assert_non_null(strstr(logbuf, "inbounds[0].streamSettings.tlsSettings."
                                   "pinnedPeerCertificateChainSha256: ignored: a server"));
    vrev__config_free(c);
    vrev_ctx_free(ctx);
    static const char *const bad_pins[] = {
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"",
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"",
        "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\""};
    for (size_t i = 0; i < 3; i++) {
        char text[512], want[512];
        snprintf(text, sizeof(text),
                 "{\"outbounds\": [{\"protocol\": \"freedom\", \"streamSettings\": {\"security\": "
                 "\"tls\", \"tlsSettings\": {\"pinnedPeerCertificateChainSha256\":\n  [%s]}}}]}",
                 bad_pins[i]);
        snprintf(want, sizeof(want),
                 "t.json:2:4: outbounds[0].streamSettings.tlsSettings."
                 "pinnedPeerCertificateChainSha256[0]: not a certificate chain's SHA-256: need "
                 "the 32 bytes in standard base64 (44 characters, ending in '=')");
        expect_error(text, VREV_ERR_CONFIG_INVALID, want);
    }
}

/* A key given twice in one object: jansson keeps the last silently; the loader says where. */
static void test_duplicate_keys(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_ok(
        ctx,
        "{\"log\": {\"loglevel\": \"info\", \"loglevel\": \"error\"},\n"
        " \"outbounds\": [{\"protocol\": \"freedom\", \"tag\": \"a\", \"t\\u0061g\": \"b\"},\n"
        "   {\"protocol\": \"blackhole\", \"tag\": \"a2\"}],\n"
        " // the same key in other objects is no duplicate\n"
        " \"routing\": {\"rules\": [{\"type\": \"field\", \"port\": 2, \"outboundTag\": \"b\"}, "
        "{\"type\": \"field\", \"port\": 1, \"outboundTag\": \"a2\"}]},\n"
        " \"log\": {\"loglevel\": \"debug\"}}");
    assert_int_equal(c->log.level, VREV_LOG_DEBUG); /* the last "log" */
    assert_string_equal(c->outbounds[0].tag, "b");
    vrev__config_free(c);
    static const char *const want[] = {
        "t.json:1:30: duplicate key \"loglevel\" (first at 1:10): only the last one is used",
        "t.json:2:52: duplicate key \"t\\u0061g\" (first at 2:40): only the last one is used",
        "t.json:6:2: duplicate key \"log\" (first at 1:2): only the last one is used",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(logbuf, want[i]))
            fail_msg("log\n%s\nlacks\n%s", logbuf, want[i]);
    size_t n = 0;
    for (const char *p = logbuf; (p = strstr(p, "duplicate key")); p++)
        n++;
    assert_int_equal(n, 3);
    vrev_ctx_free(ctx);
}

/* ---- jansson's tree is wiped before it is freed ----
 * jansson allocates through functions this test program installs (json_set_alloc_funcs, in
 * main); its free looks at each block before freeing it. A decoded string value is a block of
 * its own that begins with the text (the lexer's scratch buffer begins with the quote). */

static const char *watched; /* a secret to look for at the start of freed blocks */
static unsigned watched_hits;

static void *watch_malloc(size_t n)
{
    unsigned char *p = malloc(n + 16);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + 16;
}

static void watch_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - 16;
    size_t n;
    memcpy(&n, p, sizeof(n));
    if (watched && n >= strlen(watched) && !memcmp(q, watched, strlen(watched)))
        watched_hits++;
    free(p);
}

static void test_tree_wiped(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    static const char *const secrets[] = {"27848739-7e62-4138-9fd3-098a63964b6b", "s3cret-pass",
                                          "-----BEGIN PRIVATE KEY-----"};
    for (size_t i = 0; i < 3; i++) {
        watched = secrets[i];
        watched_hits = 0;
        /* a successful load, then one that fails after the tree was built */
        for (int fail = 0; fail < 2; fail++) {
            char text[1024];
            snprintf(text, sizeof(text),
                     "{\"outbounds\": [{\"protocol\": \"vmess\", \"settings\": {\"vnext\": "
                     "[{\"address\": \"a.b\", \"port\": 1, \"users\": [{\"id\": "
                     "\"27848739-7e62-4138-9fd3-098a63964b6b\"}]}]}}, {\"protocol\": \"socks\", "
                     "\"settings\": {\"servers\": [{\"address\": \"a.b\", \"port\": 1, \"users\": "
                     "[{\"user\": \"u\", \"pass\": \"s3cret-pass\"}]}]}, \"streamSettings\": "
                     "{\"security\": \"tls\", \"tlsSettings\": {\"certificates\": "
                     "[{\"certificate\": [\"x\"], \"key\": [\"-----BEGIN PRIVATE KEY-----\"], "
                     "\"usage\": \"verify\"}]}}}]%s}",
                     fail ? ", \"log\": 5" : "");
            struct vrev__config *c = NULL;
            struct vrev__config_error e;
            assert_int_equal(load(ctx, text, &c, &e), fail ? VREV_ERR_CONFIG_INVALID : 0);
            vrev__config_free(c);
        }
        if (watched_hits)
            fail_msg("'%s' was freed unwiped %u times", watched, watched_hits);
    }
    watched = NULL;
    vrev_ctx_free(ctx);
}

/* ---- the "vrev" object ---- */

#define VREV_BRIDGE_PART                                                                           \
    "\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"                \
    "\"outbounds\": [{\"tag\": \"out\", \"protocol\": \"freedom\"}],\n"

/* acceptProxyProtocol where V2Ray 4.34 reads it: tcpSettings (tcp), wsSettings (ws), sockopt
 * (h2 only: its tcp and ws listeners replace sockopt's value with their own). */
static void test_accept_proxy_protocol(void **state)
{
    (void)state;
    static const struct {
        const char *stream;
        bool on;
        const char *warning;
    } cases[] = {
        {"{\"tcpSettings\": {\"acceptProxyProtocol\": true}}", true, NULL},
        {"{\"network\": \"ws\", \"wsSettings\": {\"acceptProxyProtocol\": true}}", true, NULL},
        {"{\"network\": \"ws\", \"tcpSettings\": {\"acceptProxyProtocol\": true}}", false,
         "tcpSettings: ignored: the network is ws"},
        {"{\"sockopt\": {\"acceptProxyProtocol\": true}}", false,
         "sockopt.acceptProxyProtocol: ignored, as V2Ray 4.34 ignores it for network tcp: set "
         "acceptProxyProtocol in tcpSettings"},
        {"{\"tcpSettings\": {\"acceptProxyProtocol\": false}}", false, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "{\"inbounds\": [{\"protocol\": \"dokodemo-door\", \"port\": 1, "
                 "\"settings\": {\"address\": \"127.0.0.1\", \"port\": 2}, "
                 "\"streamSettings\": %s}]}",
                 cases[i].stream);
        vrev_ctx *ctx = new_ctx();
        struct vrev__config *c = load_ok(ctx, text);
        assert_int_equal(c->inbounds[0].stream.carrier.accept_proxy_protocol, cases[i].on);
        if (cases[i].warning && !strstr(logbuf, cases[i].warning))
            fail_msg("case %zu: no warning \"%s\" in:\n%s", i, cases[i].warning, logbuf);
        vrev__config_free(c);
        vrev_ctx_free(ctx);
    }
}

static void test_vrev_object(void **state)
{
    (void)state;
    vrev_ctx *ctx = new_ctx();
    struct vrev__config *c = load_ok(
        ctx, "{" VREV_BRIDGE_PART "\"vrev\": {\"limits\": {\"sessionRate\": 5000, "
             "\"BUFFEREDTOTAL\": 134217728},\n"
             "  \"bridges\": {\"br\": {\"allow\": [\"tcp:127.0.0.1:8080\", \"udp:[::1]:53\", "
             "\"svc.local:0\"]}}}}");
    assert_int_equal(c->vrev.n_limits, 2);
    assert_string_equal(c->vrev.limits[0].name, "sessionRate");
    assert_int_equal(c->vrev.limits[0].value, 5000);
    assert_string_equal(c->vrev.limits[1].name, "bufferedTotal"); /* keys match as V2Ray's do */
    assert_int_equal(c->vrev.limits[1].value, 134217728);
    const struct vrev__strlist *allow = vrev__config_bridge_allow(c, "br");
    assert_non_null(allow);
    assert_strlist(allow, 3, "tcp:127.0.0.1:8080", "udp:[::1]:53", "svc.local:0");
    assert_null(vrev__config_bridge_allow(c, "other"));
    assert_null(strstr(logbuf, "unknown key")); /* "vrev" is a known top-level key */
    assert_null(strstr(logbuf, "redirect"));    /* an allow-list: no warning */
    assert_int_equal(c->outbounds[0].settings.freedom.proxy_protocol, 0);
    vrev__config_free(c);
    c = load_ok(ctx, "{" VREV_BRIDGE_PART "\"vrev\": {\"outbounds\": {\"out\": "
                     "{\"proxyProtocol\": \"v2\"}}}}");
    assert_int_equal(c->outbounds[0].settings.freedom.proxy_protocol, 2);
    vrev__config_free(c);
    c = load_ok(ctx, "{" VREV_BRIDGE_PART "\"vrev\": {\"outbounds\": {\"out\": "
                     "{\"proxyProtocol\": 1}}}}");
    assert_int_equal(c->outbounds[0].settings.freedom.proxy_protocol, 1);
    vrev__config_free(c);
    vrev_ctx_free(ctx);

    static const struct {
        const char *vrev, *formatted;
    } bad_vrev[] = {
        {"{\"limits\": {}, \"limit\": 1}",
         "t.json:3:33: vrev.limit: unknown key \"limit\" in \"vrev\" (known: \"limits\", "
         "\"bridges\", \"metrics\", \"outbounds\")"},
        {"{\"outbounds\": {\"other\": {\"proxyProtocol\": \"v1\"}}}",
         "t.json:3:33: vrev.outbounds.other: no outbound in outbounds is tagged \"other\""},
        {"{\"outbounds\": {\"out\": {\"proxyProtocol\": \"v3\"}}}",
         "t.json:3:49: vrev.outbounds.out.proxyProtocol: expected \"v1\", \"v2\" (or 1, 2) or "
         "\"none\" (0)"},
        {"{\"outbounds\": {\"out\": {\"proxy\": 1}}}",
         "t.json:3:41: vrev.outbounds.out.proxy: unknown key \"proxy\" in an outbound's settings "
         "(known: \"proxyProtocol\")"},
        {"{\"limits\": {\"sessionrate\": 1, \"sessionsRate\": 5}}",
         "t.json:3:55: vrev.limits.sessionsRate: unknown limit \"sessionsRate\" (limits: "
         "preauthPerInbound, preauthPerSource, connsPerListener, connsPerSource, sessionRate, "
         "sessionBurst, dialsPerTunnel, tunnelsPerBridge, tunnelBuffer, udpClientBytes, "
         "udpInboundBytes, bufferedTotal)"},
        {"{\"limits\": {\"sessionRate\": 0}}",
         "t.json:3:36: vrev.limits.sessionRate: limit sessionRate must be a whole number from 1 "
         "to 10000000"},
        {"{\"limits\": {\"tunnelBuffer\": \"64M\"}}",
         "t.json:3:37: vrev.limits.tunnelBuffer: limit tunnelBuffer must be a whole number from "
         "1048576 to 4294967295"},
        {"{\"limits\": {\"tunnelBuffer\": 1.5e7}}",
         "t.json:3:37: vrev.limits.tunnelBuffer: limit tunnelBuffer must be a whole number from "
         "1048576 to 4294967295"},
        {"{\"limits\": [1]}", "t.json:3:20: vrev.limits: expected an object"},
        {"{\"bridges\": {\"bridge\": {\"allow\": [\"tcp:1.2.3.4:5\"]}}}",
         "t.json:3:32: vrev.bridges.bridge: no bridge in reverse.bridges is tagged \"bridge\""},
        {"{\"bridges\": {\"br\": {\"allow\": [\"tcp:1.2.3.4:5\", \"1.2.3.4\"]}}}",
         "t.json:3:56: vrev.bridges.br.allow[1]: not a target: need \"tcp:HOST:PORT\" or "
         "\"udp:HOST:PORT\" (an IPv6 host in brackets)"},
        {"{\"bridges\": {\"br\": {\"allow\": []}}}",
         "t.json:3:38: vrev.bridges.br.allow: lists no target: give at least one "
         "(\"tcp:HOST:PORT\")"},
        {"{\"bridges\": {\"br\": {}}}", "t.json:3:28: vrev.bridges.br: missing \"allow\""},
        {"{\"bridges\": {\"br\": {\"allow\": [\"tcp:1.2.3.4:5\"], \"deny\": []}}}",
         "t.json:3:65: vrev.bridges.br.deny: unknown key \"deny\" in a bridge's settings (known: "
         "\"allow\")"},
    };
    for (size_t i = 0; i < sizeof(bad_vrev) / sizeof(bad_vrev[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "{" VREV_BRIDGE_PART "\"vrev\": %s}", bad_vrev[i].vrev);
        expect_error(text, VREV_ERR_CONFIG_INVALID, bad_vrev[i].formatted);
    }
    expect_error("{\"outbounds\": [{\"tag\": \"x\", \"protocol\": \"blackhole\"}], \"vrev\": "
                 "{\"outbounds\": {\"x\": {\"proxyProtocol\": 2}}}}",
                 VREV_ERR_CONFIG_INVALID,
                 "t.json:1:102: vrev.outbounds.x.proxyProtocol: a PROXY header is sent by a "
                 "freedom outbound only");
}

/* JSON mode keeps V2Ray's semantics (a freedom outbound without "redirect" dials whatever the
 * portal names), with one warning per bridge whose sessions can get there. */
static void test_bridge_reach(void **state)
{
    (void)state;
    static const struct {
        const char *json, *warning; /* NULL: none */
    } cases[] = {
        /* the default outbound */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"outbounds\": [{\"tag\": \"out\", \"protocol\": \"freedom\"}]",
         "t.json:1:26: reverse.bridges[0]: the sessions of bridge \"br\" reach freedom outbound "
         "\"out\" as the default (first) outbound; it has no \"redirect\", so the portal can make "
         "it dial any host and port (as in V2Ray). To allow only some targets, add \"vrev\": "
         "{\"bridges\": {\"br\": {\"allow\": [\"tcp:HOST:PORT\", ...]}}}"},
        /* a rule, even one with conditions (the portal chooses the target they test) */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"outbounds\": [{\"tag\": \"x\", \"protocol\": \"blackhole\"}, {\"tag\": \"out\", "
         "\"protocol\": \"freedom\"}],\n"
         "\"routing\": {\"rules\": [{\"type\": \"field\", \"inboundTag\": [\"br\"], \"port\": "
         "\"80\", \"outboundTag\": \"out\"}]}",
         "reach freedom outbound \"out\" by routing.rules[0]"},
        /* through a balancer */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"outbounds\": [{\"tag\": \"x\", \"protocol\": \"blackhole\"}, {\"tag\": \"out-1\", "
         "\"protocol\": \"freedom\"}],\n"
         "\"routing\": {\"balancers\": [{\"tag\": \"b\", \"selector\": [\"out-\"]}], \"rules\": "
         "[{\"type\": \"field\", \"inboundTag\": [\"br\"], \"balancerTag\": \"b\"}]}",
         "reach freedom outbound \"out-1\" by routing.rules[0]"},
        /* a redirect: no warning */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"outbounds\": [{\"tag\": \"out\", \"protocol\": \"freedom\", \"settings\": "
         "{\"redirect\": \"127.0.0.1:80\"}}]",
         NULL},
        /* a catch-all rule for the bridge before the default: not reached */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"outbounds\": [{\"tag\": \"out\", \"protocol\": \"freedom\"}, {\"tag\": \"web\", "
         "\"protocol\": \"freedom\", \"settings\": {\"redirect\": \"127.0.0.1:80\"}}],\n"
         "\"routing\": {\"rules\": [{\"type\": \"field\", \"inboundTag\": [\"br\"], "
         "\"outboundTag\": \"web\"}]}",
         NULL},
        /* a rule for another inbound only: the default is still reached */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"inbounds\": [{\"tag\": \"in\", \"protocol\": \"socks\", \"port\": 1, \"listen\": "
         "\"127.0.0.1\"}],\n"
         "\"outbounds\": [{\"tag\": \"out\", \"protocol\": \"freedom\"}, {\"tag\": \"web\", "
         "\"protocol\": \"freedom\", \"settings\": {\"redirect\": \"127.0.0.1:80\"}}],\n"
         "\"routing\": {\"rules\": [{\"type\": \"field\", \"inboundTag\": [\"in\"], "
         "\"outboundTag\": \"web\"}]}",
         "reach freedom outbound \"out\" as the default (first) outbound"},
        /* the opt-in allow-list: no warning */
        {"\"reverse\": {\"bridges\": [{\"tag\": \"br\", \"domain\": \"t.example\"}]},\n"
         "\"outbounds\": [{\"tag\": \"out\", \"protocol\": \"freedom\"}],\n"
         "\"vrev\": {\"bridges\": {\"br\": {\"allow\": [\"tcp:127.0.0.1:80\"]}}}",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[2048];
        snprintf(text, sizeof(text), "{%s}", cases[i].json);
        vrev_ctx *ctx = new_ctx();
        vrev__config_free(load_ok(ctx, text));
        if (cases[i].warning && !strstr(logbuf, cases[i].warning))
            fail_msg("case %zu: log\n%s\nlacks\n%s", i, logbuf, cases[i].warning);
        if (!cases[i].warning && strstr(logbuf, "redirect"))
            fail_msg("case %zu: unexpected warning\n%s", i, logbuf);
        vrev_ctx_free(ctx);
    }
}

/* ---- allocation failure: fail the N-th allocation until the load succeeds ---- */

static void sweep(const char *name, size_t arena_block)
{
    char rel[256];
    size_t len;
    snprintf(rel, sizeof(rel), "configs/%s", name);
    uint8_t *text = tu_load(rel, &len);
    struct tu_failing_alloc fa = {0, 0, 0};
    vrev_allocator a;
    tu_failing_allocator(&a, &fa);
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
    vrev_ctx_set_log(ctx, VREV_LOG_DEBUG, collect, NULL);
    unsigned n;
    for (n = 1; n < 100000; n++) {
        struct vrev__config *c = NULL;
        struct vrev__config_error e;
        fa.fail_at = fa.calls + n;
        logbuf[0] = '\0';
        int rc = vrev__config_load_ex(ctx, (const char *)text, len, name, arena_block, &c, &e);
        if (rc == 0) {
            assert_true(fa.live > 1);
            vrev__config_free(c);
            assert_int_equal(fa.live, 1); /* just the ctx */
            break;
        }
        assert_int_equal(rc, VREV_ERR_NOMEM);
        assert_int_equal(e.code, VREV_ERR_NOMEM);
        assert_null(c);
        assert_int_equal(fa.live, 1);
    }
    assert_true(n > 2);
    if (arena_block)
        print_message("%s: %u allocations failed one at a time\n", name, n - 1);
    fa.fail_at = 0;
    vrev_ctx_free(ctx);
    free(text);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    static const char *const names[] = {"bridge.json",
                                        "portal.json",
                                        "seed-bridge.json",
                                        "seed-portal.json",
                                        "bridge-vless-tls.json",
                                        "portal-vless-tls.json",
                                        "bridge-vmess-tls.json",
                                        "portal-vmess-tls.json",
                                        "bridge-socks.json",
                                        "portal-socks.json",
                                        "full.json"};
    /* with the normal arena (few, big blocks), then with one block per string and array so
     * that every allocation path of the loader fails once */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        sweep(names[i], 0);
        sweep(names[i], 1);
    }
}

int main(void)
{
    json_set_alloc_funcs(watch_malloc, watch_free); /* this program's, not the library's */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bridge),
        cmocka_unit_test(test_portal),
        cmocka_unit_test(test_seed_configs),
        cmocka_unit_test(test_vless_tls),
        cmocka_unit_test(test_vmess_tls),
        cmocka_unit_test(test_socks_pair),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_position_multiline),
        cmocka_unit_test(test_comment_filter),
        cmocka_unit_test(test_comments_in_config),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_carriers),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_policy_defaults),
        cmocka_unit_test(test_legacy_sections),
        cmocka_unit_test(test_env_port),
        cmocka_unit_test(test_args_and_format),
        cmocka_unit_test(test_no_secrets),
        cmocka_unit_test(test_router_accepts),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_tree_wiped),
        cmocka_unit_test(test_vrev_object),
        cmocka_unit_test(test_accept_proxy_protocol),
        cmocka_unit_test(test_bridge_reach),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
