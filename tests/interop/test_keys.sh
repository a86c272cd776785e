# Issue 6: `key list|add|remove|passwd` — keys we write open with restic, and removing one locks its
# password out of both tools.
source "$(dirname "$0")/lib.sh"
repo=$WORK/repo
printf 'second-password\n' > "$WORK/pw2"
printf 'third-password\n' > "$WORK/pw3"
"$STASH" -r "$repo" init -q
first=$("$STASH" -r "$repo" key list --json | jq -r '.[0].id')

"$STASH" -r "$repo" key add -q --new-password-file "$WORK/pw2"
[ "$("$STASH" -r "$repo" key list --json | jq length)" = 2 ] || fail "key add did not add a key"
[ "$("$STASH" -r "$repo" key list --json | jq -r '.[] | select(.current) | .id')" = "$first" ] || fail "current key not marked"
RESTIC_PASSWORD=second-password "$RESTIC" -r "$repo" snapshots --no-lock >/dev/null || fail "restic cannot open our added key"
[ "$("$RESTIC" -r "$repo" key list --no-lock --json | jq length)" = 2 ] || fail "restic does not list two keys"
pass "key add: restic opens the repository with the new password"

rc=0; "$STASH" -r "$repo" key remove "$first" 2>"$WORK/err" || rc=$?
[ "$rc" = 1 ] && grep -q "it is the one in use" "$WORK/err" || fail "removing the key in use was not refused"
RESTIC_PASSWORD=second-password "$STASH" -r "$repo" key remove -q "$first"
rc=0; "$RESTIC" -r "$repo" snapshots --no-lock >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the removed key still opens the repository for restic"
rc=0; "$STASH" -r "$repo" snapshots 2>"$WORK/err" || rc=$?
[ "$rc" = 1 ] && grep -q "wrong password" "$WORK/err" || fail "the removed key still opens the repository for us"
pass "key remove: the key in use is refused; a removed key no longer opens the repository"

RESTIC_PASSWORD=second-password "$STASH" -r "$repo" key passwd -q --new-password-file "$WORK/pw3"
RESTIC_PASSWORD=third-password "$RESTIC" -r "$repo" snapshots --no-lock >/dev/null || fail "restic cannot open after passwd"
rc=0; RESTIC_PASSWORD=second-password "$STASH" -r "$repo" snapshots >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "the old password still works after passwd"
[ "$(RESTIC_PASSWORD=third-password "$STASH" -r "$repo" key list --json | jq length)" = 1 ] || fail "passwd left more than one key"
pass "key passwd: only the new password opens the repository"
