/* LD_PRELOAD shim for tests/cli/test_wipe.py: counts the blocks freed through free() that
 * still hold $FREESCAN_SECRET anywhere, and prints "freescan: N" at exit. glibc only (it
 * reads the block's size with malloc_usable_size and frees with __libc_free). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void __libc_free(void *p);

static const char *secret;
static size_t secret_len;
static unsigned long hits;

__attribute__((constructor)) static void start(void)
{
    secret = getenv("FREESCAN_SECRET");
    secret_len = secret ? strlen(secret) : 0;
}

__attribute__((destructor)) static void report(void)
{
    if (secret_len)
        fprintf(stderr, "freescan: %lu\n", hits);
}

void free(void *p)
{
    if (p && secret_len && memmem(p, malloc_usable_size(p), secret, secret_len))
        hits++;
    __libc_free(p);
}
