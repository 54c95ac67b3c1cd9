/* lib/codec/mux_ext: vrev's extension blocks in the Mux.Cool metadata tail (encode, parse,
 * bounds), frames that carry them as V2Ray 4.34 would read them, and the per-session flow
 * control arithmetic (credit, grants, window growth only for a reader that keeps up). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/mux_ext.h"
#include "codec/mux_frame.h"
#include "core/core.h"
#include "testutil.h"

static void test_tlv_round_trip(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = 0;
    int r = vrev__mux_ext_hello(b, sizeof(b), VREV_MUX_EXT_FLAG_FLOW, 512 * 1024);
    assert_int_equal(r, 8);
    n += (size_t)r;
    b[n++] = 0x77; /* a later extension's TLV: skipped */
    b[n++] = 3;
    memcpy(b + n, "abc", 3);
    n += 3;
    n += (size_t)vrev__mux_ext_window(b + n, sizeof(b) - n, 70000);
    n += (size_t)vrev__mux_ext_flow(b + n, sizeof(b) - n);
    n += (size_t)vrev__mux_ext_blocked(b + n, sizeof(b) - n);
    struct vrev__mux_ext e;
    assert_int_equal(vrev__mux_ext_parse(b, n, &e), 0);
    assert_true(e.hello && e.window && e.flow && e.blocked);
    assert_int_equal(e.version, VREV_MUX_EXT_VERSION);
    assert_int_equal(e.flags, VREV_MUX_EXT_FLAG_FLOW);
    assert_int_equal(e.hello_window, 512 * 1024);
    assert_int_equal(e.window_inc, 70000);
    assert_int_equal(vrev__mux_ext_parse(b, 0, &e), 0); /* empty block */
    assert_false(e.hello || e.window || e.flow || e.blocked);
}

static void test_tlv_bounds(void **state)
{
    (void)state;
    uint8_t b[16];
    struct vrev__mux_ext e;
    int n = vrev__mux_ext_window(b, sizeof(b), 1000);
    for (int cut = 1; cut < n; cut++) /* every truncation: the block is refused whole */
        assert_int_equal(vrev__mux_ext_parse(b, (size_t)cut, &e), VREV_ERR_MUX_EXT);
    const uint8_t zero_window[] = {VREV_MUX_EXT_WINDOW, 4, 0, 0, 0, 0};
    assert_int_equal(vrev__mux_ext_parse(zero_window, sizeof(zero_window), &e), VREV_ERR_MUX_EXT);
    const uint8_t huge_window[] = {VREV_MUX_EXT_WINDOW, 4, 0x80, 0, 0, 1};
    assert_int_equal(vrev__mux_ext_parse(huge_window, sizeof(huge_window), &e), VREV_ERR_MUX_EXT);
    const uint8_t short_hello[] = {VREV_MUX_EXT_HELLO, 2, 1, 1};
    assert_int_equal(vrev__mux_ext_parse(short_hello, sizeof(short_hello), &e), VREV_ERR_MUX_EXT);
    const uint8_t flow_then_bad[] = {VREV_MUX_EXT_FLOW, 0, 9, 5, 1};
    assert_int_equal(vrev__mux_ext_parse(flow_then_bad, sizeof(flow_then_bad), &e),
                     VREV_ERR_MUX_EXT);
    assert_false(e.flow); /* nothing of a bad block is used */
    assert_int_equal(vrev__mux_ext_window(b, sizeof(b), 0), VREV_ERR_RANGE);
    assert_int_equal(vrev__mux_ext_window(b, 5, 1), VREV_ERR_NOSPACE);
    assert_int_equal(vrev__mux_ext_hello(b, 7, 0, 1), VREV_ERR_NOSPACE);
}

/* A frame's tail is where V2Ray stops reading: after the option byte, or after a New frame's
 * address. The parser hands it over; the encoder puts it there; the metadata limit holds. */
static void test_frames_carry_blocks(void **state)
{
    (void)state;
    uint8_t tlv[VREV_MUX_EXT_MAX], out[VREV_MUX_HEADER_MAX + 16];
    int tl = vrev__mux_ext_hello(tlv, sizeof(tlv), VREV_MUX_EXT_FLAG_FLOW, 65536);
    struct vrev__mux_frame_spec ka = {.status = VREV_MUX_KEEPALIVE, .ext = tlv, .ext_len = 8};
    int n = vrev__mux_encode_spec(out, sizeof(out), &ka);
    assert_int_equal(n, 2 + 4 + tl);
    assert_int_equal(out[0] << 8 | out[1], 4 + tl); /* metaLen covers the block */
    struct vrev_mux_frame f;
    size_t need;
    assert_int_equal(vrev__mux_parse(out, (size_t)n, &f, &need), n);
    assert_int_equal(f.status, VREV_MUX_KEEPALIVE);
    assert_int_equal(f.ext_len, (size_t)tl);
    assert_memory_equal(f.ext, tlv, (size_t)tl);

    struct vrev__addr target;
    assert_int_equal(vrev__addr_from_text(&target, "127.0.0.1", 8080), 0);
    tl = vrev__mux_ext_flow(tlv, sizeof(tlv));
    struct vrev__mux_frame_spec nw = {.sid = 5,
                                      .status = VREV_MUX_NEW,
                                      .network = VREV_NET_TCP,
                                      .target = &target,
                                      .ext = tlv,
                                      .ext_len = (size_t)tl,
                                      .with_data = 1,
                                      .data_len = 3};
    n = vrev__mux_encode_spec(out, sizeof(out), &nw);
    memcpy(out + n, "abc", 3);
    assert_int_equal(vrev__mux_parse(out, (size_t)n + 3, &f, &need), n + 3);
    assert_int_equal(f.target.port, 8080);
    assert_int_equal(f.ext_len, (size_t)tl);
    assert_memory_equal(f.ext, tlv, (size_t)tl);
    assert_int_equal(f.data_len, 3);
    assert_memory_equal(f.data, "abc", 3);

    /* a plain frame has no tail */
    n = vrev__mux_encode_header(out, sizeof(out), 5, VREV_MUX_KEEP, 0, 0, NULL, 1, 0);
    assert_int_equal(vrev__mux_parse(out, (size_t)n, &f, &need), n);
    assert_null(f.ext);
    assert_int_equal(f.ext_len, 0);

    uint8_t big[VREV_MUX_META_MAX];
    memset(big, 0, sizeof(big));
    struct vrev__mux_frame_spec over = {.status = VREV_MUX_KEEP, .ext = big, .ext_len = 509};
    assert_int_equal(vrev__mux_encode_spec(out, sizeof(out), &over), VREV_ERR_RANGE);
    over.ext_len = 508; /* 4 + 508 = 512: the most metadata there is */
    uint8_t room[600];
    assert_int_equal(vrev__mux_encode_spec(room, sizeof(room), &over), 2 + 512);
}

static void test_flow_credit(void **state)
{
    (void)state;
    struct vrev__flow f;
    vrev__flow_init(&f, 100000, 65536, 1 << 20);
    assert_int_equal(f.send_credit, 100000);
    vrev__flow_sent(&f, 60000);
    assert_int_equal(f.send_credit, 40000);
    vrev__flow_granted(&f, 5000);
    assert_int_equal(f.send_credit, 45000);
    /* receiving: up to the window, no further */
    assert_int_equal(vrev__flow_received(&f, 65536), 0);
    assert_int_equal(vrev__flow_received(&f, 1), VREV_ERR_MUX_FLOW);
    /* grants: a quarter of the window at a time */
    vrev__flow_consumed(&f, 16383);
    assert_false(vrev__flow_due(&f));
    assert_int_equal(vrev__flow_grant(&f), 0);
    vrev__flow_consumed(&f, 1);
    assert_true(vrev__flow_due(&f));
    assert_int_equal(vrev__flow_grant(&f), 16384);
    assert_int_equal(vrev__flow_received(&f, 16384), 0); /* exactly what was granted */
    assert_int_equal(vrev__flow_received(&f, 1), VREV_ERR_MUX_FLOW);
}

static void test_flow_window_grows_for_fast_readers_only(void **state)
{
    (void)state;
    struct vrev__flow f;
    vrev__flow_init(&f, 65536, 65536, 262144);
    /* a peer that says it is blocked before sending anything gets no larger window */
    assert_false(vrev__flow_blocked(&f, 0));
    assert_int_equal(f.window, 65536);
    /* the sender is blocked while our reader holds most of the window: the reader is the
     * limit; only what it has taken goes back */
    assert_int_equal(vrev__flow_received(&f, 65536), 0);
    vrev__flow_consumed(&f, 1000);
    assert_true(vrev__flow_blocked(&f, 64536));
    assert_int_equal(f.window, 65536);
    assert_int_equal(vrev__flow_grant(&f), 1000); /* under a quarter, but the sender waits */
    assert_false(vrev__flow_blocked(&f, 64536));  /* nothing owed: nothing to give */
    /* the reader has taken everything: the window was the limit, it doubles */
    vrev__flow_consumed(&f, 64536);
    assert_true(vrev__flow_blocked(&f, 0));
    assert_int_equal(f.window, 131072);
    assert_int_equal(vrev__flow_grant(&f), 64536 + 65536);
    assert_int_equal(vrev__flow_received(&f, 131072), 0);
    vrev__flow_consumed(&f, 131072);
    assert_true(vrev__flow_blocked(&f, 0));
    assert_int_equal(f.window, 262144);
    assert_true(vrev__flow_blocked(&f, 0)); /* at the maximum it stays */
    assert_int_equal(f.window, 262144);
    assert_int_equal(vrev__flow_grant(&f), 131072 + 131072);
}

/* CLIENT: 13 bytes for IPv4, 37 for IPv6 (mixed families as IPv6, IPv4 mapped); anything
 * else makes the block invalid. */
static void test_client_tlv(void **state)
{
    (void)state;
    struct vrev__addr s4, d4, s6;
    vrev__addr_from_text(&s4, "192.0.2.7", 40000);
    vrev__addr_from_text(&d4, "198.51.100.1", 443);
    vrev__addr_from_text(&s6, "2001:db8::7", 1);
    uint8_t b[VREV_MUX_EXT_MAX];
    assert_int_equal(vrev__mux_ext_client(b, sizeof(b), &s4, &d4), 15);
    size_t wn;
    uint8_t *want = tu_hex("05 0d 04 c0000207 9c40 c6336401 01bb", &wn);
    assert_memory_equal(b, want, wn);
    free(want);
    struct vrev__mux_ext e;
    assert_int_equal(vrev__mux_ext_parse(b, 15, &e), 0);
    assert_true(e.client && vrev__addr_equal(&e.client_src, &s4) &&
                vrev__addr_equal(&e.client_dst, &d4));
    for (size_t n = 1; n < 15; n++) /* every truncation refused whole */
        assert_int_equal(vrev__mux_ext_parse(b, n, &e), VREV_ERR_MUX_EXT);
    int n = vrev__mux_ext_client(b, sizeof(b), &s6, &d4);
    assert_int_equal(n, 39);
    assert_int_equal(b[2], 6);
    assert_int_equal(vrev__mux_ext_parse(b, (size_t)n, &e), 0);
    assert_true(vrev__addr_equal(&e.client_src, &s6));
    assert_true(vrev__addr_equal(&e.client_dst, &d4)); /* mapped back to IPv4 */
    b[2] = 4;                                          /* a family that does not fit the length */
    assert_int_equal(vrev__mux_ext_parse(b, (size_t)n, &e), VREV_ERR_MUX_EXT);
    assert_false(e.client);
    uint8_t odd[] = {VREV_MUX_EXT_CLIENT, 12, 4, 1, 2, 3, 4, 0, 1, 5, 6, 7, 8, 0};
    assert_int_equal(vrev__mux_ext_parse(odd, sizeof(odd), &e), VREV_ERR_MUX_EXT);
    struct vrev__addr name;
    vrev__addr_from_text(&name, "example.com", 80);
    assert_int_equal(vrev__mux_ext_client(b, sizeof(b), &name, &d4), VREV_ERR_ADDR_TYPE);
    assert_int_equal(vrev__mux_ext_client(b, 14, &s4, &d4), VREV_ERR_NOSPACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tlv_round_trip),
        cmocka_unit_test(test_client_tlv),
        cmocka_unit_test(test_tlv_bounds),
        cmocka_unit_test(test_frames_carry_blocks),
        cmocka_unit_test(test_flow_credit),
        cmocka_unit_test(test_flow_window_grows_for_fast_readers_only),
    };
    return cmocka_run_group_tests_name("mux_ext", tests, NULL, NULL);
}
