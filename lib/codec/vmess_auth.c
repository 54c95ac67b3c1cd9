/* VMess AEAD auth ID (WIRE-SPEC.md §4.3) and legacy-client recognition (§4.4).
 *
 *   plaintext P (16 bytes)                         authID = AES-128-ECB(authKey, P)
 *   +-------------------+-----------+-----------+  authKey = KDF16(cmdKey,
 *   | u64be unix time   | random 4  | u32be CRC |            "AES Auth ID Encryption")
 *   +-------------------+-----------+-----------+
 *    0                   8           12          CRC = CRC32-IEEE(P[0:12])
 *
 * A server accepts the first user whose key gives a matching CRC and a time t >= 0 with
 * |t - now| <= 120 s. The legacy envelope instead starts with HMAC-MD5(id, u64be(t)).
 */
#include <string.h>

#include "vmess.h"

#define LEGACY_ALTER_SALT "16167dc8-16b6-4e6d-b8bb-65dd68113a81"
#define LEGACY_ALTER_RETRY "533eff8a-4113-4b10-b5ce-0f5d76b98cd2"

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int vrev__vmess_user_init(struct vrev__vmess_user *u, const uint8_t uuid[16])
{
    memcpy(u->uuid, uuid, 16);
    int rc = vrev__vmess_cmd_key(uuid, u->cmd_key);
    if (rc == 0) {
        struct vrev__iov salt = VREV_VMESS_SALT("AES Auth ID Encryption");
        rc = vrev__vmess_kdf16(u->cmd_key, 16, &salt, 1, u->auth_key);
    }
    if (rc < 0)
        vrev__vmess_user_wipe(u);
    return rc;
}

void vrev__vmess_user_wipe(struct vrev__vmess_user *u)
{
    vrev__wipe(u, sizeof(*u));
}

int vrev__vmess_auth_id_create(const struct vrev__vmess_user *u, int64_t now,
                               const uint8_t rand4[4], uint8_t out[16])
{
    uint8_t p[16];
    put_u64(p, (uint64_t)now);
    memcpy(p + 8, rand4, 4);
    put_u32(p + 12, vrev__crc32(0, p, 12));
    int rc = vrev__aes128_encrypt_block(u->auth_key, p, out);
    vrev__wipe(p, sizeof(p));
    return rc;
}

/* |t - now| <= window, t >= 0, without overflow for any int64 now. */
static bool time_ok(int64_t t, int64_t now)
{
    if (t < 0)
        return false;
    int64_t d;
    if (__builtin_sub_overflow(t, now, &d))
        return false;
    return d >= -VREV_VMESS_TIME_WINDOW && d <= VREV_VMESS_TIME_WINDOW;
}

int vrev__vmess_auth_id_match(const struct vrev__vmess_user *users, size_t n_users,
                              const uint8_t id[16], int64_t now, size_t *user_idx, int64_t *ts)
{
    bool found = false;
    size_t which = 0;
    int64_t when = 0;
    for (size_t i = 0; i < n_users; i++) {
        uint8_t p[16], crc[4];
        int rc = vrev__aes128_decrypt_block(users[i].auth_key, id, p);
        if (rc < 0)
            return rc;
        put_u32(crc, vrev__crc32(0, p, 12));
        int64_t t = (int64_t)get_u64(p);
        if (!found && vrev__ct_equal(crc, p + 12, 4) && time_ok(t, now)) {
            found = true;
            which = i;
            when = t;
        }
        vrev__wipe(p, sizeof(p));
    }
    if (!found)
        return VREV_ERR_VMESS_AUTH;
    if (user_idx)
        *user_idx = which;
    if (ts)
        *ts = when;
    return 0;
}

int vrev__vmess_alter_id_next(const uint8_t in[16], uint8_t out[16])
{
    /* MD5 over a running context: digest(u || salt), and while that equals u, keep feeding
     * the retry salt into the same context. A one-shot MD5 of the growing concatenation is
     * the same thing. The loop practically never runs twice; cap it anyway. */
    struct vrev__iov v[8] = {{in, 16}, VREV_VMESS_SALT(LEGACY_ALTER_SALT)};
    size_t n = 2;
    for (;;) {
        int rc = vrev__md5(v, n, out);
        if (rc < 0 || memcmp(out, in, 16) != 0)
            return rc;
        if (n == sizeof(v) / sizeof(v[0]))
            return VREV_ERR_CRYPTO;
        v[n++] = VREV_VMESS_SALT(LEGACY_ALTER_RETRY);
    }
}

static bool legacy_id_match(const uint8_t uid[16], const uint8_t id[16], int64_t now)
{
    for (int64_t d = -VREV_VMESS_TIME_WINDOW; d <= VREV_VMESS_TIME_WINDOW; d++) {
        int64_t t;
        if (__builtin_add_overflow(now, d, &t) || t < 0)
            continue;
        uint8_t ts[8], mac[16];
        put_u64(ts, (uint64_t)t);
        struct vrev__iov v = {ts, 8};
        if (vrev__hmac_md5(uid, 16, &v, 1, mac) == 0 && vrev__ct_equal(mac, id, 16))
            return true;
    }
    return false;
}

bool vrev__vmess_legacy_auth_match(const struct vrev__vmess_user *users, size_t n_users,
                                   const uint8_t id[16], int64_t now, unsigned alter_ids)
{
    bool hit = false;
    for (size_t i = 0; i < n_users && !hit; i++) {
        uint8_t cur[16], next[16];
        memcpy(cur, users[i].uuid, 16);
        for (unsigned k = 0; k <= alter_ids && !hit; k++) {
            if (k > 0) {
                if (vrev__vmess_alter_id_next(cur, next) < 0)
                    break;
                memcpy(cur, next, 16);
            }
            hit = legacy_id_match(cur, id, now);
        }
        vrev__wipe(cur, sizeof(cur));
        vrev__wipe(next, sizeof(next));
    }
    return hit;
}
