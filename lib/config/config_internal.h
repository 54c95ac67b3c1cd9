/* Shared between the lib/config source files: the loader state, the JSON path stack used for
 * messages, the arena, and typed accessors that read one member of a jansson object with
 * V2Ray 4.34's rules (case-insensitive keys, last duplicate wins, null = absent).
 *
 * Error convention: every accessor returns 0 or a negative VREV_ERR_*; on error it has
 * already filled the loader's error (message, path, position), so callers just propagate.
 * The path stack is left as it was at the failure; nothing reads it afterwards.
 */
#ifndef VREV_CONFIG_INTERNAL_H
#define VREV_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* Deeper than any path the schema produces (e.g.
 * outbounds[1].streamSettings.tlsSettings.certificates[0].certificate[3] is 8). */
#define VREV_CFG_PATH_MAX 24

/* Warnings cost a rescan of the text each (for the position); this bounds a hostile file. */
#define VREV_CFG_MAX_WARNINGS 64

/* One step of a JSON path: a member name as spelled in the document, or an array index. */
struct vrev__cfg_path_item {
    const char *key; /* NULL: index */
    size_t index;
};

struct vrev__cfg_loader {
    vrev_ctx *ctx;
    const char *text;  /* as given, for line/column */
    const char *clean; /* comments blanked, same offsets */
    size_t len;
    const char *file;
    struct vrev__config *cfg;
    struct vrev__config_error *err;
    struct vrev__cfg_path_item path[VREV_CFG_PATH_MAX];
    size_t depth; /* may exceed VREV_CFG_PATH_MAX; extra steps are not recorded */
    unsigned warnings;
};

typedef struct vrev__cfg_loader vrev__cfg_loader;

/* Propagate a negative return. */
#define VREV_CFG_TRY(expr)                                                                         \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

/* ---- path, messages (config_util.c) ---- */

void vrev__cfg_push_key(vrev__cfg_loader *L, const char *key);
void vrev__cfg_push_index(vrev__cfg_loader *L, size_t index);
void vrev__cfg_pop(vrev__cfg_loader *L);

/* Fill the error (current path, its position) and return code. */
int vrev__cfg_fail(vrev__cfg_loader *L, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a missing or absent member `name` of the object at the current path. */
int vrev__cfg_fail_missing(vrev__cfg_loader *L, const char *name);
/* Out of memory (no position lookup). */
int vrev__cfg_nomem(vrev__cfg_loader *L);
/* A warning at the current path, to the ctx log. `at_key`: point at the last key rather
 * than at its value. */
void vrev__cfg_warn(vrev__cfg_loader *L, bool at_key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A warning at byte offset off of the text (no path), with the same budget. */
void vrev__cfg_warn_at(vrev__cfg_loader *L, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The path as text ("a.b[2].c") into buf. */
void vrev__cfg_path_text(const struct vrev__cfg_path_item *path, size_t n, char *buf, size_t cap);

/* ---- arena (config.c) ---- */

/* n * size zeroed bytes owned by the description; NULL on overflow or out of memory. */
void *vrev__cfg_alloc(vrev__cfg_loader *L, size_t n, size_t size);
/* A copy of s[0..len) plus NUL; NULL when out of memory. */
char *vrev__cfg_strndup(vrev__cfg_loader *L, const char *s, size_t len);

/* ---- member access (config_util.c) ---- */

/* Key comparison as Go's encoding/json: ASCII case folding plus U+017F (long s) ~ 's' and
 * U+212A (Kelvin sign) ~ 'k'. */
bool vrev__cfg_key_equal(const char *doc_key, const char *name);

/* The member `name` of obj (NULL when absent or null); *spelled gets the document's key. */
json_t *vrev__cfg_get(vrev__cfg_loader *L, json_t *obj, const char *name, const char **spelled);

/* Warn once for every member of obj whose name is not in known[] (NULL-terminated). */
/* Is `key` one of known[] (NULL-terminated; compared as V2Ray does)? */
bool vrev__cfg_known_key(const char *key, const char *const *known);
void vrev__cfg_check_keys(vrev__cfg_loader *L, json_t *obj, const char *const *known);

/* Member as an object / array; *out NULL when absent. Wrong type -> error. The member key is
 * NOT left on the path: callers push *spelled themselves when they descend. */
int vrev__cfg_object(vrev__cfg_loader *L, json_t *obj, const char *name, json_t **out,
                     const char **spelled);
int vrev__cfg_array(vrev__cfg_loader *L, json_t *obj, const char *name, json_t **out,
                    const char **spelled);

/* Typed members; when absent the output is left unchanged and *present (if non-NULL) is set
 * false. Strings are copied into the arena. */
/* obj's "settings" object into *s (NULL when absent: the protocols take that as {}, as 4.34
 * does), its key pushed on the path: pop it when done. */
int vrev__cfg_settings(vrev__cfg_loader *L, json_t *obj, json_t **s);
/* A protocol name and its VREV_CFG_IN_* / VREV_CFG_OUT_* (0: known to V2Ray, not supported). */
struct vrev__cfg_protocol_name {
    const char *name;
    int proto;
};
/* obj's required "protocol" (any case) among known[0..n) into *proto; `what` ("inbound",
 * "outbound") names it in the errors. */
int vrev__cfg_protocol(vrev__cfg_loader *L, json_t *obj, const char *what,
                       const struct vrev__cfg_protocol_name *known, size_t n, int *proto);
int vrev__cfg_string(vrev__cfg_loader *L, json_t *obj, const char *name, const char **out,
                     bool *present);
int vrev__cfg_bool(vrev__cfg_loader *L, json_t *obj, const char *name, bool *out);
int vrev__cfg_int(vrev__cfg_loader *L, json_t *obj, const char *name, int64_t min, int64_t max,
                  int64_t *out, bool *present);
int vrev__cfg_u32(vrev__cfg_loader *L, json_t *obj, const char *name, uint32_t *out);
int vrev__cfg_u8(vrev__cfg_loader *L, json_t *obj, const char *name, uint8_t *out);

/* A V2Ray StringList: an array of strings or one comma-separated string. drop_empty removes
 * "" entries (4.34 does for inboundTag/user/protocol). Absent: *out unchanged. */
int vrev__cfg_strlist(vrev__cfg_loader *L, json_t *obj, const char *name, bool drop_empty,
                      struct vrev__strlist *out, bool *present);

/* A port: a number or a numeric string, 0..65535. Absent: *out unchanged. */
int vrev__cfg_port(vrev__cfg_loader *L, json_t *obj, const char *name, uint16_t *out,
                   bool *present);
/* A server port: required, 1..65535. */
int vrev__cfg_server_port(vrev__cfg_loader *L, json_t *obj, const char *name, uint16_t *out);
/* An inbound port: number, "N", "A-B" or "env:NAME" (4.34's PortRange). */
int vrev__cfg_port_range(vrev__cfg_loader *L, json_t *obj, const char *name,
                         struct vrev__cfg_port_range *out, bool *present);

/* A user id: required; 8-4-4-4-12 or 32 hex digits; not the nil UUID. */
int vrev__cfg_uuid(vrev__cfg_loader *L, json_t *obj, const char *name, struct vrev__cfg_uuid *out);
/* Parse a UUID text; false when malformed. */
bool vrev__cfg_parse_uuid(const char *s, struct vrev__cfg_uuid *out);

/* A host: an IP literal or a domain (WIRE-SPEC §2.2). Required or not. */
int vrev__cfg_address(vrev__cfg_loader *L, json_t *obj, const char *name, bool required,
                      const char **out);

/* An arena array of n string pointers (at least one slot). */
const char **vrev__cfg_strv(vrev__cfg_loader *L, size_t n);

/* Network names -> VREV_ROUTE_* bits ("tcp", "udp", any case); others are warned about and
 * ignored, as 4.34 ignores them (it does not trim, so "tcp, udp" loses udp there too). */
unsigned vrev__cfg_networks(vrev__cfg_loader *L, const struct vrev__strlist *names);

/* Decimal 0..65535, digits only. */
bool vrev__cfg_parse_port_text(const char *s, size_t n, uint16_t *out);

/* The array member `name` of obj: allocates n elements of `size` bytes in *out and calls fn
 * on each with the path set to name[i]. Absent or empty: an error with empty_msg when
 * empty_msg is not NULL, else *n = 0. */
typedef int (*vrev__cfg_elem_fn)(vrev__cfg_loader *L, json_t *elem, void *out);
int vrev__cfg_each(vrev__cfg_loader *L, json_t *obj, const char *name, size_t size,
                   const char *empty_msg, void **out, size_t *n, vrev__cfg_elem_fn fn);

/* VMess "alterId": 0 or absent, else the legacy-VMess error. */
int vrev__cfg_vmess_alter_id(vrev__cfg_loader *L, json_t *obj);
/* VLESS "flow": stored, warned about when set (4.34 ignores it). */
int vrev__cfg_vless_flow(vrev__cfg_loader *L, json_t *obj, const char **flow);

/* ---- sections ---- */

int vrev__cfg_inbound(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_inbound *in,
                      uint16_t legacy_port);
int vrev__cfg_outbound(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_outbound *out);
/* streamSettings of an inbound (server) or outbound (client); absent = plain tcp. */
int vrev__cfg_stream(vrev__cfg_loader *L, json_t *parent, bool server,
                     struct vrev__cfg_stream *out);
/* Needs inbounds, outbounds and reverse parsed: rule tags are checked against them. */
int vrev__cfg_routing(vrev__cfg_loader *L, json_t *obj, struct vrev__cfg_routing *out);
/* The top-level "vrev" object (config_vrev.c); needs reverse parsed (bridge tags). */
int vrev__cfg_vrev(vrev__cfg_loader *L, json_t *root, struct vrev__cfg_vrev *out);
/* Its "outbounds" (a PROXY header from a freedom outbound); needs outbounds parsed. */
int vrev__cfg_vrev_outbounds(vrev__cfg_loader *L, json_t *root);
/* Needs everything parsed: warn for each bridge whose sessions can reach a freedom outbound
 * without "redirect" (the portal then picks any host and port) and that has no allow-list. */
void vrev__cfg_check_bridge_reach(vrev__cfg_loader *L, json_t *root);

/* ---- positions (json_pos.c) ---- */

/* Offset of the value at path (or of its last key when want_key) in the comment-free text;
 * false when the path is not there (then *off is the deepest enclosing value found). */
bool vrev__json_pos_find(const char *s, size_t len, const struct vrev__cfg_path_item *path,
                         size_t n, bool want_key, size_t *off);
/* 1-based line and character column of byte offset off (off == len: just past the end). */
void vrev__json_pos_linecol(const char *text, size_t len, size_t off, unsigned *line,
                            unsigned *col);
/* Whether brackets nest deeper than max outside strings; *off gets the offending bracket. */
bool vrev__json_too_deep(const char *s, size_t len, size_t max, size_t *off);
/* For every key that repeats an earlier key of the same object (as decoded), in text order:
 * fn(offset of the earlier one, offset of the repeat, user). The text must be valid JSON
 * nested at most VREV_CONFIG_MAX_DEPTH deep (recursion); the work is bounded. Returns
 * false when out of memory. */
typedef void (*vrev__json_dup_fn)(size_t first, size_t dup, void *user);
bool vrev__json_dup_keys(vrev_ctx *ctx, const char *s, size_t len, vrev__json_dup_fn fn,
                         void *user);
/* The start of the JSON token whose bytes include offset off (for jansson's positions, which
 * point past the end of a bad token). */
size_t vrev__json_token_start(const char *s, size_t len, size_t off);

#endif
