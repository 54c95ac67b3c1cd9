/* For gen-vmess.sh: print (hex) a whole VMess request made by libvrev's client codec, to be
 * sent to a real v2ray VMess inbound. Fixed keys so the test can decode v2ray's answer:
 * body IV 00..0f, body key 10..1f, V 0x5a, no header padding, auth-ID random 01020304,
 * connection nonce a0..a7, zero chunk padding. Target TCP 127.0.0.1:<port>.
 *
 *   vmess-mkreq UUID UNIX-TIME SECURITY PORT PAYLOAD-HEX
 *
 * Output: first flight || one body chunk with the payload || end-of-stream chunk.
 * Not part of the build (tests/vectors is not globbed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/vmess.h"
#include "codec/vmess_body.h"
#include "vrev.h"

static int zeros(void *user, uint8_t *out, size_t len)
{
    (void)user;
    memset(out, 0, len);
    return 0;
}

static int security_of(const char *s)
{
    if (!strcmp(s, "aes-128-gcm"))
        return VREV_VMESS_SEC_AES_128_GCM;
    if (!strcmp(s, "chacha20-poly1305"))
        return VREV_VMESS_SEC_CHACHA20_POLY1305;
    if (!strcmp(s, "none"))
        return VREV_VMESS_SEC_NONE;
    return -1;
}

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    if (n > cap)
        exit(2);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            exit(2);
        out[i] = (uint8_t)v;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    vrev_ctx *ctx;
    uint8_t uuid[16], payload[1024], out[VREV_VMESS_REQUEST_MAX];
    struct vrev__vmess_user u;
    struct vrev__vmess_request req;
    int sec = security_of(argv[3]);
    if (sec < 0 || vrev_ctx_new(&ctx, NULL) < 0 ||
        vrev__vmess_uuid_parse(argv[1], strlen(argv[1]), uuid) < 0 ||
        vrev__vmess_user_init(&u, uuid) < 0)
        return 1;
    size_t plen = unhex(argv[5], payload, sizeof(payload));
    memset(&req, 0, sizeof(req));
    req.version = 1;
    for (int i = 0; i < 16; i++) {
        req.body_iv[i] = (uint8_t)i;
        req.body_key[i] = (uint8_t)(16 + i);
    }
    req.resp_v = 0x5a;
    req.security = (uint8_t)sec;
    req.options = sec == VREV_VMESS_SEC_NONE ? VREV_VMESS_OPT_DEFAULT_NONE : VREV_VMESS_OPT_DEFAULT;
    req.command = VREV_VMESS_CMD_TCP;
    if (vrev__addr_from_text(&req.target, "127.0.0.1", (uint16_t)atoi(argv[4])) < 0)
        return 1;
    static const uint8_t rnd[4] = {1, 2, 3, 4};
    static const uint8_t nonce[8] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
    int n = vrev__vmess_request_seal(ctx, &u, strtoll(argv[2], NULL, 10), rnd, nonce, &req, out,
                                     sizeof(out));
    if (n < 0)
        return 1;
    struct vrev__vmess_body b;
    struct vrev__buf body = {0};
    if (vrev__vmess_body_init(&b, ctx, sec, req.options, req.command, req.body_key, req.body_iv) <
        0)
        return 1;
    vrev__vmess_body_set_rand(&b, zeros, NULL);
    if (vrev__vmess_body_seal(&b, payload, plen, &body) < 0 ||
        vrev__vmess_body_seal_eof(&b, &body) < 0)
        return 1;
    for (int i = 0; i < n; i++)
        printf("%02x", out[i]);
    for (size_t i = 0; i < vrev__buf_len(&body); i++)
        printf("%02x", body.data[body.start + i]);
    printf("\n");
    vrev__buf_free(ctx, &body);
    vrev__vmess_body_cleanup(&b);
    vrev_ctx_free(ctx);
    return 0;
}
