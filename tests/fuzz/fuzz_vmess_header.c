/* F3: the VMess AEAD request header reader (server side), fixed users, injected clock, a
 * fresh replay filter per input.
 *
 * Input: byte 0 = flags. Bit 0 clear: bytes 1..8 are the clock (u64be Unix seconds) and the
 * rest is the connection's first bytes as sent (real captures replay this way). Bit 0 set:
 * bytes 1..4 are the auth-ID random bytes and byte 5 a signed clock skew; the harness makes a
 * valid auth ID for user 0 at 1700000000 + skew and the rest follows it. Bits 1..7 seed how
 * the input is split.
 *
 * In a -DVREV_FUZZING build (make fuzz) the GCM tags are not checked and the "ciphertext" is
 * the plaintext, so with bit 0 set the fuzzer drives the length and header parser directly.
 * The replay build of `make check` runs with real crypto.
 *
 * Oracles beyond the sanitizers: fed whole and fed in pieces, the reader gives the same
 * result, takes the same bytes (unless it failed) and decodes the same request; it never takes a
 * byte past the header; a success only ever yields what a 4.34 server accepts (security 3/4/5, a
 * known command, never 0x10, never 0x08 without 0x04, an address unless Mux); a replay of an
 * accepted header is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/vmess.h"
#include "vrev.h"

#define T0 1700000000

static const char *const uuids[2] = {"27848739-7e62-4138-9fd3-098a63964b6b",
                                     "b831381d-6324-4d53-ad4f-8cda48b30811"};

struct outcome {
    int rc;
    size_t used;
    struct vrev__vmess_request req;
};

static void run(vrev_ctx *ctx, const struct vrev__vmess_user *users, int64_t now, const uint8_t *p,
                size_t n, unsigned seed, struct outcome *o)
{
    struct vrev__vmess_replay *ids;
    if (vrev__vmess_replay_new(ctx, &ids, 8) < 0)
        abort();
    struct vrev__vmess_hdr_reader r;
    vrev__vmess_hdr_reader_init(&r, ctx, users, 2, ids, NULL);
    memset(o, 0, sizeof(*o));
    o->rc = 0;
    size_t off = 0;
    while (o->rc == 0 && off < n) {
        size_t k = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 61;
            if (piece < k)
                k = piece;
        }
        size_t used;
        o->rc = vrev__vmess_hdr_reader_feed(&r, now, p + off, k, &used, &o->req);
        if (used > k || (o->rc == 0 && used != k))
            abort();
        o->used += used;
        off += k;
    }
    if (o->rc == 1) {
        /* the same bytes again, to the same filter: a replay */
        struct vrev__vmess_hdr_reader again;
        struct vrev__vmess_request req2;
        size_t used;
        vrev__vmess_hdr_reader_init(&again, ctx, users, 2, ids, NULL);
        if (vrev__vmess_hdr_reader_feed(&again, now, p, o->used, &used, &req2) !=
            VREV_ERR_VMESS_REPLAY)
            abort();
    }
    vrev__vmess_hdr_reader_wipe(&r);
    vrev__vmess_replay_free(ids);
}

static void check_accepted(const struct vrev__vmess_request *q)
{
    bool sec_ok = q->security == 3 || q->security == 4 || q->security == 5;
    bool cmd_ok = q->command >= 1 && q->command <= 3;
    bool opt_ok = !(q->options & 0x10) && (!(q->options & 0x08) || (q->options & 0x04));
    bool addr_ok = q->command == VREV_VMESS_CMD_MUX ||
                   (q->target.type >= 1 && q->target.type <= 3 && q->target.len > 0);
    if (!sec_ok || !cmd_ok || !opt_ok || !addr_ok || q->padding_len > 15)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    vrev_ctx *ctx;
    struct vrev__vmess_user users[2];
    if (vrev_ctx_new(&ctx, NULL) < 0)
        abort();
    for (int i = 0; i < 2; i++) {
        uint8_t id[16];
        if (vrev__vmess_uuid_parse(uuids[i], 36, id) < 0 || vrev__vmess_user_init(&users[i], id))
            abort();
    }
    int64_t now = T0;
    uint8_t *in;
    size_t n;
    if (data[0] & 1) {
        n = 16 + (size - 6);
        in = malloc(n);
        if (!in || vrev__vmess_auth_id_create(&users[0], T0 + (int8_t)data[5], data + 1, in) < 0)
            abort();
        memcpy(in + 16, data + 6, size - 6);
    } else {
        uint64_t t = 0;
        for (int i = 1; i <= 8; i++)
            t = t << 8 | data[i];
        now = (int64_t)t;
        n = size - 9;
        in = malloc(n ? n : 1);
        if (!in)
            abort();
        memcpy(in, data + 9, n);
    }
    struct outcome whole, split;
    run(ctx, users, now, in, n, 0, &whole);
    run(ctx, users, now, in, n, data[0] >> 1 | 1u, &split);
    /* after an error the reader swallows whatever it is given, so only successes and
     * need-more have a comparable byte count */
    if (whole.rc != split.rc || (whole.rc >= 0 && whole.used != split.used))
        abort();
    if (whole.rc == 1) {
        if (whole.used > VREV_VMESS_REQUEST_MAX ||
            memcmp(&whole.req, &split.req, sizeof(whole.req)))
            abort();
        check_accepted(&whole.req);
    }
    free(in);
    vrev_ctx_free(ctx);
    return 0;
}
