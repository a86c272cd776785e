# Shared helpers for the interop tests: a scratch directory, a generated tree with every node kind,
# and a comparison of two trees by content and metadata. Sourced by test_*.sh.
set -euo pipefail

: "${STASH:?set STASH to the stash binary}"
: "${RESTIC:=restic}"
export RESTIC_PASSWORD=interop-password
unset RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
WORK=$(mktemp -d /tmp/stash-interop.XXXXXX)
chmod 755 "$WORK"
# Caches of network repositories (ours and restic's) stay in the scratch directory.
export XDG_CACHE_HOME=$WORK/xdg-cache
unset RESTIC_CACHE_DIR
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
is_root() { [ "$(id -u)" = 0 ]; }

# make_tree DIR: files of every kind and size, awkward names, hard links, xattrs, fixed times.
make_tree() {
  local d=$1
  mkdir -p "$d/sub dir/deeper" "$d/ünïcödé ✓" "$d/empty-dir"
  printf 'hello\n' > "$d/hello.txt"
  : > "$d/zero-bytes"
  head -c 20000000 /dev/urandom > "$d/sub dir/twenty-mb.bin"
  head -c 3000000 /dev/urandom > "$d/sub dir/deeper/three-mb.bin"
  seq 1 200000 > "$d/ünïcödé ✓/numbers.txt"
  printf 'q' > "$d/q\"uote"
  printf 'b' > "$d/back\\slash"
  printf 't' > "$d/tab	name"
  printf 'n' > "$d/new
line"
  printf 'x' > "$d/$(printf 'bad\377utf8')"
  truncate -s 50M "$d/sparse.img"
  printf 'middle' | dd of="$d/sparse.img" bs=1 seek=20000000 conv=notrunc status=none
  ln "$d/hello.txt" "$d/sub dir/hardlink-to-hello"
  ln -s hello.txt "$d/relative-link"
  ln -s /nonexistent/target "$d/dangling-link"
  mkfifo "$d/fifo"
  if is_root; then
    mknod "$d/null-device" c 1 3
    # Other owners: a restore must chown these (and set the set-id bit again after the chown).
    chown 65534:65534 "$d/ünïcödé ✓/numbers.txt" "$d/sub dir/deeper/three-mb.bin"
    chown 0:65534 "$d/q\"uote"
  fi
  chmod 4750 "$d/sub dir/deeper/three-mb.bin"
  chmod 1777 "$d/empty-dir"
  chmod 0600 "$d/hello.txt"
  if command -v setfattr >/dev/null; then
    setfattr -n user.stash -v interop "$d/zero-bytes"
    setfattr -n user.binary -v 0x00ff10 "$d/sub dir"
  fi
  find "$d" -exec touch -h -d '2021-02-03 04:05:06.123456789' {} +
  touch -d '1999-12-31 23:59:59' "$d/hello.txt"
}

# Prints one line per entry: path, type, mode, owner, size (files), link count (files), mtime, link target.
describe() {
  (cd "$1" && find . -mindepth 1 -printf '%P|%y|%m|%U:%G|%n|%T@|%l|' -exec sh -c '
      for p; do
        if [ -f "$p" ] && [ ! -L "$p" ]; then printf "%s\n" "$(stat -c %s "$p")"; else printf -- "-\n"; fi
      done' sh {} + ) | LC_ALL=C sort
}

# same_tree A B: identical content (not following links) and metadata, and xattrs when available.
same_tree() {
  local a=$1 b=$2
  (cd "$a" && find . -type f -print0) | while IFS= read -r -d '' f; do
    cmp -s "$a/$f" "$b/$f" || fail "content of $f differs: $a vs $b"
  done
  diff <(describe "$a") <(describe "$b") >&2 || fail "metadata differs: $a vs $b"
  if command -v getfattr >/dev/null; then
    diff <(cd "$a" && getfattr -R -h -d -m 'user\.' . 2>/dev/null) <(cd "$b" && getfattr -R -h -d -m 'user\.' . 2>/dev/null) >&2 ||
      fail "extended attributes differ: $a vs $b"
  fi
}

# flip FILE: flips one byte in the middle of a (possibly read-only) repository file.
# flip FILE: inverts the bits of the byte in the middle of FILE (writing a fixed value would leave
# the file unchanged when the byte already had it: one run in 256 for encrypted files).
flip() {
  local at=$(( $(stat -c %s "$1") / 2 )) b
  b=$(od -An -tu1 -j "$at" -N1 "$1" | tr -d ' ')
  chmod u+w "$1"
  printf "\\x$(printf %02x $(( b ^ 255 )))" | dd of="$1" bs=1 seek="$at" conv=notrunc status=none
}

# Number of data blobs in a repository's index, as restic sees it.
data_blobs() { "$RESTIC" -r "$1" list blobs --no-lock 2>/dev/null | grep -c '^data ' || true; }

# under_faults REPO SRC SEED [PREFIX...]: with 20% injected transient faults and up to 3 ms latency
# under the retry decorator, init REPO, back up SRC and restore it (identical), then check
# --read-data without faults. PREFIX runs before each stash command (a function setting credentials).
under_faults() {
  local repo=$1 src=$2 seed=$3; shift 3
  local faults="rate=0.2,latency=3,seed=$seed,retry=5" out="$WORK/under-faults.$seed"
  STASH_TEST_FAULTS=$faults "$@" "$STASH" -r "$repo" init > /dev/null || fail "init under faults"
  STASH_TEST_FAULTS=$faults "$@" "$STASH" -r "$repo" backup "$src" > /dev/null || fail "backup under faults"
  STASH_TEST_FAULTS=$faults "$@" "$STASH" -r "$repo" restore latest --target "$out" > /dev/null || fail "restore under faults"
  diff -r --no-dereference "$src" "$out$src" > "$out.diff" 2>&1 || fail "the restore under faults differs: $(head -c 400 "$out.diff")"
  "$@" "$STASH" -r "$repo" check --read-data > /dev/null || fail "check after a backup under faults"
}
