"""Autoscaling during rollouts (autoscaling.py), on the in-memory cluster with a
simulated HorizontalPodAutoscaler: the test decides what the HPA would (its metrics are
not simulated), the operator must size around it."""

import copy
import dataclasses

import pytest

from modelops_operator.autoscaling import ratio_replicas, share
from modelops_operator.naming import LABEL_REVISION
from modelops_operator.planner import plan
from modelops_operator.spec import SpecError, parse

from .sim import Sim, deployed

AUTO = {"minReplicas": 2, "maxReplicas": 20, "targetCPUUtilizationPercentage": 70}
CANARY = {
    "model": {"name": "churn", "version": "1.0.0", "image": "reg/churn:1.0.0"},
    "replicas": 4,
    "resources": {"requests": {"cpu": "100m"}},
    "autoscaling": AUTO,
    "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "Manual"}, {"weight": 50}]}},
    "analysis": {"interval": "10s"},
}
GATEWAY = {"gatewayAPI": {"parentRefs": [{"name": "ml-gateway"}]}}


class AutoSim(Sim):
    """Sim plus HPAs: an HPA exists once applied, until deleted; like the real one it
    keeps its Deployment at least at minReplicas, and `hpa_scale` is its decision."""

    def observed(self):
        obs = super().observed()
        return dataclasses.replace(obs, autoscalers=frozenset(self.hpas()))

    def hpas(self) -> dict[str, dict]:
        return {k[1]: o for k, o in self.objects.items() if k[0] == "HorizontalPodAutoscaler"}

    def reconcile(self, *args, **kwargs):
        for hpa in self.hpas().values():
            rev = hpa["metadata"]["labels"][LABEL_REVISION]
            if rev in self.replicas and self.replicas[rev] < hpa["spec"]["minReplicas"]:
                self.replicas[rev] = hpa["spec"]["minReplicas"]
        return super().reconcile(*args, **kwargs)

    def carry_out(self, p):
        for name in p.unscaled:
            self.objects.pop(("HorizontalPodAutoscaler", name), None)
        super().carry_out(p)

    def hpa_scale(self, rev: str, replicas: int) -> None:
        assert self.hpa_of(rev) is not None, f"{rev} has no HPA to scale it"
        self.replicas[rev] = replicas  # through the scale subresource; pods ready next pass

    def hpa_of(self, rev: str) -> dict | None:
        return self.hpas().get(f"churn-{rev}")

    def stable_rev(self) -> str:
        return self.status["stable"]["revision"]

    def cand_rev(self) -> str:
        return self.status["candidate"]["revision"]


def v2(sim):
    sim.set_spec(model__version="2.0.0", model__image="reg/churn:2.0.0")


def live(spec=CANARY) -> AutoSim:
    sim = AutoSim(spec)
    sim.run(deployed)
    return sim


def paused(sim):
    return sim.phase() == "Paused"


# --- the spec -----------------------------------------------------------------------
def spec_error(**changes) -> SpecError:
    spec = copy.deepcopy(CANARY)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    with pytest.raises(SpecError) as err:
        parse(spec)
    return err.value


def test_spec_parses_a_cpu_and_a_pods_target():
    auto = parse(CANARY).autoscaling
    assert (auto.min_replicas, auto.max_replicas, auto.cpu_utilization) == (2, 20, 70)
    spec = {**CANARY, "autoscaling": {"minReplicas": 1, "maxReplicas": 5,
                                      "podsMetric": {"name": "bentoml_service_request_in_progress",
                                                     "targetAverageValue": "4"}}}
    spec.pop("resources")
    auto = parse(spec).autoscaling
    assert auto.metrics() == [{"type": "Pods", "pods": {
        "metric": {"name": "bentoml_service_request_in_progress"},
        "target": {"type": "AverageValue", "averageValue": "4"}}}]
    assert parse({k: v for k, v in CANARY.items() if k != "autoscaling"}).autoscaling is None


@pytest.mark.parametrize("auto, field", [
    ({**AUTO, "minReplicas": 0}, "spec.autoscaling.minReplicas"),
    ({**AUTO, "minReplicas": 5, "maxReplicas": 4}, "spec.autoscaling.maxReplicas"),
    ({"minReplicas": 1, "maxReplicas": 4}, "spec.autoscaling"),
    ({**AUTO, "podsMetric": {"name": "x", "targetAverageValue": "1"}}, "spec.autoscaling"),
    ({**AUTO, "targetCPUUtilizationPercentage": 0}, "spec.autoscaling.targetCPUUtilizationPercentage"),
    ({"minReplicas": 1, "maxReplicas": 4, "podsMetric": {"name": "x"}},
     "spec.autoscaling.podsMetric.targetAverageValue"),
])
def test_invalid_autoscaling_names_the_field(auto, field):
    assert spec_error(autoscaling=auto).field == field


def test_the_cpu_target_needs_a_cpu_request_on_the_model_container():
    err = spec_error(resources={"requests": {"memory": "1Gi"}})
    assert err.field == "spec.resources.requests.cpu"


def test_an_invalid_autoscaling_spec_changes_nothing():
    sim = live()
    before = copy.deepcopy(sim.objects)
    sim.spec["resources"] = {}
    p = sim.reconcile()
    assert p.apply == [] and p.unscaled == [] and p.scale == {} and p.delete == []
    assert sim.objects == before
    invalid = [c for c in sim.status["conditions"] if c["type"] == "InvalidSpec"][0]
    assert invalid["status"] == "True" and "spec.resources.requests.cpu" in invalid["message"]


# --- no rollout ---------------------------------------------------------------------
def test_the_stable_gets_an_hpa_and_the_operator_applies_what_it_set():
    sim = live()
    rev = sim.stable_rev()
    hpa = sim.hpa_of(rev)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"churn-{rev}"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 20)
    assert hpa["spec"]["metrics"][0]["containerResource"] == {
        "name": "cpu", "container": "model", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert hpa["metadata"]["labels"]["modelops.io/track"] == "stable"
    # spec.replicas is the starting size; then the HPA's decision stands.
    assert sim.replicas[rev] == 4
    sim.hpa_scale(rev, 7)
    for _ in range(3):
        sim.reconcile()
    assert sim.replicas[rev] == 7
    assert sim.obj("Deployment", f"churn-{rev}")["spec"]["replicas"] == 7  # applied as the HPA set it
    assert sim.status["stable"]["replicas"] == 7


def test_turning_autoscaling_off_deletes_the_hpa():
    sim = live()
    rev = sim.stable_rev()
    sim.spec.pop("autoscaling")
    sim.reconcile()
    assert sim.hpa_of(rev) is None
    sim.reconcile()
    assert sim.replicas[rev] == 4 and sim.last.unscaled == []


# --- replica-ratio canary -----------------------------------------------------------
def test_ratio_replicas_hold_the_share():
    assert [ratio_replicas(s, 25) for s in (1, 3, 4, 6, 12)] == [1, 1, 1, 2, 4]
    assert ratio_replicas(5, 50) == 5 and ratio_replicas(5, 100) == 5 and ratio_replicas(5, 0) == 0
    assert share(12, ratio_replicas(12, 25)) == 25


def test_replica_canary_candidate_follows_the_stable_as_its_hpa_scales_it():
    sim = live()
    v2(sim)
    sim.run(paused)
    stable, cand = sim.stable_rev(), sim.cand_rev()
    assert sim.replicas == {stable: 4, cand: 1}  # the stable is not shrunk: its HPA owns its size
    assert sim.status["weights"]["candidate"] == 20
    assert sim.hpa_of(cand) is None  # sized by the operator while it is a canary
    for size, want in ((9, 3), (12, 4), (3, 1)):
        sim.hpa_scale(stable, size)
        for _ in range(3):
            sim.reconcile()
        assert sim.replicas[stable] == size and sim.replicas[cand] == want
        assert sim.status["weights"]["candidate"] == share(size, want)
        assert sim.hpa_of(cand) is None and sim.phase() == "Paused"
    assert sim.min_ready_after_available >= 3


def test_replica_canary_promotion_starts_the_candidate_at_the_stables_current_size():
    sim = live()
    v2(sim)
    sim.run(paused)
    old = sim.stable_rev()
    sim.hpa_scale(old, 9)
    sim.reconcile()
    sim.reconcile()
    new = sim.cand_rev()
    assert sim.ready[old] == 9
    sim.min_ready_after_available = None
    sim.annotate("promote", "1")
    sizes = []

    def watch(s):
        sizes.append(s.replicas.get(new, 0))
        return s.phase() == "Succeeded"
    sim.run(watch)
    assert sim.stable_rev() == new
    assert max(sizes) == 9 and sim.replicas[new] == 9  # capacity never drops below the stable's size
    sim.reconcile()
    assert old not in sim.replicas and sim.hpa_of(old) is None
    hpa = sim.hpa_of(new)
    assert hpa["spec"]["minReplicas"] == 2 and hpa["metadata"]["labels"]["modelops.io/track"] == "stable"
    assert sim.min_ready_after_available >= 9  # ready pods never fewer than the stable had


def test_replica_canary_rollback_removes_the_candidate():
    sim = live()
    v2(sim)
    sim.run(paused)
    cand = sim.cand_rev()
    sim.annotate("abort", "1")
    sim.run(lambda s: s.phase() == "RolledBack")
    sim.reconcile()
    assert cand not in sim.replicas and sim.hpa_of(cand) is None
    assert sim.hpa_of(sim.stable_rev()) is not None


# --- strategies where each track scales on its own ----------------------------------
GATEWAY_CANARY = {**CANARY, "strategy": {"type": "Canary", "trafficRouting": GATEWAY,
                                         "canary": {"steps": [{"weight": 10, "pause": "Manual"}, {"weight": 50}]}}}
SHADOW = {**CANARY, "strategy": {"type": "Shadow", "trafficRouting": GATEWAY,
                                 "shadow": {"duration": "1h", "mirrorPercent": 100}}}
ABTEST = {**CANARY, "strategy": {"type": "ABTest", "trafficRouting": GATEWAY,
                                 "abTest": {"split": {"candidateWeight": 50},
                                            "decision": {"maxDuration": "1h"}}}}
BLUEGREEN = {**CANARY, "strategy": {"type": "BlueGreen", "blueGreen": {"autoPromote": False}}}


@pytest.mark.parametrize("spec, stage", [
    (GATEWAY_CANARY, "Paused"), (SHADOW, "Shadowing"), (ABTEST, "Experimenting"), (BLUEGREEN, "Paused")],
    ids=["gateway-canary", "shadow", "abtest", "bluegreen-preview"])
def test_each_track_has_its_own_hpa(spec, stage):
    sim = live(spec)
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == stage)
    stable, cand = sim.stable_rev(), sim.cand_rev()
    for rev, track in ((stable, "stable"), (cand, "candidate")):
        hpa = sim.hpa_of(rev)
        assert hpa["metadata"]["labels"]["modelops.io/track"] == track
        assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["scaleTargetRef"]["name"] == f"churn-{rev}"
    sim.hpa_scale(stable, 8)
    sim.hpa_scale(cand, 5)
    for _ in range(3):
        sim.reconcile()
    # Neither is resized by the operator: each HPA's decision stands.
    assert (sim.replicas[stable], sim.replicas[cand]) == (8, 5)
    assert sim.obj("Deployment", f"churn-{cand}")["spec"]["replicas"] == 5


@pytest.mark.parametrize("spec", [GATEWAY_CANARY, BLUEGREEN], ids=["gateway-canary", "bluegreen"])
def test_promotion_raises_the_candidates_floor_to_the_stables_size_then_relaxes_it(spec):
    sim = live(spec)
    v2(sim)
    sim.run(paused)
    old, new = sim.stable_rev(), sim.cand_rev()
    sim.hpa_scale(old, 10)
    sim.hpa_scale(new, 2)
    sim.reconcile()
    sim.annotate("promote", "1")
    if spec is GATEWAY_CANARY:
        sim.run(lambda s: s.status.get("currentStep") == 1)
        sim.annotate("promote", "2")
    floors = []

    def watch(s):
        hpa = s.hpa_of(new)
        if s.status.get("stage") == "Promoting" and hpa:
            floors.append(hpa["spec"]["minReplicas"])
        return s.phase() == "Succeeded"
    sim.run(watch)
    assert floors and max(floors) == 10  # raised to the stable's size while promoting
    assert sim.replicas[new] >= 10  # it took all traffic only at the stable's size
    sim.reconcile()
    assert sim.hpa_of(new)["spec"]["minReplicas"] == 2  # relaxed once it is the stable
    assert sim.hpa_of(new)["metadata"]["labels"]["modelops.io/track"] == "stable"


def test_gateway_rollback_deletes_the_candidates_hpa():
    sim = live(GATEWAY_CANARY)
    v2(sim)
    sim.run(paused)
    cand = sim.cand_rev()
    assert sim.hpa_of(cand) is not None
    sim.annotate("abort", "1")
    sim.run(lambda s: s.phase() == "RolledBack")
    sim.reconcile()
    assert sim.hpa_of(cand) is None and cand not in sim.replicas


def test_a_leftover_hpa_of_a_gone_revision_is_deleted():
    sim = live()
    observed = sim.observed()
    observed = dataclasses.replace(observed, autoscalers=frozenset({"churn-gone", f"churn-{sim.stable_rev()}"}))
    p = plan(sim.meta, sim.spec, sim.status, observed, sim.now)
    assert p.unscaled == ["churn-gone"]
