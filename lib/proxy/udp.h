/* UDP for dokodemo-door (listener side) and freedom (target side); see udp.c. */
#ifndef VREV_PROXY_UDP_H
#define VREV_PROXY_UDP_H

#include "proxy.h"

struct vrev__udp_in;

/* Listen for datagrams on listen:port; each client address becomes a packet link to
 * `target` dispatched with network UDP and inbound tag `tag` (borrowed: it must outlive the
 * listener). */
int vrev__udp_in_new(struct vrev__engine *e, const char *tag, const char *listen,
                     uint16_t port, const struct vrev__addr *target, struct vrev__udp_in **out);
void vrev__udp_in_free(struct vrev__udp_in *u);
uint16_t vrev__udp_in_port(const struct vrev__udp_in *u);

/* Carry the packet link `link` (owned from now on) to the IP target over a connected UDP
 * socket (a name is refused: resolve it first). */
int vrev__udp_flow_start(struct vrev__engine *e, struct bufferevent *link,
                         const struct vrev__addr *target);

#endif
