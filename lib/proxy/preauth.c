/* Caps on connections still in their proxy handshake (not yet authenticated), per engine:
 * a total, with random early drop from half of it (as OpenSSH's MaxStartups 10:30:100), and
 * a count per source IP. A connection over the caps is closed at accept, before anything is
 * allocated or read for it (RELIABILITY.md §3.6: Slowloris; 1,024 in all; per source 256,
 * not 32: a V2Ray client multiplexes many users' bursts onto one address). */
#include <string.h>

#include "crypto/crypto.h"
#include "proxy.h"

#define LOG_COMPONENT "inbound"

static struct vrev__preauth_source *find(struct vrev__preauth *p, const struct vrev__addr *ip)
{
    for (size_t i = 0; i < p->n_sources; i++)
        if (vrev__addr_equal(&p->sources[i].ip, ip))
            return &p->sources[i];
    return NULL;
}

/* Drop with probability rising from 0 at half the cap to 1 at the cap. */
static bool early_drop(const struct vrev__preauth *p)
{
    uint32_t start = p->max / 2;
    if (p->n < start)
        return false;
    if (p->n >= p->max)
        return true;
    uint32_t r = 0;
    if (vrev__random_bytes((uint8_t *)&r, sizeof(r)) < 0)
        return true;
    return r % (p->max - start) < p->n - start;
}

bool vrev__preauth_admit(struct vrev__engine *e, const struct vrev__addr *source)
{
    struct vrev__preauth *p = &e->preauth;
    struct vrev__addr ip = *source;
    ip.port = 0;
    struct vrev__preauth_source *s = find(p, &ip);
    const char *why = early_drop(p)                ? "too many connections in handshake"
                      : s && s->n >= p->per_source ? "too many from this address"
                                                   : NULL;
    if (!why && !s) {
        if (p->n_sources == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 16;
            void *v = vrev__realloc(e->ctx, p->sources, cap * sizeof(*p->sources));
            if (!v)
                why = "out of memory";
            else {
                p->sources = v;
                p->cap = cap;
            }
        }
        if (!why) {
            s = &p->sources[p->n_sources++];
            s->ip = ip;
            s->n = 0;
        }
    }
    if (why) {
        if (p->dropped++ % 100 == 0) { /* rate-limited: a flood must not flood the log */
            char who[VREV_MUX_TARGET_MAX];
            vrev__addr_target_text(&ip, who, sizeof(who));
            vrev__log(e->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                      "refused a connection from %s: %s (%llu refused so far)", who, why,
                      (unsigned long long)p->dropped);
        }
        return false;
    }
    s->n++;
    p->n++;
    return true;
}

void vrev__preauth_release(struct vrev__engine *e, const struct vrev__addr *source)
{
    struct vrev__preauth *p = &e->preauth;
    struct vrev__addr ip = *source;
    ip.port = 0;
    struct vrev__preauth_source *s = find(p, &ip);
    if (!s)
        return;
    p->n--;
    if (--s->n == 0)
        *s = p->sources[--p->n_sources];
}

void vrev__preauth_cleanup(struct vrev__engine *e)
{
    vrev__free(e->ctx, e->preauth.sources);
    memset(&e->preauth, 0, sizeof(e->preauth));
}
