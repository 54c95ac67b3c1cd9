/* Mux.Cool frames: a stateless parser and header encoder (wire format in vrev/mux.h).
 * The parser is picohttpparser-shaped: it returns the frame length, "need more" (0, with the
 * total length needed so far) or an error, and never reads past p[n). */
#ifndef VREV_CODEC_MUX_FRAME_H
#define VREV_CODEC_MUX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct vrev_mux_frame {
    uint16_t sid;
    uint8_t status;
    uint8_t option;
    uint8_t network;          /* New only */
    struct vrev__addr target; /* New only */
    const uint8_t *ext;       /* metadata past the fields understood (NULL, 0: none): where */
    size_t ext_len;           /* the vrev extensions ride (lib/codec/mux_ext.h) */
    const uint8_t *data;      /* NULL unless option has DATA */
    size_t data_len;
    uint64_t offset; /* set by the stream decoder */
};

/* Parse one frame at p[0..n). Returns:
 *   > 0  the frame is complete and that many bytes long; *f describes it (f->data points
 *        into p);
 *   0    more bytes are needed: *need gets the total length needed to make progress (> n);
 *   < 0  VREV_ERR_MUX_META_LEN, _MUX_STATUS, _MUX_NETWORK, _MUX_NEW_SHORT, _ADDR_*:
 *        detected as soon as the metadata is complete, before the payload arrives. */
int vrev__mux_parse(const uint8_t *p, size_t n, struct vrev_mux_frame *f, size_t *need);

/* Like vrev__mux_parse(), but complete once the header is (metaLen .. dataLen): returns the
 * header length, with f->data_len the payload length that follows it and f->data NULL. */
int vrev__mux_parse_head(const uint8_t *p, size_t n, struct vrev_mux_frame *f, size_t *need);

/* Encode the header of a frame (metaLen .. dataLen). `target` is used for New frames only.
 * When `with_data` is set, the Data option and dataLen (data_len <= 65535) are written.
 * Returns the length, VREV_ERR_NOSPACE, VREV_ERR_RANGE or VREV_ERR_ADDR_TYPE. */
int vrev__mux_encode_header(uint8_t *out, size_t cap, uint16_t sid, uint8_t status, uint8_t option,
                            uint8_t network, const struct vrev__addr *target, int with_data,
                            size_t data_len);

/* The frame header a vrev__mux_frame_spec describes. */
struct vrev__mux_frame_spec {
    uint16_t sid;
    uint8_t status;
    uint8_t option;
    uint8_t network;                 /* New only */
    const struct vrev__addr *target; /* New only */
    const uint8_t *ext;              /* appended to the metadata (NULL: none) */
    size_t ext_len;
    int with_data;
    size_t data_len;
};

/* The spec of a frame without an extension block (vrev__mux_encode_header()'s arguments). */
static inline struct vrev__mux_frame_spec vrev__mux_spec(uint16_t sid, uint8_t status,
                                                         uint8_t option, uint8_t network,
                                                         const struct vrev__addr *target,
                                                         int with_data, size_t data_len)
{
    struct vrev__mux_frame_spec spec = {.sid = sid,
                                        .status = status,
                                        .option = option,
                                        .network = network,
                                        .target = target,
                                        .with_data = with_data,
                                        .data_len = data_len};
    return spec;
}

/* Like vrev__mux_encode_header(), with `ext` appended to the metadata (the tail V2Ray skips).
 * Also VREV_ERR_RANGE when the metadata would exceed VREV_MUX_META_MAX. */
int vrev__mux_encode_spec(uint8_t *out, size_t cap, const struct vrev__mux_frame_spec *spec);

#endif
