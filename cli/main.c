/* vrev: the command-line front end of libvrev. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vrev.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vrev <command> [options]\n"
            "\n"
            "commands:\n"
            "  portal ...     run a portal: public listeners, tunnels from bridges\n"
            "  bridge ...     run a bridge: keeps a tunnel to the portal, serves local targets\n"
            "  uuid           print a new random UUID (a shared id for --id)\n"
            "  run -c FILE    run a V2Ray v4 JSON configuration (also -config FILE)\n"
            "  test -c FILE   check a configuration and exit\n"
            "  reload --pid-file FILE | PID\n"
            "                 make a running vrev re-read its configuration (SIGHUP)\n"
            "  limits         print the resource limits: name, default, range, meaning\n"
            "                 (set them with --limit NAME=VALUE)\n"
            "  mux-dump [--from-client|--from-server] [--skip N] FILE\n"
            "                 print the frames of a raw Mux.Cool byte stream, one per line\n"
            "  version        print the version and the backends in use\n"
            "  help           print this help\n"
            "\n"
            "Run 'vrev <command> --help' for a command's options.\n");
}

static int version(void)
{
    printf("vrev %s (libvrev %s, crypto %s, libevent %s)\n", vrev_version_string(),
           vrev_version_string(), vrev_crypto_backend(), event_get_version());
    return 0;
}

int main(int argc, char **argv)
{
    vrev_cli_mem_init();
    vrev_cli_nofile_init();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version") || !strcmp(cmd, "-version"))
        return version();
    if (!strcmp(cmd, "portal"))
        return vrev_cli_portal(argc - 1, argv + 1);
    if (!strcmp(cmd, "bridge"))
        return vrev_cli_bridge(argc - 1, argv + 1);
    if (!strcmp(cmd, "uuid"))
        return vrev_cli_uuid();
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
