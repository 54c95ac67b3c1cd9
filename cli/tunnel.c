/* vrev portal / vrev bridge / vrev uuid: the easy path, no JSON (include/vrev/tunnel.h). */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct vrev_cli_obs obs; /* --metrics, --log-format, --access-log, --error-log */
    char *obs_copies[3];     /* obs strings that came from --config-file (its text is freed) */
    const char *config_file; /* --config-file: more options, re-read on SIGHUP */
    const char *pid_file;
    char where[300]; /* "FILE:LINE: " while the file's options are read, else "" */
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
                "                   [--heartbeat DURATION] [--dead-after DURATION]\n"
                "                   [--max-sessions N] [--limit NAME=VALUE]\n"
                "                   [--config-file FILE] [--pid-file FILE]\n"
                "  --listen   where bridges connect (the tunnel)\n"
                "  --public   a public listener; its connections go to the bridge target NAME\n"
                "             (default \"%s\"); repeat for more\n"
                "  --tls      bridges connect with TLS (certificate and key: --cert, --key)\n"
                "  --cert, --key  the portal's certificate chain and private key (PEM files)\n"
                "  --heartbeat   a control message on each tunnel this often (default 2s, as\n"
                "                V2Ray; a vrev bridge's --dead-after must stay above it)\n"
                "  --dead-after  close a tunnel whose bytes stay unacknowledged this long\n"
                "                (TCP_USER_TIMEOUT; default 10s, 1s..1h)\n"
                "  --max-sessions  drain a tunnel once it has carried more than N sessions, so\n"
                "                that the bridge opens a fresh one (default 256, as V2Ray)\n"
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
            "                   [--dead-after DURATION] [--max-sessions N] [--limit NAME=VALUE]\n"
            "                   [--config-file FILE] [--pid-file FILE]\n"
            "  --portal   the portal's tunnel address; repeatable: a tunnel set to each portal\n"
            "             (portals behind one load balancer); a HOST name with several\n"
            "             addresses: a tunnel set to each address\n"
            "  --to       a local service for target NAME (default \"%s\"), or for the\n"
            "             HOST:PORT a portal asks for (--to 127.0.0.1:80=127.0.0.1:8080, for\n"
            "             a V2Ray portal); the bridge reaches nothing but these;\n"
            "             OPT: proxy-protocol=v1|v2 sends the service a PROXY header first\n"
            "  --tls      the portal speaks TLS: its certificate is verified against the system\n"
            "             roots and --ca FILE, for the portal's host name or --sni NAME\n"
            "  --insecure no certificate check (only --pin, if given): tests only\n"
            "  --pin      the portal's certificate chain must also hash to this (sha256: and\n"
            "             64 hex digits or base64, as V2Ray's pinnedPeerCertificateChainSha256;\n"
            "             repeatable; with --insecure, the only check)\n"
            "  --dead-after  close and redial a tunnel that has heard nothing from the portal\n"
            "                this long (default 7s, 1s..1h; keep it above the portal's heartbeat\n"
            "                period, 2s unless the portal was told otherwise)\n"
            "  --max-sessions  open another tunnel when the tunnels carry more than N live\n"
            "                sessions each on average (checked every 2s; default 16, as V2Ray)\n",
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
            "  --log-level error|warning|info|debug|none  (default info; to stderr)\n"
            "  DURATION   500ms, 10s, 2m, or a plain number of seconds\n"
            "  --limit NAME=VALUE  a resource limit (repeatable; vrev limits lists them)\n"
            "  --metrics HOST:PORT serve /metrics (Prometheus text) and /ready there\n"
            "  --access-log FILE   a line per session (V2Ray's access log format)\n"
            "  --error-log FILE    the log (default: standard error); SIGUSR1 reopens both\n"
            "  --log-format text|json  json: one object a line\n"
            "  --print-config  print the equivalent V2Ray JSON configuration and exit\n"
            "  --config-file FILE  more options from FILE, one per line without the dashes\n"
            "             (\"id 1b2c...\", \"to web=127.0.0.1:8080\", \"tls\"; # comments),\n"
            "             applied after the command line's; SIGHUP (vrev reload) re-reads it\n"
            "             and applies what changed, keeping live tunnels and sessions\n"
            "  --pid-file FILE  write the process id there (removed at exit)\n",
            VREV_TUNNEL_DEFAULT_DOMAIN);
    return out == stdout ? 0 : 2;
}

/* --heartbeat and --dead-after (durations), --max-sessions N: what V2Ray hard-codes. 0 would
 * mean "the default" to the library: refused here, where it would read as "none". Returns 1, or
 * -1 after saying why. */
static int tunable(vrev_tunnel_opts *t, int portal, const char *opt, const char *val)
{
    unsigned v = 0;
    const char *range = "1ms..1h";
    int rc = VREV_ERR_INVAL;
    if (!strcmp(opt, "--max-sessions")) {
        char *end = NULL;
        errno = 0;
        unsigned long n = (*val >= '0' && *val <= '9') ? strtoul(val, &end, 10) : 0;
        range = "a number of sessions, 1..65000";
        if (n > 0 && !errno && !*end && n <= 65000)
            rc = portal ? vrev_tunnel_opts_set_drain_after(t, (unsigned)n)
                        : vrev_tunnel_opts_set_sessions_per_tunnel(t, (unsigned)n);
    } else if (vrev_cli_parse_duration_ms(opt, val, &v) < 0) {
        return -1;
    } else if (!strcmp(opt, "--heartbeat")) {
        rc = v ? vrev_tunnel_opts_set_heartbeat_ms(t, v) : rc;
    } else {
        range = "1s..1h";
        rc = v ? vrev_tunnel_opts_set_dead_after_ms(t, v) : rc;
    }
    if (rc < 0) {
        fprintf(stderr, "vrev: %s '%s': out of range (%s)\n", opt, val, range);
        return -1;
    }
    return 1;
}

/* One option with its value. Returns 1 if consumed, 0 if unknown, -1 on a bad value. */
static int option(struct cli_opts *c, int portal, const char *opt, const char *val)
{
    vrev_tunnel_opts *t = c->t;
    int rc = vrev_cli_obs_option(&c->obs, opt, val);
    if (rc)
        return rc;
    if (portal && !strcmp(opt, "--cert"))
        c->cert = val;
    if (!strcmp(opt, "--limit"))
        return vrev_cli_limit_add(&c->limits, val) < 0 ? -1 : 1; /* it said why */
    if (!strcmp(opt, "--dead-after") || !strcmp(opt, "--max-sessions") ||
        (portal && !strcmp(opt, "--heartbeat")))
        return tunable(t, portal, opt, val);
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
        rc = vrev_tunnel_opts_add_portal(t, val);
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
        fprintf(stderr, "vrev: %s%s: %s\n", c->where, opt, why[0] ? why : "invalid value");
        return -1;
    }
    return 1;
}

/* The options in argv[first..argc) (a file's when `lines`: argv[i] came from lines[i]). */
static int parse_list(struct cli_opts *c, int portal, int argc, char **argv, int first,
                      const unsigned *lines, const char *file)
{
    const char *cmd = portal ? "vrev portal" : "vrev bridge";
    for (int i = first; i < argc; i++) {
        if (lines)
            snprintf(c->where, sizeof(c->where), "%s:%u: ", file, lines[i]);
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
        if (i + 1 >= argc || (lines && lines[i + 1] != lines[i])) {
            fprintf(stderr, "%s: %s'%s' needs a value\n", cmd, c->where, argv[i]);
            return lines ? 2 : usage(portal, stderr);
        }
        int r = 0;
        if (!strcmp(argv[i], "--config-file") || !strcmp(argv[i], "--pid-file")) {
            if (lines) {
                fprintf(stderr, "%s: %s'%s' belongs on the command line\n", cmd, c->where, argv[i]);
                return 2;
            }
            *(argv[i][2] == 'c' ? &c->config_file : &c->pid_file) = argv[i + 1];
            r = 1;
        } else {
            r = option(c, portal, argv[i], argv[i + 1]);
        }
        if (r < 0)
            return 2;
        if (r == 0) {
            fprintf(stderr, "%s: %sunknown option '%s'\n", cmd, c->where, argv[i]);
            return lines ? 2 : usage(portal, stderr);
        }
        i++;
    }
    c->where[0] = '\0';
    return 0;
}

/* The obs options the file set point into its text: copied (freed by free_obs_strings). */
static int keep_obs_strings(struct cli_opts *c, const struct vrev_cli_obs *before)
{
    const char **field[3] = {&c->obs.metrics, &c->obs.access_log, &c->obs.error_log};
    const char *was[3] = {before->metrics, before->access_log, before->error_log};
    for (int i = 0; i < 3; i++) {
        if (*field[i] == was[i])
            continue;
        if (!(c->obs_copies[i] = strdup(*field[i]))) {
            fprintf(stderr, "vrev: out of memory\n");
            return -1;
        }
        *field[i] = c->obs_copies[i];
    }
    return 0;
}

static void free_obs_strings(struct cli_opts *c)
{
    for (int i = 0; i < 3; i++)
        free(c->obs_copies[i]);
    memset(c->obs_copies, 0, sizeof(c->obs_copies));
}

/* The command line, then --config-file's options. */
static int parse(struct cli_opts *c, int portal, int argc, char **argv)
{
    c->log_level = VREV_LOG_INFO;
    c->print_config = 0;
    c->tls = c->security_none = c->h2 = 0;
    c->limits.n = 0;
    c->cert = c->key = c->config_file = c->pid_file = NULL;
    c->where[0] = '\0';
    memset(&c->obs, 0, sizeof(c->obs));
    memset(c->obs_copies, 0, sizeof(c->obs_copies));
    c->obs.files = 1;
    const char *env_id = getenv("VREV_ID");
    if (env_id && option(c, portal, "--id", env_id) < 0)
        return 2;
    int rc = parse_list(c, portal, argc, argv, 1, NULL, NULL);
    if (rc == 0 && c->config_file) {
        struct vrev_cli_conffile cf;
        char err[512];
        if (vrev_cli_conffile_read(c->config_file, &cf, err, sizeof(err)) < 0) {
            fprintf(stderr, "vrev: %s\n", err);
            rc = 2;
        } else {
            struct vrev_cli_obs before = c->obs;
            rc = parse_list(c, portal, cf.argc, cf.argv, 0, cf.line, c->config_file);
            if (rc == 0 && keep_obs_strings(c, &before) < 0)
                rc = 1;
        }
        c->cert = c->key = NULL; /* they pointed into the file's text */
        vrev_cli_conffile_free(&cf);
    }
    if (rc == 0 && !portal && c->h2 && !c->tls) {
        fprintf(stderr, "vrev bridge: --transport h2 needs --tls (V2Ray's HTTP/2 client speaks "
                        "it over TLS only; a portal behind a TLS front server is still dialled "
                        "with TLS)\n");
        return 2;
    }
    return rc;
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

/* SIGHUP: the command line and the file again, applied by vrev_portal_reload or
 * vrev_bridge_reload (they log what changed, or why nothing did). */
struct reload {
    struct cli_opts *c;
    int portal, argc;
    char **argv;
    vrev_ctx *ctx;
    vrev_portal *p;
    vrev_bridge *b;
};

static bool same_limits(const struct vrev_cli_limits *a, const struct vrev_cli_limits *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, b->v[i].name) || a->v[i].value != b->v[i].value)
            return false;
    return true;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    struct reload *r = arg;
    const char *who = r->portal ? "portal" : "bridge";
    if (!r->c->config_file) {
        vrev_cli_log(VREV_LOG_WARN, who, "SIGHUP: no --config-file to re-read", NULL);
        return;
    }
    struct cli_opts n;
    char err[512] = "";
    if (vrev_tunnel_opts_new(&n.t, r->ctx) < 0)
        return;
    int rc = parse(&n, r->portal, r->argc, r->argv);
    if (rc == 0 && !same_limits(&n.limits, &r->c->limits)) {
        snprintf(err, sizeof(err), "limit changed: that needs a restart");
        rc = 2;
    }
    if (rc == 0)
        rc = r->portal ? vrev_portal_reload(r->p, n.t, err, sizeof(err))
                       : vrev_bridge_reload(r->b, n.t, err, sizeof(err));
    if (rc > 0) { /* the options' own errors (rc < 0: the library has logged it) */
        char msg[700];
        snprintf(msg, sizeof(msg), "reload of %s failed (the running options stay)%s%s",
                 r->c->config_file, err[0] ? ": " : ": see above", err);
        vrev_cli_log(VREV_LOG_ERROR, who, msg, NULL);
    } else if (rc == 0) {
        r->c->log_level = n.log_level;
        vrev_ctx_set_log(r->ctx, n.log_level, vrev_cli_log, NULL);
        vrev_cli_obs_retarget(&r->c->obs, r->ctx, NULL, r->p, r->b, &n.obs, 0);
    }
    free_obs_strings(&n);
    vrev_tunnel_opts_free(n.t);
}

static int serve(struct cli_opts *c, int portal, int argc, char **argv)
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
    } else if (vrev_cli_obs_logs(&c->obs, ctx, 0) < 0 ||
               vrev_cli_obs_metrics(&c->obs, ctx, NULL, p, b) < 0) {
        status = 1;
    } else {
        struct reload r = {c, portal, argc, argv, ctx, p, b};
        struct event *si = evsignal_new(base, SIGINT, on_signal, base);
        struct event *st = evsignal_new(base, SIGTERM, on_signal, base);
        struct event *sh = evsignal_new(base, SIGHUP, on_hup, &r);
        evsignal_add(si, NULL);
        evsignal_add(st, NULL);
        evsignal_add(sh, NULL);
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
        if (vrev_cli_pidfile_write(c->pid_file) == 0) {
            vrev_cli_mem_start(base);
            event_base_dispatch(base);
            vrev_cli_mem_stop();
            vrev_cli_pidfile_remove(c->pid_file);
        } else {
            status = 1;
        }
        vrev_cli_nofile_unwatch();
        event_free(si);
        event_free(st);
        event_free(sh);
    }
    vrev_cli_obs_stop(&c->obs);
    vrev_portal_free(p);
    vrev_bridge_free(b);
    vrev_ctx_free(ctx);
    vrev_cli_obs_close();
    return status;
}

static int tunnel_main(int portal, int argc, char **argv)
{
    struct cli_opts c;
    /* before the context exists: the C library's allocator */
    if (vrev_tunnel_opts_new(&c.t, NULL) < 0)
        return 1;
    int rc = parse(&c, portal, argc, argv);
    if (rc == 0)
        rc = c.print_config ? print_config(c.t, portal) : serve(&c, portal, argc, argv);
    else if (rc >= 100)
        rc -= 100;
    free_obs_strings(&c);
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
    char id[37];
    int rc = vrev_uuid_new(id);
    if (rc < 0) {
        fprintf(stderr, "vrev uuid: %s\n", vrev_strerror(rc));
        return 1;
    }
    puts(id);
    return 0;
}
