/* VMess body chunks (WIRE-SPEC.md §4.8): one encoder or decoder per direction.
 *
 * The request direction uses the request body key/IV, the response direction the response
 * ones (vrev__vmess_response_keys). The framing depends on the security, the options and the
 * command of the request header:
 *
 *   security 3/4 (always chunked)  | u16 LenField | ciphertext + 16-byte tag | Pad bytes |
 *   none, ChunkStream, TCP/Mux     | u16 LenField | payload |                (no padding)
 *   none, ChunkStream, UDP         | u16 LenField | payload | Pad bytes |
 *   none without ChunkStream       raw bytes, end = transport EOF ("zero" in v4.35+)
 *
 * Encoder: payload in, framed bytes out (into a vrev__buf or a caller buffer). Decoder:
 * incremental, any split of the input, one plaintext chunk per call, then an end-of-stream
 * event. Errors are sticky: later calls return the same error.
 */
#ifndef VREV_CODEC_VMESS_BODY_H
#define VREV_CODEC_VMESS_BODY_H

#include "core/buf.h"
#include "vmess.h"

enum vrev__vmess_body_mode {
    VREV_VMESS_BODY_AEAD = 1,   /* security 3/4 */
    VREV_VMESS_BODY_STREAM = 2, /* none + ChunkStream, TCP/Mux */
    VREV_VMESS_BODY_PACKET = 3, /* none + ChunkStream, UDP */
    VREV_VMESS_BODY_RAW = 4,    /* none without ChunkStream */
};

/* Decoder results (>= 0). */
#define VREV_VMESS_BODY_MORE 0  /* all input taken, no chunk complete yet */
#define VREV_VMESS_BODY_CHUNK 1 /* one plaintext chunk is ready */
#define VREV_VMESS_BODY_EOF 2   /* the end-of-stream chunk was read */
#define VREV_VMESS_BODY_ROOM 3  /* _open_to: the next chunk needs more room in dst */

/* The most a chunk may carry (LenField is 16 bits). */
#define VREV_VMESS_BODY_CHUNK_MAX 65535
/* Framing around one chunk's payload at most: LenField, tag, padding < 64. */
#define VREV_VMESS_BODY_OVERHEAD_MAX (2 + 16 + 63)

struct vrev__vmess_body {
    vrev_ctx *ctx;
    struct vrev__aead *aead; /* AEAD mode only */
    struct vrev__shake128 shake;
    uint8_t nonce[12]; /* u16be count || iv[2:12] */
    uint16_t count;    /* wraps, as in V2Ray */
    uint8_t mode;
    bool packet; /* UDP: one datagram per chunk */
    bool masking;
    bool padding;
    size_t max_payload;
    vrev__vmess_rand_fn rand_fn;
    void *rand_user;
    size_t pool_left;
    uint8_t pool[256]; /* random padding bytes, drawn in batches */
    /* decoder */
    int state;
    int err;
    uint8_t len_buf[2];
    size_t len_have;
    size_t need;  /* bytes to gather into buf, or payload left in STREAM mode */
    size_t pad;   /* padding bytes of the current chunk still to skip */
    bool last;    /* the chunk being gathered is the end-of-stream chunk */
    uint8_t *buf; /* gathers a chunk split across inputs; allocated when first needed */
    size_t buf_cap;
    size_t have;
    bool room_mode; /* inside _open_to: AEAD plaintext goes to dst only */
    uint8_t *dst;   /* the current _open_to call's output room */
    size_t dst_cap;
};

/* Set up one direction for a request header's security, options and command, with that
 * direction's body key and IV. Returns 0, VREV_ERR_VMESS_SECURITY, VREV_ERR_VMESS_OPTIONS
 * (0x08 without 0x04, or 0x10), VREV_ERR_VMESS_COMMAND, VREV_ERR_NOMEM or VREV_ERR_CRYPTO.
 * On error nothing needs freeing; on success call vrev__vmess_body_cleanup(). */
int vrev__vmess_body_init(struct vrev__vmess_body *b, vrev_ctx *ctx, int security, int options,
                          int command, const uint8_t key[16], const uint8_t iv[16]);
void vrev__vmess_body_cleanup(struct vrev__vmess_body *b); /* wipes keys and buffers */

/* Where padding bytes come from (default: the OS generator). Tests pass a fixed source. */
void vrev__vmess_body_set_rand(struct vrev__vmess_body *b, vrev__vmess_rand_fn fn, void *user);

/* The largest payload one chunk carries. Defaults are V2Ray 4.34's writer limits (a 2048-byte
 * chunk for the AEAD and UDP modes: 1966 with GlobalPadding, 2030 without; 8192 for STREAM);
 * a stream may be given up to 65535 - overhead, which 4.34 readers accept. Datagrams (UDP)
 * stay at the default. Returns 0 or VREV_ERR_RANGE. */
size_t vrev__vmess_body_max_payload(const struct vrev__vmess_body *b);
int vrev__vmess_body_set_max_payload(struct vrev__vmess_body *b, size_t n);

/* Encode one chunk of n <= max_payload bytes (n = 0: the end-of-stream chunk) into out, which
 * needs n + VREV_VMESS_BODY_OVERHEAD_MAX bytes. RAW mode copies (and n = 0 writes nothing).
 * Returns the bytes written or VREV_ERR_RANGE, VREV_ERR_NOSPACE, VREV_ERR_CRYPTO, or the
 * random source's error. A failure leaves the stream unusable (nonce and SHAKE state moved). */
int vrev__vmess_body_seal_chunk(struct vrev__vmess_body *b, const uint8_t *p, size_t n,
                                uint8_t *out, size_t cap);

/* The same for a payload in pieces: the concatenation of v[0..nv). In AEAD mode the pieces
 * are sealed straight into out (the caller need not gather them first). */
int vrev__vmess_body_seal_chunk_iov(struct vrev__vmess_body *b, const struct vrev__iov *v,
                                    size_t nv, uint8_t *out, size_t cap);

/* Encode p[0..n) into as many chunks as needed (UDP: one datagram, one chunk, or
 * VREV_ERR_VMESS_PACKET_SIZE if it does not fit; nothing is written then). n = 0 writes
 * nothing; use _seal_eof to end the stream. Appends to out. Returns 0 or an error. */
int vrev__vmess_body_seal(struct vrev__vmess_body *b, const uint8_t *p, size_t n,
                          struct vrev__buf *out);
int vrev__vmess_body_seal_eof(struct vrev__vmess_body *b, struct vrev__buf *out);

/* Decode from p[0..n). *used gets the bytes taken. Returns
 *   VREV_VMESS_BODY_CHUNK  *out, *out_len hold one non-empty plaintext chunk, valid until the
 *                          next call (it points into the decoder, or into p in STREAM and RAW
 *                          modes, where a chunk's payload may come out in pieces);
 *   VREV_VMESS_BODY_MORE   everything was taken (*used = n); feed more;
 *   VREV_VMESS_BODY_EOF    the end-of-stream chunk was read (its tag checked; its padding is
 *                          not waited for); later calls take nothing and return EOF again;
 *   < 0                    VREV_ERR_VMESS_CHUNK_AUTH, VREV_ERR_VMESS_CHUNK_LEN,
 *                          VREV_ERR_NOMEM, VREV_ERR_CRYPTO (sticky; *used = n).
 * RAW mode never returns EOF: the end is the transport's. */
int vrev__vmess_body_open(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                          const uint8_t **out, size_t *out_len);

/* The same, but AEAD chunks are opened into the caller's dst[0..dst_cap) (then *out == dst),
 * straight from p when the chunk lies whole in p: its bytes are read once and written once,
 * and the decoder never holds a buffer of its own for them. When the next chunk's plaintext
 * does not fit, returns VREV_VMESS_BODY_ROOM with *out_len = the room it needs (*used says
 * what was taken; *out is NULL): call again with that much room. dst may be NULL (no room).
 * Other modes behave as in _open. */
int vrev__vmess_body_open_to(struct vrev__vmess_body *b, const uint8_t *p, size_t n, size_t *used,
                             uint8_t *dst, size_t dst_cap, const uint8_t **out, size_t *out_len);

#endif
