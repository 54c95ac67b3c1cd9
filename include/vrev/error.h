/* libvrev error codes.
 *
 * Every fallible function returns 0 on success or one of the negative VREV_ERR_* codes below.
 * The table is an X-macro so that the enum, vrev_strerror() and vrev_err_name() cannot drift
 * apart. Codes are stable once released: new ones are appended.
 *
 * Error detail: every constructor or reload that can fail for a reason worth a sentence
 * (vrev_instance_new_json, vrev_instance_reload, vrev_portal_new, vrev_portal_reload,
 * vrev_bridge_new, vrev_bridge_reload, vrev_metrics_server_new) takes `char *err, size_t
 * err_len` as its last two parameters, a buffer the caller owns. err may be NULL (no detail);
 * otherwise, when err_len > 0, err is always NUL-terminated (a longer message is cut to
 * err_len - 1 bytes): "" on success, one line saying what failed on failure (at least
 * vrev_strerror() of the code returned). 256 bytes hold any message whole but a path's.
 * Other functions' codes say all there is, except the vrev_tunnel_opts setters, whose last
 * message vrev_tunnel_opts_error() gives (vrev/tunnel.h).
 *
 * Thread safety: all functions here are pure and may be called from any thread.
 */
#ifndef VREV_ERROR_H
#define VREV_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, message) */
#define VREV_ERRNO_MAP(XX)                                                                         \
    XX(NOMEM, -1, "out of memory")                                                                 \
    XX(INVAL, -2, "invalid argument")                                                              \
    XX(RANGE, -3, "value out of range")                                                            \
    XX(TRUNCATED, -4, "input truncated")                                                           \
    XX(NOSPACE, -5, "output buffer too small")                                                     \
    XX(STATE, -6, "operation not valid in the current state")                                      \
    XX(UNSUPPORTED, -7, "not supported")                                                           \
    XX(IO, -8, "input/output error")                                                               \
    XX(CRYPTO, -9, "cryptographic backend failure")                                                \
    XX(AUTH, -10, "authentication failed")                                                         \
    XX(TIMEOUT, -11, "timed out")                                                                  \
    XX(CONNREFUSED, -12, "connection refused")                                                     \
    XX(NETUNREACH, -13, "network or host unreachable")                                             \
    XX(RESOLVE, -14, "host name resolution failed")                                                \
    XX(ADDRINUSE, -15, "address already in use")                                                   \
    XX(ADDR_TYPE, -20, "unknown address type")                                                     \
    XX(ADDR_DOMAIN, -21, "invalid domain name")                                                    \
    XX(ADDR_TRUNCATED, -22, "truncated address")                                                   \
    XX(ADDR_SYNTAX, -23, "invalid host address syntax")                                            \
    XX(MUX_META_LEN, -40, "mux metadata length out of range (4..512)")                             \
    XX(MUX_STATUS, -41, "unknown mux frame status")                                                \
    XX(MUX_NETWORK, -42, "unknown mux network type")                                               \
    XX(MUX_NEW_SHORT, -43, "mux New frame too short for its target")                               \
    XX(MUX_PACKET_SIZE, -44, "mux packet larger than 2048 bytes")                                  \
    XX(MUX_DUP_SESSION, -45, "mux New for a session id already in use")                            \
    XX(MUX_SESSION_ID, -46, "invalid mux session id")                                              \
    XX(MUX_NO_SESSION, -47, "no such mux session")                                                 \
    XX(MUX_IDS_EXHAUSTED, -48, "no free mux session id")                                           \
    XX(MUX_TOO_MANY, -49, "too many concurrent mux sessions")                                      \
    XX(MUX_ROLE, -50, "operation not allowed for this mux role")                                   \
    XX(MUX_CLOSED, -51, "mux connection failed earlier and is closed")                             \
    XX(MUX_DATA_LEN, -52, "mux data too long for one frame")                                       \
    XX(MUX_EXT, -53, "malformed vrev mux extension block")                                         \
    XX(MUX_FLOW, -54, "mux peer sent more than its flow-control window")                           \
    XX(PROTO_VARINT, -60, "malformed protobuf varint")                                             \
    XX(PROTO_WIRETYPE, -61, "unsupported protobuf wire type")                                      \
    XX(PROTO_TRUNCATED, -62, "protobuf field runs past the end of the message")                    \
    XX(PROTO_TOO_LARGE, -63, "protobuf message too large")                                         \
    XX(VLESS_VERSION, -80, "unsupported VLESS version (only 0 exists)")                            \
    XX(VLESS_USER, -81, "VLESS user id not allowed")                                               \
    XX(VLESS_ADDONS, -82, "malformed VLESS header addons")                                         \
    XX(VLESS_COMMAND, -83, "unknown VLESS command")                                                \
    XX(SOCKS_VERSION, -90, "unsupported SOCKS version (only 5 is handled)")                        \
    XX(SOCKS_AUTH_VERSION, -91, "unsupported SOCKS username/password version (must be 1)")         \
    XX(SOCKS_COMMAND, -92, "unknown SOCKS command")                                                \
    XX(SOCKS_NO_METHOD, -93, "SOCKS server accepted none of the offered methods")                  \
    XX(SOCKS_REFUSED, -94, "SOCKS server refused the request")                                     \
    XX(SOCKS_FRAGMENT, -95, "fragmented SOCKS UDP datagram (not supported)")                       \
    XX(VMESS_UUID, -100, "invalid VMess user id (need 8-4-4-4-12 or 32 hex digits)")               \
    XX(VMESS_AUTH, -101, "VMess authentication failed (unknown user, clock skew, forgery)")        \
    XX(VMESS_REPLAY, -102, "VMess handshake replayed (auth id or body key/IV seen before)")        \
    XX(VMESS_REPLAY_FULL, -103, "VMess replay filter full: new handshakes refused")                \
    XX(VMESS_LEGACY, -104, "legacy (alterId > 0) VMess header refused: use alterId 0")             \
    XX(VMESS_HEADER_LEN, -105, "VMess request header length invalid")                              \
    XX(VMESS_CHECKSUM, -106, "VMess request header checksum mismatch")                             \
    XX(VMESS_COMMAND, -107, "unknown VMess request command")                                       \
    XX(VMESS_ADDRESS, -108, "invalid VMess request target address")                                \
    XX(VMESS_SECURITY, -109, "unsupported VMess security (need aes-128-gcm, chacha20, none)")      \
    XX(VMESS_OPTIONS, -110, "unsupported VMess options (padding without masking, or 0x10)")        \
    XX(VMESS_RESPONSE, -111, "invalid or unauthenticated VMess response header")                   \
    XX(VMESS_CHUNK_AUTH, -112, "VMess body chunk failed authentication")                           \
    XX(VMESS_CHUNK_LEN, -113, "VMess body chunk length invalid")                                   \
    XX(VMESS_PACKET_SIZE, -114, "datagram too large for one VMess chunk")                          \
    XX(CONFIG_SYNTAX, -200, "config is not valid JSON (after comment removal)")                    \
    XX(CONFIG_INVALID, -201, "invalid config value")                                               \
    XX(CONFIG_UNSUPPORTED, -202, "config uses a feature libvrev does not support")                 \
    XX(CONFIG_LIMIT, -203, "config larger than 1 MiB or nested deeper than 64 levels")             \
    XX(HTTP_HEAD, -300, "malformed HTTP/1.1 message head")                                         \
    XX(HTTP_HEAD_SIZE, -301, "HTTP/1.1 head over the size or header-count limit")                  \
    XX(WS_HANDSHAKE, -302, "WebSocket upgrade refused or invalid")                                 \
    XX(WS_FRAME, -303, "invalid WebSocket frame")                                                  \
    XX(WS_TOO_BIG, -304, "WebSocket frame larger than the limit")                                  \
    XX(WS_FLOOD, -305, "WebSocket control-frame flood")                                            \
    XX(H2_PROTOCOL, -310, "HTTP/2 protocol error")                                                 \
    XX(H2_REFUSED, -311, "HTTP/2 request refused (status, path or host)")                          \
    XX(H2_RESET, -312, "HTTP/2 stream reset by the peer")                                          \
    XX(H2_FLOOD, -313, "HTTP/2 peer over a flood or abuse limit")                                  \
    XX(PROXY_HEADER, -320, "missing or malformed PROXY protocol header")

/* Each code is preceded by its comma: C89 and C++98 allow none after the last enumerator. */
enum vrev_errno {
    VREV_OK = 0 /**< success: what every fallible function returns when it did its work */
#define VREV_ERR_ENUM_(name, value, msg) , VREV_ERR_##name = (value)
    VREV_ERRNO_MAP(VREV_ERR_ENUM_)
#undef VREV_ERR_ENUM_
};

/** A human-readable message for an error code ("unknown error" for unknown codes, "success"
 *  for 0). The returned string is static; never NULL. */
VREV_API const char *vrev_strerror(int err);

/** The symbolic name of an error code without the prefix, e.g. "NOMEM" for VREV_ERR_NOMEM
 *  ("OK" for 0, "UNKNOWN" for unknown codes). The returned string is static; never NULL. */
VREV_API const char *vrev_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
