"""Both install paths work on a real API server and leave the cluster as they found it."""

import json
import time
from pathlib import Path

import pytest
import yaml

from .conftest import install_crd

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests/crds/modelops.io_modeldeployments.yaml"
# Kinds that change by themselves (heartbeats, audit of what we do) are not state.
TEST_PREFIX = "t-"  # tests/kube.py names test namespaces t-<test>-<random>
VOLATILE = {"events", "events.events.k8s.io", "leases.coordination.k8s.io"}


def snapshot(cluster, own=None):
    """Every object's identity, leaving out other tests' namespaces and the cluster IPs of
    their Services (they may still be terminating in the background) and things that
    change by themselves."""
    kinds = [k for k in cluster.kubectl("api-resources", "--verbs=list,get", "-o", "name").stdout.split()
             if k not in VOLATILE]
    items = json.loads(cluster.kubectl("get", ",".join(kinds), "-A", "-o", "json").stdout)["items"]

    def other_test(ns):
        return ns.startswith(TEST_PREFIX) and ns != own

    def owner_namespace(o):
        # A Service's cluster IP is a cluster-scoped IPAddress that names its Service.
        if o["kind"] == "IPAddress":
            return ((o.get("spec") or {}).get("parentRef") or {}).get("namespace") or ""
        return o["metadata"]["name"] if o["kind"] == "Namespace" else o["metadata"].get("namespace") or ""

    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items
            if not other_test(owner_namespace(o))}


def wait_until_same(cluster, before, own=None, timeout=120):
    # Garbage collection of ReplicaSets and Pods runs in the background.
    deadline = time.monotonic() + timeout
    while True:
        after = snapshot(cluster, own)
        if after == before or time.monotonic() > deadline:
            return after
        time.sleep(2)


def test_helm_install_and_uninstall(cluster, crd, namespace):
    before = snapshot(cluster, namespace)
    result = cluster.helm("install", "modelops", str(ROOT / "charts/modelops"), "-n", namespace,
                          "--wait", "--timeout", "3m", check=False)
    assert result.returncode == 0, result.stderr
    deploy = json.loads(cluster.kubectl("get", "deploy", "modelops-operator", "-n", namespace, "-o", "json").stdout)
    assert deploy["status"]["availableReplicas"] == 2  # a leader and a standby
    sa = cluster.kubectl("get", "sa", "modelops-operator", "-n", namespace, "-o", "name").stdout.strip()
    assert sa == "serviceaccount/modelops-operator"
    assert cluster.kubectl("get", "clusterrole", "modelops-operator", "-o", "name").returncode == 0

    result = cluster.helm("uninstall", "modelops", "-n", namespace, "--wait", check=False)
    assert result.returncode == 0, result.stderr
    after = wait_until_same(cluster, before, namespace)
    assert after == before, f"left behind: {after - before}; removed: {before - after}"
    # Helm never deletes CRDs (that would delete every ModelDeployment); it is still there.
    assert cluster.kubectl("get", "crd", "modeldeployments.modelops.io", check=False).returncode == 0


def test_kubectl_apply_k_and_delete_k(cluster, crd):
    # Start from a cluster without the CRD, so apply -k installs everything and
    # delete -k must remove everything it made.
    cluster.kubectl("delete", "-f", str(CRD_FILE), "--ignore-not-found", "--wait")
    try:
        before = snapshot(cluster)
        result = cluster.kubectl("apply", "-k", str(ROOT / "manifests"), check=False)
        assert result.returncode == 0, result.stderr
        ns = json.loads(cluster.kubectl("get", "ns", "modelops", "-o", "json").stdout)
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        # The restricted Pod Security admission lets the operator's pod in.
        rollout = cluster.kubectl("rollout", "status", "deploy/modelops-operator", "-n", "modelops",
                                  "--timeout=120s", check=False)
        assert rollout.returncode == 0, rollout.stderr
        assert cluster.kubectl("get", "crd", "modeldeployments.modelops.io", check=False).returncode == 0

        result = cluster.kubectl("delete", "-k", str(ROOT / "manifests"), "--wait", "--timeout=120s", check=False)
        assert result.returncode == 0, result.stderr
        after = wait_until_same(cluster, before)
        assert after == before, f"left behind: {after - before}; removed: {before - after}"
    finally:
        install_crd(cluster)


def test_helm_and_kustomize_render_the_same_objects(cluster):
    kustomized = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(ROOT / "manifests")).stdout) if d]
    helmed = [d for d in yaml.safe_load_all(cluster.helm("template", "modelops", str(ROOT / "charts/modelops"),
                                                         "--namespace", "modelops", "--include-crds").stdout) if d]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    kustomized = sorted((o for o in kustomized if o["kind"] != "Namespace"), key=key)
    assert [key(o) for o in kustomized] == sorted(map(key, helmed))
    assert kustomized == sorted(helmed, key=key)
