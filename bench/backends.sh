#!/usr/bin/env bash
# Backend throughput: backup and restore of random.bin (2 GB, incompressible) through the network
# drivers to servers on 127.0.0.1 — restic and stash side by side on `rclone serve restic` (REST),
# stash alone on s3rver (S3; restic 0.14 cannot write there) and Azurite (Azure; restic 0.14 cannot
# be pointed at it). Prints medians (seconds, MB/s) and the REST ratios (restic / stash); writes
# build/bench-backends.json. Each server stores on the same disk, so figures include its writes.
#
# Usage: bench/backends.sh [-n RUNS] [-d DATASETS_DIR] [-w WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=3 data=/tmp/stash-datasets work=$root/build/bench-backends
while getopts "n:d:w:" o; do
  case $o in n) runs=$OPTARG ;; d) data=$OPTARG ;; w) work=$OPTARG ;; *) exit 2 ;; esac
done
source scripts/deps.sh
need_packages "${BUILD_PACKAGES[@]}" restic rclone time jq openssl
need_npm_tools
bash "$root/../shared/bench/datasets.sh" "$data" random > /dev/null
cmake --preset agent > /dev/null && cmake --build --preset agent > /dev/null
stash=$root/build/agent/apps/agent/stash
restic=$(command -v restic)
npm_bin=$root/.tools/npm/node_modules/.bin
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/cache
rm -rf "$work" && mkdir -p "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

rclone serve restic "$work/rest" --addr 127.0.0.1:0 > "$work/rclone.log" 2>&1 &
pids+=($!)
azport=$(( 20000 + RANDOM % 20000 )) s3port=$(( 40001 + RANDOM % 20000 ))
NODE_OPTIONS=--openssl-legacy-provider "$npm_bin/s3rver" -d "$work/s3" -a 127.0.0.1 -p "$s3port" --silent > "$work/s3rver.log" 2>&1 &
pids+=($!)
"$npm_bin/azurite-blob" --silent --location "$work/az" --blobHost 127.0.0.1 --blobPort "$azport" --skipApiVersionCheck > "$work/azurite.log" 2>&1 &
pids+=($!)
sleep 3
rest_url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/rclone.log" | head -1)
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
export AZURE_ACCOUNT_NAME=devstoreaccount1 AZURE_ENDPOINT="http://127.0.0.1:$azport/devstoreaccount1"
export AZURE_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

measure() {  # measure NAME CMD...: appends "seconds rss_kib"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t.out" "$@" > /dev/null 2> "$work/err.out" || { cat "$work/err.out" >&2; echo "failed: $*" >&2; exit 1; }
  cat "$work/t.out" >> "$work/$name.times"
}
case_run() {  # case_run NAME TOOL REPO
  local name=$1 bin=$2 repo=$3
  "$bin" -r "$repo" init > /dev/null 2>&1
  measure "$name.backup" "$bin" -r "$repo" backup -q "$data/random.bin"
  rm -rf "$work/restore"
  measure "$name.restore" "$bin" -r "$repo" restore -q latest --target "$work/restore"
  cmp -s "$data/random.bin" "$work/restore$data/random.bin" || { echo "$name: restore differs" >&2; exit 1; }
  rm -rf "$work/restore"
}
for i in $(seq 1 "$runs"); do
  order="restic stash"; [ $((i % 2)) = 0 ] && order="stash restic"
  for tool in $order; do case_run "rest-$tool" "${!tool}" "rest:$rest_url/$tool-$i"; done
  case_run s3-stash "$stash" "s3:http://127.0.0.1:$s3port/bench/run-$i"
  case_run azure-stash "$stash" "azure:bench:/run-$i"
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bytes=$(stat -c %s "$data/random.bin")
json="{"
printf '%-22s %10s %10s %10s\n' case seconds MB/s "RSS MiB"
for c in rest-restic rest-stash s3-stash azure-stash; do
  for op in backup restore; do
    f=$work/$c.$op.times
    s=$(cut -d' ' -f1 "$f" | median); m=$(cut -d' ' -f2 "$f" | median)
    mbs=$(echo "scale=1; $bytes / 1000000 / $s" | bc)
    printf '%-22s %10s %10s %10s\n' "$c.$op" "$s" "$mbs" "$((${m%.*} / 1024))"
    json+="\"$c.$op\":{\"seconds\":$s,\"mb_per_s\":$mbs,\"rss_kib\":$m},"
  done
done
for op in backup restore; do
  r=$(echo "scale=2; $(cut -d' ' -f1 "$work/rest-restic.$op.times" | median) / $(cut -d' ' -f1 "$work/rest-stash.$op.times" | median)" | bc)
  echo "REST $op ratio (restic / stash): $r"
  json+="\"rest.$op.ratio\":$r,"
done
echo "${json%,}}" > "$root/build/bench-backends.json"
echo "written: build/bench-backends.json"
