/* TLS backend over mbedTLS 2.28 (tls_backend.h; DESIGN.md §7). libevent 2.1 has no mbedTLS
 * bufferevent: the glue in tls.c is the layer, and this file is the engine it drives, with
 * mbedtls_ssl_set_bio callbacks reading and writing the lower bufferevent's evbuffers.
 *
 * Each context has its own entropy source and CTR-DRBG (no global state); the configuration,
 * the trust chain, our certificate and key live in it and are shared by its connections.
 * mbedTLS still allocates its record buffers (about 2 x 16 KiB per connection) with its own
 * calloc; our objects come from the ctx allocator.
 *
 * mbedTLS 2.28 matches only DNS names (subjectAltName dNSName or CN): a peer checked by IP
 * address is verified here, against the certificate's iPAddress SANs, from a verify callback.
 * It has no TLS 1.3 (TLS 1.2 only, which every V2Ray peer speaks), and a listed certificate is
 * a trust anchor only if it is a CA or self-signed (Go, and OpenSSL here, also accept a listed
 * leaf or intermediate).
 */
#if defined(VREV_CRYPTO_MBEDTLS)

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "tls_backend.h"

/* WIRE-SPEC §8.5: ECDHE with ChaCha20 or AES-GCM. ChaCha20 first: mbedTLS does it about 1.6
 * times as fast as AES-GCM here (DESIGN §7), and a Go server then prefers it too. */
static const int suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

/* Key exchange groups, preferred first. mbedTLS 2.28's default list starts with secp521r1,
 * which a server then picks whenever the client offers it: slow for nothing. */
static const mbedtls_ecp_group_id curves[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    MBEDTLS_ECP_DP_CURVE25519,
#endif
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

struct vrev__tls_ctx {
    struct vrev__tls_common common; /* first: see vrev__tls_common_of */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cas; /* client: trusted */
    mbedtls_x509_crt own; /* server: our certificate and its chain */
    mbedtls_pk_context key;
    const char **alpn; /* NULL-terminated, pointing into alpn_buf */
    char *alpn_buf;
};

struct vrev__tls_engine {
    vrev_ctx *ctx;
    const struct vrev__tls_ctx *t; /* a connection holds a reference to its context */
    mbedtls_ssl_context ssl;
    uint8_t ip[16]; /* client checking an IP address */
    size_t ip_len;
    char err[VREV__TLS_ERR_LEN];
    bool pin_failed; /* err says why */
};

/* --- errors --------------------------------------------------------------------------------- */

static void lib_error(int ret, char *buf, size_t len)
{
    mbedtls_strerror(ret, buf, len);
}

static int ctx_error(char *err, size_t err_len, int rc, const char *what, const char *origin,
                     int ret)
{
    char lib[128];
    lib_error(ret, lib, sizeof(lib));
    if (err && err_len)
        snprintf(err, err_len, "%s '%s': %s", what, origin, lib);
    return rc;
}

static const char *alert_name(unsigned char a)
{
    switch (a) {
    case 10:
        return "unexpected_message";
    case 20:
        return "bad_record_mac";
    case 40:
        return "handshake_failure";
    case 42:
        return "bad_certificate";
    case 43:
        return "unsupported_certificate";
    case 45:
        return "certificate_expired";
    case 46:
        return "certificate_unknown";
    case 47:
        return "illegal_parameter";
    case 48:
        return "unknown_ca";
    case 50:
        return "decode_error";
    case 51:
        return "decrypt_error";
    case 70:
        return "protocol_version";
    case 71:
        return "insufficient_security";
    case 80:
        return "internal_error";
    case 112:
        return "unrecognized_name";
    case 120:
        return "no_application_protocol";
    default:
        return "other";
    }
}

static int engine_fail(struct vrev__tls_engine *e, int ret)
{
    if (e->pin_failed) {
        /* verify_peer said it */
    } else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        char info[256], joined[VREV__TLS_ERR_LEN];
        size_t j = 0;
        if (mbedtls_x509_crt_verify_info(info, sizeof(info), "",
                                         mbedtls_ssl_get_verify_result(&e->ssl)) < 0)
            info[0] = '\0';
        for (const char *q = info; *q && j + 3 < sizeof(joined); q++) { /* a line per problem */
            if (*q != '\n')
                joined[j++] = *q;
            else if (q[1])
                joined[j++] = ';', joined[j++] = ' ';
        }
        joined[j] = '\0';
        snprintf(e->err, sizeof(e->err), "certificate verify failed: %s", j ? joined : "?");
    } else if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        unsigned char a = e->ssl.in_msg ? e->ssl.in_msg[1] : 0;
        snprintf(e->err, sizeof(e->err), "TLS error: peer sent alert %s (%u)", alert_name(a), a);
    } else if (ret == 0 || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(e->err, sizeof(e->err), "connection closed unexpectedly");
    } else {
        char lib[128];
        lib_error(ret, lib, sizeof(lib));
        snprintf(e->err, sizeof(e->err), "TLS error: %s", lib);
    }
    return VREV__TLS_FAILED;
}

static int result(struct vrev__tls_engine *e, int ret)
{
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return VREV__TLS_AGAIN;
    return engine_fail(e, ret);
}

/* --- contexts ------------------------------------------------------------------------------- */

static struct vrev__tls_ctx *ctx_new(vrev_ctx *ctx, bool server, int *rc, char *err, size_t err_len)
{
    struct vrev__tls_ctx *t = vrev__calloc(ctx, 1, sizeof(*t));
    *rc = t ? VREV_ERR_CRYPTO : VREV_ERR_NOMEM;
    if (!t)
        return NULL;
    t->common.ctx = ctx;
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->cas);
    mbedtls_x509_crt_init(&t->own);
    mbedtls_pk_init(&t->key);
    static const unsigned char personal[] = "libvrev tls";
    int ret = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, personal,
                                    sizeof(personal) - 1);
    if (ret == 0)
        ret = mbedtls_ssl_config_defaults(&t->conf,
                                          server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        ctx_error(err, err_len, 0, "cannot set up", "TLS context", ret);
        vrev__tls_backend_ctx_destroy(t);
        return NULL;
    }
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&t->conf, suites);
    mbedtls_ssl_conf_curves(&t->conf, curves);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    mbedtls_ssl_conf_renegotiation(&t->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
    /* client side; a server issues tickets only with ticket callbacks, never set here */
    mbedtls_ssl_conf_session_tickets(&t->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
#endif
    return t;
}

void vrev__tls_backend_ctx_destroy(struct vrev__tls_ctx *t)
{
    if (!t)
        return;
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->cas);
    mbedtls_x509_crt_free(&t->own);
    mbedtls_pk_free(&t->key);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    vrev__free(t->common.ctx, t->alpn);
    vrev__free(t->common.ctx, t->alpn_buf);
    vrev__free(t->common.ctx, t);
}

/* mbedtls_ssl_conf_alpn_protocols keeps the pointers: the strings are copied into the ctx. */
static int set_alpn(struct vrev__tls_ctx *t, const char *const *alpn, size_t n)
{
    if (!n)
        return 0;
    vrev_ctx *ctx = t->common.ctx;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(alpn[i]) + 1; /* at most 32 * 256: checked by the glue */
    t->alpn = vrev__calloc(ctx, n + 1, sizeof(*t->alpn));
    t->alpn_buf = vrev__malloc(ctx, total);
    if (!t->alpn || !t->alpn_buf)
        return VREV_ERR_NOMEM;
    char *p = t->alpn_buf;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(alpn[i]) + 1;
        memcpy(p, alpn[i], l);
        t->alpn[i] = p;
        p += l;
    }
    return mbedtls_ssl_conf_alpn_protocols(&t->conf, t->alpn) == 0 ? 0 : VREV_ERR_CRYPTO;
}

static void load_system_roots(struct vrev__tls_ctx *t)
{
    const char *path = vrev__tls_system_ca_file();
    char *buf;
    size_t len;
    if (!path || vrev__tls_read_file(t->common.ctx, path, &buf, &len, NULL, 0) < 0)
        return;
    /* > 0 is the number of certificates mbedTLS could not use: skip those, as Go does. */
    int ret = mbedtls_x509_crt_parse(&t->cas, (const unsigned char *)buf, len + 1);
    if (ret < 0)
        vrev__log(t->common.ctx, VREV_LOG_DEBUG, "tls", "system roots '%s' unusable (-0x%04x)",
                  path, (unsigned)-ret);
    vrev__free(t->common.ctx, buf);
}

int vrev__tls_backend_client_new(vrev_ctx *ctx, const struct vrev__tls_client_material *m,
                                 struct vrev__tls_ctx **out, char *err, size_t err_len)
{
    int rc;
    struct vrev__tls_ctx *t = ctx_new(ctx, false, &rc, err, err_len);
    if (!t)
        return rc;
    rc = 0;
    if (m->system_roots)
        load_system_roots(t);
    for (size_t i = 0; i < m->n_cas && rc == 0; i++) {
        const struct vrev__tls_pem *p = &m->cas[i];
        int ret = mbedtls_x509_crt_parse(&t->cas, (const unsigned char *)p->text, p->len + 1);
        if (ret != 0) /* > 0: some certificates in it are broken: say so rather than skip */
            rc = ctx_error(err, err_len, VREV_ERR_INVAL, "no valid certificate in", p->origin,
                           ret > 0 ? MBEDTLS_ERR_X509_INVALID_FORMAT : ret);
    }
    if (rc == 0 && !m->insecure && t->cas.raw.len == 0) {
        snprintf(err, err_len, "no trusted certificates: no system store found and none listed");
        rc = VREV_ERR_INVAL;
    }
    /* With pins, an insecure client verifies too, leniently: VERIFY_NONE would not look at
     * the chain at all, and the pin is then the only check (verify_peer). */
    mbedtls_ssl_conf_authmode(&t->conf, !m->insecure ? MBEDTLS_SSL_VERIFY_REQUIRED
                                        : m->pinned  ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                     : MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->cas, NULL);
    if (rc == 0)
        rc = set_alpn(t, m->alpn, m->n_alpn);
    if (rc < 0) {
        vrev__tls_backend_ctx_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

int vrev__tls_backend_server_new(vrev_ctx *ctx, const struct vrev__tls_server_material *m,
                                 struct vrev__tls_ctx **out, char *err, size_t err_len)
{
    int rc;
    struct vrev__tls_ctx *t = ctx_new(ctx, true, &rc, err, err_len);
    if (!t)
        return rc;
    rc = 0;
    int ret = mbedtls_x509_crt_parse(&t->own, (const unsigned char *)m->cert.text, m->cert.len + 1);
    if (ret != 0)
        rc = ctx_error(err, err_len, VREV_ERR_INVAL, "no valid certificate in", m->cert.origin,
                       ret > 0 ? MBEDTLS_ERR_X509_INVALID_FORMAT : ret);
    if (rc == 0) {
        ret = mbedtls_pk_parse_key(&t->key, (const unsigned char *)m->key.text, m->key.len + 1,
                                   NULL, 0);
        if (ret != 0)
            rc = ctx_error(err, err_len, VREV_ERR_INVAL,
                           "no usable private key (encrypted keys are not supported) in",
                           m->key.origin, ret);
    }
    if (rc == 0 && mbedtls_pk_check_pair(&t->own.pk, &t->key) != 0) {
        if (err && err_len)
            snprintf(err, err_len, "certificate '%s' and private key '%s' do not match",
                     m->cert.origin, m->key.origin);
        rc = VREV_ERR_INVAL;
    }
    if (rc == 0 && (ret = mbedtls_ssl_conf_own_cert(&t->conf, &t->own, &t->key)) != 0)
        rc = ctx_error(err, err_len, VREV_ERR_CRYPTO, "cannot use", m->cert.origin, ret);
    if (rc == 0)
        rc = set_alpn(t, m->alpn, m->n_alpn);
    if (rc < 0) {
        vrev__tls_backend_ctx_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* --- IP address check ----------------------------------------------------------------------- */

/* GeneralNames ::= SEQUENCE OF GeneralName; iPAddress is [7] IMPLICIT OCTET STRING. */
static bool names_have_ip(unsigned char *p, const unsigned char *end, const uint8_t *ip,
                          size_t ip_len)
{
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return false;
    end = p + len;
    while (p < end) {
        unsigned char tag = *p++;
        if (mbedtls_asn1_get_len(&p, end, &len)) /* also checks len against end */
            return false;
        if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == ip_len && !memcmp(p, ip, len))
            return true;
        p += len;
    }
    return false;
}

/* Extensions ::= SEQUENCE OF SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
 * extnValue OCTET STRING }; mbedTLS keeps them raw in v3_ext. */
static bool crt_has_ip(const mbedtls_x509_crt *crt, const uint8_t *ip, size_t ip_len)
{
    unsigned char *p = crt->v3_ext.p;
    size_t len;
    if (!p || !crt->v3_ext.len)
        return false;
    const unsigned char *end = p + crt->v3_ext.len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return false;
    end = p + len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            return false;
        unsigned char *ext_end = p + len;
        mbedtls_asn1_buf oid = {.tag = MBEDTLS_ASN1_OID};
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID))
            return false;
        oid.p = p;
        p += oid.len;
        int critical, r = mbedtls_asn1_get_bool(&p, ext_end, &critical);
        if (r != 0 && r != MBEDTLS_ERR_ASN1_UNEXPECTED_TAG)
            return false;
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING))
            return false;
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0)
            return names_have_ip(p, p + len, ip, ip_len);
        p = ext_end;
    }
    return false;
}

/* Pins (tls_pin.h): at depth 0, called last, crt is the first certificate the peer sent and
 * ->next the others in the order they came, each with its raw DER. A mismatch is a fatal
 * error of the callback (not a flag: an insecure client verifies with VERIFY_OPTIONAL, which
 * lets flags pass), so the handshake ends with an alert. */
static int check_pins(struct vrev__tls_engine *e, const mbedtls_x509_crt *crt)
{
    const struct vrev__tls_common *c = &e->t->common;
    struct vrev__tls_chain_hash h;
    vrev__tls_chain_hash_init(&h);
    for (; crt && crt->raw.len; crt = crt->next)
        if (vrev__tls_chain_hash_add(&h, crt->raw.p, crt->raw.len) < 0) {
            snprintf(e->err, sizeof(e->err), "certificate pin: cannot hash the server's chain");
            e->pin_failed = true;
            return MBEDTLS_ERR_X509_FATAL_ERROR;
        }
    if (vrev__tls_pin_check(&h, (const uint8_t(*)[VREV__TLS_PIN_LEN])c->pins, c->n_pins, e->err,
                            sizeof(e->err)))
        return 0;
    e->pin_failed = true;
    return MBEDTLS_ERR_X509_FATAL_ERROR;
}

static int verify_peer(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct vrev__tls_engine *e = arg;
    const struct vrev__tls_common *c = &e->t->common;
    if (depth == 0 && e->ip_len && !c->insecure && !crt_has_ip(crt, e->ip, e->ip_len))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return depth == 0 && c->n_pins ? check_pins(e, crt) : 0;
}

/* --- connections ---------------------------------------------------------------------------- */

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
    int n = vrev__tls_io_send(arg, buf, len);
    if (n >= 0)
        return n;
    return n == VREV__TLS_AGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_SSL_ALLOC_FAILED;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
    int n = vrev__tls_io_recv(arg, buf, len);
    return n == VREV__TLS_AGAIN ? MBEDTLS_ERR_SSL_WANT_READ : n; /* 0: end of stream */
}

static int set_name(struct vrev__tls_engine *e, const char *name, bool is_ip)
{
    if (!is_ip) /* SNI, and the name checked against dNSName SANs / CN */
        return mbedtls_ssl_set_hostname(&e->ssl, name) == 0 ? 0 : VREV_ERR_NOMEM;
    if (inet_pton(AF_INET, name, e->ip) == 1)
        e->ip_len = 4;
    else if (inet_pton(AF_INET6, name, e->ip) == 1)
        e->ip_len = 16;
    else
        return VREV_ERR_INVAL;
    return 0;
}

int vrev__tls_engine_new(struct vrev__tls_ctx *t, struct vrev__tls_io *io, const char *name,
                         bool is_ip, struct vrev__tls_engine **out)
{
    vrev_ctx *ctx = t->common.ctx;
    struct vrev__tls_engine *e = vrev__calloc(ctx, 1, sizeof(*e));
    if (!e)
        return VREV_ERR_NOMEM;
    e->ctx = ctx;
    e->t = t;
    mbedtls_ssl_init(&e->ssl);
    int rc = mbedtls_ssl_setup(&e->ssl, &t->conf) == 0 ? 0 : VREV_ERR_NOMEM;
    if (rc == 0 && !t->common.server && name)
        rc = set_name(e, name, is_ip);
    if (rc == 0 && !t->common.server && (e->ip_len || t->common.n_pins))
        mbedtls_ssl_set_verify(&e->ssl, verify_peer, e);
    if (rc < 0) {
        vrev__tls_engine_free(e);
        return rc;
    }
    mbedtls_ssl_set_bio(&e->ssl, io, bio_send, bio_recv, NULL);
    *out = e;
    return 0;
}

void vrev__tls_engine_free(struct vrev__tls_engine *e)
{
    if (!e)
        return;
    mbedtls_ssl_free(&e->ssl);
    vrev__free(e->ctx, e);
}

int vrev__tls_engine_handshake(struct vrev__tls_engine *e)
{
    int ret = mbedtls_ssl_handshake(&e->ssl);
    return ret == 0 ? 0 : result(e, ret);
}

int vrev__tls_engine_read(struct vrev__tls_engine *e, uint8_t *buf, size_t len)
{
    int ret = mbedtls_ssl_read(&e->ssl, buf, len);
    if (ret > 0)
        return ret;
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return VREV__TLS_CLOSED;
    return result(e, ret); /* 0: the transport ended without close_notify */
}

int vrev__tls_engine_write(struct vrev__tls_engine *e, const uint8_t *buf, size_t len)
{
    int ret = mbedtls_ssl_write(&e->ssl, buf, len);
    return ret > 0 ? ret : result(e, ret);
}

int vrev__tls_engine_close_notify(struct vrev__tls_engine *e)
{
    int ret = mbedtls_ssl_close_notify(&e->ssl);
    return ret == 0 ? 0 : result(e, ret);
}

const char *vrev__tls_engine_error(const struct vrev__tls_engine *e)
{
    return e->err[0] ? e->err : "TLS failure";
}

const char *vrev__tls_engine_alpn(struct vrev__tls_engine *e)
{
    return mbedtls_ssl_get_alpn_protocol(&e->ssl);
}

void vrev__tls_engine_describe(struct vrev__tls_engine *e, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", mbedtls_ssl_get_version(&e->ssl),
             mbedtls_ssl_get_ciphersuite(&e->ssl));
}

#endif /* VREV_CRYPTO_MBEDTLS */
