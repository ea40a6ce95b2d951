#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller, the GitOps tool the GitOps test
# runs as local processes (tests/flux.py), pinned in hack/versions.env:
#   source-controller     the hack/flux/source-controller tool module
#   kustomize-controller  the hack/flux/kustomize-controller tool module
# (`go install ...@version` refuses their go.mod's replace lines; see hack/flux/gen-gomod.sh)
# into $MODELOPS_CACHE/bin/flux/<controller>-<version>/<controller> (default
# ~/.cache/modelops/bin/flux/source-controller-v1.9.6/source-controller). One after the
# other: each link takes ~2 GB. Only missing (or stale: pinned version changed) ones are built.
# Prints the binaries' paths on stdout.
# Usage: hack/build-flux.sh [--force]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_force "$@"

FLUX_BIN_DIR="$MODELOPS_CACHE/bin/flux"
mkdir -p "$FLUX_BIN_DIR"
# One builder at a time (parallel test sessions may all call us).
exec 9>"$FLUX_BIN_DIR/.lock"
flock 9

build() { # controller version
  local name="$1" version="$2"
  local dir="$FLUX_BIN_DIR/$name-$version"
  local bin="$dir/$name" stamp="$name=$version"
  if [[ $force == 0 && -x "$bin" && "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp" ]]; then
    echo "$bin"
    return
  fi
  grep -q "github.com/fluxcd/$name $version\$" "$HACK_DIR/flux/$name/go.mod" ||
    die "hack/flux/$name/go.mod is not at $version: run hack/flux/gen-gomod.sh"
  mkdir -p "$dir"
  local tmp
  tmp="$(mktemp -d "$dir/.build.XXXXXX")"
  log "building $name $version"
  local start=$SECONDS
  # The flags of the controllers' Makefiles (static, stripped).
  (cd "$HACK_DIR/flux/$name" && go build -trimpath -ldflags "-s -w" \
    -tags netgo,osusergo,static_build -o "$tmp/$name" "github.com/fluxcd/$name")
  mv -f "$tmp/$name" "$bin"
  rm -rf "$tmp"
  echo "$stamp" >"$dir/.stamp"
  log "built $name in $((SECONDS - start))s: $(($(stat -c %s "$bin") / 1048576)) MiB"
  echo "$bin"
}

build source-controller "$FLUX_SOURCE_CONTROLLER_VERSION"
build kustomize-controller "$FLUX_KUSTOMIZE_CONTROLLER_VERSION"
