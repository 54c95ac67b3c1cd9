/* F6: the port-first address decoder and the text parser. Oracles: decode -> encode ->
 * decode is a fixed point; a decoded address printed as text parses back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vrev__addr a, b, c;
    size_t used;
    if (vrev__addr_decode(data, size, &a, &used) == 0) {
        if (used > size)
            abort();
        uint8_t buf[3 + 1 + 255];
        int n = vrev__addr_encode(&a, buf, sizeof(buf));
        if (n < 0 || vrev__addr_decode(buf, (size_t)n, &b, &used) < 0 || used != (size_t)n ||
            !vrev__addr_equal(&a, &b))
            abort();
        char host[256];
        if (vrev__addr_host_text(&a, host, sizeof(host)) < 0)
            abort();
        if (vrev__addr_from_text(&c, host, a.port) < 0 || !vrev__addr_equal(&a, &c))
            abort();
    }
    /* The same bytes as a host name given as text. */
    char text[300];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    if (vrev__addr_from_text(&a, text, 80) == 0) {
        uint8_t buf[3 + 1 + 255];
        int len = vrev__addr_encode(&a, buf, sizeof(buf));
        if (len < 0 || vrev__addr_decode(buf, (size_t)len, &b, &used) < 0 ||
            !vrev__addr_equal(&a, &b))
            abort();
    }
    return 0;
}
