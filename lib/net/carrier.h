/* Carriers: the transport below the proxy protocol, V2Ray's streamSettings.network ("tcp",
 * "ws", "h2"/"http"), as V2Ray 4.34 stacks them:
 *
 *   VMess / VLESS / SOCKS / Mux.Cool    the proxy protocol (lib/proxy, lib/reverse)
 *   carrier: ws (lib/codec/ws, http1) or h2 (lib/codec/h2); nothing for tcp
 *   TLS (streamSettings.security "tls")
 *   TCP
 *
 * An outbound dials, puts TLS on, then its carrier (client role); an inbound accepts, puts TLS
 * on, then its carrier (server role) before its protocol's handshake. A ws connection carries
 * one proxied stream; an h2 connection carries one stream per proxied connection (V2Ray's h2
 * client multiplexes every connection to one destination over one HTTP/2 connection), so an
 * h2 server hands each accepted stream to the inbound as a connection of its own.
 * The embedder's transports (vrev/transport.h) stay layers of their own, as before. */
#ifndef VREV_NET_CARRIER_H
#define VREV_NET_CARRIER_H

#include <stdbool.h>
#include <stddef.h>

enum vrev__carrier_kind {
    VREV_CARRIER_TCP = 0, /* nothing between TLS (or TCP) and the proxy protocol */
    VREV_CARRIER_WS = 1,  /* "ws": wsSettings */
    VREV_CARRIER_H2 = 2,  /* "h2" / "http": httpSettings */
};

/* What a configuration says of its carrier (strings borrowed for the call that takes them;
 * whoever keeps the options copies them). */
struct vrev__carrier_opts {
    int kind;         /* enum vrev__carrier_kind */
    const char *path; /* ws: wsSettings.path; h2: httpSettings.path; NULL: "/" */
    /* ws client: the Host header (wsSettings.headers.Host; NULL: the dialed host);
     * h2: httpSettings.host (client: one picked per connection; server: :authority must be
     * one of them; none: "www.example.com", as V2Ray) */
    const char *const *hosts;
    size_t n_hosts;
    /* ws client: other wsSettings.headers, sent as given */
    const char *const *header_names;
    const char *const *header_values;
    size_t n_headers;
    bool accept_proxy_protocol; /* server: wsSettings/tcpSettings.acceptProxyProtocol */
};

#endif
