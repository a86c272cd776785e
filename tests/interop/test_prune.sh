#!/usr/bin/env bash
# prune against restic 0.14: the same plan on the same repository; after our forget --prune restic's
# check --read-data is clean and every kept snapshot restores identically; after restic's prune of a
# repository we wrote, our check and restore are clean.
source "$(dirname "$0")/lib.sh"

repo=$WORK/repo src=$WORK/src
mkdir -p "$src/text" "$WORK/state"
seq 1 100000 > "$src/text/base.txt"
"$STASH" -r "$repo" init -q
# 30 snapshots of a changing tree: each random file lives in 3 snapshots, text files change a little.
for i in $(seq 1 30); do
  head -c $((150000 + i * 7919)) /dev/urandom > "$src/f$i.bin"
  rm -f "$src/f$((i - 3)).bin"
  seq "$i" 3 60000 > "$src/text/step.txt"
  mkdir -p "$src/d$((i % 4))" && seq "$i" 7 30000 > "$src/d$((i % 4))/n$i.txt"
  "$STASH" -r "$repo" backup -q "$src" --time "$(date -u -d "2024-02-01 +$i days" '+%F %T')"
  cp -a "$src" "$WORK/state/$(date -u -d "2024-02-01 +$i days" '+%F')"
done
cp -a "$repo" "$WORK/repo-restic"

# kept_ids REPO: "ID DAY" per snapshot.
kept_ids() { "$STASH" -r "$1" snapshots --json | jq -r '.[] | "\(.id) \(.time[0:10])"'; }
# restores_identically REPO TOOL: every snapshot restored by TOOL equals the tree it was taken of.
restores_identically() {
  local n=0
  while read -r sid day; do
    rm -rf "$WORK/out"
    if [ "$2" = restic ]; then "$RESTIC" -r "$1" restore "$sid" --target "$WORK/out" -q
    else "$STASH" -r "$1" restore "$sid" --target "$WORK/out" -q; fi
    same_tree "$WORK/state/$day" "$WORK/out$src"
    n=$((n + 1))
  done < <(kept_ids "$1")
  [ "$n" -gt 0 ] || fail "no snapshots left in $1"
  echo "$n"
}

# 1. The plan: after the same forget, our dry run decides exactly as restic's.
cp -a "$repo" "$WORK/repo-plan"
"$STASH" -r "$WORK/repo-plan" forget -q --keep-last 4 --keep-weekly 2
ours=$("$STASH" -r "$WORK/repo-plan" prune -n --json)
theirs=$("$RESTIC" -r "$WORK/repo-plan" prune -n -v 2>&1)
restic_count() { # restic_count LABEL UNIT [NTH]: the number on restic's NTH line "LABEL N UNIT"
  printf '%s\n' "$theirs" | awk -v l="$1" -v u="$2" -v n="${3:-1}" 'index($0, l) == 1 && $0 ~ (" " u) { if (++c == n) { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; exit } } }'
}
check_equal() { [ "$2" = "$3" ] || fail "prune plan: $1: ours $2, restic $3"; }
check_equal "blobs used" "$(jq .blobs.used <<<"$ours")" "$(restic_count 'used:' blobs)"
check_equal "blobs unused" "$(jq .blobs.unused <<<"$ours")" "$(restic_count 'unused:' blobs)"
check_equal "blobs to repack" "$(jq .blobs.repack <<<"$ours")" "$(restic_count 'to repack:' blobs)"
check_equal "blobs removed by repack" "$(jq .blobs.repackrm <<<"$ours")" "$(restic_count 'this removes:' blobs)"
check_equal "blobs to delete" "$(jq .blobs.remove <<<"$ours")" "$(restic_count 'to delete:' blobs)"
check_equal "packs to keep" "$(jq .packs.keep <<<"$ours")" "$(restic_count 'to keep:' packs)"
check_equal "packs to repack" "$(jq .packs.repack <<<"$ours")" "$(restic_count 'to repack:' packs)"
check_equal "packs to delete" "$(jq .packs.remove <<<"$ours")" "$(restic_count 'to delete:' packs)"
[ "$(jq .packs.remove <<<"$ours")" -gt 0 ] && [ "$(jq .packs.repack <<<"$ours")" -gt 0 ] ||
  fail "the test repository should need both deleting and repacking: $ours"
pass "prune plan equals restic's ($(jq -c .packs <<<"$ours"))"

# 2. Our forget --prune, then restic reads everything.
before=$(du -sk "$repo" | cut -f1)
"$STASH" -r "$repo" forget -q --keep-last 4 --keep-weekly 2 --prune
after=$(du -sk "$repo" | cut -f1)
[ "$after" -lt "$before" ] || fail "prune freed nothing ($before KiB → $after KiB)"
"$RESTIC" -r "$repo" check --read-data >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; fail "restic check after our prune"; }
grep -q 'no errors were found' "$WORK/check.log" || fail "restic check did not report success"
"$STASH" -r "$repo" check --read-data -q || fail "our check after our prune"
n=$(restores_identically "$repo" restic)
pass "our forget --prune: $before KiB → $after KiB; restic check --read-data clean; $n snapshots restore identically with restic"
[ "$("$STASH" -r "$repo" prune -n --json | jq '.packs.repack + .packs.remove + .packs.unreferenced')" = 0 ] ||
  fail "a second prune still finds work"
ls "$repo/index" | wc -l | grep -qx 1 || fail "expected one index file after prune, found $(ls "$repo/index" | wc -l)"
"$RESTIC" -r "$repo" cat index "$(ls "$repo/index")" | jq -e '.supersedes | length > 0' >/dev/null ||
  fail "the new index does not list the files it supersedes"
pass "prune is idempotent and the new index lists what it supersedes"

# 3. Restic's prune of a repository we wrote; we read everything.
"$RESTIC" -r "$WORK/repo-restic" forget -q --keep-last 4 --keep-weekly 2 --prune >/dev/null 2>&1 || fail "restic forget --prune"
"$STASH" -r "$WORK/repo-restic" check --read-data -q || fail "our check after restic's prune"
n=$(restores_identically "$WORK/repo-restic" stash)
pass "restic's prune: our check --read-data clean, $n snapshots restore identically"

# 4. Locks: two backups at once both succeed; prune refuses to run beside them; a killed backup's
# lock is found stale and removed, and prune then runs.
mkfifo "$WORK/feed"
# A lock under its final name (a local write goes to "<id>-tmp-<hex>" first and is renamed once
# synced: a backup killed before that leaves no lock).
lock_written() { ls "$repo/locks" | grep -qE '^[0-9a-f]{64}$'; }
"$STASH" -r "$repo" backup -q --stdin --stdin-filename held.txt < "$WORK/feed" &  # holds its lock until fed
held=$!
exec 7>"$WORK/feed"
for _ in $(seq 1 200); do lock_written && break; sleep 0.05; done
lock_written || fail "the held backup took no lock"
"$STASH" -r "$repo" backup -q "$src" --tag beside || fail "a backup beside another backup failed"
if out=$("$STASH" -r "$repo" prune 2>&1); then fail "prune ran beside a backup"; fi
grep -q 'already locked' <<<"$out" || fail "prune's refusal does not say why: $out"
echo "fed through the fifo" >&7
exec 7>&-
wait "$held" || fail "the held backup failed"
[ "$("$STASH" -r "$repo" snapshots --json | jq 'map(select(.paths[0] == "/held.txt" or .tags == ["beside"])) | length')" = 2 ] ||
  fail "both concurrent backups should have saved a snapshot"
pass "two backups at once both succeed; prune refuses beside them: ${out#Fatal: }"

"$STASH" -r "$repo" backup -q --stdin --stdin-filename killed.txt < "$WORK/feed" &
killed=$!
exec 7>"$WORK/feed"
for _ in $(seq 1 200); do lock_written && break; sleep 0.05; done
lock_written || fail "the backup to be killed took no lock"
kill -9 "$killed"
wait "$killed" 2>/dev/null || true
exec 7>&-
if "$STASH" -r "$repo" prune -q 2>/dev/null; then fail "prune ignored a lock without unlock"; fi
"$STASH" -r "$repo" unlock | grep -q 'removed 1 locks' || fail "unlock did not remove the dead backup's lock"
"$STASH" -r "$repo" prune -q || fail "prune after unlock"
"$RESTIC" -r "$repo" check -q >/dev/null 2>&1 || fail "restic check after the locking dance"
pass "a killed backup's lock is stale, unlock removes it, prune runs"

# 5. An index that misses trees: prune names the problem and deletes nothing.
cp -a "$repo" "$WORK/repo-broken"
rm "$WORK/repo-broken/index/"*
packs_before=$(find "$WORK/repo-broken/data" -type f | wc -l)
if out=$("$STASH" -r "$WORK/repo-broken" prune 2>&1); then fail "prune ran with an empty index"; fi
grep -q 'not found in index.*prune will not run' <<<"$out" || fail "unclear message for a missing index: $out"
[ "$(find "$WORK/repo-broken/data" -type f | wc -l)" = "$packs_before" ] || fail "prune deleted packs despite the error"
pass "prune refuses an incomplete index: ${out##*$'\n'}"
