#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "core/hex.h"
#include "testutil.h"
#include "vrev.h"

uint8_t *tu_dup(const void *p, size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    if (len)
        memcpy(b, p, len);
    return b;
}

uint8_t *tu_load(const char *relpath, size_t *len)
{
    const char *dir = getenv("VREV_VECTORS");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", relpath);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open vector %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    uint8_t *b = malloc(n ? (size_t)n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

uint8_t *tu_hex(const char *hex, size_t *len)
{
    size_t digits = 0;
    for (const char *p = hex; *p; p++)
        if (*p != ' ' && *p != '\n')
            digits++;
    assert_int_equal(digits % 2, 0);
    uint8_t *b = malloc(digits / 2 ? digits / 2 : 1);
    assert_non_null(b);
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ' ' || *p == '\n')
            continue;
        int v = vrev__hex_digit(*p);
        assert_true(v >= 0);
        if (hi < 0) {
            hi = v;
        } else {
            b[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    *len = n;
    return b;
}

static void *fa_malloc(size_t size, void *user)
{
    struct tu_failing_alloc *s = user;
    if (++s->calls == s->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        s->live++;
    return p;
}

static void *fa_realloc(void *ptr, size_t size, void *user)
{
    struct tu_failing_alloc *s = user;
    if (++s->calls == s->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        s->live++;
    return p;
}

static void fa_free(void *ptr, void *user)
{
    struct tu_failing_alloc *s = user;
    if (ptr)
        s->live--;
    free(ptr);
}

void tu_failing_allocator(struct vrev_allocator *a, struct tu_failing_alloc *state)
{
    a->abi = VREV_ALLOCATOR_ABI;
    a->malloc = fa_malloc;
    a->realloc = fa_realloc;
    a->free = fa_free;
    a->user = state;
}

uint8_t tu_pattern(size_t i)
{
    return (uint8_t)(i * 13 + (i >> 11));
}

void tu_pattern_fill(struct evbuffer *out, size_t *sent, size_t total, size_t cap)
{
    uint8_t chunk[16384];
    while (*sent < total && evbuffer_get_length(out) < cap) {
        size_t n = total - *sent < sizeof(chunk) ? total - *sent : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = tu_pattern(*sent + i);
        assert_int_equal(evbuffer_add(out, chunk, n), 0);
        *sent += n;
    }
}

void tu_pattern_check(struct evbuffer *in, size_t *received)
{
    uint8_t chunk[16384];
    int n;
    while ((n = evbuffer_remove(in, chunk, sizeof(chunk))) > 0) {
        for (int i = 0; i < n; i++)
            if (chunk[i] != tu_pattern(*received + (size_t)i))
                fail_msg("byte %zu differs", *received + (size_t)i);
        *received += (size_t)n;
    }
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#endif
#ifdef TU_ASAN
#include <sanitizer/allocator_interface.h>
#endif

long tu_mem_kib(void)
{
#ifdef TU_ASAN
    return (long)(__sanitizer_get_current_allocated_bytes() / 1024);
#else
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
#endif
}

int64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

void tu_stream_echo(vrev_stream *s, int event, int err, void *user)
{
    (void)err, (void)user;
    char buf[4096];
    int n;
    if (event == VREV_STREAM_READABLE)
        while ((n = vrev_stream_read(s, buf, sizeof(buf))) > 0)
            assert_int_equal(vrev_stream_write(s, buf, (size_t)n), 0);
    else if (event == VREV_STREAM_END || event == VREV_STREAM_ERROR)
        vrev_stream_close(s, event == VREV_STREAM_ERROR);
}

void tu_stream_echo_accept(vrev_stream *s, const char *name, void *user)
{
    (void)name;
    assert_int_equal(vrev_stream_set_cb(s, tu_stream_echo, user), 0);
}
