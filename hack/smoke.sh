#!/usr/bin/env bash
# Smoke test of the local cluster: up, nodes, a 3-replica Deployment whose pods turn
# Ready with loopback IPs that a Service's EndpointSlice lists (and that a real process
# can bind), Gateway API CRDs, a ServiceAccount token; then down (always, also on
# failure, unless MODELOPS_KEEP_CLUSTER=1). Replaces any running "modelops" cluster.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kc() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
step() { log "smoke: $*"; }
cleanup() {
  local rc=$?
  if [[ "${MODELOPS_KEEP_CLUSTER:-}" == 1 ]]; then
    step "keeping the cluster (MODELOPS_KEEP_CLUSTER=1)"
  else
    "$HACK_DIR/cluster.sh" down
  fi
  if ((rc == 0)); then step "PASSED"; else step "FAILED (exit $rc)"; fi
}

start=$SECONDS
"$HACK_DIR/build-binaries.sh"
step "binaries ready in $((SECONDS - start))s"
"$HACK_DIR/cluster.sh" down
trap cleanup EXIT

start=$SECONDS
"$HACK_DIR/cluster.sh" up >/dev/null
step "cluster.sh up (cold) took $((SECONDS - start))s"
start=$SECONDS
"$HACK_DIR/cluster.sh" up >/dev/null
step "cluster.sh up (warm, reused) took $((SECONDS - start))s"

"$BIN_DIR/kube-apiserver" --version
kc version
kc get nodes -o wide

step "3-replica Deployment"
kc create namespace smoke
kc apply -n smoke -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example.invalid/web:1 # never pulled: kwok nodes run no containers
        ports: [{containerPort: 18080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 18080}]
EOF
kc rollout status -n smoke deployment/web --timeout=60s
kc get pods -n smoke -o wide
mapfile -t pod_ips < <(kc get pods -n smoke -l app=web -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort)
[[ ${#pod_ips[@]} == 3 ]] || die "expected 3 pod IPs, got: ${pod_ips[*]}"
for ip in "${pod_ips[@]}"; do
  [[ "$ip" == 127.1.* ]] || die "pod IP $ip is not in 127.1.0.0/16"
done
ready="$(kc get deployment web -n smoke -o jsonpath='{.status.readyReplicas}')"
[[ "$ready" == 3 ]] || die "readyReplicas=$ready"

step "EndpointSlice lists the pod IPs"
want="${pod_ips[*]}"
for _ in $(seq 60); do
  got="$(kc get endpointslices -n smoke -l kubernetes.io/service-name=web \
    -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}{"\n"}{end}' | sort | xargs)"
  [[ "$got" == "$want" ]] && break
  sleep 0.5
done
kc get endpointslices -n smoke -o wide
[[ "$got" == "$want" ]] || die "EndpointSlice has [$got], pods have [$want]"

step "a real process can listen on a pod IP"
python3 - "${pod_ips[0]}" <<'EOF'
import socket, sys
srv = socket.create_server((sys.argv[1], 18080))
socket.create_connection((sys.argv[1], 18080), timeout=2).close()
srv.close()
print(f"listened and connected on {sys.argv[1]}:18080")
EOF

step "Gateway API CRDs"
kc get crd httproutes.gateway.networking.k8s.io gateways.gateway.networking.k8s.io

step "ServiceAccount token authenticates, RBAC denies"
token="$(kc create token default -n smoke)"
server="$(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
ca="$(mktemp)"
kc config view --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$ca"
as_sa=("$BIN_DIR/kubectl" --kubeconfig /dev/null --server "$server" --certificate-authority "$ca" --token "$token")
"${as_sa[@]}" auth whoami
if "${as_sa[@]}" get pods -n smoke 2>/dev/null; then die "RBAC let the default ServiceAccount list pods"; fi
rm -f "$ca"

"$BIN_DIR/helm" version --short
