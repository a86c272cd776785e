# The agent's options behave as restic's: --stdin, --tag, --host, --exclude, --time, --json status and
# summary lines, restore of SNAPSHOT:SUBPATH with --include/--exclude, and the FastCDC chunker.
source "$(dirname "$0")/lib.sh"
repo=$WORK/repo
mkdir -p "$WORK/src/keep/deep" "$WORK/src/skip"
printf 'one\n' > "$WORK/src/keep/a.txt"
printf 'two\n' > "$WORK/src/keep/deep/b.log"
printf 'three\n' > "$WORK/src/skip/c.txt"
printf 'cache\n' > "$WORK/src/keep/x.cache"
"$STASH" -r "$repo" init -q

# --stdin: restic sees one file with exactly the bytes piped in.
head -c 5000000 /dev/urandom > "$WORK/stdin.bin"
"$STASH" -r "$repo" backup -q --stdin --stdin-filename dump.bin --tag db < "$WORK/stdin.bin"
"$RESTIC" -r "$repo" dump --no-lock latest /dump.bin > "$WORK/dumped.bin"
cmp "$WORK/stdin.bin" "$WORK/dumped.bin" || fail "restic dump of our --stdin snapshot differs"
pass "--stdin backup reads back through restic dump"

# --exclude, --tag, --host, --time, and the --json lines.
"$STASH" -r "$repo" backup --json --exclude '*.cache' --exclude "$WORK/src/skip" --tag t1 --tag t2 --host h1 \
  --time "2020-01-02 03:04:05" "$WORK/src" > "$WORK/backup.json"
jq -e 'select(.message_type == "summary") | .files_new == 2 and .snapshot_id != null' "$WORK/backup.json" >/dev/null ||
  fail "summary line: $(cat "$WORK/backup.json")"
"$STASH" -r "$repo" snapshots --json --host h1 > "$WORK/snaps.json"
jq -e 'length == 1 and .[0].tags == ["t1","t2"] and .[0].hostname == "h1" and .[0].time == "2020-01-02T03:04:05Z"' \
  "$WORK/snaps.json" >/dev/null || fail "snapshot fields: $(cat "$WORK/snaps.json")"
"$RESTIC" -r "$repo" ls --no-lock --host h1 latest > "$WORK/ls.txt"
grep -q 'a.txt' "$WORK/ls.txt" && ! grep -q 'x.cache\|c.txt' "$WORK/ls.txt" || fail "excluded files were backed up: $(cat "$WORK/ls.txt")"
pass "--exclude, --tag, --host and --time are recorded as restic reads them"

# SNAPSHOT:SUBPATH with --include / --exclude.
sid=$(jq -r '.[0].short_id' "$WORK/snaps.json")
"$STASH" -r "$repo" restore -q "$sid:$WORK/src/keep" --target "$WORK/r1"
[ -f "$WORK/r1/a.txt" ] && [ -f "$WORK/r1/deep/b.log" ] || fail "subpath restore: $(find "$WORK/r1")"
"$STASH" -r "$repo" restore -q "$sid" --target "$WORK/r2" --include '*.log'
[ -f "$WORK/r2/$WORK/src/keep/deep/b.log" ] && [ ! -e "$WORK/r2/$WORK/src/keep/a.txt" ] || fail "--include: $(find "$WORK/r2" -type f)"
"$STASH" -r "$repo" restore -q "$sid" --target "$WORK/r3" --exclude deep
[ -f "$WORK/r3/$WORK/src/keep/a.txt" ] && [ ! -e "$WORK/r3/$WORK/src/keep/deep" ] || fail "--exclude: $(find "$WORK/r3")"
pass "restore of a subpath, with --include and with --exclude"

# A restore into an earlier one's tree replaces a symlink in a file's place, never writing through
# it; and under a low descriptor limit (40: room for 5 open directories) the directories past that
# are reached by their paths.
wide=$WORK/wide
for i in $(seq 1 12); do mkdir -p "$wide/d$i/e$i" && echo "$i" > "$wide/d$i/e$i/f" && echo "$i" > "$wide/d$i/g"; done
"$STASH" -r "$repo" backup -q "$wide"
"$STASH" -r "$repo" restore -q "latest:$wide" --target "$WORK/r5"
echo outside > "$WORK/outside.txt"
rm "$WORK/r5/d3/g" && ln -s "$WORK/outside.txt" "$WORK/r5/d3/g"
(ulimit -n 40 && "$STASH" -r "$repo" restore -q "latest:$wide" --target "$WORK/r5") || fail "restore with 40 descriptors"
[ "$(cat "$WORK/outside.txt")" = outside ] && [ ! -L "$WORK/r5/d3/g" ] || fail "restore wrote through a symlink: $(ls -l "$WORK/r5/d3")"
diff -r "$wide" "$WORK/r5" || fail "restore over an earlier one differs"
pass "restore replaces a symlink in a file's place and works with few descriptors"

# Backup opens small files ahead of the one it reads (64 a worker at most), but within the
# descriptor limit: with 60 every file of 30 directories of 100 is still read, none reported.
many=$WORK/many
for i in $(seq 1 30); do mkdir -p "$many/d$i" && (cd "$many/d$i" && for j in $(seq 1 100); do echo "$i $j" > "f$j"; done); done
(ulimit -n 60 && "$STASH" -r "$repo" backup -q "$many" 2> "$WORK/many.err") ||
  fail "backup with 60 descriptors: $(head -3 "$WORK/many.err")"
[ ! -s "$WORK/many.err" ] || fail "backup with 60 descriptors reported: $(head -3 "$WORK/many.err")"
"$STASH" -r "$repo" restore -q "latest:$many" --target "$WORK/r6"
diff -r "$many" "$WORK/r6" || fail "backup with 60 descriptors lost files"
pass "backup opens files ahead within the descriptor limit"

# FastCDC repositories are ordinary restic repositories with different cut points.
"$STASH" -r "$WORK/fast" init -q --chunker fastcdc
"$STASH" -r "$WORK/fast" backup -q "$WORK/src" "$WORK/stdin.bin"
"$RESTIC" -r "$WORK/fast" check --read-data >/dev/null 2>&1 || fail "restic check of a FastCDC repository"
"$STASH" -r "$WORK/fast" restore -q latest --target "$WORK/r4"
cmp "$WORK/stdin.bin" "$WORK/r4/$WORK/stdin.bin" || fail "FastCDC round trip"
pass "FastCDC repository checks clean with restic and round-trips"

# An incremental backup takes an unchanged entry's extended attributes from the parent snapshot (a
# change to them changes ctime) and reuses an unchanged directory's tree; both must notice changes.
# The tree of $inc itself is compared: the root tree holds /tmp's node, whose times change whenever
# a test running beside this one creates its scratch directory.
inc=$WORK/inc && mkdir -p "$inc/d" && echo one > "$inc/d/f" && echo two > "$inc/g"
inc_tree() {  # the latest snapshot's tree of $inc, found by restic step by step from the root
  local t c
  t=$("$STASH" -r "$repo" snapshots --json | jq -r '.[-1].tree')
  IFS=/ read -ra parts <<< "${inc#/}"
  for c in "${parts[@]}"; do t=$("$RESTIC" -r "$repo" cat blob "$t" | jq -r --arg n "$c" '.nodes[] | select(.name == $n) | .subtree'); done
  echo "$t"
}
"$STASH" -r "$repo" backup -q "$inc"   # (reading sets the access times once: relatime)
"$STASH" -r "$repo" backup -q "$inc"
t1=$(inc_tree)
"$STASH" -r "$repo" backup -q "$inc"
t2=$(inc_tree)
[[ "$t1" =~ ^[0-9a-f]{64}$ ]] || fail "no tree found for $inc: \"$t1\""
[ "$t1" = "$t2" ] || fail "an unchanged directory got a new tree ($t1, then $t2)"
if setfattr -n user.stash -v changed "$inc/d/f" 2>/dev/null; then
  "$STASH" -r "$repo" backup -q "$inc"
  rm -rf "$WORK/r5" && "$STASH" -r "$repo" restore -q latest --target "$WORK/r5"
  [ "$(getfattr --only-values -n user.stash "$WORK/r5$inc/d/f" 2>/dev/null)" = changed ] || fail "an xattr set after the parent snapshot was not backed up"
  [ "$(inc_tree)" != "$t2" ] || fail "a changed xattr left the tree as it was"
  pass "incremental backups reuse unchanged trees and see a changed xattr"
else
  pass "incremental backups reuse unchanged trees (no user xattrs on this file system)"
fi

# Small files are read whole in batches; one that turns out larger than a batch holds (here /proc
# files, listed as empty: kallsyms holds megabytes) is read again as a stream, the batch before it
# stored first. Its content must be whole, and the file after it too.
ksize=$(wc -c < /proc/kallsyms)
if [ "$ksize" -gt $((4 << 20)) ]; then
  sid=$("$STASH" -r "$repo" backup --json /proc/kallsyms /proc/slabinfo /proc/vmallocinfo | jq -r 'select(.message_type == "summary") | .snapshot_id')
  rm -rf "$WORK/r6" && "$STASH" -r "$repo" restore -q "$sid" --target "$WORK/r6"
  # (through cat: cmp -s takes the sizes from stat, and /proc says 0)
  cat /proc/kallsyms | cmp -s "$WORK/r6/proc/kallsyms" - || fail "/proc/kallsyms ($ksize bytes, listed as empty) came back other than it is"
  [ -s "$WORK/r6/proc/vmallocinfo" ] || fail "the file after /proc/kallsyms in its batch came back empty"
  "$RESTIC" -r "$repo" check --read-data -q || fail "restic check after backing up /proc files"
  pass "a batched file larger than the batch ($ksize bytes) is read as a stream"
else
  pass "a batched file larger than the batch: skipped (/proc/kallsyms holds only $ksize bytes)"
fi
