/* vmess outbound: dial the server, send a VMess AEAD request for the link's target, relay
 * through the body stream (WIRE-SPEC §4). alterId 0 only: the legacy header is refused at
 * configuration time. */
#include <string.h>
#include <time.h>

#include "net/vmess_stream.h"
#include "proxy.h"

#define LOG_COMPONENT "vmess"
#define VMESS_RETRY_STEP_MS 200

struct vmess_entry {
    struct vrev__addr server; /* first (picker) */
    struct vrev__vmess_user user;
    uint8_t security;
};

struct vmess_out {
    struct vrev__outbound base; /* first */
    struct vrev__picker picker;
    size_t n;
    struct vmess_entry ent[];
};

struct vmess_req {
    struct vrev__picked_req h; /* first: the outbound, the server and user picked */
    struct vrev__link_info info;
};

static void on_dialed(struct bufferevent *link, struct bufferevent *bev, int err, void *user)
{
    struct vmess_req *r = user;
    struct vrev__outbound *ob = r->h.ob;
    const struct vmess_entry *ent = r->h.ent;
    struct vrev__engine *e = ob->engine;
    struct vrev__vmess_request req;
    memset(&req, 0, sizeof(req));
    if (err)
        goto fail;
    err = vrev__vmess_request_randomize(&req, NULL, NULL);
    if (err < 0)
        goto fail;
    req.version = 1;
    req.security = ent->security;
    /* 4.34 clients send ChunkStream|ChunkMasking, plus GlobalPadding for the AEAD ciphers;
     * never GlobalPadding without masking (it crashes a 4.34 server). */
    req.options =
        ent->security == VREV_VMESS_SEC_NONE ? VREV_VMESS_OPT_DEFAULT_NONE : VREV_VMESS_OPT_DEFAULT;
    req.command = r->info.network == VREV_NET_UDP ? VREV_VMESS_CMD_UDP : VREV_VMESS_CMD_TCP;
    req.target = r->info.target;
    struct bufferevent *stream =
        vrev__vmess_stream_client(e->ctx, bev, &ent->user, &req, (int64_t)time(NULL), &err);
    bev = NULL;
    vrev__wipe(&req, sizeof(req));
    if (!stream)
        goto fail;
    struct vrev__handoff *h = r->h.handoff;
    uint64_t id = r->info.conn_id;
    vrev__free(e->ctx, r);
    vrev__outbound_finish(ob, link, h, stream, 0, id);
    return;
fail:
    vrev__picked_req_failed(ob, LOG_COMPONENT, r->info.conn_id, link, r->h.handoff, bev, err);
    vrev__free(e->ctx, r);
}

static int vmess_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                        struct bufferevent *link)
{
    struct vmess_out *v = (struct vmess_out *)ob;
    struct vmess_req *r =
        vrev__picked_req_new(ob, &v->picker, v->ent, sizeof(v->ent[0]), link, info, sizeof(*r));
    if (!r)
        return VREV_ERR_NOMEM;
    r->info = *info;
    r->info.inbound_tag = NULL; /* not needed past routing; it may not outlive the call */
    r->info.user = NULL;
    return vrev__outbound_dial_req(ob, link, info, r->h.ent, VMESS_RETRY_STEP_MS, on_dialed,
                                   vrev__picked_req_release, r);
}

static void vmess_destroy(struct vrev__outbound *ob)
{
    struct vmess_out *v = (struct vmess_out *)ob;
    for (size_t i = 0; i < v->n; i++)
        vrev__vmess_user_wipe(&v->ent[i].user);
    vrev__outbound_free_picked(ob, &v->picker, NULL, 0); /* the users are wiped above */
}

static const struct vrev__outbound_ops vmess_ops = {.protocol = "vmess",
                                                    .handle = vmess_handle,
                                                    .destroy = vmess_destroy,
                                                    .open = vrev__outbound_open_stream};

int vrev__vmess_out_new(struct vrev__engine *e, const char *tag,
                        const struct vrev__user_out_opts *opts, size_t n,
                        struct vrev__outbound **out)
{
    if (!opts)
        return VREV_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (opts[i].security != VREV_VMESS_SEC_AES_128_GCM &&
            opts[i].security != VREV_VMESS_SEC_CHACHA20_POLY1305 &&
            opts[i].security != VREV_VMESS_SEC_NONE)
            return VREV_ERR_VMESS_SECURITY;
    }
    int rc;
    struct vmess_out *v =
        vrev__outbound_picked_new(e, tag, &vmess_ops, opts, n, sizeof(*v), sizeof(v->ent[0]), &rc);
    if (!v)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct vmess_entry *en = &v->ent[i];
        rc = vrev__addr_from_text(&en->server, opts[i].address, opts[i].port);
        if (rc == 0)
            rc = vrev__vmess_user_init(&en->user, opts[i].uuid);
        if (rc == 0)
            v->n = i + 1;
        en->security = (uint8_t)opts[i].security;
    }
    return vrev__outbound_picked_done(&v->base, &v->picker, v->ent, n, sizeof(v->ent[0]), rc, out);
}
