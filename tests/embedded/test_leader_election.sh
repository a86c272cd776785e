#!/usr/bin/env bash
# Two operator processes with leader election against the embedded API server: exactly one leads;
# SIGKILL of the leader hands over within the lease duration; the other never leads while the lease
# is held; SIGTERM releases the lease at once. (env OPERATOR: the stash-operator binary)
set -euo pipefail
: "${OPERATOR:?set OPERATOR to the stash-operator binary}"
WORK=$(mktemp -d /tmp/stash-le.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$WORK"/*.log; do echo "== $f" >&2; cat "$f" >&2; done; exit 1; }
pass() { echo "ok: $*"; }
now() { date +%s.%N; }

"$OPERATOR" --embedded --state-dir "$WORK/state" > "$WORK/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -f "$WORK/state/kubeconfig" ] && break; sleep 0.05; done
le=(--kubeconfig "$WORK/state/kubeconfig" --leader-elect --leader-election-lease-duration 3 --leader-election-renew-deadline 2 --leader-election-retry-period 0.5)
start_replica() { "$OPERATOR" "${le[@]}" > "$WORK/$1.log" 2>&1 & pids+=($!); eval "$1=$!"; }
leads() { grep -c 'msg="started leading"' "$WORK/$1.log" || true; }
holder() { kubectl --kubeconfig "$WORK/state/kubeconfig" -n kube-system get lease stash-operator -o jsonpath='{.spec.holderIdentity}'; }

start_replica a
sleep 1
start_replica b
for _ in $(seq 1 100); do [ "$(( $(leads a) + $(leads b) ))" -ge 1 ] && break; sleep 0.1; done
sleep 4  # more than a lease duration: the follower must still be waiting
[ "$(( $(leads a) + $(leads b) ))" = 1 ] || fail "exactly one replica should lead"
if [ "$(leads a)" = 1 ]; then leader=a follower=b; else leader=b follower=a; fi
[[ "$(holder)" == *"_${!leader}" ]] || fail "the Lease should name the leader (pid ${!leader}): $(holder)"
pass "one leader ($leader), the follower waits through $(( 4 )) s of renewals"

killed_at=$(now)
kill -9 "${!leader}"
for _ in $(seq 1 100); do [ "$(leads "$follower")" = 1 ] && break; sleep 0.05; done
took=$(echo "$(now) - $killed_at" | bc)
[ "$(leads "$follower")" = 1 ] || fail "the follower did not take over"
echo "$took < 3 + 0.5 + 0.5" | bc | grep -q 1 || fail "hand-over took $took s (lease 3 s, retry 0.5 s)"
[[ "$(holder)" == *"_${!follower}" ]] || fail "the Lease should name the new leader"
pass "after SIGKILL of the leader, $follower leads after $(printf '%.1f' "$took") s (lease duration 3 s)"

start_replica c
sleep 1.5
[ "$(leads c)" = 0 ] || fail "a new replica led while the lease was held"
released_at=$(now)
kill -TERM "${!follower}"
for _ in $(seq 1 100); do [ "$(leads c)" = 1 ] && break; sleep 0.05; done
took=$(echo "$(now) - $released_at" | bc)
[ "$(leads c)" = 1 ] || fail "the third replica did not take over after a clean shutdown"
grep -q 'msg="stopped leading"' "$WORK/$follower.log" || fail "the stopping leader did not log it"
echo "$took < 1.5" | bc | grep -q 1 || fail "after a release the hand-over should be immediate, took $took s"
pass "SIGTERM releases the lease: the next replica leads after $(printf '%.1f' "$took") s"

# Each change of leader is an Event on the Lease, as client-go records it.
events=$(kubectl --kubeconfig "$WORK/state/kubeconfig" -n kube-system get events -o json |
  jq -r '.items[] | select(.reason == "LeaderElection" and .involvedObject.kind == "Lease" and .involvedObject.name == "stash-operator") | .message')
for r in "$leader" "$follower" c; do
  grep -q "_${!r} became leader\$" <<<"$events" || fail "no LeaderElection event for $r: $events"
done
grep -q "_${!follower} stopped leading\$" <<<"$events" || fail "no event for the leader that stepped down: $events"
pass "the Lease carries a LeaderElection event for every new leader ($(wc -l <<<"$events") events)"
