/* F9: the reverse Control message decoder. Oracle: a message that decodes re-encodes (with
 * the same state and no random bytes) to something that decodes to the same state. */
#include <stdint.h>
#include <stdlib.h>

#include "vrev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int state = -1;
    int rc = vrev_control_decode(data, size, &state);
    if (rc < 0)
        return 0;
    if (state < 0)
        abort();
    uint8_t out[16];
    int n = vrev_control_encode(out, sizeof(out), state, NULL, 0);
    if (n < 0)
        abort();
    int again = -1;
    if (vrev_control_decode(out, (size_t)n, &again) < 0 || again != state)
        abort();
    return 0;
}
