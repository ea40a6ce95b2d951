#!/usr/bin/env bash
# End-to-end on kind, for machines with a Docker engine: a kind cluster, the three
# images built and loaded (operator, monitor, model server with the example models),
# the chart installed with them, then tests/e2e/kind: a healthy canary promoted and a
# drifting canary rolled back, against real pods. The operator reads the monitors
# directly (spec.analysis.provider.type: Direct), so no Prometheus is needed; traffic
# comes from a Job inside the cluster, through the Service, as kube-proxy splits it.
#
# Usage: hack/e2e-kind.sh [pytest args]   (make e2e-kind)
# Env: KIND_CLUSTER (default modelops-e2e), KEEP_CLUSTER=1 to keep it afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "e2e-kind: SKIPPED - no Docker engine here (kind runs Kubernetes nodes as Docker containers)." >&2
  echo "e2e-kind: the same scenarios run on the local control plane with 'make e2e'." >&2
  exit 0
fi

cluster="${KIND_CLUSTER:-modelops-e2e}"
kind="$BIN_DIR/kind"
if [[ ! -x "$kind" ]]; then
  log "installing kind $KIND_VERSION"
  GOBIN="$BIN_DIR" go install "sigs.k8s.io/kind@$KIND_VERSION"
fi
"$BIN_DIR/kubectl" version --client >/dev/null  # built by hack/build-binaries.sh

tag=e2e
log "building images (operator, monitor, model server)"
docker build -q -f operator/Dockerfile -t "modelops/operator:$tag" .
docker build -q -f services/Dockerfile.monitor -t "modelops/monitor:$tag" .
docker build -q -f services/Dockerfile.model --build-arg MODEL=churn-sklearn-v1 -t "modelops/churn:1.0.0" .
docker build -q -f services/Dockerfile.model --build-arg MODEL=churn-xgboost-v1 -t "modelops/churn:2.0.0" .

if ! "$kind" get clusters | grep -qx "$cluster"; then
  log "creating kind cluster $cluster"
  "$kind" create cluster --name "$cluster" --wait 3m
fi
kubeconfig="$MODELOPS_CACHE/kind-$cluster.kubeconfig"
"$kind" get kubeconfig --name "$cluster" >"$kubeconfig"
for image in "modelops/operator:$tag" "modelops/monitor:$tag" modelops/churn:1.0.0 modelops/churn:2.0.0; do
  "$kind" load docker-image --name "$cluster" "$image"
done

log "installing the chart"
KUBECONFIG="$kubeconfig" "$BIN_DIR/helm" upgrade --install modelops charts/modelops -n modelops --create-namespace \
  --set image.repository=modelops/operator --set "image.tag=$tag" --set image.pullPolicy=Never \
  --set monitorImage.repository=modelops/monitor --set "monitorImage.tag=$tag" \
  --wait --timeout 5m

status=0
MODELOPS_KIND_KUBECONFIG="$kubeconfig" "${VENV:-$REPO_ROOT/.venv}/bin/python" -m pytest tests/e2e/kind "$@" || status=$?
if [[ "${KEEP_CLUSTER:-}" != 1 ]]; then
  "$kind" delete cluster --name "$cluster"
fi
exit "$status"
