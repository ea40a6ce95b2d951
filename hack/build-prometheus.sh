#!/usr/bin/env bash
# Builds the one Prometheus every test and the demo run (tests/prom.py),
# from its Go module, once: cached as $MODELOPS_CACHE/bin/prometheus-$VERSION/prometheus.
# Static configs are part of every build; of the service discoveries only Kubernetes'
# is compiled in (the remove_all_sd build tag), which keeps a cold build to a few
# minutes. Prints the binary's path.
set -euo pipefail
VERSION=2.54.1  # Go module github.com/prometheus/prometheus v0.54.1
cache="${MODELOPS_CACHE:-$HOME/.cache/modelops}/bin/prometheus-v$VERSION"
bin="$cache/prometheus"
if [[ ! -x "$bin" ]]; then
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [[ ! -x "$bin" ]]; then
    # The module's go.mod has replace directives, so `go install pkg@version` refuses
    # it: build inside the downloaded module, where it is the main module.
    dir="$(cd / && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/prometheus@v0.${VERSION#2.}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    echo "building prometheus $VERSION (kubernetes discovery only) from $dir" >&2
    (cd "$dir" && go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=$VERSION" -o "$bin.tmp" ./cmd/prometheus)
    mv "$bin.tmp" "$bin"
  fi
fi
echo "$bin"
