#!/usr/bin/env bash
# The main job, end to end: build the agent, back up a directory into a new restic-format repository,
# list the snapshot, restore it into a temporary directory and verify it byte for byte.
# Usage: scripts/quickstart.sh [PATH]   (default /usr/include)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
need_packages "${BUILD_PACKAGES[@]}"

src=$(realpath "${1:-/usr/include}")
[ -d "$src" ] || [ -f "$src" ] || { echo "no such file or directory: $src" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "   (%.2f s)\n", b - a }'; }

step "building the agent (build/agent/apps/agent/stash)"
t=$(now)
cmake --preset agent >/dev/null
cmake --build --preset agent
took "$t"
stash=$PWD/build/agent/apps/agent/stash

work=$(mktemp -d /tmp/stash-quickstart.XXXXXX)
export RESTIC_PASSWORD="quickstart-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
repo=$work/repo

step "creating a repository at $repo"
"$stash" -r "$repo" init

step "backing up $src ($(du -sh "$src" 2>/dev/null | cut -f1))"
t=$(now); "$stash" -r "$repo" backup "$src"; took "$t"

step "backing it up again (unchanged files are not read)"
t=$(now); "$stash" -r "$repo" backup "$src"; took "$t"

step "snapshots"
"$stash" -r "$repo" snapshots

step "restoring the latest snapshot into $work/restore"
t=$(now); "$stash" -r "$repo" restore latest --target "$work/restore"; took "$t"

step "verifying every file byte for byte"
t=$(now)
files=0
while IFS= read -r -d '' f; do
  cmp -s "$src/$f" "$work/restore/$src/$f" || { echo "MISMATCH: $src/$f" >&2; exit 1; }
  files=$((files + 1))
done < <(cd "$src" && find . -type f -print0)
diff <(cd "$src" && find . -printf '%P %y %m %l\n' | LC_ALL=C sort) \
     <(cd "$work/restore/$src" && find . -printf '%P %y %m %l\n' | LC_ALL=C sort) >/dev/null ||
  { echo "MISMATCH: file names, types, modes or link targets differ" >&2; exit 1; }
echo "   all $files files identical; names, types, modes and symlinks match"
took "$t"

echo
echo "repository kept at $repo (password: \$RESTIC_PASSWORD=$RESTIC_PASSWORD); restic can read it too:"
echo "   RESTIC_PASSWORD=$RESTIC_PASSWORD restic -r $repo snapshots"
rm -rf "$work/restore"
