/* lib/crypto: known-answer vectors from the standards (FIPS 202, FIPS 197, SP 800-38A,
 * RFC 1321, RFC 2104, RFC 4231, the GCM spec, RFC 8439), the VMess values of WIRE-SPEC §10,
 * and properties (any iov split or squeeze split gives the one-shot result, in-place AEAD
 * round trips, tampering is caught). The same file runs against both backends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "testutil.h"
#include "vrev.h"

/* --- helpers ------------------------------------------------------------------------------- */

/* Decode hex into out[0..cap); returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n;
    uint8_t *b = tu_hex(hex, &n);
    assert_true(n <= cap);
    memcpy(out, b, n);
    free(b);
    return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *hex)
{
    size_t n;
    uint8_t *want = tu_hex(hex, &n);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(want);
}

static struct vrev__iov iov_str(const char *s)
{
    return (struct vrev__iov){s, strlen(s)};
}

static const char *const digits = "123456789";

/* --- SHAKE128 ------------------------------------------------------------------------------ */

static void shake(const uint8_t *seed, size_t len, uint8_t *out, size_t out_len)
{
    struct vrev__shake128 s;
    vrev__shake128_init(&s, seed, len);
    vrev__shake128_squeeze(&s, out, out_len);
}

static void test_shake128_empty(void **state)
{
    (void)state;
    uint8_t out[16];
    shake(NULL, 0, out, sizeof(out));
    assert_hex(out, 16, "7f9c2ba4e88f827d616045507605853e"); /* FIPS 202 example values */
}

/* NIST example "SHAKE128 Msg1600": 200 bytes of 0xa3 (more than one 168-byte block), 4096
 * output bits (more than three blocks of squeezing). */
static void test_shake128_msg1600(void **state)
{
    (void)state;
    uint8_t msg[200], out[512];
    memset(msg, 0xa3, sizeof(msg));
    shake(msg, sizeof(msg), out, sizeof(out));
    assert_hex(out, 32, "131ab8d2b594946b9c81333f9bb6e0ce75c3b93104fa3469d3917457385da037");
    assert_hex(out + 480, 32, "44c9fb359fd56ac0a9a75a743cff6862f17d7259ab075216c0699511643b6439");
}

/* Messages of rate-1, rate and rate+1 bytes exercise both padding positions (0x9f in one byte,
 * a whole padding block). Values cross-checked with Python's hashlib.shake_128. */
static void test_shake128_rate_edges(void **state)
{
    (void)state;
    static const char *const want[3] = {"1e552791cc4e93a0d4a8dc47ae49228c",
                                        "f15277eb61c4908d44a2853f3cde071a",
                                        "015be3338c986d9846affa0f94b4afc2"};
    uint8_t msg[169], out[16];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (size_t k = 0; k < 3; k++) {
        shake(msg, 167 + k, out, sizeof(out));
        assert_hex(out, 16, want[k]);
    }
}

static void squeeze_in_pieces(const uint8_t *seed, size_t seed_len, uint8_t *out, size_t len,
                              size_t first, size_t step)
{
    struct vrev__shake128 s;
    vrev__shake128_init(&s, seed, seed_len);
    size_t piece = first;
    for (size_t off = 0; off < len;) {
        size_t n = piece < len - off ? piece : len - off;
        vrev__shake128_squeeze(&s, out + off, n);
        off += n;
        piece += step;
    }
}

static void test_shake128_squeeze_pieces(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 7, 13, 167, 168, 169, 335};
    uint8_t seed[200], whole[1000], parts[1000];
    memset(seed, 0xa3, sizeof(seed));
    shake(seed, sizeof(seed), whole, sizeof(whole));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memset(parts, 0, sizeof(parts));
        squeeze_in_pieces(seed, sizeof(seed), parts, sizeof(parts), sizes[i], 0);
        assert_memory_equal(parts, whole, sizeof(whole));
    }
    /* growing odd pieces 1, 3, 5, ... land on every offset within a block */
    squeeze_in_pieces(seed, sizeof(seed), parts, sizeof(parts), 1, 2);
    assert_memory_equal(parts, whole, sizeof(whole));
    /* VMess draws 2 bytes at a time; a zero-length squeeze changes nothing */
    struct vrev__shake128 s;
    vrev__shake128_init(&s, seed, sizeof(seed));
    for (size_t off = 0; off < sizeof(parts); off += 2) {
        vrev__shake128_squeeze(&s, parts + off, 0);
        vrev__shake128_squeeze(&s, parts + off, 2);
    }
    assert_memory_equal(parts, whole, sizeof(whole));
}

/* WIRE-SPEC §10.6: the masking streams of both directions of the §10.4 connection. */
static void test_shake128_vmess(void **state)
{
    (void)state;
    uint8_t iv[16], out[16];
    for (size_t i = 0; i < 16; i++)
        iv[i] = (uint8_t)i;
    shake(iv, 16, out, 16);
    assert_hex(out, 16, "98481946de85c670a7a84432ab4091a8");
    assert_int_equal(vrev__get_u16(out) % 64, 8);     /* chunk 0 Pad */
    assert_int_equal(vrev__get_u16(out + 2), 0x1946); /* chunk 0 Mask */
    unhex("be45cb2605bf36bebde684841a28f0fd", iv, sizeof(iv));
    shake(iv, 16, out, 16);
    assert_hex(out, 16, "1a5a93f79db6916dfb99b094de46cc59");
}

/* --- CRC-32, FNV-1a ------------------------------------------------------------------------ */

static void test_crc32(void **state)
{
    (void)state;
    const uint8_t *p = (const uint8_t *)digits;
    assert_int_equal(vrev__crc32(0, p, 9), 0xcbf43926u);
    assert_int_equal(vrev__crc32(0, NULL, 0), 0);
    for (size_t cut = 0; cut <= 9; cut++)
        assert_int_equal(vrev__crc32(vrev__crc32(0, p, cut), p + cut, 9 - cut), 0xcbf43926u);
    /* WIRE-SPEC §10.4: the auth ID check value over timestamp || random */
    uint8_t auth[12];
    unhex("000000006553f10001020304", auth, sizeof(auth));
    assert_int_equal(vrev__crc32(0, auth, sizeof(auth)), 0xb85575f7u);
}

static void test_fnv1a32(void **state)
{
    (void)state;
    assert_int_equal(vrev__fnv1a32(NULL, 0), 0x811c9dc5u);
    assert_int_equal(vrev__fnv1a32((const uint8_t *)"a", 1), 0xe40c292cu);
    assert_int_equal(vrev__fnv1a32((const uint8_t *)"foobar", 6), 0xbf9cf968u);
    /* WIRE-SPEC §10.4: the checksum of the 56-byte request header */
    uint8_t h[56];
    size_t n = unhex("01 000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f"
                     " 5a0d030001 0000020e",
                     h, sizeof(h));
    memcpy(h + n, "test.v2fly.org", 14);
    assert_int_equal(n + 14, 56);
    assert_int_equal(vrev__fnv1a32(h, sizeof(h)), 0x4bf17096u);
}

/* --- hashes over iov lists ----------------------------------------------------------------- */

typedef int (*hash_fn)(const struct vrev__iov *v, size_t n, uint8_t *out);

static int sha256_fn(const struct vrev__iov *v, size_t n, uint8_t *out)
{
    return vrev__sha256(v, n, out);
}
static int sha224_fn(const struct vrev__iov *v, size_t n, uint8_t *out)
{
    return vrev__sha224(v, n, out);
}
static int md5_fn(const struct vrev__iov *v, size_t n, uint8_t *out)
{
    return vrev__md5(v, n, out);
}
static int hmac_sha256_fn(const struct vrev__iov *v, size_t n, uint8_t *out)
{
    return vrev__hmac_sha256((const uint8_t *)"key", 3, v, n, out);
}
static int hmac_md5_fn(const struct vrev__iov *v, size_t n, uint8_t *out)
{
    return vrev__hmac_md5((const uint8_t *)"key", 3, v, n, out);
}

static void check_str(hash_fn f, size_t len, const char *msg, const char *want)
{
    uint8_t out[32];
    struct vrev__iov v = iov_str(msg);
    assert_int_equal(f(&v, 1, out), 0);
    assert_hex(out, len, want);
}

/* Every split of a 200-byte message into three pieces around an empty one, and every prefix
 * split in two, must equal the one-shot digest; so must no pieces at all for "". */
static void check_splits(hash_fn f, size_t out_len)
{
    uint8_t msg[200], one[32], got[32];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    for (size_t a = 0; a <= sizeof(msg); a++) {
        size_t b = a + (sizeof(msg) - a) / 2;
        struct vrev__iov whole = {msg, sizeof(msg)};
        struct vrev__iov v[4] = {
            {msg, a}, {msg + a, 0}, {msg + a, b - a}, {msg + b, sizeof(msg) - b}};
        assert_int_equal(f(&whole, 1, one), 0);
        assert_int_equal(f(v, 4, got), 0);
        assert_memory_equal(got, one, out_len);
        struct vrev__iov prefix = {msg, a};
        struct vrev__iov halves[2] = {{msg, a / 2}, {msg + a / 2, a - a / 2}};
        assert_int_equal(f(&prefix, 1, one), 0);
        assert_int_equal(f(halves, 2, got), 0);
        assert_memory_equal(got, one, out_len);
    }
    struct vrev__iov empty = {"", 0};
    assert_int_equal(f(NULL, 0, got), 0);
    assert_int_equal(f(&empty, 1, one), 0);
    assert_memory_equal(got, one, out_len);
}

static void test_sha256(void **state)
{
    (void)state;
    check_str(sha256_fn, 32, "",
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_str(sha256_fn, 32, "abc",
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_str(sha256_fn, 32, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_splits(sha256_fn, 32);
    /* WIRE-SPEC §10.5: respBodyKey = SHA-256(request body key)[:16] */
    uint8_t key[16], out[32];
    for (size_t i = 0; i < 16; i++)
        key[i] = (uint8_t)(0x10 + i);
    struct vrev__iov v = {key, 16};
    assert_int_equal(vrev__sha256(&v, 1, out), 0);
    assert_hex(out, 16, "fc2e2c73072bfa2bda03ff9307472deb");
}

static void test_sha224(void **state)
{
    (void)state;
    check_str(sha224_fn, 28, "abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
    /* WIRE-SPEC §10.1: the Trojan key of "password" */
    check_str(sha224_fn, 28, "password",
              "d63dc919e201d7bc4c825630d2cf25fdc93d4b2f0d46706d29038d01");
    check_splits(sha224_fn, 28);
}

static void test_md5(void **state)
{
    (void)state;
    /* RFC 1321 appendix A.5 */
    check_str(md5_fn, 16, "", "d41d8cd98f00b204e9800998ecf8427e");
    check_str(md5_fn, 16, "a", "0cc175b9c0f1b6a831c399e269772661");
    check_str(md5_fn, 16, "abc", "900150983cd24fb0d6963f7d28e17f72");
    check_str(md5_fn, 16, "message digest", "f96b697d7cb7938d525a2f31aaf161d0");
    check_str(md5_fn, 16, "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
    check_str(md5_fn, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
              "d174ab98d277d9f5a5611c2c9f419d9f");
    check_str(md5_fn, 16,
              "1234567890123456789012345678901234567890"
              "1234567890123456789012345678901234567890",
              "57edf4a22be3c955ac49da2e2107b67a");
    check_splits(md5_fn, 16);
}

static void check_hmac256(const uint8_t *key, size_t key_len, const char *msg, const char *want)
{
    uint8_t out[32];
    struct vrev__iov v = iov_str(msg);
    assert_int_equal(vrev__hmac_sha256(key, key_len, &v, 1, out), 0);
    assert_hex(out, 32, want);
}

static void test_hmac_sha256(void **state)
{
    (void)state;
    uint8_t key[131];
    memset(key, 0x0b, 20); /* RFC 4231 test case 1 */
    check_hmac256(key, 20, "Hi There",
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", /* case 2 */
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, 131); /* case 6: a key longer than the block is hashed first */
    check_hmac256(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
                  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    check_hmac256(NULL, 0, "", "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    check_splits(hmac_sha256_fn, 32);
    /* WIRE-SPEC §10.3: KDF(cmdKey) with no path is the base HMAC */
    uint8_t cmd_key[16], out[32];
    unhex("6f87e1b19f8da25df715d655ae9a1764", cmd_key, sizeof(cmd_key));
    struct vrev__iov v = {cmd_key, 16};
    assert_int_equal(vrev__hmac_sha256((const uint8_t *)"VMess AEAD KDF", 14, &v, 1, out), 0);
    assert_hex(out, 32, "7a8a95cc2671e89395999ce8ef49797d6f3d123cb4206da24993bf88b99e437f");
}

static void test_hmac_md5(void **state)
{
    (void)state;
    uint8_t key[16], out[16];
    memset(key, 0x0b, 16); /* RFC 2104 appendix */
    struct vrev__iov v = iov_str("Hi There");
    assert_int_equal(vrev__hmac_md5(key, 16, &v, 1, out), 0);
    assert_hex(out, 16, "9294727a3638bb1c13f48ef8158bfc9d");
    check_splits(hmac_md5_fn, 16);
    /* WIRE-SPEC §10.7: legacy auth = HMAC-MD5(uuid, u64be(time)) */
    uint8_t uuid[16], ts[8];
    unhex("278487397e6241389fd3098a63964b6b", uuid, sizeof(uuid));
    unhex("000000006553f100", ts, sizeof(ts));
    v = (struct vrev__iov){ts, 8};
    assert_int_equal(vrev__hmac_md5(uuid, 16, &v, 1, out), 0);
    assert_hex(out, 16, "a965548db6bc114289eecbc893ca0c6f");
}

/* --- AES-128 block and CFB ----------------------------------------------------------------- */

static void check_aes_block(const char *key_hex, const char *pt_hex, const char *ct_hex)
{
    uint8_t key[16], pt[16], buf[16];
    unhex(key_hex, key, 16);
    unhex(pt_hex, pt, 16);
    assert_int_equal(vrev__aes128_encrypt_block(key, pt, buf), 0);
    assert_hex(buf, 16, ct_hex);
    assert_int_equal(vrev__aes128_decrypt_block(key, buf, buf), 0); /* in place */
    assert_memory_equal(buf, pt, 16);
}

static void test_aes128_block(void **state)
{
    (void)state;
    check_aes_block("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
                    "69c4e0d86a7b0430d8cdb78070b4c55a"); /* FIPS 197 C.1 */
    check_aes_block("2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734",
                    "3925841d02dc09fbdc118597196a0b32"); /* FIPS 197 appendix B */
}

static const char *const cfb_pt =
    "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
static const char *const cfb_ct =
    "3b3fd92eb72dad20333449f8e83cfb4a c8a64537a0b3a93fcde3cdad9f1ce58b"
    "26751f67a3cbb140b1808cf187a4f4df c04b05357c5d1c0eeac4c66f9ff7f2e6";

/* Run buf through a fresh CFB stream in pieces of `piece` bytes. */
static void cfb_run(vrev_ctx *ctx, bool enc, uint8_t *buf, size_t len, size_t piece)
{
    uint8_t key[16], iv[16];
    unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
    for (size_t i = 0; i < 16; i++)
        iv[i] = (uint8_t)i;
    struct vrev__aes_cfb *c = NULL;
    assert_int_equal(vrev__aes128_cfb_new(ctx, &c, key, iv, enc), 0);
    for (size_t off = 0; off < len; off += piece) {
        size_t n = piece < len - off ? piece : len - off;
        assert_int_equal(vrev__aes128_cfb_update(c, buf + off, n), 0);
    }
    vrev__aes128_cfb_free(ctx, c);
}

/* SP 800-38A F.3.13 / F.3.14 (CFB128-AES128), whole and in odd pieces. */
static void test_aes128_cfb(void **state)
{
    vrev_ctx *ctx = *state;
    uint8_t pt[64], buf[64];
    unhex(cfb_pt, pt, sizeof(pt));
    static const size_t pieces[] = {64, 1, 5, 15, 16, 17, 33};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        memcpy(buf, pt, 64);
        cfb_run(ctx, true, buf, 64, pieces[i]);
        assert_hex(buf, 64, cfb_ct);
        cfb_run(ctx, false, buf, 64, pieces[i]);
        assert_memory_equal(buf, pt, 64);
    }
    vrev__aes128_cfb_free(ctx, NULL);
}

/* --- AEAD ---------------------------------------------------------------------------------- */

struct aead_kat {
    int alg;
    const char *key, *nonce, *aad, *pt, *ct, *tag;
};

static const struct aead_kat aead_kats[] = {
    /* GCM spec (McGrew & Viega) test cases 1, 3 and 4; NIST's gcmEncryptExtIV128 has them */
    {VREV_AEAD_AES_128_GCM, "00000000000000000000000000000000", "000000000000000000000000", "", "",
     "", "58e2fccefa7e3061367f1d57a4e7455a"},
    {VREV_AEAD_AES_128_GCM, "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {VREV_AEAD_AES_128_GCM, "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    /* RFC 8439 §2.8.2 */
    {VREV_AEAD_CHACHA20_POLY1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "070000004041424344454647",
     "50515253c0c1c2c3c4c5c6c7",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
     "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
     "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
     "637265656e20776f756c642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
     "3ff4def08e4b7a9de576d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
};

static void check_aead_kat(vrev_ctx *ctx, const struct aead_kat *k)
{
    uint8_t key[32], nonce[12], aad[64], pt[128], tag[16];
    size_t key_len = unhex(k->key, key, sizeof(key));
    unhex(k->nonce, nonce, sizeof(nonce));
    size_t aad_len = unhex(k->aad, aad, sizeof(aad));
    size_t len = unhex(k->pt, pt, sizeof(pt));
    struct vrev__aead *a = NULL;
    assert_int_equal(vrev__aead_new(ctx, &a, k->alg, key, key_len), 0);
    uint8_t *buf = tu_dup(pt, len);
    assert_int_equal(vrev__aead_seal(a, nonce, aad_len ? aad : NULL, aad_len, buf, len, tag), 0);
    assert_hex(buf, len, k->ct);
    assert_hex(tag, 16, k->tag);
    assert_int_equal(vrev__aead_open(a, nonce, aad_len ? aad : NULL, aad_len, buf, len, tag), 0);
    assert_memory_equal(buf, pt, len);
    free(buf);
    vrev__aead_free(ctx, a);
}

static void test_aead_kat(void **state)
{
    for (size_t i = 0; i < sizeof(aead_kats) / sizeof(aead_kats[0]); i++)
        check_aead_kat(*state, &aead_kats[i]);
}

static struct vrev__aead *new_aead(vrev_ctx *ctx, int alg)
{
    uint8_t key[32];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0x40 + i);
    struct vrev__aead *a = NULL;
    assert_int_equal(vrev__aead_new(ctx, &a, alg, key, alg == VREV_AEAD_AES_128_GCM ? 16 : 32), 0);
    return a;
}

/* Flip one bit of the tag, the ciphertext, the AAD or the nonce: each must fail with AUTH, and
 * the object must still open the genuine message afterwards. */
static void check_tamper(vrev_ctx *ctx, int alg)
{
    struct vrev__aead *a = new_aead(ctx, alg);
    uint8_t nonce[12] = {1, 2, 3}, aad[5] = "head", msg[40], tag[16], bad[16];
    memset(msg, 'm', sizeof(msg));
    uint8_t *buf = tu_dup(msg, sizeof(msg));
    assert_int_equal(vrev__aead_seal(a, nonce, aad, sizeof(aad), buf, sizeof(msg), tag), 0);
    uint8_t *sealed = tu_dup(buf, sizeof(msg));
    for (size_t bit = 0; bit < 128; bit += 9) {
        memcpy(bad, tag, 16);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memcpy(buf, sealed, sizeof(msg));
        assert_int_equal(vrev__aead_open(a, nonce, aad, sizeof(aad), buf, sizeof(msg), bad),
                         VREV_ERR_AUTH);
    }
    memcpy(buf, sealed, sizeof(msg));
    buf[17] ^= 0x20;
    assert_int_equal(vrev__aead_open(a, nonce, aad, sizeof(aad), buf, sizeof(msg), tag),
                     VREV_ERR_AUTH);
    memcpy(buf, sealed, sizeof(msg));
    assert_int_equal(vrev__aead_open(a, nonce, aad, sizeof(aad) - 1, buf, sizeof(msg), tag),
                     VREV_ERR_AUTH);
    nonce[11] ^= 1;
    memcpy(buf, sealed, sizeof(msg));
    assert_int_equal(vrev__aead_open(a, nonce, aad, sizeof(aad), buf, sizeof(msg), tag),
                     VREV_ERR_AUTH);
    nonce[11] ^= 1;
    memcpy(buf, sealed, sizeof(msg));
    assert_int_equal(vrev__aead_open(a, nonce, aad, sizeof(aad), buf, sizeof(msg), tag), 0);
    assert_memory_equal(buf, msg, sizeof(msg));
    free(sealed);
    free(buf);
    vrev__aead_free(ctx, a);
}

static void test_aead_tamper(void **state)
{
    check_tamper(*state, VREV_AEAD_AES_128_GCM);
    check_tamper(*state, VREV_AEAD_CHACHA20_POLY1305);
}

/* In place, every length 0..300 (around the 16- and 64-byte block sizes), with and without
 * AAD, the same object sealing and opening alternately. */
static void check_roundtrip(vrev_ctx *ctx, int alg)
{
    struct vrev__aead *a = new_aead(ctx, alg);
    uint8_t nonce[12] = {0}, aad[37], tag[16], msg[300];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 31 + 5);
    memset(aad, 0xad, sizeof(aad));
    for (size_t len = 0; len <= sizeof(msg); len++) {
        size_t aad_len = len % sizeof(aad);
        vrev__put_u16(nonce, (uint16_t)len);
        uint8_t *buf = tu_dup(msg, len);
        assert_int_equal(vrev__aead_seal(a, nonce, aad_len ? aad : NULL, aad_len, buf, len, tag),
                         0);
        if (len >= 16)
            assert_memory_not_equal(buf, msg, len);
        assert_int_equal(vrev__aead_open(a, nonce, aad_len ? aad : NULL, aad_len, buf, len, tag),
                         0);
        assert_memory_equal(buf, msg, len);
        free(buf);
    }
    vrev__aead_free(ctx, a);
}

static void test_aead_roundtrip(void **state)
{
    check_roundtrip(*state, VREV_AEAD_AES_128_GCM);
    check_roundtrip(*state, VREV_AEAD_CHACHA20_POLY1305);
}

/* Sealing from pieces into another buffer and opening into another buffer give the bytes and
 * tags of the in-place calls, for 1..3 pieces at odd cuts, and a bad tag still fails. */
static void check_out_of_place(vrev_ctx *ctx, int alg)
{
    enum { LEN = 20000 };
    struct vrev__aead *a = new_aead(ctx, alg);
    uint8_t nonce[12] = {9, 8, 7}, tag[16], tag2[16];
    uint8_t *msg = malloc(LEN), *ref = malloc(LEN), *out = malloc(LEN), *back = malloc(LEN);
    for (size_t i = 0; i < LEN; i++)
        msg[i] = (uint8_t)(i * 13 + (i >> 8));
    const size_t cuts[][2] = {{LEN, 0}, {1, LEN - 1}, {17, 4000}, {16384, 3}, {0, 5}};
    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        size_t a0 = cuts[c][0], a1 = cuts[c][1];
        size_t len = a0 + a1 + (a0 + a1 < LEN && c > 1 ? 11 : 0);
        struct vrev__iov v[3] = {{msg, a0}, {msg + a0, a1}, {msg + a0 + a1, len - a0 - a1}};
        size_t nv = c == 0 ? 1 : (len > a0 + a1 ? 3 : 2);
        vrev__put_u16(nonce, (uint16_t)c);
        memcpy(ref, msg, len);
        assert_int_equal(vrev__aead_seal(a, nonce, NULL, 0, ref, len, tag), 0);
        memset(out, 0, LEN);
        assert_int_equal(vrev__aead_seal_iov(a, nonce, v, nv, out, tag2), 0);
        assert_memory_equal(out, ref, len);
        assert_memory_equal(tag2, tag, 16);
        assert_int_equal(vrev__aead_open_to(a, nonce, out, len, tag, back), 0);
        assert_memory_equal(back, msg, len);
        tag2[3] ^= 4;
        assert_int_equal(vrev__aead_open_to(a, nonce, out, len, tag2, back), VREV_ERR_AUTH);
        assert_int_equal(vrev__aead_open_to(a, nonce, out, len, tag, out), 0); /* in place */
        assert_memory_equal(out, msg, len);
    }
    /* one piece sealed in place through the iov form */
    memcpy(out, msg, 100);
    struct vrev__iov one = {out, 100};
    assert_int_equal(vrev__aead_seal_iov(a, nonce, &one, 1, out, tag2), 0);
    memcpy(ref, msg, 100);
    assert_int_equal(vrev__aead_seal(a, nonce, NULL, 0, ref, 100, tag), 0);
    assert_memory_equal(out, ref, 100);
    assert_memory_equal(tag2, tag, 16);
    free(msg), free(ref), free(out), free(back);
    vrev__aead_free(ctx, a);
}

static void test_aead_out_of_place(void **state)
{
    check_out_of_place(*state, VREV_AEAD_AES_128_GCM);
    check_out_of_place(*state, VREV_AEAD_CHACHA20_POLY1305);
}

static void test_aead_invalid(void **state)
{
    vrev_ctx *ctx = *state;
    uint8_t key[32] = {0};
    struct vrev__aead *a = (struct vrev__aead *)&a; /* must be reset to NULL on failure */
    assert_int_equal(vrev__aead_new(ctx, &a, VREV_AEAD_AES_128_GCM, key, 32), VREV_ERR_INVAL);
    assert_null(a);
    assert_int_equal(vrev__aead_new(ctx, &a, VREV_AEAD_CHACHA20_POLY1305, key, 16), VREV_ERR_INVAL);
    assert_int_equal(vrev__aead_new(ctx, &a, 0, key, 16), VREV_ERR_INVAL);
    assert_int_equal(vrev__aead_new(ctx, &a, 3, key, 32), VREV_ERR_INVAL);
    assert_int_equal(vrev__aead_new(ctx, &a, VREV_AEAD_AES_128_GCM, NULL, 16), VREV_ERR_INVAL);
    assert_int_equal(vrev__aead_new(ctx, NULL, VREV_AEAD_AES_128_GCM, key, 16), VREV_ERR_INVAL);
    vrev__aead_free(ctx, NULL);
}

/* Fail the N-th allocation for every N on the setup paths: each failure is NOMEM, leaves
 * *out NULL and leaks nothing. */
static void test_alloc_failure(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, iv[16] = {0};
    for (unsigned n = 1; n <= 5; n++) {
        struct tu_failing_alloc fa = {.fail_at = n};
        vrev_allocator alloc;
        tu_failing_allocator(&alloc, &fa);
        vrev_ctx *ctx = NULL;
        int rc = vrev_ctx_new2(&ctx, NULL, &alloc);
        if (rc != 0) {
            assert_int_equal(rc, VREV_ERR_NOMEM);
            continue;
        }
        struct vrev__aead *gcm = NULL, *chacha = NULL;
        struct vrev__aes_cfb *cfb = NULL;
        rc = vrev__aead_new(ctx, &gcm, VREV_AEAD_AES_128_GCM, key, 16);
        assert_true(rc == 0 || (rc == VREV_ERR_NOMEM && !gcm));
        rc = vrev__aead_new(ctx, &chacha, VREV_AEAD_CHACHA20_POLY1305, key, 32);
        assert_true(rc == 0 || (rc == VREV_ERR_NOMEM && !chacha));
        rc = vrev__aes128_cfb_new(ctx, &cfb, key, iv, true);
        assert_true(rc == 0 || (rc == VREV_ERR_NOMEM && !cfb));
        assert_int_equal(!gcm + !chacha + !cfb, n >= 2 && n <= 4 ? 1 : 0);
        vrev__aead_free(ctx, gcm);
        vrev__aead_free(ctx, chacha);
        vrev__aes128_cfb_free(ctx, cfb);
        vrev_ctx_free(ctx);
        assert_int_equal(fa.live, 0);
    }
}

/* --- VMess-specific values (WIRE-SPEC §10.2, §10.6) ---------------------------------------- */

static const char *const cmd_key_suffix = "c48619fe-8f02-49e0-b9e9-edf763e17e21";

static void check_cmd_key(const char *uuid_hex, const char *want)
{
    uint8_t uuid[16], out[16];
    unhex(uuid_hex, uuid, sizeof(uuid));
    struct vrev__iov v[2] = {{uuid, 16}, iov_str(cmd_key_suffix)};
    assert_int_equal(vrev__md5(v, 2, out), 0);
    assert_hex(out, 16, want);
}

static void test_vmess_cmd_key(void **state)
{
    (void)state;
    check_cmd_key("278487397e6241389fd3098a63964b6b", "6f87e1b19f8da25df715d655ae9a1764");
    check_cmd_key("b831381d63244d53ad4f8cda48b30811", "b50d916ac0cec067981af8e5f38a758f");
}

/* ChaCha20-Poly1305 body key = MD5(k) || MD5(MD5(k)). */
static void chacha_body_key(const uint8_t k[16], uint8_t out[32])
{
    struct vrev__iov v = {k, 16};
    assert_int_equal(vrev__md5(&v, 1, out), 0);
    v.base = out;
    assert_int_equal(vrev__md5(&v, 1, out + 16), 0);
}

/* Seal `msg` as VMess body chunk `count` of the §10.4 request direction. */
static void check_body_chunk(vrev_ctx *ctx, int alg, uint16_t count, const char *msg,
                             const char *want)
{
    uint8_t body_key[16], key[32], nonce[12], buf[64], tag[16];
    for (size_t i = 0; i < 16; i++)
        body_key[i] = (uint8_t)(0x10 + i);
    for (size_t i = 0; i < 12; i++)
        nonce[i] = (uint8_t)i;
    vrev__put_u16(nonce, count);
    size_t key_len = 16;
    memcpy(key, body_key, 16);
    if (alg == VREV_AEAD_CHACHA20_POLY1305) {
        chacha_body_key(body_key, key);
        key_len = 32;
    }
    struct vrev__aead *a = NULL;
    assert_int_equal(vrev__aead_new(ctx, &a, alg, key, key_len), 0);
    size_t len = strlen(msg);
    memcpy(buf, msg, len);
    assert_int_equal(vrev__aead_seal(a, nonce, NULL, 0, buf, len, tag), 0); /* no AAD */
    memcpy(buf + len, tag, 16);
    assert_hex(buf, len + 16, want);
    vrev__aead_free(ctx, a);
}

static void test_vmess_body(void **state)
{
    uint8_t k[16], key[32];
    for (size_t i = 0; i < 16; i++)
        k[i] = (uint8_t)(0x10 + i);
    chacha_body_key(k, key);
    assert_hex(key, 32, "1bf42e241816ba29ff5f307bb1bc1d168b39e04ece3e33ab822442d7e6cefd5f");
    check_body_chunk(*state, VREV_AEAD_AES_128_GCM, 0, "hello",
                     "c76e58df1d1b6686ac14fce9bcc0f768b9c8beb10f");
    check_body_chunk(*state, VREV_AEAD_AES_128_GCM, 1, "", "6334ec174d7c6cd918a0ee0a87d3d8a9");
    check_body_chunk(*state, VREV_AEAD_CHACHA20_POLY1305, 0, "hello",
                     "8aa8b3dd9185f30769fd06639baa587ae610a3c4d5");
}

/* --- misc ---------------------------------------------------------------------------------- */

static void test_random(void **state)
{
    (void)state;
    uint8_t a[64], b[64], zero[64] = {0};
    assert_int_equal(vrev__random_bytes(NULL, 0), 0);
    assert_int_equal(vrev__random_bytes(a, sizeof(a)), 0);
    assert_int_equal(vrev__random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    size_t big_len = 1 << 20; /* past getrandom's 256-byte uninterruptible limit */
    uint8_t *big = calloc(1, big_len);
    assert_non_null(big);
    assert_int_equal(vrev__random_bytes(big, big_len), 0);
    assert_memory_not_equal(big + big_len - 64, zero, 64);
    free(big);
}

static void test_ct_equal(void **state)
{
    (void)state;
    uint8_t a[33], b[33];
    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(vrev__ct_equal(a, b, sizeof(a)));
    assert_true(vrev__ct_equal(a, b, 0));
    for (size_t i = 0; i < sizeof(b); i++) {
        b[i] ^= 0x80;
        assert_false(vrev__ct_equal(a, b, sizeof(a)));
        b[i] ^= 0x80;
    }
}

static void test_backend_name(void **state)
{
    (void)state;
#if defined(VREV_CRYPTO_OPENSSL)
    assert_string_equal(vrev__crypto_backend_name(), "openssl");
#else
    assert_string_equal(vrev__crypto_backend_name(), "mbedtls");
#endif
    assert_string_equal(vrev__crypto_backend_name(), vrev_crypto_backend());
}

static int setup_ctx(void **state)
{
    vrev_ctx *ctx = NULL;
    if (vrev_ctx_new(&ctx, NULL) != 0)
        return -1;
    *state = ctx;
    return 0;
}

static int teardown_ctx(void **state)
{
    vrev_ctx_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shake128_empty),
        cmocka_unit_test(test_shake128_msg1600),
        cmocka_unit_test(test_shake128_rate_edges),
        cmocka_unit_test(test_shake128_squeeze_pieces),
        cmocka_unit_test(test_shake128_vmess),
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_fnv1a32),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_sha224),
        cmocka_unit_test(test_md5),
        cmocka_unit_test(test_hmac_sha256),
        cmocka_unit_test(test_hmac_md5),
        cmocka_unit_test(test_aes128_block),
        cmocka_unit_test(test_aes128_cfb),
        cmocka_unit_test(test_aead_kat),
        cmocka_unit_test(test_aead_tamper),
        cmocka_unit_test(test_aead_roundtrip),
        cmocka_unit_test(test_aead_out_of_place),
        cmocka_unit_test(test_aead_invalid),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_vmess_cmd_key),
        cmocka_unit_test(test_vmess_body),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_backend_name),
    };
    return cmocka_run_group_tests_name("crypto", tests, setup_ctx, teardown_ctx);
}
