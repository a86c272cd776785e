#!/usr/bin/env bash
# The Swift driver against a protocol double (tests/doubles/swift_double.py; no Swift cluster can
# be installed here) that checks each request as the OpenStack API references document it: a round
# trip through each auth method (v1, Keystone v2.0, Keystone v3 with a service catalog), token
# renewal after revocation, listing across pages, a wrong password, injected faults, and no
# protocol violation at the end.
source "$(dirname "$0")/lib.sh"
command -v python3 > /dev/null || { echo "python3 not installed: skipped"; exit 0; }
DOUBLE=$(cd "$(dirname "$0")/../doubles" && pwd)/swift_double.py
SRC=/usr/include
pid=
uses=100  # a token's storage requests (a restore fetches trees 256 a request: a few hundred requests in all)
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
: > "$WORK/violations"
TOKEN_USES=$uses python3 "$DOUBLE" "$WORK/port" alice s3cret demo "$WORK/violations" &  # tokens expire
pid=$!
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
base="http://127.0.0.1:$(cat "$WORK/port")"
unset ST_AUTH ST_USER ST_KEY OS_AUTH_URL OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_TENANT_NAME OS_REGION_NAME OS_STORAGE_URL OS_AUTH_TOKEN

v1() { ST_AUTH="$base/auth/v1.0" ST_USER=alice ST_KEY=s3cret "$@"; }
v2() { OS_AUTH_URL="$base/v2.0" OS_USERNAME=alice OS_PASSWORD=s3cret OS_TENANT_NAME=demo "$@"; }
v3() { OS_AUTH_URL="$base/v3" OS_USERNAME=alice OS_PASSWORD=s3cret OS_PROJECT_NAME=demo OS_REGION_NAME=RegionOne "$@"; }
R="swift:stash-test:/repo"

v3 "$STASH" -r "$R" init > /dev/null || fail "init through Keystone v3"
v3 "$STASH" -r "$R" backup "$SRC" --json | tail -1 > "$WORK/summary.json"
v1 "$STASH" -r "$R" restore latest --target "$WORK/r1" > /dev/null || fail "restore through v1 auth"
diff -r --no-dereference "$SRC" "$WORK/r1$SRC" > /dev/null || fail "the restore differs from $SRC"
v2 "$STASH" -r "$R" check --read-data > /dev/null || fail "check --read-data through Keystone v2.0"
"$RESTIC" -r "$WORK/local" init > /dev/null 2>&1
printf '%s' "$RESTIC_PASSWORD" > "$WORK/pw"
v3 "$STASH" -r "$WORK/local" copy --from-repo "$R" --from-password-file "$WORK/pw" > /dev/null || fail "copy to a local repository"
"$RESTIC" -r "$WORK/local" check --read-data > /dev/null 2>&1 || fail "restic check of the copy"
pass "backup of $SRC ($(jq .total_files_processed "$WORK/summary.json") files) via Keystone v3, restore via v1, check via v2.0: identical and clean; restic checks a copy"

for i in $(seq 1 11); do v1 "$STASH" -r "$R" backup -q "$SRC/linux/netfilter" > /dev/null; done
[ "$(v1 "$STASH" -r "$R" -o swift.list-limit=5 list snapshots | wc -l)" = 12 ] || fail "listing 5 a page"
pass "container listing across pages (5 a page, by marker): 12 snapshots"

# Tokens expire after $uses requests: a restore of /usr/include must authenticate again several times.
# One thread renews while the others wait: one authentication per expiry, not one per request in flight.
before=$(curl -sf "$base/_auths") requests=$(curl -sf "$base/_requests")
v3 "$STASH" -r "$R" restore "$(jq -r .snapshot_id "$WORK/summary.json")" --target "$WORK/r2" > /dev/null || fail "restore across token expiries"
auths=$(( $(curl -sf "$base/_auths") - before )) requests=$(( $(curl -sf "$base/_requests") - requests ))
[ "$auths" -ge 3 ] || fail "expected the restore to renew its token, it authenticated $auths times"
[ "$auths" -le $((requests / uses + 2)) ] || fail "$auths authentications for $requests requests: renewals are not shared"
pass "tokens expiring every $uses requests: the restore made $requests requests, authenticated $auths times and finished"

if v3 env OS_PASSWORD=wrong "$STASH" -r "$R" snapshots > /dev/null 2> "$WORK/auth.err"; then fail "a wrong password was accepted"; fi
grep -q "swift:stash-test:/repo: swift: authentication at $base/v3: HTTP 401 (wrong user, key or project?)" "$WORK/auth.err" || fail "unclear error: $(cat "$WORK/auth.err")"
pass "wrong password: $(head -1 "$WORK/auth.err")"

F="swift:stash-test:/faulty"
under_faults "$F" "$SRC" 17 v1
pass "with 20% injected faults and latency: backup, restore identical, check --read-data clean"

[ ! -s "$WORK/violations" ] || fail "requests the documented API does not allow: $(head -5 "$WORK/violations")"
pass "every request matched the documented API"
