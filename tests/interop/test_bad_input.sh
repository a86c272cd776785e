# Acceptance 5: bad input gets a clear message and the documented exit code (0 ok, 1 fatal, 3 partial).
source "$(dirname "$0")/lib.sh"

# expect CODE PATTERN CMD...: runs CMD, checks its exit code and that stderr matches PATTERN.
expect() {
  local code=$1 pattern=$2; shift 2
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$code" ] || { cat "$WORK/err" >&2; fail "'$*' exited $rc, expected $code"; }
  grep -qE "$pattern" "$WORK/err" || { cat "$WORK/err" >&2; fail "'$*': message does not match /$pattern/"; }
  pass "$(head -c 150 "$WORK/err" | tr '\n' ' ')"
}


mkdir -p "$WORK/src"
head -c 3000000 /dev/urandom > "$WORK/src/data.bin"
printf 'small\n' > "$WORK/src/small.txt"
repo=$WORK/repo
"$STASH" -r "$repo" init -q
"$STASH" -r "$repo" backup -q "$WORK/src"

expect 1 "wrong password" env RESTIC_PASSWORD=wrong "$STASH" -r "$repo" snapshots
expect 1 "$WORK/missing.*does not exist" "$STASH" -r "$WORK/missing" snapshots
expect 1 "already exists" "$STASH" -r "$repo" init
expect 1 "repository-version must be 1 or 2" "$STASH" -r "$WORK/v3" init --repository-version 3
expect 1 "no repository given" "$STASH" snapshots
expect 1 "snapshot \"deadbeef\" not found" "$STASH" -r "$repo" restore deadbeef --target "$WORK/t0"

# Damaged files: a copy of the repository per case; each error names the object at fault.
damaged() { rm -rf "$WORK/d"; cp -a "$repo" "$WORK/d"; }
damaged
pack=$(find "$WORK/d/data" -type f -size +1M | head -1); pid=$(basename "$pack")
flip "$pack"
expect 1 "pack $pid" "$STASH" -r "$WORK/d" restore latest --target "$WORK/t1"
damaged
pack=$WORK/d/data/${pid:0:2}/$pid
chmod u+w "$pack"; truncate -s 1000 "$pack"
expect 1 "$pid|shorter than expected" "$STASH" -r "$WORK/d" restore latest --target "$WORK/t2"
damaged
index=$(ls "$WORK/d/index" | head -1); flip "$WORK/d/index/$index"
expect 1 "index/$index" "$STASH" -r "$WORK/d" restore latest --target "$WORK/t3"
damaged
snap=$(ls "$WORK/d/snapshots" | head -1); flip "$WORK/d/snapshots/$snap"
expect 1 "snapshots/$snap" "$STASH" -r "$WORK/d" snapshots

# Inputs and targets the user cannot access: run as an unprivileged user where we are root.
if is_root; then
  as_user() { setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp "$@"; }
  chown -R nobody:nogroup "$WORK/src"
else
  as_user() { "$@"; }
fi
urepo=$WORK/user-repo; mkdir -p "$urepo" "$WORK/locked-target"; chmod 777 "$urepo"
as_user "$STASH" -r "$urepo/r" init -q
chmod 000 "$WORK/src/small.txt"
expect 3 "$WORK/src/small.txt.*[Pp]ermission denied" as_user "$STASH" -r "$urepo/r" backup "$WORK/src"
chmod 644 "$WORK/src/small.txt"
as_user "$STASH" -r "$urepo/r" ls latest | grep -q "data.bin" || fail "the partial snapshot lacks the readable file"
chmod 555 "$WORK/locked-target"
expect 1 "locked-target.*(not writable|Permission denied)" as_user "$STASH" -r "$urepo/r" restore latest --target "$WORK/locked-target"
