/* Packet links: a bufferevent that carries datagrams (UDP) instead of a byte stream. Each
 * datagram is framed as u16be length + bytes, so a pair, a relay or a mux session can carry
 * datagrams with their boundaries intact. */
#ifndef VREV_NET_PACKET_H
#define VREV_NET_PACKET_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

/* The largest datagram a packet link carries (the u16 length field allows 65535). */
#define VREV_PACKET_MAX 65535

/* Append one datagram to a packet link's output buffer. */
int vrev__packet_put(struct evbuffer *out, const uint8_t *p, size_t n);

/* Take the next complete datagram from `in` into buf. Returns 1 and its length in *n, or 0
 * when no complete datagram is buffered. Datagrams longer than cap are dropped on the way
 * (a VREV_PACKET_MAX buffer takes everything). */
int vrev__packet_take(struct evbuffer *in, uint8_t *buf, size_t cap, size_t *n);

#endif
