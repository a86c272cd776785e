#!/usr/bin/env bash
# The GCS driver against a protocol double (tests/doubles/gcs_double.py; no GCS server can be
# installed here) that checks every request as Google documents it, including the RS256 signature
# of the service account's JWT: round trip of /usr/include, listing across pages, a key that is
# not the account's, injected faults, and no protocol violation at the end.
source "$(dirname "$0")/lib.sh"
command -v python3 > /dev/null || { echo "python3 not installed: skipped"; exit 0; }
DOUBLE=$(cd "$(dirname "$0")/../doubles" && pwd)/gcs_double.py
SRC=/usr/include
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2> /dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/pub.pem"
EMAIL=backup@stash-test.iam.gserviceaccount.com
: > "$WORK/violations"
python3 "$DOUBLE" "$WORK/port" "$WORK/pub.pem" "$EMAIL" "$WORK/violations" &
pid=$!
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
port=$(cat "$WORK/port")
account_json() {  # account_json KEY_PEM
  jq -n --arg key "$(cat "$1")" --arg email "$EMAIL" --arg uri "http://127.0.0.1:$port/token" \
    '{type: "service_account", project_id: "stash-test", private_key_id: "k1", private_key: $key, client_email: $email, token_uri: $uri}'
}
export GOOGLE_SERVICE_ACCOUNT_JSON_KEY="$(account_json "$WORK/key.pem")" GOOGLE_PROJECT_ID=stash-test
export GOOGLE_STORAGE_ENDPOINT="http://127.0.0.1:$port"
R="gs:stash-test:/repo"

"$STASH" -r "$R" init > /dev/null || fail "init (creating the bucket)"
"$STASH" -r "$R" backup "$SRC" --json | tail -1 > "$WORK/summary.json"
"$STASH" -r "$R" restore latest --target "$WORK/r1" > /dev/null
diff -r --no-dereference "$SRC" "$WORK/r1$SRC" > /dev/null || fail "the restore differs from $SRC"
"$STASH" -r "$R" check --read-data > /dev/null || fail "our check --read-data"
"$RESTIC" -r "$WORK/local" init > /dev/null 2>&1
printf '%s' "$RESTIC_PASSWORD" > "$WORK/pw"
"$STASH" -r "$WORK/local" copy --from-repo "$R" --from-password-file "$WORK/pw" > /dev/null || fail "copy to a local repository"
"$RESTIC" -r "$WORK/local" check --read-data > /dev/null 2>&1 || fail "restic check of the copy"
pass "init, backup of $SRC ($(jq .total_files_processed "$WORK/summary.json") files), restore identical, check --read-data clean; restic checks a copy"

for i in $(seq 1 11); do "$STASH" -r "$R" backup -q "$SRC/linux/netfilter" > /dev/null; done
[ "$("$STASH" -r "$R" -o gs.list-max-results=5 list snapshots | wc -l)" = 12 ] || fail "listing 5 a page"
pass "objects.list across pages (5 a page): 12 snapshots"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/other.pem" 2> /dev/null
if GOOGLE_SERVICE_ACCOUNT_JSON_KEY="$(account_json "$WORK/other.pem")" "$STASH" -r "$R" snapshots > /dev/null 2> "$WORK/auth.err"; then
  fail "a key that is not the account's was accepted"
fi
grep -q "gs:stash-test:/repo: gcs: token for $EMAIL .*Invalid JWT Signature" "$WORK/auth.err" || fail "unclear error: $(cat "$WORK/auth.err")"
pass "a foreign key: $(head -1 "$WORK/auth.err")"

F="gs:stash-test:/faulty"
under_faults "$F" "$SRC" 13
pass "with 20% injected faults and latency: backup, restore identical, check --read-data clean"

[ ! -s "$WORK/violations" ] || fail "requests the documented API does not allow: $(head -5 "$WORK/violations")"
pass "every request matched the documented API"
