# Issue 6, acceptance 3: `check` finds each planted fault, exits non-zero and names the object; a clean
# repository (ours or restic's) checks clean.
source "$(dirname "$0")/lib.sh"
: "${REPO_TOOL:?set REPO_TOOL to the repo_tool binary}"
mkdir -p "$WORK/src"
head -c 6000000 /dev/urandom > "$WORK/src/big.bin"
seq 1 100000 > "$WORK/src/numbers.txt"
base=$WORK/base
"$STASH" -r "$base" init -q
"$STASH" -r "$base" backup -q "$WORK/src"

# expect_check CODE PATTERN [ARGS...]: runs check on $WORK/d and matches its output.
expect_check() {
  local code=$1 pattern=$2; shift 2
  local rc=0
  "$STASH" -r "$WORK/d" check "$@" >"$WORK/out" 2>&1 || rc=$?
  [ "$rc" = "$code" ] || { cat "$WORK/out" >&2; fail "check $* exited $rc, expected $code"; }
  grep -qE "$pattern" "$WORK/out" || { cat "$WORK/out" >&2; fail "check $*: output does not match /$pattern/"; }
  pass "check $*: $(grep -m1 -E "$pattern" "$WORK/out" | cut -c1-140)"
}
fresh() { rm -rf "$WORK/d"; cp -a "$base" "$WORK/d"; chmod -R u+w "$WORK/d"; }
# rewrite_index JQ: applies JQ to the (single) index file and stores the result in its place.
rewrite_index() {
  local old; old=$(ls "$WORK/d/index")
  "$STASH" -r "$WORK/d" cat index "$old" | jq -c "$1" > "$WORK/index.json"
  "$REPO_TOOL" put "$WORK/d" index "$WORK/index.json" >/dev/null
  rm -f "$WORK/d/index/$old"
}

fresh
expect_check 0 "no errors were found" --read-data
"$RESTIC" -r "$WORK/restic" init >/dev/null; "$RESTIC" -r "$WORK/restic" backup -q "$WORK/src"
"$STASH" -r "$WORK/restic" check --read-data >/dev/null || fail "our check of restic's repository"
pass "restic's repository checks clean with our check --read-data"

# The data pack with the most blobs: the gap test needs two. Which blobs share a pack depends on
# which worker stored them, so a pack of one large chunk alone is possible (7 data blobs, 2 packers).
pid=$("$STASH" -r "$base" cat index "$(ls "$base/index")" |
  jq -r '[.packs[] | select(any(.blobs[]; .type == "data"))] | max_by(.blobs | length) | select((.blobs | length) >= 2) | .id')
[ -n "$pid" ] || fail "no data pack with two blobs to plant faults in"

fresh; rm "$WORK/d/data/${pid:0:2}/$pid"
expect_check 1 "pack $pid: does not exist"

fresh; flip "$WORK/d/data/${pid:0:2}/$pid"
expect_check 0 "no errors were found"
expect_check 1 "pack $pid" --read-data
expect_check 1 "pack $pid" --read-data-subset 100%

fresh; rewrite_index "(.packs[] | select(.id == \"$pid\") | .blobs) |= (sort_by(.offset) | .[-1].length += 1000)"
expect_check 1 "pack $pid: unexpected file size"
fresh; rewrite_index "(.packs[] | select(.id == \"$pid\") | .blobs) |= (sort_by(.offset) | .[0].length += 1)"
expect_check 1 "pack $pid: index entries have gaps or overlap"

fresh; blob=$("$STASH" -r "$WORK/d" cat index "$(ls "$WORK/d/index")" | jq -r "[.packs[] | select(.id == \"$pid\") | .blobs[] | select(.type == \"data\")][0].id")
rewrite_index "(.packs[] | select(.id == \"$pid\") | .blobs) |= map(select(.id != \"$blob\"))"
expect_check 1 "tree [0-9a-f]{64}, node \"[^\"]+\": data blob $blob not found in index"

# A tree missing from the index is named with what leads to it: the snapshot for its root tree,
# the parent tree and node for the others (the walk loads trees a level at a time).
fresh; snap=$(ls "$WORK/d/snapshots"); root=$("$STASH" -r "$WORK/d" cat snapshot "$snap" | jq -r .tree)
rewrite_index "(.packs[].blobs) |= map(select(.id != \"$root\"))"
expect_check 1 "snapshot $snap: tree blob $root not found in index"
fresh; tree=$("$STASH" -r "$WORK/d" cat index "$(ls "$WORK/d/index")" | jq -r "[.packs[].blobs[] | select(.type == \"tree\" and .id != \"$root\")][0].id")
rewrite_index "(.packs[].blobs) |= map(select(.id != \"$tree\"))"
expect_check 1 "tree [0-9a-f]{64}, node \"[^\"]+\": tree blob $tree not found in index"

fresh; snap=$(ls "$WORK/d/snapshots"); flip "$WORK/d/snapshots/$snap"
expect_check 1 "snapshots/$snap"

fresh; expect_check 1 "expected N/M" --read-data-subset 3/2
