#!/usr/bin/env bash
# Install what libvrev needs to build, test and fuzz, with apt-get, and only what is missing.
# Idempotent: a second run installs nothing. Works as root or through sudo.
#
#   scripts/install-deps.sh            build + test + fuzz dependencies and the V2Ray test peer
#   scripts/install-deps.sh --build    only what building the library and the CLI needs
#   scripts/install-deps.sh --demo     what `make demo` needs (the build, and python3)
#   scripts/install-deps.sh --bench    what bench/run.sh needs: the build, python3, the V2Ray
#                                      peer, iperf3, wrk, nginx (run by the benchmark on a
#                                      loopback port; Debian's own nginx service is not used)
#                                      and gnuplot-nox for the chart
set -euo pipefail

BUILD_PKGS=(gcc make pkg-config binutils libevent-dev libjansson-dev libmbedtls-dev libssl-dev
    libwslay-dev libnghttp2-dev)
# mandoc lints the man pages, systemd's systemd-analyze verifies the units (no running systemd
# needed), bash-completion runs the completion script in the CLI tests; haproxy and nginx are run
# by the e2e tests on loopback ports (PROXY protocol, a portal behind a front server); Debian's
# own services are not used. clang-format-14 checks the formatting (release 14: other releases
# format differently).
TEST_PKGS=(clang clang-format-14 libclang-rt-14-dev libcmocka-dev python3 python3-pytest v2ray openssl mandoc
    systemd bash-completion haproxy nginx)
BENCH_PKGS=(python3 v2ray iperf3 wrk nginx gnuplot-nox)

pkgs=("${BUILD_PKGS[@]}")
case "${1:-}" in
--build) ;;
--demo) pkgs+=(python3) ;;
--bench) pkgs+=("${BENCH_PKGS[@]}") ;;
*) pkgs+=("${TEST_PKGS[@]}") ;;
esac

say() { printf 'install-deps: %s\n' "$*"; }

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    say "this script needs a Debian or Ubuntu system (apt-get and dpkg-query were not found)."
    say "install these packages (or your system's equivalents) by hand: ${pkgs[*]}"
    exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#pkgs[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    say "missing packages: ${missing[*]}"
    say "run this script as root, or install sudo"
    exit 1
fi

say "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
say "done"
