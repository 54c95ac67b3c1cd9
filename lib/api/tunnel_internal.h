/* Internals shared by the files of lib/api (the JSON-free tunnel API). */
#ifndef VREV_API_TUNNEL_INTERNAL_H
#define VREV_API_TUNNEL_INTERNAL_H

#include <stdbool.h>

#include "codec/addr.h"
#include "core/core.h"
#include "net/carrier.h"
#include "vrev/tunnel.h"

struct vrev__tunnel_pair {
    char *name;
    char *hostport; /* NULL for an in-process handler */
    vrev_bridge_accept_cb cb;
    void *user;
    int proxy_protocol; /* bridge target: PROXY header version to send; 0: none */
};

struct vrev_tunnel_opts {
    char err[256];
    uint8_t uuid[16];
    bool has_id;
    int security; /* VREV_VMESS_SEC_* */
    char *domain; /* NULL: the default */
    char *listen; /* portal */
    struct vrev__tunnel_pair *publics;
    size_t n_publics;
    char *portal; /* bridge */
    struct vrev__tunnel_pair *targets;
    size_t n_targets;
    unsigned heartbeat_ms, drain_after, sessions_per_tunnel, dead_after_ms; /* 0: defaults */
    bool tls;
    bool tls_insecure;
    bool accept_proxy; /* portal: listeners read a PROXY header first */
    char *tls_cert;    /* portal */
    char *tls_key;
    char *tls_ca; /* bridge */
    char *tls_sni;
    uint8_t (*tls_pins)[32]; /* bridge: --pin (vrev_tunnel_opts_add_tls_pin) */
    size_t n_tls_pins;
    char *transport;    /* a custom transport's name (vrev/transport.h); NULL: none */
    int carrier;        /* VREV_CARRIER_* (net/carrier.h) */
    char *carrier_path; /* normalized ("/..."); NULL: "/" */
    char *carrier_host; /* NULL: the default */
};

/* The carrier options the tunnel's inbound or outbound takes (strings borrowed from o);
 * *host is the storage for the one host. */
void vrev__tunnel_carrier(const vrev_tunnel_opts *o, struct vrev__carrier_opts *c,
                          const char **host);
const char *vrev__tunnel_carrier_name(int kind);

long vrev__tunnel_find_target(const vrev_tunnel_opts *o, const char *name);
/* A bridge target named by the HOST:PORT a portal asks for (e.g. a V2Ray portal's
 * dokodemo-door target) rather than by a name; *a gets that address. */
bool vrev__tunnel_target_addr(const struct vrev__tunnel_pair *t, struct vrev__addr *a);
const char *vrev__tunnel_domain(const vrev_tunnel_opts *o);

#endif
