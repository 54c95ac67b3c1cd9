/* Places for connections in their proxy handshake (lib/proxy/preauth.c), per inbound: a full
 * pool closes the oldest handshake of the source holding the most, never the newcomer; a source
 * at its cap gives up its own oldest; inbounds never share places; a source is an IPv4 address
 * or an IPv6 /64 (IPv4-mapped counted as IPv4). And nothing of a handshake outlives its
 * deadline, TLS's lingering close included (descriptors counted in /proc/self/fd). A SOCKS
 * inbound's clients that send nothing stay in the handshake, so each one holds a place. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "net/sources.h"
#include "net/tls.h"
#include "proxy/inbound.h"
#include "proxy/proxy.h"
#include "testutil.h"

struct world {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__engine engine;
    struct vrev__inbound *in, *in2;
    uint16_t port, port2;
};

/* An engine whose inbounds have `max` places, `per_source` per source; a SOCKS inbound on
 * `listen` (NULL: 127.0.0.1). */
static void world_init_at(struct world *w, uint32_t max, uint32_t per_source, const char *listen)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&w->ctx, w->base), 0);
    assert_int_equal(vrev__engine_init(&w->engine, w->ctx), 0);
    w->engine.limits.preauth_per_inbound = max;
    w->engine.limits.preauth_per_source = per_source;
    struct vrev__outbound *ob;
    assert_int_equal(vrev__blackhole_new(&w->engine, "out", false, &ob), 0);
    assert_int_equal(vrev__engine_add_outbound(&w->engine, ob), 0);
    struct vrev__socks_in_opts o = {.listen = listen ? listen : "127.0.0.1"};
    assert_int_equal(vrev__socks_in_new(&w->engine, "socks", &o, &w->in), 0);
    w->port = vrev__inbound_port(w->in);
}

static void world_init(struct world *w, uint32_t max, uint32_t per_source)
{
    world_init_at(w, max, per_source, NULL);
}

static void world_done(struct world *w)
{
    vrev__inbound_free(w->in);
    vrev__inbound_free(w->in2);
    vrev__engine_cleanup(&w->engine);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    event_base_free(w->base);
    vrev_ctx_free(w->ctx);
}

static void spin(struct world *w)
{
    for (int i = 0; i < 5; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
}

static void spin_ms(struct world *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(w->base, &tv);
    event_base_dispatch(w->base);
}

/* A client from `from` (127.0.0.x or an IPv6 literal) to `port` that sends nothing. */
static int client_to(const char *from, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fam = strchr(from, ':') ? AF_INET6 : AF_INET;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, from, &a->sin_addr);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, from, &a->sin6_addr);
        len = sizeof(*a);
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_port = htons(port);
        inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, "::1", &a->sin6_addr);
    }
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    assert_true(rc == 0 || errno == EINPROGRESS);
    return fd;
}

static int client(struct world *w, const char *from)
{
    return client_to(from, w->port);
}

/* Still held open by the inbound (no end of stream, no reset)? */
static bool held(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* A source at its cap gives up its own oldest; other sources keep theirs. */
static void test_per_source_evicts_its_own_oldest(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 1000, 4);
    int fd[9];
    fd[0] = client(&w, "127.0.0.2");
    spin(&w);
    for (int i = 1; i < 7; i++) {
        fd[i] = client(&w, "127.0.0.1");
        spin(&w);
    }
    for (int i = 1; i < 7; i++)
        assert_int_equal(held(fd[i]), i >= 3); /* the two oldest of .1 went for its newest */
    assert_true(held(fd[0]));                  /* .2 lost nothing */
    assert_int_equal(w.in->preauth.n, 5);
    assert_int_equal(w.in->preauth.evicted, 2);
    close(fd[3]); /* a place is given back when a client leaves */
    close(fd[4]);
    fd[3] = fd[4] = -1;
    spin(&w);
    fd[7] = client(&w, "127.0.0.1");
    fd[8] = client(&w, "127.0.0.1");
    spin(&w);
    assert_true(held(fd[5]) && held(fd[6]) && held(fd[7]) && held(fd[8]));
    assert_int_equal(w.in->preauth.n, 5);
    assert_int_equal(w.in->preauth.evicted, 2);
    for (int i = 0; i < 9; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    spin(&w);
    assert_int_equal(w.in->preauth.n, 0);
    assert_int_equal(w.in->preauth.sources.n, 0);
    assert_int_equal(w.in->preauth.top, 0);
    world_done(&w);
}

/* A full pool closes the oldest of the source holding the most: never the newcomer, and never
 * a lone client while someone holds more. */
static void test_full_pool_evicts_the_largest_sources_oldest(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 4, 100);
    int a = client(&w, "127.0.0.2");
    spin(&w);
    int b = client(&w, "127.0.0.2");
    spin(&w);
    int c = client(&w, "127.0.0.2");
    spin(&w);
    int d = client(&w, "127.0.0.3");
    spin(&w);
    int e = client(&w, "127.0.0.4"); /* full: .2's oldest goes */
    spin(&w);
    assert_false(held(a));
    assert_true(held(b) && held(c) && held(d) && held(e));
    int f = client(&w, "127.0.0.5"); /* .2 still holds the most */
    spin(&w);
    assert_false(held(b));
    assert_true(held(c) && held(d) && held(e) && held(f));
    assert_int_equal(w.in->preauth.n, 4);
    assert_int_equal(w.in->preauth.evicted, 2);
    int fds[] = {a, b, c, d, e, f};
    for (size_t i = 0; i < 6; i++)
        close(fds[i]);
    world_done(&w);
}

/* The M7 scenario, small: eight addresses flood a 16-place pool round and round; a client from
 * a ninth (a bridge coming back) gets a place at once and keeps it while the flood goes on, for
 * as long as its handshake needs. */
static void test_newcomer_survives_a_flood(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 16, 8);
    int flood[160], n = 0;
    for (int round = 0; round < 8; round++)
        for (int s = 2; s <= 9; s++) {
            char from[16];
            snprintf(from, sizeof(from), "127.0.0.%d", s);
            flood[n++] = client(&w, from);
            spin(&w);
        }
    int bridge = client(&w, "127.0.0.1");
    spin(&w);
    assert_true(held(bridge));
    for (int round = 0; round < 8; round++)
        for (int s = 2; s <= 9; s++) {
            char from[16];
            snprintf(from, sizeof(from), "127.0.0.%d", s);
            flood[n++] = client(&w, from);
            spin(&w);
        }
    assert_true(held(bridge));
    int kept = 0;
    for (int i = 0; i < n; i++)
        kept += held(flood[i]);
    assert_int_equal(kept, 15);
    assert_int_equal(w.in->preauth.n, 16);
    for (int i = 0; i < n; i++)
        close(flood[i]);
    close(bridge);
    world_done(&w);
}

/* Each inbound has its own places: a flood on one leaves the other's clients alone. */
static void test_inbounds_do_not_share(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 4, 4);
    struct vrev__socks_in_opts o = {.listen = "127.0.0.1"};
    assert_int_equal(vrev__socks_in_new(&w.engine, "tunnel", &o, &w.in2), 0);
    w.port2 = vrev__inbound_port(w.in2);
    int quiet[2], flood[12];
    for (int i = 0; i < 12; i++) {
        char from[16];
        snprintf(from, sizeof(from), "127.0.0.%d", 2 + i % 3);
        flood[i] = client(&w, from);
        spin(&w);
    }
    for (int i = 0; i < 2; i++) /* the first inbound is full: these are the second's */
        quiet[i] = client_to("127.0.0.2", w.port2);
    spin(&w);
    assert_true(held(quiet[0]) && held(quiet[1]));
    assert_int_equal(w.in->preauth.n, 4);
    assert_int_equal(w.in2->preauth.n, 2);
    assert_int_equal(w.in2->preauth.evicted, 0);
    assert_int_equal(w.in->preauth.evicted, 8);
    for (int i = 0; i < 12; i++)
        close(flood[i]);
    for (int i = 0; i < 2; i++)
        close(quiet[i]);
    world_done(&w);
}

static void key_of(struct vrev__source_key *k, const char *ip)
{
    struct sockaddr_storage ss = {0};
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    vrev__source_key_of(k, (struct sockaddr *)&ss);
}

static bool same_source(const char *x, const char *y)
{
    struct vrev__source_key a, b;
    key_of(&a, x);
    key_of(&b, y);
    return vrev__source_key_equal(&a, &b);
}

/* One source: an IPv4 address, an IPv6 /64; an IPv4-mapped address is its IPv4 address. */
static void test_source_keys(void **state)
{
    (void)state;
    assert_true(same_source("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
    assert_false(same_source("2001:db8:1:2::1", "2001:db8:1:3::1"));
    assert_true(same_source("::ffff:192.0.2.7", "192.0.2.7"));
    assert_false(same_source("192.0.2.7", "192.0.2.8"));
    assert_false(same_source("::", "0.0.0.0")); /* families apart */
    struct vrev__source_key k;
    char text[64];
    key_of(&k, "2001:db8:1:2:3:4:5:6");
    vrev__source_key_text(&k, text, sizeof(text));
    assert_string_equal(text, "2001:db8:1:2::/64");
    key_of(&k, "::ffff:192.0.2.7");
    vrev__source_key_text(&k, text, sizeof(text));
    assert_string_equal(text, "192.0.2.7");
    /* a table of many sources: each found again, removed one by one */
    vrev_ctx *ctx;
    assert_int_equal(vrev_ctx_new(&ctx, NULL), 0);
    struct vrev__sources t;
    assert_int_equal(vrev__sources_init(&t, ctx, sizeof(struct vrev__source)), 0);
    for (uint32_t i = 0; i < 3000; i++) {
        k.family = i % 2 ? 6 : 4;
        k.prefix = i * 0x10000ULL;
        struct vrev__source *s = vrev__sources_get(&t, &k);
        assert_non_null(s);
        assert_int_equal(s->n, 0);
        s->n = i + 1;
    }
    assert_int_equal(t.n, 3000);
    for (uint32_t i = 0; i < 3000; i++) {
        k.family = i % 2 ? 6 : 4;
        k.prefix = i * 0x10000ULL;
        struct vrev__source *s = vrev__sources_find(&t, &k);
        assert_non_null(s);
        assert_int_equal(s->n, i + 1);
        vrev__sources_remove(&t, s);
        assert_null(vrev__sources_find(&t, &k));
    }
    assert_int_equal(t.n, 0);
    vrev__sources_cleanup(&t);
    vrev_ctx_free(ctx);
}

/* Through a dual-stack listener ("::"): IPv4 clients arrive as ::ffff:127.0.0.x and are
 * counted as their IPv4 address; ::1 is a source of its own. */
static void test_mapped_ipv4_counts_as_ipv4(void **state)
{
    (void)state;
    struct world w;
    world_init_at(&w, 100, 2, "::");
    int v4[3], v6;
    for (int i = 0; i < 3; i++) {
        v4[i] = client(&w, "127.0.0.2");
        spin(&w);
    }
    v6 = client(&w, "::1");
    spin(&w);
    assert_false(held(v4[0]));
    assert_true(held(v4[1]) && held(v4[2]) && held(v6));
    assert_int_equal(w.in->preauth.sources.n, 2);
    struct vrev__source_key k;
    key_of(&k, "127.0.0.2");
    struct vrev__source *s = vrev__sources_find(&w.in->preauth.sources, &k);
    assert_non_null(s);
    assert_int_equal(s->n, 2);
    for (int i = 0; i < 3; i++)
        close(v4[i]);
    close(v6);
    world_done(&w);
}

/* Freeing an inbound closes its handshakes (they refer to it), before the engine stops. */
static void test_inbound_freed_with_handshakes(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 10, 10);
    int fd[3];
    for (int i = 0; i < 3; i++)
        fd[i] = client(&w, "127.0.0.2");
    spin(&w);
    vrev__inbound_free(w.in);
    w.in = NULL;
    spin(&w);
    for (int i = 0; i < 3; i++) {
        assert_false(held(fd[i]));
        close(fd[i]);
    }
    world_done(&w); /* LSan: nothing left */
}

/* Issue M7, finding 2: TLS clients that trickle a byte now and then (never finishing the TLS
 * handshake) hold nothing past the handshake deadline: before, the deadline returned the place
 * but the TLS layer lingered, each byte restarting its 10 s idle timer. */
static void test_tls_handshakes_end_at_the_deadline(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, 100, 100);
    w.engine.policy.handshake_ms = 400;
    const char *dir = getenv("VREV_VECTORS");
    char crt[512], key[512];
    snprintf(crt, sizeof(crt), "%s/tls/server.crt", dir ? dir : "tests/vectors");
    snprintf(key, sizeof(key), "%s/tls/server.key", dir ? dir : "tests/vectors");
    struct vrev__tls_server_opts so = {.cert_file = crt, .key_file = key};
    struct vrev__tls_ctx *tls;
    assert_int_equal(vrev__tls_server_ctx_new(w.ctx, &so, &tls, NULL, 0), 0);
    vrev__inbound_set_tls(w.in, tls);
    spin(&w);
    int base = tu_count_fds();
    enum { N = 20 };
    int fd[N];
    /* a TLS record header, then one byte of its body at a time */
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    for (int i = 0; i < N; i++) {
        char from[16];
        snprintf(from, sizeof(from), "127.0.0.%d", 2 + i % 4);
        fd[i] = client(&w, from);
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    spin(&w);
    assert_int_equal(tu_count_fds(), base + 2 * N); /* ours and theirs */
    for (int t = 0; t < 12; t++) {                  /* 1.2 s: three times the deadline */
        for (int i = 0; i < N; i++)
            if (t < (int)sizeof(hello))
                (void)send(fd[i], &hello[t], 1, MSG_NOSIGNAL);
        spin_ms(&w, 100);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms < 300) /* well before the deadline (a loaded machine may be past it) */
            assert_int_equal(w.in->preauth.n, N);
    }
    for (int i = 0; i < N; i++) /* still trickling after the deadline */
        (void)send(fd[i], "x", 1, MSG_NOSIGNAL);
    spin(&w);
    assert_int_equal(w.in->preauth.n, 0);
    assert_int_equal(tu_count_fds(), base + N); /* only the clients' own */
    for (int i = 0; i < N; i++)
        close(fd[i]);
    world_done(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_source_evicts_its_own_oldest),
        cmocka_unit_test(test_full_pool_evicts_the_largest_sources_oldest),
        cmocka_unit_test(test_newcomer_survives_a_flood),
        cmocka_unit_test(test_inbounds_do_not_share),
        cmocka_unit_test(test_source_keys),
        cmocka_unit_test(test_mapped_ipv4_counts_as_ipv4),
        cmocka_unit_test(test_inbound_freed_with_handshakes),
        cmocka_unit_test(test_tls_handshakes_end_at_the_deadline),
    };
    return cmocka_run_group_tests_name("preauth", tests, NULL, NULL);
}
