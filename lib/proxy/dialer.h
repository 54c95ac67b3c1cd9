/* Dials counted on a gauge (dialer.c), for a cap their owner enforces: a bridge's dials to
 * local services per tunnel (limits.dials_per_tunnel, struct vrev__link_info.dialing). */
#ifndef VREV_PROXY_DIALER_H
#define VREV_PROXY_DIALER_H

#include "proxy.h"

/* vrev__outbound_dial(), the dial counted on `dialing` (may be NULL: not counted) from now
 * until it ends: connected, given up, or cancelled by the engine stopping. The dial holds a
 * reference to the gauge meanwhile, so its owner may drop its own first. */
int vrev__outbound_dial_counted(struct vrev__outbound *ob, struct bufferevent *link,
                                const struct vrev__addr *target, uint32_t step_ms,
                                struct vrev__gauge *dialing, vrev__link_dialed_fn done,
                                void (*release)(void *user), void *user);

#endif
