"""GitOps with a real GitOps tool: Flux's source-controller and kustomize-controller
(tests/flux.py) reconcile a Git repository holding a namespace and a ModelDeployment,
served over smart HTTP, while the real operator process rolls it out (kwok pods, custom
PromQL checks through a real Prometheus: vector(1) passes a `min: 1` check, vector(0)
fails it).

The promise under test: the operator never edits what the user owns, so Flux sees no
drift. Every forced reconcile (during a rollout, after it, after a rollback) must apply
the ModelDeployment "unchanged" (kustomize-controller's apply log) with no "configured"
Event, and `kubectl diff --server-side` of the repository's manifests, as Flux's field
manager, must be empty. The object's managedFields must name only Flux's apply, the
operator's status writes and the plugin's promote annotation. A hand edit of the spec
is the negative control: Flux reports it "configured" and puts it back.
"""

import json
import subprocess
import sys

import pytest
import yaml

from ..flux import KUSTOMIZE_MANAGER, GitServer, git_available, start_flux, wait_quiet
from ..kube import TEST_NAMESPACE_LABEL, wait_for
from .operator_harness import chart_operator, get_md, wait_phase

pytestmark = [pytest.mark.cluster, pytest.mark.skipif(not git_available(), reason="needs git")]

RELEASE = "modelops-op"
NAME = "churn"
KS = "apps"  # the Kustomization (and GitRepository)
PASS = [{"name": "healthy", "query": "vector(1)", "min": 1}]
FAIL = [{"name": "healthy", "query": "vector(0)", "min": 1}]
OPERATOR_MANAGER = "modelops-operator"
PLUGIN_MANAGER = "modelops-plugin"


def md(namespace, version, checks=PASS):
    return {
        "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "model": {"name": NAME, "version": version, "image": f"registry.example/{NAME}:{version}"},
            "replicas": 4,
            "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "Manual"},
                                                                {"weight": 50, "pause": "2s"}]}},
            "analysis": {"interval": "2s", "drift": {"enabled": False}, "slo": {"enabled": False},
                         "customChecks": checks},
            "progressDeadline": "2m",
        },
    }


def repo_files(namespace, version, checks=PASS):
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": namespace, "labels": {TEST_NAMESPACE_LABEL: "true"}}}
    return {"namespace.yaml": yaml.safe_dump(ns, sort_keys=False),
            f"{NAME}.yaml": yaml.safe_dump(md(namespace, version, checks), sort_keys=False)}


@pytest.fixture(scope="module")
def flux(cluster, tmp_path_factory):
    f = start_flux(cluster, tmp_path_factory.mktemp("flux"))
    yield f
    f.stop()


@pytest.fixture
def operator(cluster, crd, namespace, prometheus, tmp_path):
    with chart_operator(cluster, namespace, RELEASE, prometheus.url, tmp_path) as op:
        yield op


@pytest.fixture
def git(tmp_path):
    server = GitServer(tmp_path / "repo")
    yield server
    server.stop()


@pytest.fixture
def gitops(cluster, namespace, flux, git):
    """The GitRepository and Kustomization (both `apps` in the test's namespace); deleted,
    while the controllers still run to remove their finalizers, at the end."""
    yield
    print(flux.logs(30000))  # pytest shows it when the test failed
    cluster.kubectl("delete", "kustomization,gitrepository", KS, "-n", namespace, "--ignore-not-found",
                    "--wait=true", "--timeout=60s", check=False)


def create_flux_objects(cluster, namespace, url):
    cluster.apply([
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": KS, "namespace": namespace},
         "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}, "timeout": "60s"}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": {"name": KS, "namespace": namespace},
         # Long intervals: every reconcile in the test is forced, so each can be checked.
         "spec": {"interval": "10m", "retryInterval": "5s", "path": "./", "prune": False, "wait": False,
                  "timeout": "60s", "sourceRef": {"kind": "GitRepository", "name": KS}}},
    ])


class Observer:
    """What Flux did to the ModelDeployment: the action of each apply (kustomize-controller's
    log) and its "configured" Events."""

    def __init__(self, cluster, flux, namespace, work_dir):
        self.cluster, self.flux, self.namespace, self.work_dir = cluster, flux, namespace, work_dir
        self.md_id = f"ModelDeployment/{namespace}/{NAME}"

    def actions(self) -> list[str]:
        return [a["output"][self.md_id] for a in self.flux.applies(self.namespace, KS) if self.md_id in a["output"]]

    def configured_events(self) -> int:
        return sum(e.get("count") or 1 for e in self.flux.events(self.namespace, KS)
                   if f"{self.md_id} configured" in e.get("message", ""))

    def diff(self) -> subprocess.CompletedProcess:
        """kubectl diff --server-side of the repository's manifests as Flux applies them:
        with the two labels kustomize-controller adds to every object, as its field manager."""
        docs = []
        for path in sorted(self.work_dir.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                labels = doc["metadata"].setdefault("labels", {})
                labels.update({"kustomize.toolkit.fluxcd.io/name": KS,
                               "kustomize.toolkit.fluxcd.io/namespace": self.namespace})
                docs.append(doc)
        return self.cluster.kubectl("diff", "--server-side", "--force-conflicts",
                                    f"--field-manager={KUSTOMIZE_MANAGER}", "-f", "-",
                                    input=yaml.safe_dump_all(docs), check=False)

    def new_actions(self, before: int, count: int = 1) -> list[str]:
        # The apply is logged before the status that marks the reconcile handled; wait anyway.
        return wait_for(lambda: len(a := self.actions()) >= before + count and a[before:], 15,
                        message="kustomize-controller's apply log")

    def sync(self, git, sha) -> list[str]:
        """Fetches the commit (a forced GitRepository reconcile) and waits until the
        Kustomization applied it; returns the ModelDeployment's new actions."""
        before = len(self.actions())
        self.flux.reconcile("gitrepository", self.namespace, KS)
        self.flux.wait_applied(self.namespace, KS, sha)
        return self.new_actions(before)

    def assert_no_drift(self, when: str) -> None:
        before, events = len(self.actions()), self.configured_events()
        self.flux.reconcile("kustomization", self.namespace, KS)
        actions = self.new_actions(before)
        assert actions == ["unchanged"], f"{when}: Flux applied the ModelDeployment {actions}"
        assert self.configured_events() == events, f"{when}: a 'configured' Event"
        diff = self.diff()
        assert diff.returncode == 0 and not diff.stdout.strip(), f"{when}: kubectl diff:\n{diff.stdout}{diff.stderr}"


def plugin(cluster, namespace, *args):
    return subprocess.run([sys.executable, "-m", "modelops_operator.plugin", *args, "-n", namespace,
                           "--kubeconfig", str(cluster.kubeconfig)], capture_output=True, text=True, timeout=60)


def md_with_managed_fields(cluster, namespace) -> dict:
    return json.loads(cluster.kubectl("get", "md", NAME, "-n", namespace, "-o", "json",
                                      "--show-managed-fields").stdout)


def managers(obj) -> dict[tuple[str, str, str], dict]:
    """managedFields by (manager, operation, subresource) -> fieldsV1."""
    return {(m["manager"], m["operation"], m.get("subresource", "")): m.get("fieldsV1", {})
            for m in obj["metadata"].get("managedFields", [])}


def degraded(st) -> str | None:
    return next((c["status"] for c in st.get("conditions", []) if c["type"] == "Degraded"), None)


def test_flux_sees_no_drift_across_rollouts(cluster, namespace, operator, flux, git, gitops):
    obs = Observer(cluster, flux, namespace, git.work)

    # 1. The repository (a namespace and a ModelDeployment), reconciled by Flux.
    sha = git.commit(repo_files(namespace, "1.0.0"), "churn 1.0.0")
    create_flux_objects(cluster, namespace, git.url)
    flux.wait_applied(namespace, KS, sha, timeout=180)
    assert obs.actions() == ["created"]
    wait_phase(cluster, namespace, NAME, "Succeeded", "1.0.0")
    obs.assert_no_drift("after the first deployment")

    # 2. A commit changing spec.model starts a rollout; reconciles during it see no drift.
    sha = git.commit(repo_files(namespace, "2.0.0"), "churn 2.0.0")
    assert obs.sync(git, sha) == ["configured"]
    wait_phase(cluster, namespace, NAME, "Paused")
    obs.assert_no_drift("paused at the canary's manual step")
    assert plugin(cluster, namespace, "promote", NAME).returncode == 0
    wait_for(lambda: (get_md(cluster, namespace, NAME)["status"].get("phase") != "Paused"), 60,
             message="the promote to be taken")
    obs.assert_no_drift("mid-rollout, after the promote")
    st = wait_phase(cluster, namespace, NAME, "Succeeded", "2.0.0")
    assert st["history"][0]["outcome"] == "Succeeded"
    wait_quiet(6)  # a resync or two of the operator
    obs.assert_no_drift("after the rollout")

    # 3. managedFields: Flux's apply owns the spec, the operator only status, the plugin
    # only its command annotation.
    owners = managers(md_with_managed_fields(cluster, namespace))
    assert set(owners) == {(KUSTOMIZE_MANAGER, "Apply", ""), (OPERATOR_MANAGER, "Update", "status"),
                           (PLUGIN_MANAGER, "Update", "")}, sorted(owners)
    assert "f:spec" in owners[(KUSTOMIZE_MANAGER, "Apply", "")]
    assert "f:status" not in owners[(KUSTOMIZE_MANAGER, "Apply", "")]
    assert set(owners[(OPERATOR_MANAGER, "Update", "status")]) == {"f:status"}
    plugin_fields = owners[(PLUGIN_MANAGER, "Update", "")]
    assert set(plugin_fields) == {"f:metadata"} and set(plugin_fields["f:metadata"]) == {"f:annotations"}
    assert set(plugin_fields["f:metadata"]["f:annotations"]) - {"."} == {"f:modelops.io/promote"}

    # 4. A commit whose check fails: the analysis fails and the operator rolls back. The
    # spec stays as Git has it, status says Degraded until Git moves, Flux sees no drift.
    sha = git.commit(repo_files(namespace, "3.0.0", FAIL), "churn 3.0.0")
    assert obs.sync(git, sha) == ["configured"]
    # The failing check may roll back at the paused first step already; else promote to go on.
    phase = wait_for(lambda: (p := get_md(cluster, namespace, NAME)["status"].get("phase")) in (
        "Paused", "RolledBack") and p, 120, message="the failing rollout to pause or roll back")
    if phase == "Paused":
        assert plugin(cluster, namespace, "promote", NAME).returncode == 0
    st = wait_phase(cluster, namespace, NAME, "RolledBack", "2.0.0")
    assert st["lastVerdict"]["result"] == "Fail" and degraded(st) == "True"
    obs.assert_no_drift("after the rollback")
    wait_quiet(12)
    obj = get_md(cluster, namespace, NAME)
    assert obj["spec"]["model"]["version"] == "3.0.0" and obj["spec"]["analysis"]["customChecks"] == FAIL
    assert obj["status"]["phase"] == "RolledBack" and degraded(obj["status"]) == "True"
    obs.assert_no_drift("a while after the rollback")

    # Git moves: a new rollout, Degraded clears.
    sha = git.commit(repo_files(namespace, "4.0.0"), "churn 4.0.0")
    assert obs.sync(git, sha) == ["configured"]
    st = wait_phase(cluster, namespace, NAME, "Paused")
    assert degraded(st) == "False"
    assert plugin(cluster, namespace, "promote", NAME).returncode == 0
    st = wait_phase(cluster, namespace, NAME, "Succeeded", "4.0.0")
    assert degraded(st) == "False"
    obs.assert_no_drift("after Git moved on")
    assert {m[0] for m in managers(md_with_managed_fields(cluster, namespace))} == {
        KUSTOMIZE_MANAGER, OPERATOR_MANAGER, PLUGIN_MANAGER}

    # Negative control: a hand edit of the spec is drift, and Flux says so and puts it back.
    events = obs.configured_events()
    cluster.kubectl("patch", "md", NAME, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"replicas": 2}}))
    diff = obs.diff()
    assert diff.returncode == 1 and "replicas" in diff.stdout, diff.stdout + diff.stderr
    before = len(obs.actions())
    flux.reconcile("kustomization", namespace, KS)
    assert obs.new_actions(before) == ["configured"]
    wait_for(lambda: obs.configured_events() > events, 15, message="the 'configured' Event")
    assert get_md(cluster, namespace, NAME)["spec"]["replicas"] == 4
    obs.assert_no_drift("after Flux put the hand edit back")
