#!/usr/bin/env bash
# The demo on the local cluster: install the chart, run the operator (as the chart's
# ServiceAccount, from this checkout, since kwok's fake nodes run no containers), apply
# the canary example, and show what kubectl and the plugin report.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
export KUBECONFIG="$KUBECONFIG_PATH"
k() { "$BIN_DIR/kubectl" "$@"; }
venv="${VENV:-$REPO_ROOT/.venv}"

hack/cluster.sh up
log "installing the modelops chart (namespace modelops, managing namespace ml)"
k create namespace ml --dry-run=client -o yaml | k apply -f - >/dev/null
"$BIN_DIR/helm" upgrade --install modelops charts/modelops --namespace modelops --create-namespace \
  --set 'watchNamespaces={ml}' --wait --timeout 3m 2> >(grep -v 'found symbolic link' >&2) >/dev/null
k apply --server-side --force-conflicts -f manifests/crds/modelops.io_modeldeployments.yaml >/dev/null

sa_config="$CLUSTER_DIR/operator.kubeconfig"
server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
ca="$(k config view --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
token="$(k create token modelops-operator -n modelops --duration=1h)"
cat >"$sa_config" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: operator, context: {cluster: local, user: operator, namespace: ml}}]
current-context: operator
YAML
chmod 600 "$sa_config"

log "starting the operator as system:serviceaccount:modelops:modelops-operator"
KUBECONFIG="$sa_config" MODELOPS_LOG_LEVEL=warning "$venv/bin/modelops-operator" --namespace ml \
  >"$CLUSTER_DIR/operator.log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true' EXIT

log "applying manifests/examples/canary.yaml"
k apply -n ml -f manifests/examples/canary.yaml
for _ in $(seq 1 120); do
  [[ "$(k get md churn -n ml -o jsonpath='{.status.phase}')" == Succeeded ]] && break
  sleep 1
done
echo
echo "\$ kubectl get md -n ml"
k get md -n ml
echo
echo "\$ kubectl get deploy,svc -n ml -l modelops.io/modeldeployment=churn"
k get deploy,svc -n ml -l modelops.io/modeldeployment=churn
echo
echo "\$ kubectl modelops status churn -n ml"
"$venv/bin/kubectl-modelops" status churn -n ml
