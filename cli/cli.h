/* vrev command-line tool: subcommand entry points. Each returns the process exit status. */
#ifndef VREV_CLI_H
#define VREV_CLI_H

int vrev_cli_mux_dump(int argc, char **argv);

#endif
