/* Places for connections in their proxy handshake, per inbound (struct vrev__preauth).
 *
 * A full pool never refuses the newcomer: it closes the oldest handshake of the source that
 * holds the most places, and a source at its own cap gives up its own oldest. Why:
 * - Refusing the newest (our first design, with random early drop) locked a bridge out of a
 *   portal under a cheap flood: 300 connections/s that send nothing keep a 1,024-place pool
 *   full for as long as they go on, each place held for the 60 s anti-probing deadline, and
 *   the bridge's reconnect was always the newcomer refused. An honest client needs its place
 *   for one round trip (a VMess header arrives with the connection); a flood needs to hold
 *   its places. Closing the oldest inverts who loses.
 * - The victim comes from the source holding the most, so a flooding address displaces its
 *   own connections before anyone else's, and another source's handshake is closed only when
 *   no source holds more than it does (many addresses each holding as little as it). Among
 *   sources holding equally many, the one that reached that count first goes first.
 * - A source over its cap closes its own oldest rather than being refused: it then cannot
 *   take more than its share from others, and its newest attempt (a client behind a shared
 *   address retrying, a bridge coming back) is the one that survives.
 * Every operation is O(1): the sources sit in lists by the number of places they hold
 * (by_count), and `top` tracks the highest non-empty one (it moves by one step at a time).
 * RELIABILITY.md §3.6 (Slowloris). */
#include <string.h>

#include "inbound.h"

#define LOG_COMPONENT "inbound"

struct vrev__preauth_source {
    struct vrev__source base;                 /* first; base.n: places held */
    struct vrev__handshake *oldest, *newest;  /* its handshakes */
    struct vrev__preauth_source *prev, *next; /* in by_count[base.n], oldest first */
};

int vrev__preauth_init(struct vrev__inbound *in)
{
    struct vrev__preauth *p = &in->preauth;
    const struct vrev__limits *l = &in->engine->limits;
    memset(p, 0, sizeof(*p));
    p->max = (uint32_t)(l->preauth_per_inbound ? l->preauth_per_inbound : 1);
    p->per_source = (uint32_t)(l->preauth_per_source ? l->preauth_per_source : 1);
    if (p->per_source > p->max)
        p->per_source = p->max;
    return vrev__sources_init(&p->sources, in->engine->ctx, sizeof(struct vrev__preauth_source));
}

static void unlink_source(struct vrev__preauth *p, struct vrev__preauth_source *s)
{
    struct vrev__preauth_bucket *b = &p->by_count[s->base.n];
    if (s->prev)
        s->prev->next = s->next;
    else
        b->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        b->tail = s->prev;
    s->prev = s->next = NULL;
}

/* After a source moved down by one (or left), the highest count is at most one lower. */
static void settle_top(struct vrev__preauth *p)
{
    while (p->top && !p->by_count[p->top].head)
        p->top--;
}

static void link_source(struct vrev__preauth *p, struct vrev__preauth_source *s)
{
    struct vrev__preauth_bucket *b = &p->by_count[s->base.n];
    s->next = NULL;
    s->prev = b->tail;
    if (b->tail)
        b->tail->next = s;
    else
        b->head = s;
    b->tail = s;
    if (s->base.n > p->top)
        p->top = s->base.n;
}

/* Room in by_count for a source holding n places. */
static bool buckets_for(struct vrev__inbound *in, uint32_t n)
{
    struct vrev__preauth *p = &in->preauth;
    if (n < p->n_by_count)
        return true;
    uint32_t want = p->n_by_count ? p->n_by_count : 8;
    while (want <= n)
        want *= 2;
    struct vrev__preauth_bucket *v = vrev__realloc(in->engine->ctx, p->by_count, want * sizeof(*v));
    if (!v)
        return false;
    memset(v + p->n_by_count, 0, (want - p->n_by_count) * sizeof(*v));
    p->by_count = v;
    p->n_by_count = want;
    return true;
}

static void note_eviction(struct vrev__inbound *in, const struct vrev__preauth_source *victim,
                          const struct vrev__handshake *newcomer, const char *why)
{
    struct vrev__preauth *p = &in->preauth;
    if (p->evicted++ % 100 == 0) { /* rate-limited: a flood must not flood the log */
        char who[64];
        vrev__source_key_text(&victim->base.key, who, sizeof(who));
        vrev__log(in->engine->ctx, VREV_LOG_WARN, LOG_COMPONENT,
                  VREV__CONN_FMT "[%s] closed a connection still in its handshake (c%llu, from "
                                 "%s) for this newcomer: %s (%llu so far)",
                  VREV__CONN_ARG(newcomer->conn_id), in->tag ? in->tag : "",
                  (unsigned long long)victim->oldest->conn_id, who, why,
                  (unsigned long long)p->evicted);
    }
}

bool vrev__preauth_admit(struct vrev__inbound *in, struct vrev__handshake *h)
{
    struct vrev__preauth *p = &in->preauth;
    struct vrev__source_key key;
    vrev__source_key_of_addr(&key, &h->source);
    struct vrev__preauth_source *s =
        (struct vrev__preauth_source *)vrev__sources_find(&p->sources, &key);
    /* Make room first: the victim's source may be this one, and may go with its last place. */
    if (s && s->base.n >= p->per_source) {
        in->preauth.evicted_source++;
        note_eviction(in, s, h, "too many from that address");
        vrev__handshake_evict(s->oldest);
    } else if (p->n >= p->max && p->top) {
        struct vrev__preauth_source *victim = p->by_count[p->top].head;
        note_eviction(in, victim, h, "all places taken");
        vrev__handshake_evict(victim->oldest);
    }
    s = (struct vrev__preauth_source *)vrev__sources_get(&p->sources, &key);
    if (!s || !buckets_for(in, s->base.n + 1)) {
        if (s && s->base.n == 0)
            vrev__sources_remove(&p->sources, &s->base);
        p->refused++;
        return false;
    }
    if (s->base.n)
        unlink_source(p, s);
    s->base.n++;
    link_source(p, s);
    h->src = s;
    h->newer = NULL;
    h->older = s->newest;
    if (s->newest)
        s->newest->newer = h;
    else
        s->oldest = h;
    s->newest = h;
    p->n++;
    return true;
}

void vrev__preauth_release(struct vrev__inbound *in, struct vrev__handshake *h)
{
    struct vrev__preauth *p = &in->preauth;
    struct vrev__preauth_source *s = h->src;
    if (!s)
        return;
    h->src = NULL;
    if (h->older)
        h->older->newer = h->newer;
    else
        s->oldest = h->newer;
    if (h->newer)
        h->newer->older = h->older;
    else
        s->newest = h->older;
    h->older = h->newer = NULL;
    unlink_source(p, s);
    p->n--;
    if (--s->base.n == 0)
        vrev__sources_remove(&p->sources, &s->base);
    else
        link_source(p, s);
    settle_top(p);
}

void vrev__preauth_cleanup(struct vrev__inbound *in)
{
    struct vrev__preauth *p = &in->preauth;
    while (p->top)
        vrev__handshake_evict(p->by_count[p->top].head->oldest);
    vrev__sources_cleanup(&p->sources);
    vrev__free(in->engine->ctx, p->by_count);
    memset(p, 0, sizeof(*p));
}
