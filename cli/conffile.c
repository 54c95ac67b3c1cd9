/* --config-file FILE (vrev portal|bridge): the command line's options in a file, one per line,
 * without the leading dashes, a value after the first blank:
 *
 *     # the portal of example.net
 *     listen 0.0.0.0:443
 *     public 0.0.0.0:80=web
 *     id 1b2c3d4e-...
 *     tls
 *
 * '#' at the start of a line or after a blank starts a comment. Each line becomes "--NAME"
 * and, if it has one, its value, for the option parser of cli/tunnel.c (one parser for both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Cut a comment and the blanks around the line; returns its start. */
static char *trim(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || is_blank(p[-1]))) {
            *p = '\0';
            break;
        }
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int add(struct vrev_cli_conffile *cf, char *arg, unsigned line)
{
    char **argv = realloc(cf->argv, (size_t)(cf->argc + 1) * sizeof(*argv));
    if (argv)
        cf->argv = argv;
    unsigned *lines = realloc(cf->line, (size_t)(cf->argc + 1) * sizeof(*lines));
    if (lines)
        cf->line = lines;
    if (!argv || !lines)
        return -1;
    cf->argv[cf->argc] = arg;
    cf->line[cf->argc++] = line;
    return 0;
}

/* One line: "--NAME" (a copy) and its value (in the file's text). */
static int add_line(struct vrev_cli_conffile *cf, char *s, unsigned line, const char *path,
                    char *err, size_t err_len)
{
    char *value = s + strcspn(s, " \t");
    if (*value) {
        *value++ = '\0';
        while (is_blank(*value))
            value++;
    }
    if (s[0] == '-') {
        snprintf(err, err_len, "%s:%u: write the option without its dashes ('%s')", path, line,
                 s + strspn(s, "-"));
        return -1;
    }
    size_t n = strlen(s) + 3;
    char *name = malloc(n);
    if (!name) {
        snprintf(err, err_len, "%s:%u: out of memory", path, line);
        return -1;
    }
    snprintf(name, n, "--%s", s);
    if (add(cf, name, line) < 0 || (*value && add(cf, value, line) < 0)) {
        if (cf->argc == 0 || cf->argv[cf->argc - 1] != name)
            free(name);
        snprintf(err, err_len, "%s:%u: out of memory", path, line);
        return -1;
    }
    return 0;
}

int vrev_cli_conffile_read(const char *path, struct vrev_cli_conffile *cf, char *err,
                           size_t err_len)
{
    memset(cf, 0, sizeof(*cf));
    cf->text = vrev_cli_read_file(path, &cf->len);
    if (!cf->text) {
        snprintf(err, err_len, "%s: cannot read it", path);
        return -1;
    }
    if (cf->len > (1 << 20)) {
        snprintf(err, err_len, "%s: larger than 1 MiB", path);
        return -1;
    }
    char *end = cf->text + cf->len;
    unsigned line = 0;
    for (char *s = cf->text; s < end; line++) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            nl = end;
        *nl = '\0'; /* the buffer has one byte more than the text */
        if (memchr(s, '\0', (size_t)(nl - s))) {
            snprintf(err, err_len, "%s:%u: a NUL byte", path, line + 1);
            return -1;
        }
        char *t = trim(s);
        if (*t && add_line(cf, t, line + 1, path, err, err_len) < 0)
            return -1;
        s = nl + 1;
    }
    return 0;
}

void vrev_cli_conffile_free(struct vrev_cli_conffile *cf)
{
    for (int i = 0; i < cf->argc; i++)
        if (!(cf->argv[i] >= cf->text && cf->argv[i] <= cf->text + cf->len)) /* a name */
            free(cf->argv[i]);
    free(cf->argv);
    free(cf->line);
    if (cf->text)
        vrev_cli_wipe(cf->text, cf->len);
    free(cf->text);
    memset(cf, 0, sizeof(*cf));
}
