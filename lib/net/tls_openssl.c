/* TLS backend over OpenSSL 3's libssl (tls_backend.h; DESIGN.md §7).
 *
 * The connection's records go through a small custom BIO straight to and from the lower
 * bufferevent's evbuffers (no BIO pair, no second copy), so the engine is the same shape as the
 * mbedTLS one. The BIO_METHOD belongs to the context: nothing process-global is touched (OpenSSL
 * 3 needs no init; the error queue is per thread and cleared around every call).
 *
 * Verification mirrors Go's crypto/tls as V2Ray uses it: system roots plus the listed
 * certificates, any of which may be the anchor (X509_V_FLAG_PARTIAL_CHAIN: Go accepts a listed
 * leaf or intermediate), host names with SSL_set1_host, IP addresses against iPAddress SANs.
 */
#if defined(VREV_CRYPTO_OPENSSL)

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_backend.h"

/* TLS 1.2 suites (WIRE-SPEC §8.5: ECDHE with AES-GCM or ChaCha20); TLS 1.3's defaults are
 * exactly those AEADs. */
#define CIPHERS_TLS12 "ECDHE+AESGCM:ECDHE+CHACHA20"

struct vrev__tls_ctx {
    struct vrev__tls_common common; /* first: see vrev__tls_common_of */
    SSL_CTX *ssl;
    BIO_METHOD *bio;
    unsigned char *alpn; /* server: our list in wire format */
    size_t alpn_len;
};

struct vrev__tls_engine {
    vrev_ctx *ctx;
    SSL *ssl;
    char alpn[256];
    char err[VREV__TLS_ERR_LEN];
    bool pin_failed; /* err says why */
};

/* --- the BIO over the lower bufferevent ----------------------------------------------------- */

static int bio_write(BIO *b, const char *buf, int len)
{
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    int n = vrev__tls_io_send(BIO_get_data(b), (const uint8_t *)buf, (size_t)len);
    if (n == VREV__TLS_AGAIN)
        BIO_set_retry_write(b);
    return n > 0 ? n : -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    int n = vrev__tls_io_recv(BIO_get_data(b), (uint8_t *)buf, (size_t)len);
    if (n == VREV__TLS_AGAIN) {
        BIO_set_retry_read(b);
        return -1;
    }
    return n; /* 0: end of stream */
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* --- errors --------------------------------------------------------------------------------- */

/* Keys are never read with a prompt: an encrypted key is an error, not a read from the tty. */
static int no_password(char *buf, int size, int rwflag, void *user)
{
    (void)buf, (void)size, (void)rwflag, (void)user;
    return 0;
}

static const char *queue_reason(void)
{
    unsigned long code = ERR_peek_last_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    return r ? r : "unknown error";
}

/* "<what> '<origin>': <library reason>" (origin may be NULL), then a clean error queue. */
static int ctx_fail(char *err, size_t err_len, int rc, const char *what, const char *origin)
{
    if (err && err_len && origin)
        snprintf(err, err_len, "%s '%s': %s", what, origin, queue_reason());
    else if (err && err_len)
        snprintf(err, err_len, "%s: %s", what, queue_reason());
    ERR_clear_error();
    return rc;
}

static int engine_fail(struct vrev__tls_engine *e, int ssl_error)
{
    unsigned long code = ERR_peek_error();
    long verify = SSL_get_verify_result(e->ssl);
    if (e->pin_failed)
        ; /* check_pins said it */
    else if (code && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK)
        snprintf(e->err, sizeof(e->err), "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
    else if (code)
        snprintf(e->err, sizeof(e->err), "TLS error: %s", queue_reason());
    else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN)
        snprintf(e->err, sizeof(e->err), "connection closed unexpectedly");
    else
        snprintf(e->err, sizeof(e->err), "TLS error %d", ssl_error);
    ERR_clear_error();
    return VREV__TLS_FAILED;
}

/* --- contexts ------------------------------------------------------------------------------- */

static struct vrev__tls_ctx *ctx_new(vrev_ctx *ctx, bool server, int *rc)
{
    struct vrev__tls_ctx *t = vrev__calloc(ctx, 1, sizeof(*t));
    *rc = t ? VREV_ERR_CRYPTO : VREV_ERR_NOMEM;
    if (!t)
        return NULL;
    t->common.ctx = ctx;
    t->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    t->bio = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "vrev evbuffer");
    if (!t->ssl || !t->bio || !BIO_meth_set_write(t->bio, bio_write) ||
        !BIO_meth_set_read(t->bio, bio_read) || !BIO_meth_set_ctrl(t->bio, bio_ctrl) ||
        !BIO_meth_set_create(t->bio, bio_create) ||
        !SSL_CTX_set_min_proto_version(t->ssl, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(t->ssl, CIPHERS_TLS12) || !SSL_CTX_set_num_tickets(t->ssl, 0)) {
        vrev__tls_backend_ctx_destroy(t);
        return NULL;
    }
    SSL_CTX_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(t->ssl, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(t->ssl, no_password);
    return t;
}

void vrev__tls_backend_ctx_destroy(struct vrev__tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl);
    BIO_meth_free(t->bio);
    vrev__free(t->common.ctx, t->alpn);
    vrev__free(t->common.ctx, t);
}

static unsigned char *alpn_wire(vrev_ctx *ctx, const char *const *alpn, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 1 + strlen(alpn[i]); /* at most 32 * 256: checked by the glue */
    unsigned char *w = vrev__malloc(ctx, total), *p = w;
    if (!w)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(alpn[i]);
        *p++ = (unsigned char)l;
        memcpy(p, alpn[i], l);
        p += l;
    }
    *len = total;
    return w;
}

/* Add every certificate of a PEM text to the store; 0 or VREV_ERR_INVAL. */
static int add_certs(X509_STORE *st, const struct vrev__tls_pem *pem, char *err, size_t err_len)
{
    BIO *b = BIO_new_mem_buf(pem->text, (int)pem->len);
    if (!b)
        return VREV_ERR_NOMEM;
    int count = 0, rc = 0;
    X509 *x;
    ERR_clear_error();
    while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        if (!X509_STORE_add_cert(st, x))
            rc = ctx_fail(err, err_len, VREV_ERR_CRYPTO, "cannot trust a certificate of",
                          pem->origin);
        X509_free(x);
        count++;
    }
    unsigned long last = ERR_peek_last_error();
    if (rc == 0 && (count == 0 || (last && ERR_GET_REASON(last) != PEM_R_NO_START_LINE)))
        rc = ctx_fail(err, err_len, VREV_ERR_INVAL, "no valid certificate in", pem->origin);
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

/* Pins (tls_pin.h): the whole-chain verification step, replaced. The chain the peer sent,
 * its own certificate first, is the store context's untrusted stack (ssl_verify_cert_chain
 * sets it up so); i2d_X509 gives back the bytes that were parsed (OpenSSL keeps the signed
 * part's encoding), as Go hashes them on receipt. Insecure: the pin is the only check. */
static int check_pins(X509_STORE_CTX *x, void *arg)
{
    struct vrev__tls_ctx *t = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct vrev__tls_engine *e = ssl ? SSL_get_app_data(ssl) : NULL;
    int ok = t->common.insecure ? 1 : X509_verify_cert(x);
    if (ok <= 0 || !e)
        return e ? ok : 0;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(x);
    struct vrev__tls_chain_hash h;
    vrev__tls_chain_hash_init(&h);
    for (int i = 0; chain && i < sk_X509_num(chain) && ok; i++) {
        unsigned char *der = NULL;
        int len = i2d_X509(sk_X509_value(chain, i), &der);
        ok = len > 0 && vrev__tls_chain_hash_add(&h, der, (size_t)len) == 0;
        OPENSSL_free(der);
    }
    if (!ok)
        snprintf(e->err, sizeof(e->err), "certificate pin: cannot hash the server's chain");
    else if (!vrev__tls_pin_check(&h, (const uint8_t(*)[VREV__TLS_PIN_LEN])t->common.pins,
                                  t->common.n_pins, e->err, sizeof(e->err)))
        ok = 0;
    if (!ok) {
        e->pin_failed = true;
        X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    }
    return ok;
}

int vrev__tls_backend_client_new(vrev_ctx *ctx, const struct vrev__tls_client_material *m,
                                 struct vrev__tls_ctx **out, char *err, size_t err_len)
{
    int rc;
    struct vrev__tls_ctx *t = ctx_new(ctx, false, &rc);
    if (!t)
        return ctx_fail(err, err_len, rc, "cannot make a TLS context", NULL);
    rc = 0;
    X509_STORE *st = SSL_CTX_get_cert_store(t->ssl);
    /* System roots: the library's default places (and SSL_CERT_FILE / SSL_CERT_DIR). */
    if (m->system_roots && !SSL_CTX_set_default_verify_paths(t->ssl))
        ERR_clear_error();
    for (size_t i = 0; i < m->n_cas && rc == 0; i++)
        rc = add_certs(st, &m->cas[i], err, err_len);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(t->ssl);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    /* With pins, an insecure client verifies too: the pin (OpenSSL ignores a failed
     * verification under SSL_VERIFY_NONE). */
    SSL_CTX_set_verify(t->ssl, m->insecure && !m->pinned ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (m->pinned)
        SSL_CTX_set_cert_verify_callback(t->ssl, check_pins, t);
    if (rc == 0 && m->n_alpn) {
        size_t len;
        unsigned char *w = alpn_wire(ctx, m->alpn, m->n_alpn, &len);
        if (!w)
            rc = VREV_ERR_NOMEM;
        else if (SSL_CTX_set_alpn_protos(t->ssl, w, (unsigned)len) != 0) /* 0 is success */
            rc = ctx_fail(err, err_len, VREV_ERR_CRYPTO, "cannot set ALPN", NULL);
        vrev__free(ctx, w);
    }
    if (rc < 0) {
        vrev__tls_backend_ctx_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    struct vrev__tls_ctx *t = arg;
    unsigned char *chosen;
    if (SSL_select_next_proto(&chosen, outlen, t->alpn, (unsigned)t->alpn_len, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol, as Go and mbedTLS */
}

static int use_cert_chain(struct vrev__tls_ctx *t, const struct vrev__tls_pem *pem, char *err,
                          size_t err_len)
{
    BIO *b = BIO_new_mem_buf(pem->text, (int)pem->len);
    if (!b)
        return VREV_ERR_NOMEM;
    ERR_clear_error();
    int rc = 0;
    X509 *x = PEM_read_bio_X509(b, NULL, no_password, NULL);
    if (!x || !SSL_CTX_use_certificate(t->ssl, x))
        rc = ctx_fail(err, err_len, VREV_ERR_INVAL, "no valid certificate in", pem->origin);
    X509_free(x);
    while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        if (!SSL_CTX_add0_chain_cert(t->ssl, x)) { /* add0: owned by the context on success */
            X509_free(x);
            rc = ctx_fail(err, err_len, VREV_ERR_CRYPTO, "cannot use the chain in", pem->origin);
        }
    }
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

static int use_key(struct vrev__tls_ctx *t, const struct vrev__tls_server_material *m, char *err,
                   size_t err_len)
{
    BIO *b = BIO_new_mem_buf(m->key.text, (int)m->key.len);
    if (!b)
        return VREV_ERR_NOMEM;
    ERR_clear_error();
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    if (!k)
        return ctx_fail(err, err_len, VREV_ERR_INVAL,
                        "no usable private key (encrypted keys are not supported) in",
                        m->key.origin);
    int ok = SSL_CTX_use_PrivateKey(t->ssl, k) && SSL_CTX_check_private_key(t->ssl);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (!ok && err && err_len)
        snprintf(err, err_len, "certificate '%s' and private key '%s' do not match", m->cert.origin,
                 m->key.origin);
    return ok ? 0 : VREV_ERR_INVAL;
}

int vrev__tls_backend_server_new(vrev_ctx *ctx, const struct vrev__tls_server_material *m,
                                 struct vrev__tls_ctx **out, char *err, size_t err_len)
{
    int rc;
    struct vrev__tls_ctx *t = ctx_new(ctx, true, &rc);
    if (!t)
        return ctx_fail(err, err_len, rc, "cannot make a TLS context", NULL);
    rc = use_cert_chain(t, &m->cert, err, err_len);
    if (rc == 0)
        rc = use_key(t, m, err, err_len);
    if (rc == 0 && m->n_alpn) {
        t->alpn = alpn_wire(ctx, m->alpn, m->n_alpn, &t->alpn_len);
        if (t->alpn)
            SSL_CTX_set_alpn_select_cb(t->ssl, alpn_select, t);
        else
            rc = VREV_ERR_NOMEM;
    }
    if (rc < 0) {
        vrev__tls_backend_ctx_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* --- connections ---------------------------------------------------------------------------- */

int vrev__tls_engine_new(struct vrev__tls_ctx *t, struct vrev__tls_io *io, const char *name,
                         bool is_ip, struct vrev__tls_engine **out)
{
    vrev_ctx *ctx = t->common.ctx;
    struct vrev__tls_engine *e = vrev__calloc(ctx, 1, sizeof(*e));
    if (!e)
        return VREV_ERR_NOMEM;
    e->ctx = ctx;
    ERR_clear_error();
    e->ssl = SSL_new(t->ssl);
    BIO *b = e->ssl ? BIO_new(t->bio) : NULL;
    bool ok = b != NULL;
    if (ok) {
        SSL_set_app_data(e->ssl, e);
        BIO_set_data(b, io);
        SSL_set_bio(e->ssl, b, b); /* one reference, owned by the SSL */
    }
    if (ok && t->common.server) {
        SSL_set_accept_state(e->ssl);
    } else if (ok) {
        SSL_set_connect_state(e->ssl);
        if (name && !is_ip) /* an IP address is never sent as SNI (RFC 6066) */
            ok = SSL_set_tlsext_host_name(e->ssl, name) == 1;
        if (ok && name && !t->common.insecure)
            ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(e->ssl), name) == 1
                       : SSL_set1_host(e->ssl, name) == 1;
    }
    ERR_clear_error();
    if (!ok) {
        vrev__tls_engine_free(e);
        return VREV_ERR_CRYPTO;
    }
    *out = e;
    return 0;
}

void vrev__tls_engine_free(struct vrev__tls_engine *e)
{
    if (!e)
        return;
    SSL_free(e->ssl);
    vrev__free(e->ctx, e);
}

static int blocked_or_failed(struct vrev__tls_engine *e, int ret)
{
    int se = SSL_get_error(e->ssl, ret);
    if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return VREV__TLS_AGAIN;
    }
    return engine_fail(e, se);
}

int vrev__tls_engine_handshake(struct vrev__tls_engine *e)
{
    ERR_clear_error();
    int r = SSL_do_handshake(e->ssl);
    if (r == 1) {
        const unsigned char *p;
        unsigned len;
        SSL_get0_alpn_selected(e->ssl, &p, &len);
        if (p && len && len < sizeof(e->alpn)) {
            memcpy(e->alpn, p, len);
            e->alpn[len] = '\0';
        }
        return 0;
    }
    return blocked_or_failed(e, r);
}

int vrev__tls_engine_read(struct vrev__tls_engine *e, uint8_t *buf, size_t len)
{
    size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(e->ssl, buf, len, &got);
    if (r == 1)
        return (int)got; /* len is at most one record */
    if (SSL_get_error(e->ssl, r) == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return VREV__TLS_CLOSED;
    }
    return blocked_or_failed(e, r);
}

int vrev__tls_engine_write(struct vrev__tls_engine *e, const uint8_t *buf, size_t len)
{
    size_t put = 0;
    ERR_clear_error();
    int r = SSL_write_ex(e->ssl, buf, len, &put);
    if (r == 1)
        return (int)put;
    return blocked_or_failed(e, r);
}

int vrev__tls_engine_close_notify(struct vrev__tls_engine *e)
{
    ERR_clear_error();
    int r = SSL_shutdown(e->ssl); /* 0: sent, the peer's not seen yet; 1: both */
    return r >= 0 ? 0 : blocked_or_failed(e, r);
}

const char *vrev__tls_engine_error(const struct vrev__tls_engine *e)
{
    return e->err[0] ? e->err : "TLS failure";
}

const char *vrev__tls_engine_alpn(struct vrev__tls_engine *e)
{
    return e->alpn[0] ? e->alpn : NULL;
}

void vrev__tls_engine_describe(struct vrev__tls_engine *e, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(e->ssl), SSL_get_cipher_name(e->ssl));
}

#endif /* VREV_CRYPTO_OPENSSL */
