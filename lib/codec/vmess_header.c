/* VMess AEAD request header (WIRE-SPEC.md §4.3, §4.5), client seal and server reader.
 *
 *   first flight                              header plaintext (L bytes)
 *   off  size  field                          off  size  field
 *   0    16    authID (vmess_auth.c)          0    1     version 0x01
 *   16   18    GCM(u16be L), AAD authID       1    16    body IV   (IV before key)
 *   34   8     connNonce                      17   16    body key
 *   42   L+16  GCM(header), AAD authID        33   1     response authenticator V
 *                                             34   1     options
 *   keys/nonces: KDF(cmdKey, salt, authID,    35   1     padding P << 4 | security
 *   connNonce), salts "VMess Header AEAD      36   1     reserved 0
 *   Key_Length" / "..Nonce_Length" (length)   37   1     command 1 TCP, 2 UDP, 3 Mux
 *   and "VMess Header AEAD Key" / "..Nonce"   38   var   port-first address (not for Mux)
 *   (header); nonce = KDF[0:12]               ..   P     padding
 *                                             ..   4     u32be FNV-1a of all bytes before
 *
 * The server reader follows the order of a 4.34 server: auth ID (user + ±120 s), replay
 * filter, length, header, then the (user, key, IV) session history. Unlike 4.34 it refuses
 * GlobalPadding without ChunkMasking (which panics a 4.34 server), AuthenticatedLength, the
 * LEGACY/UNKNOWN securities and bytes after the checksum.
 */
#include <string.h>

#include "hdr_reader.h"
#include "vmess.h"

enum { ST_AUTH_ID, ST_LENGTH, ST_HEADER, ST_DONE, ST_FAILED };

#define OPT_KNOWN                                                                                  \
    (VREV_VMESS_OPT_CHUNK_STREAM | VREV_VMESS_OPT_CHUNK_MASKING | VREV_VMESS_OPT_GLOBAL_PADDING)

/* Seal or open one part of the envelope: the length (length_part) or the header. */
static int envelope_aead(vrev_ctx *ctx, bool seal, bool length_part, const uint8_t cmd_key[16],
                         const uint8_t auth_id[16], const uint8_t nonce[8], uint8_t *buf,
                         size_t len, uint8_t *tag)
{
    struct vrev__iov path[3] = {
        length_part ? VREV_VMESS_SALT("VMess Header AEAD Key_Length")
                    : VREV_VMESS_SALT("VMess Header AEAD Key"),
        {auth_id, VREV_VMESS_AUTH_ID_LEN},
        {nonce, VREV_VMESS_CONN_NONCE_LEN},
    };
    uint8_t key[16], iv[32];
    int rc = vrev__vmess_kdf16(cmd_key, 16, path, 3, key);
    path[0] = length_part ? VREV_VMESS_SALT("VMess Header AEAD Nonce_Length")
                          : VREV_VMESS_SALT("VMess Header AEAD Nonce");
    if (rc == 0)
        rc = vrev__vmess_kdf(cmd_key, 16, path, 3, iv);
    if (rc == 0)
        rc = vrev__vmess_gcm_once(ctx, seal, key, iv, auth_id, VREV_VMESS_AUTH_ID_LEN, buf, len,
                                  tag);
    vrev__wipe(key, sizeof(key));
    vrev__wipe(iv, sizeof(iv));
    return rc;
}

/* --- plaintext ------------------------------------------------------------------------------ */

static bool security_ok(unsigned sec)
{
    return sec == VREV_VMESS_SEC_AES_128_GCM || sec == VREV_VMESS_SEC_CHACHA20_POLY1305 ||
           sec == VREV_VMESS_SEC_NONE;
}

static bool target_ok(const struct vrev__addr *a)
{
    switch (a->type) {
    case VREV_ADDR_IPV4:
        return a->len == 4;
    case VREV_ADDR_IPV6:
        return a->len == 16;
    case VREV_ADDR_DOMAIN:
        return a->len > 0; /* an empty domain crashes a 4.34 peer */
    default:
        return false;
    }
}

int vrev__vmess_request_check(const struct vrev__vmess_request *req)
{
    if (req->command != VREV_VMESS_CMD_TCP && req->command != VREV_VMESS_CMD_UDP &&
        req->command != VREV_VMESS_CMD_MUX)
        return VREV_ERR_VMESS_COMMAND;
    if (req->command != VREV_VMESS_CMD_MUX && !target_ok(&req->target))
        return VREV_ERR_VMESS_ADDRESS;
    if (!security_ok(req->security))
        return VREV_ERR_VMESS_SECURITY;
    /* 0x08 without 0x04 makes a 4.34 server panic and exit; 0x10 is misread by it. */
    if ((req->options & ~OPT_KNOWN) || ((req->options & VREV_VMESS_OPT_GLOBAL_PADDING) &&
                                        !(req->options & VREV_VMESS_OPT_CHUNK_MASKING)))
        return VREV_ERR_VMESS_OPTIONS;
    if (req->padding_len > sizeof(req->padding))
        return VREV_ERR_RANGE;
    return 0;
}

int vrev__vmess_request_encode(const struct vrev__vmess_request *req, uint8_t *out, size_t cap)
{
    int rc = vrev__vmess_request_check(req);
    if (rc < 0)
        return rc;
    size_t alen = req->command == VREV_VMESS_CMD_MUX ? 0 : vrev__addr_encoded_len(&req->target);
    size_t len = VREV_VMESS_HEADER_FIXED + alen + req->padding_len + 4;
    if (cap < len)
        return VREV_ERR_NOSPACE;
    out[0] = req->version;
    memcpy(out + 1, req->body_iv, 16);
    memcpy(out + 17, req->body_key, 16);
    out[33] = req->resp_v;
    out[34] = req->options;
    out[35] = (uint8_t)(req->padding_len << 4 | req->security);
    out[36] = 0;
    out[37] = req->command;
    size_t off = VREV_VMESS_HEADER_FIXED;
    if (alen) {
        rc = vrev__addr_encode(&req->target, out + off, cap - off);
        if (rc < 0)
            return rc == VREV_ERR_NOSPACE ? rc : VREV_ERR_VMESS_ADDRESS;
        off += alen;
    }
    memcpy(out + off, req->padding, req->padding_len);
    off += req->padding_len;
    vrev__put_u32(out + off, vrev__fnv1a32(out, off));
    return (int)(off + 4);
}

/* Parse a decrypted header of exactly len bytes. */
static int parse_plain(const uint8_t *h, size_t len, struct vrev__vmess_request *req)
{
    memset(req, 0, sizeof(*req));
    req->version = h[0];
    memcpy(req->body_iv, h + 1, 16);
    memcpy(req->body_key, h + 17, 16);
    req->resp_v = h[33];
    req->options = h[34];
    req->padding_len = h[35] >> 4;
    req->security = h[35] & 0x0f;
    req->command = h[37];
    size_t off = VREV_VMESS_HEADER_FIXED, used = 0;
    if (req->command == VREV_VMESS_CMD_TCP || req->command == VREV_VMESS_CMD_UDP) {
        int rc = vrev__addr_decode(h + off, len - off, &req->target, &used);
        if (rc == VREV_ERR_ADDR_TRUNCATED)
            return VREV_ERR_VMESS_HEADER_LEN;
        if (rc < 0)
            return VREV_ERR_VMESS_ADDRESS;
    } else if (req->command != VREV_VMESS_CMD_MUX) {
        return VREV_ERR_VMESS_COMMAND;
    }
    off += used;
    if (off + req->padding_len + 4 != len)
        return VREV_ERR_VMESS_HEADER_LEN;
    memcpy(req->padding, h + off, req->padding_len);
    off += req->padding_len;
    if (vrev__fnv1a32(h, off) != vrev__get_u32(h + off))
        return VREV_ERR_VMESS_CHECKSUM;
    if ((req->options & VREV_VMESS_OPT_AUTH_LENGTH) ||
        ((req->options & VREV_VMESS_OPT_GLOBAL_PADDING) &&
         !(req->options & VREV_VMESS_OPT_CHUNK_MASKING)))
        return VREV_ERR_VMESS_OPTIONS;
    if (!security_ok(req->security))
        return VREV_ERR_VMESS_SECURITY;
    return 0;
}

int vrev__vmess_request_randomize(struct vrev__vmess_request *req, vrev__vmess_rand_fn fn,
                                  void *user)
{
    uint8_t r[34];
    int rc = vrev__vmess_random(fn, user, r, sizeof(r));
    if (rc == 0) {
        memcpy(req->body_iv, r, 16);
        memcpy(req->body_key, r + 16, 16);
        req->resp_v = r[32];
        req->padding_len = r[33] & 0x0f;
        rc = vrev__vmess_random(fn, user, req->padding, req->padding_len);
    }
    vrev__wipe(r, sizeof(r));
    return rc;
}

/* --- client --------------------------------------------------------------------------------- */

int vrev__vmess_request_seal_plain(vrev_ctx *ctx, const struct vrev__vmess_user *u, int64_t now,
                                   const uint8_t auth_rand[4], const uint8_t conn_nonce[8],
                                   const uint8_t *plain, size_t len, uint8_t *out, size_t cap)
{
    const size_t pre = VREV_VMESS_REQUEST_PREFIX;
    if (len > 0xffff)
        return VREV_ERR_RANGE;
    if (cap < pre + len + 16)
        return VREV_ERR_NOSPACE;
    if (out + pre != plain)
        memmove(out + pre, plain, len);
    int rc = vrev__vmess_auth_id_create(u, now, auth_rand, out);
    memcpy(out + 34, conn_nonce, VREV_VMESS_CONN_NONCE_LEN);
    vrev__put_u16(out + 16, (uint16_t)len);
    if (rc == 0)
        rc = envelope_aead(ctx, true, true, u->cmd_key, out, conn_nonce, out + 16, 2, out + 18);
    if (rc == 0)
        rc = envelope_aead(ctx, true, false, u->cmd_key, out, conn_nonce, out + pre, len,
                           out + pre + len);
    if (rc < 0) {
        vrev__wipe(out, pre + len + 16);
        return rc;
    }
    return (int)(pre + len + 16);
}

int vrev__vmess_request_seal(vrev_ctx *ctx, const struct vrev__vmess_user *u, int64_t now,
                             const uint8_t auth_rand[4], const uint8_t conn_nonce[8],
                             const struct vrev__vmess_request *req, uint8_t *out, size_t cap)
{
    const size_t pre = VREV_VMESS_REQUEST_PREFIX;
    if (cap < pre + 16)
        return VREV_ERR_NOSPACE;
    int len = vrev__vmess_request_encode(req, out + pre, cap - pre - 16);
    if (len < 0)
        return len;
    return vrev__vmess_request_seal_plain(ctx, u, now, auth_rand, conn_nonce, out + pre,
                                          (size_t)len, out, cap);
}

/* --- server --------------------------------------------------------------------------------- */

void vrev__vmess_hdr_reader_init(struct vrev__vmess_hdr_reader *r, vrev_ctx *ctx,
                                 const struct vrev__vmess_user *users, size_t n_users,
                                 struct vrev__vmess_replay *auth_ids,
                                 struct vrev__vmess_replay *sessions)
{
    memset(r, 0, sizeof(*r));
    r->ctx = ctx;
    r->users = users;
    r->n_users = n_users;
    r->auth_ids = auth_ids;
    r->sessions = sessions;
    r->state = ST_AUTH_ID;
    r->need = VREV_VMESS_AUTH_ID_LEN;
}

static int step_auth_id(struct vrev__vmess_hdr_reader *r, int64_t now)
{
    int rc = vrev__vmess_auth_id_match(r->users, r->n_users, r->buf, now, &r->user, &r->timestamp);
    if (rc == VREV_ERR_VMESS_AUTH && r->detect_legacy &&
        vrev__vmess_legacy_auth_match(r->users, r->n_users, r->buf, now, r->legacy_alter_ids))
        rc = VREV_ERR_VMESS_LEGACY;
    if (rc == 0)
        rc = r->auth_ids ? vrev__vmess_replay_check_add(r->auth_ids, r->buf, now) : VREV_ERR_INVAL;
    r->state = ST_LENGTH;
    r->need = VREV_VMESS_REQUEST_PREFIX;
    return rc;
}

static int step_length(struct vrev__vmess_hdr_reader *r)
{
    const uint8_t *cmd_key = r->users[r->user].cmd_key;
    int rc = envelope_aead(r->ctx, false, true, cmd_key, r->buf, r->buf + 34, r->buf + 16, 2,
                           r->buf + 18);
    if (rc == VREV_ERR_AUTH)
        return VREV_ERR_VMESS_AUTH;
    if (rc < 0)
        return rc;
    size_t len = vrev__get_u16(r->buf + 16);
    if (len < VREV_VMESS_HEADER_MIN || len > VREV_VMESS_HEADER_MAX)
        return VREV_ERR_VMESS_HEADER_LEN;
    r->state = ST_HEADER;
    r->need = VREV_VMESS_REQUEST_PREFIX + len + 16;
    return 0;
}

/* The session history keeps a digest, not the body key and IV themselves. */
static int check_session(struct vrev__vmess_hdr_reader *r, const struct vrev__vmess_request *req,
                         int64_t now)
{
    if (!r->sessions)
        return 0;
    struct vrev__iov v[3] = {{r->users[r->user].uuid, 16}, {req->body_key, 16}, {req->body_iv, 16}};
    uint8_t d[32];
    int rc = vrev__sha256(v, 3, d);
    if (rc == 0)
        rc = vrev__vmess_replay_check_add(r->sessions, d, now);
    vrev__wipe(d, sizeof(d));
    return rc;
}

static int step_header(struct vrev__vmess_hdr_reader *r, int64_t now,
                       struct vrev__vmess_request *req)
{
    const uint8_t *cmd_key = r->users[r->user].cmd_key;
    size_t len = r->need - VREV_VMESS_REQUEST_PREFIX - 16;
    uint8_t *h = r->buf + VREV_VMESS_REQUEST_PREFIX;
    int rc = envelope_aead(r->ctx, false, false, cmd_key, r->buf, r->buf + 34, h, len, h + len);
    if (rc == VREV_ERR_AUTH)
        return VREV_ERR_VMESS_AUTH;
    if (rc == 0)
        rc = parse_plain(h, len, req);
    if (rc == 0)
        rc = check_session(r, req, now);
    if (rc < 0) {
        vrev__wipe(req, sizeof(*req));
        return rc;
    }
    vrev__wipe(h, len);
    r->state = ST_DONE;
    return 0;
}

static int step(struct vrev__vmess_hdr_reader *r, int64_t now, struct vrev__vmess_request *req)
{
    switch (r->state) {
    case ST_AUTH_ID:
        return step_auth_id(r, now);
    case ST_LENGTH:
        return step_length(r);
    case ST_HEADER:
        return step_header(r, now, req);
    default:
        return VREV_ERR_STATE;
    }
}

int vrev__vmess_hdr_reader_feed(struct vrev__vmess_hdr_reader *r, int64_t now, const uint8_t *p,
                                size_t n, size_t *used, struct vrev__vmess_request *req)
{
    *used = 0;
    if (r->state == ST_DONE)
        return 1;
    size_t taken = 0;
    while (r->state != ST_FAILED) {
        if (!vrev__hdr_gather(r->buf, &r->have, r->need, p, n, &taken)) {
            *used = n;
            return 0;
        }
        int rc = step(r, now, req);
        if (rc < 0) {
            vrev__vmess_hdr_reader_wipe(r);
            r->state = ST_FAILED;
            r->err = rc;
        } else if (r->state == ST_DONE) {
            *used = taken;
            return 1;
        }
    }
    *used = n; /* after a failure everything is drained */
    return r->err;
}

void vrev__vmess_hdr_reader_wipe(struct vrev__vmess_hdr_reader *r)
{
    vrev__wipe(r->buf, sizeof(r->buf));
}
