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
/* Log lines to stderr: "YYYY/MM/DD HH:MM:SS [level] component: message". */
void vrev_cli_log(int level, const char *component, const char *message, void *user);
/* "error", "warning"/"warn", "info", "debug" -> VREV_LOG_*; "none" -> -1; else -3. */
int vrev_cli_parse_log_level(const char *s);

/* The program's memory policy (cli/mem.c). vrev_cli_mem_init() first thing in main(), before
 * any libevent or jansson call; contexts are made with vrev_cli_allocator() (NULL: the default); between
 * vrev_cli_mem_start() and vrev_cli_mem_stop() (before event_base_free) freed heap pages go
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
