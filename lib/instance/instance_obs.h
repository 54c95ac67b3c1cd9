/* What an instance keeps for observability (instance_obs.c): the configuration's metrics
 * address and log targets; and the view of an instance that the
 * metrics read (filled by instance.c, which owns the struct). */
#ifndef VREV_INSTANCE_INSTANCE_OBS_H
#define VREV_INSTANCE_INSTANCE_OBS_H

#include "config/config.h"
#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "vrev/instance.h"

struct vrev__instance_obs {
    char *metrics;               /* "vrev": {"metrics": ...}; NULL: none */
    int access_type, error_type; /* VREV_CFG_LOG_* */
    char *access_path, *error_path;
};

/* Copy what cfg says (strings with the context's allocator). Returns 0 or VREV_ERR_NOMEM. */
int vrev__instance_obs_init(vrev_ctx *ctx, struct vrev__instance_obs *o,
                            const struct vrev__config *cfg);
/* Free the copies (a zeroed struct is fine). */
void vrev__instance_obs_cleanup(vrev_ctx *ctx, struct vrev__instance_obs *o);

struct vrev__instance_view {
    const struct vrev__engine *engine;
    struct vrev__inbound *const *inbounds;
    size_t n_inbounds;
    struct vrev__bridge *const *bridges;
    size_t n_bridges;
    struct vrev__instance_obs *obs;
    uint64_t reloads_ok, reloads_failed;
    bool stopped;
};
/* instance.c */
void vrev__instance_view(const vrev_instance *inst, struct vrev__instance_view *v);

#endif
