/* AEAD seal throughput of the crypto backend this binary was built with (DESIGN.md §7 quotes
 * these numbers). One core, in place, a fresh nonce per call as the VMess body writer does;
 * about one second per measurement. 16 KiB is the bulk-transfer figure (our VMess streams
 * seal 16 KiB - 256 bytes per chunk); 2 KiB is the size of a full chunk from a V2Ray 4.34
 * writer, where per-call overhead (nonce re-initialisation) shows.
 *
 *   make bench-micro [CRYPTO=openssl|mbedtls]
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "vrev.h"

#define MEASURE_SECONDS 1.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seal buf[0..len) repeatedly for about MEASURE_SECONDS; returns bytes per second or < 0. */
static double seal_rate(struct vrev__aead *a, uint8_t *buf, size_t len)
{
    uint8_t nonce[VREV_AEAD_NONCE_LEN] = {0}, tag[VREV_AEAD_TAG_LEN];
    uint64_t calls = 0;
    double start = now(), elapsed = 0;
    while (elapsed < MEASURE_SECONDS) {
        for (int i = 0; i < 64; i++, calls++) {
            memcpy(nonce, &calls, sizeof(calls));
            if (vrev__aead_seal(a, nonce, NULL, 0, buf, len, tag) != 0)
                return -1;
        }
        elapsed = now() - start;
    }
    return (double)calls * (double)len / elapsed;
}

static int bench(vrev_ctx *ctx, int alg, const char *name, size_t len)
{
    static uint8_t buf[16384];
    uint8_t key[32];
    memset(key, 0x42, sizeof(key));
    memset(buf, 0x5a, len);
    struct vrev__aead *a = NULL;
    int rc = vrev__aead_new(ctx, &a, alg, key, alg == VREV_AEAD_AES_128_GCM ? 16 : 32);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", name, vrev_strerror(rc));
        return 1;
    }
    double rate = seal_rate(a, buf, len);
    vrev__aead_free(ctx, a);
    if (rate < 0) {
        fprintf(stderr, "%s: seal failed\n", name);
        return 1;
    }
    printf("%-8s %-18s seal %5zu B: %6.2f GB/s\n", vrev__crypto_backend_name(), name, len,
           rate / 1e9);
    return 0;
}

int main(void)
{
    vrev_ctx *ctx = NULL;
    if (vrev_ctx_new(&ctx, NULL) != 0)
        return 1;
    int failed = 0;
    static const size_t sizes[] = {16384, 2048};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        failed |= bench(ctx, VREV_AEAD_AES_128_GCM, "AES-128-GCM", sizes[i]);
        failed |= bench(ctx, VREV_AEAD_CHACHA20_POLY1305, "ChaCha20-Poly1305", sizes[i]);
    }
    vrev_ctx_free(ctx);
    return failed;
}
