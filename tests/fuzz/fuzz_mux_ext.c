/* F10: vrev's Mux.Cool extension blocks (lib/codec/mux_ext.c), the bytes a peer puts in a
 * frame's metadata tail, and the flow-control arithmetic they drive.
 *
 * Input: a block, parsed as it is and at every shorter length (a truncation must be refused
 * whole or parse as a prefix); then read as a script of flow events (byte = event, next four
 * bytes = amount). Oracles beyond the sanitizers: a parse that fails leaves nothing set; the
 * receiver never accepts more than it granted; grants never exceed what was taken and added;
 * the window never passes its maximum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mux_ext.h"
#include "core/core.h"

static void check_parse(const uint8_t *p, size_t n)
{
    struct vrev__mux_ext e;
    int rc = vrev__mux_ext_parse(p, n, &e);
    if (rc < 0 && (e.hello || e.window || e.flow || e.blocked || e.client))
        abort();
    if (rc == 0 && e.client) { /* an address re-encodes to the bytes that said it, or IPv6 */
        uint8_t b[VREV_MUX_EXT_MAX];
        struct vrev__mux_ext back;
        int len = vrev__mux_ext_client(b, sizeof(b), &e.client_src, &e.client_dst);
        if (len < 0 || vrev__mux_ext_parse(b, (size_t)len, &back) < 0 || !back.client ||
            !vrev__addr_equal(&back.client_src, &e.client_src) ||
            !vrev__addr_equal(&back.client_dst, &e.client_dst))
            abort();
    }
    if (rc == 0 && e.window && (e.window_inc == 0 || e.window_inc > VREV_MUX_EXT_WINDOW_MAX))
        abort();
}

static uint32_t amount(const uint8_t *p, size_t n, size_t at)
{
    uint8_t b[4] = {0};
    for (size_t i = 0; i < 4 && at + i < n; i++)
        b[i] = p[at + i];
    return vrev__get_u32(b);
}

static void run_flow(const uint8_t *p, size_t n)
{
    struct vrev__flow f;
    uint32_t window = 16384 + amount(p, n, 0) % (1u << 20);
    vrev__flow_init(&f, window, window, window + amount(p, n, 4) % (1u << 24));
    uint64_t granted = window, received = 0, consumed = 0, given = 0, grown = 0;
    for (size_t at = 8; at + 5 <= n; at += 5) {
        uint32_t a = amount(p, n, at + 1) % (1u << 21);
        switch (p[at] % 5) {
        case 0: /* bytes arrive */
            if (vrev__flow_received(&f, a) == 0)
                received += a;
            else if (received + a <= granted)
                abort(); /* refused although within what was granted */
            break;
        case 1: /* our reader takes bytes it has */
            a = (uint32_t)((received - consumed) < a ? received - consumed : a);
            vrev__flow_consumed(&f, a);
            consumed += a;
            break;
        case 2: { /* the peer says it is blocked */
            uint32_t before = f.window;
            vrev__flow_blocked(&f, (size_t)(received - consumed));
            grown += f.window - before;
            break;
        }
        case 3: /* we grant */
            for (uint32_t g; (g = vrev__flow_grant(&f)) > 0;) {
                granted += g;
                given += g;
            }
            break;
        default: /* credit for our own sending */
            vrev__flow_sent(&f, a);
            if (a)
                vrev__flow_granted(&f, a);
            break;
        }
        if (f.window > f.max_window || given > consumed + grown || received > granted)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t n = 0; n <= size && n <= 600; n++)
        check_parse(data, n);
    check_parse(data, size);
    run_flow(data, size);
    return 0;
}
