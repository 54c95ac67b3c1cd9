/* lib/obs: the counters of engines, inbounds, portals and bridges as metrics (vrev/obs.h),
 * and the HTTP endpoint that serves them. Readers only: every counter is kept where the work
 * is done. */
#ifndef VREV_OBS_OBS_H
#define VREV_OBS_OBS_H

#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "vrev/obs.h"

struct vrev__metrics {
    vrev_metric_cb cb;
    void *user;
};

/* One sample, its labels given as NULL-terminated (key, value) string pairs (values escaped
 * here; a NULL value is ""). */
void vrev__metric(const struct vrev__metrics *m, const char *name, int kind, const char *help,
                  uint64_t value, ...) __attribute__((sentinel));

/* Links by tags, direct relays. */
void vrev__metrics_engine(const struct vrev__metrics *m, const struct vrev__engine *e);
/* Handshake failures and the drops of an inbound's limits (preauth, listener, UDP). */
void vrev__metrics_inbound(const struct vrev__metrics *m, const struct vrev__inbound *in);
void vrev__metrics_portal(const struct vrev__metrics *m, const struct vrev__outbound *portal);
void vrev__metrics_bridge(const struct vrev__metrics *m, const struct vrev__bridge *b);
/* vrev_reloads_total{result="ok"|"failed"} */
void vrev__metrics_reloads(const struct vrev__metrics *m, uint64_t ok, uint64_t failed);
/* Is the engine's outbound a portal (then vrev__metrics_portal applies)? */
bool vrev__is_portal(const struct vrev__outbound *ob);

#endif
