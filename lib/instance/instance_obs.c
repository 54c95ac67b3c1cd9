/* An instance's metrics, readiness, reload count, metrics address and log targets
 * (vrev/obs.h). */
#include <string.h>

#include "instance/instance_obs.h"
#include "obs/obs.h"

static int copy(vrev_ctx *ctx, const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    return (*out = vrev__strdup(ctx, s)) ? 0 : VREV_ERR_NOMEM;
}

int vrev__instance_obs_init(vrev_ctx *ctx, struct vrev__instance_obs *o,
                            const struct vrev__config *cfg)
{
    o->access_type = cfg->log.access_type;
    o->error_type = cfg->log.error_type;
    if (copy(ctx, cfg->vrev.metrics, &o->metrics) < 0 ||
        copy(ctx, cfg->log.access_type == VREV_CFG_LOG_FILE ? cfg->log.access_path : NULL,
             &o->access_path) < 0 ||
        copy(ctx, cfg->log.error_type == VREV_CFG_LOG_FILE ? cfg->log.error_path : NULL,
             &o->error_path) < 0)
        return VREV_ERR_NOMEM;
    return 0;
}

void vrev__instance_obs_cleanup(vrev_ctx *ctx, struct vrev__instance_obs *o)
{
    vrev__free(ctx, o->metrics);
    vrev__free(ctx, o->access_path);
    vrev__free(ctx, o->error_path);
    memset(o, 0, sizeof(*o));
}

int vrev_instance_ready(const vrev_instance *inst)
{
    if (!inst)
        return 0;
    struct vrev__instance_view v;
    vrev__instance_view(inst, &v);
    if (v.stopped)
        return 0;
    for (size_t i = 0; i < v.n_bridges; i++) {
        struct vrev__bridge_stats st;
        vrev__bridge_get_stats(v.bridges[i], &st);
        if (!st.tunnels_up) /* a tunnel dialled but not yet heard from carries nothing */
            return 0;
    }
    for (size_t i = 0; i < v.engine->n_outbounds; i++) {
        const struct vrev__outbound *ob = v.engine->outbounds[i];
        if (vrev__is_portal(ob)) {
            struct vrev__portal_stats st;
            vrev__portal_get_stats(ob, &st);
            if (!st.tunnels_live)
                return 0;
        }
    }
    return 1;
}

int vrev_instance_metrics(const vrev_instance *inst, vrev_metric_cb cb, void *user)
{
    if (!inst || !cb)
        return VREV_ERR_INVAL;
    struct vrev__metrics m = {cb, user};
    struct vrev__instance_view v;
    vrev__instance_view(inst, &v);
    for (size_t i = 0; i < v.engine->n_outbounds; i++)
        if (vrev__is_portal(v.engine->outbounds[i]))
            vrev__metrics_portal(&m, v.engine->outbounds[i]);
    for (size_t i = 0; i < v.n_bridges; i++)
        vrev__metrics_bridge(&m, v.bridges[i]);
    for (size_t i = 0; i < v.n_inbounds; i++)
        vrev__metrics_inbound(&m, v.inbounds[i]);
    if (v.engine->ctx) /* stopped: the engine is gone */
        vrev__metrics_engine(&m, v.engine);
    vrev__metrics_reloads(&m, v.reloads_ok, v.reloads_failed);
    return 0;
}

const char *vrev_instance_metrics_address(const vrev_instance *inst)
{
    if (!inst)
        return NULL;
    struct vrev__instance_view v;
    vrev__instance_view(inst, &v);
    return v.obs->metrics;
}

int vrev_instance_log_target(const vrev_instance *inst, int access, const char **path)
{
    if (path)
        *path = NULL;
    if (!inst)
        return VREV_ERR_INVAL;
    struct vrev__instance_view v;
    vrev__instance_view(inst, &v);
    int type = access ? v.obs->access_type : v.obs->error_type;
    if (path && type == VREV_CFG_LOG_FILE)
        *path = access ? v.obs->access_path : v.obs->error_path;
    return type; /* VREV_CFG_LOG_* has the values of VREV_LOG_TARGET_* */
}
