/* vrev command-line tool: subcommand entry points. Each returns the process exit status. */
#ifndef VREV_CLI_H
#define VREV_CLI_H

int vrev_cli_mux_dump(int argc, char **argv);
int vrev_cli_run(int argc, char **argv);
int vrev_cli_test(int argc, char **argv);
int vrev_cli_portal(int argc, char **argv);
int vrev_cli_bridge(int argc, char **argv);
int vrev_cli_uuid(void);
/* Log lines to stderr: "YYYY/MM/DD HH:MM:SS [level] component: message". */
void vrev_cli_log(int level, const char *component, const char *message, void *user);
/* "error", "warning"/"warn", "info", "debug" -> VREV_LOG_*; "none" -> -1; else -3. */
int vrev_cli_parse_log_level(const char *s);

#endif
