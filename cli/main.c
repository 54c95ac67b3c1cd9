/* vrev: the command-line front end of libvrev. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vrev.h"

/* One line per command: test_cli_reference.py checks that every command main() dispatches is
 * here, in the man page, in the bash completion and in the README. */
static void usage(FILE *out)
{
    fprintf(out, "usage: vrev <command> [options]\n"
                 "\n"
                 "commands:\n"
                 "  portal    run a portal: public listeners, and the tunnels bridges open\n"
                 "  bridge    run a bridge: keep tunnels to a portal, serve its sessions locally\n"
                 "  run       run a V2Ray v4 JSON configuration (-c FILE)\n"
                 "  test      check a V2Ray v4 JSON configuration and exit (-c FILE)\n"
                 "  reload    make a running vrev re-read its configuration (SIGHUP)\n"
                 "  uuid      print a new random UUID (a shared secret for --id)\n"
                 "  limits    print the resource limits (set them with --limit NAME=VALUE)\n"
                 "  mux-dump  print the frames of a raw Mux.Cool byte stream, one per line\n"
                 "  version   print the version and the libraries in use\n"
                 "  help      print this help\n"
                 "\n"
                 "Run 'vrev <command> --help' for a command's options; man vrev for more.\n");
}

/* A command that takes no options: only --help. Returns -1 to go on, else the exit status. */
static int no_options(int argc, char **argv, const char *what)
{
    if (argc < 3)
        return -1;
    int help = !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h");
    fprintf(help ? stdout : stderr, "usage: vrev %s\n  %s\n", argv[1], what);
    return help ? 0 : 2;
}

/* The first line is what scripts read (bench/bench.py); then one line per library, with the
 * version it reports at run time (the one loaded, not the one built against). */
static int version(void)
{
    printf("vrev %s (libvrev %s, crypto %s, libevent %s)\n", vrev_version_string(),
           vrev_version_string(), vrev_crypto_backend(), event_get_version());
    const char *name;
    char v[128];
    for (unsigned i = 0; vrev_dependency_version(i, &name, v, sizeof(v)) >= 0; i++)
        printf("  %-11s %s\n", name, v[0] ? v : "(linked; the library reports no version)");
    return 0;
}

int main(int argc, char **argv)
{
    vrev_cli_mem_init();
    vrev_cli_nofile_init();
    /* A log line leaves in one write, not a character at a time (standard error is unbuffered):
     * a reader (tail -f, a test, a collector) never sees half a line, and lines of two
     * processes sharing the terminal or file never interleave. */
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version") || !strcmp(cmd, "-version")) {
        int rc = no_options(argc, argv, "print the version and the libraries in use");
        return rc >= 0 ? rc : version();
    }
    if (!strcmp(cmd, "portal"))
        return vrev_cli_portal(argc - 1, argv + 1);
    if (!strcmp(cmd, "bridge"))
        return vrev_cli_bridge(argc - 1, argv + 1);
    if (!strcmp(cmd, "uuid")) {
        int rc = no_options(argc, argv, "print a new random (version 4) UUID");
        return rc >= 0 ? rc : vrev_cli_uuid();
    }
    if (!strcmp(cmd, "run"))
        return vrev_cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "test"))
        return vrev_cli_test(argc - 1, argv + 1);
    if (!strcmp(cmd, "reload"))
        return vrev_cli_reload(argc - 1, argv + 1);
    if (!strcmp(cmd, "limits"))
        return vrev_cli_limits(argc - 1, argv + 1);
    if (!strcmp(cmd, "mux-dump"))
        return vrev_cli_mux_dump(argc - 1, argv + 1);
    fprintf(stderr, "vrev: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
