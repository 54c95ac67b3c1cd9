/* Logs and metrics for vrev run / portal / bridge: --metrics, --log-format, --access-log,
 * --error-log, and SIGUSR1 (reopen the log files, for logrotate).
 *
 * Text lines are V2Ray's: "YYYY/MM/DD HH:MM:SS " then, for the access log, what V2Ray 4.34
 * writes (vrev_access_format), and for the error log "[level] component: message". JSON lines
 * are one object each: time (RFC 3339, UTC), level, component, message, and for access lines
 * from, to, inbound, outbound, status, reason. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cli.h"

/* The process's log sinks (one process, one set of files). */
static struct {
    int json;
    FILE *error; /* NULL: stderr */
    char *error_path;
    FILE *access;      /* NULL: no access log */
    char *access_path; /* NULL with access set: stdout (V2Ray's console) */
} sink;

static void stamp_text(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(buf, cap, "%Y/%m/%d %H:%M:%S", &tm);
}

static void stamp_json(char *buf, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", date, (int)(tv.tv_usec / 1000));
}

/* s as a JSON string (quotes included): control characters and bytes that are not UTF-8 text
 * are escaped, so a line is always valid JSON whatever a peer put in a name. */
static void put_json(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* s on a text line: a control character (a newline in a tag would forge a line) as '?'. */
static void put_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

static void put_field(FILE *f, const char *key, const char *value)
{
    fprintf(f, ",\"%s\":", key);
    put_json(f, value);
}

void vrev_cli_log(int level, const char *component, const char *message, void *user)
{
    (void)user;
    FILE *f = sink.error ? sink.error : stderr;
    char stamp[40];
    if (sink.json) {
        stamp_json(stamp, sizeof(stamp));
        fprintf(f, "{\"time\":\"%s\"", stamp);
        put_field(f, "level", vrev_log_level_name(level));
        put_field(f, "component", component);
        put_field(f, "message", message);
        fputs("}\n", f);
    } else {
        stamp_text(stamp, sizeof(stamp));
        fprintf(f, "%s [%s] ", stamp, vrev_log_level_name(level));
        put_text(f, component);
        fputs(": ", f);
        put_text(f, message);
        fputc('\n', f);
    }
}

static void on_access(const char *from, const char *to, const char *in_tag, const char *out_tag,
                      int accepted, const char *reason, void *user)
{
    (void)user;
    FILE *f = sink.access ? sink.access : stdout;
    char line[1024], stamp[40];
    vrev_access_format(line, sizeof(line), from, to, out_tag, accepted, reason);
    if (sink.json) {
        stamp_json(stamp, sizeof(stamp));
        fprintf(f, "{\"time\":\"%s\",\"level\":\"info\",\"component\":\"access\"", stamp);
        put_field(f, "message", line);
        put_field(f, "from", from);
        put_field(f, "to", to);
        put_field(f, "inbound", in_tag);
        put_field(f, "outbound", out_tag);
        put_field(f, "status", accepted ? "accepted" : "rejected");
        put_field(f, "reason", reason);
        fputs("}\n", f);
    } else {
        stamp_text(stamp, sizeof(stamp));
        fprintf(f, "%s ", stamp);
        put_text(f, line);
        fputc('\n', f);
    }
}

int vrev_cli_obs_option(struct vrev_cli_obs *o, const char *opt, const char *val)
{
    if (!strcmp(opt, "--metrics"))
        o->metrics = val;
    else if (!strcmp(opt, "--access-log") && o->files)
        o->access_log = val;
    else if (!strcmp(opt, "--error-log") && o->files)
        o->error_log = val;
    else if (!strcmp(opt, "--log-format")) {
        if (strcmp(val, "text") && strcmp(val, "json")) {
            fprintf(stderr, "vrev: --log-format: \"text\" or \"json\", not '%s'\n", val);
            return -1;
        }
        o->json = !strcmp(val, "json");
    } else
        return 0;
    return 1;
}

static FILE *open_log(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "vrev: cannot open log file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0); /* whole lines, at once: tail -f and crashes see them */
    return f;
}

/* Reopen a log file in place (logrotate has moved the old one away); on failure keep the old
 * one, and say so. */
static void reopen(FILE **f, const char *path)
{
    if (!*f || !path)
        return;
    FILE *n = open_log(path);
    if (!n)
        return;
    fclose(*f);
    *f = n;
}

static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what, (void)arg;
    reopen(&sink.error, sink.error_path);
    reopen(&sink.access, sink.access_path);
    vrev_cli_log(VREV_LOG_INFO, "cli", "SIGUSR1: log files reopened", NULL);
}

/* A copy of path, or NULL (said on stderr) */
static char *copy_path(const char *path)
{
    char *c = path ? strdup(path) : NULL;
    if (path && !c)
        fprintf(stderr, "vrev: out of memory\n");
    return c;
}

/* Open `path` for *f (its name copied to *f_path): 0, or -1 (said on stderr). */
static int open_sink(FILE **f, char **f_path, const char *path)
{
    if (!path)
        return 0;
    if (!(*f_path = copy_path(path)) || !(*f = open_log(path))) {
        free(*f_path);
        *f_path = NULL;
        return -1;
    }
    return 0;
}

int vrev_cli_obs_logs(struct vrev_cli_obs *o, vrev_ctx *ctx, int access_console)
{
    sink.json = o->json;
    if (open_sink(&sink.error, &sink.error_path, o->error_log) < 0 ||
        open_sink(&sink.access, &sink.access_path, o->access_log) < 0)
        return -1;
    if (!o->access_log && access_console)
        setvbuf(stdout, NULL, _IOLBF, 0); /* a line as it happens, as to a file */
    if (o->access_log || access_console)
        vrev_ctx_set_access_log(ctx, on_access, NULL);
    struct event_base *base = vrev_ctx_base(ctx);
    if (!(o->usr1 = evsignal_new(base, SIGUSR1, on_usr1, NULL)) || evsignal_add(o->usr1, NULL)) {
        fprintf(stderr, "vrev: cannot install the SIGUSR1 handler\n");
        return -1;
    }
    return 0;
}

static int same_path(const char *a, const char *b)
{
    return a && b ? !strcmp(a, b) : a == b;
}

/* Point *f at `path` (NULL: none) unless it is there already; on failure keep the old one. */
static void retarget(FILE **f, char **f_path, const char *path, const char *what)
{
    if (same_path(*f_path, path))
        return;
    FILE *n = NULL;
    char *n_path = NULL;
    if (open_sink(&n, &n_path, path) < 0) {
        vrev_cli_log(VREV_LOG_ERROR, "cli", what, NULL);
        return;
    }
    if (*f)
        fclose(*f);
    free(*f_path);
    *f = n;
    *f_path = n_path;
    if (f == &sink.error)
        vrev_cli_log(VREV_LOG_INFO, "cli", "reload: the log goes on here", NULL);
}

void vrev_cli_obs_retarget(struct vrev_cli_obs *o, vrev_ctx *ctx, vrev_instance *inst,
                           vrev_portal *p, vrev_bridge *b, const struct vrev_cli_obs *want,
                           int access_console)
{
    sink.json = want->json;
    o->json = want->json;
    retarget(&sink.error, &sink.error_path, want->error_log,
             "reload: the new error log cannot be opened: the old one stays");
    retarget(&sink.access, &sink.access_path, want->access_log,
             "reload: the new access log cannot be opened: the old one stays");
    vrev_ctx_set_access_log(ctx, sink.access || access_console ? on_access : NULL, NULL);
    if (same_path(want->metrics, o->metrics))
        return;
    vrev_metrics_server_free(o->server);
    o->server = NULL;
    char *copy = copy_path(want->metrics);
    free(o->metrics_copy);
    o->metrics = o->metrics_copy = copy;
    if (vrev_cli_obs_metrics(o, ctx, inst, p, b) < 0)
        vrev_cli_log(VREV_LOG_ERROR, "cli", "reload: the new metrics address cannot be served",
                     NULL);
}

int vrev_cli_obs_metrics(struct vrev_cli_obs *o, vrev_ctx *ctx, vrev_instance *inst, vrev_portal *p,
                         vrev_bridge *b)
{
    if (!o->metrics)
        return 0;
    char err[256];
    int rc = vrev_metrics_server_new(&o->server, ctx, o->metrics, err, sizeof(err));
    if (rc == 0)
        rc = inst ? vrev_metrics_server_add_instance(o->server, inst)
             : p  ? vrev_metrics_server_add_portal(o->server, p)
                  : vrev_metrics_server_add_bridge(o->server, b);
    if (rc < 0) {
        fprintf(stderr, "vrev: %s\n", o->server ? vrev_strerror(rc) : err);
        return -1;
    }
    fprintf(stderr, "vrev: metrics on %s port %u (/metrics, /ready)\n", o->metrics,
            vrev_metrics_server_port(o->server));
    return 0;
}

void vrev_cli_obs_stop(struct vrev_cli_obs *o)
{
    vrev_metrics_server_free(o->server);
    o->server = NULL;
    if (o->usr1)
        event_free(o->usr1);
    o->usr1 = NULL;
    free(o->metrics_copy);
    o->metrics = o->metrics_copy = NULL;
}

void vrev_cli_obs_close(void)
{
    if (sink.error)
        fclose(sink.error);
    if (sink.access)
        fclose(sink.access);
    free(sink.error_path);
    free(sink.access_path);
    memset(&sink, 0, sizeof(sink));
}
