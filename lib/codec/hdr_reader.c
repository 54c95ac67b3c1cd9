/* Header reader (see hdr_reader.h). */
#include <string.h>

#include "core/core.h"
#include "hdr_reader.h"

void vrev__hdr_reader_reset(struct vrev__hdr_reader *r)
{
    vrev__wipe(r->buf, r->len);
    r->len = 0;
}

int vrev__hdr_reader_feed(struct vrev__hdr_reader *r, vrev__hdr_parse_fn parse, const void *arg,
                          void *msg, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    for (;;) {
        size_t need = 0;
        int rc = parse(r->buf, r->len, msg, &need, arg);
        if (rc != 0)
            return rc;
        if (need <= r->len || need > sizeof(r->buf))
            return VREV_ERR_STATE;
        size_t take = need - r->len;
        if (take > n - *used)
            take = n - *used;
        if (take == 0)
            return 0;
        memcpy(r->buf + r->len, p + *used, take);
        r->len += take;
        *used += take;
    }
}
