/* Internals shared by the files of lib/instance: the instance, and the plan a config is built
 * into before it replaces what runs (reload.c). */
#ifndef VREV_INSTANCE_INTERNAL_H
#define VREV_INSTANCE_INTERNAL_H

#include "config/config.h"
#include "instance_obs.h"
#include "proxy/inbound.h"
#include "reverse/reverse.h"
#include "vrev/instance.h"

struct vrev_instance {
    vrev_ctx *ctx;
    struct vrev__engine engine;
    struct vrev__defer defer; /* freed from inside a callback (a log or access line) */
    struct vrev__config *cfg; /* what runs: a reload compares the new config with it */
    struct vrev__inbound **inbounds;
    char **inbound_tags;
    size_t n_inbounds;
    struct vrev__bridge **bridges;
    size_t n_bridges;
    /* Replaced or removed by a reload. An inbound is freed once idle (its handshakes and h2
     * connections ended); an outbound when the instance stops (a dial in progress may still
     * use it). */
    struct vrev__retired retired_in;
    struct vrev__outbound **retired_out;
    size_t n_retired_out;
    uint64_t reloads_ok, reloads_failed;
    struct vrev__instance_obs obs; /* instance_obs.c */
    int log_level;
    bool started;
    bool stopped;
};

/* A config built beside what runs: new objects, and the old ones it keeps. Everything that
 * can fail happens while planning; committing cannot fail. */
struct vrev__plan {
    struct vrev__config *cfg;
    struct vrev__outbound **obs; /* the engine's outbounds: the config's, then its portals */
    bool *ob_new;
    size_t n_obs;
    struct vrev__router *router;
    struct vrev__inbound **ins;
    char **tags;
    long *in_from;  /* the old inbound it is (kept) or takes the listener of (adopt); -1: none */
    bool *in_adopt; /* a new inbound on the old one's listener */
    size_t n_ins;
    struct vrev__bridge **brs; /* all new (not started); a kept one takes the old's tunnels */
    long *br_from;
    struct vrev__outbound **br_route; /* the outbound the old bridge's tunnels went through */
    size_t n_brs;
    bool *old_ob_kept, *old_in_kept, *old_br_kept;
    unsigned in_kept, in_adopted, ob_kept; /* for the log line */
};

/* Builders (instance.c): one element of the config into a new object. On failure err gets
 * "SECTION[i]: what is wrong". */
int vrev__inst_make_outbound(vrev_instance *inst, const struct vrev__cfg_outbound *o, size_t i,
                             struct vrev__outbound **out, char *err, size_t len);
int vrev__inst_make_portal(vrev_instance *inst, const struct vrev__cfg_reverse_entry *p, size_t i,
                           struct vrev__outbound **out, char *err, size_t len);
int vrev__inst_make_router(vrev_instance *inst, const struct vrev__config *cfg,
                           struct vrev__router **out, char *err, size_t len);
int vrev__inst_make_inbound(vrev_instance *inst, const struct vrev__cfg_inbound *c, size_t i,
                            struct vrev__inbound **out, char *err, size_t len);
int vrev__inst_make_bridge(vrev_instance *inst, const struct vrev__config *cfg, size_t i,
                           struct vrev__bridge **out, char *err, size_t len);

/* Plan and commit `cfg` (taken, even on failure) under its limits; sets the log level. The
 * plan's counters stay readable after. */
int vrev__inst_build(vrev_instance *inst, struct vrev__config *cfg, struct vrev__plan *plan,
                     char *err, size_t len);

/* reload.c: plan `cfg` (taken: freed with the plan on failure) against what runs (nothing, for
 * a new instance), then commit it or throw it away. */
int vrev__plan_build(vrev_instance *inst, struct vrev__config *cfg, struct vrev__plan *p, char *err,
                     size_t len);
void vrev__plan_commit(vrev_instance *inst, struct vrev__plan *p);
void vrev__plan_discard(vrev_instance *inst, struct vrev__plan *p);

#endif
