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
    const struct vrev__transport *layer; /* an embedder's transport instead; NULL: none */
    /* dokodemo-door */
    struct vrev__addr target;
    unsigned networks;
    struct vrev__udp_in *udp; /* the UDP side of a "tcp,udp" or "udp" listener; socks: relay */
    /* socks */
    struct vrev__addr announce; /* the relay address UDP ASSOCIATE replies name */
    bool has_announce;
    /* vmess */
    struct vrev__vmess_user *users;
    char **emails;
    size_t n_users;
    struct vrev__vmess_replay *auth_ids;
    struct vrev__vmess_replay *sessions;
};

/* The phase of an accepted connection before it is dispatched: tracked by the engine (so
 * stopping it closes the connection) and bounded by an absolute deadline (policy.handshake)
 * that traffic does not move. Protocols embed it first in their own handshake struct. */
struct vrev__handshake {
    struct vrev__conn conn;      /* first */
    struct vrev__engine *engine; /* kept apart: the engine may close us after the inbound */
    struct vrev__inbound *in;    /* valid while the handshake runs in the loop */
    struct bufferevent *bev;
    struct event *deadline;
    struct vrev__addr source;
    void (*wipe)(struct vrev__handshake *h); /* protocol state to erase on free; may be NULL */
    bool counted; /* holds a place in the engine's pre-auth caps (preauth.c) */
};

/* Accept `fd` from `peer` into a zeroed handshake of `size` bytes (TLS layered on if the
 * inbound has it), within the engine's caps on connections in handshake (else the socket is
 * closed at once). The caller sets the bufferevent's callbacks (with
 * vrev__handshake_on_event as the event callback) and enables reading. NULL on failure (the
 * socket is closed). */
struct vrev__handshake *vrev__handshake_new(struct vrev__inbound *in, evutil_socket_t fd,
                                            const struct sockaddr *peer, size_t size,
                                            void (*wipe)(struct vrev__handshake *h));
/* Close the connection and free the handshake. */
void vrev__handshake_end(struct vrev__handshake *h);
/* The handshake succeeded: free it and return its connection, callbacks cleared. */
struct bufferevent *vrev__handshake_take(struct vrev__handshake *h);
/* Log (at info) that a handshake was refused: "[tag] <verb> <source>: <why>". */
void vrev__handshake_log(const struct vrev__handshake *h, const char *component, const char *verb,
                         const char *why);
/* Event callback during a handshake: the client went away, or failed. */
void vrev__handshake_on_event(struct bufferevent *bev, short what, void *arg);

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
