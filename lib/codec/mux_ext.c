/* vrev's Mux.Cool extensions: TLV blocks and per-session flow control (see mux_ext.h and
 * docs/extensions.md). */
#include <string.h>

#include "core/core.h"
#include "mux_ext.h"

/* --- TLV blocks ---------------------------------------------------------------------------- */

/* An IP address from 4 or 16 bytes (IPv4-mapped IPv6 taken as IPv4). */
static void get_ip(struct vrev__addr *a, const uint8_t *ip, size_t len, uint16_t port)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(a, 0, sizeof(*a));
    if (len == 16 && !memcmp(ip, mapped, sizeof(mapped))) {
        ip += 12;
        len = 4;
    }
    a->type = len == 4 ? VREV_ADDR_IPV4 : VREV_ADDR_IPV6;
    a->len = (uint8_t)len;
    a->port = port;
    memcpy(a->host, ip, len);
}

static int take_client(const uint8_t *v, size_t len, struct vrev__mux_ext *e)
{
    size_t ip = len == 13 ? 4 : len == 37 ? 16 : 0;
    if (!ip || v[0] != (ip == 4 ? 4 : 6))
        return VREV_ERR_MUX_EXT;
    get_ip(&e->client_src, v + 1, ip, vrev__get_u16(v + 1 + ip));
    get_ip(&e->client_dst, v + 3 + ip, ip, vrev__get_u16(v + 3 + 2 * ip));
    e->client = true;
    return 0;
}

static int take(const uint8_t *v, size_t len, uint8_t type, struct vrev__mux_ext *e)
{
    switch (type) {
    case VREV_MUX_EXT_HELLO:
        if (len != 6)
            return VREV_ERR_MUX_EXT;
        e->hello = true;
        e->version = v[0];
        e->flags = v[1];
        e->hello_window = vrev__get_u32(v + 2);
        return 0;
    case VREV_MUX_EXT_WINDOW:
        if (len != 4)
            return VREV_ERR_MUX_EXT;
        e->window_inc = vrev__get_u32(v);
        if (e->window_inc == 0 || e->window_inc > VREV_MUX_EXT_WINDOW_MAX)
            return VREV_ERR_MUX_EXT;
        e->window = true;
        return 0;
    case VREV_MUX_EXT_FLOW:
        e->flow = true;
        return 0;
    case VREV_MUX_EXT_BLOCKED:
        e->blocked = true;
        return 0;
    case VREV_MUX_EXT_CLIENT:
        return take_client(v, len, e);
    default:
        return 0; /* a later extension's: skipped */
    }
}

int vrev__mux_ext_parse(const uint8_t *p, size_t n, struct vrev__mux_ext *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t at = 0; at < n;) {
        if (n - at < 2 || n - at - 2 < p[at + 1]) {
            memset(out, 0, sizeof(*out));
            return VREV_ERR_MUX_EXT;
        }
        int rc = take(p + at + 2, p[at + 1], p[at], out);
        if (rc < 0) {
            memset(out, 0, sizeof(*out));
            return rc;
        }
        at += 2 + (size_t)p[at + 1];
    }
    return 0;
}

static int put_tlv(uint8_t *out, size_t cap, uint8_t type, const uint8_t *v, uint8_t len)
{
    if (cap < 2u + len)
        return VREV_ERR_NOSPACE;
    out[0] = type;
    out[1] = len;
    if (len)
        memcpy(out + 2, v, len);
    return 2 + len;
}

int vrev__mux_ext_hello(uint8_t *out, size_t cap, uint8_t flags, uint32_t window)
{
    uint8_t v[6] = {VREV_MUX_EXT_VERSION, flags};
    vrev__put_u32(v + 2, window);
    return put_tlv(out, cap, VREV_MUX_EXT_HELLO, v, sizeof(v));
}

int vrev__mux_ext_window(uint8_t *out, size_t cap, uint32_t inc)
{
    if (inc == 0 || inc > VREV_MUX_EXT_WINDOW_MAX)
        return VREV_ERR_RANGE;
    uint8_t v[4];
    vrev__put_u32(v, inc);
    return put_tlv(out, cap, VREV_MUX_EXT_WINDOW, v, sizeof(v));
}

int vrev__mux_ext_flow(uint8_t *out, size_t cap)
{
    return put_tlv(out, cap, VREV_MUX_EXT_FLOW, NULL, 0);
}

int vrev__mux_ext_blocked(uint8_t *out, size_t cap)
{
    return put_tlv(out, cap, VREV_MUX_EXT_BLOCKED, NULL, 0);
}

/* a as 16 bytes (IPv4 mapped) or its 4. */
static size_t put_ip(uint8_t *out, const struct vrev__addr *a, bool v6)
{
    if (v6 && a->type == VREV_ADDR_IPV4) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, a->host, 4);
        return 16;
    }
    memcpy(out, a->host, a->len);
    return a->len;
}

int vrev__mux_ext_client(uint8_t *out, size_t cap, const struct vrev__addr *src,
                         const struct vrev__addr *dst)
{
    bool ip4 = src->type == VREV_ADDR_IPV4 && dst->type == VREV_ADDR_IPV4;
    if ((src->type != VREV_ADDR_IPV4 && src->type != VREV_ADDR_IPV6) ||
        (dst->type != VREV_ADDR_IPV4 && dst->type != VREV_ADDR_IPV6))
        return VREV_ERR_ADDR_TYPE;
    uint8_t v[37], *p = v;
    *p++ = ip4 ? 4 : 6;
    p += put_ip(p, src, !ip4);
    vrev__put_u16(p, src->port);
    p += 2;
    p += put_ip(p, dst, !ip4);
    vrev__put_u16(p, dst->port);
    p += 2;
    return put_tlv(out, cap, VREV_MUX_EXT_CLIENT, v, (uint8_t)(p - v));
}

/* --- flow control -------------------------------------------------------------------------- */

void vrev__flow_init(struct vrev__flow *f, uint32_t send, uint32_t window, uint32_t max)
{
    memset(f, 0, sizeof(*f));
    f->send_credit = send;
    f->window = window;
    f->max_window = max < window ? window : max;
    f->peer_credit = window;
}

void vrev__flow_sent(struct vrev__flow *f, size_t n)
{
    f->send_credit -= n <= f->send_credit ? n : f->send_credit;
}

void vrev__flow_granted(struct vrev__flow *f, uint32_t inc)
{
    f->send_credit += inc;
    f->starved = false;
}

int vrev__flow_received(struct vrev__flow *f, size_t n)
{
    if (n > f->peer_credit)
        return VREV_ERR_MUX_FLOW;
    f->peer_credit -= n;
    return 0;
}

bool vrev__flow_blocked(struct vrev__flow *f, size_t held)
{
    /* Whatever the reader has taken goes back at once, however little: below the usual
     * quarter-window step it would otherwise never be granted, with the sender waiting. */
    f->urgent = f->owed > 0;
    /* The window was the limit if the reader keeps up and the peer has used at least half of
     * its credit (what remains is grants still on their way): a peer that says BLOCKED without
     * sending cannot make us promise it more memory. */
    if (f->window < f->max_window && held <= f->window / 4 && f->peer_credit < f->window / 2) {
        uint32_t grown = f->window > f->max_window / 2 ? f->max_window : f->window * 2;
        f->owed += grown - f->window;
        f->window = grown;
        f->urgent = true;
    }
    return f->urgent;
}

void vrev__flow_consumed(struct vrev__flow *f, size_t n)
{
    f->owed += n;
}

bool vrev__flow_due(const struct vrev__flow *f)
{
    return f->owed > 0 && (f->urgent || f->owed >= f->window / 4);
}

uint32_t vrev__flow_grant(struct vrev__flow *f)
{
    if (!vrev__flow_due(f))
        return 0;
    uint32_t g = f->owed > VREV_MUX_EXT_WINDOW_MAX ? VREV_MUX_EXT_WINDOW_MAX : (uint32_t)f->owed;
    f->owed -= g;
    f->peer_credit += g;
    f->urgent = f->owed > 0 && f->urgent;
    return g;
}
