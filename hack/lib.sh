# Shared settings for hack/*.sh (sourced, not run).
# Everything heavy (binaries, cluster state) lives in the cache outside the clone so
# CI runs and later sessions on the same machine reuse it.

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

MODELOPS_CACHE="${MODELOPS_CACHE:-$HOME/.cache/modelops}"
BIN_DIR="$MODELOPS_CACHE/bin/$KUBE_VERSION"
CLUSTER_NAME="${MODELOPS_CLUSTER_NAME:-modelops}"
CLUSTER_DIR="$MODELOPS_CACHE/clusters/$CLUSTER_NAME"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig.yaml"
# Gateway API implementations (hack/build-gateways.sh): envoy-gateway and traefik in
# GATEWAY_BIN_DIR; Envoy where Envoy Gateway's host mode (func-e) looks for it under its
# data home: $ENVOY_DATA_HOME/envoy-versions/$ENVOY_VERSION/bin/envoy.
GATEWAY_DIR="$MODELOPS_CACHE/gateways"
GATEWAY_BIN_DIR="$GATEWAY_DIR/bin"
ENVOY_DATA_HOME="$GATEWAY_DIR/envoy-data"
# kwokctl keeps its state (pki, etcd data, logs, pids) under $KWOK_WORKDIR/clusters/<name>.
export KWOK_WORKDIR="$MODELOPS_CACHE/kwok"

# Images hack/kind/build-offline-images.sh builds for `make e2e-kind` without a
# container registry (MODELOPS_KIND_OFFLINE=1).
KIND_OFFLINE_BASE_IMAGE=modelops-offline/debian:bookworm
KIND_OFFLINE_PYTHON_IMAGE=modelops-offline/python:3.11-bookworm
KIND_OFFLINE_NODE_IMAGE="modelops-offline/kind-node:$KUBE_VERSION"

# All binaries are pure Go; static builds need no C toolchain.
export CGO_ENABLED=0

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# The one flag of the build scripts: --force (build again) sets force=1.
parse_force() {
  force=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --force) force=1 ;;
      *) die "unknown argument $arg (usage: $(basename "$0") [--force])" ;;
    esac
  done
}

# Prints one field (GoMod, Dir, ...) of `go mod download -json MODULE@VERSION`.
# Runs outside any module so it never edits a go.mod; uses python3, not jq (not everywhere).
go_mod_field() { # module@version field
  (cd / && go mod download -json "$1") |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d[sys.argv[1]])' "$2"
}
