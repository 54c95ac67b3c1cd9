/* lib/net: the libevent glue (with cli/, the only code that includes the event2 headers).
 *
 * Everything that carries bytes is a struct bufferevent: a TCP socket, a layer stacked on one
 * (TLS, a ws or h2 carrier, the VMess stream, an embedder's transport: layer.h says where each
 * sits and how a stack is asked about itself), or one end of an in-process pair (a mux
 * session, a bridge's tunnel link). Connections are joined by a relay with bounded buffering.
 */
#ifndef VREV_NET_NET_H
#define VREV_NET_NET_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/addr.h"
#include "core/core.h"
#include "layer.h"

/* --- policy (V2Ray "policy.levels.N", WIRE-SPEC §3.6/§4.9) ---------------------------------- */

struct vrev__policy {
    uint32_t handshake_ms;     /* proxy header read deadline */
    uint32_t conn_idle_ms;     /* no data either way for this long: close */
    uint32_t uplink_only_ms;   /* after the downlink ended: allowed uplink inactivity */
    uint32_t downlink_only_ms; /* after the uplink ended: allowed downlink inactivity */
    uint32_t buffer_bytes;     /* per-direction high-water mark of a relay */
    uint32_t stall_ms; /* a mux session whose full output stops the tunnel this long: reset */
    uint32_t tunnel_buffer_bytes; /* what all sessions of one mux tunnel may hold unwritten */
    uint32_t flow_window;         /* vrev peers: a mux session's first receive window (0: no flow
                                     control offered, V2Ray's behaviour with every peer) */
    uint32_t flow_window_max;     /* ... and the most it grows to for a fast reader */
};

/* V2Ray 4.34 level-0 defaults: handshake 60 s (source), connIdle 300 s, uplinkOnly 1 s,
 * downlinkOnly 1 s, 512 KiB per connection (amd64); and ours: a mux stalled 10 s by one
 * session (V2Ray waits for ever), 64 MiB held for the local sides of one tunnel (V2Ray: up to
 * 512 KiB for each of its sessions); with a vrev peer, per-session flow control with a 512 KiB
 * window that grows to 16 MiB for a fast reader (docs/extensions.md). */
void vrev__policy_default(struct vrev__policy *p);

/* --- TCP ------------------------------------------------------------------------------------ */

/* Called once with a connected bufferevent (owned by the callee from then on) or with NULL
 * and a negative VREV_ERR_* (the dial failed; `sys_errno` holds the socket error if any). */
typedef void (*vrev__dial_cb)(struct bufferevent *bev, int err, int sys_errno, void *user);

struct vrev__dial;

/* Connect to target (IP, or domain resolved with `dns`, which may be NULL for IP targets).
 * The socket gets TCP_NODELAY and keepalive. On success *out (may be NULL) can cancel the
 * dial before the callback runs. Returns 0 or VREV_ERR_* (callback will not run). */
int vrev__tcp_dial(vrev_ctx *ctx, struct evdns_base *dns, const struct vrev__addr *target,
                   uint32_t timeout_ms, vrev__dial_cb cb, void *user, struct vrev__dial **out);
void vrev__tcp_dial_cancel(struct vrev__dial *d);

/* TCP_NODELAY, and keep-alive probes (30 s idle, 10 s apart, 3) if `keepalive`. Accepted
 * sockets inherit what their listener was given (vrev__listener_new tunes it). */
void vrev__tcp_tune(evutil_socket_t fd, bool keepalive);

/* The TCP socket at the bottom of `bev`: bev's own, or below its layers (layer.h). -1 when
 * there is none (a pair, an h2 stream, an embedder's layer that hides what is below it). */
evutil_socket_t vrev__bev_tcp_fd(struct bufferevent *bev);

/* TCP_USER_TIMEOUT: the kernel fails the connection once bytes it sent have gone this long
 * without an acknowledgement, or the peer's window has stayed shut this long (a host that has
 * gone, or a process that no longer reads), instead of retrying for about 15 minutes.
 * 0 leaves the system's behaviour. Returns 0 or VREV_ERR_IO. */
int vrev__tcp_set_user_timeout(evutil_socket_t fd, uint32_t ms);

/* A bufferevent for an accepted or connected socket, with the options every libvrev socket
 * gets (close on free, deferred callbacks). NULL on failure (the fd is then closed). */
struct bufferevent *vrev__bev_socket(vrev_ctx *ctx, evutil_socket_t fd);

/* Accepting listener. On EMFILE/ENFILE it pauses accepting for a moment instead of spinning. */
typedef void (*vrev__accept_cb)(evutil_socket_t fd, const struct sockaddr *peer, int peer_len,
                                void *user);
struct vrev__listener;
int vrev__listener_new(vrev_ctx *ctx, const char *host, uint16_t port, vrev__accept_cb cb,
                       void *user, struct vrev__listener **out);
void vrev__listener_free(struct vrev__listener *l);
/* Hand the connections accepted from now on to the callback with `user` (a reload moving a
 * listening socket to a new inbound). */
void vrev__listener_set_user(struct vrev__listener *l, void *user);
/* The bound port (useful with port 0). */
uint16_t vrev__listener_port(const struct vrev__listener *l);
/* Every socket accepted from now on starts armed, as by vrev__bev_arm_abort. */
void vrev__listener_arm_abort(struct vrev__listener *l);
/* Cap the live connections accepted by `l`, in all and from one source (an IPv4 address, an
 * IPv6 /64): a connection counts from its accept until its socket is closed (by whichever
 * owner, layer or linger); one over a cap is closed at accept (a log line now and then, and
 * vrev__listener_refused counts it). Returns 0 or VREV_ERR_CRYPTO. */
int vrev__listener_set_caps(struct vrev__listener *l, uint64_t max_conns, uint64_t max_per_source);
/* Connections counted live now (see above), and refused at accept so far. */
uint64_t vrev__listener_live(const struct vrev__listener *l);
uint64_t vrev__listener_refused(const struct vrev__listener *l);
uint64_t vrev__listener_refused_source(const struct vrev__listener *l); /* of those: per source */

/* Fill a socket address from an IP vrev__addr (not a domain); returns its length. */
socklen_t vrev__addr_to_sockaddr(const struct vrev__addr *a, struct sockaddr_storage *ss);

/* Fill a vrev__addr (IP + port) from a socket address. */
void vrev__addr_from_sockaddr(struct vrev__addr *a, const struct sockaddr *sa);

/* bufferevent_enable, but a connected socket with nothing to write is not watched for
 * writability: libevent 2.1 adds the write event whenever writing is enabled, which costs a
 * wake-up and an epoll_ctl per connection for nothing (and one call of the write callback). */
void vrev__bev_enable(struct bufferevent *bev, short what);
/* A freshly accepted socket (reading not enabled yet): read what has already come, up to a
 * few KiB, into its input, without any callback; the consumer takes it from there. Nothing
 * for other kinds of bufferevent. */
void vrev__bev_read_now(struct bufferevent *bev);
/* A read callback that throws away what comes (a connection kept only for its end, such as
 * a SOCKS UDP association). */
void vrev__bev_discard_input(struct bufferevent *bev, void *arg);
/* Announce input that arrived before `bev`'s callbacks were set (bytes after a proxy header):
 * a read callback from the loop. A filter (VMess, TLS) does not look at what already waits in
 * the layer below it when reading is enabled, so that layer is prodded first. */
void vrev__bev_kick_input(struct bufferevent *bev);

/* --- closing -------------------------------------------------------------------------------- */

/* Crash-honest closes: from now on, the TCP socket at the bottom of `bev` (below its VMess and
 * TLS layers; nothing for a pair) is reset, not ended with a FIN, if it is closed without a
 * graceful end: by vrev__bev_close(bev, 1), by bufferevent_free of the socket or of a VMess
 * layer on it, or by the kernel when the process dies. vrev__bev_shutdown_write and
 * vrev__bev_close(bev, 0) end it gracefully (and disarm it), and so does a TLS layer's close.
 * Every connection that carries a proxied stream is armed (inbounds' listeners, the dialer),
 * so that a stream the process did not finish is never taken for a complete one. */
void vrev__bev_arm_abort(struct bufferevent *bev);

/* End the write direction of `bev` (call it once its output buffer has drained):
 * shutdown(SHUT_WR) for a socket, which is no longer armed (a crash after this point must not
 * reset a stream that was all handed over); an end of stream for a pair or filter. Returns
 * true for a socket: a plain bufferevent_free then closes it gracefully (what
 * vrev__bev_close(bev, 0) does, without its system call). */
bool vrev__bev_shutdown_write(struct bufferevent *bev);

/* Free a bufferevent; when `abort` is set and it is a TCP socket, close with RST (SO_LINGER 0)
 * so that the peer sees an error rather than a clean end; otherwise close it the usual way,
 * armed or not (its socket then sends what it holds, then a FIN). */
void vrev__bev_close(struct bufferevent *bev, int abort);

/* Close `bev` gracefully once what it holds has gone out (linger.c): the context owns it
 * from now on and lets it finish alone (writes the rest, ends the write direction, discards
 * what the peer still sends until its end), for at most `ms` (0: at once), then resets it. A
 * stack with no socket at the bottom (a pair) closes as soon as its output is out.
 * `peer_ended`: its input has ended already. */
void vrev__bev_linger(vrev_ctx *ctx, struct bufferevent *bev, uint32_t ms, bool peer_ended);

/* --- streams (vrev/stream.h) ----------------------------------------------------------------- */

struct vrev_stream;

/* Hand `bev` to the application as a vrev_stream (stream.c): the stream owns it from now on
 * (on failure too: then it is reset), sets its callbacks and enables it both ways. Returns 0
 * or VREV_ERR_NOMEM. */
int vrev__stream_new(vrev_ctx *ctx, struct bufferevent *bev, struct vrev_stream **out);

/* --- relay ---------------------------------------------------------------------------------- */

struct vrev__relay;

/* Called once when the relay has ended, with 0 (both directions ended cleanly) or an error
 * (VREV_ERR_IO: a side failed; VREV_ERR_TIMEOUT: an idle timer fired). Byte counts are the
 * bytes moved a->b (up: toward the target, a bridge's service) and b->a (down: back toward
 * the client). Both bufferevents are already freed. */
typedef void (*vrev__relay_done_cb)(int result, uint64_t up_bytes, uint64_t down_bytes, void *user);

/* Join a (the client side: inbound) and b (the target side: outbound). The relay owns both
 * from now on: data moves between them without copies (evbuffer chains), each direction
 * buffers at most policy->buffer_bytes before it stops reading its source, half-close is
 * passed through, and V2Ray's idle timeouts apply. Returns 0 or VREV_ERR_NOMEM (then the
 * bufferevents are freed). `done` may be NULL. */
int vrev__relay_start(vrev_ctx *ctx, struct bufferevent *a, struct bufferevent *b,
                      const struct vrev__policy *policy, vrev__relay_done_cb done, void *user,
                      struct vrev__relay **out);

/* The connection id the relay's lines carry (core.h's "c<N> "; 0 until set). */
void vrev__relay_set_conn_id(struct vrev__relay *r, uint64_t conn_id);

/* Stop a relay now (both sides closed, with RST when abort is set); `done` is not called. */
void vrev__relay_abort(struct vrev__relay *r, int abort);

/* Log (warning, under the layer's name, with connection conn_id) why a layer of `bev`'s stack
 * failed (TLS: a certificate, a name, an alert), if one did: for whoever sees a stack fail (a
 * relay, a bridge's tunnel). */
void vrev__log_layer_failure(vrev_ctx *ctx, uint64_t conn_id, struct bufferevent *bev);

/* The libevent library at run time (event_get_version()), as snprintf into buf. */
int vrev__net_libevent_version(char *buf, size_t cap);

/* --- vrev_ctx_post and deferred frees (post.c) ---------------------------------------------- */

/* The queue and wake-up of vrev_ctx_post() on the context's loop (vrev_ctx_new_loop makes it,
 * vrev_ctx_post_enable on a loop of the program's; vrev_ctx_free frees it). Returns 0,
 * VREV_ERR_NOMEM or VREV_ERR_IO (no descriptor). */
int vrev__post_init(vrev_ctx *ctx);

/* Freeing an object from inside one of the application's callbacks (STYLE: "freeing from
 * inside the object's own callback is safe"): the public free first asks vrev__defer_free();
 * true means an application callback is running (vrev__user_enter), the object must only stop
 * calling the application, and `fn(obj)` (the public free again) runs from the loop once the
 * callback and the code below it have returned. vrev__defer_init: at creation (0 or
 * VREV_ERR_NOMEM); vrev__defer_cleanup: in the real free. A zeroed one defers nothing. */
struct vrev__defer {
    struct event *ev;
    void (*fn)(void *obj);
    void *obj;
    bool pending;
};
int vrev__defer_init(struct vrev__defer *d, vrev_ctx *ctx, void (*fn)(void *obj), void *obj);
bool vrev__defer_free(struct vrev__defer *d, vrev_ctx *ctx);
void vrev__defer_cleanup(struct vrev__defer *d);

#endif
