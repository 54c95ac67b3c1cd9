/* Inbound internals shared by the protocol files of lib/proxy. */
#ifndef VREV_PROXY_INBOUND_H
#define VREV_PROXY_INBOUND_H

#include "codec/vmess.h"
#include "proxy.h"

struct vrev__inbound {
    struct vrev__engine *engine;
    char *tag;
    struct vrev__listener *listener;
    struct vrev__tls_ctx *tls; /* streamSettings.security "tls"; NULL: none */
    /* dokodemo-door */
    struct vrev__addr target;
    unsigned networks;
    struct vrev__udp_in *udp; /* the UDP side of a "tcp,udp" or "udp" listener */
    /* vmess */
    struct vrev__vmess_user *users;
    char **emails;
    size_t n_users;
    struct vrev__vmess_replay *auth_ids;
    struct vrev__vmess_replay *sessions;
};

/* Allocate an inbound with its tag (no listener yet). */
struct vrev__inbound *vrev__inbound_alloc(struct vrev__engine *e, const char *tag);
/* Listen, calling `accept` for each connection. */
int vrev__inbound_listen(struct vrev__inbound *in, const char *host, uint16_t port,
                         vrev__accept_cb accept);
char *vrev__strdup(vrev_ctx *ctx, const char *s);
/* A bufferevent for an accepted socket, with the inbound's TLS layered on if it has one.
 * NULL on failure (the socket is then closed). */
struct bufferevent *vrev__inbound_socket(struct vrev__inbound *in, evutil_socket_t fd);

#endif
