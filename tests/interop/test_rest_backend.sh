#!/usr/bin/env bash
# The REST backend against `rclone serve restic` (Debian's rclone) on 127.0.0.1: a round trip of
# /usr/include, restic's check --read-data of what we wrote and our restore of what restic wrote,
# basic auth, 20% injected transient faults with latency (retried), and a permanent fault that
# fails the backup with a message naming the operation and file while nothing saved is lost.
source "$(dirname "$0")/lib.sh"
command -v rclone >/dev/null || { echo "rclone not installed: skipped"; exit 0; }
SRC=/usr/include
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

# serve DIR [rclone flags]: starts rclone on a free port; sets URL.
serve() {
  local dir=$1 log="$WORK/rclone.$RANDOM.log"; shift
  mkdir -p "$dir"
  timeout 600 rclone serve restic "$dir" --addr 127.0.0.1:0 "$@" > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q 'Serving restic REST API on' "$log" && break; sleep 0.05; done
  URL=$(grep -o 'https\?://127.0.0.1:[0-9]*' "$log" | head -1)
  [ -n "$URL" ] || fail "rclone did not start: $(cat "$log")"
}

serve "$WORK/plain"
R="rest:$URL/ours"
"$STASH" -r "$R" init > /dev/null
"$STASH" -r "$R" backup "$SRC" --json | tail -1 > "$WORK/summary.json"
snap=$(jq -r .snapshot_id "$WORK/summary.json")
[ "$("$STASH" -r "$R" snapshots --json | jq length)" = 1 ] || fail "snapshots should list one"
"$STASH" -r "$R" restore "$snap" --target "$WORK/r1" > /dev/null
diff -r --no-dereference "$SRC" "$WORK/r1$SRC" > /dev/null || fail "the restore differs from $SRC"
"$RESTIC" -r "$R" check --read-data > "$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "restic check --read-data of our REST repository"; }
pass "init, backup of $SRC ($(jq .total_files_processed "$WORK/summary.json") files), restore identical, restic check --read-data clean"

# The local cache: the commands above left the snapshot, the index and the packs of trees in it.
# With the server's copies of those replaced by garbage, cached commands go on as before (they
# read the copies, checked against their names), while check, which reads the repository itself,
# and --no-cache find the damage; a damaged copy in the cache is fetched again.
C=$(echo "$XDG_CACHE_HOME"/stash/*/); C=${C%/}
[ -f "$C/version" ] && [ -f "$XDG_CACHE_HOME/stash/CACHEDIR.TAG" ] || fail "no cache directory under $XDG_CACHE_HOME/stash"
served=$WORK/plain/ours
[ "$(ls "$C/index")" = "$(ls "$served/index")" ] || fail "the cache does not hold the repository's index files"
[ "$(ls "$C/snapshots")" = "$(ls "$served/snapshots")" ] || fail "the cache does not hold the snapshot"
tree_packs=$(cd "$C/data" && ls */*)
[ -n "$tree_packs" ] || fail "no pack of trees in the cache"
"$STASH" -r "$R" --no-cache ls "$snap" > "$WORK/ls-direct.txt"
cp -a "$served" "$WORK/served.bak"
for f in "index/$(ls "$served/index" | head -1)" $(for p in $tree_packs; do echo "data/$p"; done); do
  chmod u+w "$served/$f" && head -c 1000 /dev/urandom > "$served/$f"
done
"$STASH" -r "$R" ls "$snap" > "$WORK/ls-cached.txt" || fail "ls through the cache"
cmp -s "$WORK/ls-direct.txt" "$WORK/ls-cached.txt" || fail "ls through the cache differs"
if "$STASH" -r "$R" --no-cache ls "$snap" > /dev/null 2>&1; then fail "--no-cache read the cache"; fi
if "$STASH" -r "$R" check > /dev/null 2>&1; then fail "check did not see the damaged repository (read the cache?)"; fi
rm -rf "$served" && mv "$WORK/served.bak" "$served"
idx=$(ls "$C/index" | head -1)
head -c 1000 /dev/urandom > "$C/index/$idx"
"$STASH" -r "$R" ls "$snap" > "$WORK/ls-again.txt" || fail "ls with a damaged copy in the cache"
cmp -s "$WORK/ls-direct.txt" "$WORK/ls-again.txt" || fail "ls with a damaged copy in the cache differs"
[ "$(sha256sum < "$C/index/$idx" | cut -d' ' -f1)" = "$idx" ] || fail "the damaged copy was not fetched again"
pass "local cache: $(echo "$tree_packs" | wc -l) pack(s) of trees, index and snapshot kept; ls reads them ($(wc -l < "$WORK/ls-cached.txt") lines as without it); check and --no-cache do not; a damaged copy is fetched again"

# What restic wrote over REST, we restore.
"$RESTIC" -r "rest:$URL/theirs" init > /dev/null 2>&1
"$RESTIC" -r "rest:$URL/theirs" backup "$SRC/linux" > /dev/null 2>&1
"$STASH" -r "rest:$URL/theirs" restore latest --target "$WORK/r2" > /dev/null
diff -r --no-dereference "$SRC/linux" "$WORK/r2$SRC/linux" > /dev/null || fail "our restore of restic's REST repository differs"
"$STASH" -r "rest:$URL/theirs" check > /dev/null || fail "our check of restic's REST repository"
pass "restic's repository over REST: our check is clean and our restore is identical"

# Basic auth: right credentials work, wrong ones are named as such.
serve "$WORK/auth" --user alice --pass s3cret
hostport=${URL#http://}
"$STASH" -r "rest:http://alice:s3cret@$hostport/repo" init > /dev/null || fail "init with basic auth"
"$STASH" -r "rest:http://alice:s3cret@$hostport/repo" backup "$SRC/linux" > /dev/null || fail "backup with basic auth"
if "$STASH" -r "rest:http://alice:wrong@$hostport/repo" snapshots > /dev/null 2> "$WORK/auth.err"; then fail "a wrong password was accepted"; fi
grep -q "rest:http://$hostport/repo.*401 (authentication failed" "$WORK/auth.err" || fail "unclear authentication error: $(cat "$WORK/auth.err")"
grep -q s3cret "$WORK/auth.err" && fail "the password leaked into the message"
pass "basic auth; a wrong password: $(head -1 "$WORK/auth.err")"

# TLS: a self-signed certificate is refused with a clear message, trusted with --cacert, or not
# checked with --insecure-tls; the name checked is the host of the URL (here an IP address).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=stash-test -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2> /dev/null
serve "$WORK/tls" --cert "$WORK/tls.crt" --key "$WORK/tls.key"
T="rest:$URL/repo"
[[ $T == rest:https://* ]] || fail "rclone did not serve HTTPS: $T"
if "$STASH" -r "$T" init > /dev/null 2> "$WORK/tls.err"; then fail "an untrusted certificate was accepted"; fi
grep -q "TLS handshake failed: .*certificate verify failed" "$WORK/tls.err" || fail "unclear TLS error: $(cat "$WORK/tls.err")"
grep -q retrying "$WORK/tls.err" && fail "a certificate that does not verify was retried"
"$STASH" -r "$T" --cacert "$WORK/tls.crt" init > /dev/null || fail "init with --cacert"
"$STASH" -r "$T" --cacert "$WORK/tls.crt" backup -q "$SRC/linux/netfilter" > /dev/null || fail "backup over TLS"
"$STASH" -r "$T" --insecure-tls snapshots > /dev/null || fail "--insecure-tls"
"$RESTIC" -r "$T" --cacert "$WORK/tls.crt" check --read-data > /dev/null 2>&1 || fail "restic check over TLS"
pass "TLS: untrusted certificate refused ($(head -1 "$WORK/tls.err" | cut -c1-110)…); --cacert and --insecure-tls work; restic checks it"

# 20% transient faults (before or after the server acts) with up to 3 ms latency, under the retry decorator.
serve "$WORK/faulty"
F="rest:$URL/faulty"
under_faults "$F" "$SRC" 11
"$RESTIC" -r "$F" check --read-data > "$WORK/check2.log" 2>&1 || { cat "$WORK/check2.log"; fail "restic check after a backup under faults"; }
pass "with 20% injected faults and latency: backup, restore identical, check --read-data clean (ours and restic's)"

# A permanent fault: the command fails naming the operation and object; the repository stays valid.
if STASH_TEST_FAULTS=fail=put:pack "$STASH" -r "$F" backup /usr/share/doc > /dev/null 2> "$WORK/perm.err"; then fail "a backup whose pack uploads fail succeeded"; fi
grep -Eq "put data/[0-9a-f]{64}: injected permanent fault" "$WORK/perm.err" || fail "unclear message: $(cat "$WORK/perm.err")"
"$RESTIC" -r "$F" check --read-data > "$WORK/check3.log" 2>&1 || { cat "$WORK/check3.log"; fail "restic check after a failed backup"; }
"$STASH" -r "$F" restore latest --target "$WORK/r4" > /dev/null
diff -r --no-dereference "$SRC" "$WORK/r4$SRC" > /dev/null || fail "the earlier snapshot is damaged"
pass "a permanent fault fails the backup ($(head -1 "$WORK/perm.err" | cut -c1-120)…); the repository checks clean and the earlier snapshot restores"
