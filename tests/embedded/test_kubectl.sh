#!/usr/bin/env bash
# kubectl against the embedded API server (`stash-operator --embedded`): CRDs and every example
# manifest apply, read back, label/annotate/patch, watch, cascade delete, re-apply as a no-op;
# invalid objects are refused with 422 naming the field; a restart keeps every object and version,
# and a watch from a compacted version gets 410.
# Usage: test_kubectl.sh [KUBECTL]   (env OPERATOR: the stash-operator binary)
set -euo pipefail
: "${OPERATOR:?set OPERATOR to the stash-operator binary}"
KUBECTL=${1:-kubectl}
command -v "$KUBECTL" >/dev/null || { echo "SKIP: $KUBECTL not found"; exit 0; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/stash-embedded.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

start() {
  rm -f "$WORK/state/kubeconfig"
  "$OPERATOR" --embedded --state-dir "$WORK/state" > "$WORK/operator.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do [ -f "$WORK/state/kubeconfig" ] && return; sleep 0.05; done
  cat "$WORK/operator.log" >&2; fail "the embedded server did not start"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
k() { "$KUBECTL" --kubeconfig "$WORK/state/kubeconfig" "$@"; }

start
echo "kubectl: $("$KUBECTL" version --client -o json | jq -r .clientVersion.gitVersion)"

# 1. CRDs, then every example manifest.
k apply -f "$ROOT/deploy/crds/" > "$WORK/out" || fail "apply CRDs: $(cat "$WORK/out")"
[ "$(grep -c created "$WORK/out")" = 10 ] || fail "expected 10 CRDs created: $(cat "$WORK/out")"
# (apply, not `create namespace`: kubectl 1.33's generators send protobuf, which this server does not read)
k apply -f - >/dev/null <<<'{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"demo"}}'

k apply -f "$ROOT/docs/examples/" > "$WORK/out" || fail "apply examples: $(cat "$WORK/out")"
[ "$(grep -c created "$WORK/out")" = 13 ] || fail "expected 13 objects created: $(cat "$WORK/out")"
pass "kubectl apply: 10 CRDs and 13 example objects created"

# What was applied comes back, plus server metadata (and defaults).
for f in "$ROOT"/docs/examples/*.yaml; do
  k create --dry-run=client -o json -f "$f" | jq -c 'if .kind == "List" then .items[] else . end' | while read -r applied; do
    kind=$(jq -r .kind <<<"$applied"); name=$(jq -r .metadata.name <<<"$applied")
    ns=$(jq -r '.metadata.namespace // empty' <<<"$applied")
    got=$(k get "$kind" "$name" ${ns:+-n "$ns"} -o json)
    jq -e --argjson a "$applied" '. as $g | ($a | del(.metadata)) as $want | ($g | contains($want))' <<<"$got" >/dev/null ||
      fail "$kind $name: get -o json does not hold what was applied"
    jq -e '.metadata.uid and .metadata.resourceVersion and .metadata.creationTimestamp and .metadata.generation == 1' <<<"$got" >/dev/null ||
      fail "$kind $name: server metadata missing"
  done
done
pass "get -o json returns what was applied plus uid, resourceVersion, creationTimestamp, generation"

[ "$(k -n demo get backupconfigurations --no-headers | wc -l)" = 3 ] || fail "get backupconfigurations should list 3"
header=$(k -n demo get backupconfigurations | sed -n 1p)  # no early-closing pipe: with pipefail, SIGPIPE would fail it
grep -q 'TASK.*SCHEDULE.*PAUSED.*PHASE.*AGE' <<<"$header" || fail "printer columns missing: $header"
pass "get backupconfigurations lists 3 with the CRD's printer columns"

# label, annotate, three kinds of patch.
k -n demo label bc deployment-backup team=a >/dev/null
[ "$(k -n demo get bc -l team=a --no-headers | wc -l)" = 1 ] || fail "label selector"
[ "$(k -n demo get bc -l 'team notin (a)' --no-headers | wc -l)" = 2 ] || fail "notin selector"
k -n demo annotate bc deployment-backup note=x >/dev/null
gen=$(k -n demo get bc deployment-backup -o jsonpath='{.metadata.generation}')
[ "$gen" = 1 ] || fail "label/annotate must not bump the generation ($gen)"
k -n demo patch bc deployment-backup --type merge -p '{"spec":{"paused":true}}' >/dev/null
k -n demo patch bc deployment-backup --type json -p '[{"op":"replace","path":"/spec/schedule","value":"0 * * * *"}]' >/dev/null
k -n demo patch deploy stash-demo --type strategic -p '{"spec":{"template":{"spec":{"containers":[{"name":"stash","image":"stash:1"}]}}}}' >/dev/null
[ "$(k -n demo get bc deployment-backup -o jsonpath='{.spec.paused} {.spec.schedule} {.metadata.generation} {.metadata.annotations.note}')" = "true 0 * * * * 3 x" ] ||
  fail "merge/json patch result: $(k -n demo get bc deployment-backup -o json)"
[ "$(k -n demo get deploy stash-demo -o jsonpath='{.spec.template.spec.containers[*].name}')" = "busybox stash" ] ||
  fail "strategic merge patch should add a container by name"
pass "label, annotate, patch --type merge|json|strategic"

# watch sees an update.
k -n demo get bc -w --no-headers > "$WORK/watch" 2>&1 &
wpid=$!
sleep 1
k -n demo patch bc nfs-pvc-backup --type merge -p '{"spec":{"paused":true}}' >/dev/null
for _ in $(seq 1 50); do grep -q 'nfs-pvc-backup.*true' "$WORK/watch" && break; sleep 0.1; done
kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true
grep -q 'nfs-pvc-backup.*true' "$WORK/watch" || fail "get -w did not see the update: $(cat "$WORK/watch")"
pass "get -w sees an update"

# delete cascades to owned objects (background), orphan keeps them.
uid=$(k -n demo get deploy stash-demo -o jsonpath='{.metadata.uid}')
for n in owned-1 owned-2; do
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: $n, namespace: demo, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: stash-demo, uid: "$uid"}]}
data: {a: b}
EOF
done
k -n demo delete deploy stash-demo >/dev/null
k -n demo get cm owned-1 >/dev/null 2>&1 && fail "the owned ConfigMap survived its owner"
pass "delete cascades to owned objects"

# apply again: the patched object is set back and the deleted Deployment re-created; then a
# third apply changes nothing.
out=$(k apply -f "$ROOT/docs/examples/" 2>&1)
grep -q 'backupconfiguration.stash.appscode.com/deployment-backup configured' <<<"$out" || fail "re-apply should revert the patch: $out"
[ "$(k -n demo get bc deployment-backup -o jsonpath='{.spec.schedule}')" = '*/5 * * * *' ] || fail "re-apply did not restore the schedule"
out=$(k apply -f "$ROOT/docs/examples/" 2>&1)
[ "$(grep -c unchanged <<<"$out")" = 13 ] || fail "a third apply should leave all 13 unchanged: $out"
pass "apply again: the last-applied state comes back, then all 13 unchanged"

# 2. Invalid objects: 422 naming the field, nothing stored.
bad() {  # bad NAME YAML-BODY PATTERN
  local out
  out=$(k apply -f - <<<"$2" 2>&1) && fail "$1 was accepted"
  grep -q "$3" <<<"$out" || fail "$1: unclear message: $out"
  k -n demo get bc "$1" >/dev/null 2>&1 && fail "$1 was stored"
  echo "   $1: $(tail -1 <<<"$out")"
}
base='apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: NAME, namespace: demo}
spec:
  repository: {name: r}
  target: {ref: {apiVersion: apps/v1, kind: KIND, name: d}, paths: [/a]}
  retentionPolicy: {name: k, keepLast: KEEP, prune: true}'
bad wrong-kind "$(sed 's/NAME/wrong-kind/; s/KIND/Pod/; s/KEEP/1/' <<<"$base")" 'spec.target.ref.kind: Unsupported value: "Pod"'
bad negative-keep "$(sed 's/NAME/negative-keep/; s/KIND/Deployment/; s/KEEP/-1/' <<<"$base")" 'spec.retentionPolicy.keepLast: Invalid value: -1'
bad no-retention "$(sed 's/NAME/no-retention/; s/KIND/Deployment/; /retentionPolicy/d' <<<"$base")" 'spec.retentionPolicy: Required value'
out=$(k apply -f - 2>&1 <<'EOF'
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: unknown-backend, namespace: demo}
spec:
  backend: {storageSecretName: s, ftp: {host: h}}
EOF
) && fail "unknown backend accepted"
grep -q 'spec.backend: Required value: one of local, s3' <<<"$out" || fail "unknown backend: $out"
echo "   unknown-backend: $out"
server=$(k config view -o jsonpath='{.clusters[0].cluster.server}')
code=$(curl -s -o "$WORK/resp" -w '%{http_code}' -X POST -H 'Content-Type: application/yaml' \
  --data-binary $'apiVersion: stash.appscode.com/v1beta1\nkind: Task\nmetadata: {name: t\nspec: [\n' "$server/apis/stash.appscode.com/v1beta1/tasks")
[ "$code" = 422 ] && grep -q 'line' "$WORK/resp" || fail "malformed YAML: $code $(cat "$WORK/resp")"
echo "   malformed YAML: $code $(jq -r .message "$WORK/resp")"
pass "invalid objects are refused with 422 naming the field"

# 3. Restart: objects and versions come back; a watch from before the restart gets 410.
before=$(k get bc,repo,task -A -o json | jq -c '[.items[] | {k: .kind, n: .metadata.name, rv: .metadata.resourceVersion}]')
rv_before=$(k get --raw /apis/stash.appscode.com/v1beta1/backupconfigurations | jq -r .metadata.resourceVersion)
stop
start
after=$(k get bc,repo,task -A -o json | jq -c '[.items[] | {k: .kind, n: .metadata.name, rv: .metadata.resourceVersion}]')
[ "$before" = "$after" ] || fail "objects or versions changed across a restart: $before vs $after"
server=$(k config view -o jsonpath='{.clusters[0].cluster.server}')
curl -s -m 3 "$server/apis/stash.appscode.com/v1beta1/backupconfigurations?watch=true&resourceVersion=5" > "$WORK/w410" || true
jq -e 'select(.type == "ERROR") | .object.code == 410' "$WORK/w410" >/dev/null || fail "watch from a compacted version: $(cat "$WORK/w410")"
k -n demo patch bc sample-postgres-backup --type merge -p '{"spec":{"paused":true}}' >/dev/null
rv_now=$(k -n demo get bc sample-postgres-backup -o jsonpath='{.metadata.resourceVersion}')
[ "$rv_now" -gt "$rv_before" ] || fail "resourceVersion went backwards after the restart ($rv_now <= $rv_before)"
pass "restart keeps $(jq length <<<"$after") objects with their resourceVersions; a watch from before it gets 410"
