#!/usr/bin/env bash
# The Azure driver against Azurite's blob service (npm) on 127.0.0.1: a round trip of /usr/include,
# a copy to a local repository that restic checks with --read-data (restic 0.14 cannot be pointed
# at Azurite), listing across List Blobs pages, a wrong account key, 20% injected faults and a
# permanent fault.
source "$(dirname "$0")/lib.sh"
AZURITE=${NPM_BIN:-}/azurite-blob
[ -x "$AZURITE" ] || AZURITE=$(command -v azurite-blob || true)
[ -n "$AZURITE" ] || { echo "azurite not installed (scripts/deps.sh need_npm_tools): skipped"; exit 0; }
SRC=/usr/include
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/az"
port=$(( 20000 + RANDOM % 20000 ))
timeout 900 "$AZURITE" --silent --location "$WORK/az" --blobHost 127.0.0.1 --blobPort "$port" --skipApiVersionCheck > "$WORK/azurite.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q 'successfully listens' "$WORK/azurite.log" && break; sleep 0.05; done
grep -q 'successfully listens' "$WORK/azurite.log" || fail "azurite did not start: $(cat "$WORK/azurite.log")"
# Azurite's well-known development account.
export AZURE_ACCOUNT_NAME=devstoreaccount1
export AZURE_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export AZURE_ENDPOINT="http://127.0.0.1:$port/devstoreaccount1"
R="azure:stash-test:/repo"

"$STASH" -r "$R" init > /dev/null || fail "init (creating the container)"
"$STASH" -r "$R" backup "$SRC" --json | tail -1 > "$WORK/summary.json"
[ "$("$STASH" -r "$R" snapshots --json | jq length)" = 1 ] || fail "snapshots should list one"
"$STASH" -r "$R" restore latest --target "$WORK/r1" > /dev/null
diff -r --no-dereference "$SRC" "$WORK/r1$SRC" > /dev/null || fail "the restore differs from $SRC"
"$STASH" -r "$R" check --read-data > /dev/null || fail "our check --read-data"
"$RESTIC" -r "$WORK/local" init > /dev/null 2>&1
printf '%s' "$RESTIC_PASSWORD" > "$WORK/pw"
"$STASH" -r "$WORK/local" copy --from-repo "$R" --from-password-file "$WORK/pw" > /dev/null || fail "copy from Azure to a local repository"
"$RESTIC" -r "$WORK/local" check --read-data > "$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "restic check of the copy"; }
pass "init, backup of $SRC ($(jq .total_files_processed "$WORK/summary.json") files), restore identical, check --read-data clean; its copy checks clean with restic"

# Listing across pages: 45 snapshots, 7 a page.
for i in $(seq 1 44); do "$STASH" -r "$R" backup "$SRC/linux/netfilter" -q > /dev/null; done
n=$("$STASH" -r "$R" -o azure.list-max-results=7 list snapshots | wc -l)
[ "$n" = 45 ] || fail "listing 7 a page found $n of 45 snapshots"
[ "$("$STASH" -r "$R" -o azure.list-max-results=7 snapshots --json | jq length)" = 45 ] || fail "snapshots across pages"
pass "List Blobs across pages (7 a page): 45 snapshots"
if "$STASH" -r "$R" -o azure.no-such=1 snapshots > /dev/null 2> "$WORK/opt.err"; then fail "an unknown option was accepted"; fi
grep -q 'azure.no-such.*unknown' "$WORK/opt.err" || fail "unclear option error: $(cat "$WORK/opt.err")"

# A wrong key is refused by the server and named.
if AZURE_ACCOUNT_KEY=$(printf 'not the key' | base64) "$STASH" -r "$R" snapshots > /dev/null 2> "$WORK/auth.err"; then fail "a wrong key was accepted"; fi
grep -q "azure:stash-test:/repo: .*HTTP 403" "$WORK/auth.err" || fail "unclear error: $(cat "$WORK/auth.err")"
pass "wrong account key: $(head -1 "$WORK/auth.err")"

F="azure:stash-test:/faulty"
under_faults "$F" "$SRC" 9
pass "with 20% injected faults and latency: backup, restore identical, check --read-data clean"

if STASH_TEST_FAULTS=fail=put:pack "$STASH" -r "$F" backup /usr/share/doc > /dev/null 2> "$WORK/perm.err"; then fail "a backup whose pack uploads fail succeeded"; fi
grep -Eq "put data/[0-9a-f]{64}: injected permanent fault" "$WORK/perm.err" || fail "unclear message: $(cat "$WORK/perm.err")"
"$STASH" -r "$F" check > /dev/null || fail "check after a failed backup"
pass "a permanent fault fails the backup naming the object; the repository checks clean"
