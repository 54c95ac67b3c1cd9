/* Reloading a running vrev: its --pid-file, and `vrev reload --pid-file FILE | PID`, which
 * sends it SIGHUP (the process re-reads its configuration: cli/run.c, cli/tunnel.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int vrev_cli_pidfile_write(const char *path)
{
    if (!path)
        return 0;
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        fprintf(stderr, "vrev: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

void vrev_cli_pidfile_remove(const char *path)
{
    if (path)
        unlink(path);
}

/* A process id: decimal, > 1 (never a process group or init). */
static long parse_pid(const char *s)
{
    char *end;
    errno = 0;
    long pid = strtol(s, &end, 10);
    while (*end == '\n' || *end == ' ' || *end == '\r' || *end == '\t')
        end++;
    return errno || end == s || *end || pid <= 1 ? -1 : pid;
}

static long pid_from_file(const char *path)
{
    char buf[32] = "";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vrev reload: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    long pid = parse_pid(buf);
    if (pid < 0)
        fprintf(stderr, "vrev reload: %s: no process id in it\n", path);
    return pid;
}

static int usage(FILE *out)
{
    fprintf(out,
            "usage: vrev reload --pid-file FILE | PID\n"
            "  Sends SIGHUP to a running vrev run|portal|bridge: it re-reads its configuration\n"
            "  (run: -c FILE; portal, bridge: --config-file FILE) and applies what changed,\n"
            "  keeping live sessions and tunnels; a bad file is logged and changes nothing.\n");
    return out == stdout ? 0 : 2;
}

int vrev_cli_reload(int argc, char **argv)
{
    long pid = -1;
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return usage(stdout);
    if (argc == 3 && !strcmp(argv[1], "--pid-file")) {
        if ((pid = pid_from_file(argv[2])) < 0)
            return 1;
    } else if (argc == 2 && (pid = parse_pid(argv[1])) < 0) {
        fprintf(stderr, "vrev reload: '%s' is not a process id\n", argv[1]);
        return 2;
    } else if (argc != 2) {
        return usage(stderr);
    }
    if (kill((pid_t)pid, SIGHUP) < 0) {
        fprintf(stderr, "vrev reload: process %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    return 0;
}
