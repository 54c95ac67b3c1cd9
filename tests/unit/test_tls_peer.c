/* The TLS layer against a real peer: Debian's openssl CLI, `s_server -rev` (answers each line
 * reversed) for our client and `s_client` for our server, on 127.0.0.1. Each test starts its
 * process, bounds it (alarm(20) survives exec; parent-death signal) and kills it by PID. The
 * tests are skipped when there is no openssl binary ($OPENSSL, default /usr/bin/openssl). */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "net/net.h"
#include "net/tls.h"
#include "testutil.h"

static const char *openssl_bin(void)
{
    const char *b = getenv("OPENSSL");
    return b ? b : "/usr/bin/openssl";
}

static const char *vec(const char *rel)
{
    static char bufs[8][512];
    static int next;
    const char *dir = getenv("VREV_VECTORS");
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/tls/%s", dir ? dir : "tests/vectors", rel);
    return b;
}

/* --- a bounded child process ---------------------------------------------------------------- */

struct proc {
    pid_t pid;
    char out[64]; /* its stdout and stderr */
    char text[8192];
};

static void proc_start(struct proc *p, const char *const argv[], const char *input)
{
    snprintf(p->out, sizeof(p->out), "/tmp/vrev-tls-peer-XXXXXX");
    int fd = mkstemp(p->out);
    assert_true(fd >= 0);
    int in = open("/dev/null", O_RDONLY);
    if (input) { /* an unlinked temporary file, open before the fork */
        char in_path[64] = "/tmp/vrev-tls-in-XXXXXX";
        close(in);
        in = mkstemp(in_path);
        assert_true(in >= 0);
        unlink(in_path);
        assert_int_equal(write(in, input, strlen(input)), (ssize_t)strlen(input));
        lseek(in, 0, SEEK_SET);
    }
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        alarm(20);
        execv(argv[0], (char *const *)argv); /* execv does not write them */
        _exit(127);
    }
    close(fd);
    close(in);
}

static const char *proc_output(struct proc *p)
{
    FILE *f = fopen(p->out, "rb");
    size_t n = f ? fread(p->text, 1, sizeof(p->text) - 1, f) : 0;
    if (f)
        fclose(f);
    p->text[n] = '\0';
    return p->text;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static bool proc_wait_output(struct proc *p, const char *needle, int ms)
{
    for (int t = 0; t < ms; t += 20) {
        if (strstr(proc_output(p), needle))
            return true;
        sleep_ms(20);
    }
    return false;
}

/* Wait up to `ms` for the exit (running `base`, if any, meanwhile), then kill; returns the
 * exit status, or -1 if it was killed. */
static int proc_finish(struct proc *p, int ms, struct event_base *base)
{
    int status = 0;
    for (int t = 0; t < ms; t += 20) {
        if (base)
            event_base_loop(base, EVLOOP_NONBLOCK);
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            proc_output(p);
            unlink(p->out);
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        sleep_ms(20);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    proc_output(p);
    unlink(p->out);
    return -1;
}

/* --- one conversation ----------------------------------------------------------------------- */

struct conv {
    struct event_base *base;
    vrev_ctx *ctx;
    struct vrev__tls_ctx *tls;
    struct bufferevent *bev;
    const char *send;  /* written at once */
    const char *reply; /* server: written after the first line, then close */
    char got[512];
    size_t n;
    bool line;
    char alpn[32];
    int end; /* 1 EOF, -1 error */
    char err[256];
};

static void conv_read(struct bufferevent *bev, void *arg)
{
    struct conv *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (n > sizeof(c->got) - 1 - c->n)
        n = sizeof(c->got) - 1 - c->n;
    evbuffer_remove(in, c->got + c->n, n);
    c->n += n;
    if (c->line || !strchr(c->got, '\n'))
        return;
    c->line = true;
    const char *a = vrev__tls_alpn(bev);
    snprintf(c->alpn, sizeof(c->alpn), "%s", a ? a : "");
    if (c->reply) { /* server: answer, then close (free is a close) */
        evbuffer_add(bufferevent_get_output(bev), c->reply, strlen(c->reply));
        vrev__bev_shutdown_write(bev);
        bufferevent_free(bev);
        c->bev = NULL;
        event_base_loopbreak(c->base);
    } else { /* client: end our side, wait for the peer's end */
        vrev__bev_shutdown_write(bev);
    }
}

static void conv_event(struct bufferevent *bev, short what, void *arg)
{
    struct conv *c = arg;
    conv_read(bev, c);
    c->end = what & BEV_EVENT_EOF ? 1 : -1;
    vrev__tls_last_error(bev, c->err, sizeof(c->err));
    event_base_loopbreak(c->base);
}

static void conv_start(struct conv *c, struct bufferevent *tls)
{
    assert_non_null(tls);
    c->bev = tls;
    bufferevent_setcb(tls, conv_read, NULL, conv_event, c);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
    if (c->send)
        evbuffer_add(bufferevent_get_output(tls), c->send, strlen(c->send));
}

static void conv_dialed(struct bufferevent *bev, int err, int sys, void *arg)
{
    (void)sys;
    struct conv *c = arg;
    assert_int_equal(err, 0);
    conv_start(c, vrev__tls_wrap(c->tls, bev, "localhost", 0, &err));
}

static void conv_accept(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg)
{
    (void)sa, (void)len;
    struct conv *c = arg;
    int err;
    conv_start(c, vrev__tls_wrap(c->tls, vrev__bev_socket(c->ctx, fd), NULL, 0, &err));
}

static void stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

static void conv_run(struct conv *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    struct event *deadline = evtimer_new(c->base, stop, c->base);
    evtimer_add(deadline, &tv);
    event_base_dispatch(c->base);
    event_free(deadline);
}

static void log_line(int level, const char *component, const char *line, void *user)
{
    (void)user;
    fprintf(stderr, "[%d %s] %s\n", level, component, line);
}

static void conv_init(struct conv *c)
{
    memset(c, 0, sizeof(*c));
    c->base = event_base_new();
    assert_int_equal(vrev_ctx_new(&c->ctx, c->base), 0);
    if (getenv("TLS_DEBUG"))
        vrev_ctx_set_log(c->ctx, VREV_LOG_DEBUG, log_line, NULL);
}

static void conv_done(struct conv *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    vrev__tls_ctx_free(c->tls);
    for (int i = 0; i < 100 && event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED); i++)
        event_base_loop(c->base, EVLOOP_ONCE);
    event_base_free(c->base);
    vrev_ctx_free(c->ctx);
}

static void need_openssl(void)
{
    if (access(openssl_bin(), X_OK) != 0) {
        print_message("no %s: skipped\n", openssl_bin());
        skip();
    }
}

/* --- our client, their server --------------------------------------------------------------- */

/* s_server with `crt`/`key` and `extra` arguments; our client trusts `ca`, offers h2 and
 * http/1.1, says "hello vrev". Returns the conversation for the caller to check. */
static void client_vs_s_server(struct conv *c, const char *crt, const char *key, const char *ca,
                               const char *extra, struct proc *srv)
{
    need_openssl();
    const char *argv[16] = {openssl_bin(), "s_server", "-accept", "127.0.0.1:0", "-cert", vec(crt),
                            "-key",        vec(key),   "-rev",    "-alpn",       "h2",    NULL};
    argv[11] = extra;
    proc_start(srv, argv, NULL);
    if (!proc_wait_output(srv, "ACCEPT 127.0.0.1:", 5000)) {
        proc_finish(srv, 0, NULL);
        fail_msg("s_server did not start: %s", srv->text);
    }
    unsigned port = 0;
    sscanf(strstr(srv->text, "ACCEPT 127.0.0.1:") + 17, "%u", &port);
    conv_init(c);
    static const char *const alpn[] = {"h2", "http/1.1"};
    const char *files[1] = {vec(ca)};
    struct vrev__tls_client_opts o = {
        .disable_system_root = true, .ca_files = files, .n_ca_files = 1, .alpn = alpn, .n_alpn = 2};
    char err[256];
    if (vrev__tls_client_ctx_new(c->ctx, &o, &c->tls, err, sizeof(err)))
        fail_msg("%s", err);
    c->send = "hello vrev\n";
    struct vrev__addr a;
    assert_int_equal(vrev__addr_from_text(&a, "127.0.0.1", (uint16_t)port), 0);
    assert_int_equal(vrev__tcp_dial(c->ctx, NULL, &a, 2000, conv_dialed, c, NULL), 0);
    conv_run(c, 10);
}

static void test_client_vs_s_server(void **state)
{
    (void)state;
    const char *variants[][3] = {
        {"server.crt", "server.key", NULL},              /* TLS 1.3 where we have it */
        {"server.crt", "server.key", "-tls1_2"},         /* TLS 1.2, ECDHE-ECDSA */
        {"server-rsa.crt", "server-rsa.key", "-tls1_2"}, /* TLS 1.2, ECDHE-RSA */
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        struct conv c;
        struct proc srv;
        client_vs_s_server(&c, variants[i][0], variants[i][1], "ca.crt", variants[i][2], &srv);
        proc_finish(&srv, 0, NULL);
        if (!c.line)
            fail_msg("no answer (end %d: %s); s_server said: %s", c.end, c.err, srv.text);
        assert_string_equal(c.got, "verv olleh\n");
        assert_string_equal(c.alpn, "h2");
        if (c.end != 1)
            fail_msg("end %d (%s); s_server said: %s", c.end, c.err, srv.text);
        conv_done(&c);
    }
}

static void test_client_vs_s_server_unknown_ca(void **state)
{
    (void)state;
    struct conv c;
    struct proc srv;
    client_vs_s_server(&c, "other.crt", "other.key", "ca.crt", NULL, &srv);
    proc_finish(&srv, 0, NULL);
    assert_int_equal(c.end, -1);
    assert_false(c.line);
    assert_non_null(strstr(c.err, "certificate verify failed"));
    conv_done(&c);
}

/* --- their client, our server --------------------------------------------------------------- */

static void server_vs_s_client(const char *crt, const char *key, const char *extra)
{
    need_openssl();
    struct conv c;
    conv_init(&c);
    static const char *const alpn[] = {"h2", "http/1.1"};
    struct vrev__tls_server_opts o = {
        .cert_file = vec(crt), .key_file = vec(key), .alpn = alpn, .n_alpn = 2};
    char err[256];
    if (vrev__tls_server_ctx_new(c.ctx, &o, &c.tls, err, sizeof(err)))
        fail_msg("%s", err);
    c.reply = "PONG\n";
    struct vrev__listener *l;
    assert_int_equal(vrev__listener_new(c.ctx, "127.0.0.1", 0, conv_accept, &c, &l), 0);
    char target[32];
    snprintf(target, sizeof(target), "127.0.0.1:%u", vrev__listener_port(l));
    const char *argv[20] = {openssl_bin(), "s_client",    "-connect",
                            target,        "-servername", "localhost",
                            "-CAfile",     vec("ca.crt"), "-verify_return_error",
                            "-alpn",       "h2",          "-brief",
                            "-ign_eof",    NULL};
    argv[13] = extra;
    struct proc cli;
    proc_start(&cli, argv, "ping\n");
    conv_run(&c, 10);
    int status = proc_finish(&cli, 5000, c.base);
    vrev__listener_free(l);
    if (!c.line)
        fail_msg("nothing from s_client (end %d: %s): %s", c.end, c.err, cli.text);
    assert_string_equal(c.got, "ping\n");
    assert_string_equal(c.alpn, "h2");
    if (status != 0 || !strstr(cli.text, "PONG") || !strstr(cli.text, "Verification: OK"))
        fail_msg("s_client exit %d: %s", status, cli.text);
    conv_done(&c);
}

static void test_server_vs_s_client(void **state)
{
    (void)state;
    server_vs_s_client("server.crt", "server.key", NULL);
    server_vs_s_client("server.crt", "server.key", "-tls1_2");
    server_vs_s_client("server-rsa.crt", "server-rsa.key", "-tls1_2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_vs_s_server),
        cmocka_unit_test(test_client_vs_s_server_unknown_ca),
        cmocka_unit_test(test_server_vs_s_client),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("tls_peer", tests, NULL, NULL);
}
