# Acceptance 5: a backup killed with SIGKILL midway leaves a repository restic checks clean, and the next
# backup succeeds.
source "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/src"
for i in 1 2 3 4 5 6; do head -c 40000000 /dev/urandom > "$WORK/src/f$i.bin"; done
cp -r /usr/include/linux "$WORK/src/"
"$STASH" -r "$WORK/repo" init -q
"$STASH" -r "$WORK/repo" backup -q "$WORK/src/linux"   # an earlier snapshot must survive

"$STASH" -r "$WORK/repo" backup -q "$WORK/src" & pid=$!
for _ in $(seq 1 200); do  # kill once this backup has completed packs (temp files do not count)
  [ "$(find "$WORK/repo/data" -type f ! -name '*-tmp-*' | wc -l)" -gt 3 ] && break
  sleep 0.02
done
kill -9 $pid; wait $pid 2>/dev/null || true
[ "$(ls "$WORK/repo/snapshots" | wc -l)" = 1 ] || fail "the killed backup wrote a snapshot"

removed=$("$STASH" -r "$WORK/repo" unlock --json | jq .removed)
[ "$removed" = 1 ] || fail "expected the dead process's lock to be removed as stale, removed $removed"
"$RESTIC" -r "$WORK/repo" check --read-data >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "restic check after SIGKILL"; }
pass "restic check --read-data is clean after a killed backup"
"$STASH" -r "$WORK/repo" check --read-data >"$WORK/ours.log" 2>&1 || { cat "$WORK/ours.log"; fail "our check after SIGKILL"; }
grep -q "not referenced in any index" "$WORK/ours.log" || fail "our check did not point out the killed backup's unreferenced packs"
pass "our check --read-data agrees, and points out the killed backup's unreferenced packs"

"$STASH" -r "$WORK/repo" backup -q "$WORK/src"
"$RESTIC" -r "$WORK/repo" check --read-data >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "restic check after the next backup"; }
"$STASH" -r "$WORK/repo" restore -q latest --target "$WORK/out"
same_tree "$WORK/src" "$WORK/out/$WORK/src"
pass "the next backup succeeds and restores identically"
