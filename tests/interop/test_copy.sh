#!/usr/bin/env bash
# copy between repositories with different passwords and chunker parameters: from a restic-written
# repository into ours and back into a restic-made v1 one; restic checks both clean, every copy
# restores identically, and copies are recognized as copies (ours by restic's, restic's by ours).
source "$(dirname "$0")/lib.sh"

src=$WORK/src
mkdir -p "$src" "$WORK/state"
printf 'pw-restic' > "$WORK/pw-a"; printf 'pw-ours' > "$WORK/pw-b"; printf 'pw-back' > "$WORK/pw-c"
a=$WORK/restic-made b=$WORK/ours c=$WORK/back
RESTIC_PASSWORD_FILE=$WORK/pw-a "$RESTIC" -r "$a" init -q
cp -r /usr/include/linux "$src/include"
head -c 5000000 /dev/urandom > "$src/random.bin"
for i in 1 2 3; do
  seq "$i" 5 200000 > "$src/changing.txt"
  head -c 1000000 /dev/urandom >> "$src/random.bin"
  RESTIC_PASSWORD_FILE=$WORK/pw-a "$RESTIC" -r "$a" backup -q "$src" --tag "round$i" --time "2024-0$i-01 12:00:00"
  cp -a "$src" "$WORK/state/round$i"
done
"$STASH" -r "$b" -p "$WORK/pw-b" init -q --chunker fastcdc

# restores_identically REPO PWFILE TOOL: each snapshot (tagged roundN) equals state/roundN.
restores_identically() {
  local n=0 sid tag
  while read -r sid tag; do
    rm -rf "$WORK/out"
    if [ "$3" = restic ]; then RESTIC_PASSWORD_FILE=$2 "$RESTIC" -r "$1" restore "$sid" --target "$WORK/out" -q
    else "$STASH" -r "$1" -p "$2" restore "$sid" --target "$WORK/out" -q; fi
    same_tree "$WORK/state/$tag" "$WORK/out$src"
    n=$((n + 1))
  done < <("$STASH" -r "$1" -p "$2" snapshots --json | jq -r '.[] | "\(.id) \(.tags[0])"')
  [ "$n" = 3 ] || fail "$1 should hold 3 snapshots, found $n"
}
restic_check() {
  RESTIC_PASSWORD_FILE=$2 "$RESTIC" -r "$1" check --read-data >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; fail "restic check of $1"; }
}

# 1. restic's repository → ours (v2, FastCDC, other password and polynomial).
out=$("$STASH" -r "$b" -p "$WORK/pw-b" copy --from-repo "$a" --from-password-file "$WORK/pw-a" --json)
[ "$(jq -s 'map(select(.message_type == "summary"))[0].snapshots_copied' <<<"$out")" = 3 ] || fail "copy into ours: $out"
restic_check "$b" "$WORK/pw-b"
"$STASH" -r "$b" -p "$WORK/pw-b" check --read-data -q || fail "our check of the copy"
restores_identically "$b" "$WORK/pw-b" restic
originals=$("$STASH" -r "$b" -p "$WORK/pw-b" snapshots --json | jq -r '.[].original' | sort)
[ "$originals" = "$(RESTIC_PASSWORD_FILE=$WORK/pw-a "$RESTIC" -r "$a" snapshots --json | jq -r '.[].id' | sort)" ] ||
  fail "copies do not record their originals"
pass "restic → ours: restic check --read-data clean, 3 snapshots restore identically, originals recorded"

# Copying again copies nothing; a filter selects.
out=$("$STASH" -r "$b" -p "$WORK/pw-b" copy --from-repo "$a" --from-password-file "$WORK/pw-a" --json | jq -s 'map(select(.message_type == "summary"))[0]')
[ "$(jq '.snapshots_copied, .snapshots_skipped, .blobs_copied' <<<"$out" | tr '\n' ' ')" = "0 3 0 " ] || fail "second copy: $out"
pass "a second copy skips all 3 snapshots"

# 2. Ours → a v1 repository restic made (uncompressed blobs), third password.
RESTIC_PASSWORD_FILE=$WORK/pw-c "$RESTIC" -r "$c" init -q --repository-version 1
"$STASH" -r "$c" -p "$WORK/pw-c" copy -q --from-repo "$b" --from-password-file "$WORK/pw-b" --tag round2
"$STASH" -r "$c" -p "$WORK/pw-c" copy -q --from-repo "$b" --from-password-file "$WORK/pw-b"
restic_check "$c" "$WORK/pw-c"
restores_identically "$c" "$WORK/pw-c" restic
restores_identically "$c" "$WORK/pw-c" stash
pass "ours → restic v1: restic check --read-data clean, 3 snapshots restore identically with both tools"

# 3. restic recognizes our copies: copying the originals again adds nothing.
log=$(RESTIC_PASSWORD_FILE=$WORK/pw-c RESTIC_FROM_PASSWORD_FILE=$WORK/pw-a "$RESTIC" -r "$c" copy --from-repo "$a" 2>&1)
[ "$(grep -c 'skipping source snapshot' <<<"$log")" = 3 ] || { echo "$log" >&2; fail "restic does not see our copies as copies"; }
[ "$("$STASH" -r "$c" -p "$WORK/pw-c" snapshots --json | jq length)" = 3 ] || fail "restic's copy added snapshots"
pass "restic's copy skips the 3 snapshots we copied"

# 4. A wrong source password is named as such.
if out=$("$STASH" -r "$b" -p "$WORK/pw-b" copy --from-repo "$a" --from-password-file "$WORK/pw-c" 2>&1); then fail "copy with a wrong source password"; fi
grep -q "wrong password.*$a" <<<"$out" || fail "unclear message for a wrong source password: $out"
pass "wrong source password: ${out#Fatal: }"
