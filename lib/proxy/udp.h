/* UDP for dokodemo-door (listener side) and freedom (target side); see udp.c. */
#ifndef VREV_PROXY_UDP_H
#define VREV_PROXY_UDP_H

#include "proxy.h"

struct vrev__udp_in;

/* Listen for datagrams on listen:port; each client address becomes a packet link to
 * `target` dispatched with network UDP and inbound tag `tag` (borrowed: it must outlive the
 * listener). */
int vrev__udp_in_new(struct vrev__engine *e, const char *tag, const char *listen, uint16_t port,
                     const struct vrev__addr *target, struct vrev__udp_in **out);
/* The same as a SOCKS5 UDP relay: each datagram carries its destination in a SOCKS header
 * (the link per client address and destination), replies get one naming that destination.
 * Datagrams are taken only from client IPs with an open association. */
int vrev__udp_in_new_socks(struct vrev__engine *e, const char *tag, const char *listen,
                           uint16_t port, struct vrev__udp_in **out);
/* Count an association of `client`'s IP opened (open) or closed. VREV_ERR_RANGE: too many. */
int vrev__udp_in_associate(struct vrev__udp_in *u, const struct vrev__addr *client, bool open);
void vrev__udp_in_free(struct vrev__udp_in *u);
uint16_t vrev__udp_in_port(const struct vrev__udp_in *u);
/* Bytes waiting in the listener's links now (limits.udp_inbound_bytes), and datagrams dropped
 * so far over a bound (udpClientBytes, udpInboundBytes, bufferedTotal). */
void vrev__udp_in_stats(const struct vrev__udp_in *u, size_t *queued, uint64_t *dropped);
/* The dropped datagrams by bound: udpClientBytes, udpInboundBytes, bufferedTotal. */
void vrev__udp_in_drops(const struct vrev__udp_in *u, uint64_t *client, uint64_t *inbound,
                        uint64_t *budget);

/* Carry the packet link `link` (owned from now on) to the IP target over a connected UDP
 * socket (a name is refused: resolve it first). */
int vrev__udp_flow_start(struct vrev__engine *e, struct bufferevent *link,
                         const struct vrev__addr *target);

/* The same through a SOCKS5 server's UDP relay (an IP), for an association made on `ctl`:
 * each datagram goes behind a SOCKS header naming `dest` (which may be a name), the relay's
 * come back without theirs (fragments and malformed ones are dropped), and the flow ends
 * with `ctl`. `link` and `ctl` are owned from now on, whatever the result. */
int vrev__udp_flow_start_socks(struct vrev__engine *e, struct bufferevent *link,
                               const struct vrev__addr *relay, struct bufferevent *ctl,
                               const struct vrev__addr *dest);

#endif
