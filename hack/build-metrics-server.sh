#!/usr/bin/env bash
# Builds metrics-server, which serves the resource metrics API (metrics.k8s.io) the
# autoscaling tests' HorizontalPodAutoscalers read, from its Go module, pinned in
# hack/versions.env as METRICS_SERVER_VERSION:
#   metrics-server  go install sigs.k8s.io/metrics-server/cmd/metrics-server
# into $MODELOPS_CACHE/bin/metrics-server-$METRICS_SERVER_VERSION (default
# ~/.cache/modelops/bin/metrics-server-v0.9.0/metrics-server). Skipped when already built.
# The module's go.mod has no replace lines, so `go install pkg@version` builds it.
# Prints the binary's path on stdout.
# Usage: hack/build-metrics-server.sh [--force]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_force "$@"

MS_BIN_DIR="$MODELOPS_CACHE/bin/metrics-server-$METRICS_SERVER_VERSION"
bin="$MS_BIN_DIR/metrics-server"
stamp="metrics-server=$METRICS_SERVER_VERSION"
mkdir -p "$MS_BIN_DIR"
# One builder at a time (parallel test sessions may all call us).
exec 9>"$MS_BIN_DIR/.lock"
flock 9

if [[ $force == 0 && -x "$bin" && "$(cat "$MS_BIN_DIR/.metrics-server.stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi

tmp="$(mktemp -d "$MS_BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building metrics-server $METRICS_SERVER_VERSION"
start=$SECONDS
# The version variables metrics-server's Makefile sets (`metrics-server --version` prints them).
pkg=k8s.io/client-go/pkg/version
ldflags="-s -w -X $pkg.gitVersion=$METRICS_SERVER_VERSION -X $pkg.gitCommit=module-$METRICS_SERVER_VERSION"
ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# `go install pkg@version` builds outside any module (our go.mod is not involved).
(cd / && CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" \
  "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION")
mv -f "$tmp/metrics-server" "$bin"
echo "$stamp" >"$MS_BIN_DIR/.metrics-server.stamp"
log "built metrics-server in $((SECONDS - start))s: $(($(stat -c %s "$bin") / 1048576)) MiB"
echo "$bin"
