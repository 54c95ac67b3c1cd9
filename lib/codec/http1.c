/* HTTP/1.1 heads and the WebSocket upgrade (http1.h). Every length comes from the bounded
 * reader buffer (VREV_HTTP1_HEAD_MAX), so offsets never overflow. */
#include "http1.h"

#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/hex.h"
#include "crypto/crypto.h"

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* --- character classes (RFC 7230 §3.2.6) --------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values and reasons: visible characters, space, tab and obs-text; no other controls. */
static bool is_vchar(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct vrev__http1_str trim(const char *p, size_t n)
{
    while (n > 0 && is_ows(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_ows(p[n - 1]))
        n--;
    return (struct vrev__http1_str){p, n};
}

/* --- parsing ------------------------------------------------------------------------------- */

/* A line p[0..*len) without its LF or CRLF; returns the start of the next line. */
static const char *next_line(const char *p, const char *end, size_t *len)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return NULL;
    *len = (size_t)(nl - p);
    if (*len > 0 && p[*len - 1] == '\r')
        (*len)--;
    return nl + 1;
}

/* "HTTP/1.x" at p[0..8): the minor version or -1. */
static int version(const char *p, size_t n)
{
    if (n != 8 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9')
        return -1;
    return p[7] - '0';
}

static int request_line(const char *p, size_t n, struct vrev__http1_head *h)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return VREV_ERR_HTTP_HEAD;
    h->method = (struct vrev__http1_str){p, i};
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t || i >= n || p[i] != ' ')
        return VREV_ERR_HTTP_HEAD;
    h->target = (struct vrev__http1_str){p + t, i - t};
    h->minor = version(p + i + 1, n - i - 1);
    return h->minor < 0 ? VREV_ERR_HTTP_HEAD : 0;
}

static int status_line(const char *p, size_t n, struct vrev__http1_head *h)
{
    if (n < 12 || (h->minor = version(p, 8)) < 0 || p[8] != ' ')
        return VREV_ERR_HTTP_HEAD;
    h->status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return VREV_ERR_HTTP_HEAD;
        h->status = h->status * 10 + (p[i] - '0');
    }
    if (h->status < 100 || (n > 12 && p[12] != ' '))
        return VREV_ERR_HTTP_HEAD;
    size_t r = n > 12 ? 13 : 12;
    for (size_t i = r; i < n; i++)
        if (!is_vchar((unsigned char)p[i]))
            return VREV_ERR_HTTP_HEAD;
    h->reason = (struct vrev__http1_str){p + r, n - r};
    return 0;
}

static int header_line(const char *p, size_t n, struct vrev__http1_head *h)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    /* no name, folding (a line starting with a space) or space before the colon: refused */
    if (i == 0 || i >= n || p[i] != ':')
        return VREV_ERR_HTTP_HEAD;
    for (size_t j = i + 1; j < n; j++)
        if (!is_vchar((unsigned char)p[j]))
            return VREV_ERR_HTTP_HEAD;
    if (h->n_headers == VREV_HTTP1_HEADERS_MAX)
        return VREV_ERR_HTTP_HEAD_SIZE;
    struct vrev__http1_header *x = &h->headers[h->n_headers++];
    x->name = (struct vrev__http1_str){p, i};
    x->value = trim(p + i + 1, n - i - 1);
    return 0;
}

int vrev__http1_parse(const char *p, size_t n, bool response, struct vrev__http1_head *h)
{
    memset(h, 0, offsetof(struct vrev__http1_head, headers));
    h->response = response;
    if (n > VREV_HTTP1_HEAD_MAX)
        return VREV_ERR_HTTP_HEAD_SIZE;
    const char *end = p + n;
    size_t len;
    const char *next = next_line(p, end, &len);
    if (!next)
        return VREV_ERR_HTTP_HEAD;
    int rc = response ? status_line(p, len, h) : request_line(p, len, h);
    while (rc == 0) {
        p = next;
        if (!(next = next_line(p, end, &len)))
            return VREV_ERR_HTTP_HEAD; /* no empty line */
        if (len == 0)
            return next == end ? 0 : VREV_ERR_HTTP_HEAD;
        rc = header_line(p, len, h);
    }
    return rc;
}

void vrev__http1_reader_init(struct vrev__http1_reader *r, bool response)
{
    r->response = response;
    r->len = r->scan = r->done = 0;
    r->err = 0;
}

/* One past the empty line that ends the head (LF LF or LF CR LF), searching b[from..n); 0 if
 * there is none yet. */
static size_t head_end(const char *b, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        if (b[i] != '\n')
            continue;
        if (i + 1 < n && b[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

int vrev__http1_reader_feed(struct vrev__http1_reader *r, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (r->done || r->err)
        return r->done ? (int)r->done : r->err;
    size_t take = VREV_HTTP1_HEAD_MAX - r->len;
    if (take > n)
        take = n;
    memcpy(r->buf + r->len, p, take);
    size_t end = head_end(r->buf, r->scan, r->len + take);
    if (end == 0) {
        *used = take;
        r->len += take;
        r->scan = r->len >= 2 ? r->len - 2 : 0;
        if (r->len == VREV_HTTP1_HEAD_MAX)
            r->err = VREV_ERR_HTTP_HEAD_SIZE;
        return r->err;
    }
    *used = end - r->len;
    r->len = end;
    int rc = vrev__http1_parse(r->buf, end, r->response, &r->head);
    if (rc < 0)
        return r->err = rc;
    r->done = end;
    return (int)end;
}

/* --- lookups ------------------------------------------------------------------------------- */

const struct vrev__http1_str *vrev__http1_get(const struct vrev__http1_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (eq_nocase(h->headers[i].name.p, h->headers[i].name.len, name))
            return &h->headers[i].value;
    return NULL;
}

size_t vrev__http1_count(const struct vrev__http1_head *h, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        k += eq_nocase(h->headers[i].name.p, h->headers[i].name.len, name);
    return k;
}

static bool list_has(struct vrev__http1_str v, const char *token)
{
    size_t start = 0;
    for (size_t i = 0; i <= v.len; i++) {
        if (i < v.len && v.p[i] != ',')
            continue;
        struct vrev__http1_str t = trim(v.p + start, i - start);
        if (eq_nocase(t.p, t.len, token))
            return true;
        start = i + 1;
    }
    return false;
}

bool vrev__http1_has_token(const struct vrev__http1_head *h, const char *name, const char *token)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (eq_nocase(h->headers[i].name.p, h->headers[i].name.len, name) &&
            list_has(h->headers[i].value, token))
            return true;
    return false;
}

struct vrev__http1_str vrev__http1_xff_first(struct vrev__http1_str xff)
{
    const char *comma = xff.len ? memchr(xff.p, ',', xff.len) : NULL;
    return trim(xff.p, comma ? (size_t)(comma - xff.p) : xff.len);
}

/* --- writing ------------------------------------------------------------------------------- */

struct out {
    char *p;
    size_t cap, len;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static int finish(struct out *o)
{
    if (o->full || o->len > (size_t)INT32_MAX)
        return VREV_ERR_NOSPACE;
    return (int)o->len;
}

void vrev__http1_date(int64_t t, char out[30])
{
    static const char days[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (t < 0 || t > 253402300799) /* years 1970..9999 */
        t = 0;
    int64_t z = t / 86400, secs = t % 86400;
    const char *wday = days[z % 7];
    /* days to a civil date (proleptic Gregorian, eras of 400 years from 0000-03-01) */
    z += 719468;
    int64_t era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    char tmp[64]; /* the values are in range; the room keeps the compiler's bound check quiet */
    snprintf(tmp, sizeof(tmp), "%s, %02u %s %04u %02u:%02u:%02u GMT", wday, (unsigned)d,
             months[m - 1], (unsigned)y, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
             (unsigned)(secs % 60));
    memcpy(out, tmp, 29);
    out[29] = '\0';
}

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static void status_line_out(struct out *o, int status)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, status_text(status));
    put(o, line, (size_t)n);
}

static void date_out(struct out *o, const char *date)
{
    if (date) {
        puts_(o, "Date: ");
        puts_(o, date);
        puts_(o, "\r\n");
    }
}

/* Go's server answering a request it cannot serve at all (unreadable head, and any status
 * gorilla does not use). */
static void plain_answer(struct out *o, int status)
{
    char body[64];
    status_line_out(o, status);
    snprintf(body, sizeof(body), "%d %s", status, status_text(status));
    puts_(o, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n");
    puts_(o, body);
}

int vrev__http1_write_error(char *buf, size_t cap, int status, const char *date)
{
    struct out o = {buf, cap, 0, false};
    if (status < 400 || status > 599)
        return VREV_ERR_INVAL;
    if (status == 404) {
        status_line_out(&o, status);
        date_out(&o, date);
        puts_(&o, "Content-Length: 0\r\n\r\n");
    } else if (status == 400 || status == 405 || status == 426) {
        char len[48];
        snprintf(len, sizeof(len), "Content-Length: %zu\r\n\r\n", strlen(status_text(status)) + 1);
        status_line_out(&o, status);
        puts_(&o, "Content-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\n"
                  "X-Content-Type-Options: nosniff\r\n");
        date_out(&o, date);
        puts_(&o, len);
        puts_(&o, status_text(status));
        puts_(&o, "\n");
    } else {
        plain_answer(&o, status);
    }
    return finish(&o);
}

int vrev__http1_write_unreadable(char *buf, size_t cap, int err)
{
    struct out o = {buf, cap, 0, false};
    plain_answer(&o, err == VREV_ERR_HTTP_HEAD_SIZE ? 431 : 400);
    return finish(&o);
}

/* --- the WebSocket upgrade, server side ---------------------------------------------------- */

/* The target's path as Go's URL parser gives it: no query, no scheme://authority. */
static struct vrev__http1_str target_path(struct vrev__http1_str t)
{
    const char *q = memchr(t.p, '?', t.len);
    size_t n = q ? (size_t)(q - t.p) : t.len;
    if (n == 0 || t.p[0] == '/')
        return (struct vrev__http1_str){t.p, n};
    for (size_t i = 0; i + 3 <= n; i++) {
        if (memcmp(t.p + i, "://", 3) != 0)
            continue;
        /* absolute form: the path starts after the authority */
        const char *auth = t.p + i + 3;
        const char *slash = memchr(auth, '/', (size_t)(t.p + n - auth));
        return slash ? (struct vrev__http1_str){slash, (size_t)(t.p + n - slash)}
                     : (struct vrev__http1_str){t.p + n, 0};
    }
    return (struct vrev__http1_str){t.p, n};
}

int vrev__http1_path_match(const char *target, size_t len, const char *want, bool prefix)
{
    struct vrev__http1_str path = target_path((struct vrev__http1_str){target, len});
    size_t w = 0, wlen = strlen(want);
    int same = 1;
    for (size_t i = 0; i < path.len; i++, w++) {
        char c = path.p[i];
        if (c == '%') {
            int hi = i + 2 < path.len ? vrev__hex_digit(path.p[i + 1]) : -1;
            int lo = i + 2 < path.len ? vrev__hex_digit(path.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (w < wlen ? want[w] != c : !prefix)
            same = 0;
    }
    return same && w >= wlen;
}

/* Host header against the configured name: equal (case-insensitive), or equal before a
 * ":port" when the name has no port. */
static bool host_matches(struct vrev__http1_str h, const char *want)
{
    if (eq_nocase(h.p, h.len, want))
        return true;
    if (strchr(want, ':'))
        return false;
    size_t n = h.len;
    while (n > 0 && h.p[n - 1] >= '0' && h.p[n - 1] <= '9')
        n--;
    return n > 0 && n < h.len && h.p[n - 1] == ':' && eq_nocase(h.p, n - 1, want);
}

/* The checks gorilla/websocket makes (and RFC 6455 §4.2.1 asks), after the path. */
static int upgrade_status(const struct vrev__http1_head *h, struct vrev__ws_request *out)
{
    uint8_t key[18];
    if (!(h->method.len == 3 && memcmp(h->method.p, "GET", 3) == 0))
        return 405;
    if (h->minor < 1 || !vrev__http1_has_token(h, "Connection", "upgrade") ||
        !vrev__http1_has_token(h, "Upgrade", "websocket"))
        return 400;
    const struct vrev__http1_str *k = vrev__http1_get(h, "Sec-WebSocket-Key");
    if (!k || vrev__http1_count(h, "Sec-WebSocket-Key") != 1 ||
        vrev__base64_decode(k->p, k->len, key, sizeof(key), false) != 16)
        return 400;
    if (vrev__http1_count(h, "Sec-WebSocket-Version") == 0)
        return 400;
    if (!vrev__http1_has_token(h, "Sec-WebSocket-Version", "13"))
        return 426;
    out->key = *k;
    return 101;
}

int vrev__ws_check_request(const struct vrev__http1_head *h, const struct vrev__ws_server_opts *o,
                           struct vrev__ws_request *out)
{
    memset(out, 0, sizeof(*out));
    const struct vrev__http1_str *v = vrev__http1_get(h, "Host");
    if (v)
        out->host = *v;
    if ((v = vrev__http1_get(h, "X-Forwarded-For")))
        out->forwarded = *v;
    if (h->response || vrev__http1_count(h, "Host") > 1)
        return out->status = 400; /* Go's server: "too many Host headers" */
    int eq = vrev__http1_path_match(h->target.p, h->target.len, o->path ? o->path : "/", false);
    if (eq < 0)
        return out->status = 400;
    if (eq == 0 || (o->host && !host_matches(out->host, o->host)))
        return out->status = 404;
    return out->status = upgrade_status(h, out);
}

int vrev__ws_accept(const char *key, size_t key_len, char out[VREV_WS_ACCEPT_LEN + 1])
{
    struct vrev__iov v[2] = {{key, key_len}, {WS_GUID, sizeof(WS_GUID) - 1}};
    uint8_t digest[20];
    int rc = vrev__sha1(v, 2, digest);
    if (rc < 0)
        return rc;
    vrev__base64_encode(digest, sizeof(digest), out);
    return 0;
}

int vrev__ws_write_101(char *buf, size_t cap, const struct vrev__ws_request *req)
{
    char accept[VREV_WS_ACCEPT_LEN + 1];
    int rc = vrev__ws_accept(req->key.p, req->key.len, accept);
    if (rc < 0)
        return rc;
    struct out o = {buf, cap, 0, false};
    puts_(&o, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    puts_(&o, accept);
    puts_(&o, "\r\n\r\n");
    return finish(&o);
}

/* --- the WebSocket upgrade, client side ---------------------------------------------------- */

/* One header line of the request; `canon`: written in Go's canonical form (X-Foo-Bar). */
struct line {
    const char *name, *value;
    size_t name_len, value_len;
    bool canon;
};

static char name_char(const struct line *l, size_t i)
{
    char c = l->name[i];
    if (!l->canon)
        return c;
    bool up = i == 0 || l->name[i - 1] == '-';
    return up && c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : (up ? c : lower(c));
}

static bool line_before(const struct line *a, const struct line *b)
{
    for (size_t i = 0; i < a->name_len && i < b->name_len; i++) {
        unsigned char x = (unsigned char)name_char(a, i), y = (unsigned char)name_char(b, i);
        if (x != y)
            return x < y;
    }
    return a->name_len < b->name_len;
}

static bool visible(const char *s, size_t n, bool spaces)
{
    for (size_t i = 0; i < n; i++)
        if (!(spaces ? is_vchar((unsigned char)s[i])
                     : ((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)))
            return false;
    return true;
}

/* A caller's header: a token name, a value without controls, none of the handshake's own. */
static bool header_ok(const struct vrev__http1_header *x)
{
    static const char *const own[] = {"Host",
                                      "Upgrade",
                                      "Connection",
                                      "Sec-WebSocket-Key",
                                      "Sec-WebSocket-Version",
                                      "Sec-WebSocket-Extensions"};
    if (x->name.len == 0 || !x->name.p || (x->value.len && !x->value.p))
        return false;
    for (size_t i = 0; i < x->name.len; i++)
        if (!is_tchar((unsigned char)x->name.p[i]))
            return false;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (eq_nocase(x->name.p, x->name.len, own[i]))
            return false;
    return visible(x->value.p, x->value.len, true);
}

static void line_out(struct out *o, const struct line *l)
{
    for (size_t i = 0; i < l->name_len; i++) {
        char c = name_char(l, i);
        put(o, &c, 1);
    }
    puts_(o, ": ");
    put(o, l->value, l->value_len);
    puts_(o, "\r\n");
}

/* Sort the lines by written name (stable: repeated names keep their order) and write them. */
static void lines_out(struct out *o, struct line *lines, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct line l = lines[i];
        size_t j = i;
        for (; j > 0 && line_before(&l, &lines[j - 1]); j--)
            lines[j] = lines[j - 1];
        lines[j] = l;
    }
    for (size_t i = 0; i < n; i++)
        line_out(o, &lines[i]);
}

int vrev__ws_write_request(char *buf, size_t cap, const char *host, const char *path,
                           const struct vrev__http1_header *headers, size_t n_headers,
                           const uint8_t key[16], char key_out[VREV_WS_KEY_LEN + 1])
{
    struct line lines[VREV_HTTP1_HEADERS_MAX + 4];
    const char *ua = "Go-http-client/1.1";
    size_t n = 0, ua_len = strlen(ua);
    bool ua_set = false;
    if (!host || !*host || !visible(host, strlen(host), false) || !path || path[0] != '/' ||
        !visible(path, strlen(path), false) || n_headers > VREV_HTTP1_HEADERS_MAX ||
        (n_headers && !headers))
        return VREV_ERR_INVAL;
    vrev__base64_encode(key, 16, key_out);
    lines[n++] = (struct line){"Connection", "Upgrade", 10, 7, false};
    lines[n++] = (struct line){"Sec-WebSocket-Key", key_out, 17, VREV_WS_KEY_LEN, false};
    lines[n++] = (struct line){"Sec-WebSocket-Version", "13", 21, 2, false};
    lines[n++] = (struct line){"Upgrade", "websocket", 7, 9, false};
    for (size_t i = 0; i < n_headers; i++) {
        const struct vrev__http1_header *x = &headers[i];
        if (!header_ok(x))
            return VREV_ERR_INVAL;
        if (eq_nocase(x->name.p, x->name.len, "User-Agent")) {
            if (!ua_set) /* Go writes the first User-Agent in its place, and only that one */
                ua = x->value.p, ua_len = x->value.len, ua_set = true;
            continue;
        }
        lines[n++] = (struct line){x->name.p, x->value.p, x->name.len, x->value.len, true};
    }
    struct out o = {buf, cap, 0, false};
    puts_(&o, "GET ");
    puts_(&o, path);
    puts_(&o, " HTTP/1.1\r\nHost: ");
    puts_(&o, host);
    puts_(&o, "\r\n");
    if (ua_len > 0) {
        puts_(&o, "User-Agent: ");
        put(&o, ua, ua_len);
        puts_(&o, "\r\n");
    }
    lines_out(&o, lines, n);
    puts_(&o, "\r\n");
    return finish(&o);
}

int vrev__ws_check_response(const struct vrev__http1_head *h, const char *key)
{
    char want[VREV_WS_ACCEPT_LEN + 1];
    if (!h->response || h->status != 101 || !vrev__http1_has_token(h, "Upgrade", "websocket") ||
        !vrev__http1_has_token(h, "Connection", "upgrade") ||
        vrev__http1_get(h, "Sec-WebSocket-Extensions"))
        return VREV_ERR_WS_HANDSHAKE;
    const struct vrev__http1_str *got = vrev__http1_get(h, "Sec-WebSocket-Accept");
    if (!got || vrev__ws_accept(key, strlen(key), want) < 0 || got->len != VREV_WS_ACCEPT_LEN ||
        memcmp(got->p, want, VREV_WS_ACCEPT_LEN) != 0)
        return VREV_ERR_WS_HANDSHAKE;
    return 0;
}
