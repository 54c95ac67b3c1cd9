/* vrev mux-dump: print every frame of a raw Mux.Cool byte stream.
 *
 * The stream is run through the real codec (vrev_mux) in the receiving role, so it is checked
 * exactly as a live peer would check it. Payloads of sessions opened to a reverse internal
 * control domain are decoded as Control messages. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vrev.h"

struct dump {
    uint8_t control[65536 / 8]; /* sessions whose New target is a control domain */
    uint64_t skip;
};

static const char *const control_domains[] = {
    "reverse.internal.v2ray.com",
    "reverse.internal.v2fly.org",
    "reverse.internal.example.com",
};

static bool is_control_domain(const char *host)
{
    for (size_t i = 0; i < sizeof(control_domains) / sizeof(control_domains[0]); i++)
        if (!strcmp(host, control_domains[i]))
            return true;
    return false;
}

static const char *status_name(int status)
{
    static const char *const names[] = {"?", "New", "Keep", "End", "KeepAlive"};
    return status >= 1 && status <= 4 ? names[status] : "?";
}

static void set_control(struct dump *d, uint16_t sid, bool on)
{
    if (on)
        d->control[sid / 8] |= (uint8_t)(1u << (sid % 8));
    else
        d->control[sid / 8] &= (uint8_t) ~(1u << (sid % 8));
}

static bool get_control(const struct dump *d, uint16_t sid)
{
    return d->control[sid / 8] & (1u << (sid % 8));
}

static int on_frame(vrev_mux *mux, const vrev_mux_frame *f, void *user)
{
    (void)mux;
    struct dump *d = user;
    uint16_t sid = vrev_mux_frame_sid(f);
    int status = vrev_mux_frame_status(f);
    printf("sid=%u status=%s opt=0x%02x", sid, status_name(status), vrev_mux_frame_option(f));
    if (status == VREV_MUX_NEW) {
        char host[VREV_MUX_TARGET_MAX], target[VREV_MUX_TARGET_MAX];
        vrev_mux_frame_host(f, host, sizeof(host));
        vrev_mux_frame_target(f, target, sizeof(target));
        printf(" net=%s target=%s", vrev_mux_frame_network(f) == VREV_NET_UDP ? "udp" : "tcp",
               target);
        set_control(d, sid, is_control_domain(host));
    }
    size_t len;
    const uint8_t *data = vrev_mux_frame_data(f, &len);
    if (vrev_mux_frame_option(f) & VREV_MUX_OPT_DATA)
        printf(" len=%zu", len);
    if (len && get_control(d, sid) && status != VREV_MUX_END && status != VREV_MUX_KEEPALIVE) {
        int state;
        int rc = vrev_control_decode(data, len, &state);
        if (rc < 0)
            printf(" control=invalid(%s)", vrev_strerror(rc));
        else
            printf(" control=%s", vrev_control_state_name(state));
    }
    if (status == VREV_MUX_END)
        set_control(d, sid, false);
    putchar('\n');
    return 0;
}

static int dump_usage(FILE *out)
{
    fprintf(out, "usage: vrev mux-dump [--from-client|--from-server] [--skip N] FILE\n"
                 "  --from-client   the bytes were sent by the mux client (a portal): New frames\n"
                 "  --from-server   the bytes were sent by the mux server (a bridge)\n"
                 "                  (default: from-client if the first frame is a New)\n"
                 "  --skip N        ignore the first N bytes (e.g. a proxy handshake)\n"
                 "Prints one line per frame; on a malformed frame prints\n"
                 "'error: <reason> at offset <n>' and exits 1.\n");
    return out == stdout ? 0 : 2;
}

/* -1 auto, else the role that receives the stream. */
static int parse_args(int argc, char **argv, int *role, uint64_t *skip, const char **path)
{
    *role = -1;
    *skip = 0;
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return dump_usage(stdout) + 100;
        if (!strcmp(argv[i], "--from-client")) {
            *role = VREV_MUX_SERVER;
        } else if (!strcmp(argv[i], "--from-server")) {
            *role = VREV_MUX_CLIENT;
        } else if (!strcmp(argv[i], "--skip") && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || end == argv[i]) {
                fprintf(stderr, "vrev mux-dump: --skip needs a byte count\n");
                return 2;
            }
            *skip = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vrev mux-dump: unknown option '%s'\n", argv[i]);
            return dump_usage(stderr);
        } else if (!*path) {
            *path = argv[i];
        } else {
            return dump_usage(stderr);
        }
    }
    return *path ? 0 : dump_usage(stderr);
}

static int run(FILE *in, int role, struct dump *d)
{
    vrev_ctx *ctx = NULL;
    vrev_mux *mux = NULL;
    uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), in);
    if (role < 0) /* a stream that opens with a New frame was written by a client */
        role = (n >= 5 && buf[4] == VREV_MUX_NEW) ? VREV_MUX_SERVER : VREV_MUX_CLIENT;
    vrev_mux_callbacks cb = {.abi = VREV_MUX_CALLBACKS_ABI, .on_frame = on_frame};
    int rc = vrev_ctx_new(&ctx, NULL);
    if (rc == 0)
        rc = vrev_mux_new(&mux, ctx, role, &cb, d);
    if (rc < 0) {
        fprintf(stderr, "vrev mux-dump: %s\n", vrev_strerror(rc));
        vrev_ctx_free(ctx);
        return 2;
    }
    uint64_t total = 0;
    while (n > 0 && rc == 0) {
        rc = vrev_mux_feed(mux, buf, n, NULL);
        vrev_mux_consume(mux, vrev_mux_pending(mux, NULL)); /* replies are not needed */
        total += n;
        n = fread(buf, 1, sizeof(buf), in);
    }
    int status = 0;
    fflush(stdout);
    if (rc < 0) {
        printf("error: %s at offset %llu\n", vrev_strerror(rc),
               (unsigned long long)(vrev_mux_error_offset(mux) + d->skip));
        status = 1;
    } else if (ferror(in)) {
        fprintf(stderr, "vrev mux-dump: read error: %s\n", strerror(errno));
        status = 2;
    } else if (vrev_mux_buffered(mux) > 0) {
        /* The stream stopped in the middle of a frame. */
        printf("error: %s at offset %llu\n", vrev_strerror(VREV_ERR_TRUNCATED),
               (unsigned long long)(total - vrev_mux_buffered(mux) + d->skip));
        status = 1;
    }
    vrev_mux_free(mux);
    vrev_ctx_free(ctx);
    return status;
}

int vrev_cli_mux_dump(int argc, char **argv)
{
    int role;
    uint64_t skip;
    const char *path;
    int rc = parse_args(argc, argv, &role, &skip, &path);
    if (rc)
        return rc >= 100 ? rc - 100 : rc;
    FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "vrev mux-dump: %s: %s\n", path, strerror(errno));
        return 2;
    }
    struct dump *d = calloc(1, sizeof(*d));
    if (!d) {
        fprintf(stderr, "vrev mux-dump: out of memory\n");
        return 2;
    }
    d->skip = skip;
    int status = 0;
    for (uint64_t i = 0; i < skip; i++) {
        if (fgetc(in) == EOF) {
            fprintf(stderr, "vrev mux-dump: %s: shorter than --skip %llu\n", path,
                    (unsigned long long)skip);
            status = 2;
            break;
        }
    }
    if (!status)
        status = run(in, role, d);
    free(d);
    if (in != stdin)
        fclose(in);
    return status;
}
