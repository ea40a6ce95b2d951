#!/usr/bin/env bash
# End-to-end on kind, for machines with a Docker engine: a kind cluster, the images
# built and loaded (operator, monitor, the generic model server with no model inside,
# and the Versity S3 gateway as the model store), Envoy Gateway installed
# (hack/kind/envoy-gateway.sh), the chart installed, then tests/e2e/kind: a model store
# in the cluster to which a Job trains and publishes the example models, then a healthy
# canary promoted and a drifting canary rolled back, against real pods that fetch their
# model from the store, and a canary whose traffic goes through Envoy Gateway. The operator
# reads the monitors directly (spec.analysis.provider.type: Direct), so no Prometheus is
# needed; traffic comes from a Job inside the cluster, through the Service as kube-proxy
# splits it, or through the Gateway's Envoy as the operator's HTTPRoute weights it.
#
# Without a container registry (MODELOPS_KIND_OFFLINE=1, or by default when Docker Hub's
# registry does not resolve) every image is built here from package registries only:
# hack/kind/build-offline-images.sh makes a Debian base, a Python base for our
# Dockerfiles (BASE_IMAGE), the control-plane images, the kind node image, and the
# envoy-gateway and Envoy images.
#
# The machine is made ready first (hack/kind/host.sh): the Docker engine started, or
# Debian's docker.io installed and started; where root lacks capabilities that `docker run
# --privileged` asks for, hack/kind/runc-drop-missing-caps installed as Docker's default
# runtime. Every change is logged; without a way to have Docker the run is SKIPPED.
#
# Usage: hack/e2e-kind.sh [pytest args]   (make e2e-kind)
# Env: KIND_CLUSTER (default modelops-e2e), KEEP_CLUSTER=1 to keep it afterwards,
#      MODELOPS_KIND_OFFLINE=1|0|auto (default auto),
#      MODELOPS_KIND_HOST_SETUP=0 to change nothing on the machine (only report).
# On failure the cluster's state (pods, events, operator log) is left in build/e2e-kind/.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

# What the machine needs (a running Docker engine, privileged containers that start,
# /lib/modules, debootstrap) is put in place by hack/kind/host.sh, which logs each change
# ("machine: CHANGED: ...") and sums them up; MODELOPS_KIND_HOST_SETUP=0 changes nothing.
# shellcheck source=kind/host.sh
source "$HACK_DIR/kind/host.sh"
# shellcheck source=kind/envoy-gateway.sh
source "$HACK_DIR/kind/envoy-gateway.sh"
if ! host_docker; then
  host_report
  echo "e2e-kind: SKIPPED - $host_skip_reason (kind runs Kubernetes nodes as Docker containers)." >&2
  echo "e2e-kind: the same scenarios run on the local control plane with 'make e2e'." >&2
  exit 0
fi

cluster="${KIND_CLUSTER:-modelops-e2e}"
kind="$BIN_DIR/kind"
kind_stamp="kind=$KIND_VERSION"
if [[ ! -x "$kind" || "$(cat "$BIN_DIR/.kind.stamp" 2>/dev/null)" != "$kind_stamp" ]]; then
  log "installing kind $KIND_VERSION"
  (cd / && GOBIN="$BIN_DIR" go install "sigs.k8s.io/kind@$KIND_VERSION")
  echo "$kind_stamp" >"$BIN_DIR/.kind.stamp"
fi
"$BIN_DIR/kubectl" version --client >/dev/null  # built by hack/build-binaries.sh

offline="${MODELOPS_KIND_OFFLINE:-auto}"
if [[ "$offline" == auto ]]; then
  # Name resolution only: no packet goes to a registry to find out.
  if getent hosts registry-1.docker.io >/dev/null 2>&1; then offline=0; else offline=1; fi
  ((offline)) && log "Docker Hub's registry does not resolve: building every image here (MODELOPS_KIND_OFFLINE=0 to pull instead)"
fi
timings=()
timed() { # label command...
  local start=$SECONDS label=$1 rc=0
  shift
  "$@" || rc=$?
  timings+=("$label: $((SECONDS - start))s")
  log "$label took $((SECONDS - start))s"
  return "$rc"
}

if [[ "$offline" == 1 ]]; then host_kind --offline; else host_kind; fi
host_report

build_args=()
node_image_args=()
if [[ "$offline" == 1 ]]; then
  timed "offline images" "$HACK_DIR/kind/build-offline-images.sh"
  build_args=(--build-arg "BASE_IMAGE=$KIND_OFFLINE_PYTHON_IMAGE")
  node_image_args=(--image "$KIND_OFFLINE_NODE_IMAGE")
fi

tag=e2e
model_image="modelops/model:$tag"
store_image="modelops/versitygw:$tag"
store_args=()
[[ "$offline" == 1 ]] && store_args=(--build-arg "BASE_IMAGE=$KIND_OFFLINE_BASE_IMAGE")
# (timed runs these where errexit does not apply: each step returns its own failure.)
build_images() {
  docker build -q "${build_args[@]}" -f operator/Dockerfile -t "modelops/operator:$tag" . >/dev/null || return
  docker build -q "${build_args[@]}" -f services/Dockerfile.monitor -t "modelops/monitor:$tag" . >/dev/null || return
  docker build -q "${build_args[@]}" -f services/Dockerfile.model -t "$model_image" . >/dev/null || return
  # The model store: the static versitygw binary, alone in its build context.
  local versitygw ctx
  versitygw="$("$HACK_DIR/build-versity.sh")" || return
  ctx="$(mktemp -d)"
  cp "$versitygw" "$ctx/versitygw"
  docker build -q "${store_args[@]}" -f hack/kind/versitygw.Dockerfile -t "$store_image" "$ctx" >/dev/null ||
    { rm -rf "$ctx"; return 1; }
  rm -rf "$ctx"
}
log "building images (operator, monitor, model server, model store)"
timed "images" build_images

config="$MODELOPS_CACHE/kind-$cluster.yaml"
{
  echo "kind: Cluster"
  echo "apiVersion: kind.x-k8s.io/v1alpha4"
  if [[ "$offline" == 1 ]]; then
    echo "networking:"
    echo "  # The offline node image has a ptp + host-local CNI config; no kindnetd image."
    echo "  disableDefaultCNI: true"
  fi
  echo "kubeadmConfigPatches:"
  echo "  # Kubernetes 1.35+ refuses cgroup v1 unless told (a cgroup v2 host ignores this)."
  echo "  - |"
  echo "    kind: KubeletConfiguration"
  echo "    failCgroupV1: false"
} >"$config"

kubeconfig="$MODELOPS_CACHE/kind-$cluster.kubeconfig"
kc() { "$BIN_DIR/kubectl" --kubeconfig "$kubeconfig" "$@"; }
status=0
finish() {
  local rc=$?
  ((status)) || status=$rc
  if ((status)) && [[ -s "$kubeconfig" ]]; then
    local out="$REPO_ROOT/build/e2e-kind"
    mkdir -p "$out"
    kc get pods -A -o wide >"$out/pods.txt" 2>&1 || true
    kc get events -A --sort-by=.lastTimestamp >"$out/events.txt" 2>&1 || true
    kc get modeldeployments -A -o yaml >"$out/modeldeployments.yaml" 2>&1 || true
    kc -n modelops logs deploy/modelops-operator --tail=2000 >"$out/operator.log" 2>&1 || true
    log "cluster state left in $out"
  fi
  if [[ "${KEEP_CLUSTER:-}" != 1 ]] && "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then
    "$kind" delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  log "timings: ${timings[*]}"
  ((${#host_changes[@]} == 0)) || log "machine changes made by this run: $(printf '%s; ' "${host_changes[@]}" | sed 's/; $//')"
  exit "$status"
}
trap finish EXIT

if ! "$kind" get clusters | grep -qx "$cluster"; then
  log "creating kind cluster $cluster"
  timed "cluster" "$kind" create cluster --name "$cluster" --config "$config" "${node_image_args[@]}" --wait 3m
fi
"$kind" get kubeconfig --name "$cluster" >"$kubeconfig"
load_images() {
  local image images=("modelops/operator:$tag" "modelops/monitor:$tag" "$model_image" "$store_image")
  [[ "$offline" == 1 ]] && images+=("$EG_OFFLINE_GATEWAY_IMAGE" "$EG_OFFLINE_ENVOY_IMAGE")
  for image in "${images[@]}"; do
    "$kind" load docker-image --name "$cluster" "$image" || return
  done
}
timed "load images" load_images

# Before the operator, so the Gateway API CRDs are there when it starts watching routes.
log "installing Envoy Gateway $ENVOY_GATEWAY_VERSION (GatewayClass $EG_GATEWAY_CLASS)"
timed "envoy gateway" eg_install "$kubeconfig" "$offline"

log "installing the chart"
timed "chart" "$BIN_DIR/helm" --kubeconfig "$kubeconfig" upgrade --install modelops charts/modelops \
  -n modelops --create-namespace \
  --set image.repository=modelops/operator --set "image.tag=$tag" --set image.pullPolicy=Never \
  --set monitorImage.repository=modelops/monitor --set "monitorImage.tag=$tag" \
  --wait --timeout 5m

timed "scenarios" env MODELOPS_KIND_KUBECONFIG="$kubeconfig" MODELOPS_KIND_GATEWAY_CLASS="$EG_GATEWAY_CLASS" \
  MODELOPS_KIND_MODEL_IMAGE="$model_image" MODELOPS_KIND_STORE_IMAGE="$store_image" \
  "${VENV:-$REPO_ROOT/.venv}/bin/python" -m pytest tests/e2e/kind --durations=0 "$@" || status=$?
