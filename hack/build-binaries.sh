#!/usr/bin/env bash
# Builds the local test cluster's binaries from Go modules into
# $MODELOPS_CACHE/bin/$KUBE_VERSION (default ~/.cache/modelops/bin/v1.36.3):
#   kube-apiserver kube-controller-manager kube-scheduler kubectl etcd  (hack/k8s module)
#   kwok kwokctl                                                        (go install)
#   helm                                                                (go install)
# With --kind, also what an offline kind node image needs (hack/kind/build-offline-images.sh):
#   kubelet kubeadm kube-proxy                                          (hack/k8s module)
#   coredns                                                             (go install)
# With --gateways, also the Gateway API implementations of the gateway tests
# (hack/build-gateways.sh: envoy-gateway, Envoy, traefik).
# Only missing (or stale: pinned version changed) binaries are built.
# Usage: hack/build-binaries.sh [--force] [--kind] [--gateways]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

force=0 kind=0 gateways=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --kind) kind=1 ;;
    --gateways) gateways=1 ;;
    *) die "unknown argument $arg (usage: hack/build-binaries.sh [--force] [--kind] [--gateways])" ;;
  esac
done

mkdir -p "$BIN_DIR"
# One builder at a time (parallel test sessions may all call us).
exec 9>"$BIN_DIR/.lock"
flock 9

# A binary is up to date when it exists and its stamp records the pinned version.
up_to_date() { # name stamp
  [[ $force == 0 && -x "$BIN_DIR/$1" && "$(cat "$BIN_DIR/.$1.stamp" 2>/dev/null)" == "$2" ]]
}
# Moves a freshly built binary into place, then writes its stamp.
install_bin() { # src name stamp
  mv -f "$1" "$BIN_DIR/$2"
  echo "$3" >"$BIN_DIR/.$2.stamp"
}
report() { # name
  printf '  %-24s %4s MiB  %s\n' "$1" "$(($(stat -c %s "$BIN_DIR/$1") / 1048576))" "$BIN_DIR/$1" >&2
}

tmp="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
total_start=$SECONDS

# --- Kubernetes + etcd, from the helper module -------------------------------
# The servers are built with hack/k8s/patch-kubernetes.py's patch (loopback endpoint
# IPs allowed, see there), so they truthfully report gitTreeState=dirty; kubectl and
# etcd do not contain the patched package and are clean.
patch_id="$(sha256sum "$HACK_DIR/k8s/patch-kubernetes.py" | cut -c1-12)"
kube_stamp="kube=$KUBE_VERSION etcd=$ETCD_VERSION patch=$patch_id"
kube_minor="${KUBE_VERSION#v1.}"
kube_minor="${kube_minor%%.*}"
declare -A kube_pkgs=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [etcd]=go.etcd.io/etcd/server/v3
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kubeadm]=k8s.io/kubernetes/cmd/kubeadm
  [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
)
kube_ldflags() { # tree-state
  local pkg flags="-s -w"
  # Same version variables that kubernetes' hack/lib/version.sh sets.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
    flags+=" -X $pkg.gitTreeState=$1 -X $pkg.buildDate=$build_date -X $pkg.gitCommit="
  done
  # etcd's version string is a constant of the module; only its git SHA is a build var.
  flags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION"
  echo "$flags"
}
# Builds the given binaries in one `go build` (one compile graph, both cores busy).
build_kube() { # tree-state names...
  local state=$1 name pkgs=()
  shift
  for name in "$@"; do pkgs+=("${kube_pkgs[$name]}"); done
  log "building $* (gitTreeState=$state)"
  local start=$SECONDS
  # -o DIR/ with several main packages writes one binary per package, named after its
  # last path element; go.etcd.io/etcd/server/v3 becomes "server".
  (cd "$tmp/mod" && go build -trimpath -ldflags "$(kube_ldflags "$state")" -o "$tmp/" "${pkgs[@]}")
  if [[ -e "$tmp/server" ]]; then mv "$tmp/server" "$tmp/etcd"; fi
  for name in "$@"; do install_bin "$tmp/$name" "$name" "$kube_stamp"; done
  log "built $* in $((SECONDS - start))s"
}
servers=() clients=()
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  up_to_date "$name" "$kube_stamp" || servers+=("$name")
done
for name in kubectl etcd; do
  up_to_date "$name" "$kube_stamp" || clients+=("$name")
done
node=()
if ((kind)); then
  for name in kubelet kubeadm kube-proxy; do
    up_to_date "$name" "$kube_stamp" || node+=("$name")
  done
fi
if ((${#servers[@]} + ${#clients[@]} + ${#node[@]})); then
  grep -q "k8s.io/kubernetes $KUBE_VERSION\$" "$HACK_DIR/k8s/go.mod" ||
    die "hack/k8s/go.mod is not at $KUBE_VERSION: run hack/k8s/gen-gomod.sh"
  kube_src="$MODELOPS_CACHE/src/kubernetes-$KUBE_VERSION-$patch_id"
  python3 "$HACK_DIR/k8s/patch-kubernetes.py" \
    "$(go_mod_field "k8s.io/kubernetes@$KUBE_VERSION" Dir)" "$kube_src"
  # Build in a copy of the helper module that swaps in the patched k8s.io/kubernetes,
  # so the committed hack/k8s/go.mod never names a path on this machine. (A go.work
  # with the same replace breaks: workspace mode loads the whole unpruned module graph,
  # whose old google.golang.org/genproto makes imports ambiguous.)
  mkdir "$tmp/mod"
  cp "$HACK_DIR/k8s/go.mod" "$HACK_DIR/k8s/go.sum" "$HACK_DIR/k8s/tools.go" "$tmp/mod/"
  echo "replace k8s.io/kubernetes $KUBE_VERSION => $kube_src" >>"$tmp/mod/go.mod"
fi
# Both builds share one compile cache; kubectl and etcd do not link the patched package.
if ((${#servers[@]})); then build_kube dirty "${servers[@]}"; fi
if ((${#clients[@]})); then build_kube clean "${clients[@]}"; fi
# The node binaries say dirty if they link the patched package, clean otherwise.
if ((${#node[@]})); then
  dirty=() clean=()
  for name in "${node[@]}"; do
    if (cd "$tmp/mod" && go list -deps "${kube_pkgs[$name]}") | grep -qx k8s.io/kubernetes/pkg/apis/core/validation; then
      dirty+=("$name")
    else
      clean+=("$name")
    fi
  done
  if ((${#dirty[@]})); then build_kube dirty "${dirty[@]}"; fi
  if ((${#clean[@]})); then build_kube clean "${clean[@]}"; fi
fi

# --- kwok, kwokctl ---------------------------------------------------------------
# `go install pkg@version` builds outside any module (our go.mod is not involved).
kwok_stamp="kwok=$KWOK_VERSION kube=$KUBE_VERSION"
if ! up_to_date kwok "$kwok_stamp" || ! up_to_date kwokctl "$kwok_stamp"; then
  log "building kwok, kwokctl $KWOK_VERSION"
  start=$SECONDS
  # KubeVersion is kwokctl's default --kube-version (it picks component flags by it).
  (cd / && GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION")
  install_bin "$tmp/kwok" kwok "$kwok_stamp"
  install_bin "$tmp/kwokctl" kwokctl "$kwok_stamp"
  log "built kwok, kwokctl in $((SECONDS - start))s"
fi

# --- helm ----------------------------------------------------------------------------
helm_stamp="helm=$HELM_VERSION"
if ! up_to_date helm "$helm_stamp"; then
  log "building helm $HELM_VERSION"
  start=$SECONDS
  helm_gomod="$(go_mod_field "helm.sh/helm/v3@$HELM_VERSION" GoMod)"
  # helm reports the Kubernetes version of its client-go as its default capabilities.
  helm_k8s_minor="$(awk '$1=="k8s.io/client-go"{split($2,v,"."); print v[2]; exit}' "$helm_gomod")"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
  done
  (cd / && GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  install_bin "$tmp/helm" helm "$helm_stamp"
  log "built helm in $((SECONDS - start))s"
fi

# --- coredns (--kind) -------------------------------------------------------------
coredns_stamp="coredns=$COREDNS_VERSION"
if ((kind)) && ! up_to_date coredns "$coredns_stamp"; then
  log "building coredns $COREDNS_VERSION"
  start=$SECONDS
  # GitCommit is what `coredns -version` prints beside the version.
  (cd / && GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=module-$COREDNS_VERSION" \
    "github.com/coredns/coredns@$COREDNS_VERSION")
  install_bin "$tmp/coredns" coredns "$coredns_stamp"
  log "built coredns in $((SECONDS - start))s"
fi

log "binaries in $BIN_DIR ($((SECONDS - total_start))s):"
names=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl helm)
((kind)) && names+=(kubelet kubeadm kube-proxy coredns)
for name in "${names[@]}"; do
  report "$name"
done

# --- Gateway API implementations (--gateways) -----------------------------------------
# Its own script, lock and cache directory (they do not depend on KUBE_VERSION).
if ((gateways)); then
  if ((force)); then "$HACK_DIR/build-gateways.sh" --force; else "$HACK_DIR/build-gateways.sh"; fi
fi
