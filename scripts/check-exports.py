#!/usr/bin/env python3
"""The exported-symbol check (`make exports`, part of `make check`) and its update
(`make symbols`).

  check-exports.py LIB LIST          LIB's exports must be LIST's names, each under VERSION
  check-exports.py --write LIB LIST  rewrite LIST from LIB (when an API change is intended)

The shared library exports the public API only: names vrev_[a-z0-9]..., each bound to the
version node of lib/libvrev.map (VERSION below), nothing else. LIST (lib/libvrev.symbols) is
the committed list of those names, one a line, sorted: a function added to or gone from the
public API shows up as a diff here, in review, instead of silently (jansson keeps its exports
the same way). Stdlib only; reads `objdump -T`.
"""
import re
import subprocess
import sys

VERSION = "VREV_1.0"
PUBLIC = re.compile(r"^vrev_[a-z0-9]")
HEADER = """\
# The symbols libvrev.so exports (version node %s, lib/libvrev.map), one a line, sorted.
# `make exports` (part of make check) fails when the library's exports differ from this list.
# When a change to the public API is intended, run `make symbols` and commit this file with it.
""" % VERSION


def exports(lib):
    """{name: version} of the defined dynamic symbols of lib (the version node's own
    absolute symbol left out)."""
    out = subprocess.run(["objdump", "-T", lib], check=True, capture_output=True,
                         text=True).stdout
    found = {}
    for line in out.splitlines():
        # 0000000000012b70 g    DF .text  00000000000001a3  VREV_1.0    vrev_control_encode
        # (no version column for a symbol the map does not version)
        m = re.match(r"^[0-9a-f]+ .{7} (\S+)\s+[0-9a-f]+\s+(?:(\S+)\s+)?(\S+)$", line)
        if not m:
            continue
        section, version, name = m.groups()
        version = version or "(none)"
        if section == "*UND*" or (section == "*ABS*" and name == version):
            continue
        found[name] = version
    return found


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return {l.strip() for l in f if l.strip() and not l.startswith("#")}


def main(argv):
    write = argv[:1] == ["--write"]
    args = argv[1:] if write else argv
    if len(args) != 2:
        sys.exit(__doc__)
    lib, listed_path = args
    found = exports(lib)
    if not found:
        sys.exit("exports: no dynamic symbols read from %s (objdump -T)" % lib)
    errors = []
    for name, version in sorted(found.items()):
        if not PUBLIC.match(name):
            errors.append("exported but not public (only vrev_* may be): %s" % name)
        elif version != VERSION:
            errors.append("%s is under version %r, not %s (lib/libvrev.map)" %
                          (name, version, VERSION))
    if write:
        if errors:
            print("\n".join("exports: " + e for e in errors))
            return 1
        with open(listed_path, "w", encoding="utf-8") as f:
            f.write(HEADER + "".join(n + "\n" for n in sorted(found)))
        print("symbols: %d exports written to %s" % (len(found), listed_path))
        return 0
    listed = read_list(listed_path)
    added, removed = sorted(set(found) - listed), sorted(listed - set(found))
    for name in added:
        errors.append("added (exported, not in %s): %s" % (listed_path, name))
    for name in removed:
        errors.append("removed (in %s, no longer exported): %s" % (listed_path, name))
    if errors:
        print("\n".join("exports: " + e for e in errors))
        if added or removed:
            print("exports: %s differs from %s. If the change to the public API is intended, "
                  "run `make symbols` and commit %s with it (a removed or changed function "
                  "breaks the ABI: that needs a new SONAME and version node)." %
                  (lib, listed_path, listed_path))
        return 1
    print("exports: %d symbols, all public vrev_* under %s, as listed in %s" %
          (len(found), VERSION, listed_path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
