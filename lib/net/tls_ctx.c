/* TLS contexts, backend-neutral: options checked, files read (errors name the file), PEM text
 * handed to the backend (tls_backend.h), reference counting. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls_backend.h"

#define FILE_MAX (4u << 20)
#define ALPN_MAX 32

/* A macro, not a variadic function: err may be NULL (then nothing is written). */
#define set_err(err, len, ...)                                                                     \
    ((err) && (len) ? (void)snprintf((err), (len), __VA_ARGS__) : (void)0)

int vrev__tls_read_file(vrev_ctx *ctx, const char *path, char **out, size_t *len, char *err,
                        size_t err_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        set_err(err, err_len, "cannot read '%s': %s", path, strerror(errno));
        if (f)
            fclose(f);
        return VREV_ERR_IO;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
        set_err(err, err_len, "cannot read '%s': not a regular file of at most 4 MiB", path);
        fclose(f);
        return VREV_ERR_IO;
    }
    size_t n = (size_t)st.st_size;
    char *buf = vrev__malloc(ctx, n + 1);
    if (!buf) {
        fclose(f);
        return VREV_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != n) {
        set_err(err, err_len, "cannot read '%s': read error", path);
        vrev__wipe(buf, n);
        vrev__free(ctx, buf);
        return VREV_ERR_IO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

const char *vrev__tls_system_ca_file(void)
{
    static const char *const paths[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, OpenWrt */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
        "/etc/ssl/cert.pem",                  /* BSDs, macOS */
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], R_OK) == 0)
            return paths[i];
    return NULL;
}

static int check_alpn(const char *const *alpn, size_t n, char *err, size_t err_len)
{
    if (n && !alpn)
        return VREV_ERR_INVAL;
    if (n > ALPN_MAX) {
        set_err(err, err_len, "too many ALPN protocols (at most %d)", ALPN_MAX);
        return VREV_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = alpn[i] ? strlen(alpn[i]) : 0;
        if (len == 0 || len > 255) {
            set_err(err, err_len, "invalid ALPN protocol #%zu (need 1 to 255 bytes)", i + 1);
            return VREV_ERR_INVAL;
        }
    }
    return 0;
}

static void free_common(struct vrev__tls_common *c)
{
    vrev__free(c->ctx, c->server_name);
    vrev__free(c->ctx, c->pins);
    c->server_name = NULL;
    c->pins = NULL;
    c->n_pins = 0;
}

static int finish_ctx(vrev_ctx *ctx, struct vrev__tls_ctx *t, bool server, bool insecure,
                      const struct vrev__tls_client_opts *o, struct vrev__tls_ctx **out)
{
    struct vrev__tls_common *c = vrev__tls_common_of(t);
    c->ctx = ctx;
    c->refs = 1;
    c->server = server;
    c->insecure = insecure;
    const char *name = o ? o->server_name : NULL;
    bool ok = !(name && *name) || (c->server_name = vrev__strdup(ctx, name));
    if (ok && o && o->n_pins) {
        ok = (c->pins = vrev__calloc(ctx, o->n_pins, sizeof(*c->pins))) != NULL;
        if (ok) {
            memcpy(c->pins, o->pins, o->n_pins * sizeof(*c->pins));
            c->n_pins = o->n_pins;
        }
    }
    if (!ok) {
        c->refs = 0;
        free_common(c);
        vrev__tls_backend_ctx_destroy(t);
        return VREV_ERR_NOMEM;
    }
    *out = t;
    return 0;
}

/* The listed CAs as PEM texts: inline ones as given, files read into bufs[] (the caller frees
 * them). */
static int load_cas(vrev_ctx *ctx, const struct vrev__tls_client_opts *o, struct vrev__tls_pem *cas,
                    char **bufs, char *err, size_t err_len)
{
    for (size_t i = 0; i < o->n_ca_pem; i++) {
        if (!o->ca_pem[i])
            return VREV_ERR_INVAL;
        cas[i] = (struct vrev__tls_pem){o->ca_pem[i], strlen(o->ca_pem[i]), "inline certificate"};
    }
    for (size_t i = 0; i < o->n_ca_files; i++) {
        struct vrev__tls_pem *p = &cas[o->n_ca_pem + i];
        if (!o->ca_files[i])
            return VREV_ERR_INVAL;
        p->origin = o->ca_files[i];
        int rc = vrev__tls_read_file(ctx, o->ca_files[i], &bufs[i], &p->len, err, err_len);
        if (rc < 0)
            return rc;
        p->text = bufs[i];
    }
    return 0;
}

int vrev__tls_client_ctx_new(vrev_ctx *ctx, const struct vrev__tls_client_opts *o,
                             struct vrev__tls_ctx **out, char *err, size_t err_len)
{
    char scratch[8];
    if (!err || !err_len) {
        err = scratch;
        err_len = sizeof(scratch);
    }
    if (out)
        *out = NULL;
    err[0] = '\0';
    if (!ctx || !o || !out || (o->n_ca_pem && !o->ca_pem) || (o->n_ca_files && !o->ca_files) ||
        (o->n_pins && !o->pins) || o->n_pins > 1024)
        return VREV_ERR_INVAL;
    int rc = check_alpn(o->alpn, o->n_alpn, err, err_len);
    size_t n = o->n_ca_pem + o->n_ca_files;
    if (rc < 0 || n < o->n_ca_pem || n > 1024)
        return rc < 0 ? rc : VREV_ERR_INVAL;
    if (!o->allow_insecure && o->disable_system_root && n == 0) {
        set_err(err, err_len, "no trusted certificates: system roots disabled and none listed");
        return VREV_ERR_INVAL;
    }
    struct vrev__tls_pem *cas = vrev__calloc(ctx, n ? n : 1, sizeof(*cas));
    char **bufs = vrev__calloc(ctx, n ? n : 1, sizeof(*bufs));
    rc = cas && bufs ? load_cas(ctx, o, cas, bufs, err, err_len) : VREV_ERR_NOMEM;
    struct vrev__tls_client_material m = {
        .cas = cas,
        .n_cas = n,
        .system_roots = !o->disable_system_root && !o->allow_insecure,
        .insecure = o->allow_insecure,
        .pinned = o->n_pins > 0,
        .alpn = o->alpn,
        .n_alpn = o->n_alpn,
    };
    struct vrev__tls_ctx *t = NULL;
    if (rc == 0)
        rc = vrev__tls_backend_client_new(ctx, &m, &t, err, err_len);
    for (size_t i = 0; bufs && i < o->n_ca_files; i++)
        vrev__free(ctx, bufs[i]);
    vrev__free(ctx, bufs);
    vrev__free(ctx, cas);
    if (rc == 0)
        rc = finish_ctx(ctx, t, false, o->allow_insecure, o, out);
    return rc;
}

/* A private key others may read is one they may have copied: say so (ssh refuses such keys;
 * a server that would not start over a mode bit would be harsh on containers, where a key
 * mounted read-only is often 0644). */
static void check_key_mode(vrev_ctx *ctx, const char *file)
{
    struct stat st;
    if (stat(file, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        vrev__log_all(ctx, VREV_LOG_WARN, "tls",
                      "private key file '%s' is open to group or others (mode %04o): "
                      "chmod 600 it",
                      file, (unsigned)(st.st_mode & 07777));
}

static int load_one(vrev_ctx *ctx, const char *pem, const char *file, const char *what,
                    struct vrev__tls_pem *p, char **buf, char *err, size_t err_len)
{
    *buf = NULL;
    if (!pem == !file) {
        set_err(err, err_len, "need exactly one of the inline %s and the %s file", what, what);
        return VREV_ERR_INVAL;
    }
    if (pem) {
        *p = (struct vrev__tls_pem){pem, strlen(pem),
                                    what[0] == 'k' ? "inline key" : "inline certificate"};
        return 0;
    }
    p->origin = file;
    int rc = vrev__tls_read_file(ctx, file, buf, &p->len, err, err_len);
    p->text = *buf;
    if (rc == 0 && what[0] == 'k')
        check_key_mode(ctx, file);
    return rc;
}

int vrev__tls_server_ctx_new(vrev_ctx *ctx, const struct vrev__tls_server_opts *o,
                             struct vrev__tls_ctx **out, char *err, size_t err_len)
{
    char scratch[8];
    if (!err || !err_len) {
        err = scratch;
        err_len = sizeof(scratch);
    }
    if (out)
        *out = NULL;
    err[0] = '\0';
    if (!ctx || !o || !out)
        return VREV_ERR_INVAL;
    int rc = check_alpn(o->alpn, o->n_alpn, err, err_len);
    if (rc < 0)
        return rc;
    struct vrev__tls_server_material m = {.alpn = o->alpn, .n_alpn = o->n_alpn};
    char *cert_buf = NULL, *key_buf = NULL;
    rc = load_one(ctx, o->cert_pem, o->cert_file, "certificate", &m.cert, &cert_buf, err, err_len);
    if (rc == 0)
        rc = load_one(ctx, o->key_pem, o->key_file, "key", &m.key, &key_buf, err, err_len);
    struct vrev__tls_ctx *t = NULL;
    if (rc == 0)
        rc = vrev__tls_backend_server_new(ctx, &m, &t, err, err_len);
    vrev__free(ctx, cert_buf);
    if (key_buf) {
        vrev__wipe(key_buf, m.key.len);
        vrev__free(ctx, key_buf);
    }
    if (rc == 0)
        rc = finish_ctx(ctx, t, true, false, NULL, out);
    return rc;
}

void vrev__tls_ctx_free(struct vrev__tls_ctx *t)
{
    if (!t)
        return;
    struct vrev__tls_common *c = vrev__tls_common_of(t);
    if (--c->refs > 0)
        return;
    free_common(c);
    vrev__tls_backend_ctx_destroy(t);
}
