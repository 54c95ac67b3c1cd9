#!/usr/bin/env python3
"""The include-layer lint (`make layers`, part of `make check`): which folder may include which.

These rules are written down here and nowhere else; docs/layers.md explains them. They follow
DESIGN.md §3 (dependencies point down only) and the comments of lib/net/net.h and
lib/net/layer.h, and they describe the code as it is: every include of the tree obeys them or
is a named exception below, with its reason. Burn the exceptions down; do not add to them
without saying why.

What is checked, for every .c and .h under lib/, cli/ and examples/, and the public headers:
1. A quoted include of a project header ("net/net.h", "vrev/tunnel.h", a file of the same
   folder) is allowed only if that header's folder is in the including folder's MAY_INCLUDE.
   A public header (include/vrev/*.h) belongs to the folder that implements it (PUBLIC_OWNER):
   including it is a dependency on that folder, and a public header's own includes are its
   owner's dependencies. cli/ and examples/ use the public API only.
2. Library headers (<event2/...>, <jansson.h>, TLS and crypto libraries, nghttp2, wslay) only
   in the folders SYSTEM_ALLOWED names.
3. SANS_IO folders reach none of SANS_IO_FORBIDDEN, not even through the project headers they
   include (the closure is followed): no libevent, no sockets, no clock.

Exit status 0 when every include obeys the rules, 1 with one line per violation otherwise.
An exception that no longer matches anything is reported too (the list stays true).
Stdlib only; run from the repository root: python3 scripts/check-layers.py
"""
import os
import re
import sys

# --- the layers, bottom up (DESIGN.md §3) -----------------------------------------------------
# folder -> the other folders whose headers it may include (its own are always allowed).
MAY_INCLUDE = {
    "lib/core": set(),  # vrev_ctx, allocator, errors, log, limits, buffers
    "lib/crypto": {"lib/core"},  # one AEAD/hash interface over mbedTLS or OpenSSL
    "lib/codec": {"lib/core", "lib/crypto"},  # sans-IO codecs
    "lib/route": {"lib/core", "lib/codec"},  # router: matches targets, no I/O
    "lib/net": {"lib/core", "lib/crypto", "lib/codec"},  # the libevent glue
    "lib/proxy": {"lib/core", "lib/crypto", "lib/codec", "lib/net", "lib/route"},
    "lib/reverse": {"lib/core", "lib/crypto", "lib/codec", "lib/net", "lib/proxy"},
    "lib/obs": {"lib/core", "lib/crypto", "lib/codec", "lib/net", "lib/proxy", "lib/reverse"},
    # V2Ray JSON -> the description that lib/instance assembles: it names the option structs
    # of the layers below (carrier, TLS pins, router, reverse), never their running objects.
    "lib/config": {"lib/core", "lib/codec", "lib/net", "lib/route", "lib/reverse"},
    "lib/instance": {"lib/core", "lib/crypto", "lib/codec", "lib/net", "lib/route",
                     "lib/proxy", "lib/reverse", "lib/obs", "lib/config"},
    # The public tunnel API (vrev/tunnel.h) sits on everything.
    "lib/api": {"lib/core", "lib/crypto", "lib/codec", "lib/net", "lib/route", "lib/proxy",
                "lib/reverse", "lib/obs", "lib/config", "lib/instance"},
    "cli": set(),  # the public API only (include/vrev.h)
    "examples": set(),  # ditto: what an embedder sees
}

# include/vrev/*.h -> the folder that implements it. "include" is the umbrella vrev.h.
PUBLIC_OWNER = {
    "common.h": "lib/core", "ctx.h": "lib/core", "error.h": "lib/core",
    "version.h": "lib/core", "transport.h": "lib/core",
    "mux.h": "lib/codec", "control.h": "lib/codec",
    "stream.h": "lib/net", "tunnel.h": "lib/api", "instance.h": "lib/instance", "obs.h": "lib/obs",
}
# cli/ and examples/ may include every public header.
PUBLIC_ONLY = {"cli", "examples"}

# <prefix...> -> folders that may include it directly.
SYSTEM_ALLOWED = {
    # net.h: "the only code (with cli/) that includes event2"; an embedder (examples/) runs
    # the event_base it hands to the public API.
    "event2/": {"lib/net", "cli", "examples"},
    "jansson.h": {"lib/config"},  # DESIGN.md §3: the only user of jansson
    "mbedtls/": {"lib/crypto", "lib/net"},  # the AEADs; the mbedTLS TLS layer
    "openssl/": {"lib/crypto", "lib/net"},
    "nghttp2/": {"lib/codec"},  # the h2 carrier's framing (sans-IO use of nghttp2)
    "wslay/": {"lib/codec"},  # the ws carrier's framing
}

SANS_IO = {"lib/core", "lib/crypto", "lib/codec", "lib/route"}
# lib/core may read the clock (vrev_ctx's time source); the others take time as an argument.
SANS_IO_FORBIDDEN = {
    "lib/core": ["event2/", "sys/socket.h", "netinet/", "netdb.h", "poll.h", "sys/select.h"],
}
for _f in ("lib/crypto", "lib/codec", "lib/route"):
    SANS_IO_FORBIDDEN[_f] = SANS_IO_FORBIDDEN["lib/core"] + ["time.h", "sys/time.h"]

# --- named exceptions: (including file, included header) -> why. The next work burns these
# down; each says what the fix is.
EXCEPTIONS = {
    # event2 outside lib/net: each should move behind a lib/net function.
    ("lib/instance/instance.c", "event2/event.h"):
        "the instance's stop/reload timers use event_* directly; fix: a lib/net timer helper",
    ("lib/instance/reload.c", "event2/event.h"):
        "the reload's deferred swap is an event_*; fix: the same lib/net timer helper",
    ("lib/obs/metrics_http.c", "event2/buffer.h"):
        "the metrics endpoint is an evhttp server; fix: move the HTTP glue to lib/net",
    ("lib/obs/metrics_http.c", "event2/http.h"):
        "the metrics endpoint is an evhttp server; fix: move the HTTP glue to lib/net",
    ("lib/proxy/engine.c", "event2/dns.h"):
        "the engine owns the evdns_base; fix: a lib/net resolver handle",
    ("lib/proxy/resolve.c", "event2/dns.h"):
        "domain resolution calls evdns; fix: move the evdns calls to lib/net",
    ("lib/proxy/resolve.c", "event2/util.h"):
        "evutil_addrinfo for the evdns answers; goes with the evdns calls",
    # jansson outside lib/config.
    ("cli/mem.c", "jansson.h"):
        "json_set_alloc_funcs is process-global: only the program, never the library, may set "
        "jansson's allocator (the CLI's memory accounting); intended, stays",
    # The metrics server (vrev_metrics_server_*, lib/obs/metrics_http.c) takes portals,
    # bridges and instances and calls their public functions (vrev_portal_metrics, ...): API
    # code in lib/obs, which the public header shows.
    ("include/vrev/obs.h", "tunnel.h"):
        "vrev_metrics_server_add_portal/bridge; fix: move metrics_http.c and these functions "
        "to lib/api (or hand the server callbacks instead of handles)",
    ("include/vrev/obs.h", "instance.h"):
        "vrev_metrics_server_add_instance; fix: as for tunnel.h",
    # A lower layer including a public header of a higher one for its enum values.
    ("lib/reverse/bridge.c", "vrev/tunnel.h"):
        "for the VREV_EVENT_* values; fix: move enum vrev_tunnel_event to a core-owned header",
    ("lib/reverse/portal.c", "vrev/tunnel.h"):
        "for the VREV_EVENT_* values; fix: as bridge.c",
    ("lib/reverse/muxconn.c", "vrev/tunnel.h"):
        "for VREV_EVENT_SESSION_OPEN/CLOSE; fix: as bridge.c",
}

SCANNED = ["lib", "cli", "examples", "include/vrev"]
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def folder_of(path):
    """The layer folder of a repository path: lib/<x>, cli, examples, include."""
    parts = path.split("/")
    if parts[0] == "include" and len(parts) == 3:  # a public header: its owner's
        return PUBLIC_OWNER.get(parts[2], "include")
    if parts[0] == "lib" and len(parts) > 2:
        return "lib/" + parts[1]
    return parts[0]


def includes_of(path):
    """[(line number, '<' or '"', name)] of a file's #include lines."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if m:
                out.append((n, m.group(1), m.group(2)))
    return out


def resolve(path, name):
    """The repository path a quoted include names (as the compiler with -Iinclude -Ilib)."""
    for base in (os.path.dirname(path), "include", "lib"):
        cand = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(cand):
            return cand
    return None


def owner(header):
    """The folder a resolved project header belongs to."""
    if header.startswith("include/vrev/"):
        return PUBLIC_OWNER.get(os.path.basename(header), "include")
    if header == "include/vrev.h":
        return "include"
    return folder_of(header)


def matches(name, prefixes):
    return any(name == p or (p.endswith("/") and name.startswith(p)) for p in prefixes)


def closure_system(path, seen):
    """Every <system> include reached from path through project headers: [(name, via)]."""
    found = []
    for _, kind, name in includes_of(path):
        if kind == "<":
            found.append((name, path))
            continue
        target = resolve(path, name)
        if target and target not in seen:
            seen.add(target)
            found.extend(closure_system(target, seen))
    return found


def check_file(path, used):
    errors = []
    me = folder_of(path)
    for line, kind, name in includes_of(path):
        where = "%s:%d" % (path, line)
        if kind == "<":
            for prefix, allowed in SYSTEM_ALLOWED.items():
                if matches(name, [prefix]) and me not in allowed:
                    if (path, name) in EXCEPTIONS:
                        used.add((path, name))
                    else:
                        errors.append("%s: <%s> is allowed only in %s" %
                                      (where, name, ", ".join(sorted(allowed))))
            continue
        target = resolve(path, name)
        if target is None:
            errors.append("%s: \"%s\" not found (include/, lib/, or beside the file)" %
                          (where, name))
            continue
        dep = owner(target)
        if dep == me or (me in PUBLIC_ONLY and target.startswith("include/")):
            continue
        if dep in MAY_INCLUDE.get(me, set()):
            continue
        key = (path, name)
        if key in EXCEPTIONS:
            used.add(key)
            continue
        if me in PUBLIC_ONLY:
            errors.append("%s: \"%s\" is internal (%s); %s/ uses the public API only" %
                          (where, name, target, me))
        else:
            errors.append("%s: %s may not include \"%s\" (%s): it may include %s" %
                          (where, me, name, dep,
                           ", ".join(sorted(MAY_INCLUDE.get(me, ()))) or "only its own"))
    if me in SANS_IO:
        for name, via in closure_system(path, {path}):
            if matches(name, SANS_IO_FORBIDDEN[me]):
                how = "" if via == path else " (through %s)" % via
                errors.append("%s: <%s>%s: %s is sans-IO (no libevent, socket or clock)" %
                              (path, name, how, me))
    return errors


def main():
    if not os.path.isdir("lib") or not os.path.isdir("include/vrev"):
        sys.exit("check-layers: run from the repository root")
    files = []
    for top in SCANNED:
        for root, _, names in os.walk(top):
            files += [os.path.join(root, n) for n in names if n.endswith((".c", ".h"))]
    errors, used = [], set()
    for path in sorted(files):
        if path.startswith("include/vrev/") and folder_of(path) == "include":
            errors.append("%s: a public header with no owner: add it to PUBLIC_OWNER in "
                          "scripts/check-layers.py" % path)
            continue
        if folder_of(path) not in MAY_INCLUDE:
            errors.append("%s: folder %s has no rule in scripts/check-layers.py" %
                          (path, folder_of(path)))
            continue
        errors += check_file(path, used)
    for key in sorted(set(EXCEPTIONS) - used):
        errors.append("%s: the exception for \"%s\" matches nothing any more: delete it" % key)
    for e in errors:
        print("layers: " + e)
    if errors:
        print("layers: %d violation(s); the rules and exceptions are in scripts/check-layers.py "
              "(docs/layers.md)" % len(errors))
        return 1
    print("layers: %d files obey the include rules (%d named exceptions)" %
          (len(files), len(EXCEPTIONS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
