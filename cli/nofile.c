/* The vrev program's open-file limit. Every tunneled connection costs a descriptor on each side
 * (the public client's on the portal, the service's on the bridge), and Linux starts processes
 * with a soft RLIMIT_NOFILE of 1024, kept low for programs that still use select(). vrev waits
 * with epoll (libevent) and never calls select(), so like nginx (worker_rlimit_nofile) and Go
 * (since 1.19) it raises the soft limit to the hard one at start. Past the limit, accept()
 * fails with EMFILE: the listeners pause and new clients wait in the backlog, unanswered (at
 * the default 1024 a tunnel served ~1000 connections). Only an administrator can raise the
 * hard limit (ulimit -Hn, systemd's LimitNOFILE=), so the program says when it is low: at
 * start, and when the live sessions come near it. A library must not change process-wide
 * limits; the program may. */
#include <event2/event.h>
#include <stdio.h>
#include <sys/resource.h>

#include "cli.h"

#define LOW_LIMIT 4096 /* below this the limit is worth a warning at start */
#define SPARE 64       /* descriptors that are not sessions: listeners, tunnels, logs */
#define WATCH_MS 1000
#define NR_OPEN_FALLBACK (1u << 20) /* the kernel's default fs.nr_open */

static rlim_t limit_before, limit_now;
static struct event *watch_timer;
static vrev_cli_load_fn watch_fn;
static void *watch_arg;
static int watch_level;
static int warned;

/* The most a process may ask for when the hard limit is "unlimited": fs.nr_open. */
static rlim_t nr_open(void)
{
    unsigned long v = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v ? (rlim_t)v : NR_OPEN_FALLBACK;
}

void vrev_cli_nofile_init(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    limit_before = limit_now = rl.rlim_cur;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > nr_open())
        want = nr_open();
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            limit_now = want;
    }
}

unsigned long vrev_cli_nofile_limit(void)
{
    return limit_now == RLIM_INFINITY ? (unsigned long)nr_open() : (unsigned long)limit_now;
}

void vrev_cli_nofile_report(int max_level)
{
    char msg[256];
    unsigned long now = vrev_cli_nofile_limit();
    if (now < LOW_LIMIT && max_level >= VREV_LOG_WARN) {
        snprintf(msg, sizeof(msg),
                 "open-file limit %lu (the hard limit) is low: about %lu connections at most; "
                 "raise it (ulimit -Hn, systemd LimitNOFILE=)",
                 now, now > SPARE ? now - SPARE : 0);
        vrev_cli_log(VREV_LOG_WARN, "cli", msg, NULL);
    } else if (max_level >= VREV_LOG_INFO) {
        if (limit_now != limit_before)
            snprintf(msg, sizeof(msg), "open-file limit raised from %lu to %lu",
                     (unsigned long)limit_before, now);
        else
            snprintf(msg, sizeof(msg), "open-file limit %lu", now);
        vrev_cli_log(VREV_LOG_INFO, "cli", msg, NULL);
    }
}

/* Once when the sessions reach 90 % of what the limit leaves them, again after they have
 * fallen below half of it. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    unsigned long limit = vrev_cli_nofile_limit();
    unsigned long room = limit > SPARE ? limit - SPARE : 1;
    unsigned long long load = watch_fn(watch_arg);
    if (!warned && load >= room / 10 * 9) {
        warned = 1;
        if (watch_level >= VREV_LOG_WARN) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "%llu live sessions, near the open-file limit %lu: new connections will "
                     "wait or fail; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=)",
                     load, limit);
            vrev_cli_log(VREV_LOG_WARN, "cli", msg, NULL);
        }
    } else if (warned && load < room / 2) {
        warned = 0;
    }
    struct timeval tv = {WATCH_MS / 1000, (WATCH_MS % 1000) * 1000};
    evtimer_add(watch_timer, &tv);
}

void vrev_cli_nofile_watch(struct event_base *base, int max_level, vrev_cli_load_fn fn, void *arg)
{
    watch_fn = fn;
    watch_arg = arg;
    watch_level = max_level;
    warned = 0;
    if (!(watch_timer = evtimer_new(base, on_watch, NULL)))
        return;
    struct timeval tv = {WATCH_MS / 1000, (WATCH_MS % 1000) * 1000};
    evtimer_add(watch_timer, &tv);
}

void vrev_cli_nofile_unwatch(void)
{
    if (watch_timer)
        event_free(watch_timer);
    watch_timer = NULL;
}
