/* blackhole: the link goes nowhere. With the "http" response type, the client first gets a
 * 403 answer, as V2Ray sends. */
#include <string.h>

#include "proxy.h"

struct blackhole {
    struct vrev__outbound base; /* first */
    bool http;
};

static const char http_403[] = "HTTP/1.1 403 Forbidden\r\nConnection: close\r\n"
                               "Cache-Control: max-age=3600, public\r\nContent-Length: 0\r\n\r\n";

/* The short write of the answer is tracked like any connection, so stopping the engine
 * frees it; a client that never reads is cut by the write timeout. */
struct answering {
    struct vrev__conn conn; /* first */
    struct vrev__engine *engine;
    struct bufferevent *bev;
};

static void answering_close(struct vrev__conn *c)
{
    struct answering *a = (struct answering *)c;
    bufferevent_free(a->bev);
    vrev__free(a->engine->ctx, a);
}

static void answering_done(struct answering *a)
{
    vrev__engine_untrack(a->engine, &a->conn);
    answering_close(&a->conn);
}

static void discard(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void answer_failed(struct bufferevent *bev, short what, void *arg);

/* The answer is out: end our side, then read and drop whatever the client still sends until
 * it closes, so that its unread request does not turn our close into a reset. */
static void answered(struct bufferevent *bev, void *arg)
{
    struct timeval tv = {2, 0};
    vrev__bev_shutdown_write(bev);
    bufferevent_setcb(bev, discard, NULL, answer_failed, arg);
    bufferevent_set_timeouts(bev, &tv, NULL);
    bufferevent_enable(bev, EV_READ);
}

static void answer_failed(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    answering_done(arg);
}

static int blackhole_handle(struct vrev__outbound *ob, const struct vrev__link_info *info,
                            struct bufferevent *link)
{
    struct blackhole *b = (struct blackhole *)ob;
    if (!b->http || info->network != VREV_NET_TCP) {
        vrev__bev_close(link, 0);
        return 0;
    }
    struct answering *a = vrev__calloc(ob->engine->ctx, 1, sizeof(*a));
    if (!a) {
        vrev__bev_close(link, 1);
        return VREV_ERR_NOMEM;
    }
    a->engine = ob->engine;
    a->bev = link;
    vrev__engine_track(ob->engine, &a->conn, answering_close);
    struct timeval tv = {5, 0};
    bufferevent_set_timeouts(link, NULL, &tv);
    bufferevent_setcb(link, NULL, answered, answer_failed, a);
    bufferevent_write(link, http_403, sizeof(http_403) - 1);
    bufferevent_enable(link, EV_WRITE);
    return 0;
}

static void blackhole_destroy(struct vrev__outbound *ob)
{
    vrev__outbound_cleanup(ob);
    vrev__free(ob->engine->ctx, ob);
}

static const struct vrev__outbound_ops blackhole_ops = {
    .protocol = "blackhole", .handle = blackhole_handle, .destroy = blackhole_destroy};

int vrev__blackhole_new(struct vrev__engine *e, const char *tag, bool http_response,
                        struct vrev__outbound **out)
{
    struct blackhole *b = vrev__calloc(e->ctx, 1, sizeof(*b));
    if (!b)
        return VREV_ERR_NOMEM;
    int rc = vrev__outbound_init(&b->base, e, &blackhole_ops, tag);
    if (rc < 0) {
        blackhole_destroy(&b->base);
        return rc;
    }
    b->http = http_response;
    *out = &b->base;
    return 0;
}
