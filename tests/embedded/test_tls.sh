#!/usr/bin/env bash
# The embedded API server over TLS: kubectl through the written kubeconfig (CA data + token), a client
# certificate authenticates without a token, no credentials get 401, and a wrong CA is refused.
# (env OPERATOR: the stash-operator binary)
set -euo pipefail
: "${OPERATOR:?set OPERATOR to the stash-operator binary}"
WORK=$(mktemp -d /tmp/stash-tls.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
cd "$WORK"

# A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it; and a stranger CA.
ssl() { openssl "$@" 2>/dev/null; }
ssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=stash-test-ca
ssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=stranger
ssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
ssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext
ssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=admin/O=system:masters
ssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2

"$OPERATOR" --embedded --state-dir state --token s3cret --tls-cert-file server.crt --tls-private-key-file server.key \
  --tls-ca-file ca.crt --client-ca-file ca.crt > operator.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -f state/kubeconfig ] && break; sleep 0.05; done
[ -f state/kubeconfig ] || { cat operator.log >&2; fail "the server did not start"; }
server=$(kubectl --kubeconfig state/kubeconfig config view -o jsonpath='{.clusters[0].cluster.server}')
[[ $server == https://127.0.0.1:* ]] || fail "kubeconfig should point at https: $server"

# (output captured first: `| grep -q` under pipefail fails when grep exits before kubectl has written all)
out=$(kubectl --kubeconfig state/kubeconfig get namespaces --no-headers 2>&1) || fail "kubectl over TLS with the token: $out"
grep -q '^default ' <<<"$out" || fail "kubectl over TLS with the token listed no default namespace: $out"
pass "kubectl over TLS (CA from the kubeconfig, bearer token)"

[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt --cert client.crt --key client.key "$server/api/v1/namespaces")" = 200 ] ||
  fail "a client certificate should authenticate"
pass "a client certificate signed by the client CA authenticates without a token"

[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt "$server/api/v1/namespaces")" = 401 ] || fail "no credentials should get 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt --cert other.crt --key other.key "$server/api/v1/namespaces")" = 401 ] ||
  fail "a certificate from another CA should not authenticate"
pass "no credentials, or a certificate from another CA: 401"

sed "s|certificate-authority-data: .*|certificate-authority-data: $(base64 -w0 other.crt)|" state/kubeconfig > wrong-ca.kubeconfig
if out=$(kubectl --kubeconfig wrong-ca.kubeconfig get namespaces 2>&1); then fail "a wrong CA was accepted"; fi
grep -q 'certificate signed by unknown authority' <<<"$out" || fail "unclear error for a wrong CA: $out"
pass "a kubeconfig with the wrong CA is refused: $(tail -1 <<<"$out")"
