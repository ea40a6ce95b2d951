#!/usr/bin/env bash
# Builds every image `make e2e-kind` needs on a machine that reaches package registries
# but no container registry (hack/e2e-kind.sh runs it with MODELOPS_KIND_OFFLINE=1):
#
#   $KIND_OFFLINE_BASE_IMAGE    Debian bookworm (debootstrap, then docker import)
#   $KIND_OFFLINE_PYTHON_IMAGE  Debian's Python 3.11 + venv, standing in for python:3.11-slim
#   registry.k8s.io/...         the control-plane images, tagged as `kubeadm config images
#                               list` names them: kube-apiserver, kube-controller-manager,
#                               kube-scheduler, kube-proxy, etcd and coredns from the Go-built
#                               binaries in $BIN_DIR (hack/build-binaries.sh --kind), pause
#                               from Debian's catatonit
#   $KIND_OFFLINE_NODE_IMAGE    the kind node: hack/kind/node.Dockerfile, with the
#                               control-plane images imported into its containerd
#   $EG_OFFLINE_GATEWAY_IMAGE   envoy-gateway and Envoy on the Debian base, from the binaries
#   $EG_OFFLINE_ENVOY_IMAGE     of hack/build-gateways.sh (hack/kind/envoy-gateway.sh)
#
# Each image is rebuilt only when its inputs changed: a stamp per image in
# $MODELOPS_CACHE/kind-offline records them with the image id it produced.
# Usage: hack/kind/build-offline-images.sh [--force]
# Env: MODELOPS_DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=envoy-gateway.sh
source "$(dirname "${BASH_SOURCE[0]}")/envoy-gateway.sh"

force=0
[[ "${1:-}" == "--force" ]] && force=1
mirror="${MODELOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
kind_dir="$HACK_DIR/kind"
state="$MODELOPS_CACHE/kind-offline"
mkdir -p "$state"
exec 8>"$state/.lock"
flock 8

tmp="$(mktemp -d "$state/.build.XXXXXX")"
build_container=""
cleanup() {
  if [[ -n "$build_container" ]]; then docker rm -f "$build_container" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# An image is up to date when it exists and its stamp records these inputs and its id.
stamp_file() { echo "$state/$(echo "$1" | tr '/:' '__').stamp"; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }
up_to_date() { # image inputs
  local id
  id="$(image_id "$1")" || return 1
  [[ $force == 0 && "$(cat "$(stamp_file "$1")" 2>/dev/null)" == "$2 $id" ]]
}
stamp() { # image inputs
  echo "$2 $(image_id "$1")" >"$(stamp_file "$1")"
}
sha() { cat "$@" | sha256sum | cut -c1-12; }
build_if_stale() { # image context inputs
  if ! up_to_date "$1" "$3"; then
    log "building $1"
    build "$1" "$2"
    stamp "$1" "$3"
  fi
}
build() { # image context docker-build-args...
  local image=$1 context=$2
  shift 2
  docker build -q -t "$image" "$@" "$context" >/dev/null
}

total_start=$SECONDS

# --- Debian base ---------------------------------------------------------------------
base="$KIND_OFFLINE_BASE_IMAGE"
# The machine's own CAs (Debian's place for local ones) go into the image's store too:
# behind a TLS-inspecting proxy, apt and pip in our image builds need them as the host does.
mapfile -t local_cas < <(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | sort)
base_inputs="debootstrap=minbase+ca-certificates suite=bookworm mirror=$mirror"
if ((${#local_cas[@]})); then base_inputs+=" local-cas=$(sha "${local_cas[@]}")"; fi
if ! up_to_date "$base" "$base_inputs"; then
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
  log "building $base (debootstrap bookworm from $mirror)"
  start=$SECONDS
  rootfs="$tmp/rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
  if ((${#local_cas[@]})); then
    log "adding the machine's local CAs: ${local_cas[*]}"
    cp "${local_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
  fi
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  # As Debian's own container images: no recommends, no caches, no package lists.
  echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/90modelops-no-recommends"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  tar -C "$rootfs" --numeric-owner -c . |
    docker import \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
  stamp "$base" "$base_inputs"
  log "built $base in $((SECONDS - start))s"
fi
base_id="$(image_id "$base")"

# --- Python base -----------------------------------------------------------------------
python="$KIND_OFFLINE_PYTHON_IMAGE"
python_inputs="base=$base_id dockerfile=$(sha "$kind_dir/python.Dockerfile")"
if ! up_to_date "$python" "$python_inputs"; then
  log "building $python"
  start=$SECONDS
  mkdir "$tmp/python"
  build "$python" "$tmp/python" -f "$kind_dir/python.Dockerfile" --build-arg "BASE_IMAGE=$base"
  stamp "$python" "$python_inputs"
  log "built $python in $((SECONDS - start))s"
fi

# --- Kubernetes binaries and control-plane images -----------------------------------------
"$HACK_DIR/build-binaries.sh" --kind --gateways
mapfile -t kube_images < <("$BIN_DIR/kubeadm" config images list --kubernetes-version "$KUBE_VERSION")
((${#kube_images[@]} >= 7)) || die "kubeadm config images list gave: ${kube_images[*]}"
pause_image=""
for image in "${kube_images[@]}"; do
  name="${image##*/}"
  tag="${name#*:}"
  name="${name%%:*}"
  packages="" binary="" entrypoint=""
  case "$name" in
    kube-apiserver | kube-controller-manager | kube-scheduler)
      binary="$name" ;;
    kube-proxy)
      # iptables/nftables and conntrack, which kube-proxy runs.
      binary="$name" packages="iptables nftables conntrack ipset kmod" ;;
    etcd)
      [[ "$tag" == "${ETCD_VERSION#v}-"* ]] ||
        die "kubeadm $KUBE_VERSION wants etcd $tag, hack/versions.env has ETCD_VERSION=$ETCD_VERSION"
      binary=etcd ;;
    coredns)
      [[ "$tag" == "$COREDNS_VERSION" ]] ||
        die "kubeadm $KUBE_VERSION wants coredns $tag, hack/versions.env has COREDNS_VERSION=$COREDNS_VERSION"
      binary=coredns entrypoint='["/usr/local/bin/coredns"]' ;;
    pause)
      # catatonit -P sleeps as PID 1 until SIGINT/SIGTERM, reaping zombies: what pause does.
      pause_image="$image"
      packages=catatonit entrypoint='["/usr/bin/catatonit", "-P"]' ;;
    *) die "kubeadm lists an image this script does not know: $image" ;;
  esac
  ctx="$tmp/img-$name"
  mkdir -p "$ctx/bin"
  bin_stamp=""
  if [[ -n "$binary" ]]; then
    cp "$BIN_DIR/$binary" "$ctx/bin/"
    bin_stamp="$(cat "$BIN_DIR/.$binary.stamp") $(sha "$BIN_DIR/$binary")"
  fi
  {
    echo "FROM $base"
    if [[ -n "$packages" ]]; then
      echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \\"
      echo " && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb"
    fi
    echo "COPY bin/ /usr/local/bin/"
    if [[ -n "$entrypoint" ]]; then echo "ENTRYPOINT $entrypoint"; fi
  } >"$ctx/Dockerfile"
  inputs="base=$base_id dockerfile=$(sha "$ctx/Dockerfile") bin=$bin_stamp"
  build_if_stale "$image" "$ctx" "$inputs"
  rm -rf "$ctx"
done
[[ -n "$pause_image" ]] || die "kubeadm lists no pause image"

# --- Envoy Gateway and Envoy (hack/kind/envoy-gateway.sh) ------------------------------------
for binary in envoy-gateway envoy; do
  image="$EG_OFFLINE_GATEWAY_IMAGE"
  [[ "$binary" == envoy ]] && image="$EG_OFFLINE_ENVOY_IMAGE"
  src="$(eg_binary_path "$binary")"
  ctx="$tmp/img-$binary"
  mkdir -p "$ctx/bin"
  cp "$src" "$ctx/bin/"
  eg_dockerfile "$binary" >"$ctx/Dockerfile"
  inputs="base=$base_id dockerfile=$(sha "$ctx/Dockerfile") bin=$(cat "$(dirname "$src")/.$binary.stamp") $(sha "$src")"
  build_if_stale "$image" "$ctx" "$inputs"
  rm -rf "$ctx"
done

# --- kind node image ------------------------------------------------------------------------
node="$KIND_OFFLINE_NODE_IMAGE"
kind_src="$(go_mod_field "sigs.k8s.io/kind@$KIND_VERSION" Dir)/images/base/files"
ids=""
for image in "${kube_images[@]}"; do ids+="$(image_id "$image") "; done
node_inputs="base=$base_id kind=$KIND_VERSION dockerfile=$(sha "$kind_dir/node.Dockerfile" "$kind_dir"/*.conflist)"
node_inputs+=" bin=$(sha "$BIN_DIR/.kubelet.stamp" "$BIN_DIR/kubelet" "$BIN_DIR/kubeadm" "$BIN_DIR/kubectl")"
node_inputs+=" images=$(echo "$ids" | sha256sum | cut -c1-12)"
if ! up_to_date "$node" "$node_inputs"; then
  log "building $node"
  start=$SECONDS
  ctx="$tmp/node"
  mkdir -p "$ctx/bin" "$ctx/cni"
  # The module cache is read-only: copy, then give the files the modes kind's image has.
  cp -r "$kind_src" "$ctx/kind"
  chmod -R u+w "$ctx/kind"
  find "$ctx/kind" -type d -exec chmod 0755 {} +
  find "$ctx/kind" -type f -exec chmod 0644 {} +
  chmod 0755 "$ctx/kind/usr/local/bin/"* "$ctx/kind/kind/bin/"*
  cp "$BIN_DIR/kubelet" "$BIN_DIR/kubeadm" "$BIN_DIR/kubectl" "$ctx/bin/"
  cp "$kind_dir"/*.conflist "$ctx/cni/"
  build "$node-base" "$ctx" -f "$kind_dir/node.Dockerfile" \
    --build-arg "BASE_IMAGE=$base" --build-arg "KUBE_VERSION=$KUBE_VERSION" --build-arg "PAUSE_IMAGE=$pause_image"
  rm -rf "$ctx"
  log "node filesystem built in $((SECONDS - start))s; importing the control-plane images"

  # As `kind build node-image`: containerd in a build container, the images imported
  # (content only, unpacked on first use), then the container committed.
  build_container="modelops-kind-build-$$"
  # --init: an init that reaps containerd when it is stopped (sleep as PID 1 would not).
  docker run -d --init --name "$build_container" --entrypoint=sleep --security-opt seccomp=unconfined \
    "$node-base" infinity >/dev/null
  docker exec "$build_container" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
  docker exec "$build_container" bash -c \
    'for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /var/log/containerd-build.log; exit 1'
  for image in "${kube_images[@]}"; do
    docker save "$image" |
      docker exec -i "$build_container" ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
  done
  docker exec "$build_container" ctr --namespace=k8s.io images list -q | grep '^registry.k8s.io/' >&2
  docker exec "$build_container" bash -c 'pkill containerd; while pgrep -x containerd >/dev/null; do sleep 0.2; done; rm -f /var/log/containerd-build.log'
  docker commit \
    -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' \
    "$build_container" "$node" >/dev/null
  docker rm -f "$build_container" >/dev/null
  build_container=""
  docker rmi "$node-base" >/dev/null
  stamp "$node" "$node_inputs"
  log "built $node in $((SECONDS - start))s"
fi
log "offline kind images ready ($((SECONDS - total_start))s)"
