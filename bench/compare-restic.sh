#!/usr/bin/env bash
# Side-by-side macro benchmark: restic 0.14 and stash on the shared data sets, same machine, same run.
# For each run: init → initial backup of linux → unchanged re-backup → backup of linux-edit with the
# first snapshot as parent → restore of the first snapshot. With the prune case, both tools prune
# copies of one repository holding 30 snapshots (linux and linux-edit alternately, each with 8 MiB
# of fresh random data) after forget --keep-last 3. Prints medians of wall time and peak RSS and the
# ratios (restic / stash), and writes build/compare-restic.json.
#
# Usage: bench/compare-restic.sh [-n RUNS] [-d DATASETS_DIR] [-w WORK_DIR] [-c CASES] [-r]
#   RUNS default 3; DATASETS_DIR default /tmp/stash-datasets (prepared by shared/bench/datasets.sh);
#   WORK_DIR default build/bench-work (keep it off a slow /tmp); CASES: comma list of
#   initial,unchanged,edit,restore,restore-mem,random,prune,cold (default all but random, prune and
#   cold); -r only reports the times already collected in WORK_DIR. restore-mem restores into a tmpfs
#   (/dev/shm), where the file system costs little and the tools' own work shows; restore goes to the
#   disk. cold is the initial backup of linux with the page cache dropped first (needs root), so the
#   disk's reads are part of it, as on a server whose data was not read lately.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=3 data=/tmp/stash-datasets work=$root/build/bench-work cases=initial,unchanged,edit,restore,restore-mem report_only=0
while getopts "n:d:w:c:r" o; do
  case $o in n) runs=$OPTARG ;; d) data=$OPTARG ;; w) work=$OPTARG ;; c) cases=$OPTARG ;; r) report_only=1 ;; *) exit 2 ;; esac
done
collect() {
  source scripts/deps.sh
  need_packages "${BUILD_PACKAGES[@]}" restic time jq linux-source-6.1 openssl vmtouch
  shared=$root/../shared/bench/datasets.sh
  want() { [[ ",$cases," == *",$1,"* ]]; }
  want random && bash "$shared" "$data" random >/dev/null
  bash "$shared" "$data" linux >/dev/null
  want edit || want prune && bash "$shared" "$data" edit >/dev/null

  cmake --preset agent >/dev/null
  cmake --build --preset agent >/dev/null
  stash=$root/build/agent/apps/agent/stash
  restic=$(command -v restic)
  export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/cache
  mkdir -p "$work"

  # This machine is a VM whose host takes back the memory the guest frees and backs it again on its
  # first touch, at ~10 us a page: a restore writing 1.3 GB into pages the host had taken back paid
  # up to a second for it (ours by hand: 2.27-2.76 s, 1.64-1.79 s right after 2.5 GiB was filled and
  # freed). So before each measured command 3 GiB (at most half the memory available) is filled and
  # freed (dd's buffer), and the memory either tool touches first (its heap, the page cache it
  # writes) is backed already, as on a machine that owns its memory.
  local back_mib=$(awk '/MemAvailable/ { m = int($2 / 2048); print (m < 3072 ? m : 3072) }' /proc/meminfo)
  back_memory() { dd if=/dev/zero of=/dev/null bs="${back_mib}M" count=1 iflag=fullblock status=none || true; }
  # measure NAME CMD...: appends "seconds rss_kib" of CMD to $work/NAME.times
  measure() {
    local name=$1; shift
    back_memory
    /usr/bin/time -f "%e %M" -o "$work/t.out" "$@" >/dev/null 2>"$work/err.out" || { cat "$work/err.out" >&2; echo "failed: $*" >&2; exit 1; }
    cat "$work/t.out" >> "$work/$name.times"
  }
  # ext4 without a journal (this machine's disk) will not reuse an inode freed less than 60 s ago
  # (360 s while its inode table block is dirty; fs/ext4/ialloc.c, recently_deleted) and checks every
  # such inode on each allocation: creating files soon after a large delete is many times slower,
  # for both tools, and new allocations in a table block make its deleted inodes wait the 360 s.
  # So restored trees stay until the end (then the restores measured restic 6.7–8.2 s, stash
  # 2.9–4.2 s; deleting them before a 61 s settle gave 3.1–33.9 s), the tmpfs restore goes first,
  # and deleted repositories (few inodes) settle after a sync.
  settle() { sync; sleep 61; }
  # A run deletes the trees it restored at its end and notes when; the next run waits until 361 s
  # have passed, since its own restores dirty those inode tables (restic's first disk restore of
  # runs started 4-6 minutes after such a delete: 12.0-13.4 s, against 5.6-5.8 s in their later runs).
  inodes_settled() {
    if [ -f "$work/deleted-at" ]; then
      local left=$(( $(cat "$work/deleted-at") + 361 - $(date +%s) ))
      if [ "$left" -gt 0 ]; then sync; sleep "$left"; fi
      rm -f "$work/deleted-at"
    fi
  }
  # This machine's kernel also runs a DAMON "pageout" scheme (/sys/kernel/mm/damon/admin: physical
  # pages idle for 60 s or more are reclaimed, up to 128 MiB a second), so after a settle a data set
  # is partly back on disk: our initial backup of linux took 2.83-3.04 s after 61 s idle against
  # 2.44-2.55 s back to back, and 2.29-2.34 s after 61 s idle and this warm-up. Each tool starts
  # with its inputs in the page cache: the cases measure the tools, not the disk's reads.
  warm() { local p; for p; do if [ -e "$p" ]; then find "$p" -type f -print0 | xargs -0 cat > /dev/null; fi; done; }
  snap_of() { "$restic" -r "$1" snapshots --json --no-lock | jq -r ".[$2].id"; }

  rm -f "$work"/*.times "$work"/*.repo_bytes
  if compgen -G "$work/restore-*" > /dev/null; then rm -rf "$work"/restore-*; date +%s > "$work/deleted-at"; fi  # left by an interrupted run
  inodes_settled
  if want prune; then  # the repository both tools prune (copies of it), written once
    base=$work/prune-base
    rm -rf "$base" "$work/churn" && mkdir -p "$work/churn"
    "$stash" -r "$base" init -q
    for i in $(seq 1 30); do
      rm -f "$work/churn/"* && head -c 8388608 /dev/urandom > "$work/churn/$i.bin"
      tree=$data/linux; [ $((i % 2)) = 0 ] && tree=$data/linux-edit
      "$stash" -r "$base" backup -q --host bench --time "$(date -u -d "2024-01-01 +$i days" '+%F %T')" "$tree" "$work/churn"
    done
    "$stash" -r "$base" forget -q --keep-last 3 --group-by host
  fi
  for i in $(seq 1 "$runs"); do
    order="restic stash"; [ $((i % 2)) = 0 ] && order="stash restic"   # neither tool always goes first
    for tool in $order; do
      bin=${!tool}
      repo=$work/repo-$tool; rm -rf "$repo" "$work/cache"
      "$bin" -r "$repo" init >/dev/null 2>&1
      if want initial || want unchanged || want edit || want restore || want restore-mem; then
        warm "$data/linux" "$data/linux-edit"
        measure "$tool.initial" "$bin" -r "$repo" backup -q "$data/linux"
        if [ "$tool" = restic ]; then first=$(snap_of "$repo" 0); else first=$("$stash" -r "$repo" snapshots --json | jq -r '.[0].id'); fi
        want unchanged && measure "$tool.unchanged" "$bin" -r "$repo" backup -q "$data/linux"
        want edit && measure "$tool.edit" "$bin" -r "$repo" backup -q --parent "$first" "$data/linux-edit"
        # Each restore after a sync: write-back of the previous case's files would compete for the CPUs.
        # And with the repository read into the page cache: DAMON judges idleness by coarse regions,
        # so packs written seconds before were partly paged out (our tmpfs restore took 4.4-5.0 s
        # here against 2.8-3.0 s by hand; 3.5 s by hand after 61 s idle).
        if want restore-mem; then  # tmpfs has no such rule
          mem=/dev/shm/stash-bench-restore; rm -rf "$mem"; sync; warm "$repo"
          measure "$tool.restore-mem" "$bin" -r "$repo" restore -q "$first" --target "$mem"
          rm -rf "$mem"
        fi
        if want restore; then
          sync; warm "$repo"; measure "$tool.restore" "$bin" -r "$repo" restore -q "$first" --target "$work/restore-$tool-$i"
          # The restored tree stays (above), but out of the page cache: on this machine (a VM whose
          # host backs guest memory on first touch) each GiB more held in the cache made the next
          # tmpfs restore slower (ours by hand: 1.6 s, 4.0 s with 6 GiB more cached, 1.6 s again
          # once evicted; in a run keeping them, both tools' restores slowed from run to run:
          # ours 1.67, 2.08, 3.03 s, restic's 5.10, 5.90, 6.27 s).
          sync; vmtouch -eq "$work/restore-$tool-$i"
        fi
        du -sb "$repo" | cut -f1 >> "$work/$tool.repo_bytes"
      fi
      if want random; then
        rm -rf "$repo"; "$bin" -r "$repo" init >/dev/null 2>&1
        # After a sync, as the restores: the disk restore just before leaves 1.3 GB of small files
        # dirty, and their write-back then ran during the backup (ours by hand in this sequence:
        # 8.2-9.8 s, 5.3-8.2 s system time; with the sync 6.8-7.0 s, 4.2-4.4 s).
        sync; warm "$data/random.bin"
        measure "$tool.random" "$bin" -r "$repo" backup -q "$data/random.bin"
        if [ "$tool" = stash ]; then  # the disk's own sequential write speed with fsync, same bytes
          rm -rf "$repo" && settle && warm "$data/random.bin"
          measure dd dd if="$data/random.bin" of="$work/dd.out" bs=16M conv=fsync status=none
          rm -f "$work/dd.out"
        fi
      fi
      if want cold; then
        rm -rf "$repo"; "$bin" -r "$repo" init >/dev/null 2>&1
        sync; echo 3 > /proc/sys/vm/drop_caches
        measure "$tool.cold" "$bin" -r "$repo" backup -q "$data/linux"
      fi
      if want prune; then
        rm -rf "$repo" && cp -a "$base" "$repo" && settle
        measure "$tool.prune" "$bin" -r "$repo" prune
      fi
      rm -rf "$repo"
      settle
    done
  done
  rm -rf "$work"/restore-*; date +%s > "$work/deleted-at"
}

[ $report_only = 1 ] || collect

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json="{\"runs\":$runs,\"machine\":\"$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"cases\":{"
printf '\n%-12s %10s %10s %8s   %12s %12s %8s\n' case "restic s" "stash s" speedup "restic RSS" "stash RSS" "RSS"
sep=""
for c in initial unchanged edit restore restore-mem random prune cold; do
  [ -f "$work/restic.$c.times" ] || continue
  rt=$(cut -d' ' -f1 "$work/restic.$c.times" | median); st=$(cut -d' ' -f1 "$work/stash.$c.times" | median)
  rm=$(cut -d' ' -f2 "$work/restic.$c.times" | median); sm=$(cut -d' ' -f2 "$work/stash.$c.times" | median)
  printf '%-12s %10.2f %10.2f %7.2fx   %9.0f MiB %9.0f MiB %7.2fx\n' "$c" "$rt" "$st" "$(awk -v a="$rt" -v b="$st" 'BEGIN{print a/b}')" \
    "$(awk -v a="$rm" 'BEGIN{print a/1024}')" "$(awk -v a="$sm" 'BEGIN{print a/1024}')" "$(awk -v a="$sm" -v b="$rm" 'BEGIN{print a/b}')"
  json+="$sep\"$c\":{\"restic_s\":$rt,\"stash_s\":$st,\"speedup\":$(awk -v a="$rt" -v b="$st" 'BEGIN{print a/b}'),\"restic_rss_kib\":$rm,\"stash_rss_kib\":$sm}"
  sep=","
done
json+="}"
if [ -f "$work/dd.times" ] && [ -f "$work/stash.random.times" ]; then
  dt=$(cut -d' ' -f1 "$work/dd.times" | median); st=$(cut -d' ' -f1 "$work/stash.random.times" | median)
  size=$(stat -c %s "$data/random.bin")
  printf '\nrandom.bin: dd with fsync %.0f MB/s, stash backup %.0f MB/s (%.0f%% of dd)\n' "$(awk -v n="$size" -v t="$dt" 'BEGIN{print n/t/1e6}')" \
    "$(awk -v n="$size" -v t="$st" 'BEGIN{print n/t/1e6}')" "$(awk -v a="$dt" -v b="$st" 'BEGIN{print 100*a/b}')"
  json+=",\"dd_s\":$dt"
fi
if [ -f "$work/restic.repo_bytes" ]; then
  rb=$(median < "$work/restic.repo_bytes"); sb=$(median < "$work/stash.repo_bytes")
  printf '\nrepository size after all cases: restic %.1f MiB, stash %.1f MiB (%.3fx)\n' "$(awk -v a="$rb" 'BEGIN{print a/1048576}')" \
    "$(awk -v a="$sb" 'BEGIN{print a/1048576}')" "$(awk -v a="$sb" -v b="$rb" 'BEGIN{print a/b}')"
  json+=",\"repo_bytes\":{\"restic\":$rb,\"stash\":$sb}"
fi
json+="}"
echo "$json" | jq . > "$root/build/compare-restic.json"
echo "written: build/compare-restic.json"
