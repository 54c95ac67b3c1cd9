/* Address codec (see addr.h for the wire format and V2Ray's reading rules). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "core/core.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_ip(struct vrev__addr *a, int type, const uint8_t *ip)
{
    if (type == VREV_ADDR_IPV6 && memcmp(ip, v4_mapped_prefix, 12) == 0) {
        type = VREV_ADDR_IPV4;
        ip += 12;
    }
    a->type = (uint8_t)type;
    a->len = type == VREV_ADDR_IPV4 ? 4 : 16;
    memcpy(a->host, ip, a->len);
}

static bool domain_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Try name as an IP literal ("1.2.3.4", "::1", "[::1]"). */
static bool parse_ip_literal(struct vrev__addr *a, const uint8_t *name, size_t len)
{
    char text[64];
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(text))
        return false;
    memcpy(text, name, len);
    text[len] = '\0';
    uint8_t ip[16];
    if (inet_pton(AF_INET, text, ip) == 1) {
        set_ip(a, VREV_ADDR_IPV4, ip);
        return true;
    }
    if (inet_pton(AF_INET6, text, ip) == 1) {
        set_ip(a, VREV_ADDR_IPV6, ip);
        return true;
    }
    return false;
}

int vrev__addr_set_domain(struct vrev__addr *a, const uint8_t *name, size_t len)
{
    if (len == 0 || len > VREV_ADDR_DOMAIN_MAX)
        return VREV_ERR_ADDR_DOMAIN;
    if (((name[0] >= '0' && name[0] <= '9') || name[0] == '[') && parse_ip_literal(a, name, len))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!domain_char(name[i]))
            return VREV_ERR_ADDR_DOMAIN;
    a->type = VREV_ADDR_DOMAIN;
    a->len = (uint8_t)len;
    memmove(a->host, name, len);
    return 0;
}

int vrev__addr_check(const struct vrev__addr *a)
{
    struct vrev__addr tmp;
    if (!a)
        return VREV_ERR_INVAL;
    switch (a->type) {
    case VREV_ADDR_IPV4:
        return a->len == 4 ? 0 : VREV_ERR_ADDR_TYPE;
    case VREV_ADDR_IPV6:
        return a->len == 16 ? 0 : VREV_ERR_ADDR_TYPE;
    case VREV_ADDR_DOMAIN:
        return vrev__addr_set_domain(&tmp, a->host, a->len);
    default:
        return VREV_ERR_ADDR_TYPE;
    }
}

int vrev__addr_decode(const uint8_t *p, size_t n, struct vrev__addr *a, size_t *used)
{
    if (n < 3)
        return VREV_ERR_ADDR_TRUNCATED;
    a->port = vrev__get_u16(p);
    switch (p[2]) {
    case VREV_ADDR_IPV4:
    case VREV_ADDR_IPV6: {
        size_t alen = p[2] == VREV_ADDR_IPV4 ? 4 : 16;
        if (n < 3 + alen)
            return VREV_ERR_ADDR_TRUNCATED;
        set_ip(a, p[2], p + 3);
        *used = 3 + alen;
        return 0;
    }
    case VREV_ADDR_DOMAIN: {
        if (n < 4 || n < 4 + (size_t)p[3])
            return VREV_ERR_ADDR_TRUNCATED;
        int rc = vrev__addr_set_domain(a, p + 4, p[3]);
        if (rc < 0)
            return rc;
        *used = 4 + (size_t)p[3];
        return 0;
    }
    default:
        return VREV_ERR_ADDR_TYPE;
    }
}

size_t vrev__addr_encoded_len(const struct vrev__addr *a)
{
    return 3 + (a->type == VREV_ADDR_DOMAIN ? 1u : 0u) + a->len;
}

int vrev__addr_encode(const struct vrev__addr *a, uint8_t *out, size_t cap)
{
    if (a->type != VREV_ADDR_IPV4 && a->type != VREV_ADDR_IPV6 && a->type != VREV_ADDR_DOMAIN)
        return VREV_ERR_ADDR_TYPE;
    size_t need = vrev__addr_encoded_len(a);
    if (cap < need)
        return VREV_ERR_NOSPACE;
    vrev__put_u16(out, a->port);
    out[2] = a->type;
    uint8_t *q = out + 3;
    if (a->type == VREV_ADDR_DOMAIN)
        *q++ = a->len;
    memcpy(q, a->host, a->len);
    return (int)need;
}

int vrev__addr_from_text(struct vrev__addr *a, const char *host, uint16_t port)
{
    if (!a || !host)
        return VREV_ERR_INVAL;
    memset(a, 0, sizeof(*a));
    a->port = port;
    size_t len = strlen(host);
    /* A bracketed or colon-bearing host can only be an IPv6 literal. */
    if ((len && host[0] == '[') || memchr(host, ':', len)) {
        if (!parse_ip_literal(a, (const uint8_t *)host, len))
            return VREV_ERR_ADDR_SYNTAX;
        return 0;
    }
    return vrev__addr_set_domain(a, (const uint8_t *)host, len);
}

int vrev__addr_from_hostport(struct vrev__addr *a, const char *text)
{
    if (!a || !text)
        return VREV_ERR_INVAL;
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || !colon[1] || strlen(colon + 1) > 5)
        return VREV_ERR_ADDR_SYNTAX;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return VREV_ERR_ADDR_SYNTAX;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    size_t hl = (size_t)(colon - text);
    if (port > 0xffff || hl > VREV_ADDR_DOMAIN_MAX + 2)
        return VREV_ERR_ADDR_SYNTAX;
    char host[VREV_ADDR_DOMAIN_MAX + 3];
    memcpy(host, text, hl);
    host[hl] = '\0';
    /* an IPv6 literal needs its brackets here, or its last group would read as the port */
    if (memchr(host, ':', hl) && host[0] != '[')
        return VREV_ERR_ADDR_SYNTAX;
    return vrev__addr_from_text(a, host, (uint16_t)port);
}

int vrev__addr_host_text(const struct vrev__addr *a, char *buf, size_t cap)
{
    char tmp[VREV_ADDR_DOMAIN_MAX + 1];
    size_t len;
    if (a->type == VREV_ADDR_DOMAIN) {
        memcpy(tmp, a->host, a->len);
        len = a->len;
    } else if (a->type == VREV_ADDR_IPV4 || a->type == VREV_ADDR_IPV6) {
        if (!inet_ntop(a->type == VREV_ADDR_IPV4 ? AF_INET : AF_INET6, a->host, tmp, sizeof(tmp)))
            return VREV_ERR_ADDR_TYPE;
        len = strlen(tmp);
    } else {
        return VREV_ERR_ADDR_TYPE;
    }
    if (cap <= len)
        return VREV_ERR_NOSPACE;
    memcpy(buf, tmp, len);
    buf[len] = '\0';
    return (int)len;
}

int vrev__addr_target_text(const struct vrev__addr *a, char *buf, size_t cap)
{
    char host[VREV_ADDR_DOMAIN_MAX + 1];
    int n = vrev__addr_host_text(a, host, sizeof(host));
    if (n < 0)
        return n;
    bool v6 = a->type == VREV_ADDR_IPV6;
    int w = snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)a->port);
    if (w < 0 || (size_t)w >= cap)
        return VREV_ERR_NOSPACE;
    return w;
}

bool vrev__addr_equal(const struct vrev__addr *a, const struct vrev__addr *b)
{
    return a->type == b->type && a->len == b->len && a->port == b->port &&
           memcmp(a->host, b->host, a->len) == 0;
}
