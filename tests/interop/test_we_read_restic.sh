# Acceptance 2: we restore what restic writes (v1 and v2) and list it as restic does; we open restic's
# key (scrypt, Poly1305-AES, AES-CTR) to the same master key and config.
source "$(dirname "$0")/lib.sh"
make_tree "$WORK/tree"
for v in 1 2; do
  repo=$WORK/repo-v$v
  "$RESTIC" -r "$repo" init --repository-version $v >/dev/null
  "$RESTIC" -r "$repo" backup -q "$WORK/tree" /usr/include
  "$STASH" -r "$repo" restore -q latest --target "$WORK/restored-v$v"
  same_tree "$WORK/tree" "$WORK/restored-v$v/$WORK/tree"
  diff -r --no-dereference /usr/include "$WORK/restored-v$v/usr/include" >/dev/null || fail "/usr/include differs after our restore (v$v)"
  pass "our restore of restic's v$v repository"

  diff <("$RESTIC" -r "$repo" cat masterkey --no-lock | jq -S .) <("$STASH" -r "$repo" cat masterkey | jq -S .) || fail "master key differs (v$v)"
  diff <("$RESTIC" -r "$repo" cat config --no-lock | jq -S .) <("$STASH" -r "$repo" cat config | jq -S .) || fail "config differs (v$v)"
  pass "master key and config opened as restic opens them (v$v)"

  fields='[.[] | {id, short_id, time, tree, paths, hostname, username, tags}]'
  diff <("$RESTIC" -r "$repo" snapshots --json --no-lock | jq -S "$fields") <("$STASH" -r "$repo" snapshots --json | jq -S "$fields") ||
    fail "snapshots --json differs (v$v)"
  diff <("$RESTIC" -r "$repo" ls latest --no-lock | tail -n +2) <("$STASH" -r "$repo" ls latest | tail -n +2) || fail "ls differs (v$v)"
  node='select(.struct_type == "node") | {name, type, path, uid, gid, size: (.size // 0), mode, mtime}'
  diff <("$RESTIC" -r "$repo" ls latest --json --no-lock | jq -c "$node") <("$STASH" -r "$repo" ls latest --json | jq -c "$node") ||
    fail "ls --json differs (v$v)"
  pass "snapshots --json and ls agree with restic (v$v)"
done
