#!/usr/bin/env bash
# The benchmark against V2Ray 4.34 (issue M5): installs the tools, builds vrev with both crypto
# backends, and runs bench/bench.py, which alternates vrev and V2Ray on 127.0.0.1 and writes
# bench/results/<date>.json and <date>.png.
#
#   bench/run.sh                 the full run (about 13 minutes on 2 cores)
#   bench/run.sh --quick         a smoke run of about 2 minutes
#   bench/run.sh [bench.py options]   e.g. --only bulk --protos vmess-aes --reps 5
#   bench/run.sh --wait-idle 900      on a shared machine: first wait for it to be idle
#
# The results record the load average and the CPU other processes took during each part;
# a run that says BUSY MACHINE should be repeated.
#
# VREV_NO_DEPS=1 skips the package check. Not part of `make check`.
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do # options that measure nothing need no build
    case "$arg" in
    -h | --help | --report* | --markdown*) exec python3 bench/bench.py "$@" ;;
    esac
done

if [ "${VREV_NO_DEPS:-}" != 1 ]; then
    bash scripts/install-deps.sh --bench
fi

jobs=$(nproc 2>/dev/null || echo 2)
for crypto in openssl mbedtls; do
    echo "bench: building vrev ($crypto) in build/bench/$crypto"
    make --no-print-directory -s -j"$jobs" BUILD="build/bench/$crypto" CRYPTO="$crypto" \
        all "build/bench/$crypto/bench/aead_bench"
done

# wrk -c1000 and the 1000 held connections need more descriptors than a default shell has:
# raise the soft limit to the hard one for this script and everything it starts.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || echo "bench: could not raise the open-file limit (ulimit -n $(ulimit -n))"

# Debian's python3: the driver uses the standard library only.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" bench/bench.py --vrev-openssl build/bench/openssl/vrev \
    --vrev-mbedtls build/bench/mbedtls/vrev \
    --micro-openssl build/bench/openssl/bench/aead_bench \
    --micro-mbedtls build/bench/mbedtls/bench/aead_bench "$@"
