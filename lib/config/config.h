/* Config loader: a V2Ray v4 JSON config (WIRE-SPEC §8) -> a plain C description.
 *
 * The loader reads the subset of V2Ray 4.34's format that libvrev implements (DESIGN.md §5):
 * log, inbounds (dokodemo-door, vmess, vless, socks), outbounds (freedom, blackhole, vmess,
 * vless, socks), routing (field rules, balancers), reverse (bridges, portals), policy, and
 * streamSettings (tcp, ws or h2, optionally TLS). It follows 4.34's lexical rules: `//`, `#` and
 * block comments outside strings, object keys matched case-insensitively (as Go's
 * encoding/json does), the last of duplicate keys wins, unknown keys ignored (with a warning
 * through the ctx log), null treated as absent. Where 4.34 would silently do something the
 * user cannot have meant (an unknown socks auth method means "noauth" there), and for
 * everything libvrev does not implement, loading fails with a message saying so.
 *
 * Lib/config is the only user of jansson (DESIGN.md §3); nothing here exposes it.
 *
 * Ownership: a loaded description owns every string and array it points to (one arena,
 * wiped on free because it holds UUIDs, passwords and keys). Pointers stay valid until
 * vrev__config_free(). The description is read-only for its users.
 *
 * Thread safety: loading touches only its arguments (and getenv() for "env:NAME" ports);
 * a loaded description may be read from any thread.
 */
#ifndef VREV_CONFIG_CONFIG_H
#define VREV_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "net/carrier.h"
#include "route/router.h"

/* RELIABILITY.md §3.6: larger configs and deeper nesting are refused before parsing
 * (CVE-2016-4425 was a jansson stack overflow on deep nesting; its own limit is 2048). */
#define VREV_CONFIG_MAX_SIZE ((size_t)1 << 20)
#define VREV_CONFIG_MAX_DEPTH 64

/* ---- errors ---------------------------------------------------------------------------- */

/* Where and why a load failed. line/column are 1-based (column in characters, tabs count 1);
 * 0 when unknown (e.g. the size limit). path is the JSON path of the offending value, e.g.
 * "outbounds[1].settings.vnext[0].port", keys spelled as in the file; "" for the document
 * itself or a syntax error. Fixed buffers: filling them never allocates. */
struct vrev__config_error {
    int code; /* the VREV_ERR_* the load returned */
    unsigned line;
    unsigned column;
    char file[256];
    char path[256];
    char message[256];
};

/* "FILE:LINE:COL: PATH: MESSAGE" (parts that are unknown/empty are left out) into buf, always
 * NUL-terminated when cap > 0. Returns the length the full text needs (like snprintf). */
size_t vrev__config_error_format(const struct vrev__config_error *e, char *buf, size_t cap);

/* ---- the description -------------------------------------------------------------------- */

struct vrev__cfg_uuid {
    uint8_t bytes[16]; /* in textual order */
    char text[37];     /* canonical lowercase 8-4-4-4-12; a secret: never log it */
};

struct vrev__cfg_port_range {
    uint16_t from; /* from <= to; a single port has from == to */
    uint16_t to;
};

/* log: 4.34 semantics (infra/conf/log.go). */
enum vrev__cfg_log_type {
    VREV_CFG_LOG_NONE = 0,
    VREV_CFG_LOG_CONSOLE = 1,
    VREV_CFG_LOG_FILE = 2,
};

struct vrev__cfg_log {
    int access_type;         /* VREV_CFG_LOG_*: no "log" object -> NONE; "log" without
                                "access" -> CONSOLE (as 4.34); "none" -> NONE; path -> FILE */
    const char *access_path; /* for FILE, else NULL */
    int error_type;          /* default CONSOLE */
    const char *error_path;
    int level; /* VREV_LOG_ERROR..DEBUG; "warning" (the default) -> VREV_LOG_WARN. "loglevel":
                  "none" sets both types to NONE. */
};

/* streamSettings: network tcp, ws or h2 (others are refused at load), TLS or not. */
enum vrev__cfg_security {
    VREV_CFG_SECURITY_NONE = 0,
    VREV_CFG_SECURITY_TLS = 1,
    VREV_CFG_SECURITY_CUSTOM = 2, /* a transport registered on the ctx (vrev/transport.h) */
};

enum vrev__cfg_cert_usage {
    VREV_CFG_CERT_ENCIPHERMENT = 0, /* default, and 4.34's choice for unknown values */
    VREV_CFG_CERT_VERIFY = 1,       /* a CA used to verify the peer */
};

struct vrev__cfg_cert {
    const char *certificate_file; /* exactly one of certificate_file / certificate */
    const char *certificate;      /* inline PEM: the JSON lines joined with '\n' (as 4.34) */
    const char *key_file;         /* at most one of key_file / key; both NULL: no key */
    const char *key;              /* a secret */
    int usage;                    /* VREV_CFG_CERT_* */
};

struct vrev__cfg_tls {
    const char *server_name; /* NULL: the destination domain (client) */
    bool allow_insecure;     /* logged as a warning at load */
    bool disable_system_root;
    bool enable_session_resumption;
    struct vrev__strlist alpn; /* n == 0: the default */
    struct vrev__cfg_cert *certs;
    size_t n_certs;
    /* pinnedPeerCertificateChainSha256 (v2fly 4.38's key; 4.34 ignores it): SHA-256 chain
     * hashes (net/tls_pin.h), base64 in the file. Client only (a server warns and ignores). */
    uint8_t (*pins)[32];
    size_t n_pins;
};

enum vrev__cfg_tproxy {
    VREV_CFG_TPROXY_OFF = 0,
    VREV_CFG_TPROXY_REDIRECT = 1,
    VREV_CFG_TPROXY_TPROXY = 2,
};

struct vrev__cfg_stream {
    /* network and its wsSettings / httpSettings; strings in the description's arena. path is
     * normalized as V2Ray does ("" -> NULL, meaning "/"; "p" -> "/p"). ws: hosts holds the
     * Host header (0 or 1), headers the others; h2: hosts is httpSettings.host. */
    struct vrev__carrier_opts carrier;
    int security;             /* VREV_CFG_SECURITY_* */
    struct vrev__cfg_tls tls; /* meaningful when security == TLS */
    const char *custom;       /* the transport's name when security == CUSTOM */
    /* sockopt */
    uint32_t mark;     /* SO_MARK; 0: none */
    int tcp_fast_open; /* -1 unset, 0 off, 1 on */
    int tproxy;        /* VREV_CFG_TPROXY_* */
};

/* ---- inbounds ---- */

enum vrev__cfg_inbound_protocol {
    VREV_CFG_IN_DOKODEMO = 1,
    VREV_CFG_IN_VMESS = 2,
    VREV_CFG_IN_VLESS = 3,
    VREV_CFG_IN_SOCKS = 4,
};

struct vrev__cfg_dokodemo {
    const char *address; /* target host (IP or domain); NULL only with follow_redirect */
    uint16_t port;       /* target port */
    unsigned networks;   /* VREV_ROUTE_TCP | VREV_ROUTE_UDP; default TCP */
    bool follow_redirect;
    uint32_t timeout; /* s, deprecated: overrides connIdle at user level 0; 0 unset */
    uint32_t user_level;
};

/* A client of a vmess or vless inbound. */
struct vrev__cfg_client {
    struct vrev__cfg_uuid id;
    const char *flow; /* vless: "" when absent; 4.34 ignores it (no XTLS), so does libvrev;
                       * vmess: "" */
    uint8_t level;
    const char *email; /* "" when absent */
};

struct vrev__cfg_vmess_inbound {
    struct vrev__cfg_client *clients; /* n_clients >= 1 */
    size_t n_clients;
    bool disable_insecure_encryption; /* refuse clients using security "none" */
};

struct vrev__cfg_vless_inbound {
    struct vrev__cfg_client *clients; /* n_clients >= 1; decryption was "none" */
    size_t n_clients;
};

enum vrev__cfg_socks_auth {
    VREV_CFG_SOCKS_NOAUTH = 0,
    VREV_CFG_SOCKS_PASSWORD = 1,
};

struct vrev__cfg_socks_account {
    const char *user;
    const char *pass; /* a secret */
};

struct vrev__cfg_socks_inbound {
    int auth; /* VREV_CFG_SOCKS_*; PASSWORD implies n_accounts >= 1 */
    struct vrev__cfg_socks_account *accounts;
    size_t n_accounts;
    bool udp;
    const char *ip;   /* address announced for UDP ASSOCIATE; NULL: the local address */
    uint32_t timeout; /* s, deprecated; 0 unset */
    uint32_t user_level;
};

struct vrev__cfg_inbound {
    const char *tag;    /* "" when untagged */
    int protocol;       /* VREV_CFG_IN_* */
    const char *listen; /* an IP literal or "localhost"; default "0.0.0.0" */
    struct vrev__cfg_port_range port;
    union {
        struct vrev__cfg_dokodemo dokodemo;
        struct vrev__cfg_vmess_inbound vmess;
        struct vrev__cfg_vless_inbound vless;
        struct vrev__cfg_socks_inbound socks;
    } settings;
    struct vrev__cfg_stream stream;
    /* The element as compact JSON with sorted keys: a reload (lib/instance) keeps what did not
     * change by comparing these. Holds secrets (wiped with the arena); never log it. */
    const char *json;
};

/* ---- outbounds ---- */

enum vrev__cfg_outbound_protocol {
    VREV_CFG_OUT_FREEDOM = 1,
    VREV_CFG_OUT_BLACKHOLE = 2,
    VREV_CFG_OUT_VMESS = 3,
    VREV_CFG_OUT_VLESS = 4,
    VREV_CFG_OUT_SOCKS = 5,
};

enum vrev__cfg_domain_strategy {
    VREV_CFG_DS_ASIS = 0,
    VREV_CFG_DS_USE_IP = 1,
    VREV_CFG_DS_USE_IPV4 = 2,
    VREV_CFG_DS_USE_IPV6 = 3,
};

struct vrev__cfg_freedom {
    int domain_strategy;       /* VREV_CFG_DS_* */
    bool redirect;             /* a "redirect" was given: */
    const char *redirect_host; /* "" keeps the target's address (as "0.0.0.0" does) */
    uint16_t redirect_port;    /* 0 keeps the target's port */
    uint32_t timeout;          /* s, deprecated; 0 unset */
    int proxy_protocol;        /* "vrev": {"outbounds": {TAG: {"proxyProtocol"}}}: 1, 2; 0 none */
    uint32_t user_level;
};

enum vrev__cfg_blackhole_response {
    VREV_CFG_BLACKHOLE_NONE = 0,
    VREV_CFG_BLACKHOLE_HTTP = 1, /* a 403 response before closing */
};

struct vrev__cfg_blackhole {
    int response;
};

/* VMess security as a 4.34 client resolves it (WIRE-SPEC §4.6): "zero", "aes-128-cfb" and
 * unknown names are AUTO there (with a warning here). AUTO = AES-128-GCM on 64-bit hosts. */
enum vrev__cfg_vmess_security {
    VREV_CFG_VMESS_AUTO = 0,
    VREV_CFG_VMESS_AES_128_GCM = 3,
    VREV_CFG_VMESS_CHACHA20_POLY1305 = 4,
    VREV_CFG_VMESS_NONE = 5,
};

/* A user of a vmess or vless outbound's server. */
struct vrev__cfg_user {
    struct vrev__cfg_uuid id; /* vless: encryption was "none" */
    int security;             /* vmess: VREV_CFG_VMESS_* (the wire values of §4.5); vless: 0 */
    const char *flow;         /* vless: "" when absent; ignored, as by 4.34; vmess: "" */
    uint8_t level;
    const char *email;
};

/* A server of a vmess or vless outbound. */
struct vrev__cfg_server {
    const char *address;          /* IP literal or domain */
    uint16_t port;                /* 1..65535 */
    struct vrev__cfg_user *users; /* n_users >= 1 */
    size_t n_users;
};

struct vrev__cfg_socks_user {
    const char *user;
    const char *pass; /* a secret */
    uint8_t level;
    const char *email;
};

struct vrev__cfg_socks_server {
    const char *address;
    uint16_t port;
    struct vrev__cfg_socks_user *users; /* may be empty: no authentication */
    size_t n_users;
};

struct vrev__cfg_outbound {
    const char *tag;          /* "" when untagged */
    int protocol;             /* VREV_CFG_OUT_* */
    const char *send_through; /* local IP to bind; NULL: any */
    union {
        struct vrev__cfg_freedom freedom;
        struct vrev__cfg_blackhole blackhole;
        struct {
            struct vrev__cfg_server *servers;
            size_t n_servers;
        } vmess;
        struct {
            struct vrev__cfg_server *servers;
            size_t n_servers;
        } vless;
        struct {
            struct vrev__cfg_socks_server *servers;
            size_t n_servers;
        } socks;
    } settings;
    struct vrev__cfg_stream stream;
    int16_t mux_concurrency; /* as written (mux.enabled must be false; see WIRE-SPEC §8.4) */
    const char *json;        /* as vrev__cfg_inbound.json */
};

/* ---- routing, reverse, policy ---- */

enum vrev__cfg_route_strategy {
    VREV_CFG_ROUTE_ASIS = 0,
    VREV_CFG_ROUTE_IP_IF_NON_MATCH = 1, /* logged: libvrev's router never resolves */
    VREV_CFG_ROUTE_IP_ON_DEMAND = 2,
    VREV_CFG_ROUTE_ALWAYS_IP = 3, /* behaves as AsIs in 4.34 */
};

struct vrev__cfg_balancer {
    const char *tag;
    struct vrev__strlist selectors; /* n >= 1 */
};

struct vrev__cfg_routing {
    int domain_strategy;           /* VREV_CFG_ROUTE_* */
    struct vrev__rule_spec *rules; /* "routing.rules" then the deprecated "settings.rules" */
    size_t n_rules;
    struct vrev__cfg_balancer *balancers;
    size_t n_balancers;
};

struct vrev__cfg_reverse_entry {
    const char *tag;    /* non-empty */
    const char *domain; /* 1..255 of [A-Za-z0-9._-] (WIRE-SPEC §2.2) */
};

struct vrev__cfg_reverse {
    struct vrev__cfg_reverse_entry *bridges;
    size_t n_bridges;
    struct vrev__cfg_reverse_entry *portals;
    size_t n_portals;
};

/* A user level's policy, in seconds and bytes. */
struct vrev__cfg_level_policy {
    uint32_t level;
    uint32_t handshake;     /* default 60 */
    uint32_t conn_idle;     /* default 300 (600 for level 1 when there is no "policy") */
    uint32_t uplink_only;   /* default 1 */
    uint32_t downlink_only; /* default 1 */
    int64_t buffer_size;    /* bytes per connection; default 512 KiB; -1: "unlimited" as
                               written (the engine still applies its global caps) */
    bool stats_user_uplink;
    bool stats_user_downlink;
};

struct vrev__cfg_policy {
    bool present; /* a "policy" object was given (changes the level-1 default, see above) */
    struct vrev__cfg_level_policy *levels; /* the levels named in policy.levels */
    size_t n_levels;
    bool stats_inbound_uplink; /* policy.system */
    bool stats_inbound_downlink;
    bool stats_outbound_uplink;
    bool stats_outbound_downlink;
};

/* The "vrev" object: libvrev's own settings, beside V2Ray's (4.34 ignores an unknown
 * top-level key: `v2ray -test` accepts such a file). Unknown keys in it are errors. */
struct vrev__cfg_limit {
    const char *name; /* as in core/limits.h (static) */
    uint64_t value;   /* within the limit's range */
};

struct vrev__cfg_bridge_allow {
    const char *tag;            /* a reverse.bridges[] tag */
    struct vrev__strlist allow; /* "[tcp:|udp:]HOST:PORT" (reverse.h, allowed_targets) */
};

struct vrev__cfg_vrev {
    struct vrev__cfg_limit *limits; /* "limits": {"sessionRate": 5000, ...} */
    size_t n_limits;
    struct vrev__cfg_bridge_allow *bridges; /* "bridges": {"<tag>": {"allow": [...]}} */
    size_t n_bridges;
    const char *metrics; /* "metrics": "IP:PORT" (checked); NULL: none */
};

struct vrev__config_arena;

struct vrev__config {
    struct vrev__cfg_log log;
    struct vrev__cfg_inbound *inbounds; /* "inbound", "inboundDetour", then "inbounds" */
    size_t n_inbounds;
    struct vrev__cfg_outbound *outbounds; /* "outbound", "outboundDetour", then "outbounds" */
    size_t n_outbounds;
    struct vrev__cfg_routing routing;
    struct vrev__cfg_reverse reverse;
    struct vrev__cfg_policy policy;
    struct vrev__cfg_vrev vrev;
    /* The router's outbound index space: every outbound's tag in order, then every portal's
     * tag (4.34 registers portals after the configured outbounds), for
     * vrev__router_finish(). Untagged outbounds appear as "". */
    struct vrev__strlist outbound_tags;

    vrev_ctx *ctx;
    struct vrev__config_arena *arena;
};

/* ---- API ------------------------------------------------------------------------------- */

/* Load a config from text[0..len) (need not be NUL-terminated). `filename` names the text in
 * messages (NULL: "config"); it is copied. Warnings (unknown keys, ignored sections, risky
 * settings) go to the ctx log as "FILE:LINE:COL: PATH: message" at VREV_LOG_WARN.
 *
 * On success *out owns a new description (free with vrev__config_free). On failure *out is
 * NULL and, when err is not NULL, *err says where and why. Returns 0 or:
 *   VREV_ERR_INVAL              ctx, text (with len > 0) or out is NULL
 *   VREV_ERR_NOMEM              out of memory (jansson's own allocations use malloc)
 *   VREV_ERR_CONFIG_LIMIT       larger than 1 MiB or nested deeper than 64
 *   VREV_ERR_CONFIG_SYNTAX      not JSON (after comment removal) or not an object
 *   VREV_ERR_CONFIG_INVALID     a value is of the wrong type, out of range or inconsistent
 *   VREV_ERR_CONFIG_UNSUPPORTED a feature libvrev does not implement (the message names it)
 */
int vrev__config_load(vrev_ctx *ctx, const char *text, size_t len, const char *filename,
                      struct vrev__config **out, struct vrev__config_error *err);

/* The same with the size of the description's arena blocks (0: the default, 16 KiB). Tests
 * pass 1 so that every string and array is an allocation of its own, which the
 * allocation-failure sweep can then fail one at a time. */
int vrev__config_load_ex(vrev_ctx *ctx, const char *text, size_t len, const char *filename,
                         size_t arena_block, struct vrev__config **out,
                         struct vrev__config_error *err);

/* The allow-list the "vrev" object gives bridges tagged `tag`, or NULL (route everything). */
const struct vrev__strlist *vrev__config_bridge_allow(const struct vrev__config *cfg,
                                                      const char *tag);

/* Free a description (wiping its secrets). NULL is a no-op. */
void vrev__config_free(struct vrev__config *cfg);

/* The effective policy of a user level, 4.34's rules (app/policy, features/policy): a level
 * listed in policy.levels is the defaults overridden by what it sets; any other level gets
 * the defaults; without a "policy" object, level 1 has connIdle 600 s. */
void vrev__config_policy_for_level(const struct vrev__config *cfg, uint32_t level,
                                   struct vrev__cfg_level_policy *out);

/* Replace comments (`//` and `#` to the end of the line, block comments) outside string
 * literals by spaces, keeping every newline and every byte offset. `in` and `out` may be the
 * same buffer. Follows 4.34's filter: double- and single-quoted strings with backslash
 * escapes are left alone, and a backslash outside strings protects the next byte. */
void vrev__config_strip_comments(const char *in, size_t len, char *out);

/* The jansson library at run time (jansson_version_str()), as snprintf into buf. */
int vrev__config_jansson_version(char *buf, size_t cap);

#endif
