/* The counters of lib/proxy and lib/reverse as metric samples (names: vrev/obs.h). */
#include <stdarg.h>
#include <string.h>

#include "net/net.h"
#include "obs.h"
#include "proxy/udp.h"

#define LABELS_MAX 512

/* Append `s` to buf (at *n, capacity cap) as a Prometheus label value: \, " and newline
 * escaped. Stops (truncates) at the capacity. */
static void put_value(char *buf, size_t cap, size_t *n, const char *s)
{
    for (; s && *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        size_t k = esc ? 2 : 1;
        if (*n + k >= cap)
            return;
        memcpy(buf + *n, esc ? esc : s, k);
        *n += k;
    }
}

static void put_text(char *buf, size_t cap, size_t *n, const char *s)
{
    size_t k = strlen(s);
    if (*n + k >= cap)
        k = cap - 1 - *n;
    memcpy(buf + *n, s, k);
    *n += k;
}

void vrev__metric(const struct vrev__metrics *m, const char *name, int kind, const char *help,
                  uint64_t value, ...)
{
    char labels[LABELS_MAX];
    size_t n = 0;
    va_list ap;
    va_start(ap, value);
    const char *key;
    while ((key = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        put_text(labels, sizeof(labels), &n, n ? "," : "");
        put_text(labels, sizeof(labels), &n, key);
        put_text(labels, sizeof(labels), &n, "=\"");
        put_value(labels, sizeof(labels) - 1, &n, v); /* room for the closing quote */
        put_text(labels, sizeof(labels), &n, "\"");
    }
    va_end(ap);
    labels[n] = '\0';
    m->cb(name, kind, help, labels, value, m->user);
}

#define COUNTER VREV_METRIC_COUNTER
#define GAUGE VREV_METRIC_GAUGE

static const char help_links[] = "Connections and sessions routed, by inbound and outbound tag.";
static const char help_drops[] = "Work turned away or held back by a limit (vrev limits).";
static const char help_hs[] = "Inbound connections that ended in their handshake, by reason.";

void vrev__metrics_engine(const struct vrev__metrics *m, const struct vrev__engine *e)
{
    for (size_t i = 0; i < e->n_routes; i++) {
        const struct vrev__route_count *r = &e->routes[i];
        vrev__metric(m, "vrev_links_total", COUNTER, help_links, r->links, "inbound", r->inbound,
                     "outbound", r->outbound, NULL);
    }
    vrev__metric(m, "vrev_relays", GAUGE, "Direct relays (freedom outbounds) live now.",
                 e->stats.relays_live, NULL);
    static const char help_rb[] = "Bytes carried by direct relays (up: client to target).";
    vrev__metric(m, "vrev_relay_bytes_total", COUNTER, help_rb, e->stats.bytes_up, "direction",
                 "up", NULL);
    vrev__metric(m, "vrev_relay_bytes_total", COUNTER, help_rb, e->stats.bytes_down, "direction",
                 "down", NULL);
}

static void drop(const struct vrev__metrics *m, const char *limit, const char *key,
                 const char *value, uint64_t n)
{
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, n, "limit", limit, key, value,
                 NULL);
}

void vrev__metrics_inbound(const struct vrev__metrics *m, const struct vrev__inbound *in)
{
    const char *tag = in->tag;
    const struct vrev__handshake_failures *f = &in->failures;
    static const char *const why[] = {"rejected", "timeout", "closed", "error"};
    const uint64_t n[] = {f->rejected, f->timeout, f->closed, f->error};
    for (size_t i = 0; i < 4; i++)
        vrev__metric(m, "vrev_handshake_failures_total", COUNTER, help_hs, n[i], "inbound", tag,
                     "reason", why[i], NULL);
    if (in->listener) {
        uint64_t all = vrev__listener_refused(in->listener);
        uint64_t by_source = vrev__listener_refused_source(in->listener);
        drop(m, "connsPerListener", "inbound", tag, all - by_source);
        drop(m, "connsPerSource", "inbound", tag, by_source);
    }
    drop(m, "preauthPerInbound", "inbound", tag, in->preauth.evicted - in->preauth.evicted_source);
    drop(m, "preauthPerSource", "inbound", tag, in->preauth.evicted_source);
    if (in->udp) {
        uint64_t client, inbound, budget;
        vrev__udp_in_drops(in->udp, &client, &inbound, &budget);
        drop(m, "udpClientBytes", "inbound", tag, client);
        drop(m, "udpInboundBytes", "inbound", tag, inbound);
        drop(m, "bufferedTotal", "inbound", tag, budget);
    }
}

/* What portals and bridges share. */
struct reverse_counts {
    const char *role, *tag;
    uint64_t tunnels, opened, sessions, active, up, down;
    const struct vrev__muxconn_stats *mux;
};

static void reverse_metrics(const struct vrev__metrics *m, const struct reverse_counts *c)
{
    const char *r = c->role, *t = c->tag;
    vrev__metric(m, "vrev_tunnels", GAUGE, "Tunnels open now.", c->tunnels, "role", r, "tag", t,
                 NULL);
    vrev__metric(m, "vrev_tunnels_opened_total", COUNTER, "Tunnels opened.", c->opened, "role", r,
                 "tag", t, NULL);
    vrev__metric(m, "vrev_sessions", GAUGE, "Sessions live now.", c->active, "role", r, "tag", t,
                 NULL);
    vrev__metric(m, "vrev_sessions_total", COUNTER, "Sessions opened.", c->sessions, "role", r,
                 "tag", t, NULL);
    static const char help_b[] = "Session payload bytes (up: public client to service).";
    vrev__metric(m, "vrev_bytes_total", COUNTER, help_b, c->up, "role", r, "tag", t, "direction",
                 "up", NULL);
    vrev__metric(m, "vrev_bytes_total", COUNTER, help_b, c->down, "role", r, "tag", t, "direction",
                 "down", NULL);
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, c->mux->refused_rate, "limit",
                 "sessionRate", "role", r, "tag", t, NULL);
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, c->mux->reply_holds, "limit",
                 "replyAllowance", "role", r, "tag", t, NULL);
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, c->mux->budget_stops, "limit",
                 "bufferedTotal", "role", r, "tag", t, NULL);
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, c->mux->cap_stops, "limit",
                 "tunnelBuffer", "role", r, "tag", t, NULL);
}

static const char help_refused[] = "Sessions refused, by reason.";

bool vrev__is_portal(const struct vrev__outbound *ob)
{
    return ob && ob->ops && ob->ops->protocol && !strcmp(ob->ops->protocol, "portal");
}

void vrev__metrics_portal(const struct vrev__metrics *m, const struct vrev__outbound *portal)
{
    struct vrev__portal_stats st;
    memset(&st, 0, sizeof(st));
    vrev__portal_get_stats(portal, &st);
    struct reverse_counts c = {"portal",          portal->tag,   st.tunnels_live,
                               st.tunnels_opened, st.sessions,   st.sessions_active,
                               st.bytes_up,       st.bytes_down, &st.mux};
    reverse_metrics(m, &c);
    vrev__metric(m, "vrev_sessions_refused_total", COUNTER, help_refused, st.no_tunnel, "role",
                 "portal", "tag", portal->tag, "reason", "no_tunnel", NULL);
}

void vrev__metrics_bridge(const struct vrev__metrics *m, const struct vrev__bridge *b)
{
    struct vrev__bridge_stats st;
    memset(&st, 0, sizeof(st));
    vrev__bridge_get_stats(b, &st);
    const char *tag = vrev__bridge_tag(b);
    struct reverse_counts c = {.role = "bridge",
                               .tag = tag,
                               .tunnels = st.tunnels_up, /* dials in progress are not up */
                               .opened = st.tunnels_up_total,
                               .sessions = st.sessions,
                               .active = st.sessions_active,
                               .up = st.bytes_up,
                               .down = st.bytes_down,
                               .mux = &st.mux};
    reverse_metrics(m, &c);
    vrev__metric(m, "vrev_sessions_refused_total", COUNTER, help_refused, st.refused, "role",
                 "bridge", "tag", tag, "reason", "target", NULL);
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, st.dials_refused, "limit",
                 "dialsPerTunnel", "role", "bridge", "tag", tag, NULL);
    vrev__metric(m, "vrev_limit_drops_total", COUNTER, help_drops, st.tunnels_capped, "limit",
                 "tunnelsPerBridge", "role", "bridge", "tag", tag, NULL);
}

void vrev__metrics_reloads(const struct vrev__metrics *m, uint64_t ok, uint64_t failed)
{
    static const char help[] = "Configuration reloads, by result.";
    vrev__metric(m, "vrev_reloads_total", COUNTER, help, ok, "result", "ok", NULL);
    vrev__metric(m, "vrev_reloads_total", COUNTER, help, failed, "result", "failed", NULL);
}
