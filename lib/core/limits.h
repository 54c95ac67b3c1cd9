/* Resource limits (RELIABILITY.md G7 and §3.6; issue M7): one table of named caps, each with
 * its default, range and meaning. A context holds one set (vrev_ctx_set_limit); an engine
 * copies it when it is made (a JSON configuration's "vrev": {"limits": {...}} then overrides
 * its copy); bufferedTotal is the context's own, read where bytes are buffered. The README's
 * "Limits" table lists the same names and defaults (a test compares them). */
#ifndef VREV_CORE_LIMITS_H
#define VREV_CORE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* X(field, "name", default, min, max, "what it bounds") */
#define VREV__LIMITS(X)                                                                            \
    X(preauth_per_inbound, "preauthPerInbound", 1024, 1, 1000000,                                  \
      "connections in their handshake per inbound; when full, the oldest is closed for a "         \
      "newcomer")                                                                                  \
    X(preauth_per_source, "preauthPerSource", 256, 1, 1000000,                                     \
      "connections in their handshake per inbound from one address (an IPv6 /64)")                 \
    X(conns_per_listener, "connsPerListener", 262144, 1, 10000000,                                 \
      "live connections accepted by one listener")                                                 \
    X(conns_per_source, "connsPerSource", 16384, 1, 10000000,                                      \
      "live connections one listener holds from one address (an IPv6 /64)")                        \
    X(session_rate, "sessionRate", 10000, 1, 10000000,                                             \
      "new mux sessions a tunnel accepts per second (token bucket)")                               \
    X(session_burst, "sessionBurst", 2048, 1, 10000000,                                            \
      "new mux sessions a tunnel accepts at once (the bucket's size)")                             \
    X(dials_per_tunnel, "dialsPerTunnel", 512, 1, 1000000,                                         \
      "bridge: dials to local services in progress per tunnel")                                    \
    X(tunnels_per_bridge, "tunnelsPerBridge", 32, 1, 4096, "bridge: tunnels open at once")         \
    X(tunnel_buffer, "tunnelBuffer", 64u << 20, 1u << 20, UINT32_MAX,                              \
      "bytes the sessions of one mux tunnel may hold unwritten")                                   \
    X(udp_client_bytes, "udpClientBytes", 512u << 10, 2048, UINT32_MAX,                            \
      "bytes of datagrams queued for one UDP client while its tunnel is slow")                     \
    X(udp_inbound_bytes, "udpInboundBytes", 16u << 20, 2048, UINT32_MAX,                           \
      "bytes of datagrams queued by one UDP inbound in all")                                       \
    X(buffered_total, "bufferedTotal", 256u << 20, 1u << 20, UINT64_MAX,                           \
      "bytes the whole context holds in its buffers; reading stops before it is passed")

struct vrev__limits {
#define VREV__LIMIT_FIELD(f, n, d, lo, hi, w) uint64_t f;
    VREV__LIMITS(VREV__LIMIT_FIELD)
#undef VREV__LIMIT_FIELD
};

void vrev__limits_default(struct vrev__limits *l);
/* Set limit `name` to `value`. Returns 0, VREV_ERR_INVAL (no such name) or VREV_ERR_RANGE
 * (outside its range; `err` then says which, if given). */
int vrev__limits_set(struct vrev__limits *l, const char *name, uint64_t value, char *err,
                     size_t err_len);
int vrev__limits_get(const struct vrev__limits *l, const char *name, uint64_t *value);

#endif
