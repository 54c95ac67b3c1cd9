/* vrev run / vrev test: run (or only check) a V2Ray v4 JSON configuration. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "vrev.h"

/* Config files larger than this are refused by the loader anyway (1 MiB). */
#define CONFIG_READ_MAX ((size_t)1 << 20)

struct run_opts {
    const char *config;
    const char *pid_file;
    int log_level; /* -2: as the config says */
    struct vrev_cli_limits limits;
    struct vrev_cli_obs obs; /* --metrics, --log-format */
    int metrics_cli;         /* --metrics given: the config's "vrev.metrics" is not used */
};

int vrev_cli_parse_log_level(const char *s)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]) || (i == 1 && !strcmp(s, "warn")))
            return i;
    if (!strcmp(s, "none"))
        return -1;
    return -3;
}

static int usage(const char *cmd, FILE *out)
{
    fprintf(out,
            "usage: vrev %s -c FILE [--log-level error|warning|info|debug|none]\n"
            "       [--limit NAME=VALUE ...] [--pid-file FILE] [--metrics HOST:PORT]\n"
            "       [--log-format text|json]\n"
            "  -c, -config, --config FILE   a V2Ray v4 JSON configuration (comments allowed)\n"
            "  --pid-file FILE              write the process id there (removed at exit)\n"
            "  --limit NAME=VALUE           a resource limit (vrev limits lists them); the\n"
            "                               config's \"vrev\": {\"limits\": {...}} wins over it\n"
            "  --metrics HOST:PORT          serve /metrics (Prometheus) and /ready there (over\n"
            "                               the config's \"vrev\": {\"metrics\": ...})\n"
            "  --log-format text|json       json: one object a line (log files: the config's\n"
            "                               \"log\"; SIGUSR1 reopens them)\n"
            "%s",
            cmd,
            !strcmp(cmd, "run")
                ? "Runs until SIGINT or SIGTERM; SIGHUP (vrev reload) re-reads FILE and\n"
                  "applies what changed, keeping live sessions and tunnels.\n"
                : "Checks the configuration and exits 0 if it is valid.\n");
    return out == stdout ? 0 : 2;
}

static int parse(const char *cmd, int argc, char **argv, struct run_opts *o)
{
    o->config = NULL;
    o->pid_file = NULL;
    o->log_level = -2;
    o->limits.n = 0;
    memset(&o->obs, 0, sizeof(o->obs));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = i + 1 < argc ? vrev_cli_obs_option(&o->obs, a, argv[i + 1]) : 0;
        if (r < 0)
            return 2;
        if (r > 0) {
            i++;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(cmd, stdout) + 100;
        if ((!strcmp(a, "-c") || !strcmp(a, "-config") || !strcmp(a, "--config")) && i + 1 < argc) {
            o->config = argv[++i];
        } else if (!strcmp(a, "--pid-file") && i + 1 < argc) {
            o->pid_file = argv[++i];
        } else if (!strcmp(a, "--limit") && i + 1 < argc) {
            if (vrev_cli_limit_add(&o->limits, argv[++i]) < 0)
                return 2;
        } else if (!strcmp(a, "--log-level") && i + 1 < argc) {
            o->log_level = vrev_cli_parse_log_level(argv[++i]);
            if (o->log_level < -1) {
                fprintf(stderr, "vrev %s: unknown log level '%s'\n", cmd, argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "vrev %s: unexpected argument '%s'\n", cmd, a);
            return usage(cmd, stderr);
        }
    }
    if (!o->config) {
        fprintf(stderr, "vrev %s: no configuration given (-c FILE)\n", cmd);
        return usage(cmd, stderr);
    }
    return 0;
}

/* Read the whole file (one byte more than the limit, so the loader sees it is too big). */
char *vrev_cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "vrev: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CONFIG_READ_MAX + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_READ_MAX + 1, f) : 0;
    int failed = !buf || ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "vrev: %s: cannot read\n", path);
        if (buf)
            vrev_cli_wipe(buf, n);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    fprintf(stderr, "vrev: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopbreak(arg);
}

/* The config's "log" files (V2Ray's rules: an access log on the console is standard output):
 * the error and access files (NULL: none); returns 1 for an access log on the console. */
static int log_targets(vrev_instance *inst, const char **error_log, const char **access_log)
{
    const char *path;
    *error_log = vrev_instance_log_target(inst, 0, &path) == VREV_LOG_TARGET_FILE ? path : NULL;
    int access = vrev_instance_log_target(inst, 1, access_log);
    return access == VREV_LOG_TARGET_CONSOLE;
}

/* SIGHUP: the file again, applied by vrev_instance_reload (which logs what changed, or why
 * nothing did). */
struct reload {
    vrev_instance *inst;
    vrev_ctx *ctx;
    struct run_opts *o;
};

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    struct reload *r = arg;
    if (!strcmp(r->o->config, "-")) {
        vrev_cli_log(VREV_LOG_ERROR, "run",
                     "SIGHUP: the configuration came from stdin: not reloaded", NULL);
        return;
    }
    size_t len;
    char *text = vrev_cli_read_file(r->o->config, &len);
    if (!text)
        return; /* it said why; the running configuration stays */
    char err[1024];
    int rc = vrev_instance_reload(r->inst, text, len, r->o->config, err, sizeof(err));
    vrev_cli_wipe(text, len);
    free(text);
    if (rc < 0)
        return;
    if (r->o->log_level < -1) /* the config's "log.loglevel" decides */
        vrev_ctx_set_log(r->ctx, vrev_instance_log_level(r->inst), vrev_cli_log, NULL);
    struct vrev_cli_obs want = {.json = r->o->obs.json};
    int console = log_targets(r->inst, &want.error_log, &want.access_log);
    want.metrics = r->o->metrics_cli ? r->o->obs.metrics : vrev_instance_metrics_address(r->inst);
    vrev_cli_obs_retarget(&r->o->obs, r->ctx, r->inst, NULL, NULL, &want, console);
}

static int serve(struct event_base *base, vrev_instance *inst, vrev_ctx *ctx, struct run_opts *o)
{
    struct reload r = {inst, ctx, o};
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sighup = evsignal_new(base, SIGHUP, on_hup, &r);
    int status = 0;
    if (!sigint || !sigterm || !sighup || evsignal_add(sigint, NULL) < 0 ||
        evsignal_add(sigterm, NULL) < 0 || evsignal_add(sighup, NULL) < 0) {
        fprintf(stderr, "vrev: cannot install signal handlers\n");
        status = 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (status == 0 && vrev_cli_pidfile_write(o->pid_file) < 0)
        status = 1;
    if (status == 0) {
        vrev_instance_start(inst);
        fprintf(stderr, "vrev %s started\n", vrev_version_string());
        vrev_cli_mem_start(base);
        event_base_dispatch(base);
        vrev_cli_mem_stop();
        vrev_cli_pidfile_remove(o->pid_file);
    }
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (sighup)
        event_free(sighup);
    return status;
}

/* The log files and "vrev": {"metrics"}, unless the command line says otherwise. */
static int start_obs(struct run_opts *o, vrev_ctx *ctx, vrev_instance *inst)
{
    int console = log_targets(inst, &o->obs.error_log, &o->obs.access_log);
    o->metrics_cli = o->obs.metrics != NULL;
    const char *addr = vrev_instance_metrics_address(inst); /* a reload frees it: copied */
    if (!o->obs.metrics && addr && !(o->obs.metrics = o->obs.metrics_copy = strdup(addr))) {
        fprintf(stderr, "vrev: out of memory\n");
        return -1;
    }
    if (vrev_cli_obs_logs(&o->obs, ctx, console) < 0)
        return -1;
    return vrev_cli_obs_metrics(&o->obs, ctx, inst, NULL, NULL);
}

static int run_or_test(const char *cmd, int argc, char **argv, int only_test)
{
    struct run_opts o;
    int rc = parse(cmd, argc, argv, &o);
    if (rc)
        return rc >= 100 ? rc - 100 : rc;
    size_t len;
    char *text = vrev_cli_read_file(o.config, &len);
    if (!text)
        return 1;
    vrev_ctx *ctx = NULL;
    vrev_instance *inst = NULL;
    char err[1024] = "";
    rc = vrev_ctx_new_loop(&ctx, vrev_cli_allocator()); /* the context frees its loop */
    struct event_base *base = vrev_ctx_base(ctx);
    if (rc == 0) {
        vrev_ctx_set_log(ctx, o.log_level >= -1 ? o.log_level : VREV_LOG_WARN, vrev_cli_log, NULL);
        rc = vrev_cli_limits_apply(&o.limits, ctx);
    }
    if (rc == 0)
        rc = vrev_instance_new_json(&inst, ctx, text, len, o.config, err, sizeof(err));
    vrev_cli_wipe(text, len); /* UUIDs, passwords, inline keys */
    free(text);
    int status = 0;
    if (rc < 0) {
        fprintf(stderr, "vrev: %s\n", err[0] ? err : vrev_strerror(rc));
        status = 1;
    } else if (only_test) {
        printf("Configuration OK.\n");
    } else {
        if (o.log_level < -1) /* no --log-level: the config's "log.loglevel" decides */
            vrev_ctx_set_log(ctx, vrev_instance_log_level(inst), vrev_cli_log, NULL);
        vrev_cli_nofile_report(o.log_level >= -1 ? o.log_level : vrev_instance_log_level(inst));
        status = start_obs(&o, ctx, inst) < 0 ? 1 : serve(base, inst, ctx, &o);
        vrev_cli_obs_stop(&o.obs);
    }
    vrev_instance_free(inst);
    vrev_ctx_free(ctx);
    vrev_cli_obs_close();
    return status;
}

int vrev_cli_run(int argc, char **argv)
{
    return run_or_test("run", argc, argv, 0);
}

int vrev_cli_test(int argc, char **argv)
{
    return run_or_test("test", argc, argv, 1);
}
