/* Header reader: gathers a protocol header that arrives split across reads, for the stateless
 * parsers of vless.h and socks5.h.
 *
 * Those parsers are picohttpparser-shaped: given p[0..n) they return the header length (> 0),
 * 0 with *need = the total length needed to make progress (> n), or a negative VREV_ERR_*,
 * and never read past p[n). The reader copies exactly up to *need each time, so it never takes
 * a byte past the end of the header: what follows stays with the caller as payload.
 *
 *   struct vrev__hdr_reader
 *   +--------+------------------------------------------------+
 *   | len    | buf[0..len): header bytes gathered so far       |
 *   +--------+------------------------------------------------+
 *
 * Headers are small and bounded (the largest, a VLESS request, is 533 bytes), so the buffer
 * is fixed and the reader never allocates. Parsed messages point into buf: they stay valid
 * until the reader is reset or freed. Not thread-safe; one reader per connection direction.
 */
#ifndef VREV_CODEC_HDR_READER_H
#define VREV_CODEC_HDR_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VREV_HDR_READER_MAX 544

/* A stateless parser: msg receives the parsed header, arg is parser-specific (may be NULL). */
typedef int (*vrev__hdr_parse_fn)(const uint8_t *p, size_t n, void *msg, size_t *need,
                                  const void *arg);

struct vrev__hdr_reader {
    size_t len;
    uint8_t buf[VREV_HDR_READER_MAX];
};

/* The parsers' "need more" return: store the total length needed and return 0. */
static inline int vrev__need_more(size_t *need, size_t total)
{
    *need = total;
    return 0;
}

/* For readers that gather a header in steps of known size (the VMess request and response):
 * copy from p[*taken..n) into buf[*have..need), advancing *have and *taken. true once buf
 * holds the `need` bytes. */
static inline bool vrev__hdr_gather(uint8_t *buf, size_t *have, size_t need, const uint8_t *p,
                                    size_t n, size_t *taken)
{
    size_t k = need - *have;
    if (k > n - *taken)
        k = n - *taken;
    if (k)
        memcpy(buf + *have, p + *taken, k);
    *have += k;
    *taken += k;
    return *have >= need;
}

/* The start of a header led by a version byte, for the parsers: 1 once p[0] is `version` and
 * p[1] is there too, 0 with *need set, or `bad` (a negative VREV_ERR_*) for another version. */
static inline int vrev__hdr_version(const uint8_t *p, size_t n, uint8_t version, int bad,
                                    size_t *need)
{
    if (n < 1)
        return vrev__need_more(need, 1);
    if (p[0] != version)
        return bad;
    if (n < 2)
        return vrev__need_more(need, 2);
    return 1;
}

static inline void vrev__hdr_reader_init(struct vrev__hdr_reader *r)
{
    r->len = 0;
}

/* Forget the gathered bytes, wiping them (a header may carry a password). */
void vrev__hdr_reader_reset(struct vrev__hdr_reader *r);

/* Take bytes from p[0..n) until `parse` accepts or rejects the header. *used gets the bytes
 * taken from p (all of them while more are needed; on success the rest of p is payload).
 * Returns the header length (> 0) once complete (again on later calls, taking nothing), 0 if
 * more bytes are needed, or the parser's negative error. VREV_ERR_STATE if a parser asks for
 * more than VREV_HDR_READER_MAX bytes (a bug, not an input error). */
int vrev__hdr_reader_feed(struct vrev__hdr_reader *r, vrev__hdr_parse_fn parse, const void *arg,
                          void *msg, const uint8_t *p, size_t n, size_t *used);

#endif
