"""Remote models in the planner: pinned before a rollout, re-pinned every
resolveInterval, a moved alias rolled out, a version mismatch refused, resolution and
fetch failures shown as conditions. The resolver pod is played by RegistrySim (what
`modelops resolve` would print); tests/e2e runs the real pod against real stores."""

import copy
from dataclasses import replace

import pytest

from modelops_operator.model_source import ResolverResult, fetch_error, resolver_result
from modelops_operator.planner import Observed

from .sim import Sim, deployed

DIGESTS = {v: "sha256:" + c * 64 for v, c in (("1", "a"), ("2", "b"), ("3", "c"))}
SPEC = {
    "model": {"name": "churn", "version": "1.0.0", "image": "reg/modelops-model:0.1.0",
              "uri": "models:/churn@champion", "credentialsSecretRef": {"name": "mlflow-creds"}},
    "replicas": 2,
    "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10s"}]}},
    "analysis": {"interval": "10s"},
}


class RegistrySim(Sim):
    """A resolver pod finishes one pass after it is asked for, with what the registry
    holds at that moment."""

    def __init__(self, spec, alias="1", semver="1.0.0"):
        super().__init__(spec)
        self.alias, self.semver = alias, {"1": "1.0.0", "2": "2.0.0", "3": "3.0.0"}
        self.semver["1"] = semver
        self.error: tuple[str, str] | None = None
        self.pods: dict[str, ResolverResult | None] = {}
        self.pods_asked: list[str] = []
        self.fetch_errors: dict[str, str] = {}

    def observed(self) -> Observed:
        base = super().observed()
        revisions = {r: replace(s, fetch_error=self.fetch_errors.get(r)) for r, s in base.revisions.items()}
        done = {n: r for n, r in self.pods.items() if r is not None}
        return Observed(revisions, base.route, base.gateways, done)

    def carry_out(self, p):
        # Pods asked for in the last pass finish now; the rest are deleted.
        for name in list(self.pods):
            if self.pods[name] is None:
                self.pods[name] = self.resolve(name)
        super().carry_out(p)
        wanted = p.resolver["metadata"]["name"] if p.resolver else None
        self.pods = {n: r for n, r in self.pods.items() if n == wanted}
        if wanted and wanted not in self.pods:
            self.pods[wanted] = None
            self.pods_asked.append(wanted)

    def resolve(self, name) -> ResolverResult:
        if self.error:
            return ResolverResult(name, False, None, *self.error)
        v = self.alias
        return ResolverResult(name, True, {"uri": f"models:/churn/{v}", "digest": DIGESTS[v], "version": self.semver[v],
                                           "registryVersion": v, "metrics": {"auc": 0.8 + int(v) / 100},
                                           "hyperparameters": {"C": v}, "source": {"runId": f"run{v}"}}, "Resolved", "")


def cond(sim, ctype):
    return next((c for c in sim.status.get("conditions", []) if c["type"] == ctype), {})


def deployment(sim):
    return [o for o in sim.objects.values() if o["kind"] == "Deployment"]


def test_nothing_runs_before_the_model_is_pinned_then_pods_get_only_the_pin():
    sim = RegistrySim(SPEC)
    p = sim.reconcile()
    assert sim.phase() == "Pending" and not [o for o in p.apply if o["kind"] == "Deployment"]
    assert cond(sim, "ModelResolved")["reason"] == "Resolving"
    pod = p.resolver
    assert pod["spec"]["containers"][0]["command"][:4] == ["modelops", "resolve", "--uri", "models:/churn@champion"]
    assert pod["spec"]["volumes"] == [{"name": "credentials",
                                       "secret": {"secretName": "mlflow-creds", "defaultMode": 0o440}}]
    sim.run(deployed)
    (dep,) = deployment(sim)
    pod_spec = dep["spec"]["template"]["spec"]
    (fetch,) = pod_spec["initContainers"]
    assert fetch["command"][:8] == ["modelops", "fetch", "--uri", "models:/churn/1", "--digest", DIGESTS["1"],
                                    "--version", "1.0.0"]
    env = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert env["MODELOPS_MODEL_URI"] == "models:/churn/1" and env["MODELOPS_MODEL_DIR"].endswith("a" * 64)
    assert sim.status["stable"]["model"]["registryVersion"] == "1"
    assert sim.status["stable"]["model"]["metrics"] == {"auc": 0.81}
    assert cond(sim, "ModelResolved")["status"] == "True"
    assert not sim.pods  # the resolver pod is gone once its result is recorded


def test_a_moved_alias_does_nothing_without_resolve_interval():
    sim = RegistrySim(SPEC)
    sim.run(deployed)
    asked = len(sim.pods_asked)
    sim.alias = "2"
    for _ in range(50):
        sim.reconcile(advance=10)
    assert len(sim.pods_asked) == asked and sim.status["stable"]["model"]["registryVersion"] == "1"


def test_with_resolve_interval_a_moved_alias_starts_a_rollout_with_both_versions_in_status():
    spec = copy.deepcopy(SPEC)
    spec["model"]["resolveInterval"] = "30s"
    spec["model"]["version"] = "1.0.0"
    sim = RegistrySim(spec)
    sim.semver["2"] = "1.0.0"  # 1.0.0 retrained (new data) and promoted in the registry
    sim.run(deployed)
    first = sim.status["stable"]["revision"]
    sim.alias = "2"
    sim.run(lambda s: s.status.get("candidate"), advance=5)
    assert sim.status["candidate"]["model"]["registryVersion"] == "2"
    assert sim.status["candidate"]["version"] == "1.0.0"
    assert sim.status["stable"]["model"]["registryVersion"] == "1"
    assert any(r == "RolloutStarted" and "models:/churn/2" in m for r, m in sim.events)
    sim.run(lambda s: s.status.get("stable", {}).get("revision") != first and deployed(s))
    assert sim.status["history"][0]["model"]["registryVersion"] == "2"


def test_a_pin_whose_metadata_declares_another_version_is_invalid_spec():
    sim = RegistrySim(SPEC, semver="1.1.0")
    for _ in range(5):
        sim.reconcile()
    inv = cond(sim, "InvalidSpec")
    assert inv["status"] == "True" and "1.0.0" in inv["message"] and "1.1.0" in inv["message"]
    assert not deployment(sim) and not sim.status.get("stable")
    asked = len(sim.pods_asked)
    for _ in range(20):
        sim.reconcile(advance=30)
    assert len(sim.pods_asked) == asked  # not asked again until the spec changes


def test_a_failed_resolution_is_a_condition_and_retried_with_backoff():
    sim = RegistrySim(SPEC)
    sim.error = ("ModelCredentialsRejected", "model resolution failed: bad credentials: InvalidAccessKeyId")
    for _ in range(120):
        sim.reconcile(advance=1)
    c = cond(sim, "ModelResolved")
    assert c["status"] == "False" and c["reason"] == "ModelCredentialsRejected" and "bad credentials" in c["message"]
    assert 2 <= len(sim.pods_asked) <= 5  # 15 s, 30 s, 60 s ... not a pod per pass
    assert not deployment(sim)
    sim.error = None
    sim.run(deployed, advance=10)
    assert cond(sim, "ModelResolved")["status"] == "True"


def test_a_candidate_whose_fetch_fails_is_rolled_back_at_once():
    spec = copy.deepcopy(SPEC)
    spec["model"]["uri"] = "s3://models/churn/1.0.0/"
    sim = RegistrySim(spec)
    sim.run(deployed)
    sim.set_spec(model__uri="s3://models/churn/2.0.0/", model__version="2.0.0")
    sim.semver["1"] = "2.0.0"  # what the new prefix holds
    sim.run(lambda s: s.status.get("candidate"))
    cand = sim.status["candidate"]["revision"]
    sim.fetch_errors[cand] = "model fetch failed: digest mismatch: model.joblib digest mismatch: want sha256:1, got sha256:2"
    sim.run(lambda s: s.phase() == "RolledBack")
    assert sim.status["history"][0]["reason"] == "ModelFetchFailed"
    assert "model.joblib digest mismatch" in cond(sim, "Degraded")["message"]


def test_a_stable_that_cannot_fetch_says_why():
    sim = RegistrySim(SPEC)
    sim.run(lambda s: s.status.get("stable"))
    sim.fetch_errors[sim.status["stable"]["revision"]] = "model fetch failed: store unreachable: connection refused"
    sim.reconcile()
    d = cond(sim, "Degraded")
    assert d["status"] == "True" and d["reason"] == "ModelFetchFailed" and "unreachable" in d["message"]


@pytest.mark.parametrize("message,ok,reason", [
    ('{"uri":"models:/churn/3","digest":"sha256:' + "c" * 64 + '","version":"1.0.0"}', True, "Resolved"),
    ('{"error":{"reason":"ModelNotFound","message":"model resolution failed: not found: alias x"}}', False,
     "ModelNotFound"),
    ("Traceback ...\nKeyError: boom", False, "ResolverFailed"),
])
def test_resolver_pod_results(message, ok, reason):
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Succeeded" if ok else "Failed", "containerStatuses": [
        {"name": "resolve", "state": {"terminated": {"exitCode": 0 if ok else 3, "message": message}}}]}}
    got = resolver_result(pod)
    assert (got.ok, got.reason) == (ok, reason)
    assert resolver_result({"metadata": {"name": "p"}, "status": {"phase": "Running"}}) is None


def test_fetch_errors_come_from_the_init_containers_last_termination():
    pod = {"status": {"initContainerStatuses": [{"name": "fetch-model", "state": {"waiting": {}}, "lastState": {
        "terminated": {"exitCode": 3, "message": "model fetch failed: bad credentials: SignatureDoesNotMatch\n"}}}]}}
    assert fetch_error(pod) == "model fetch failed: bad credentials: SignatureDoesNotMatch"
    ok = {"status": {"initContainerStatuses": [{"name": "fetch-model", "state": {"terminated": {"exitCode": 0}}}]}}
    assert fetch_error(ok) is None
    # A store that was down for a moment: the retry fetched, the pod starts.
    recovered = {"status": {"initContainerStatuses": [{"name": "fetch-model", "state": {"terminated": {"exitCode": 0}},
                                                        "lastState": pod["status"]["initContainerStatuses"][0]["lastState"]}]}}
    assert fetch_error(recovered) is None


def test_following_an_alias_another_semver_waits_for_a_spec_change():
    spec = copy.deepcopy(SPEC)
    spec["model"]["resolveInterval"] = "30s"
    sim = RegistrySim(spec)
    sim.run(deployed)
    sim.alias = "2"  # 2.0.0
    for _ in range(20):
        sim.reconcile(advance=5)
    inv = cond(sim, "InvalidSpec")
    assert inv["status"] == "True" and "2.0.0" in inv["message"] and "1.0.0" in inv["message"]
    assert not sim.status.get("candidate") and sim.status["stable"]["model"]["registryVersion"] == "1"
    sim.set_spec(model__version="2.0.0")
    sim.run(lambda s: s.status.get("candidate"), advance=5)
    assert sim.status["candidate"]["model"]["registryVersion"] == "2"


def test_a_mismatch_is_looked_at_again_when_spec_model_version_changes():
    sim = RegistrySim(SPEC, semver="1.1.0")
    for _ in range(5):
        sim.reconcile()
    assert cond(sim, "InvalidSpec")["status"] == "True"
    sim.set_spec(model__version="1.1.0")
    sim.run(deployed)
    assert sim.status["stable"]["version"] == "1.1.0" and cond(sim, "InvalidSpec")["status"] == "False"
