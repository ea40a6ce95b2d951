#!/usr/bin/env bash
# Builds the Versity S3 gateway (versitygw), the S3-compatible store the S3 tests run as
# a local process (tests/s3store.py), pinned in hack/versions.env as VERSITYGW_VERSION:
#   versitygw  go install github.com/versity/versitygw/cmd/versitygw  -> $VERSITY_BIN_DIR
# into $MODELOPS_CACHE/bin/versitygw-$VERSITYGW_VERSION (default
# ~/.cache/modelops/bin/versitygw-v1.8.0/versitygw). Skipped when already built.
# Prints the binary's path on stdout.
# Usage: hack/build-versity.sh [--force]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_force "$@"

VERSITY_BIN_DIR="$MODELOPS_CACHE/bin/versitygw-$VERSITYGW_VERSION"
bin="$VERSITY_BIN_DIR/versitygw"
stamp="versitygw=$VERSITYGW_VERSION"
mkdir -p "$VERSITY_BIN_DIR"
# One builder at a time (parallel test sessions may all call us).
exec 9>"$VERSITY_BIN_DIR/.lock"
flock 9

if [[ $force == 0 && -x "$bin" && "$(cat "$VERSITY_BIN_DIR/.versitygw.stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi

tmp="$(mktemp -d "$VERSITY_BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building versitygw $VERSITYGW_VERSION"
start=$SECONDS
# The same version variables versitygw's Makefile sets (`versitygw --version` prints them).
pkg=main
ldflags="-s -w -X $pkg.Version=$VERSITYGW_VERSION -X $pkg.Build=module-$VERSITYGW_VERSION"
ldflags+=" -X $pkg.BuildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# `go install pkg@version` builds outside any module (our go.mod is not involved).
(cd / && CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" \
  "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
mv -f "$tmp/versitygw" "$bin"
echo "$stamp" >"$VERSITY_BIN_DIR/.versitygw.stamp"
log "built versitygw in $((SECONDS - start))s: $(($(stat -c %s "$bin") / 1048576)) MiB"
echo "$bin"
