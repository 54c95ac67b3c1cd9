/* VMess AEAD (V2Ray 4.34 with alterId 0; WIRE-SPEC.md §4) as a sans-IO codec, both roles.
 *
 * One connection on the wire:
 *
 *   client -> server
 *   +-----------+---------------+--------------+----------------------+-----------------+
 *   | authID 16 | sealedLen 18  | connNonce 8  | sealedHeader L + 16  | request body... |
 *   +-----------+---------------+--------------+----------------------+-----------------+
 *   server -> client
 *   +---------------+-----------------------+------------------+
 *   | sealedLen 18  | sealedResp M + 16     | response body... |
 *   +---------------+-----------------------+------------------+
 *
 * The pieces, one file each:
 *   vmess_kdf.c       UUID text, cmdKey, the nested-HMAC KDF, response body key/IV
 *   vmess_auth.c      users, auth ID create/match (±120 s), legacy-envelope detection
 *   vmess_replay.c    bounded replay filter for auth IDs and (user, key, IV) triples
 *   vmess_header.c    request header plaintext, client seal, incremental server reader
 *   vmess_response.c  response header seal (server) and incremental reader (client)
 *   vmess_body.c      body chunk encoder/decoder per direction (vmess_body.h)
 *
 * Nothing here reads the clock, touches a socket or includes libevent: time is an argument
 * (Unix seconds), and randomness is either passed in as bytes or drawn through a
 * vrev__vmess_rand_fn, so tests are deterministic.
 *
 * Not supported, by design (DESIGN.md §5, RELIABILITY.md §2.1): the legacy non-AEAD envelope
 * (alterId > 0) and the LEGACY (aes-128-cfb) body; AuthenticatedLength (0x10, v4.41+, which a
 * 4.34 peer would misread). Both are refused with their own error codes.
 *
 * Thread safety: plain data and functions; an object belongs to one thread at a time.
 */
#ifndef VREV_CODEC_VMESS_H
#define VREV_CODEC_VMESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "crypto/crypto.h"

#define VREV_VMESS_UUID_LEN 16
#define VREV_VMESS_KEY_LEN 16
#define VREV_VMESS_AUTH_ID_LEN 16
#define VREV_VMESS_CONN_NONCE_LEN 8
/* A client's auth ID timestamp may differ from the server's clock by this much (4.34). */
#define VREV_VMESS_TIME_WINDOW 120

/* Request header plaintext: 38 fixed bytes, address, up to 15 padding bytes, FNV-1a. */
#define VREV_VMESS_HEADER_FIXED 38
#define VREV_VMESS_HEADER_MIN (VREV_VMESS_HEADER_FIXED + 4)
#define VREV_VMESS_HEADER_MAX (VREV_VMESS_HEADER_FIXED + 4 + VREV_ADDR_DOMAIN_MAX + 15 + 4)
/* authID || sealedLen || connNonce */
#define VREV_VMESS_REQUEST_PREFIX (VREV_VMESS_AUTH_ID_LEN + 2 + 16 + VREV_VMESS_CONN_NONCE_LEN)
/* The largest first flight a client sends (374 bytes). */
#define VREV_VMESS_REQUEST_MAX (VREV_VMESS_REQUEST_PREFIX + VREV_VMESS_HEADER_MAX + 16)
/* Response header as a 4.34 server sends it (no command): 18 + 4 + 16. */
#define VREV_VMESS_RESPONSE_LEN 38
/* Response plaintext: V, option, cmd, cmdLen, up to 255 bytes of command data. */
#define VREV_VMESS_RESPONSE_PLAIN_MAX (4 + 255)
#define VREV_VMESS_RESPONSE_MAX (18 + VREV_VMESS_RESPONSE_PLAIN_MAX + 16)

/* Security (low nibble of header byte 35). */
enum vrev__vmess_security {
    VREV_VMESS_SEC_UNKNOWN = 0, /* read as LEGACY by 4.34 */
    VREV_VMESS_SEC_LEGACY = 1,  /* aes-128-cfb, not supported */
    VREV_VMESS_SEC_AUTO = 2,    /* must be resolved before sending */
    VREV_VMESS_SEC_AES_128_GCM = 3,
    VREV_VMESS_SEC_CHACHA20_POLY1305 = 4,
    VREV_VMESS_SEC_NONE = 5,
};

/* Option bits (header byte 34). */
#define VREV_VMESS_OPT_CHUNK_STREAM 0x01
#define VREV_VMESS_OPT_CONN_REUSE 0x02 /* obsolete; ignored */
#define VREV_VMESS_OPT_CHUNK_MASKING 0x04
#define VREV_VMESS_OPT_GLOBAL_PADDING 0x08
#define VREV_VMESS_OPT_AUTH_LENGTH 0x10 /* v4.41+; refused */
/* What a 4.34 client sends for aes-128-gcm / chacha20-poly1305, and for none. */
#define VREV_VMESS_OPT_DEFAULT 0x0d
#define VREV_VMESS_OPT_DEFAULT_NONE 0x05

/* Command (header byte 37). Mux carries no address (destination v1.mux.cool:0). */
enum vrev__vmess_command {
    VREV_VMESS_CMD_TCP = 1,
    VREV_VMESS_CMD_UDP = 2,
    VREV_VMESS_CMD_MUX = 3,
};

/* Fill out[0..len) with random bytes; 0 or a negative VREV_ERR_*. NULL wherever a
 * vrev__vmess_rand_fn is accepted means the OS generator (vrev__random_bytes). */
typedef int (*vrev__vmess_rand_fn)(void *user, uint8_t *out, size_t len);

int vrev__vmess_random(vrev__vmess_rand_fn fn, void *user, uint8_t *out, size_t len);

/* --- vmess_kdf.c ------------------------------------------------------------------------- */

/* UUID text -> 16 bytes, strictly: either the canonical 36-character form
 * (8-4-4-4-12 hex digits with dashes) or 32 hex digits, any case, nothing else. (4.34 also
 * takes stray dashes and ignores anything after the 32nd digit; we refuse such text.)
 * Returns 0 or VREV_ERR_VMESS_UUID. */
int vrev__vmess_uuid_parse(const char *text, size_t len, uint8_t out[16]);

/* cmdKey = MD5(uuid || "c48619fe-8f02-49e0-b9e9-edf763e17e21"). 0 or VREV_ERR_CRYPTO. */
int vrev__vmess_cmd_key(const uint8_t uuid[16], uint8_t out[16]);

/* The nested-HMAC KDF (§4.2): KDF(key, p1..pn), n <= VREV_VMESS_KDF_PATH_MAX, 32 bytes out.
 * Each path element is one iov (a salt string, an auth ID, a nonce). 0, VREV_ERR_INVAL or
 * VREV_ERR_CRYPTO. */
#define VREV_VMESS_KDF_PATH_MAX 4
int vrev__vmess_kdf(const uint8_t *key, size_t key_len, const struct vrev__iov *path, size_t n,
                    uint8_t out[32]);
/* The first 16 bytes of vrev__vmess_kdf(). */
int vrev__vmess_kdf16(const uint8_t *key, size_t key_len, const struct vrev__iov *path, size_t n,
                      uint8_t out[16]);

/* An iov over a string literal, without its terminator. */
#define VREV_VMESS_SALT(s) ((struct vrev__iov){(s), sizeof(s) - 1})

/* Response body key and IV for an AEAD request: SHA-256(reqKey)[:16], SHA-256(reqIV)[:16]. */
int vrev__vmess_response_keys(const uint8_t req_key[16], const uint8_t req_iv[16],
                              uint8_t resp_key[16], uint8_t resp_iv[16]);

/* One AES-128-GCM seal or open with a fresh key (the header and response envelopes).
 * Open returns VREV_ERR_AUTH on a bad tag (buf is then garbage). In a -DVREV_FUZZING build
 * (make fuzz only) open does nothing and succeeds. */
int vrev__vmess_gcm_once(vrev_ctx *ctx, bool seal, const uint8_t key[16], const uint8_t nonce[12],
                         const uint8_t *aad, size_t aad_len, uint8_t *buf, size_t len,
                         uint8_t tag[16]);

/* --- vmess_auth.c ------------------------------------------------------------------------ */

struct vrev__vmess_user {
    uint8_t uuid[16];
    uint8_t cmd_key[16];
    uint8_t auth_key[16]; /* KDF16(cmdKey, "AES Auth ID Encryption") */
};

/* Derive cmdKey and the auth-ID key for uuid. 0 or VREV_ERR_CRYPTO. */
int vrev__vmess_user_init(struct vrev__vmess_user *u, const uint8_t uuid[16]);
void vrev__vmess_user_wipe(struct vrev__vmess_user *u);

/* authID = AES-128(auth_key, u64be(now) || rand4 || u32be CRC32(first 12 bytes)).
 * 0 or VREV_ERR_CRYPTO. */
int vrev__vmess_auth_id_create(const struct vrev__vmess_user *u, int64_t now,
                               const uint8_t rand4[4], uint8_t out[16]);

/* Find the user whose key opens `id` with a valid CRC and a timestamp t >= 0 within
 * now ± 120 s (both ends included). Every user is tried, whatever matches, so the time taken
 * does not reveal which one did. On success *user_idx gets the first matching user and *ts
 * the timestamp (either may be NULL). Returns 0, VREV_ERR_VMESS_AUTH or VREV_ERR_CRYPTO. The
 * replay check is separate (vrev__vmess_replay_check_add). */
int vrev__vmess_auth_id_match(const struct vrev__vmess_user *users, size_t n_users,
                              const uint8_t id[16], int64_t now, size_t *user_idx, int64_t *ts);

/* Alter ID k+1 from alter ID k (§4.1); only used to recognise legacy clients. */
int vrev__vmess_alter_id_next(const uint8_t in[16], uint8_t out[16]);

/* Does `id` look like a legacy (non-AEAD) auth, HMAC-MD5(id of a user, u64be(t)), for some
 * t in now ± 120 s and the primary id or one of its first `alter_ids` alter IDs? A diagnostic
 * for a clear error message only; it costs about 241 x (1 + alter_ids) HMAC-MD5 per user, so
 * callers should rate-limit it. Returns true if so. */
bool vrev__vmess_legacy_auth_match(const struct vrev__vmess_user *users, size_t n_users,
                                   const uint8_t id[16], int64_t now, unsigned alter_ids);

/* --- vmess_replay.c ---------------------------------------------------------------------- */

/* A replay filter with bounded memory. Every key added at time t is remembered at least until
 * t + 240 s (twice the ±120 s window: an auth ID dated now + 120 stays valid that long), in
 * three generations of 120 s each. At most `max_per_period` keys may be added per 120 s
 * generation; past that the filter fails closed: check_add refuses every new key with
 * VREV_ERR_VMESS_REPLAY_FULL until the generation rotates, and never forgets early.
 * Keys are 16 uniformly distributed bytes (auth IDs, or a hash of (user, key, IV)). */
struct vrev__vmess_replay;

#define VREV_VMESS_REPLAY_PERIOD 120
#define VREV_VMESS_REPLAY_DEFAULT_MAX 100000 /* handshakes per 120 s, as v2fly's filter */

/* Returns 0, VREV_ERR_INVAL (max_per_period 0 or above 2^28) or VREV_ERR_NOMEM. Memory grows
 * with use, to at most 3 x 64 x max_per_period bytes (12 MiB for the default). */
int vrev__vmess_replay_new(vrev_ctx *ctx, struct vrev__vmess_replay **out, size_t max_per_period);
void vrev__vmess_replay_free(struct vrev__vmess_replay *r); /* NULL ok */

/* Add key as seen at `now`. Returns 0 (new, now remembered), VREV_ERR_VMESS_REPLAY (seen
 * before), VREV_ERR_VMESS_REPLAY_FULL (fail closed) or VREV_ERR_NOMEM. A clock that moves
 * backwards only makes keys live longer. */
int vrev__vmess_replay_check_add(struct vrev__vmess_replay *r, const uint8_t key[16], int64_t now);

/* Keys currently remembered (all generations). */
size_t vrev__vmess_replay_count(const struct vrev__vmess_replay *r);

/* --- vmess_header.c ---------------------------------------------------------------------- */

/* The request header's fields (§4.5). */
struct vrev__vmess_request {
    uint8_t version; /* 1 */
    uint8_t body_iv[16];
    uint8_t body_key[16];
    uint8_t resp_v;      /* response authenticator, echoed by the server */
    uint8_t options;     /* VREV_VMESS_OPT_* */
    uint8_t security;    /* enum vrev__vmess_security */
    uint8_t command;     /* enum vrev__vmess_command */
    uint8_t padding_len; /* 0..15 */
    uint8_t padding[15];
    struct vrev__addr target; /* unused for VREV_VMESS_CMD_MUX */
};

/* Draw body IV, body key, V, a padding length in 0..15 and the padding. */
int vrev__vmess_request_randomize(struct vrev__vmess_request *req, vrev__vmess_rand_fn fn,
                                  void *user);

/* Check what a client may send to a 4.34 server: command, target, security 3/4/5, options
 * within 0x01|0x04|0x08 and never 0x08 without 0x04, padding <= 15. Returns 0,
 * VREV_ERR_VMESS_COMMAND, _ADDRESS, _SECURITY or _OPTIONS. */
int vrev__vmess_request_check(const struct vrev__vmess_request *req);

/* The header plaintext (FNV-1a included). Returns its length or VREV_ERR_NOSPACE,
 * VREV_ERR_VMESS_*. */
int vrev__vmess_request_encode(const struct vrev__vmess_request *req, uint8_t *out, size_t cap);

/* Client: the whole first flight (authID, sealed length, nonce, sealed header) for user u at
 * time `now`, with the auth-ID random bytes and connection nonce given. Returns its length
 * (at most VREV_VMESS_REQUEST_MAX) or VREV_ERR_NOSPACE, VREV_ERR_CRYPTO, VREV_ERR_VMESS_*. */
int vrev__vmess_request_seal(vrev_ctx *ctx, const struct vrev__vmess_user *u, int64_t now,
                             const uint8_t auth_rand[4], const uint8_t conn_nonce[8],
                             const struct vrev__vmess_request *req, uint8_t *out, size_t cap);

/* The same envelope around any plaintext (plain may be out + VREV_VMESS_REQUEST_PREFIX, else
 * it must not overlap out). For tests and fuzz seeds: nothing is checked. Returns the length
 * or VREV_ERR_RANGE, VREV_ERR_NOSPACE, VREV_ERR_CRYPTO. */
int vrev__vmess_request_seal_plain(vrev_ctx *ctx, const struct vrev__vmess_user *u, int64_t now,
                                   const uint8_t auth_rand[4], const uint8_t conn_nonce[8],
                                   const uint8_t *plain, size_t len, uint8_t *out, size_t cap);

/* Server: the request header reader, fed the connection's first bytes in any pieces.
 *
 * Anti-probing (RELIABILITY.md §2.1): every error it returns means "this is not a client of
 * ours, or a replay": the caller must keep reading and discarding input until its handshake
 * timeout, then close — never close early, never answer, never depend on how many bytes
 * arrived. The codes differ only for logs. After an error every further feed takes all input
 * and returns the same error. The reader never takes a byte past the header. */
struct vrev__vmess_hdr_reader {
    /* set by init */
    vrev_ctx *ctx;
    const struct vrev__vmess_user *users; /* borrowed; must outlive the reader */
    size_t n_users;
    struct vrev__vmess_replay *auth_ids; /* borrowed; required */
    struct vrev__vmess_replay *sessions; /* borrowed; (user, key, IV) history, NULL: none */
    /* optional, false/0 after init: on an auth failure, test whether the client speaks the
     * legacy envelope with its primary id or one of its first legacy_alter_ids alter IDs,
     * and say so (VREV_ERR_VMESS_LEGACY). Costly (vrev__vmess_legacy_auth_match). */
    bool detect_legacy;
    unsigned legacy_alter_ids;
    /* results, valid after success */
    size_t user;       /* index into users */
    int64_t timestamp; /* the auth ID's */
    /* state */
    int state;
    int err;
    size_t have; /* bytes gathered in buf */
    size_t need; /* bytes needed to make progress */
    uint8_t buf[VREV_VMESS_REQUEST_MAX];
};

void vrev__vmess_hdr_reader_init(struct vrev__vmess_hdr_reader *r, vrev_ctx *ctx,
                                 const struct vrev__vmess_user *users, size_t n_users,
                                 struct vrev__vmess_replay *auth_ids,
                                 struct vrev__vmess_replay *sessions);

/* Take bytes from p[0..n) at time `now`. Returns 1 when the header is complete (*req filled,
 * *used = bytes of p that belonged to it; the rest is request body), 0 when more is needed
 * (*used = n), or a negative error (*used = n): VREV_ERR_VMESS_AUTH, _REPLAY, _REPLAY_FULL,
 * _LEGACY, _HEADER_LEN, _CHECKSUM, _COMMAND, _ADDRESS, _SECURITY, _OPTIONS, VREV_ERR_NOMEM,
 * VREV_ERR_CRYPTO. After success, further calls take nothing and return 1. */
int vrev__vmess_hdr_reader_feed(struct vrev__vmess_hdr_reader *r, int64_t now, const uint8_t *p,
                                size_t n, size_t *used, struct vrev__vmess_request *req);

/* Wipe the gathered bytes (they hold the body key once decrypted). */
void vrev__vmess_hdr_reader_wipe(struct vrev__vmess_hdr_reader *r);

/* --- vmess_response.c -------------------------------------------------------------------- */

/* Server: the AEAD response header V 00 00 00 (no command), 38 bytes. Returns 38,
 * VREV_ERR_NOSPACE or VREV_ERR_CRYPTO. */
int vrev__vmess_response_seal(vrev_ctx *ctx, const uint8_t resp_key[16], const uint8_t resp_iv[16],
                              uint8_t v, uint8_t *out, size_t cap);

/* Client: the response header reader, fed in any pieces. A command from the server
 * (SwitchAccount) is checked for framing and otherwise ignored, as 4.34 clients do. */
struct vrev__vmess_resp_reader {
    vrev_ctx *ctx;
    uint8_t key[16];
    uint8_t iv[16];
    uint8_t v;
    int state;
    int err;
    size_t have;
    size_t need;
    uint8_t buf[VREV_VMESS_RESPONSE_MAX];
};

void vrev__vmess_resp_reader_init(struct vrev__vmess_resp_reader *r, vrev_ctx *ctx,
                                  const uint8_t resp_key[16], const uint8_t resp_iv[16], uint8_t v);

/* Returns 1 when the header is complete (*used = its bytes in p; the rest is response body),
 * 0 when more is needed (*used = n), or VREV_ERR_VMESS_RESPONSE / VREV_ERR_CRYPTO (sticky). */
int vrev__vmess_resp_reader_feed(struct vrev__vmess_resp_reader *r, const uint8_t *p, size_t n,
                                 size_t *used);

void vrev__vmess_resp_reader_wipe(struct vrev__vmess_resp_reader *r);

#endif
