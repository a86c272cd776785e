# Issue 6, acceptance 1: on many random snapshot sets (times over 3 years, 1-3 hosts, random tags, time
# zones) and random keep policies, our `forget --dry-run --json` keeps and removes exactly the snapshots
# restic 0.14's does.
source "$(dirname "$0")/lib.sh"
: "${REPO_TOOL:?set REPO_TOOL to the repo_tool binary}"
sets=${FORGET_SETS:-500}
repo=$WORK/repo
mkdir -p "$WORK/src"; printf 'x' > "$WORK/src/f"
"$STASH" -r "$repo" init -q
"$STASH" -r "$repo" backup -q --no-lock "$WORK/src"
decisions='[.[] | (.keep // [] | map(.id)), (.remove // [] | map(.id))] | flatten | length'
kept='[.[] | .keep // [] | .[].id] | sort'
for seed in $(seq 1 "$sets"); do
  "$REPO_TOOL" snapshots "$repo" "$seed" >/dev/null
  RANDOM=$seed
  flags=()
  for opt in last hourly daily weekly monthly yearly; do
    [ $((RANDOM % 3)) = 0 ] && flags+=("--keep-$opt" $((1 + RANDOM % 6)))
  done
  [ $((RANDOM % 5)) = 0 ] && flags+=(--keep-within "$((RANDOM % 2))y$((RANDOM % 6))m$((RANDOM % 20))d$((RANDOM % 30))h")
  [ $((RANDOM % 5)) = 0 ] && flags+=(--keep-tag "$( (echo db; echo web; echo daily,db) | sed -n "$((1 + RANDOM % 3))p")")
  # restic answers an empty policy with a notice and no JSON: always have at least one rule.
  [ ${#flags[@]} = 0 ] && flags+=(--keep-last $((1 + RANDOM % 5)))
  [ $((RANDOM % 6)) = 0 ] && flags+=(--group-by "$( (echo host; echo paths; echo host,paths,tags; echo tags) | sed -n "$((1 + RANDOM % 4))p")")
  theirs=$("$RESTIC" -r "$repo" forget --no-lock --dry-run --json "${flags[@]}" 2>/dev/null | jq -c "$kept")
  ours=$("$STASH" -r "$repo" forget --no-lock --dry-run --json "${flags[@]}" | jq -c "$kept")
  [ "$theirs" = "$ours" ] || fail "seed $seed, flags ${flags[*]}: restic keeps $theirs, we keep $ours"
  total=$("$STASH" -r "$repo" forget --no-lock --dry-run --json "${flags[@]}" | jq "$decisions")
  [ "$total" -gt 0 ] || fail "seed $seed: no decisions"
done
pass "$sets random snapshot sets: the same snapshots kept as restic keeps"

# And for real: forget removes the snapshot files restic would, and restic agrees afterwards.
"$REPO_TOOL" snapshots "$repo" 4242 >/dev/null
want=$("$RESTIC" -r "$repo" forget --no-lock --dry-run --json --keep-daily 3 --keep-monthly 2 | jq -c "$kept")
"$STASH" -r "$repo" forget -q --keep-daily 3 --keep-monthly 2
have=$("$RESTIC" -r "$repo" snapshots --no-lock --json | jq -c '[.[].id] | sort')
[ "$want" = "$have" ] || fail "after forget: restic lists $have, expected $want"
pass "forget removed exactly the snapshots restic would"
