# Acceptance 1: restic checks, reads and restores what we write (v1 and v2), content and metadata.
source "$(dirname "$0")/lib.sh"
make_tree "$WORK/tree"
for v in 1 2; do
  repo=$WORK/repo-v$v
  "$STASH" -r "$repo" init --repository-version $v -q
  "$STASH" -r "$repo" backup -q "$WORK/tree" /usr/include
  "$RESTIC" -r "$repo" check --read-data >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "restic check --read-data on our v$v repository"; }
  grep -q "no errors were found" "$WORK/check.log" || fail "restic check did not report a clean v$v repository"
  "$RESTIC" -r "$repo" restore latest --target "$WORK/restored-v$v" >/dev/null
  same_tree "$WORK/tree" "$WORK/restored-v$v/$WORK/tree"
  diff -r --no-dereference /usr/include "$WORK/restored-v$v/usr/include" >/dev/null || fail "/usr/include restored by restic differs (v$v)"
  pass "restic check --read-data and restore of our v$v repository"
done
