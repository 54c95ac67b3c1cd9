/* Packet links (lib/net/packet.h): datagram boundaries survive the u16be framing, oversized
 * datagrams are dropped on the way, and a datagram appears in a buffer in one piece: an
 * output callback (a VMess layer's, say) never sees a length without its bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "net/packet.h"

struct watch {
    int calls;
    int partial; /* callbacks that saw an incomplete datagram at the end of the buffer */
};

/* After every change: the buffer must hold whole datagrams only. */
static void on_change(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct watch *w = arg;
    if (info->n_added == 0)
        return;
    w->calls++;
    size_t len = evbuffer_get_length(buf), off = 0;
    uint8_t *p = evbuffer_pullup(buf, -1);
    while (off + 2 <= len)
        off += 2 + ((size_t)p[off] << 8 | p[off + 1]);
    if (off != len)
        w->partial++;
}

static void test_roundtrip_and_whole_datagrams(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    struct watch w = {0, 0};
    evbuffer_add_cb(b, on_change, &w);
    static uint8_t big[VREV_PACKET_MAX];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31);
    const size_t sizes[] = {0, 1, 2, 100, 2046, 4096, VREV_PACKET_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        assert_int_equal(vrev__packet_put(b, big, sizes[i]), 0);
    assert_int_equal(vrev__packet_put(b, big, VREV_PACKET_MAX + 1), -1); /* not framable */
    assert_int_equal(w.calls, (int)(sizeof(sizes) / sizeof(sizes[0])));
    assert_int_equal(w.partial, 0);
    evbuffer_remove_cb(b, on_change, &w);

    static uint8_t out[VREV_PACKET_MAX];
    size_t n;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (sizes[i] > 4096)
            continue; /* taken below with a small buffer: dropped */
        assert_int_equal(vrev__packet_take(b, out, 4096, &n), 1);
        assert_int_equal(n, sizes[i]);
        assert_memory_equal(out, big, n);
    }
    assert_int_equal(vrev__packet_take(b, out, 4096, &n), 0); /* the 65535 one was dropped */
    assert_int_equal(evbuffer_get_length(b), 0);
    evbuffer_free(b);
}

static void test_incomplete_waits(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    uint8_t out[16];
    size_t n;
    evbuffer_add(b,
                 "\x00\x05"
                 "abc",
                 5);
    assert_int_equal(vrev__packet_take(b, out, sizeof(out), &n), 0);
    assert_int_equal(evbuffer_get_length(b), 5); /* nothing consumed */
    evbuffer_add(b, "de", 2);
    assert_int_equal(vrev__packet_take(b, out, sizeof(out), &n), 1);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "abcde", 5);
    evbuffer_add(b, "\x00", 1); /* half a length */
    assert_int_equal(vrev__packet_take(b, out, sizeof(out), &n), 0);
    evbuffer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_whole_datagrams),
        cmocka_unit_test(test_incomplete_waits),
    };
    return cmocka_run_group_tests_name("packet", tests, NULL, NULL);
}
