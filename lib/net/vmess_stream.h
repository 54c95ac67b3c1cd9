/* VMess streams: a bufferevent carrying plaintext over a VMess body on `lower`. */
#ifndef VREV_NET_VMESS_STREAM_H
#define VREV_NET_VMESS_STREAM_H

#include <event2/bufferevent.h>

#include "codec/vmess.h"

/* Client: write the sealed request header (user, req, time `now`) to `lower` and return the
 * stream. Takes ownership of `lower` (freed on failure). NULL with *err on failure. */
struct bufferevent *vrev__vmess_stream_client(vrev_ctx *ctx, struct bufferevent *lower,
                                              const struct vrev__vmess_user *user,
                                              const struct vrev__vmess_request *req, int64_t now,
                                              int *err);

/* Server: the request header `req` has been read from `lower`; return the stream (the
 * response header goes out with the first response bytes). Takes ownership of `lower`. */
struct bufferevent *vrev__vmess_stream_server(vrev_ctx *ctx, struct bufferevent *lower,
                                              const struct vrev__vmess_request *req, int *err);

#endif
