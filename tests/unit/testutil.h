/* Helpers shared by the unit tests (linked into every test binary). */
#ifndef VREV_TESTUTIL_H
#define VREV_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Read a file under $VREV_VECTORS (default "tests/vectors") into an exactly-sized malloc'd
 * buffer (reads past the end are caught by ASan). Fails the test if missing. */
uint8_t *tu_load(const char *relpath, size_t *len);

/* Decode a hex string (spaces ignored) into an exactly-sized malloc'd buffer. */
uint8_t *tu_hex(const char *hex, size_t *len);

/* An exactly-sized malloc'd copy of p[0..len). */
uint8_t *tu_dup(const void *p, size_t len);

/* An allocator that fails the N-th allocation (1-based; 0 = never) and counts live blocks. */
struct tu_failing_alloc {
    unsigned fail_at;
    unsigned calls;
    long live;
};
struct vrev_allocator;
void tu_failing_allocator(struct vrev_allocator *a, struct tu_failing_alloc *state);

/* The process's memory in KiB, for tests that bound it: its resident set, or under ASan
 * (whose quarantine keeps freed memory resident) the bytes its heap has live. */
long tu_mem_kib(void);

/* The descriptors open in the process now (entries of /proc/self/fd, its listing's own and
 * "." and ".." included: compare counts, not absolute values). */
int tu_count_fds(void);

/* A monotonic clock in milliseconds (for tests that must check by time, not by loop turns:
 * a loaded machine makes each turn longer). */
int64_t tu_now_ms(void);

/* Test payload: byte i of a stream. */
uint8_t tu_pattern(size_t i);

struct evbuffer;
/* Add the pattern's bytes [*sent, total) to `out` while it holds less than `cap` bytes;
 * advances *sent. */
void tu_pattern_fill(struct evbuffer *out, size_t *sent, size_t total, size_t cap);

/* Take all `in` holds, checking that it continues the pattern at *received (the test fails at
 * the first wrong byte); advances *received. */
void tu_pattern_check(struct evbuffer *in, size_t *received);

/* An echo service on a vrev_stream (a vrev_stream_cb): what comes is written back; the peer's
 * end closes the stream gracefully, an error with an abort. And an accept callback for
 * vrev_tunnel_opts_add_handler that serves each session so (`user` unused). */
struct vrev_stream;
void tu_stream_echo(struct vrev_stream *s, int event, int err, void *user);
void tu_stream_echo_accept(struct vrev_stream *s, const char *name, void *user);

#endif
