/* lib/route: field rules, matchers, balancers and tag resolution (WIRE-SPEC §7, §3.8, §8.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/addr.h"
#include "route/route_internal.h"
#include "route/router.h"
#include "testutil.h"
#include "vrev.h"

#define LIST(...)                                                                                  \
    ((struct vrev__strlist){(const char *const[]){__VA_ARGS__},                                    \
                            sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)})

/* --- fixture ----------------------------------------------------------------------------- */

struct logs {
    int warnings;
    char last[512];
};

struct fx {
    vrev_ctx *ctx;
    struct vrev__router *r;
    struct logs logs;
    char err[256];
};

static void log_cb(int level, const char *component, const char *message, void *user)
{
    struct logs *l = user;
    (void)component;
    if (level == VREV_LOG_WARN)
        l->warnings++;
    snprintf(l->last, sizeof(l->last), "%s", message);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(vrev_ctx_new(&f->ctx, NULL), 0);
    vrev_ctx_set_log(f->ctx, VREV_LOG_DEBUG, log_cb, &f->logs);
    assert_int_equal(vrev__router_new(f->ctx, &f->r), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vrev__router_free(f->r);
    vrev_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* Add a rule; returns the result and leaves the message in f->err. */
static int add(struct fx *f, const struct vrev__rule_spec *spec)
{
    f->err[0] = '\0';
    return vrev__router_add_rule(f->r, spec, f->err, sizeof(f->err));
}

static void add_ok(struct fx *f, const struct vrev__rule_spec *spec)
{
    int rc = add(f, spec);
    if (rc != 0)
        fail_msg("add_rule: %d %s", rc, f->err);
}

static void finish_ok(struct fx *f, struct vrev__strlist outbounds)
{
    f->err[0] = '\0';
    int rc = vrev__router_finish(f->r, &outbounds, f->err, sizeof(f->err));
    if (rc != 0)
        fail_msg("finish: %d %s", rc, f->err);
}

static struct vrev__addr addr(const char *host, uint16_t port)
{
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, host, port), 0);
    return a;
}

/* The outbound for a TCP connection to host:port from inbound `tag`. */
static size_t pick_to(const struct fx *f, const char *tag, const char *host, uint16_t port)
{
    struct vrev__addr t = addr(host, port);
    struct vrev__route_ctx c = {.inbound_tag = tag, .network = VREV_ROUTE_TCP, .target = &t};
    return vrev__router_pick(f->r, &c, 0);
}

static size_t pick_host(const struct fx *f, const char *host)
{
    return pick_to(f, "in", host, 443);
}

/* One rule "domain: values -> outbound 1", finished. */
static void domain_rule(struct fx *f, struct vrev__strlist values)
{
    struct vrev__rule_spec s = {.domains = values, .outbound_tag = "hit"};
    add_ok(f, &s);
    finish_ok(f, LIST("default", "hit"));
}

static int domain_rule_rc(struct fx *f, struct vrev__strlist values)
{
    struct vrev__rule_spec s = {.domains = values, .outbound_tag = "hit"};
    return add(f, &s);
}

/* --- domain matchers --------------------------------------------------------------------- */

static void test_domain_full(void **state)
{
    struct fx *f = *state;
    domain_rule(f, LIST("full:example.com", "full:test.v2fly.org"));
    assert_int_equal(pick_host(f, "example.com"), 1);
    assert_int_equal(pick_host(f, "test.v2fly.org"), 1);
    assert_int_equal(pick_host(f, "www.example.com"), 0);
    assert_int_equal(pick_host(f, "example.co"), 0);
    assert_int_equal(pick_host(f, "example.com.cn"), 0);
    assert_int_equal(pick_host(f, "Example.com"), 0);   /* case-sensitive */
    assert_int_equal(pick_host(f, "93.184.216.34"), 0); /* an IP target never matches */
    assert_int_equal(pick_host(f, "::1"), 0);
}

static void test_domain_suffix(void **state)
{
    struct fx *f = *state;
    domain_rule(f, LIST("domain:example.com", "domain:.weird"));
    assert_int_equal(pick_host(f, "example.com"), 1);
    assert_int_equal(pick_host(f, "a.example.com"), 1);
    assert_int_equal(pick_host(f, "a.b.c.example.com"), 1);
    assert_int_equal(pick_host(f, "badexample.com"), 0);
    assert_int_equal(pick_host(f, "example.com.cn"), 0);
    assert_int_equal(pick_host(f, "com"), 0);
    assert_int_equal(pick_host(f, "xample.com"), 0);
    /* V2Ray's label trie: "domain:.weird" is the labels "" and "weird". */
    assert_int_equal(pick_host(f, "a..weird"), 1);
    assert_int_equal(pick_host(f, "a.weird"), 0);
}

static void test_domain_keyword_and_plain(void **state)
{
    struct fx *f = *state;
    domain_rule(f, LIST("keyword:goo", "ample.c"));
    assert_int_equal(pick_host(f, "google.com"), 1);
    assert_int_equal(pick_host(f, "a.goo"), 1);
    assert_int_equal(pick_host(f, "goo"), 1);
    assert_int_equal(pick_host(f, "example.com"), 1);     /* no prefix = substring */
    assert_int_equal(pick_host(f, "x.example.cn.io"), 1); /* not exact */
    assert_int_equal(pick_host(f, "go.og"), 0);
    assert_int_equal(pick_host(f, "GOOGLE.com"), 0);
    assert_int_equal(pick_host(f, "ample"), 0);
    assert_int_equal(pick_host(f, "10.0.0.1"), 0);
}

static void test_domain_regexp(void **state)
{
    struct fx *f = *state;
    domain_rule(f, LIST("regexp:^ads\\.", "regexp:\\d+\\.cdn$", "regexp:(?i)^WWW\\.Z",
                        "regexp:^[\\w-]+\\.cn$", "regexp:^(?:foo|bar){2}\\.x$"));
    assert_int_equal(pick_host(f, "ads.example.com"), 1);
    assert_int_equal(pick_host(f, "bads.example.com"), 0);
    assert_int_equal(pick_host(f, "ads-example.com"), 0);
    assert_int_equal(pick_host(f, "img12.cdn"), 1);
    assert_int_equal(pick_host(f, "imgd.cdn"), 0); /* glibc would read \d as 'd' */
    assert_int_equal(pick_host(f, "img12.cdn.net"), 0);
    assert_int_equal(pick_host(f, "www.z.org"), 1); /* (?i) */
    assert_int_equal(pick_host(f, "WwW.Z"), 1);
    assert_int_equal(pick_host(f, "my_host-1.cn"), 1);
    assert_int_equal(pick_host(f, "a.b.cn"), 0);
    assert_int_equal(pick_host(f, "foobar.x"), 1);
    assert_int_equal(pick_host(f, "foo.x"), 0);
    assert_int_equal(pick_host(f, "1.2.3.4"), 0);
}

static void test_domain_regexp_errors(void **state)
{
    struct fx *f = *state;
    assert_int_equal(domain_rule_rc(f, LIST("regexp:(")), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "regexp:("));
    assert_int_equal(domain_rule_rc(f, LIST("regexp:[a-")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:[z-a]")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:a\\")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:a{2000}")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:a++")), VREV_ERR_INVAL); /* as RE2 */
    assert_int_equal(domain_rule_rc(f, LIST("regexp:a*{2}")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:*a")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:(|+)")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:a)")), VREV_ERR_INVAL);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:(a")), VREV_ERR_INVAL);
    /* glibc copies x for x+ and x{n}: exponential trees are refused before regcomp(). */
    assert_int_equal(domain_rule_rc(f, LIST("regexp:((a{1000}){1000})")), VREV_ERR_UNSUPPORTED);
    assert_non_null(strstr(f->err, "too large"));
    assert_int_equal(
        domain_rule_rc(f, LIST("regexp:((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)")),
        VREV_ERR_UNSUPPORTED);
    char deep[2 * 70 + 2];
    memset(deep, '(', 70);
    deep[70] = 'a';
    memset(deep + 71, ')', 70);
    deep[141] = '\0';
    const char *deep_value[] = {deep};
    char prefixed[sizeof(deep) + 8];
    snprintf(prefixed, sizeof(prefixed), "regexp:%s", deep);
    deep_value[0] = prefixed;
    assert_int_equal(domain_rule_rc(f, (struct vrev__strlist){deep_value, 1}),
                     VREV_ERR_UNSUPPORTED);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:\\pL")), VREV_ERR_UNSUPPORTED);
    assert_non_null(strstr(f->err, "unsupported"));
    assert_int_equal(domain_rule_rc(f, LIST("regexp:a(?i)b")), VREV_ERR_UNSUPPORTED);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:\\Qa.b\\E")), VREV_ERR_UNSUPPORTED);
    assert_int_equal(domain_rule_rc(f, LIST("regexp:[\\x41]")), VREV_ERR_UNSUPPORTED);
    /* A bad value anywhere rejects the whole rule and leaves the router usable. */
    assert_int_equal(domain_rule_rc(f, LIST("full:a.com", "regexp:ok", "regexp:)(")),
                     VREV_ERR_INVAL);
    domain_rule(f, LIST("regexp:^ok$"));
    assert_int_equal(pick_host(f, "ok"), 1);
    assert_int_equal(pick_host(f, "a.com"), 0);
}

static void expect_ere(const char *re2, const char *ere, int icase)
{
    char out[512];
    int cflags;
    char why[128];
    int rc = vrev__re2_to_ere(re2, out, sizeof(out), &cflags, why, sizeof(why));
    if (rc != 0)
        fail_msg("%s: %d %s", re2, rc, why);
    assert_string_equal(out, ere);
    assert_int_equal(!!(cflags & REG_ICASE), icase);
    assert_true(cflags & REG_EXTENDED);
    assert_true(cflags & REG_NOSUB);
}

static void test_re2_translation(void **state)
{
    (void)state;
    expect_ere("^ads\\.", "^ads\\.", 0);
    expect_ere("\\d\\D\\w\\W\\s\\S",
               "[[:digit:]][^[:digit:]][[:alnum:]_][^[:alnum:]_][[:space:]]"
               "[^[:space:]]",
               0);
    expect_ere("\\-\\_\\/", "-_/", 0);
    expect_ere("\\A\\z", "^$", 0);
    expect_ere("(?i)a", "a", 1);
    expect_ere("(?s)a", "a", 0);
    expect_ere("(?:a|b)(?P<n>c)", "(a|b)(c)", 0);
    expect_ere("a*?b+?c??d{2,3}?", "a*b+c?d{2,3}", 0);
    expect_ere("a{,3}b{x", "a\\{,3\\}b\\{x", 0);
    expect_ere("a{2,}", "a{2,}", 0);
    expect_ere("^*a|b", "^*a|b", 0);
    expect_ere("(a{100}){100}", "(a{100}){100}", 0);
    expect_ere("[\\d.]", "[.0123456789]", 0);
    expect_ere("[a\\-c]", "[ac-]", 0);
    expect_ere("[]a]", "[]a]", 0);
    expect_ere("[^.]", "[^.]", 0);
    expect_ere("[\\^]", "\\^", 0);
    expect_ere("[-^]", "[-^]", 0);
    expect_ere("[[:digit:]x]", "[0123456789x]", 0);
    expect_ere("[[a]", "[a[]", 0);
    expect_ere("[\\n]", "[^[:print:][:space:][:cntrl:]]", 0);
    expect_ere("[^\\n]", ".", 0);
}

static void test_domain_dotless(void **state)
{
    struct fx *f = *state;
    domain_rule(f, LIST("dotless:", "dotless:ab+c"));
    assert_int_equal(pick_host(f, "localhost"), 1);
    assert_int_equal(pick_host(f, "a.b"), 0);
    assert_int_equal(pick_host(f, "abbbc.d"), 0);
    vrev__router_free(f->r);
    assert_int_equal(vrev__router_new(f->ctx, &f->r), 0);
    assert_int_equal(domain_rule_rc(f, LIST("dotless:a.b")), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "must not contain a dot"));
    domain_rule(f, LIST("dotless:host", "dotless:ab+c"));
    assert_int_equal(pick_host(f, "myhost1"), 1);
    assert_int_equal(pick_host(f, "my.host"), 0);
    assert_int_equal(pick_host(f, "xabbbcx"), 1); /* regex syntax, as V2Ray pastes it */
    assert_int_equal(pick_host(f, "abbbc.d"), 0);
    assert_int_equal(pick_host(f, "other"), 0);
}

static void test_unsupported_prefixes(void **state)
{
    struct fx *f = *state;
    const char *domains[] = {"geosite:cn", "ext:h2y.dat:gfw", "ext-domain:x.dat:y", "geoip:cn"};
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
        struct vrev__rule_spec s = {.domains = {&domains[i], 1}, .outbound_tag = "x"};
        assert_int_equal(add(f, &s), VREV_ERR_UNSUPPORTED);
        assert_non_null(strstr(f->err, "geoip/geosite data files are not supported"));
        assert_non_null(strstr(f->err, domains[i]));
    }
    const char *ips[] = {"geoip:private", "ext:geoip.dat:cn", "ext-ip:geoip.dat:cn"};
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        struct vrev__rule_spec s = {.ips = {&ips[i], 1}, .outbound_tag = "x"};
        assert_int_equal(add(f, &s), VREV_ERR_UNSUPPORTED);
        assert_non_null(strstr(f->err, "geoip/geosite data files are not supported"));
        struct vrev__rule_spec t = {.sources = {&ips[i], 1}, .outbound_tag = "x"};
        assert_int_equal(add(f, &t), VREV_ERR_UNSUPPORTED);
    }
}

/* --- ip matchers ------------------------------------------------------------------------- */

static void ip_rule(struct fx *f, struct vrev__strlist values)
{
    struct vrev__rule_spec s = {.ips = values, .outbound_tag = "hit"};
    add_ok(f, &s);
    finish_ok(f, LIST("default", "hit"));
}

static int ip_rule_rc(struct fx *f, const char *value)
{
    struct vrev__rule_spec s = {.ips = {&value, 1}, .outbound_tag = "hit"};
    return add(f, &s);
}

static void test_ip_v4(void **state)
{
    struct fx *f = *state;
    ip_rule(f, LIST("10.0.0.0/8", "192.168.1.1", "172.16.5.9/12"));
    assert_int_equal(pick_host(f, "10.0.0.0"), 1);
    assert_int_equal(pick_host(f, "10.255.255.255"), 1);
    assert_int_equal(pick_host(f, "9.255.255.255"), 0);
    assert_int_equal(pick_host(f, "11.0.0.0"), 0);
    assert_int_equal(pick_host(f, "192.168.1.1"), 1);
    assert_int_equal(pick_host(f, "192.168.1.2"), 0);
    assert_int_equal(pick_host(f, "172.31.255.255"), 1); /* host bits of the rule are masked */
    assert_int_equal(pick_host(f, "172.32.0.0"), 0);
    assert_int_equal(pick_host(f, "::ffff:10.1.2.3"), 1); /* mapped IPv6 = IPv4 */
    assert_int_equal(pick_host(f, "::a01:203"), 0);       /* ::10.1.2.3 is not mapped */
    assert_int_equal(pick_host(f, "ten.example"), 0);
    /* A hand-built mapped address is normalised by the matcher as well. */
    struct vrev__addr t = {.type = VREV_ADDR_IPV6, .len = 16, .port = 1};
    memcpy(t.host, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x01\x02\x03", 16);
    struct vrev__route_ctx c = {.network = VREV_ROUTE_TCP, .target = &t};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 1);
}

static void test_ip_v6_edges(void **state)
{
    struct fx *f = *state;
    ip_rule(f, LIST("2001:db8:0:0:8000::/65", "2001:db8::1/128", "[fe80::1]"));
    assert_int_equal(pick_host(f, "2001:db8::1"), 1);
    assert_int_equal(pick_host(f, "2001:db8::2"), 0);
    assert_int_equal(pick_host(f, "2001:db8::8000:0:0:0"), 1);
    assert_int_equal(pick_host(f, "2001:db8::ffff:ffff:ffff:ffff"), 1);
    assert_int_equal(pick_host(f, "2001:db8::7fff:ffff:ffff:ffff"), 0);
    assert_int_equal(pick_host(f, "2001:db8:0:1::"), 0);
    assert_int_equal(pick_host(f, "fe80::1"), 1);
    assert_int_equal(pick_host(f, "fe80::2"), 0);
    assert_int_equal(pick_host(f, "1.2.3.4"), 0);

    vrev__router_free(f->r);
    assert_int_equal(vrev__router_new(f->ctx, &f->r), 0);
    ip_rule(f, LIST("::/0"));
    assert_int_equal(pick_host(f, "::"), 1);
    assert_int_equal(pick_host(f, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 1);
    assert_int_equal(pick_host(f, "2001:db8::1"), 1);
    assert_int_equal(pick_host(f, "1.2.3.4"), 0); /* ::/0 is IPv6 only, as in V2Ray */
    assert_int_equal(pick_host(f, "::ffff:1.2.3.4"), 0);

    vrev__router_free(f->r);
    assert_int_equal(vrev__router_new(f->ctx, &f->r), 0);
    ip_rule(f, LIST("0.0.0.0/0", "::ffff:192.168.0.0/112"));
    assert_int_equal(pick_host(f, "0.0.0.0"), 1);
    assert_int_equal(pick_host(f, "255.255.255.255"), 1);
    assert_int_equal(pick_host(f, "::1"), 0);
}

static void test_ip_mapped_prefix(void **state)
{
    struct fx *f = *state;
    ip_rule(f, LIST("::ffff:10.0.0.0/104"));
    assert_int_equal(pick_host(f, "10.200.0.1"), 1);
    assert_int_equal(pick_host(f, "11.0.0.1"), 0);
}

static void test_ip_merge(void **state)
{
    struct fx *f = *state;
    ip_rule(f, LIST("10.0.0.0/9", "10.128.0.0/9", "10.1.0.0/16", "255.255.255.254/31",
                    "255.255.255.255", "1.1.1.1", "1.1.1.3", "::1", "::/127", "::3"));
    assert_int_equal(pick_host(f, "10.127.255.255"), 1);
    assert_int_equal(pick_host(f, "10.128.0.0"), 1);
    assert_int_equal(pick_host(f, "11.0.0.0"), 0);
    assert_int_equal(pick_host(f, "255.255.255.255"), 1);
    assert_int_equal(pick_host(f, "255.255.255.253"), 0);
    assert_int_equal(pick_host(f, "1.1.1.2"), 0);
    assert_int_equal(pick_host(f, "1.1.1.3"), 1);
    assert_int_equal(pick_host(f, "::"), 1);
    assert_int_equal(pick_host(f, "::2"), 0);
    assert_int_equal(pick_host(f, "::3"), 1);
}

static void test_ip_errors(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {
        "10.0.0.0/33",       "::/129",      "1.2.3.4/",    "1.2.3.4/x", "1.2.3.4/-1",
        "1.2.3.4/+8",        "example.com", "1.2.3",       "",          "/8",
        "::ffff:1.2.3.4/64", "1.2.3.4 ",    "1.2.3.4/8/8", "01.2.3.4",  "[1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ip_rule_rc(f, bad[i]) != VREV_ERR_INVAL)
            fail_msg("ip \"%s\" accepted", bad[i]);
        assert_non_null(strstr(f->err, bad[i]));
    }
    assert_int_equal(ip_rule_rc(f, "1.2.3.4/032"), 0);
    assert_int_equal(ip_rule_rc(f, "[::1]/128"), 0);
}

static void test_source(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec s = {
        .sources = LIST("192.0.2.0/24"), .source_ports = "5000-6000", .outbound_tag = "hit"};
    add_ok(f, &s);
    finish_ok(f, LIST("default", "hit"));
    struct vrev__addr t = addr("192.0.2.7", 80), src = addr("192.0.2.9", 5555);
    struct vrev__route_ctx c = {.network = VREV_ROUTE_TCP, .target = &t, .source = &src};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 1);
    src.port = 4999;
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
    src = addr("198.51.100.1", 5555);
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
    c.source = NULL; /* unknown source: the condition is false */
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
}

/* --- ports, network, tags ---------------------------------------------------------------- */

static int port_rc(struct fx *f, const char *ports)
{
    struct vrev__rule_spec s = {.ports = ports, .outbound_tag = "hit"};
    return add(f, &s);
}

static void test_ports(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec s = {.ports = " 53 , 443,1000-2000 ,, 1500 - 2500,0",
                                .outbound_tag = "hit"};
    add_ok(f, &s);
    finish_ok(f, LIST("default", "hit"));
    const uint16_t yes[] = {0, 53, 443, 1000, 1999, 2000, 2500};
    const uint16_t no[] = {1, 52, 54, 442, 444, 999, 2501, 65535};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_int_equal(pick_to(f, "in", "example.com", yes[i]), 1);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(pick_to(f, "in", "example.com", no[i]), 0);
    struct vrev__route_ctx c = {.network = VREV_ROUTE_TCP}; /* no target */
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
}

static void test_port_full_range(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec s = {.ports = "0-65535", .outbound_tag = "hit"};
    add_ok(f, &s);
    finish_ok(f, LIST("default", "hit"));
    assert_int_equal(pick_to(f, "in", "a", 0), 1);
    assert_int_equal(pick_to(f, "in", "a", 65535), 1);
}

static void test_port_errors(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {"65536",
                         "abc",
                         "1-",
                         "-1",
                         "2-1",
                         "1-2-3",
                         "+80",
                         "0x50",
                         "80 443",
                         "80;443",
                         "99999999999999999999",
                         "1-70000",
                         "443,x",
                         " - "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (port_rc(f, bad[i]) != VREV_ERR_INVAL)
            fail_msg("port \"%s\" accepted", bad[i]);
        assert_non_null(strstr(f->err, bad[i]));
    }
    assert_int_equal(port_rc(f, "2-1"), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "ends before it starts"));
    assert_int_equal(port_rc(f, "65536"), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "0..65535"));
    assert_int_equal(port_rc(f, "65535"), 0);
    assert_int_equal(port_rc(f, "00080"), 0);
    /* An empty list is accepted, as in V2Ray, and never matches (with a warning). */
    int before = f->logs.warnings;
    assert_int_equal(port_rc(f, " , "), 0);
    assert_int_equal(f->logs.warnings, before + 1);
    finish_ok(f, LIST("default", "hit"));
    assert_int_equal(pick_to(f, "in", "a", 1), 0);
    assert_int_equal(pick_to(f, "in", "a", 65535), 1);
}

static void test_network(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec udp = {.networks = VREV_ROUTE_UDP, .outbound_tag = "u"};
    struct vrev__rule_spec both = {.networks = VREV_ROUTE_TCP | VREV_ROUTE_UDP,
                                   .outbound_tag = "b"};
    struct vrev__rule_spec bad = {.networks = 4, .outbound_tag = "b"};
    add_ok(f, &udp);
    add_ok(f, &both);
    assert_int_equal(add(f, &bad), VREV_ERR_INVAL);
    finish_ok(f, LIST("default", "u", "b"));
    struct vrev__addr t = addr("example.com", 53);
    struct vrev__route_ctx c = {.network = VREV_ROUTE_UDP, .target = &t};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 1);
    c.network = VREV_ROUTE_TCP;
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 2);
    c.network = 0;
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
}

static void test_tags_users_protocols(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec in = {.inbound_tags = LIST("", "bridge", "alpha"), .outbound_tag = "i"};
    struct vrev__rule_spec user = {.users = LIST("a@x", "b@x"), .outbound_tag = "u"};
    struct vrev__rule_spec proto = {.protocols = LIST("http", "tls"), .outbound_tag = "p"};
    struct vrev__rule_spec empty = {.inbound_tags = LIST(""), .outbound_tag = "e"};
    add_ok(f, &empty); /* only empty strings: present but never matching, as in V2Ray */
    add_ok(f, &in);
    add_ok(f, &user);
    add_ok(f, &proto);
    finish_ok(f, LIST("default", "i", "u", "p", "e"));
    struct vrev__route_ctx c = {.inbound_tag = "bridge"};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 1);
    c.inbound_tag = "alpha";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 1);
    c.inbound_tag = "bridge2"; /* exact, not prefix */
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
    c.inbound_tag = "";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
    c.inbound_tag = NULL;
    c.user = "b@x";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 2);
    c.user = "b@xy";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
    c.user = NULL;
    c.protocol = "tls";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 3);
    c.protocol = "http/1.1"; /* prefix match */
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 3);
    c.protocol = "ht";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
    c.protocol = "bittorrent";
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
}

/* --- rule semantics ---------------------------------------------------------------------- */

static void test_and_or(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec s = {.inbound_tags = LIST("a", "b"),
                                .domains = LIST("full:x.com", "full:y.com"),
                                .ports = "443",
                                .outbound_tag = "hit"};
    add_ok(f, &s);
    finish_ok(f, LIST("default", "hit"));
    assert_int_equal(pick_to(f, "a", "x.com", 443), 1);
    assert_int_equal(pick_to(f, "b", "y.com", 443), 1);
    assert_int_equal(pick_to(f, "c", "x.com", 443), 0);   /* inbound fails */
    assert_int_equal(pick_to(f, "a", "z.com", 443), 0);   /* domain fails */
    assert_int_equal(pick_to(f, "a", "x.com", 80), 0);    /* port fails */
    assert_int_equal(pick_to(f, "a", "1.2.3.4", 443), 0); /* domain false for IPs */
}

static void test_first_match_and_default(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec r1 = {.domains = LIST("domain:example.com"), .outbound_tag = "one"};
    struct vrev__rule_spec r2 = {.domains = LIST("keyword:example"), .outbound_tag = "two"};
    struct vrev__rule_spec r3 = {.ports = "0-65535", .outbound_tag = "three"};
    add_ok(f, &r1);
    add_ok(f, &r2);
    add_ok(f, &r3);
    finish_ok(f, LIST("default", "one", "two", "three"));
    assert_int_equal(pick_host(f, "www.example.com"), 1);
    assert_int_equal(pick_host(f, "example.org"), 2);
    assert_int_equal(pick_host(f, "other.org"), 3);
    struct vrev__route_ctx c = {.network = VREV_ROUTE_TCP}; /* nothing known: default */
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
}

static void test_bridge_rules(void **state)
{
    struct fx *f = *state;
    /* WIRE-SPEC §8.7 bridge: outbounds out (default), interconn. */
    struct vrev__rule_spec tunnel = {.inbound_tags = LIST("bridge"),
                                     .domains = LIST("full:test.v2fly.org"),
                                     .outbound_tag = "interconn"};
    struct vrev__rule_spec forward = {.inbound_tags = LIST("bridge"), .outbound_tag = "out"};
    add_ok(f, &tunnel);
    add_ok(f, &forward);
    finish_ok(f, LIST("out", "interconn"));
    assert_int_equal(f->logs.warnings, 0);
    assert_int_equal(pick_to(f, "bridge", "test.v2fly.org", 0), 1);
    assert_int_equal(pick_to(f, "bridge", "127.0.0.1", 18000), 0);
    assert_int_equal(pick_to(f, "bridge", "test.v2fly.org.evil", 0), 0);
    assert_int_equal(pick_to(f, "bridge", "x.test.v2fly.org", 0), 0);
    assert_int_equal(pick_to(f, "other", "test.v2fly.org", 0), 0);
}

static void test_portal_rules(void **state)
{
    struct fx *f = *state;
    /* WIRE-SPEC §8.7 portal: blackhole "block" is the default; the portal is an outbound. */
    struct vrev__rule_spec external = {.inbound_tags = LIST("external"), .outbound_tag = "portal"};
    struct vrev__rule_spec interconn = {.inbound_tags = LIST("interconn"),
                                        .outbound_tag = "portal"};
    add_ok(f, &external);
    add_ok(f, &interconn);
    finish_ok(f, LIST("block", "portal"));
    assert_int_equal(pick_to(f, "external", "127.0.0.1", 18000), 1);
    assert_int_equal(pick_to(f, "interconn", "test.v2fly.org", 0), 1);
    assert_int_equal(pick_to(f, "socks", "example.com", 80), 0);
}

/* --- balancers and tag resolution -------------------------------------------------------- */

static void test_balancer(void **state)
{
    struct fx *f = *state;
    struct vrev__strlist sel = LIST("proxy-", "extra");
    assert_int_equal(vrev__router_add_balancer(f->r, "b1", &sel, f->err, sizeof(f->err)), 0);
    struct vrev__rule_spec s = {.inbound_tags = LIST("in"), .balancer_tag = "b1"};
    struct vrev__rule_spec both = {
        .inbound_tags = LIST("both"), .outbound_tag = "block", .balancer_tag = "b1"};
    add_ok(f, &s);
    add_ok(f, &both);
    finish_ok(f, LIST("direct", "proxy-a", "proxy-b", "block", "extra1", "", "proxy"));
    struct vrev__route_ctx c = {.inbound_tag = "in"};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 1);
    assert_int_equal(vrev__router_pick(f->r, &c, UINT32_MAX), 4);
    int seen[7] = {0};
    for (uint32_t i = 0; i < 3000; i++)
        seen[vrev__router_pick(f->r, &c, i * 2654435761u)]++;
    assert_int_equal(seen[0] + seen[3] + seen[5] + seen[6], 0);
    for (int i = 1; i <= 4; i++)
        if (i != 3)
            assert_true(seen[i] > 800);
    c.inbound_tag = "both"; /* outboundTag wins over balancerTag */
    assert_int_equal(vrev__router_pick(f->r, &c, 12345), 3);
}

static void test_balancer_errors(void **state)
{
    struct fx *f = *state;
    struct vrev__strlist sel = LIST("nothing-");
    struct vrev__strlist none = {0};
    assert_int_equal(vrev__router_add_balancer(f->r, "", &sel, f->err, sizeof(f->err)),
                     VREV_ERR_INVAL);
    assert_int_equal(vrev__router_add_balancer(f->r, "b", &none, f->err, sizeof(f->err)),
                     VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "empty selector list"));
    assert_int_equal(vrev__router_add_balancer(f->r, "b", &sel, f->err, sizeof(f->err)), 0);
    assert_int_equal(vrev__router_finish(f->r, &LIST("a", "b"), f->err, sizeof(f->err)),
                     VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "\"b\""));

    /* A rule naming a balancer that does not exist. */
    vrev__router_free(f->r);
    assert_int_equal(vrev__router_new(f->ctx, &f->r), 0);
    struct vrev__rule_spec s = {.ports = "80", .balancer_tag = "ghost"};
    add_ok(f, &s);
    assert_int_equal(vrev__router_finish(f->r, &LIST("a"), f->err, sizeof(f->err)), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "ghost"));
}

static void test_unknown_outbound(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec r1 = {.inbound_tags = LIST("in"), .outbound_tag = "nope"};
    struct vrev__rule_spec r2 = {.inbound_tags = LIST("in"), .outbound_tag = "real"};
    add_ok(f, &r1);
    add_ok(f, &r2);
    finish_ok(f, LIST("default", "real"));
    assert_int_equal(f->logs.warnings, 1);
    assert_non_null(strstr(f->logs.last, "nope"));
    /* The rule still wins the match; its traffic goes to the default outbound. */
    struct vrev__route_ctx c = {.inbound_tag = "in"};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0);
}

static void test_duplicate_outbound_tags(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec s = {.inbound_tags = LIST("in"), .outbound_tag = "x"};
    add_ok(f, &s);
    finish_ok(f, LIST("d", "x", "y", "x"));
    struct vrev__route_ctx c = {.inbound_tag = "in"};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 3); /* the last one, like V2Ray's map */
}

static void test_rule_errors(void **state)
{
    struct fx *f = *state;
    struct vrev__rule_spec nothing = {.outbound_tag = "x"};
    assert_int_equal(add(f, &nothing), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "no effective fields"));
    struct vrev__rule_spec no_target = {.ports = "80"};
    assert_int_equal(add(f, &no_target), VREV_ERR_INVAL);
    assert_non_null(strstr(f->err, "outboundTag"));
    struct vrev__rule_spec empty_target = {.ports = "80", .outbound_tag = "", .balancer_tag = ""};
    assert_int_equal(add(f, &empty_target), VREV_ERR_INVAL);
    const char *null_value = NULL;
    struct vrev__rule_spec null_domain = {.domains = {&null_value, 1}, .outbound_tag = "x"};
    assert_int_equal(add(f, &null_domain), VREV_ERR_INVAL);
    assert_int_equal(vrev__router_add_rule(f->r, NULL, NULL, 0), VREV_ERR_INVAL);
    assert_int_equal(vrev__router_add_rule(NULL, &nothing, f->err, sizeof(f->err)), VREV_ERR_INVAL);
    assert_int_equal(vrev__router_new(f->ctx, NULL), VREV_ERR_INVAL);
    vrev__router_free(NULL);

    struct vrev__rule_spec ok = {.ports = "80", .outbound_tag = "x"};
    add_ok(f, &ok);
    struct vrev__route_ctx c = {.network = VREV_ROUTE_TCP};
    assert_int_equal(vrev__router_pick(f->r, &c, 0), 0); /* not finished yet */
    assert_int_equal(vrev__router_pick(NULL, &c, 0), 0);
    finish_ok(f, LIST("d", "x"));
    assert_int_equal(add(f, &ok), VREV_ERR_STATE);
    struct vrev__strlist sel = LIST("x");
    assert_int_equal(vrev__router_add_balancer(f->r, "b", &sel, NULL, 0), VREV_ERR_STATE);
    assert_int_equal(vrev__router_finish(f->r, &LIST("d"), NULL, 0), VREV_ERR_STATE);
    assert_int_equal(pick_to(f, "in", "a", 80), 1);
}

static void test_spec_is_copied(void **state)
{
    struct fx *f = *state;
    char domain[] = "full:copy.example", tag[] = "in", port[] = "80", out[] = "hit";
    const char *domains[] = {domain}, *tags[] = {tag};
    struct vrev__rule_spec s = {
        .domains = {domains, 1}, .inbound_tags = {tags, 1}, .ports = port, .outbound_tag = out};
    add_ok(f, &s);
    memset(domain, 'z', sizeof(domain) - 1);
    memset(tag, 'z', sizeof(tag) - 1);
    memset(port, '9', sizeof(port) - 1);
    memset(out, 'z', sizeof(out) - 1);
    finish_ok(f, LIST("default", "hit"));
    assert_int_equal(pick_to(f, "in", "copy.example", 80), 1);
}

/* --- allocation -------------------------------------------------------------------------- */

static void build_many(struct vrev__router *r)
{
    char err[256];
    struct vrev__rule_spec rules[] = {
        {.inbound_tags = LIST("bridge"),
         .domains = LIST("full:test.v2fly.org"),
         .outbound_tag = "interconn"},
        {.domains =
             LIST("domain:example.com", "keyword:ads", "plain", "dotless:lan", "regexp:^x\\d+\\."),
         .networks = VREV_ROUTE_TCP,
         .outbound_tag = "proxy-a"},
        {.ips = LIST("10.0.0.0/8", "2001:db8::/32"),
         .ports = "1-1024,8080",
         .outbound_tag = "proxy-b"},
        {.sources = LIST("192.0.2.0/24"),
         .source_ports = "0-65535",
         .users = LIST("u@x"),
         .protocols = LIST("tls"),
         .balancer_tag = "b"},
        {.inbound_tags = LIST("bridge"), .outbound_tag = "missing"},
    };
    struct vrev__strlist sel = LIST("proxy-");
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        assert_int_equal(vrev__router_add_rule(r, &rules[i], err, sizeof(err)), 0);
    assert_int_equal(vrev__router_add_balancer(r, "b", &sel, err, sizeof(err)), 0);
    assert_int_equal(vrev__router_finish(r, &LIST("direct", "interconn", "proxy-a", "proxy-b"), err,
                                         sizeof(err)),
                     0);
}

static void test_pick_does_not_allocate(void **state)
{
    (void)state;
    struct tu_failing_alloc fa = {0, 0, 0};
    vrev_allocator alloc;
    tu_failing_allocator(&alloc, &fa);
    vrev_ctx *ctx;
    struct vrev__router *r;
    assert_int_equal(vrev_ctx_new2(&ctx, NULL, &alloc), 0);
    assert_int_equal(vrev__router_new(ctx, &r), 0);
    build_many(r);
    const char *hosts[] = {"test.v2fly.org", "a.example.com", "x12.lan",   "lan",
                           "10.1.2.3",       "2001:db8::1",   "192.0.2.5", "nothing.org"};
    const char *tags[] = {"bridge", "other", NULL};
    unsigned calls = fa.calls;
    size_t hits[4] = {0};
    for (unsigned i = 0; i < 30000; i++) {
        struct vrev__addr t = addr(hosts[i % 8], (uint16_t)(i % 2000));
        struct vrev__addr src = addr(hosts[(i / 8) % 8], (uint16_t)i);
        struct vrev__route_ctx c = {
            tags[i % 3], i & 1 ? VREV_ROUTE_TCP : VREV_ROUTE_UDP, &t, &src, "u@x", "tls"};
        hits[vrev__router_pick(r, &c, i)]++;
    }
    assert_int_equal(fa.calls, calls);
    for (int i = 0; i < 4; i++)
        assert_true(hits[i] > 0);
    vrev__router_free(r);
    vrev_ctx_free(ctx);
    assert_int_equal(fa.live, 0);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    int succeeded = 0;
    for (unsigned n = 1; n < 200 && !succeeded; n++) {
        struct tu_failing_alloc fa = {0, 0, 0};
        vrev_allocator alloc;
        tu_failing_allocator(&alloc, &fa);
        vrev_ctx *ctx;
        struct vrev__router *r = NULL;
        assert_int_equal(vrev_ctx_new2(&ctx, NULL, &alloc), 0);
        fa.fail_at = fa.calls + n;
        int rc = vrev__router_new(ctx, &r);
        char err[256];
        struct vrev__rule_spec big = {.domains =
                                          LIST("full:a", "domain:b", "keyword:c", "regexp:^d"),
                                      .ips = LIST("10.0.0.0/8", "::1"),
                                      .ports = "1-2",
                                      .users = LIST("u"),
                                      .outbound_tag = "x"};
        struct vrev__strlist sel = LIST("x");
        for (int i = 0; rc == 0 && i < 40; i++) /* enough rules to need several chunks */
            rc = vrev__router_add_rule(r, &big, err, sizeof(err));
        if (rc == 0)
            rc = vrev__router_add_balancer(r, "b", &sel, err, sizeof(err));
        if (rc == 0)
            rc = vrev__router_finish(r, &LIST("d", "x"), err, sizeof(err));
        if (rc == 0)
            succeeded = 1;
        else
            assert_int_equal(rc, VREV_ERR_NOMEM);
        vrev__router_free(r);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
    }
    assert_true(succeeded);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_domain_full),
        T(test_domain_suffix),
        T(test_domain_keyword_and_plain),
        T(test_domain_regexp),
        T(test_domain_regexp_errors),
        cmocka_unit_test(test_re2_translation),
        T(test_domain_dotless),
        T(test_unsupported_prefixes),
        T(test_ip_v4),
        T(test_ip_v6_edges),
        T(test_ip_mapped_prefix),
        T(test_ip_merge),
        T(test_ip_errors),
        T(test_source),
        T(test_ports),
        T(test_port_full_range),
        T(test_port_errors),
        T(test_network),
        T(test_tags_users_protocols),
        T(test_and_or),
        T(test_first_match_and_default),
        T(test_bridge_rules),
        T(test_portal_rules),
        T(test_balancer),
        T(test_balancer_errors),
        T(test_unknown_outbound),
        T(test_duplicate_outbound_tags),
        T(test_rule_errors),
        T(test_spec_is_copied),
        cmocka_unit_test(test_pick_does_not_allocate),
        cmocka_unit_test(test_allocation_failures),
    };
#undef T
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
