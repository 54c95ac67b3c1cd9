/* vrev portal / vrev bridge / vrev uuid: the easy path, no JSON (include/vrev/tunnel.h). */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli.h"
#include "vrev.h"

struct cli_opts {
    vrev_tunnel_opts *t;
    struct vrev_cli_limits limits;
    int print_config;
    int log_level;
    int tls;
    int security_none;
    int h2;           /* --transport h2 */
    const char *cert; /* portal: --cert and --key may come in either order */
    const char *key;
};

static int usage(int portal, FILE *out)
{
    if (portal)
        fprintf(out,
                "usage: vrev portal --listen HOST:PORT --public HOST:PORT[=NAME] [...] --id UUID\n"
                "                   [--tls --cert FILE --key FILE]\n"
                "                   [--transport tcp|ws|h2 [--path /PATH] [--host NAME]]\n"
                "                   [--security aes-128-gcm|chacha20-poly1305|none]\n"
                "                   [--domain NAME] [--print-config] [--log-level LEVEL]\n"
                "  --listen   where bridges connect (the tunnel)\n"
                "  --public   a public listener; its connections go to the bridge target NAME\n"
                "             (default \"%s\"); repeat for more\n"
                "  --tls      bridges connect with TLS (certificate and key: --cert, --key)\n"
                "  --accept-proxy-protocol  both listeners expect a PROXY v1/v2 header first\n"
                "             (HAProxy send-proxy[-v2] in front): it names the client\n",
                VREV_TUNNEL_DEFAULT_NAME);
    else
        fprintf(
            out,
            "usage: vrev bridge --portal HOST:PORT --id UUID --to [NAME=]HOST:PORT[,OPT] [...]\n"
            "                   [--tls [--ca FILE | --insecure] [--sni NAME] [--pin sha256:HASH]]\n"
            "                   [--transport tcp|ws|h2 [--path /PATH] [--host NAME]]\n"
            "                   [--security aes-128-gcm|chacha20-poly1305|none]\n"
            "                   [--domain NAME] [--print-config] [--log-level LEVEL]\n"
            "  --portal   the portal's tunnel address\n"
            "  --to       a local service for target NAME (default \"%s\"), or for the\n"
            "             HOST:PORT a portal asks for (--to 127.0.0.1:80=127.0.0.1:8080, for\n"
            "             a V2Ray portal); the bridge reaches nothing but these;\n"
            "             OPT: proxy-protocol=v1|v2 sends the service a PROXY header first\n"
            "  --tls      the portal speaks TLS: its certificate is verified against the system\n"
            "             roots and --ca FILE, for the portal's host name or --sni NAME\n"
            "  --pin      the portal's certificate chain must also hash to this (sha256: and\n"
            "             64 hex digits or base64, as V2Ray's pinnedPeerCertificateChainSha256;\n"
            "             repeatable; with --insecure, the only check)\n",
            VREV_TUNNEL_DEFAULT_NAME);
    fprintf(out,
            "  --id       the shared secret (a UUID: vrev uuid makes one); or set VREV_ID\n"
            "  --security the VMess body cipher; \"none\" without --tls leaves the tunnel\n"
            "             readable and changeable by anyone on the path (warned at start)\n"
            "  --domain   the tunnel's name on both sides (default %s)\n"
            "  --transport the carrier below VMess, as V2Ray's streamSettings.network: tcp\n"
            "             (default), ws (WebSocket) or h2 (HTTP/2; a bridge needs --tls)\n"
            "  --path     ws, h2: the HTTP path (default /); other paths get 404\n"
            "  --host     ws bridge: the Host header; h2: the one host name both sides use\n"
            "             (default www.example.com, as V2Ray)\n"
            "  --limit NAME=VALUE  a resource limit (repeatable; vrev limits lists them)\n"
            "  --print-config  print the equivalent V2Ray JSON configuration and exit\n",
            VREV_TUNNEL_DEFAULT_DOMAIN);
    return out == stdout ? 0 : 2;
}

/* One option with its value. Returns 1 if consumed, 0 if unknown, -1 on a bad value. */
static int option(struct cli_opts *c, int portal, const char *opt, const char *val)
{
    vrev_tunnel_opts *t = c->t;
    int rc;
    if (portal && !strcmp(opt, "--cert"))
        c->cert = val;
    if (!strcmp(opt, "--limit"))
        return vrev_cli_limit_add(&c->limits, val) < 0 ? -1 : 1; /* it said why */
    if (!strcmp(opt, "--id"))
        rc = vrev_tunnel_opts_set_id(t, val);
    else if (!strcmp(opt, "--security")) {
        rc = vrev_tunnel_opts_set_security(t, val);
        c->security_none = rc == 0 && !strcmp(val, "none");
    } else if (!strcmp(opt, "--domain"))
        rc = vrev_tunnel_opts_set_domain(t, val);
    else if (!strcmp(opt, "--transport")) {
        rc = vrev_tunnel_opts_set_carrier(t, val);
        c->h2 = rc == 0 && (!strcmp(val, "h2") || !strcmp(val, "http"));
    } else if (!strcmp(opt, "--path"))
        rc = vrev_tunnel_opts_set_carrier_path(t, val);
    else if (!strcmp(opt, "--host"))
        rc = vrev_tunnel_opts_set_carrier_host(t, val);
    else if (!strcmp(opt, "--log-level"))
        rc = (c->log_level = vrev_cli_parse_log_level(val)) < -1 ? VREV_ERR_INVAL : 0;
    else if (portal && !strcmp(opt, "--cert"))
        rc = vrev_tunnel_opts_set_tls_cert(t, val, c->key ? c->key : val);
    else if (portal && !strcmp(opt, "--key")) {
        c->key = val;
        rc = c->cert ? vrev_tunnel_opts_set_tls_cert(t, c->cert, val) : 0;
    } else if (!portal && !strcmp(opt, "--ca"))
        rc = vrev_tunnel_opts_set_tls_ca(t, val);
    else if (!portal && !strcmp(opt, "--sni"))
        rc = vrev_tunnel_opts_set_tls_sni(t, val);
    else if (!portal && !strcmp(opt, "--pin"))
        rc = vrev_tunnel_opts_add_tls_pin(t, val);
    else if (portal && !strcmp(opt, "--listen"))
        rc = vrev_tunnel_opts_set_listen(t, val);
    else if (portal && !strcmp(opt, "--public")) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", val);
        char *eq = strrchr(buf, '=');
        if (eq)
            *eq = '\0';
        rc = vrev_tunnel_opts_add_public(t, buf, eq ? eq + 1 : NULL);
    } else if (!portal && !strcmp(opt, "--portal"))
        rc = vrev_tunnel_opts_set_portal(t, val);
    else if (!portal && !strcmp(opt, "--to")) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", val);
        char *pp = strstr(buf, ",proxy-protocol="), *eq;
        if (pp)
            *pp = '\0';
        if ((eq = strchr(buf, '=')))
            *eq = '\0';
        rc = vrev_tunnel_opts_add_target(t, eq ? buf : NULL, eq ? eq + 1 : buf);
        if (rc == 0 && pp)
            rc = vrev_tunnel_opts_set_target_proxy_protocol(t, eq ? buf : NULL,
                                                            !strcmp(pp + 16, "v1")   ? 1
                                                            : !strcmp(pp + 16, "v2") ? 2
                                                                                     : -1);
    } else
        return 0;
    if (rc < 0) {
        const char *why = vrev_tunnel_opts_error(t);
        fprintf(stderr, "vrev: %s: %s\n", opt, why[0] ? why : "invalid value");
        return -1;
    }
    return 1;
}

static int parse(struct cli_opts *c, int portal, int argc, char **argv)
{
    c->log_level = VREV_LOG_INFO;
    c->print_config = 0;
    c->tls = c->security_none = c->h2 = 0;
    c->limits.n = 0;
    c->cert = c->key = NULL;
    const char *env_id = getenv("VREV_ID");
    if (env_id && option(c, portal, "--id", env_id) < 0)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(portal, stdout) + 100;
        if (!strcmp(argv[i], "--print-config")) {
            c->print_config = 1;
            continue;
        }
        if (portal && !strcmp(argv[i], "--accept-proxy-protocol")) {
            vrev_tunnel_opts_set_accept_proxy_protocol(c->t, 1);
            continue;
        }
        if (!strcmp(argv[i], "--tls") || (!portal && !strcmp(argv[i], "--insecure"))) {
            if (!strcmp(argv[i], "--tls"))
                vrev_tunnel_opts_set_tls(c->t, (c->tls = 1));
            else
                vrev_tunnel_opts_set_tls_insecure(c->t, 1);
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vrev %s: '%s' needs a value\n", portal ? "portal" : "bridge", argv[i]);
            return usage(portal, stderr);
        }
        int r = option(c, portal, argv[i], argv[i + 1]);
        if (r < 0)
            return 2;
        if (r == 0) {
            fprintf(stderr, "vrev %s: unknown option '%s'\n", portal ? "portal" : "bridge",
                    argv[i]);
            return usage(portal, stderr);
        }
        i++;
    }
    if (!portal && c->h2 && !c->tls) {
        fprintf(stderr, "vrev bridge: --transport h2 needs --tls (V2Ray's HTTP/2 client speaks "
                        "it over TLS only; a portal behind a TLS front server is still dialled "
                        "with TLS)\n");
        return 2;
    }
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    fprintf(stderr, "vrev: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopbreak(arg);
}

static int print_config(const vrev_tunnel_opts *t, int portal)
{
    int n = vrev_tunnel_opts_print_config(t, portal, NULL, 0);
    char *buf = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || vrev_tunnel_opts_print_config(t, portal, buf, (size_t)n + 1) < 0) {
        fprintf(stderr, "vrev: cannot print the configuration: options missing (see --help)\n");
        free(buf);
        return 2;
    }
    fputs(buf, stdout);
    free(buf);
    return 0;
}

/* Live sessions: one descriptor each (the public client's, or the service's). */
static unsigned long long load_portal(void *arg)
{
    return vrev_portal_counter(arg, VREV_COUNTER_SESSIONS_ACTIVE);
}

static unsigned long long load_bridge(void *arg)
{
    return vrev_bridge_counter(arg, VREV_COUNTER_SESSIONS_ACTIVE);
}

static int serve(struct cli_opts *c, int portal)
{
    vrev_ctx *ctx = NULL;
    vrev_portal *p = NULL;
    vrev_bridge *b = NULL;
    char err[512] = "";
    int rc = vrev_ctx_new_loop(&ctx, vrev_cli_allocator()); /* the context frees its loop */
    struct event_base *base = vrev_ctx_base(ctx);
    if (rc == 0) {
        vrev_ctx_set_log(ctx, c->log_level, vrev_cli_log, NULL);
        rc = vrev_cli_limits_apply(&c->limits, ctx); /* before the objects copy them */
    }
    if (rc == 0 && c->security_none && !c->tls && c->log_level >= VREV_LOG_WARN)
        vrev_cli_log(VREV_LOG_WARN, portal ? "portal" : "bridge",
                     "--security none without --tls: the tunnel is neither encrypted nor "
                     "authenticated (VMess \"none\" has no integrity check on the mux stream); "
                     "anyone on the path can read it and change what it carries",
                     NULL);
    if (rc == 0)
        rc = portal ? vrev_portal_new(&p, ctx, c->t, err, sizeof(err))
                    : vrev_bridge_new(&b, ctx, c->t, err, sizeof(err));
    int status = 0;
    if (rc < 0) {
        fprintf(stderr, "vrev %s: %s\n", portal ? "portal" : "bridge",
                err[0] ? err : vrev_strerror(rc));
        status = 1;
    } else {
        struct event *si = evsignal_new(base, SIGINT, on_signal, base);
        struct event *st = evsignal_new(base, SIGTERM, on_signal, base);
        evsignal_add(si, NULL);
        evsignal_add(st, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (p) {
            fprintf(stderr, "vrev portal: tunnel on port %u\n", vrev_portal_tunnel_port(p));
        } else {
            vrev_bridge_start(b);
            fprintf(stderr, "vrev bridge: started\n");
        }
        vrev_cli_nofile_report(c->log_level);
        if (p)
            vrev_cli_nofile_watch(base, c->log_level, load_portal, p);
        else
            vrev_cli_nofile_watch(base, c->log_level, load_bridge, b);
        vrev_cli_mem_start(base);
        event_base_dispatch(base);
        vrev_cli_mem_stop();
        vrev_cli_nofile_unwatch();
        event_free(si);
        event_free(st);
    }
    vrev_portal_free(p);
    vrev_bridge_free(b);
    vrev_ctx_free(ctx);
    return status;
}

static int tunnel_main(int portal, int argc, char **argv)
{
    struct cli_opts c;
    if (vrev_tunnel_opts_new(&c.t) < 0)
        return 1;
    int rc = parse(&c, portal, argc, argv);
    if (rc == 0)
        rc = c.print_config ? print_config(c.t, portal) : serve(&c, portal);
    else if (rc >= 100)
        rc -= 100;
    vrev_tunnel_opts_free(c.t);
    return rc;
}

int vrev_cli_portal(int argc, char **argv)
{
    return tunnel_main(1, argc, argv);
}

int vrev_cli_bridge(int argc, char **argv)
{
    return tunnel_main(0, argc, argv);
}

int vrev_cli_uuid(void)
{
    uint8_t u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
        fprintf(stderr, "vrev uuid: no random bytes\n");
        return 1;
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (int i = 0; i < 16; i++)
        printf("%s%02x", (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "", u[i]);
    putchar('\n');
    return 0;
}
