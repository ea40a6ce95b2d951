"""The Helm chart lints clean, renders least-privilege RBAC and a restricted pod,
validates its values, and manifests/ is exactly what it renders."""

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/modelops"


def helm(tools, *args, check=True):
    return subprocess.run([str(tools / "helm"), *args], capture_output=True, text=True, check=check)


def render(tools, *args):
    out = helm(tools, "template", "modelops", str(CHART), "--namespace", "modelops", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def test_helm_lint_is_clean(tools):
    result = helm(tools, "lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_manifests_are_the_rendered_chart(tools):
    rendered = subprocess.run([str(ROOT / "manifests/render.sh"), str(tools / "helm")],
                              capture_output=True, text=True, check=True).stdout
    assert (ROOT / "manifests/operator.yaml").read_text() == rendered, "run `make manifests`"


def test_operator_pod_is_restricted(tools):
    (deploy,) = by_kind(render(tools), "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]["memory"]
    assert "--all-namespaces" in container["args"]


def test_rbac_is_enumerated(tools):
    objs = render(tools)
    roles = by_kind(objs, "ClusterRole") + by_kind(objs, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"{role['metadata']['name']}: wildcard in {key}"
            assert not rule.get("nonResourceURLs")
    granted = {(g, r, v) for role in roles for rule in role["rules"]
               for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("modelops.io", "modeldeployments/status", "patch") in granted
    # Credentials reach pods only, by mount: the operator may create the feedback key's
    # Secret once, and never read, list, watch, change or delete a Secret.
    assert {v for _, r, v in granted if r == "secrets"} == {"create"}
    # Resolver pods are created and deleted; no pod is ever updated, exec'd into or read from.
    assert {("", "pods", "create"), ("", "pods", "delete")} <= granted
    assert not any(r in {"pods/exec", "pods/attach", "pods/log", "pods/portforward"} for _, r, _ in granted)
    assert ("", "pods", "update") not in granted
    # The pod proxy reaches any port of any pod: granted only to an operator that needs it.
    assert ("", "pods/proxy", "get") not in granted


def test_pod_proxy_access_is_granted_only_when_asked_for(tools):
    objs = render(tools, "--set", "monitorAccess=proxy")
    rules = [rule for role in by_kind(objs, "ClusterRole") for rule in role["rules"]]
    assert {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]} in rules
    (deploy,) = by_kind(objs, "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELOPS_MONITOR_ACCESS"] == "proxy"


def test_watch_namespaces_binds_per_namespace(tools):
    objs = render(tools, "--set", "watchNamespaces={ml,fraud}")
    bindings = [b for b in by_kind(objs, "RoleBinding") if b["roleRef"]["kind"] == "ClusterRole"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["fraud", "ml"]
    # Only the read-only discovery role stays cluster-wide.
    assert [b["roleRef"]["name"] for b in by_kind(objs, "ClusterRoleBinding")] == ["modelops-operator-discovery"]
    (deploy,) = by_kind(objs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml" in args and "--namespace=fraud" in args and "--all-namespaces" not in args


def test_optional_service_monitor_and_dashboard(tools):
    assert not by_kind(render(tools), "ServiceMonitor")
    objs = render(tools, "--set", "serviceMonitor.enabled=true", "--set", "dashboard.enabled=true")
    (monitor,) = by_kind(objs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "monitor"
    dashboards = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("dashboard")]
    assert dashboards and '"panels"' in dashboards[0]["data"]["modelops.json"]


@pytest.mark.parametrize("setting,field", [
    ("logLevel=verbose", "logLevel"),
    ("watchNamespaces={Bad_NS}", "watchNamespaces"),
    ("prometheus.url=prometheus:9090", "prometheus.url"),
    ("image.pullPolicy=Sometimes", "image.pullPolicy"),
    ("replicas=0", "replicas"),
    ("leaderElection.leaseDuration=-1", "leaseDuration"),
    ("podDisruptionBudget.enabled=yes", "enabled"),
    ("monitorAccess=sidecar", "monitorAccess"),
])
def test_values_schema_rejects_bad_values(tools, setting, field):
    result = helm(tools, "template", "modelops", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert field.split(".")[-1] in result.stderr, result.stderr


def test_two_replicas_elect_a_leader_on_a_lease(tools):
    objs = render(tools)
    (deploy,) = by_kind(objs, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"  # only the leader writes, so overlap is safe
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "--leader-elect" in args and "--lease-name=modelops-operator" in args
    assert {"--lease-duration=15", "--renew-deadline=10", "--retry-period=2"} <= set(args)  # client-go's defaults
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["POD_NAME"] == "metadata.name" and env["POD_NAMESPACE"] == "metadata.namespace"
    (pdb,) = by_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("args", [(), ("--set", "watchNamespaces={ml,fraud}")])
def test_the_lease_is_the_only_namespaced_grant_of_its_own(tools, args):
    objs = render(tools, *args)
    (role,) = [r for r in by_kind(objs, "Role") if r["metadata"]["name"].endswith("leader-election")]
    assert role["metadata"]["namespace"] == "modelops"  # the operator's own, whatever it watches
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["modelops-operator"],
         "verbs": ["get", "update"]},
    ]
    (binding,) = [b for b in by_kind(objs, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]]
    assert binding["metadata"]["namespace"] == "modelops" and binding["roleRef"]["kind"] == "Role"
    # No cluster-wide role grants anything on Leases.
    assert not any("leases" in rule["resources"] for r in by_kind(objs, "ClusterRole") for rule in r["rules"])


def test_leader_election_settings_and_switching_it_off(tools):
    objs = render(tools, "--set", "leaderElection.leaseDuration=30", "--set", "leaderElection.leaseName=ops-lease",
                  "--set", "replicas=3")
    (deploy,) = by_kind(objs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease-duration=30" in args and "--lease-name=ops-lease" in args
    assert deploy["spec"]["replicas"] == 3
    off = render(tools, "--set", "leaderElection.enabled=false", "--set", "replicas=1")
    (deploy,) = by_kind(off, "Deployment")
    assert "--no-leader-elect" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not by_kind(off, "PodDisruptionBudget")  # it would block every drain of a single replica
    assert not [r for r in by_kind(off, "Role") if "leader" in r["metadata"]["name"]]
    two = helm(tools, "template", "modelops", str(CHART), "--set", "leaderElection.enabled=false", check=False)
    assert two.returncode != 0 and "needs leaderElection.enabled" in two.stderr
