/* PROXY protocol v1/v2 headers: parser and encoder (see proxy_proto.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "proxy_proto.h"

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define V1_SIG_LEN 6

/* --- parsing ------------------------------------------------------------------------------ */

/* An IP address from 4 or 16 bytes; an IPv4-mapped IPv6 address becomes IPv4, as the address
 * of an accepted socket would (vrev__addr_from_sockaddr). */
static void set_ip(struct vrev__addr *a, const uint8_t *ip, size_t len, uint16_t port)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(a, 0, sizeof(*a));
    a->port = port;
    if (len == 16 && memcmp(ip, mapped, sizeof(mapped)) == 0) {
        ip += 12;
        len = 4;
    }
    a->type = len == 4 ? VREV_ADDR_IPV4 : VREV_ADDR_IPV6;
    a->len = (uint8_t)len;
    memcpy(a->host, ip, len);
}

/* One space-separated field of a v1 line: [*at, next space or end). */
static bool v1_field(const char *line, size_t n, size_t *at, char *buf, size_t cap)
{
    size_t start = *at, end = start;
    while (end < n && line[end] != ' ')
        end++;
    if (end == start || end - start >= cap)
        return false;
    memcpy(buf, line + start, end - start);
    buf[end - start] = '\0';
    *at = end < n ? end + 1 : end;
    return end == n || end + 1 < n; /* no trailing space */
}

static bool v1_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    size_t len = strlen(s);
    if (len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 0xffff)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* "TCP4 src dst sport dport" or "TCP6 ...": line without "PROXY " and CRLF. */
static int v1_addresses(const char *line, size_t n, struct vrev__pp_header *h)
{
    char proto[8], ip[2][INET6_ADDRSTRLEN], port[2][8];
    uint8_t bin[2][16];
    size_t at = 0;
    if (!v1_field(line, n, &at, proto, sizeof(proto)))
        return VREV_ERR_PROXY_HEADER;
    int af = !strcmp(proto, "TCP4") ? AF_INET : !strcmp(proto, "TCP6") ? AF_INET6 : 0;
    if (!af)
        return VREV_ERR_PROXY_HEADER;
    for (int i = 0; i < 2; i++)
        if (!v1_field(line, n, &at, ip[i], sizeof(ip[i])) || inet_pton(af, ip[i], bin[i]) != 1)
            return VREV_ERR_PROXY_HEADER;
    for (int i = 0; i < 2; i++)
        if (!v1_field(line, n, &at, port[i], sizeof(port[i])))
            return VREV_ERR_PROXY_HEADER;
    uint16_t sport, dport;
    if (at != n || !v1_port(port[0], &sport) || !v1_port(port[1], &dport))
        return VREV_ERR_PROXY_HEADER;
    size_t len = af == AF_INET ? 4 : 16;
    set_ip(&h->src, bin[0], len, sport);
    set_ip(&h->dst, bin[1], len, dport);
    h->has_addr = true;
    return 0;
}

static int parse_v1(const uint8_t *p, size_t n, struct vrev__pp_header *out, size_t *need)
{
    size_t lim = n < VREV_PP_V1_MAX ? n : VREV_PP_V1_MAX;
    const uint8_t *lf = lim > V1_SIG_LEN ? memchr(p + V1_SIG_LEN, '\n', lim - V1_SIG_LEN) : NULL;
    if (!lf) {
        if (n >= VREV_PP_V1_MAX)
            return VREV_ERR_PROXY_HEADER; /* no CRLF within 107 bytes */
        *need = n + 1;
        return 0;
    }
    size_t len = (size_t)(lf - p) + 1;
    if (p[len - 2] != '\r')
        return VREV_ERR_PROXY_HEADER;
    const char *line = (const char *)p + V1_SIG_LEN;
    size_t line_len = len - 2 - V1_SIG_LEN;
    if (memchr(line, '\r', line_len) || memchr(line, '\0', line_len))
        return VREV_ERR_PROXY_HEADER;
    struct vrev__pp_header h;
    memset(&h, 0, sizeof(h));
    h.version = 1;
    /* UNKNOWN: the rest of the line is ignored (the specification's words) */
    bool unknown =
        line_len >= 7 && !memcmp(line, "UNKNOWN", 7) && (line_len == 7 || line[7] == ' ');
    if (!unknown && v1_addresses(line, line_len, &h) < 0)
        return VREV_ERR_PROXY_HEADER;
    *out = h;
    return (int)len;
}

/* The address block's size for a v2 family byte; -1: not a family. */
static int v2_block(uint8_t fam)
{
    uint8_t af = fam >> 4, tp = fam & 0x0f;
    if (af > 3 || tp > 2)
        return -1;
    static const int sizes[4] = {0, 12, 36, 216};
    return sizes[af];
}

static int parse_v2(const uint8_t *p, size_t n, struct vrev__pp_header *out, size_t *need)
{
    if (n < 16) {
        *need = 16;
        return 0;
    }
    uint8_t ver = p[12] >> 4, cmd = p[12] & 0x0f;
    int block = v2_block(p[13]);
    size_t len = vrev__get_u16(p + 14);
    if (ver != 2 || cmd > 1 || block < 0)
        return VREV_ERR_PROXY_HEADER;
    struct vrev__pp_header h;
    memset(&h, 0, sizeof(h));
    h.version = 2;
    /* LOCAL: "the receiver must accept this connection as valid and must use the real
     * connection endpoints", whatever the family says; UNSPEC and UNIX carry no IP address */
    bool take = cmd == 1 && (block == 12 || block == 36);
    if (cmd == 1 && len < (size_t)block)
        return VREV_ERR_PROXY_HEADER;
    if (take && n < 16 + (size_t)block) {
        *need = 16 + (size_t)block;
        return 0;
    }
    if (take) {
        size_t ip = block == 12 ? 4 : 16;
        const uint8_t *a = p + 16;
        set_ip(&h.src, a, ip, vrev__get_u16(a + 2 * ip));
        set_ip(&h.dst, a + ip, ip, vrev__get_u16(a + 2 * ip + 2));
        h.has_addr = true;
    }
    *out = h;
    return (int)(16 + len);
}

int vrev__pp_parse(const uint8_t *p, size_t n, struct vrev__pp_header *out, size_t *need)
{
    /* Decide the version on the bytes there are: each must match one signature's prefix. */
    size_t k1 = n < V1_SIG_LEN ? n : V1_SIG_LEN, k2 = n < sizeof(v2_sig) ? n : sizeof(v2_sig);
    bool v1 = memcmp(p, v1_sig, k1) == 0, v2 = memcmp(p, v2_sig, k2) == 0;
    if (n == 0 || (v1 && k1 < V1_SIG_LEN) || (v2 && k2 < sizeof(v2_sig))) {
        if (n && !v1 && !v2)
            return VREV_ERR_PROXY_HEADER;
        *need = n + 1;
        return 0;
    }
    if (v1)
        return parse_v1(p, n, out, need);
    if (v2)
        return parse_v2(p, n, out, need);
    return VREV_ERR_PROXY_HEADER;
}

/* --- encoding ----------------------------------------------------------------------------- */

static bool is_ip(const struct vrev__addr *a)
{
    return a && (a->type == VREV_ADDR_IPV4 || a->type == VREV_ADDR_IPV6);
}

/* a as 16 bytes (IPv4 mapped) or 4. */
static size_t ip_bytes(const struct vrev__addr *a, bool v6, uint8_t *out)
{
    if (!v6) {
        memcpy(out, a->host, 4);
        return 4;
    }
    if (a->type == VREV_ADDR_IPV6) {
        memcpy(out, a->host, 16);
    } else {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, a->host, 4);
    }
    return 16;
}

static int encode_v1(uint8_t *out, size_t cap, bool v6, const uint8_t ip[2][16],
                     const struct vrev__addr *src, const struct vrev__addr *dst)
{
    char text[2][INET6_ADDRSTRLEN];
    for (int i = 0; i < 2; i++)
        if (!inet_ntop(v6 ? AF_INET6 : AF_INET, ip[i], text[i], sizeof(text[i])))
            return VREV_ERR_INVAL;
    char line[VREV_PP_V1_MAX + 1];
    int w = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4", text[0],
                     text[1], (unsigned)src->port, (unsigned)dst->port);
    if (w < 0 || (size_t)w > VREV_PP_V1_MAX)
        return VREV_ERR_INVAL;
    if ((size_t)w > cap)
        return VREV_ERR_NOSPACE;
    memcpy(out, line, (size_t)w);
    return w;
}

static int encode_v2(uint8_t *out, size_t cap, bool v6, const uint8_t ip[2][16], size_t ip_len,
                     const struct vrev__addr *src, const struct vrev__addr *dst)
{
    size_t block = src ? 2 * ip_len + 4 : 0;
    if (cap < 16 + block)
        return VREV_ERR_NOSPACE;
    memcpy(out, v2_sig, sizeof(v2_sig));
    out[12] = src ? 0x21 : 0x20;              /* version 2, PROXY or LOCAL */
    out[13] = !src ? 0x00 : v6 ? 0x21 : 0x11; /* INET6 / INET, STREAM */
    vrev__put_u16(out + 14, (uint16_t)block);
    if (src) {
        memcpy(out + 16, ip[0], ip_len);
        memcpy(out + 16 + ip_len, ip[1], ip_len);
        vrev__put_u16(out + 16 + 2 * ip_len, src->port);
        vrev__put_u16(out + 18 + 2 * ip_len, dst->port);
    }
    return (int)(16 + block);
}

int vrev__pp_encode(uint8_t *out, size_t cap, int version, const struct vrev__addr *src,
                    const struct vrev__addr *dst)
{
    if (version != 1 && version != 2)
        return VREV_ERR_INVAL;
    bool known = is_ip(src) && is_ip(dst);
    uint8_t ip[2][16];
    size_t ip_len = 0;
    bool v6 = known && (src->type == VREV_ADDR_IPV6 || dst->type == VREV_ADDR_IPV6);
    if (known) {
        ip_len = ip_bytes(src, v6, ip[0]);
        ip_bytes(dst, v6, ip[1]);
    }
    if (version == 2)
        return encode_v2(out, cap, v6, ip, ip_len, known ? src : NULL, known ? dst : NULL);
    if (known)
        return encode_v1(out, cap, v6, ip, src, dst);
    static const char unknown[] = "PROXY UNKNOWN\r\n";
    if (cap < sizeof(unknown) - 1)
        return VREV_ERR_NOSPACE;
    memcpy(out, unknown, sizeof(unknown) - 1);
    return (int)sizeof(unknown) - 1;
}
