# Acceptance 3: with the Rabin chunker a file backed up by restic and then by us (and vice versa) adds no
# data blobs: identical cut points, checked through the index.
source "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/a" "$WORK/b"
head -c 40000000 /dev/urandom > "$WORK/a/big.bin"
seq 1 3000000 > "$WORK/a/text.txt"
cp "$WORK/a/big.bin" "$WORK/a/text.txt" "$WORK/b/"

"$RESTIC" -r "$WORK/r1" init >/dev/null
"$RESTIC" -r "$WORK/r1" backup -q "$WORK/a"
before=$(data_blobs "$WORK/r1")
added=$("$STASH" -r "$WORK/r1" backup --json "$WORK/b" | jq -r 'select(.message_type == "summary") | .data_blobs')
after=$(data_blobs "$WORK/r1")
[ "$before" -gt 10 ] || fail "expected restic to store several chunks, got $before"
[ "$added" = 0 ] && [ "$before" = "$after" ] || fail "we added $added data blobs to restic's repository ($before -> $after)"
pass "restic first, then us: $before data blobs, none added"

"$STASH" -r "$WORK/r2" init -q
"$STASH" -r "$WORK/r2" backup -q "$WORK/a"
before=$(data_blobs "$WORK/r2")
added=$("$RESTIC" -r "$WORK/r2" backup --json "$WORK/b" | jq -r 'select(.message_type == "summary") | .data_blobs')
after=$(data_blobs "$WORK/r2")
[ "$added" = 0 ] && [ "$before" = "$after" ] || fail "restic added $added data blobs to our repository ($before -> $after)"
"$RESTIC" -r "$WORK/r2" check --read-data >/dev/null 2>&1 || fail "restic check after mixed backups"
pass "us first, then restic: $before data blobs, none added"
