/* The seam between the TLS bufferevent glue (tls.c, backend-neutral) and the TLS library
 * (tls_openssl.c or tls_mbedtls.c, one of them compiled in).
 *
 * The glue owns files, names, buffering and events; a backend owns the library objects and
 * runs one connection's TLS state machine ("engine") over a vrev__tls_io: the lower
 * bufferevent's input and output evbuffers, read and written by the library's I/O callbacks
 * (mbedtls_ssl_set_bio, or a custom OpenSSL BIO) through vrev__tls_io_recv/_send below.
 */
#ifndef VREV_NET_TLS_BACKEND_H
#define VREV_NET_TLS_BACKEND_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"
#include "tls_pin.h"

/* Engine results besides a byte count > 0 (read, write) or 0 (handshake, close_notify done). */
#define VREV__TLS_AGAIN (-1)  /* blocked: more input needed below (or, tests, the chaos hook) */
#define VREV__TLS_CLOSED (-2) /* read: the peer's close_notify */
#define VREV__TLS_FAILED (-3) /* fatal; the reason is vrev__tls_engine_error() */

#define VREV__TLS_ERR_LEN 200

struct vrev__tls_io {
    struct evbuffer *in, *out; /* the lower bufferevent's buffers */
    bool eof;                  /* nothing more will arrive in `in` */
    bool hit_eof;              /* a recv returned the end of stream */
#ifdef VREV_TESTING            /* the unit tests' build of lib/ only (vrev__tls_set_chaos) */
    bool spurious;             /* a recv/send pretended to block (chaos) */
    uint32_t chaos;            /* xorshift state, 0 = off */
#endif
};

/* Lower-transport I/O for the backends' callbacks: recv returns n > 0, 0 at the end of stream,
 * or VREV__TLS_AGAIN; send returns n > 0, VREV__TLS_AGAIN, or VREV__TLS_FAILED (no memory). */
int vrev__tls_io_recv(struct vrev__tls_io *io, uint8_t *buf, size_t len);
int vrev__tls_io_send(struct vrev__tls_io *io, const uint8_t *buf, size_t len);

/* Every backend's struct vrev__tls_ctx begins with this. */
struct vrev__tls_common {
    vrev_ctx *ctx;
    unsigned refs;
    bool server;
    bool insecure;     /* client: verify nothing */
    char *server_name; /* client: configured name (our copy) or NULL */
    /* client: pinned chain hashes (our copy; tls_pin.h). With any, a backend's handshake
     * fails unless the peer's chain hashes to one of them, whatever `insecure` says. */
    uint8_t (*pins)[VREV__TLS_PIN_LEN];
    size_t n_pins;
};

static inline struct vrev__tls_common *vrev__tls_common_of(struct vrev__tls_ctx *t)
{
    return (struct vrev__tls_common *)(void *)t;
}

/* PEM text loaded by the glue (from a file or inline), NUL-terminated, and where it came from
 * (for messages: a path, or "inline certificate"). */
struct vrev__tls_pem {
    const char *text;
    size_t len; /* without the NUL */
    const char *origin;
};

struct vrev__tls_client_material {
    const struct vrev__tls_pem *cas;
    size_t n_cas;
    bool system_roots;
    bool insecure;
    bool pinned; /* the context will have pins (common.pins, filled in afterwards) */
    const char *const *alpn;
    size_t n_alpn;
};

struct vrev__tls_server_material {
    struct vrev__tls_pem cert, key;
    const char *const *alpn;
    size_t n_alpn;
};

/* Backend contexts: 0 or VREV_ERR_* with a reason in err. The common part is zeroed; the glue
 * fills it in afterwards. */
int vrev__tls_backend_client_new(vrev_ctx *ctx, const struct vrev__tls_client_material *m,
                                 struct vrev__tls_ctx **out, char *err, size_t err_len);
int vrev__tls_backend_server_new(vrev_ctx *ctx, const struct vrev__tls_server_material *m,
                                 struct vrev__tls_ctx **out, char *err, size_t err_len);
void vrev__tls_backend_ctx_destroy(struct vrev__tls_ctx *t);

/* Reads a whole file (at most 4 MiB) into a NUL-terminated buffer from the ctx allocator. */
int vrev__tls_read_file(vrev_ctx *ctx, const char *path, char **out, size_t *len, char *err,
                        size_t err_len);

/* The system trust store file, or NULL when none of the usual places has one. */
const char *vrev__tls_system_ca_file(void);

/* One connection. `name`: the name to check (and, unless is_ip, to send as SNI), or NULL
 * (server, or an insecure client without a name). */
struct vrev__tls_engine;
int vrev__tls_engine_new(struct vrev__tls_ctx *t, struct vrev__tls_io *io, const char *name,
                         bool is_ip, struct vrev__tls_engine **out);
void vrev__tls_engine_free(struct vrev__tls_engine *e);
/* 0 once the handshake is done. A client with pins checks the peer's chain as it was sent
 * against them (vrev__tls_pin_check) where the library verifies certificates, so that a
 * mismatch fails the handshake with an alert to the server, before any application byte. */
int vrev__tls_engine_handshake(struct vrev__tls_engine *e);
int vrev__tls_engine_read(struct vrev__tls_engine *e, uint8_t *buf, size_t len);
int vrev__tls_engine_write(struct vrev__tls_engine *e, const uint8_t *buf, size_t len);
int vrev__tls_engine_close_notify(struct vrev__tls_engine *e);
const char *vrev__tls_engine_error(const struct vrev__tls_engine *e);
/* After the handshake: the negotiated ALPN protocol (NULL: none), and "TLSv1.3 <suite>". */
const char *vrev__tls_engine_alpn(struct vrev__tls_engine *e);
void vrev__tls_engine_describe(struct vrev__tls_engine *e, char *buf, size_t len);

#endif
