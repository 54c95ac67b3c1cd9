/* Mux.Cool frame parsing and header encoding.
 *
 *   off  size  field
 *   0    2     metaLen (4..512, counts the bytes after itself)
 *   2    2     session id
 *   4    1     status   1 New, 2 Keep, 3 End, 4 KeepAlive
 *   5    1     option   0x01 Data, 0x02 Error
 *   6    1     network  1 TCP, 2 UDP                      } New only
 *   7    3+    port-first address (see addr.h)            }
 *   ...        the rest of the metadata: ignored by V2Ray; vrev's extensions (mux_ext.h)
 *   2+metaLen  2  dataLen, then dataLen bytes              (only if option & Data)
 */
#include <string.h>

#include "core/core.h"
#include "mux_frame.h"

static int parse_meta(const uint8_t *meta, size_t mlen, struct vrev_mux_frame *f)
{
    f->sid = vrev__get_u16(meta);
    f->status = meta[2];
    f->option = meta[3];
    f->network = 0;
    memset(&f->target, 0, sizeof(f->target));
    f->ext = mlen > 4 ? meta + 4 : NULL;
    f->ext_len = mlen - 4;
    switch (f->status) {
    case VREV_MUX_KEEP:
    case VREV_MUX_END:
    case VREV_MUX_KEEPALIVE:
        return 0; /* bytes past the first 4 are not V2Ray's: ext */
    case VREV_MUX_NEW:
        break;
    default:
        return VREV_ERR_MUX_STATUS;
    }
    if (mlen < 8)
        return VREV_ERR_MUX_NEW_SHORT;
    f->network = meta[4];
    if (f->network != VREV_NET_TCP && f->network != VREV_NET_UDP)
        return VREV_ERR_MUX_NETWORK;
    size_t used;
    int rc = vrev__addr_decode(meta + 5, mlen - 5, &f->target, &used);
    if (rc == VREV_ERR_ADDR_TRUNCATED)
        return VREV_ERR_MUX_NEW_SHORT;
    if (rc < 0) /* `used` says nothing then */
        return rc;
    f->ext_len = mlen - 5 - used;
    f->ext = f->ext_len ? meta + 5 + used : NULL;
    return 0;
}

int vrev__mux_parse_head(const uint8_t *p, size_t n, struct vrev_mux_frame *f, size_t *need)
{
    if (n < 2) {
        *need = 2;
        return 0;
    }
    size_t mlen = vrev__get_u16(p);
    if (mlen < VREV_MUX_META_MIN || mlen > VREV_MUX_META_MAX)
        return VREV_ERR_MUX_META_LEN;
    size_t total = 2 + mlen;
    if (n < total) {
        *need = total;
        return 0;
    }
    int rc = parse_meta(p + 2, mlen, f);
    if (rc < 0)
        return rc;
    f->data = NULL;
    f->data_len = 0;
    if (f->option & VREV_MUX_OPT_DATA) {
        if (n < total + 2) {
            *need = total + 2;
            return 0;
        }
        f->data_len = vrev__get_u16(p + total);
        total += 2;
    }
    return (int)total;
}

int vrev__mux_parse(const uint8_t *p, size_t n, struct vrev_mux_frame *f, size_t *need)
{
    int head = vrev__mux_parse_head(p, n, f, need);
    if (head <= 0)
        return head;
    size_t total = (size_t)head + f->data_len;
    if (n < total) {
        *need = total;
        return 0;
    }
    if (f->option & VREV_MUX_OPT_DATA)
        f->data = p + head;
    return (int)total;
}

int vrev__mux_encode_spec(uint8_t *out, size_t cap, const struct vrev__mux_frame_spec *spec)
{
    size_t mlen = 4;
    if (spec->status == VREV_MUX_NEW)
        mlen += 1 + vrev__addr_encoded_len(spec->target);
    size_t head = 2 + mlen;
    mlen += spec->ext_len;
    size_t total = 2 + mlen + (spec->with_data ? 2 : 0);
    if ((spec->with_data && spec->data_len > 0xffff) || mlen > VREV_MUX_META_MAX)
        return VREV_ERR_RANGE;
    if (cap < total)
        return VREV_ERR_NOSPACE;
    uint8_t option = spec->with_data ? (uint8_t)(spec->option | VREV_MUX_OPT_DATA)
                                     : (uint8_t)(spec->option & ~VREV_MUX_OPT_DATA);
    vrev__put_u16(out, (uint16_t)mlen);
    vrev__put_u16(out + 2, spec->sid);
    out[4] = spec->status;
    out[5] = option;
    if (spec->status == VREV_MUX_NEW) {
        out[6] = spec->network;
        int rc = vrev__addr_encode(spec->target, out + 7, cap - 7);
        if (rc < 0)
            return rc;
    }
    if (spec->ext_len)
        memcpy(out + head, spec->ext, spec->ext_len);
    if (spec->with_data)
        vrev__put_u16(out + 2 + mlen, (uint16_t)spec->data_len);
    return (int)total;
}

int vrev__mux_encode_header(uint8_t *out, size_t cap, uint16_t sid, uint8_t status, uint8_t option,
                            uint8_t network, const struct vrev__addr *target, int with_data,
                            size_t data_len)
{
    struct vrev__mux_frame_spec spec =
        vrev__mux_spec(sid, status, option, network, target, with_data, data_len);
    return vrev__mux_encode_spec(out, cap, &spec);
}
