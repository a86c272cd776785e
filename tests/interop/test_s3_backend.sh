#!/usr/bin/env bash
# The S3 driver against s3rver (npm) on 127.0.0.1: a round trip of /usr/include checked by restic
# (which reads s3rver fine; restic 0.14 cannot write to it, see the issue), listing beyond one
# ListObjectsV2 page, a wrong access key named as such, 20% injected faults, a permanent fault.
# s3rver does not verify V4 signatures (its source says so); the signing is checked against AWS's
# published examples in the unit tests.
source "$(dirname "$0")/lib.sh"
S3RVER=${NPM_BIN:-}/s3rver
[ -x "$S3RVER" ] || S3RVER=$(command -v s3rver || true)
[ -n "$S3RVER" ] || { echo "s3rver not installed (scripts/deps.sh need_npm_tools): skipped"; exit 0; }
SRC=/usr/include
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/s3"
# s3rver's ListObjectsV2 continuation tokens use a cipher OpenSSL 3 keeps in its legacy provider.
NODE_OPTIONS=--openssl-legacy-provider timeout 900 "$S3RVER" -d "$WORK/s3" -a 127.0.0.1 -p 0 > "$WORK/s3rver.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q 'listening on' "$WORK/s3rver.log" && break; sleep 0.05; done
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/s3rver.log" | grep -o '[0-9]*$')
[ -n "$port" ] || fail "s3rver did not start: $(cat "$WORK/s3rver.log")"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER   # s3rver's built-in account
R="s3:http://127.0.0.1:$port/stash-test/repo"

"$STASH" -r "$R" init > /dev/null || fail "init (creating the bucket)"
"$STASH" -r "$R" backup "$SRC" --json | tail -1 > "$WORK/summary.json"
[ "$("$STASH" -r "$R" snapshots --json | jq length)" = 1 ] || fail "snapshots should list one"
"$STASH" -r "$R" restore latest --target "$WORK/r1" > /dev/null
diff -r --no-dereference "$SRC" "$WORK/r1$SRC" > /dev/null || fail "the restore differs from $SRC"
"$RESTIC" -r "$R" check --read-data > "$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "restic check --read-data of our S3 repository"; }
"$RESTIC" -r "$R" restore latest --target "$WORK/r2" > /dev/null 2>&1 || fail "restic restore from our S3 repository"
diff -r --no-dereference "$SRC" "$WORK/r2$SRC" > /dev/null || fail "restic's restore of our S3 repository differs"
pass "init, backup of $SRC ($(jq .total_files_processed "$WORK/summary.json") files), restore identical; restic check --read-data clean and restic restores it"

# A wrong access key is an authentication error naming the repository.
if AWS_ACCESS_KEY_ID=NOSUCHKEY "$STASH" -r "$R" snapshots > /dev/null 2> "$WORK/auth.err"; then fail "an unknown access key was accepted"; fi
grep -q "s3:http://127.0.0.1:$port/stash-test/repo: .*HTTP 403 (access denied: check the credentials" "$WORK/auth.err" || fail "unclear error: $(cat "$WORK/auth.err")"
pass "unknown access key: $(head -1 "$WORK/auth.err")"

# 20% transient faults with latency, through the retry decorator.
F="s3:http://127.0.0.1:$port/stash-test/faulty"
under_faults "$F" "$SRC" 5
"$RESTIC" -r "$F" check --read-data > "$WORK/check2.log" 2>&1 || { cat "$WORK/check2.log"; fail "restic check after a backup under faults"; }
pass "with 20% injected faults and latency: backup, restore identical, restic check --read-data clean"

if STASH_TEST_FAULTS=fail=put:pack "$STASH" -r "$F" backup /usr/share/doc > /dev/null 2> "$WORK/perm.err"; then fail "a backup whose pack uploads fail succeeded"; fi
grep -Eq "put data/[0-9a-f]{64}: injected permanent fault" "$WORK/perm.err" || fail "unclear message: $(cat "$WORK/perm.err")"
"$RESTIC" -r "$F" check > /dev/null 2>&1 || fail "restic check after a failed backup"
pass "a permanent fault fails the backup naming the object; the repository checks clean"

# Listing past one ListObjectsV2 page (1,000 keys): 1,100 files under locks/, stored with curl's own SigV4.
E=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
seq 1 1100 | xargs -P 8 -I{} sh -c 'printf "%064x" {} | xargs -I@ curl -sf -X PUT -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER --data-binary x "http://127.0.0.1:'"$port"'/stash-test/repo/locks/@"' ||
  fail "storing 1,100 objects with curl"
n=$("$STASH" -r "$R" list locks | wc -l)
[ "$n" = 1100 ] || fail "list locks found $n of 1,100"
pass "list across ListObjectsV2 pages: 1,100 locks"
