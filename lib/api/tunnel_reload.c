/* What vrev_portal_reload and vrev_bridge_reload share (lib/api/tunnel.c applies them). */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "tunnel_internal.h"

/* Each option as its bytes with a length before it, so that no two lists hash alike. */
static void add(struct vrev__iov *v, size_t *n, uint32_t *lens, const void *p, size_t len)
{
    lens[*n / 2] = (uint32_t)len;
    v[*n] = (struct vrev__iov){&lens[*n / 2], sizeof(uint32_t)};
    v[*n + 1] = (struct vrev__iov){p, len};
    *n += 2;
}

static void add_str(struct vrev__iov *v, size_t *n, uint32_t *lens, const char *s)
{
    add(v, n, lens, s ? s : "", s ? strlen(s) + 1 : 0); /* NULL and "" differ */
}

void vrev__tunnel_key(const vrev_tunnel_opts *o, int portal, uint8_t key[32])
{
    struct vrev__iov v[32];
    uint32_t lens[16];
    size_t n = 0;
    int flags[4] = {portal, o->tls, o->tls_insecure, o->carrier};
    add(v, &n, lens, flags, sizeof(flags));
    add(v, &n, lens, o->uuid, sizeof(o->uuid));
    add_str(v, &n, lens, o->transport);
    add_str(v, &n, lens, o->carrier_path);
    add_str(v, &n, lens, o->carrier_host);
    if (portal) {
        add_str(v, &n, lens, o->listen);
        add_str(v, &n, lens, o->tls_cert);
        add_str(v, &n, lens, o->tls_key);
    } else {
        add(v, &n, lens, &o->security, sizeof(o->security));
        add_str(v, &n, lens, o->portal);
        add_str(v, &n, lens, o->tls_ca);
        add_str(v, &n, lens, o->tls_sni);
        add(v, &n, lens, o->tls_pins, o->n_tls_pins * sizeof(*o->tls_pins));
    }
    if (vrev__sha256(v, n, key) < 0)
        memset(key, 0, 32); /* never equal to a real hash: the reload rebuilds */
}

int vrev__tunnel_reload_check(const struct vrev__tunnel_reload *rs, const vrev_tunnel_opts *o,
                              char *err, size_t len)
{
    const char *what = strcmp(rs->domain, vrev__tunnel_domain(o)) ? "--domain"
                       : rs->heartbeat_ms != o->heartbeat_ms      ? "--heartbeat"
                       : rs->drain_after != o->drain_after        ? "the drain threshold"
                       : rs->dead_after_ms != o->dead_after_ms    ? "--dead-after"
                                                                  : NULL;
    if (!what)
        return 0;
    if (err && len)
        snprintf(err, len, "%s changed: that needs a restart", what);
    return VREV_ERR_UNSUPPORTED;
}

int vrev__tunnel_reserve_out(vrev_ctx *ctx, struct vrev__tunnel_reload *rs, size_t n)
{
    struct vrev__outbound **v =
        vrev__realloc(ctx, rs->retired_out, (rs->n_retired_out + n + 1) * sizeof(*v));
    if (!v)
        return VREV_ERR_NOMEM;
    rs->retired_out = v;
    return 0;
}

void vrev__tunnel_retire_out(struct vrev__tunnel_reload *rs, struct vrev__outbound *ob)
{
    rs->retired_out[rs->n_retired_out++] = ob;
}

void vrev__tunnel_reload_cleanup(struct vrev__engine *e, struct vrev__tunnel_reload *rs)
{
    vrev__retired_cleanup(&rs->retired_in);
    for (size_t i = 0; i < rs->n_retired_out; i++)
        rs->retired_out[i]->ops->destroy(rs->retired_out[i]);
    if (e->ctx) {
        vrev__free(e->ctx, rs->retired_out);
        vrev__free(e->ctx, rs->domain);
    }
    memset(rs, 0, sizeof(*rs));
}
