/* The comment filter 4.34 runs before JSON decoding (infra/conf/json/reader.go), as a state
 * machine over bytes. Differences, all deliberate: comment bytes become spaces instead of
 * disappearing (so offsets, lines and columns of the remaining text stay those of the file),
 * and a '/' that starts no comment is left as it is (4.34 also keeps it; its JSON decoder
 * then rejects it, as jansson will). Quirks kept for fidelity:
 *   - single-quoted strings are tracked, so `'//'` is no comment (JSON rejects the quote);
 *   - a backslash outside strings protects the next byte (`\#` is no comment);
 *   - in a block comment, a newline right after '*' keeps the "seen *" state, so "*\n/"
 *     closes the comment exactly as it does in 4.34.
 */
#include <stddef.h>

#include "config/config.h"

enum state {
    CONTENT,
    ESCAPE,
    DQUOTE,
    DQUOTE_ESCAPE,
    SQUOTE,
    SQUOTE_ESCAPE,
    LINE_COMMENT,
    BLOCK_COMMENT,
    BLOCK_COMMENT_STAR,
};

/* The state after c in a string; quote is '"' or '\''. */
static enum state in_string(enum state st, char c, char quote)
{
    enum state esc = quote == '"' ? DQUOTE_ESCAPE : SQUOTE_ESCAPE;
    if (st == esc)
        return quote == '"' ? DQUOTE : SQUOTE;
    if (c == quote)
        return CONTENT;
    if (c == '\\')
        return esc;
    return st;
}

static enum state in_block(enum state st, char c)
{
    if (st == BLOCK_COMMENT)
        return c == '*' ? BLOCK_COMMENT_STAR : BLOCK_COMMENT;
    if (c == '/')
        return CONTENT;
    if (c == '*' || c == '\n')
        return BLOCK_COMMENT_STAR;
    return BLOCK_COMMENT;
}

void vrev__config_strip_comments(const char *in, size_t len, char *out)
{
    enum state st = CONTENT;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        switch (st) {
        case CONTENT:
            if (c == '"') {
                st = DQUOTE;
            } else if (c == '\'') {
                st = SQUOTE;
            } else if (c == '\\') {
                st = ESCAPE;
            } else if (c == '#') {
                st = LINE_COMMENT;
                c = ' ';
            } else if (c == '/' && i + 1 < len && (in[i + 1] == '/' || in[i + 1] == '*')) {
                st = in[i + 1] == '/' ? LINE_COMMENT : BLOCK_COMMENT;
                out[i] = ' ';
                out[++i] = ' ';
                continue;
            }
            break;
        case ESCAPE:
            st = CONTENT;
            break;
        case DQUOTE:
        case DQUOTE_ESCAPE:
            st = in_string(st, c, '"');
            break;
        case SQUOTE:
        case SQUOTE_ESCAPE:
            st = in_string(st, c, '\'');
            break;
        case LINE_COMMENT:
            if (c == '\n')
                st = CONTENT;
            else
                c = ' ';
            break;
        case BLOCK_COMMENT:
        case BLOCK_COMMENT_STAR:
            st = in_block(st, c);
            if (c != '\n')
                c = ' ';
            break;
        }
        out[i] = c;
    }
}
