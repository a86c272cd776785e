#!/usr/bin/env bash
# Load on the embedded API server: OBJECTS ConfigMaps created by WRITERS keep-alive connections
# while WATCHERS watch; then a paged list. Prints the client's JSON report plus the server's peak
# RSS, and writes build/embedded-load.json.
#   bench/embedded-load.sh [OBJECTS=10000] [WATCHERS=10] [WRITERS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${1:-10000} watchers=${2:-10} writers=${3:-4}
cmake --preset release >/dev/null
cmake --build --preset release --target stash_operator stash_bench_embedded_load >/dev/null
state=$(mktemp -d build/embedded-load.XXXXXX)
build/release/apps/operator/stash-operator --embedded --state-dir "$state" > "$state/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 1 100); do [ -f "$state/kubeconfig" ] && break; sleep 0.05; done
port=$(sed -n 's|.*server: http://127.0.0.1:\([0-9]*\).*|\1|p' "$state/kubeconfig")
report=$(build/release/bench/stash_bench_embedded_load 127.0.0.1 "$port" "$objects" "$watchers" "$writers")
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "$report" | jq --argjson rss "$rss" '. + {server_peak_rss_kib: $rss}' | tee build/embedded-load.json
