"""The chart's ServiceAccount can do what the operator needs, and nothing more.

Every check is made with the ServiceAccount's own token against the real API
server's RBAC authorizer: real requests where they are cheap, and
SelfSubjectAccessReviews (kubectl auth can-i) for the rest of the matrix."""

import json
import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

CHART = str(Path(__file__).resolve().parents[2] / "charts/modelops")
RELEASE = "modelops-rbac"
SA = f"{RELEASE}-operator"

NEEDED = [  # (verb, resource, where): what the operator does
    ("get", "modeldeployments.modelops.io", "ns"),
    ("list", "modeldeployments.modelops.io", "all"),
    ("watch", "modeldeployments.modelops.io", "all"),
    ("patch", "modeldeployments.modelops.io", "ns"),
    ("patch", "modeldeployments.modelops.io/status", "ns"),
    ("update", "modeldeployments.modelops.io/status", "ns"),
    ("create", "deployments.apps", "ns"),
    ("patch", "deployments.apps", "ns"),
    ("delete", "deployments.apps", "ns"),
    ("watch", "deployments.apps", "all"),
    ("create", "services", "ns"),
    ("patch", "services", "ns"),
    ("create", "configmaps", "ns"),
    ("create", "httproutes.gateway.networking.k8s.io", "ns"),
    ("patch", "httproutes.gateway.networking.k8s.io", "ns"),
    ("watch", "httproutes.gateway.networking.k8s.io", "all"),
    ("get", "gateways.gateway.networking.k8s.io", "ns"),
    ("create", "horizontalpodautoscalers.autoscaling", "ns"),  # spec.autoscaling, one per track
    ("patch", "horizontalpodautoscalers.autoscaling", "ns"),
    ("delete", "horizontalpodautoscalers.autoscaling", "ns"),
    ("watch", "horizontalpodautoscalers.autoscaling", "all"),
    ("get", "gatewayclasses.gateway.networking.k8s.io", "cluster"),
    ("list", "pods", "all"),
    ("create", "pods", "ns"),  # resolver pods: they read the credentials Secret, the operator never does
    ("create", "secrets", "ns"),  # the pods' feedback key, created once; never read
    ("delete", "pods", "ns"),
    ("create", "events", "ns"),
    ("create", "events.events.k8s.io", "ns"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
    ("watch", "namespaces", "cluster"),
    ("create", "leases.coordination.k8s.io", "ns"),  # leader election, in its own namespace
]
REFUSED = [  # what it must never be able to do
    ("get", "secrets", "ns"),
    ("list", "secrets", "all"),
    ("watch", "secrets", "all"),
    ("update", "secrets", "ns"),
    ("patch", "secrets", "ns"),
    ("delete", "secrets", "ns"),
    ("get", "pods/proxy", "ns"),  # unless monitorAccess=proxy
    ("update", "pods", "ns"),
    ("create", "pods/exec", "ns"),
    ("get", "pods/log", "ns"),
    ("create", "modeldeployments.modelops.io", "ns"),
    ("delete", "modeldeployments.modelops.io", "ns"),
    ("create", "clusterroles.rbac.authorization.k8s.io", "cluster"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", "cluster"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "ns"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
    ("delete", "namespaces", "cluster"),
    ("create", "namespaces", "cluster"),
    ("patch", "nodes", "cluster"),
    ("create", "serviceaccounts/token", "ns"),
    ("impersonate", "serviceaccounts", "ns"),
    ("create", "daemonsets.apps", "ns"),
    ("update", "horizontalpodautoscalers.autoscaling/status", "ns"),  # the HPA controller's own
    ("create", "gateways.gateway.networking.k8s.io", "ns"),
    ("patch", "gateways.gateway.networking.k8s.io", "ns"),
    ("patch", "gatewayclasses.gateway.networking.k8s.io", "cluster"),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io", "cluster"),
    ("list", "leases.coordination.k8s.io", "ns"),
    ("delete", "leases.coordination.k8s.io", "ns"),
    ("patch", "leases.coordination.k8s.io", "ns"),
    ("create", "leases.coordination.k8s.io", "all"),  # not outside its own namespace
    ("get", "leases.coordination.k8s.io", "ns"),  # only its own Lease, by name (below)
]


@pytest.fixture
def operator_kubeconfig(cluster, crd, namespace, tmp_path):
    """Installs the chart into `namespace` and returns a kubeconfig holding only the
    operator ServiceAccount's token (no admin client certificate)."""
    cluster.helm("install", RELEASE, CHART, "-n", namespace, "--wait", "--timeout", "3m")
    try:
        path = cluster.service_account_kubeconfig(namespace, SA, tmp_path / "operator.kubeconfig", duration="10m")
        yield path
    finally:
        cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)


def as_operator(cluster, kubeconfig, *args, input=None):
    return subprocess.run([str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), *args],
                          input=input, capture_output=True, text=True)


def can_i(cluster, kubeconfig, namespace, verb, resource, where):
    scope = {"ns": ["-n", namespace], "all": ["--all-namespaces"], "cluster": []}[where]
    # `kubectl auth can-i get pods/proxy` would ask about a pod named "proxy".
    resource, _, sub = resource.partition("/")
    subresource = [f"--subresource={sub}"] if sub else []
    result = as_operator(cluster, kubeconfig, "auth", "can-i", verb, resource, *subresource, *scope)
    return result.stdout.strip() == "yes"


def test_operator_can_do_its_work_and_nothing_more(cluster, namespace, operator_kubeconfig):
    whoami = as_operator(cluster, operator_kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{namespace}:{SA}"
    missing = [c for c in NEEDED if not can_i(cluster, operator_kubeconfig, namespace, *c)]
    assert not missing, f"the operator lacks: {missing}"
    excess = [c for c in REFUSED if can_i(cluster, operator_kubeconfig, namespace, *c)]
    assert not excess, f"the operator may: {excess}"


def test_real_requests_as_the_operator(cluster, namespace, operator_kubeconfig):
    name = f"probe-{uuid.uuid4().hex[:6]}"
    created = as_operator(cluster, operator_kubeconfig, "create", "deployment", name, "-n", namespace,
                          "--image=registry.example/churn:1.3.0")
    assert created.returncode == 0, created.stderr
    assert as_operator(cluster, operator_kubeconfig, "delete", "deployment", name, "-n", namespace).returncode == 0

    secret = as_operator(cluster, operator_kubeconfig, "get", "secrets", "-n", namespace)
    assert secret.returncode != 0 and "Forbidden" in secret.stderr
    # A feedback key Secret: created once; a second create is AlreadyExists (which the
    # operator takes as done), and the operator can neither read nor change it.
    key = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-feedback-key"},
                      "data": {"key": "c2VjcmV0"}})
    created = as_operator(cluster, operator_kubeconfig, "create", "-n", namespace, "-f", "-", input=key)
    assert created.returncode == 0, created.stderr
    again = as_operator(cluster, operator_kubeconfig, "create", "-n", namespace, "-f", "-", input=key)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    for verb in (["get", "secret", f"{name}-feedback-key"], ["delete", "secret", f"{name}-feedback-key"]):
        refused = as_operator(cluster, operator_kubeconfig, *verb, "-n", namespace)
        assert refused.returncode != 0 and "Forbidden" in refused.stderr, verb
    role = as_operator(cluster, operator_kubeconfig, "create", "clusterrole", name, "--verb=get", "--resource=secrets")
    assert role.returncode != 0 and "Forbidden" in role.stderr
    ns = as_operator(cluster, operator_kubeconfig, "delete", "namespace", "kube-system", "--dry-run=server")
    assert ns.returncode != 0 and "Forbidden" in ns.stderr


def test_watch_namespaces_limits_the_reach(cluster, crd, namespace):
    release = "modelops-scoped"
    other = f"{namespace}-other"[:63]
    cluster.kubectl("create", "namespace", other)
    try:
        cluster.helm("install", release, CHART, "-n", namespace,
                     "--set", f"watchNamespaces={{{namespace}}}", "--wait", "--timeout", "3m")
        who = f"system:serviceaccount:{namespace}:{release}-operator"
        allowed = cluster.kubectl("auth", "can-i", "create", "deployments", "-n", namespace, "--as", who, check=False)
        denied = cluster.kubectl("auth", "can-i", "create", "deployments", "-n", other, "--as", who, check=False)
        assert allowed.stdout.strip() == "yes"
        assert denied.stdout.strip() == "no"
    finally:
        cluster.helm("uninstall", release, "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_leader_election_lease_as_the_operator(cluster, namespace, operator_kubeconfig):
    """The operator reads, creates and updates its one Lease, and no other."""
    def lease(name, holder):
        return json.dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})

    created = as_operator(cluster, operator_kubeconfig, "create", "-f", "-", input=lease(SA, "a"))
    assert created.returncode == 0, created.stderr
    got = as_operator(cluster, operator_kubeconfig, "get", "lease", SA, "-n", namespace, "-o", "json")
    assert got.returncode == 0 and json.loads(got.stdout)["spec"]["holderIdentity"] == "a"
    replaced = as_operator(cluster, operator_kubeconfig, "replace", "-f", "-", input=lease(SA, "b"))
    assert replaced.returncode == 0, replaced.stderr
    other = as_operator(cluster, operator_kubeconfig, "get", "lease", "kube-controller-manager", "-n", "kube-system")
    assert other.returncode != 0 and "Forbidden" in other.stderr
    assert as_operator(cluster, operator_kubeconfig, "delete", "lease", SA, "-n", namespace).returncode != 0
    for verb in ("get", "update"):
        allowed = as_operator(cluster, operator_kubeconfig, "auth", "can-i", verb, f"leases.coordination.k8s.io/{SA}",
                              "-n", namespace)
        assert allowed.stdout.strip() == "yes", verb
