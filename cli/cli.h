/* vrev command-line tool: subcommand entry points. Each returns the process exit status. */
#ifndef VREV_CLI_H
#define VREV_CLI_H

#include <stdint.h>

#include "vrev.h"

int vrev_cli_mux_dump(int argc, char **argv);
int vrev_cli_run(int argc, char **argv);
int vrev_cli_test(int argc, char **argv);
int vrev_cli_portal(int argc, char **argv);
int vrev_cli_bridge(int argc, char **argv);
int vrev_cli_uuid(void);
int vrev_cli_limits(int argc, char **argv); /* vrev limits: the table */
int vrev_cli_reload(int argc, char **argv); /* vrev reload: SIGHUP to a running vrev */

/* A whole file ("-": stdin), up to the config loader's limit plus one byte (cli/run.c). NULL
 * and a message on stderr on failure. The caller wipes and frees it. */
char *vrev_cli_read_file(const char *path, size_t *len);

/* --pid-file (cli/reload.c): written once the process serves (NULL path: nothing; -1 and a
 * message on failure), removed at exit. */
int vrev_cli_pidfile_write(const char *path);
void vrev_cli_pidfile_remove(const char *path);

/* --config-file FILE for vrev portal|bridge (cli/conffile.c): the command line's options, one
 * per line without the leading dashes ("id 1b2c...", "to web=127.0.0.1:8080", "tls"), '#'
 * starts a comment. Read into an argv-style list ("--id", "1b2c...", ...) for the option
 * parser, each argument with the line it came from. Returns 0, or -1 with a message
 * "FILE:LINE: ..." in err. Free with vrev_cli_conffile_free (it wipes the text: ids). */
struct vrev_cli_conffile {
    char **argv;
    unsigned *line; /* line[i]: the file's line of argv[i] */
    int argc;
    char *text;
    size_t len;
};
int vrev_cli_conffile_read(const char *path, struct vrev_cli_conffile *cf, char *err,
                           size_t err_len);
void vrev_cli_conffile_free(struct vrev_cli_conffile *cf);

/* --limit NAME=VALUE (cli/limits.c): checked as parsed (a message to stderr and -1 when bad),
 * applied to a context before anything is made from it. */
#define VREV_CLI_LIMITS_MAX 64
struct vrev_cli_limits {
    struct {
        const char *name; /* static (vrev_limit_info) */
        uint64_t value;
    } v[VREV_CLI_LIMITS_MAX];
    size_t n;
};
int vrev_cli_limit_add(struct vrev_cli_limits *l, const char *arg);
int vrev_cli_limits_apply(const struct vrev_cli_limits *l, vrev_ctx *ctx);
/* A duration (--heartbeat, --dead-after): "500ms", "10s", "2m" or a plain number of seconds,
 * up to VREV_CLI_DURATION_MAX_MS. Returns 0 with *ms set, or -1 after a message naming `opt`
 * to stderr. */
#define VREV_CLI_DURATION_MAX_MS 3600000u
int vrev_cli_parse_duration_ms(const char *opt, const char *s, unsigned *ms);
/* Logs and metrics (cli/obs.c). `files`: the command takes --access-log and --error-log. */
struct vrev_cli_obs {
    int files;
    int json;               /* --log-format json */
    const char *metrics;    /* --metrics HOST:PORT */
    const char *access_log; /* --access-log FILE */
    const char *error_log;  /* --error-log FILE */
    struct event *usr1;
    vrev_metrics_server *server;
    char *metrics_copy; /* owned: the address a reload named (metrics points to it) */
};
/* One option with its value: 1 if consumed, 0 if not ours, -1 if bad (said on stderr). */
int vrev_cli_obs_option(struct vrev_cli_obs *o, const char *opt, const char *val);
/* Open the log files, send access events to them (or to stdout with access_console, V2Ray's
 * console access log), and reopen them on SIGUSR1. Returns 0 or -1 (said on stderr). */
int vrev_cli_obs_logs(struct vrev_cli_obs *o, vrev_ctx *ctx, int access_console);
/* Serve --metrics for the one object given. Returns 0 (also without --metrics) or -1. */
int vrev_cli_obs_metrics(struct vrev_cli_obs *o, vrev_ctx *ctx, vrev_instance *inst, vrev_portal *p,
                         vrev_bridge *b);
/* After a reload of the one object given: the log format and files, and the metrics address
 * (NULL: none) the new configuration names in `want`. A file or address that cannot be opened
 * is logged, and the old one stays (a file) or none is served (metrics). */
void vrev_cli_obs_retarget(struct vrev_cli_obs *o, vrev_ctx *ctx, vrev_instance *inst,
                           vrev_portal *p, vrev_bridge *b, const struct vrev_cli_obs *want,
                           int access_console);
/* Stop serving and watching SIGUSR1 (before the objects are freed); close the files (last). */
void vrev_cli_obs_stop(struct vrev_cli_obs *o);
void vrev_cli_obs_close(void);
/* Log lines to the error log (--error-log, log.error) or stderr: text, "YYYY/MM/DD HH:MM:SS
 * [level] component: message", or one JSON object a line (--log-format json). */
void vrev_cli_log(int level, const char *component, const char *message, void *user);
/* "error", "warning"/"warn", "info", "debug" -> VREV_LOG_*; "none" -> -1; else -3. */
int vrev_cli_parse_log_level(const char *s);

/* The program's memory policy (cli/mem.c). vrev_cli_mem_init() first thing in main(), before
 * any libevent or jansson call; contexts are made with vrev_cli_allocator() (NULL: the default);
 * between vrev_cli_mem_start() and vrev_cli_mem_stop() (before event_base_free) freed heap pages go
 * back to the system after bursts of closes. */
void vrev_cli_mem_init(void);
/* Overwrite n bytes at p with zeros (not optimised away): for configuration text, which holds
 * secrets. vrev_cli_mem_init() also makes jansson wipe every block it frees. */
void vrev_cli_wipe(void *p, size_t n);
const vrev_allocator *vrev_cli_allocator(void);
void vrev_cli_mem_start(struct event_base *base);
void vrev_cli_mem_stop(void);

/* The open-file limit (cli/nofile.c). vrev_cli_nofile_init() first thing in main(): the soft
 * RLIMIT_NOFILE goes up to the hard one. vrev_cli_nofile_report() logs it once logging is set
 * up (a warning when it is low, else at info); vrev_cli_nofile_watch() warns when the load
 * (`fn`: live sessions, one descriptor each) comes near it. */
typedef unsigned long long (*vrev_cli_load_fn)(void *arg);
void vrev_cli_nofile_init(void);
unsigned long vrev_cli_nofile_limit(void);
void vrev_cli_nofile_report(int max_level);
void vrev_cli_nofile_watch(struct event_base *base, int max_level, vrev_cli_load_fn fn, void *arg);
void vrev_cli_nofile_unwatch(void);

#endif
