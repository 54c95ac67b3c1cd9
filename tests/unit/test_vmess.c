/* lib/codec/vmess_{kdf,auth,header}: VMess AEAD request against the WIRE-SPEC §10.2-10.4
 * vectors byte for byte, every input split, every 1-bit flip, replay and clock-skew
 * boundaries and the server's refusals. Elsewhere: response header (test_vmess_response.c),
 * replay filter (test_vmess_replay.c), body chunks (test_vmess_body.c), real-peer captures
 * (test_vmess_peer.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/vmess.h"
#include "testutil.h"
#include "vrev.h"

#define UUID_TEXT "27848739-7e62-4138-9fd3-098a63964b6b"
#define T0 1700000000

static const char first_flight_hex[] =
    "6868c12572a3ce177baac5f08cc54ec34fc263ae40ba9307a4408b540625876e4097a0a1a2a3a4a5a6a7"
    "cc17d05e6998c430cb3239bb14b6b7efdfe28993f18530c61f2c862463f8b582221bdd586ee7a3598dcce8afac2e"
    "f06cb186e3d2cea66c994090ff03a7d1aefe24d7f9296dce30fa33ea1668";
static const uint8_t auth_rand[4] = {1, 2, 3, 4};
static const uint8_t conn_nonce[8] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};

struct fixture {
    vrev_ctx *ctx;
    struct vrev__vmess_user user;
    struct vrev__vmess_replay *auth_ids;
    struct vrev__vmess_replay *sessions;
};

static void expect_hex(const uint8_t *got, size_t len, const char *hex)
{
    size_t n;
    uint8_t *want = tu_hex(hex, &n);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    free(want);
}

static void user_from_text(struct vrev__vmess_user *u, const char *text)
{
    uint8_t id[16];
    assert_int_equal(vrev__vmess_uuid_parse(text, strlen(text), id), 0);
    assert_int_equal(vrev__vmess_user_init(u, id), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(vrev_ctx_new(&f->ctx, NULL), 0);
    user_from_text(&f->user, UUID_TEXT);
    assert_int_equal(vrev__vmess_replay_new(f->ctx, &f->auth_ids, 1000), 0);
    assert_int_equal(vrev__vmess_replay_new(f->ctx, &f->sessions, 1000), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vrev__vmess_replay_free(f->auth_ids);
    vrev__vmess_replay_free(f->sessions);
    vrev_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* A fresh pair of filters, so one test's handshakes do not count as replays in the next. */
static void reset_filters(struct fixture *f)
{
    vrev__vmess_replay_free(f->auth_ids);
    vrev__vmess_replay_free(f->sessions);
    assert_int_equal(vrev__vmess_replay_new(f->ctx, &f->auth_ids, 1000), 0);
    assert_int_equal(vrev__vmess_replay_new(f->ctx, &f->sessions, 1000), 0);
}

/* The §10.4 request: IV 00..0f, key 10..1f, V 5a, options 0d, GCM, P 0, TCP test.v2fly.org:0 */
static void vector_request(struct vrev__vmess_request *req)
{
    memset(req, 0, sizeof(*req));
    req->version = 1;
    for (int i = 0; i < 16; i++) {
        req->body_iv[i] = (uint8_t)i;
        req->body_key[i] = (uint8_t)(16 + i);
    }
    req->resp_v = 0x5a;
    req->options = VREV_VMESS_OPT_DEFAULT;
    req->security = VREV_VMESS_SEC_AES_128_GCM;
    req->command = VREV_VMESS_CMD_TCP;
    assert_int_equal(vrev__addr_from_text(&req->target, "test.v2fly.org", 0), 0);
}

static void reader_init(struct fixture *f, struct vrev__vmess_hdr_reader *r)
{
    vrev__vmess_hdr_reader_init(r, f->ctx, &f->user, 1, f->auth_ids, f->sessions);
}

/* Feed the whole input at once; returns the reader's result. */
static int read_all(struct fixture *f, const uint8_t *p, size_t n, int64_t now,
                    struct vrev__vmess_request *req, size_t *used)
{
    struct vrev__vmess_hdr_reader r;
    reader_init(f, &r);
    size_t u = 0;
    int rc = vrev__vmess_hdr_reader_feed(&r, now, p, n, &u, req);
    if (used)
        *used = u;
    vrev__vmess_hdr_reader_wipe(&r);
    return rc;
}

/* ---- §10.2 / §10.3 ids and KDF ---------------------------------------------------------- */

static void test_uuid_parse(void **state)
{
    (void)state;
    uint8_t id[16];
    const char *good[] = {UUID_TEXT, "278487397e6241389fd3098a63964b6b",
                          "27848739-7E62-4138-9FD3-098A63964B6B"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(vrev__vmess_uuid_parse(good[i], strlen(good[i]), id), 0);
        expect_hex(id, 16, "278487397e6241389fd3098a63964b6b");
    }
    const char *bad[] = {"",
                         "27848739-7e62-4138-9fd3-098a63964b6",
                         "27848739-7e62-4138-9fd3-098a63964b6b0",
                         "27848739-7e62-4138-9fd3-098a63964b6g",
                         "278487397-e62-4138-9fd3-098a63964b6b",
                         "27848739_7e62-4138-9fd3-098a63964b6b",
                         "278487397e6241389fd3098a63964b6",
                         "278487397e6241389fd3098a63964b6b ",
                         "-278487397e6241389fd3098a63964b6b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vrev__vmess_uuid_parse(bad[i], strlen(bad[i]), id), VREV_ERR_VMESS_UUID);
    assert_int_equal(vrev__vmess_uuid_parse(NULL, 36, id), VREV_ERR_VMESS_UUID);
}

static void test_cmd_key(void **state)
{
    struct fixture *f = *state;
    expect_hex(f->user.cmd_key, 16, "6f87e1b19f8da25df715d655ae9a1764");
    struct vrev__vmess_user docs;
    user_from_text(&docs, "b831381d-6324-4d53-ad4f-8cda48b30811");
    expect_hex(docs.cmd_key, 16, "b50d916ac0cec067981af8e5f38a758f");
}

static void test_kdf_vectors(void **state)
{
    struct fixture *f = *state;
    uint8_t out[32];
    struct vrev__iov path[3] = {VREV_VMESS_SALT("Demo Path for KDF Value Test"),
                                VREV_VMESS_SALT("Demo Path for KDF Value Test2"),
                                VREV_VMESS_SALT("Demo Path for KDF Value Test3")};
    static const char key[] = "Demo Key for KDF Value Test";
    assert_int_equal(vrev__vmess_kdf((const uint8_t *)key, sizeof(key) - 1, path, 3, out), 0);
    expect_hex(out, 32, "53e9d7e1bd7bd25022b71ead07d8a596efc8a845c7888652fd684b4903dc8892");
    assert_int_equal(vrev__vmess_kdf(f->user.cmd_key, 16, NULL, 0, out), 0);
    expect_hex(out, 32, "7a8a95cc2671e89395999ce8ef49797d6f3d123cb4206da24993bf88b99e437f");
    expect_hex(f->user.auth_key, 16, "1d3a02ab9f56cff3ec46c641e6b89716");
    assert_int_equal(vrev__vmess_kdf(out, 16, path, VREV_VMESS_KDF_PATH_MAX + 1, out),
                     VREV_ERR_INVAL);
}

/* §10.4's intermediate keys and nonces. */
static void test_header_kdf_vectors(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *ff = tu_hex(first_flight_hex, &n);
    struct vrev__iov path[3] = {
        VREV_VMESS_SALT("VMess Header AEAD Key_Length"), {ff, 16}, {conn_nonce, 8}};
    uint8_t out[32];
    const char *want[4] = {"e292f0522d545dd766552f895b0c1434", "096ad28572103afe4becb6cb",
                           "e6c413ccc05be6c6457140de9cbfab44", "3038a899242a73b90000f95f"};
    struct vrev__iov salts[4] = {VREV_VMESS_SALT("VMess Header AEAD Key_Length"),
                                 VREV_VMESS_SALT("VMess Header AEAD Nonce_Length"),
                                 VREV_VMESS_SALT("VMess Header AEAD Key"),
                                 VREV_VMESS_SALT("VMess Header AEAD Nonce")};
    for (int i = 0; i < 4; i++) {
        path[0] = salts[i];
        assert_int_equal(vrev__vmess_kdf(f->user.cmd_key, 16, path, 3, out), 0);
        expect_hex(out, strlen(want[i]) / 2, want[i]);
    }
    free(ff);
}

static void test_alter_id(void **state)
{
    (void)state;
    uint8_t id[16], next[16];
    assert_int_equal(vrev__vmess_uuid_parse(UUID_TEXT, 36, id), 0);
    assert_int_equal(vrev__vmess_alter_id_next(id, next), 0);
    expect_hex(next, 16, "2bbd2628154d041151a5488b24b9fc33");
    struct vrev__vmess_user alt;
    assert_int_equal(vrev__vmess_user_init(&alt, next), 0);
    expect_hex(alt.cmd_key, 16, "5050d1c501ad14b2c9223832dbdc84e1");
}

/* ---- auth ID ------------------------------------------------------------------------------ */

static void test_auth_id_vector(void **state)
{
    struct fixture *f = *state;
    uint8_t id[16];
    assert_int_equal(vrev__vmess_auth_id_create(&f->user, T0, auth_rand, id), 0);
    expect_hex(id, 16, "6868c12572a3ce177baac5f08cc54ec3");
    uint8_t plain[16];
    assert_int_equal(vrev__aes128_decrypt_block(f->user.auth_key, id, plain), 0);
    expect_hex(plain, 16, "000000006553f100 01020304 b85575f7");
    size_t which = 99;
    int64_t ts = 0;
    assert_int_equal(vrev__vmess_auth_id_match(&f->user, 1, id, T0, &which, &ts), 0);
    assert_int_equal(which, 0);
    assert_int_equal(ts, T0);
}

static void test_auth_id_window(void **state)
{
    struct fixture *f = *state;
    uint8_t id[16];
    assert_int_equal(vrev__vmess_auth_id_create(&f->user, T0, auth_rand, id), 0);
    const int64_t ok[] = {0, 1, -1, 119, -119, 120, -120};
    const int64_t bad[] = {121, -121, 1000, -1000, INT64_MAX - T0, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(vrev__vmess_auth_id_match(&f->user, 1, id, T0 + ok[i], NULL, NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vrev__vmess_auth_id_match(&f->user, 1, id, T0 + bad[i], NULL, NULL),
                         VREV_ERR_VMESS_AUTH);
    /* a negative timestamp is refused even when "now" is just as negative */
    assert_int_equal(vrev__vmess_auth_id_create(&f->user, -5, auth_rand, id), 0);
    assert_int_equal(vrev__vmess_auth_id_match(&f->user, 1, id, -5, NULL, NULL),
                     VREV_ERR_VMESS_AUTH);
}

static void test_auth_id_users(void **state)
{
    struct fixture *f = *state;
    struct vrev__vmess_user users[3];
    user_from_text(&users[0], "b831381d-6324-4d53-ad4f-8cda48b30811");
    user_from_text(&users[1], "00000000-0000-0000-0000-000000000001");
    users[2] = f->user;
    uint8_t id[16];
    assert_int_equal(vrev__vmess_auth_id_create(&users[2], T0, auth_rand, id), 0);
    size_t which = 0;
    assert_int_equal(vrev__vmess_auth_id_match(users, 3, id, T0, &which, NULL), 0);
    assert_int_equal(which, 2);
    assert_int_equal(vrev__vmess_auth_id_match(users, 2, id, T0, &which, NULL),
                     VREV_ERR_VMESS_AUTH);
}

/* §10.7: a legacy client (HMAC-MD5 auth) is recognised, with its primary id or an alter id. */
static void test_legacy_detect(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *auth = tu_hex("a965548db6bc114289eecbc893ca0c6f", &n);
    assert_true(vrev__vmess_legacy_auth_match(&f->user, 1, auth, T0, 0));
    assert_true(vrev__vmess_legacy_auth_match(&f->user, 1, auth, T0 + 120, 0));
    assert_false(vrev__vmess_legacy_auth_match(&f->user, 1, auth, T0 + 121, 0));
    /* keyed with the first alter id instead */
    uint8_t alt[16], ts[8] = {0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00}, mac[16];
    assert_int_equal(vrev__vmess_alter_id_next(f->user.uuid, alt), 0);
    struct vrev__iov v = {ts, 8};
    assert_int_equal(vrev__hmac_md5(alt, 16, &v, 1, mac), 0);
    assert_false(vrev__vmess_legacy_auth_match(&f->user, 1, mac, T0, 0));
    assert_true(vrev__vmess_legacy_auth_match(&f->user, 1, mac, T0, 4));
    /* and the header reader says so when asked to look */
    reset_filters(f);
    struct vrev__vmess_hdr_reader r;
    struct vrev__vmess_request req;
    reader_init(f, &r);
    r.detect_legacy = true;
    size_t used;
    assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, auth, 16, &used, &req),
                     VREV_ERR_VMESS_LEGACY);
    reader_init(f, &r);
    assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, auth, 16, &used, &req),
                     VREV_ERR_VMESS_AUTH);
    free(auth);
}

/* ---- request header ----------------------------------------------------------------------- */

static void test_request_plain_vectors(void **state)
{
    (void)state;
    struct vrev__vmess_request req;
    uint8_t out[VREV_VMESS_HEADER_MAX];
    vector_request(&req);
    int n = vrev__vmess_request_encode(&req, out, sizeof(out));
    assert_int_equal(n, 60);
    expect_hex(out, 60,
               "01 000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f"
               "5a0d030001 0000020e746573742e7632666c792e6f7267 4bf17096");
    /* P = 3 (aabbcc), tcp:127.0.0.1:80 */
    req.padding_len = 3;
    memcpy(req.padding, "\xaa\xbb\xcc", 3);
    assert_int_equal(vrev__addr_from_text(&req.target, "127.0.0.1", 80), 0);
    n = vrev__vmess_request_encode(&req, out, sizeof(out));
    expect_hex(out + 33, n - 33, "5a0d330001 0050017f000001 aabbcc 12ed5fd9");
    /* Mux, no address */
    req.padding_len = 0;
    req.command = VREV_VMESS_CMD_MUX;
    n = vrev__vmess_request_encode(&req, out, sizeof(out));
    expect_hex(out + 33, n - 33, "5a0d030003 5e59ded7");
    /* none, options 05 */
    vector_request(&req);
    req.options = VREV_VMESS_OPT_DEFAULT_NONE;
    req.security = VREV_VMESS_SEC_NONE;
    n = vrev__vmess_request_encode(&req, out, sizeof(out));
    expect_hex(out + 33, n - 33, "5a05050001 0000020e746573742e7632666c792e6f7267 c4608cc8");
    assert_int_equal(vrev__vmess_request_encode(&req, out, 59), VREV_ERR_NOSPACE);
}

static void test_request_client_refusals(void **state)
{
    (void)state;
    struct vrev__vmess_request req;
    uint8_t out[VREV_VMESS_HEADER_MAX];
    const uint8_t bad_opts[] = {0x08, 0x09, 0x10, 0x1d, 0x02, 0x20, 0x80};
    for (size_t i = 0; i < sizeof(bad_opts); i++) {
        vector_request(&req);
        req.options = bad_opts[i];
        assert_int_equal(vrev__vmess_request_encode(&req, out, sizeof(out)),
                         VREV_ERR_VMESS_OPTIONS);
    }
    const uint8_t bad_sec[] = {0, 1, 2, 6, 15};
    for (size_t i = 0; i < sizeof(bad_sec); i++) {
        vector_request(&req);
        req.security = bad_sec[i];
        assert_int_equal(vrev__vmess_request_encode(&req, out, sizeof(out)),
                         VREV_ERR_VMESS_SECURITY);
    }
    vector_request(&req);
    req.command = 4;
    assert_int_equal(vrev__vmess_request_encode(&req, out, sizeof(out)), VREV_ERR_VMESS_COMMAND);
    vector_request(&req);
    req.target.type = 7;
    assert_int_equal(vrev__vmess_request_encode(&req, out, sizeof(out)), VREV_ERR_VMESS_ADDRESS);
    vector_request(&req);
    req.target.len = 0;
    assert_int_equal(vrev__vmess_request_encode(&req, out, sizeof(out)), VREV_ERR_VMESS_ADDRESS);
    vector_request(&req);
    req.padding_len = 16;
    assert_int_equal(vrev__vmess_request_encode(&req, out, sizeof(out)), VREV_ERR_RANGE);
}

static void test_request_seal_vector(void **state)
{
    struct fixture *f = *state;
    struct vrev__vmess_request req;
    uint8_t out[VREV_VMESS_REQUEST_MAX];
    vector_request(&req);
    int n = vrev__vmess_request_seal(f->ctx, &f->user, T0, auth_rand, conn_nonce, &req, out,
                                     sizeof(out));
    assert_int_equal(n, 118);
    expect_hex(out, 118, first_flight_hex);
    assert_int_equal(
        vrev__vmess_request_seal(f->ctx, &f->user, T0, auth_rand, conn_nonce, &req, out, 117),
        VREV_ERR_NOSPACE);
}

static void check_vector_request(const struct vrev__vmess_request *got)
{
    struct vrev__vmess_request want;
    vector_request(&want);
    assert_int_equal(got->version, 1);
    assert_memory_equal(got->body_iv, want.body_iv, 16);
    assert_memory_equal(got->body_key, want.body_key, 16);
    assert_int_equal(got->resp_v, 0x5a);
    assert_int_equal(got->options, 0x0d);
    assert_int_equal(got->security, VREV_VMESS_SEC_AES_128_GCM);
    assert_int_equal(got->command, VREV_VMESS_CMD_TCP);
    assert_int_equal(got->padding_len, 0);
    assert_true(vrev__addr_equal(&got->target, &want.target));
}

static void test_reader_vector(void **state)
{
    struct fixture *f = *state;
    size_t n, used;
    uint8_t *ff = tu_hex(first_flight_hex, &n);
    struct vrev__vmess_request req;
    reset_filters(f);
    assert_int_equal(read_all(f, ff, n, T0, &req, &used), 1);
    assert_int_equal(used, 118);
    check_vector_request(&req);
    free(ff);
}

/* Split the first flight (plus trailing body bytes) at every offset, and byte by byte. */
static void test_reader_every_split(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *hex = tu_hex(first_flight_hex, &n);
    uint8_t in[118 + 7];
    memcpy(in, hex, 118);
    memcpy(in + 118, "\x19[BODY!", 7); /* what follows belongs to the body (0x5b is [) */
    free(hex);
    for (size_t cut = 0; cut <= sizeof(in); cut++) {
        reset_filters(f);
        struct vrev__vmess_hdr_reader r;
        struct vrev__vmess_request req;
        reader_init(f, &r);
        uint8_t *a = tu_dup(in, cut), *b = tu_dup(in + cut, sizeof(in) - cut);
        size_t u1 = 0, u2 = 0;
        int rc = vrev__vmess_hdr_reader_feed(&r, T0, a, cut, &u1, &req);
        if (cut < 118) {
            assert_int_equal(rc, 0);
            assert_int_equal(u1, cut);
            rc = vrev__vmess_hdr_reader_feed(&r, T0, b, sizeof(in) - cut, &u2, &req);
            assert_int_equal(u2, 118 - cut);
        } else {
            assert_int_equal(u1, 118);
        }
        assert_int_equal(rc, 1);
        check_vector_request(&req);
        /* once complete it takes nothing more */
        assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, b, sizeof(in) - cut, &u2, &req), 1);
        assert_int_equal(u2, 0);
        free(a);
        free(b);
    }
    reset_filters(f);
    struct vrev__vmess_hdr_reader r;
    struct vrev__vmess_request req;
    reader_init(f, &r);
    for (size_t i = 0; i < 118; i++) {
        uint8_t *one = tu_dup(in + i, 1);
        size_t u;
        int rc = vrev__vmess_hdr_reader_feed(&r, T0, one, 1, &u, &req);
        assert_int_equal(rc, i == 117 ? 1 : 0);
        assert_int_equal(u, 1);
        free(one);
    }
    check_vector_request(&req);
}

static void test_reader_bit_flips(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *ff = tu_hex(first_flight_hex, &n);
    for (size_t bit = 0; bit < n * 8; bit++) {
        reset_filters(f);
        ff[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct vrev__vmess_request req;
        size_t used;
        int rc = read_all(f, ff, n, T0, &req, &used);
        ff[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (rc != VREV_ERR_VMESS_AUTH)
            fail_msg("bit %zu: got %d (%s)", bit, rc, vrev_err_name(rc));
        assert_int_equal(used, n);
    }
    free(ff);
}

/* An auth failure is reported after the 16 bytes of the auth ID, whatever else arrives, and
 * from then on everything is swallowed with the same error (the caller drains). */
static void test_reader_auth_failure_drains(void **state)
{
    struct fixture *f = *state;
    uint8_t junk[500];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 16; len <= sizeof(junk); len += 121) {
        struct vrev__vmess_hdr_reader r;
        struct vrev__vmess_request req;
        size_t used;
        reader_init(f, &r);
        assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, junk, 15, &used, &req), 0);
        assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, junk + 15, len - 15, &used, &req),
                         VREV_ERR_VMESS_AUTH);
        assert_int_equal(used, len - 15);
        assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, junk, sizeof(junk), &used, &req),
                         VREV_ERR_VMESS_AUTH);
        assert_int_equal(used, sizeof(junk));
    }
    /* a right user but a wrong key for everything after the auth ID: the length tag fails
     * after 42 bytes, not earlier and not by length */
    uint8_t in[200];
    memcpy(in, junk, sizeof(in));
    assert_int_equal(vrev__vmess_auth_id_create(&f->user, T0, auth_rand, in), 0);
    reset_filters(f);
    struct vrev__vmess_hdr_reader r;
    struct vrev__vmess_request req;
    size_t used;
    reader_init(f, &r);
    assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, in, 41, &used, &req), 0);
    assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, in + 41, 1, &used, &req),
                     VREV_ERR_VMESS_AUTH);
}

static void test_reader_wrong_user(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *ff = tu_hex(first_flight_hex, &n);
    struct vrev__vmess_user other;
    user_from_text(&other, "b831381d-6324-4d53-ad4f-8cda48b30811");
    struct vrev__vmess_hdr_reader r;
    struct vrev__vmess_request req;
    size_t used;
    vrev__vmess_hdr_reader_init(&r, f->ctx, &other, 1, f->auth_ids, f->sessions);
    assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, ff, n, &used, &req), VREV_ERR_VMESS_AUTH);
    free(ff);
}

static void test_reader_clock_skew(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *ff = tu_hex(first_flight_hex, &n);
    const int64_t skew[] = {119, -119, 120, -120, 121, -121, 3600, -3600};
    for (size_t i = 0; i < sizeof(skew) / sizeof(skew[0]); i++) {
        reset_filters(f);
        struct vrev__vmess_request req;
        int rc = read_all(f, ff, n, T0 + skew[i], &req, NULL);
        if (skew[i] >= -120 && skew[i] <= 120)
            assert_int_equal(rc, 1);
        else
            assert_int_equal(rc, VREV_ERR_VMESS_AUTH);
    }
    free(ff);
}

/* G9: a replay is refused at +0, +1, +119 s; at +121 s the clock check refuses it; and a
 * header dated now + 120 (valid until now + 240) is still refused as a replay at +239 s. */
static void test_reader_replay(void **state)
{
    struct fixture *f = *state;
    size_t n;
    uint8_t *ff = tu_hex(first_flight_hex, &n);
    reset_filters(f);
    struct vrev__vmess_request req;
    assert_int_equal(read_all(f, ff, n, T0, &req, NULL), 1);
    assert_int_equal(read_all(f, ff, n, T0, &req, NULL), VREV_ERR_VMESS_REPLAY);
    assert_int_equal(read_all(f, ff, n, T0 + 1, &req, NULL), VREV_ERR_VMESS_REPLAY);
    assert_int_equal(read_all(f, ff, n, T0 + 119, &req, NULL), VREV_ERR_VMESS_REPLAY);
    assert_int_equal(read_all(f, ff, n, T0 + 121, &req, NULL), VREV_ERR_VMESS_AUTH);
    /* accepted at T0 - 120 (dated 120 s in the future), replayed up to T0 + 120 */
    reset_filters(f);
    int64_t accepted = T0 - 120;
    assert_int_equal(read_all(f, ff, n, accepted, &req, NULL), 1);
    const int64_t later[] = {1, 119, 121, 200, 239, 240};
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
        assert_int_equal(read_all(f, ff, n, accepted + later[i], &req, NULL),
                         VREV_ERR_VMESS_REPLAY);
    assert_int_equal(read_all(f, ff, n, accepted + 241, &req, NULL), VREV_ERR_VMESS_AUTH);
    free(ff);
}

/* 4.34's session history: a new auth ID with a (key, IV) already used is refused. */
static void test_reader_session_replay(void **state)
{
    struct fixture *f = *state;
    struct vrev__vmess_request req, got;
    uint8_t a[VREV_VMESS_REQUEST_MAX], b[VREV_VMESS_REQUEST_MAX];
    vector_request(&req);
    const uint8_t other_rand[4] = {9, 9, 9, 9};
    int na =
        vrev__vmess_request_seal(f->ctx, &f->user, T0, auth_rand, conn_nonce, &req, a, sizeof(a));
    int nb = vrev__vmess_request_seal(f->ctx, &f->user, T0 + 5, other_rand, conn_nonce, &req, b,
                                      sizeof(b));
    assert_true(na > 0 && nb > 0);
    reset_filters(f);
    assert_int_equal(read_all(f, a, (size_t)na, T0, &got, NULL), 1);
    assert_int_equal(read_all(f, b, (size_t)nb, T0 + 5, &got, NULL), VREV_ERR_VMESS_REPLAY);
    /* without a session history the second one passes (only the auth-ID filter runs) */
    struct vrev__vmess_hdr_reader r;
    size_t used;
    vrev__vmess_hdr_reader_init(&r, f->ctx, &f->user, 1, f->auth_ids, NULL);
    req.body_key[0] ^= 1;
    const uint8_t third_rand[4] = {7, 7, 7, 7};
    nb = vrev__vmess_request_seal(f->ctx, &f->user, T0, third_rand, conn_nonce, &req, b, sizeof(b));
    assert_int_equal(vrev__vmess_hdr_reader_feed(&r, T0, b, (size_t)nb, &used, &got), 1);
}

/* Seal a hand-made plaintext and check what the server says. */
static int server_says(struct fixture *f, const uint8_t *plain, size_t len)
{
    uint8_t out[VREV_VMESS_REQUEST_PREFIX + 1024];
    assert_true(len <= 1024 - 16);
    int n = vrev__vmess_request_seal_plain(f->ctx, &f->user, T0, auth_rand, conn_nonce, plain, len,
                                           out, sizeof(out));
    assert_true(n > 0);
    reset_filters(f);
    struct vrev__vmess_request req;
    return read_all(f, out, (size_t)n, T0, &req, NULL);
}

/* Build a plaintext from the vector request with byte edits, recomputing FNV-1a. */
static size_t edited_plain(uint8_t *h, int opt, int sec_byte, int cmd)
{
    struct vrev__vmess_request req;
    vector_request(&req);
    int n = vrev__vmess_request_encode(&req, h, VREV_VMESS_HEADER_MAX);
    assert_int_equal(n, 60);
    if (opt >= 0)
        h[34] = (uint8_t)opt;
    if (sec_byte >= 0)
        h[35] = (uint8_t)sec_byte;
    if (cmd >= 0)
        h[37] = (uint8_t)cmd;
    uint32_t c = vrev__fnv1a32(h, 56);
    h[56] = (uint8_t)(c >> 24);
    h[57] = (uint8_t)(c >> 16);
    h[58] = (uint8_t)(c >> 8);
    h[59] = (uint8_t)c;
    return 60;
}

static void test_server_refusals(void **state)
{
    struct fixture *f = *state;
    uint8_t h[VREV_VMESS_HEADER_MAX + 8];
    /* every option byte: 0x08 without 0x04 and 0x10 are refused; others accepted */
    for (int opt = 0; opt < 256; opt++) {
        int rc = server_says(f, h, edited_plain(h, opt, -1, -1));
        bool refused = (opt & 0x10) || ((opt & 0x08) && !(opt & 0x04));
        assert_int_equal(rc, refused ? VREV_ERR_VMESS_OPTIONS : 1);
    }
    for (int sec = 0; sec < 16; sec++) {
        int rc = server_says(f, h, edited_plain(h, -1, sec, -1));
        bool ok = sec == 3 || sec == 4 || sec == 5;
        assert_int_equal(rc, ok ? 1 : VREV_ERR_VMESS_SECURITY);
    }
    assert_int_equal(server_says(f, h, edited_plain(h, -1, -1, 0)), VREV_ERR_VMESS_COMMAND);
    assert_int_equal(server_says(f, h, edited_plain(h, -1, -1, 4)), VREV_ERR_VMESS_COMMAND);
    /* checksum */
    size_t n = edited_plain(h, -1, -1, -1);
    h[59] ^= 1;
    assert_int_equal(server_says(f, h, n), VREV_ERR_VMESS_CHECKSUM);
    /* address type 9 */
    n = edited_plain(h, -1, -1, -1);
    h[40] = 9;
    assert_int_equal(server_says(f, h, n), VREV_ERR_VMESS_ADDRESS);
    /* a domain with a bad character */
    n = edited_plain(h, -1, -1, -1);
    h[45] = '/';
    assert_int_equal(server_says(f, h, n), VREV_ERR_VMESS_ADDRESS);
    /* bytes after the checksum, and a header shorter than its address */
    n = edited_plain(h, -1, -1, -1);
    h[n] = 0;
    assert_int_equal(server_says(f, h, n + 1), VREV_ERR_VMESS_HEADER_LEN);
    n = edited_plain(h, -1, -1, -1);
    h[41] = 100; /* domain length past the end */
    assert_int_equal(server_says(f, h, n), VREV_ERR_VMESS_HEADER_LEN);
    /* L out of range: 41 and VREV_VMESS_HEADER_MAX + 1 */
    memset(h, 0, sizeof(h));
    assert_int_equal(server_says(f, h, VREV_VMESS_HEADER_MIN - 1), VREV_ERR_VMESS_HEADER_LEN);
    assert_int_equal(server_says(f, h, VREV_VMESS_HEADER_MAX + 1), VREV_ERR_VMESS_HEADER_LEN);
    /* Mux carries no address: padding follows the command directly */
    n = edited_plain(h, -1, -1, 3);
    assert_int_equal(server_says(f, h, n), VREV_ERR_VMESS_HEADER_LEN);
}

/* Client seal -> server read for every request shape a client may send. */
static void test_request_round_trips(void **state)
{
    struct fixture *f = *state;
    const char *targets[] = {"test.v2fly.org", "127.0.0.1", "::1", "a"};
    const uint8_t opts[] = {0x00, 0x01, 0x04, 0x05, 0x0c, 0x0d};
    const uint8_t secs[] = {3, 4, 5};
    const uint8_t cmds[] = {VREV_VMESS_CMD_TCP, VREV_VMESS_CMD_UDP, VREV_VMESS_CMD_MUX};
    unsigned round = 0;
    for (size_t t = 0; t < 4; t++)
        for (size_t o = 0; o < sizeof(opts); o++)
            for (size_t s = 0; s < sizeof(secs); s++)
                for (size_t c = 0; c < sizeof(cmds); c++) {
                    struct vrev__vmess_request req, got;
                    vector_request(&req);
                    req.options = opts[o];
                    req.security = secs[s];
                    req.command = cmds[c];
                    req.padding_len = (uint8_t)(round++ % 16);
                    memset(req.padding, 0xee, sizeof(req.padding));
                    assert_int_equal(
                        vrev__addr_from_text(&req.target, targets[t], (uint16_t)(round * 7)), 0);
                    uint8_t out[VREV_VMESS_REQUEST_MAX];
                    int n = vrev__vmess_request_seal(f->ctx, &f->user, T0, auth_rand, conn_nonce,
                                                     &req, out, sizeof(out));
                    assert_true(n > 0);
                    reset_filters(f);
                    assert_int_equal(read_all(f, out, (size_t)n, T0, &got, NULL), 1);
                    assert_int_equal(got.options, req.options);
                    assert_int_equal(got.security, req.security);
                    assert_int_equal(got.command, req.command);
                    assert_int_equal(got.padding_len, req.padding_len);
                    if (req.command != VREV_VMESS_CMD_MUX)
                        assert_true(vrev__addr_equal(&got.target, &req.target));
                }
    /* the longest header: a 255-byte domain and 15 bytes of padding */
    struct vrev__vmess_request req, got;
    char dom[256];
    memset(dom, 'x', 255);
    dom[255] = 0;
    vector_request(&req);
    req.padding_len = 15;
    assert_int_equal(vrev__addr_from_text(&req.target, dom, 65535), 0);
    uint8_t out[VREV_VMESS_REQUEST_MAX];
    int n = vrev__vmess_request_seal(f->ctx, &f->user, T0, auth_rand, conn_nonce, &req, out,
                                     sizeof(out));
    assert_int_equal(n, VREV_VMESS_REQUEST_MAX);
    reset_filters(f);
    assert_int_equal(read_all(f, out, (size_t)n, T0, &got, NULL), 1);
    assert_true(vrev__addr_equal(&got.target, &req.target));
}

static int counter_rand(void *user, uint8_t *out, size_t len)
{
    unsigned *c = user;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(*c)++;
    return 0;
}

static void test_request_randomize(void **state)
{
    (void)state;
    struct vrev__vmess_request req;
    vector_request(&req);
    unsigned c = 0;
    assert_int_equal(vrev__vmess_request_randomize(&req, counter_rand, &c), 0);
    assert_int_equal(req.body_iv[0], 0);
    assert_int_equal(req.body_key[0], 16);
    assert_int_equal(req.resp_v, 32);
    assert_int_equal(req.padding_len, 33 & 0x0f);
    assert_int_equal(req.padding[0], 34);
    assert_int_equal(c, 34 + 1);
    /* the OS source works too */
    assert_int_equal(vrev__vmess_request_randomize(&req, NULL, NULL), 0);
    assert_true(req.padding_len <= 15);
}

/* Every allocation of a client seal and a server read failing in turn: a clean NOMEM. */
static void test_header_alloc_failure(void **state)
{
    struct fixture *f = *state;
    struct vrev__vmess_request req, got;
    vector_request(&req);
    for (unsigned fail = 1; fail < 12; fail++) {
        struct tu_failing_alloc fa = {0, 0, 0};
        vrev_allocator a;
        vrev_ctx *ctx;
        tu_failing_allocator(&a, &fa);
        assert_int_equal(vrev_ctx_new2(&ctx, NULL, &a), 0);
        fa.fail_at = fa.calls + fail;
        uint8_t out[VREV_VMESS_REQUEST_MAX];
        int n = vrev__vmess_request_seal(ctx, &f->user, T0, auth_rand, conn_nonce, &req, out,
                                         sizeof(out));
        if (n > 0) {
            reset_filters(f);
            struct vrev__vmess_hdr_reader r;
            size_t used;
            vrev__vmess_hdr_reader_init(&r, ctx, &f->user, 1, f->auth_ids, f->sessions);
            n = vrev__vmess_hdr_reader_feed(&r, T0, out, (size_t)n, &used, &got);
            assert_true(n == 1 || n == VREV_ERR_NOMEM);
        } else {
            assert_int_equal(n, VREV_ERR_NOMEM);
        }
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_parse),
        cmocka_unit_test_setup_teardown(test_cmd_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kdf_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_kdf_vectors, setup, teardown),
        cmocka_unit_test(test_alter_id),
        cmocka_unit_test_setup_teardown(test_auth_id_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_id_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_id_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_detect, setup, teardown),
        cmocka_unit_test(test_request_plain_vectors),
        cmocka_unit_test(test_request_client_refusals),
        cmocka_unit_test_setup_teardown(test_request_seal_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_every_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_bit_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_auth_failure_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_wrong_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_clock_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_session_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_round_trips, setup, teardown),
        cmocka_unit_test(test_request_randomize),
        cmocka_unit_test_setup_teardown(test_header_alloc_failure, setup, teardown),
    };
    return cmocka_run_group_tests_name("vmess", tests, NULL, NULL);
}
