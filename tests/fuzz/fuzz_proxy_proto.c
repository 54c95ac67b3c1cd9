/* The PROXY protocol header parser (lib/codec/proxy_proto.c): the bytes a proxy in front of a
 * listener with acceptProxyProtocol sends first, or anyone who can reach that listener.
 *
 * Input: a header and what follows, parsed at every length up to the whole. Oracles beyond
 * the sanitizers: a prefix asks for more only with need past it and within
 * VREV_PP_PARSE_MAX; once a length is returned, every longer input returns the same length
 * and the same addresses (the glue consumes exactly that many bytes); an accepted address
 * re-encodes and parses back to itself, in both versions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/proxy_proto.h"
#include "core/core.h"

static void check_round_trip(const struct vrev__pp_header *h)
{
    for (int v = 1; v <= 2; v++) {
        uint8_t out[VREV_PP_V1_MAX];
        int n = vrev__pp_encode(out, sizeof(out), v, &h->src, &h->dst);
        struct vrev__pp_header back;
        size_t need;
        if (n <= 0 || vrev__pp_parse(out, (size_t)n, &back, &need) != n || !back.has_addr ||
            !vrev__addr_equal(&back.src, &h->src) || !vrev__addr_equal(&back.dst, &h->dst))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vrev__pp_header first;
    int len = 0;
    for (size_t n = 0; n <= size && n <= VREV_PP_PARSE_MAX + 8; n++) {
        uint8_t *p = malloc(n ? n : 1); /* exactly sized: an over-read trips ASan */
        if (!p)
            return 0;
        memcpy(p, data, n);
        struct vrev__pp_header h;
        size_t need = 0;
        int rc = vrev__pp_parse(p, n, &h, &need);
        free(p);
        if (rc < 0) {
            if (len > 0)
                abort(); /* a longer input undid an accepted header */
            return 0;
        }
        if (rc == 0) {
            if (len > 0 || need <= n || need > VREV_PP_PARSE_MAX)
                abort();
            continue;
        }
        if (len == 0) {
            len = rc;
            first = h;
            if (h.has_addr)
                check_round_trip(&h);
        } else if (rc != len || h.has_addr != first.has_addr ||
                   (h.has_addr && (!vrev__addr_equal(&h.src, &first.src) ||
                                   !vrev__addr_equal(&h.dst, &first.dst)))) {
            abort();
        }
    }
    return 0;
}
