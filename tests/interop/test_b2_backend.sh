#!/usr/bin/env bash
# The B2 driver against a protocol double (tests/doubles/b2_double.py; no B2 server can be
# installed here) that checks each request as B2's native API documentation describes it (tokens,
# upload URLs, SHA-1 of every upload, paging, versions): round trip of /usr/include, listing across
# pages, token expiry, forget+prune deleting file versions, a wrong key, injected faults, and no
# protocol violation at the end.
source "$(dirname "$0")/lib.sh"
command -v python3 > /dev/null || { echo "python3 not installed: skipped"; exit 0; }
DOUBLE=$(cd "$(dirname "$0")/../doubles" && pwd)/b2_double.py
SRC=/usr/include
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
: > "$WORK/violations"
USES=100  # a token's requests (a restore fetches trees 256 a request: a few hundred requests in all)
TOKEN_USES=$USES python3 "$DOUBLE" "$WORK/port" 000abc123 K001secretkey "$WORK/violations" &
pid=$!
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
export B2_API_URL="http://127.0.0.1:$(cat "$WORK/port")" B2_ACCOUNT_ID=000abc123 B2_ACCOUNT_KEY=K001secretkey
R="b2:stash-test:/repo"

"$STASH" -r "$R" init > /dev/null || fail "init (creating the bucket)"
"$STASH" -r "$R" backup "$SRC" --json | tail -1 > "$WORK/summary.json"
# One thread renews while the others wait: one authorization per expiry, not one per request in flight.
auths=$(curl -sf "$B2_API_URL/_auths") requests=$(curl -sf "$B2_API_URL/_requests")
"$STASH" -r "$R" restore latest --target "$WORK/r1" > /dev/null || fail "restore (tokens expire every $USES requests)"
auths=$(( $(curl -sf "$B2_API_URL/_auths") - auths )) requests=$(( $(curl -sf "$B2_API_URL/_requests") - requests ))
[ "$auths" -ge 2 ] || fail "expected the restore to renew its token, it authorized $auths times in $requests requests"
[ "$auths" -le $((requests / USES + 2)) ] || fail "$auths authorizations for $requests requests: renewals are not shared"
diff -r --no-dereference "$SRC" "$WORK/r1$SRC" > /dev/null || fail "the restore differs from $SRC"
"$STASH" -r "$R" check --read-data > /dev/null || fail "our check --read-data"
"$RESTIC" -r "$WORK/local" init > /dev/null 2>&1
printf '%s' "$RESTIC_PASSWORD" > "$WORK/pw"
"$STASH" -r "$WORK/local" copy --from-repo "$R" --from-password-file "$WORK/pw" > /dev/null || fail "copy to a local repository"
"$RESTIC" -r "$WORK/local" check --read-data > /dev/null 2>&1 || fail "restic check of the copy"
pass "init, backup of $SRC ($(jq .total_files_processed "$WORK/summary.json") files), restore identical across token expiries ($auths authorizations in $requests requests), check --read-data clean; restic checks a copy"

for i in $(seq 1 11); do "$STASH" -r "$R" backup -q "$SRC/linux/netfilter" > /dev/null; done
[ "$("$STASH" -r "$R" -o b2.list-max-file-count=5 list snapshots | wc -l)" = 12 ] || fail "listing 5 a page"
"$STASH" -r "$R" forget --keep-last 2 --prune > "$WORK/forget.log" || fail "forget --prune (deleting file versions)"
[ "$("$STASH" -r "$R" list snapshots | wc -l)" = 3 ] || fail "forget should leave 3 snapshots (2 of netfilter, 1 of $SRC): $("$STASH" -r "$R" snapshots; cat "$WORK/forget.log")"
"$STASH" -r "$R" check --read-data > /dev/null || fail "check after prune"
pass "b2_list_file_names across pages (5 a page): 12 snapshots; forget --keep-last 2 --prune deletes file versions and checks clean"

if B2_ACCOUNT_KEY=wrong "$STASH" -r "$R" snapshots > /dev/null 2> "$WORK/auth.err"; then fail "a wrong key was accepted"; fi
grep -q "b2:stash-test:/repo: b2: authorization at $B2_API_URL: HTTP 401.*check B2_ACCOUNT_ID and B2_ACCOUNT_KEY" "$WORK/auth.err" || fail "unclear error: $(cat "$WORK/auth.err")"
pass "wrong key: $(head -1 "$WORK/auth.err")"

F="b2:stash-test:/faulty"
under_faults "$F" "$SRC" 19
pass "with 20% injected faults and latency: backup, restore identical, check --read-data clean"

[ ! -s "$WORK/violations" ] || fail "requests the documented API does not allow: $(head -5 "$WORK/violations")"
pass "every request matched the documented API"
