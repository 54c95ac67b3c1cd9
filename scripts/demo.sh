#!/usr/bin/env bash
# The main job, on loopback: a local web service that nobody can reach directly, a vrev portal
# and a vrev bridge; a page is fetched from the portal's public port through the tunnel.
# Installs what is missing, builds, runs, prints what happened, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh --demo
make -s -j2 build/vrev

VREV=build/vrev
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port, seconds
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, end = int(sys.argv[1]), time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

web=$(free_port); tunnel=$(free_port); public=$(free_port)
id=$($VREV uuid)
mkdir -p "$work/site"
echo "Hello from the web service behind the bridge ($(hostname), $(date -u +%H:%M:%S) UTC)" \
    > "$work/site/index.html"

echo "== 1. a web service on 127.0.0.1:$web (the private side)"
python3 -m http.server "$web" --bind 127.0.0.1 --directory "$work/site" \
    > "$work/web.log" 2>&1 &
pids+=($!)
wait_port "$web" 10

echo "== 2. a portal: tunnel on 127.0.0.1:$tunnel, public listener on 127.0.0.1:$public"
echo "   $VREV portal --listen 127.0.0.1:$tunnel --public 127.0.0.1:$public=web --id <uuid>"
VREV_ID=$id $VREV portal --listen "127.0.0.1:$tunnel" --public "127.0.0.1:$public=web" \
    > "$work/portal.log" 2>&1 &
pids+=($!)
wait_port "$tunnel" 10

echo "== 3. a bridge: dials the portal, serves target 'web' from 127.0.0.1:$web only"
echo "   $VREV bridge --portal 127.0.0.1:$tunnel --to web=127.0.0.1:$web --id <uuid>"
start=$(date +%s.%N)
VREV_ID=$id $VREV bridge --portal "127.0.0.1:$tunnel" --to "web=127.0.0.1:$web" \
    > "$work/bridge.log" 2>&1 &
pids+=($!)

echo "== 4. fetching http://127.0.0.1:$public/ (the portal's public port)"
page=$(python3 - "$public" <<'PY'
import sys, time, urllib.request
url, end = "http://127.0.0.1:%s/" % sys.argv[1], time.time() + 10
while True:
    try:
        print(urllib.request.urlopen(url, timeout=2).read().decode().strip()); break
    except Exception as e:
        if time.time() > end:
            print("FAILED: %s" % e); sys.exit(1)
        time.sleep(0.05)
PY
) || { echo "$page"; echo "--- portal log"; cat "$work/portal.log";
       echo "--- bridge log"; cat "$work/bridge.log"; exit 1; }
elapsed=$(python3 -c "import time; print('%.0f' % ((time.time() - $start) * 1000))")
echo "   got: $page"
echo "   (first page $elapsed ms after the bridge started)"
echo "== 5. what the portal and the bridge said"
sed 's/^/   portal: /' "$work/portal.log"
sed 's/^/   bridge: /' "$work/bridge.log"
echo "== done: stopping the web service, the portal and the bridge"
