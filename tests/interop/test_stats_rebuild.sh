#!/usr/bin/env bash
# stats and rebuild-index against restic 0.14: the same numbers on the same repositories; an index
# rebuilt from the packs (ours from restic's packs, restic's from ours) lets restic check --read-data
# and restore everything; damaged index files and packs are reported.
source "$(dirname "$0")/lib.sh"

src=$WORK/src ours=$WORK/ours theirs=$WORK/theirs
make_tree "$src"
"$STASH" -r "$ours" init -q
"$RESTIC" -r "$theirs" init -q --repository-version 1
for repo in "$ours" "$theirs"; do
  [ "$repo" = "$ours" ] && tool=$STASH || tool=$RESTIC
  "$tool" -r "$repo" backup -q "$src" --host one
  cp -r "$src/sub dir" "$src/copy of sub dir"  # a repeated subtree and a second hard link
  "$tool" -r "$repo" backup -q "$src" --host two
  rm -rf "$src/copy of sub dir"
done

# 1. stats: every mode and selection gives restic's numbers, on our repository and on restic's.
for repo in "$ours" "$theirs"; do
  latest=$("$RESTIC" -r "$repo" snapshots --json | jq -r 'sort_by(.time) | .[0].id')
  for sel in "" "latest" "$latest" "--host one"; do
    for mode in restore-size raw-data; do
      # shellcheck disable=SC2086 # $sel is a list of words
      a=$("$STASH" -r "$repo" stats --json --mode "$mode" $sel | jq -cS 'del(.total_uncompressed_size)')
      # shellcheck disable=SC2086
      b=$("$RESTIC" -r "$repo" stats --json --mode "$mode" $sel | jq -cS .)
      [ "$a" = "$b" ] || fail "stats --mode $mode $sel on $repo: ours $a, restic $b"
    done
  done
done
pass "stats restore-size and raw-data equal restic's on both repositories ($b)"

blobs() { "$RESTIC" -r "$1" list blobs --no-lock | sort; }
restic_check() {
  "$RESTIC" -r "$1" check --read-data >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; fail "restic check of $1 ($2)"; }
}

# 2. rebuild-index from nothing, on our repository and on restic's.
for repo in "$ours" "$theirs"; do
  before=$(blobs "$repo")
  rm "$repo/index/"*
  out=$("$STASH" -r "$repo" rebuild-index --json)
  [ "$(jq .packs_read <<<"$out")" -gt 0 ] || fail "rebuild-index read no pack: $out"
  [ "$(blobs "$repo")" = "$before" ] || fail "the rebuilt index of $repo lists other blobs"
  restic_check "$repo" "rebuilt by us"
  "$STASH" -r "$repo" check --read-data -q || fail "our check after rebuild-index of $repo"
done
rm -rf "$WORK/out"
"$RESTIC" -r "$ours" restore latest --host one --target "$WORK/out" -q
same_tree "$src" "$WORK/out$src"
pass "rebuild-index from the packs alone: same blobs, restic check --read-data clean, restore identical"

# restic's rebuild-index of our packs, then our checks.
"$RESTIC" -r "$ours" rebuild-index --read-all-packs -q >/dev/null 2>&1 || fail "restic rebuild-index of our repository"
"$STASH" -r "$ours" check --read-data -q || fail "our check after restic's rebuild-index"
"$STASH" -r "$theirs" rebuild-index -q --read-all-packs || fail "rebuild-index --read-all-packs"
restic_check "$theirs" "after --read-all-packs"
pass "restic rebuilds our index and we check it; --read-all-packs rebuilds restic's"

# 3. Damage: an undecryptable index file and a truncated pack are reported (exit 3) and left out;
# the repository is valid afterwards (restic check finds the truncated pack's data missing).
"$STASH" -r "$ours" backup -q "$src/ünïcödé ✓" --host three  # a second index file
idx=$(ls "$ours/index" | head -1)
flip "$ours/index/$idx"
rc=0; out=$("$STASH" -r "$ours" rebuild-index 2>&1) || rc=$?
[ "$rc" = 3 ] || fail "rebuild-index with a damaged index file should exit 3, not $rc: $out"
grep -q "index.$idx" <<<"$out" || fail "the damaged index file is not named: $out"
restic_check "$ours" "after a damaged index file"
pass "a damaged index file is named and replaced: $(grep "$idx" <<<"$out" | head -1)"

pack=$(find "$ours/data" -type f -size +1M | head -1)
chmod u+w "$pack" && truncate -s 1000000 "$pack"
rc=0; out=$("$STASH" -r "$ours" rebuild-index 2>&1) || rc=$?
[ "$rc" = 3 ] || fail "rebuild-index with a truncated pack should exit 3, not $rc: $out"
grep -q "pack $(basename "$pack")" <<<"$out" || fail "the truncated pack is not named: $out"
"$RESTIC" -r "$ours" list blobs --no-lock >/dev/null || fail "restic cannot read the rebuilt index"
pass "a truncated pack is named and left out: $(grep "pack $(basename "$pack")" <<<"$out" | head -1)"
