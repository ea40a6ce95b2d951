"""Scenarios 1 and 2 on kind, against real pods: a healthy canary is promoted, and a
canary whose inputs drift is rolled back by itself; then a canary whose traffic goes
through Envoy Gateway, weighted by the operator's HTTPRoute.

Run by `make e2e-kind` (hack/e2e-kind.sh builds and loads the images and installs Envoy
Gateway and the chart first); skipped anywhere else. Traffic comes from a Job inside the
cluster that posts to the ModelDeployment's Service, so kube-proxy splits it by
endpoints, or to the Gateway's address, so Envoy splits it by the route's weights; the
operator reads the monitor sidecars directly (provider Direct)."""

from __future__ import annotations

import os
import time
import uuid

import pytest

KUBECONFIG = os.environ.get("MODELOPS_KIND_KUBECONFIG")
GATEWAY_CLASS = os.environ.get("MODELOPS_KIND_GATEWAY_CLASS")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="kind end-to-end: run `make e2e-kind` on a machine with Docker")

MODELS = {"1.0.0": "churn-sklearn-v1", "2.0.0": "churn-xgboost-v1"}


@pytest.fixture
def api():
    from kubernetes import client, config

    c = config.new_client_from_config(config_file=KUBECONFIG)
    return client.CoreV1Api(c), client.BatchV1Api(c), client.CustomObjectsApi(c)


@pytest.fixture
def namespace(api):
    from kubernetes import client

    core, _, _ = api
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def churn(version: str, routing: dict | None = None) -> dict:
    model = MODELS[version]
    strategy = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "20s"}]}}
    if routing:
        strategy["trafficRouting"] = routing
    return {
        "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "churn"},
        "spec": {
            "model": {"name": "churn", "version": version, "image": f"modelops/churn:{version}",
                      "framework": "xgboost" if "xgboost" in model else "sklearn"},
            "replicas": 2,
            "monitor": {"window": "60s", "referenceProfile": {"path": f"/models/{model}/profile.json"}},
            "strategy": strategy,
            "analysis": {"interval": "10s", "minSampleSize": 100, "failureLimit": 2, "inconclusiveLimit": 12,
                         "provider": {"type": "Direct"},
                         "drift": {"maxDriftedFeatureShare": 0.1},
                         "slo": {"maxErrorRate": 0.02, "maxLatencyP99": "2s"}},
            "progressDeadline": "5m",
        },
    }


def apply(api, namespace: str, doc: dict) -> None:
    from kubernetes.client.rest import ApiException

    _, _, custom = api
    try:
        custom.create_namespaced_custom_object("modelops.io", "v1alpha1", namespace, "modeldeployments", doc)
    except ApiException as err:
        if err.status != 409:
            raise
        current = custom.get_namespaced_custom_object("modelops.io", "v1alpha1", namespace, "modeldeployments",
                                                      "churn")
        doc = {**doc, "metadata": {**doc["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        custom.replace_namespaced_custom_object("modelops.io", "v1alpha1", namespace, "modeldeployments", "churn",
                                                doc)


def status(api, namespace: str) -> dict:
    _, _, custom = api
    md = custom.get_namespaced_custom_object("modelops.io", "v1alpha1", namespace, "modeldeployments", "churn")
    return md.get("status") or {}


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def traffic(api, namespace: str, name: str, *shift: str, url: str | None = None) -> None:
    """A Job that replays churn rows at the Service (or `url`), from inside the cluster.
    A new connection per request: kube-proxy balances connections, so only then does the
    canary's new endpoint get its share."""
    _, batch, _ = api
    url = url or f"http://churn.{namespace}.svc"
    args = ["python", "/app/examples/traffic.py", "--url", url, "--rows", "200000",
            "--batch", "5", "--concurrency", "2", "--no-keepalive", *shift]
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "traffic", "image": "modelops/churn:1.0.0", "command": args,
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}}]}}}})


def stop_traffic(api, namespace: str, name: str) -> None:
    _, batch, _ = api
    batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")


def deploy_stable(api, namespace: str) -> str:
    apply(api, namespace, churn("1.0.0"))
    st = wait(lambda: (s := status(api, namespace)).get("phase") == "Succeeded" and s, 300, "1.0.0 available")
    return st["stable"]["revision"]


def test_healthy_canary_is_promoted(api, namespace):
    deploy_stable(api, namespace)
    traffic(api, namespace, "normal")
    apply(api, namespace, churn("2.0.0"))
    st = wait(lambda: (s := status(api, namespace)).get("phase") in ("Succeeded", "RolledBack")
              and not s.get("candidate") and s["stable"]["version"] == "2.0.0" and s, 600, "2.0.0 promoted")
    assert st["history"][0]["outcome"] == "Succeeded"
    assert st["lastVerdict"]["result"] == "Pass"
    stop_traffic(api, namespace, "normal")


def test_drifting_canary_is_rolled_back(api, namespace):
    stable = deploy_stable(api, namespace)
    traffic(api, namespace, "drifting", "--shift", "mean", "--feature", "monthly_charges", "--amount", "2")
    apply(api, namespace, churn("2.0.0"))
    st = wait(lambda: (s := status(api, namespace)).get("phase") == "RolledBack" and s, 600,
              "the drifting canary rolled back")
    assert st["stable"]["revision"] == stable and st["weights"]["candidate"] == 0
    assert {c["name"] for c in st["failedChecks"]} & {"drift.share", "drift.feature.monthly_charges"}
    stop_traffic(api, namespace, "drifting")


@pytest.mark.skipif(not GATEWAY_CLASS, reason="needs Envoy Gateway on the kind cluster (make e2e-kind installs it)")
def test_canary_through_envoy_gateway(api, namespace):
    """Every request goes to the Gateway's Envoy; only the HTTPRoute the operator writes
    sends some to the candidate. A Pass verdict needs minSampleSize requests seen by the
    candidate's monitor, so it is reached only if Envoy followed the route's weights."""
    _, _, custom = api
    gw = ("gateway.networking.k8s.io", "v1", namespace, "gateways")
    custom.create_namespaced_custom_object(*gw, {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "churn"},
        "spec": {"gatewayClassName": GATEWAY_CLASS,
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}})
    routing = {"gatewayAPI": {"parentRefs": [{"name": "churn"}]}}
    apply(api, namespace, churn("1.0.0", routing))
    wait(lambda: (s := status(api, namespace)).get("phase") == "Succeeded" and s, 300, "1.0.0 available")
    gateway = wait(lambda: (g := custom.get_namespaced_custom_object(*gw, "churn")).get("status", {}).get("addresses")
                   and g, 180, "the Gateway's address")
    address = gateway["status"]["addresses"][0]["value"]
    traffic(api, namespace, "gateway", url=f"http://{address}")
    apply(api, namespace, churn("2.0.0", routing))
    weights = set()

    def promoted():
        s = status(api, namespace)
        if s.get("candidate"):
            weights.add(s["weights"]["candidate"])
        return (s.get("phase") == "RolledBack" or s["stable"]["version"] == "2.0.0") and not s.get("candidate") and s

    st = wait(promoted, 600, "2.0.0 promoted through the gateway")
    assert st["stable"]["version"] == "2.0.0", st
    assert st["lastVerdict"]["result"] == "Pass", st["lastVerdict"]
    assert 50 in weights, weights
    route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes", "churn")
    conditions = {c["type"]: c["status"] for p in route["status"]["parents"] for c in p["conditions"]}
    assert conditions.get("Accepted") == "True", route["status"]
    stop_traffic(api, namespace, "gateway")
