"""The rollout planner, phase by phase, on an in-memory cluster."""

import copy

import pytest

from modelops_operator.naming import LABEL_REVISION
from modelops_operator.planner import Observed, plan
from modelops_operator.spec import revision_of

from .sim import Sim, always, deployed, verdict

CANARY = {
    "model": {"name": "churn", "version": "1.0.0", "image": "reg/churn:1.0.0"},
    "replicas": 4,
    "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "30s"}, {"weight": 50}, {"weight": 75}]}},
    "analysis": {"interval": "10s"},
}
GATEWAY = {"gatewayAPI": {"parentRefs": [{"name": "ml-gateway"}]}}


def v2(sim, version="2.0.0"):
    sim.set_spec(model__version=version, model__image=f"reg/churn:{version}")
    return revision_of(sim.spec) if False else None


def rollout_started(sim):
    return sim.status.get("candidate") is not None


def stable_version(sim):
    return (sim.status.get("stable") or {}).get("version")


def deployment_of(sim, version):
    for obj in sim.objects.values():
        if obj["kind"] == "Deployment" and obj["metadata"]["annotations"]["modelops.io/model-version"] == version:
            return obj
    return None


@pytest.fixture
def live():
    sim = Sim(CANARY)
    sim.run(deployed)
    return sim


def test_first_deployment_goes_straight_to_stable():
    sim = Sim(CANARY)
    p = sim.reconcile()
    assert sim.phase() == "Progressing" and sim.reasons() == ["Deploying"]
    (deploy,) = [o for o in p.apply if o["kind"] == "Deployment"]
    assert deploy["spec"]["replicas"] == 4
    sim.run(deployed)
    assert sim.reasons() == ["Deploying", "Available"]
    assert sim.status["weights"] == {"stable": 100, "candidate": 0, "mirror": 0}
    cond = {c["type"]: c for c in sim.status["conditions"]}
    assert cond["Available"]["status"] == "True" and cond["Progressing"]["status"] == "False"


def test_canary_walks_every_step_then_promotes(live):
    v2(live)
    weights, steps = [], []
    live.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0",
             judge=lambda r: (weights.append(live.status["weights"]["candidate"]), steps.append(r.step),
                              verdict("Pass"))[-1])
    assert live.reasons()[2:] == ["RolloutStarted", "StepWeightSet", "PauseEnded", "StepStarted", "StepWeightSet",
                                  "StepStarted", "StepWeightSet", "Promoting", "Promoted"]
    # 4 replicas carry 25/50/75% exactly; each gate measured its own step.
    assert weights == [25, 50, 75] and steps == [0, 1, 2]
    assert live.status["weights"] == {"stable": 100, "candidate": 0, "mirror": 0}
    assert live.status["history"][0]["outcome"] == "Succeeded"
    # The old revision's Deployment is gone; only the new one serves.
    assert [d["metadata"]["annotations"]["modelops.io/model-version"] for d in live.objects.values()
            if d["kind"] == "Deployment"] == ["2.0.0"]
    assert set(live.replicas.values()) == {4}


def test_replica_canary_keeps_capacity(live):
    v2(live)
    live.run(lambda s: stable_version(s) == "2.0.0" and s.phase() == "Succeeded")
    assert live.min_ready_after_available >= 4


def test_step_pause_is_honoured(live):
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Pausing")
    started = live.now
    live.run(lambda s: s.status.get("stage") == "Analysing")
    assert (live.now - started).total_seconds() >= 30


def test_replica_rounding_is_reported():
    spec = copy.deepcopy(CANARY)
    spec["replicas"] = 3
    spec["strategy"]["canary"]["steps"] = [{"weight": 10}]
    sim = Sim(spec)
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == "Analysing")
    # 10% of 3 replicas rounds to one pod: a third of the traffic, and status says so.
    assert sim.status["weights"]["candidate"] == 33


def test_two_failed_analyses_roll_back(live):
    v2(live)
    live.run(lambda s: s.phase() == "RolledBack", judge=always("Fail"))
    assert live.reasons()[-1] == "AnalysisFailed"
    assert live.status["analysis"]["consecutiveFailures"] == 2
    assert live.status["blockedRevision"] and "candidate" not in live.status
    assert live.status["weights"]["candidate"] == 0
    assert live.status["failedChecks"][0]["name"] == "slo.errorRate"
    degraded = next(c for c in live.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "AnalysisFailed"
    # All traffic is back on the stable revision, at full size, and it stays there.
    live.run(lambda s: set(s.ready.values()) == {4} and len(s.ready) == 1)
    assert stable_version(live) == "1.0.0" and deployment_of(live, "2.0.0") is None
    for _ in range(5):
        live.reconcile()
    assert live.phase() == "RolledBack"


def test_one_failure_then_pass_continues(live):
    v2(live)
    answers = iter(["Fail", "Pass", "Pass", "Pass", "Pass"])
    live.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0",
             judge=lambda r: verdict(next(answers)))


def test_a_drift_alarm_between_gates_rolls_back_at_once(live):
    """The drift evidence is read every readInterval (5s) between the 10s gates; an alarm
    on such a read rolls back without a second failing analysis."""
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Analysing" and (s.status.get("analysis") or {}).get("runs"))
    gates = len(live.requests)
    live.watch_judge = lambda r: verdict("Fail", "g0 drifted", check="drift.feature.g0")
    live.run(lambda s: s.phase() == "RolledBack", limit=8)  # 8 s: before the next gate
    assert live.reasons()[-1] == "AnalysisFailed" and "g0 drifted" in live.events[-1][1]
    assert len(live.requests) == gates and live.watches and all(r.watch for r in live.watches)
    assert live.status["analysis"]["consecutiveFailures"] == 1
    assert live.status["failedChecks"][0]["name"] == "drift.feature.g0"


def test_a_drift_alarm_during_a_steps_pause_rolls_back_at_once(live):
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Pausing")  # step 1 pauses 30s before its analysis
    live.watch_judge = lambda r: verdict("Fail", "g0 drifted", check="drift.feature.g0")
    live.run(lambda s: s.phase() == "RolledBack", limit=8)
    assert not live.requests and live.reasons()[-1] == "AnalysisFailed"
    assert live.status["failedChecks"][0]["name"] == "drift.feature.g0"


def test_reads_between_gates_act_only_on_a_drift_alarm(live):
    v2(live)
    live.watch_judge = always("Fail")  # a window check failing on a read between gates: not a gate
    live.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0")
    assert live.watches and not any(r.watch for r in live.requests)
    assert live.status["analysis"]["consecutiveFailures"] == 0


def test_a_drift_failure_at_a_gate_needs_no_second_one(live):
    v2(live)
    live.run(lambda s: s.phase() == "RolledBack", judge=lambda r: verdict("Fail", check="drift.share"), limit=60)
    assert live.status["analysis"]["consecutiveFailures"] == 1


def test_no_reads_between_gates_when_they_would_not_be_sooner(live):
    live.set_spec(analysis__drift__readInterval="10s")
    v2(live)
    live.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0")
    assert not live.watches


def test_inconclusive_pauses_by_default(live):
    v2(live)
    live.run(lambda s: s.phase() == "Paused", judge=always("Inconclusive"))
    assert live.status["analysis"]["consecutiveInconclusive"] == 3
    paused = next(c for c in live.status["conditions"] if c["type"] == "Paused")
    assert paused["status"] == "True" and paused["reason"] == "InconclusiveAnalysis"
    # Never promoted on missing data, however long it waits.
    for _ in range(20):
        live.reconcile(judge=always("Inconclusive"))
    assert live.phase() == "Paused" and stable_version(live) == "1.0.0"


def test_inconclusive_can_roll_back():
    spec = copy.deepcopy(CANARY)
    spec["analysis"]["onInconclusive"] = "Rollback"
    sim = Sim(spec)
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.phase() == "RolledBack", judge=always("Inconclusive"))
    assert sim.reasons()[-1] == "AnalysisInconclusive"


def test_manual_step_waits_for_a_person():
    spec = copy.deepcopy(CANARY)
    spec["strategy"]["canary"]["steps"] = [{"weight": 25, "pause": "Manual"}, {"weight": 50}]
    sim = Sim(spec)
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.phase() == "Paused")
    for _ in range(10):
        sim.reconcile()
    assert sim.phase() == "Paused" and sim.status["currentStep"] == 0
    sim.annotate("promote", "1")
    sim.reconcile()
    assert sim.status["currentStep"] == 1 and sim.phase() == "Progressing"
    assert sim.status["commands"]["promote"] == "1"
    sim.run(lambda s: s.phase() == "Succeeded")


def test_abort_then_retry(live):
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Pausing")
    live.annotate("abort", "a1")
    live.reconcile()
    assert live.phase() == "RolledBack" and live.status["history"][0]["outcome"] == "Aborted"
    for _ in range(5):
        live.reconcile()
    assert live.phase() == "RolledBack"  # the spec still names 2.0.0, but it is not retried by itself
    live.annotate("retry", "r1")
    live.reconcile()
    assert live.reasons()[-1] == "RolloutStarted" and "blockedRevision" not in live.status
    live.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0")


def test_spec_change_mid_rollout_restarts(live):
    v2(live)
    live.run(lambda s: s.status.get("currentStep") == 1)
    v2(live, "3.0.0")
    live.reconcile()
    assert live.status["candidate"]["version"] == "3.0.0" and live.status["currentStep"] == 0
    assert live.status["history"][0]["outcome"] == "Superseded"
    assert live.reasons()[-1] == "RolloutStarted" and "superseded" in live.events[-1][1]
    assert deployment_of(live, "2.0.0") is None
    live.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "3.0.0")


def test_spec_back_to_stable_drops_candidate(live):
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Pausing")
    live.set_spec(model__version="1.0.0", model__image="reg/churn:1.0.0")
    live.reconcile()
    assert live.phase() == "Succeeded" and "candidate" not in live.status
    assert live.status["history"][0]["outcome"] == "Aborted"
    assert deployment_of(live, "2.0.0") is None


def test_progress_deadline_rolls_back(live):
    live.set_spec(progressDeadline="20s")
    v2(live)
    live.reconcile()
    cand = live.status["candidate"]["revision"]
    for _ in range(40):  # the candidate's pods never turn ready
        live.ready[cand] = 0
        live.replicas[cand] = live.replicas.get(cand, 0)
        live.lag = 0
        p = plan(live.meta, live.spec, live.status, Observed(
            {r: type(o)(o.replicas, 0 if r == cand else o.ready) for r, o in live.observed().revisions.items()}),
            live.now)
        live.carry_out(p)
        live.now = live.now.replace() + __import__("datetime").timedelta(seconds=1)
        if live.phase() == "RolledBack":
            break
    assert live.reasons()[-1] == "ProgressDeadlineExceeded"


def test_invalid_spec_changes_nothing(live):
    objects = copy.deepcopy(live.objects)
    live.spec["strategy"] = {"type": "Canary", "canary": {"steps": [{"weight": 50}, {"weight": 20}]}}
    p = live.reconcile()
    assert not p.apply and not p.scale and not p.delete
    cond = next(c for c in live.status["conditions"] if c["type"] == "InvalidSpec")
    assert cond["status"] == "True" and "spec.strategy.canary.steps[1].weight" in cond["message"]
    assert live.objects == objects and live.reasons()[-1] == "InvalidSpec"
    live.reconcile()
    assert live.reasons().count("InvalidSpec") == 1  # announced once


def test_replanning_is_idempotent(live):
    v2(live)
    live.run(lambda s: s.status.get("currentStep") == 1 and s.status.get("stage") == "Analysing")
    p1 = plan(live.meta, live.spec, live.status, live.observed(), live.now)
    p2 = plan(live.meta, live.spec, live.status, live.observed(), live.now)
    assert p1.apply == p2.apply and p1.scale == p2.scale and p1.status == p2.status


def test_lost_apply_is_redone_from_status(live):
    """A crash after the status write but before the objects were applied: the next
    pass derives the same objects from status and makes no second transition."""
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Pausing")
    live.run(lambda s: s.status.get("currentStep") == 1)
    seq = live.status["transition"]["seq"]
    p = plan(live.meta, live.spec, live.status, live.observed(), live.now)
    assert p.transition is None or p.status["transition"]["seq"] == seq + 1
    deploys = {o["metadata"]["name"]: o["spec"]["replicas"] for o in p.apply if o["kind"] == "Deployment"}
    again = plan(live.meta, live.spec, live.status, live.observed(), live.now)
    assert deploys == {o["metadata"]["name"]: o["spec"]["replicas"] for o in again.apply if o["kind"] == "Deployment"}


def test_children_are_owned_and_labelled(live):
    v2(live)
    live.run(lambda s: s.status.get("stage") == "Pausing")
    for obj in live.objects.values():
        meta = obj["metadata"]
        assert meta["ownerReferences"][0]["uid"] == live.meta["uid"]
        assert meta["ownerReferences"][0]["controller"] is True
        labels = meta["labels"]
        assert labels["modelops.io/modeldeployment"] == "churn"
        assert labels["app.kubernetes.io/managed-by"] == "modelops-operator"
        assert labels["modelops.io/track"] in ("stable", "candidate")
    deploy = deployment_of(live, "2.0.0")
    assert deploy["metadata"]["labels"]["modelops.io/track"] == "candidate"
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in pod["containers"])
    assert [c["name"] for c in pod["containers"]] == ["model", "monitor"]
    entry = live.obj("Service", "churn")
    assert entry["spec"]["selector"] == {"modelops.io/modeldeployment": "churn"}


def test_gateway_canary_sets_exact_weights():
    spec = copy.deepcopy(CANARY)
    spec["strategy"]["trafficRouting"] = GATEWAY
    spec["strategy"]["canary"]["steps"] = [{"weight": 5}, {"weight": 30}]
    sim = Sim(spec)
    sim.run(deployed)
    v2(sim)
    seen = []

    def judge(request):
        route = sim.obj("HTTPRoute", "churn")
        seen.append([b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]])
        return verdict("Pass")

    sim.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0", judge=judge)
    assert seen == [[95, 5], [70, 30]]
    route = sim.obj("HTTPRoute", "churn")
    assert route["spec"]["parentRefs"] == [{"name": "ml-gateway", "group": "gateway.networking.k8s.io",
                                            "kind": "Gateway"}]
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100]
    # The stable keeps full size during a gateway canary: the route, not replicas, splits.
    assert sim.min_ready_after_available >= 4


def test_gateway_promotion_keeps_old_revision_for_the_delay():
    spec = copy.deepcopy(CANARY)
    spec["strategy"]["trafficRouting"] = GATEWAY
    spec["strategy"]["scaleDownDelay"] = "30s"
    spec["strategy"]["canary"]["steps"] = [{"weight": 50}]
    sim = Sim(spec)
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: stable_version(s) == "2.0.0")
    assert deployment_of(sim, "1.0.0") is not None and sim.status["retiring"]
    sim.run(lambda s: deployment_of(s, "1.0.0") is None, limit=60)
    assert "retiring" not in sim.status


BLUE_GREEN = {
    "model": {"name": "fraud", "version": "1.0.0", "image": "reg/fraud:1.0.0"},
    "replicas": 2,
    "strategy": {"type": "BlueGreen", "blueGreen": {}, "scaleDownDelay": "10s"},
    "analysis": {"interval": "5s"},
}


def active_revision(sim):
    return sim.obj("Service", "fraud")["spec"]["selector"][LABEL_REVISION]


def test_blue_green_switches_only_after_analysis():
    sim = Sim(BLUE_GREEN, name="fraud")
    sim.run(deployed)
    blue = active_revision(sim)
    v2(sim)
    actives = []
    sim.run(lambda s: s.phase() == "Succeeded" and stable_version(s) == "2.0.0",
            judge=lambda r: (actives.append(active_revision(sim)), verdict("Pass"))[-1])
    assert actives and set(actives) == {blue}  # analysis ran against the preview, not live traffic
    green = sim.status["stable"]["revision"]
    assert active_revision(sim) == green != blue
    assert sim.obj("Service", "fraud-preview") is None or "candidate" not in sim.status
    assert deployment_of(sim, "1.0.0") is not None  # kept for scaleDownDelay for an instant switch back
    sim.run(lambda s: deployment_of(s, "1.0.0") is None, limit=30)


def test_bad_green_is_never_switched_to():
    sim = Sim(BLUE_GREEN, name="fraud")
    sim.run(deployed)
    blue = active_revision(sim)
    v2(sim)
    actives = []
    sim.run(lambda s: s.phase() == "RolledBack",
            judge=lambda r: (actives.append(active_revision(sim)), verdict("Fail"))[-1])
    assert set(actives) == {blue} and active_revision(sim) == blue
    assert sim.obj("Service", "fraud-preview") is None or deployment_of(sim, "2.0.0") is None


def test_blue_green_is_succeeded_only_once_the_switch_is_in_effect():
    sim = Sim(BLUE_GREEN, name="fraud")
    sim.run(deployed)
    blue = active_revision(sim)
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == "Promoting" and active_revision(s) != blue)
    green = active_revision(sim)
    assert sim.phase() == "Progressing" and sim.status["candidate"]["revision"] == green
    assert sim.status["weights"] == {"stable": 0, "candidate": 100, "mirror": 0}
    # The switch did not get applied (the controller's apply failed): not called done.
    sim.in_effect = False
    for _ in range(5):
        p = sim.reconcile()
        assert sim.phase() == "Progressing" and p.requeue_after is not None and p.requeue_after <= 1
    sim.in_effect = True
    sim.reconcile()
    assert sim.phase() == "Succeeded" and stable_version(sim) == "2.0.0" and active_revision(sim) == green
    assert sim.reasons()[-2:] == ["Promoting", "Promoted"]


def test_gateway_promotion_is_succeeded_only_once_the_gateway_serves_the_candidate():
    spec = copy.deepcopy(CANARY)
    spec["strategy"]["trafficRouting"] = GATEWAY
    spec["strategy"]["canary"]["steps"] = [{"weight": 50}]
    sim = Sim(spec)
    sim.run(deployed)
    v2(sim)
    served = None
    for _ in range(400):
        if sim.phase() == "Succeeded" and stable_version(sim) == "2.0.0":
            break
        served = sim._written_route  # what the gateway takes up at the start of this pass
        sim.reconcile()
    else:
        raise AssertionError(f"not promoted after 400 passes: {sim.status}")
    weights = {b["name"]: b["weight"] for b in served["spec"]["rules"][0]["backendRefs"]}
    assert {n for n, w in weights.items() if w} == {"churn-canary"}, weights


def test_blue_green_can_wait_for_a_person():
    spec = copy.deepcopy(BLUE_GREEN)
    spec["strategy"]["blueGreen"] = {"autoPromote": False}
    sim = Sim(spec, name="fraud")
    sim.run(deployed)
    blue = active_revision(sim)
    v2(sim)
    sim.run(lambda s: s.phase() == "Paused")
    assert sim.status["conditions"][2]["reason"] == "AwaitingPromotion" and active_revision(sim) == blue
    sim.annotate("promote", "now")
    sim.run(lambda s: s.phase() == "Succeeded")
    assert active_revision(sim) != blue


SHADOW = {
    "model": {"name": "pricing", "version": "1.0.0", "image": "reg/pricing:1.0.0"},
    "replicas": 2,
    "strategy": {"type": "Shadow", "shadow": {"mirrorPercent": 50, "duration": "30s"}, "trafficRouting": GATEWAY},
    "analysis": {"interval": "10s"},
}


def test_shadow_mirrors_then_promotes():
    sim = Sim(SHADOW, name="pricing")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == "Shadowing")
    rule = sim.obj("HTTPRoute", "pricing")["spec"]["rules"][0]
    # A backend with no share is left out: the mirror alone reaches the candidate.
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("pricing-stable", 100)]
    mirror = rule["filters"][0]
    assert mirror["type"] == "RequestMirror" and mirror["requestMirror"]["percent"] == 50
    assert mirror["requestMirror"]["backendRef"]["name"] == "pricing-canary"
    started = sim.now
    sim.run(lambda s: stable_version(s) == "2.0.0")
    assert (sim.now - started).total_seconds() >= 30
    assert "ShadowStarted" in sim.reasons() and sim.reasons()[-1] == "Promoted"


def test_shadow_then_canary_steps():
    spec = copy.deepcopy(SHADOW)
    spec["strategy"]["shadow"].update(promotion="Canary", steps=[{"weight": 50}])
    sim = Sim(spec, name="pricing")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.status.get("stepText") == "1/1" and s.status.get("stage") == "Analysing")
    rule = sim.obj("HTTPRoute", "pricing")["spec"]["rules"][0]
    assert [b["weight"] for b in rule["backendRefs"]] == [50, 50] and "filters" not in rule
    sim.run(lambda s: stable_version(s) == "2.0.0")


def test_shadow_failure_rolls_back():
    sim = Sim(SHADOW, name="pricing")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.phase() == "RolledBack", judge=always("Fail"))
    rule = sim.obj("HTTPRoute", "pricing")["spec"]["rules"][0]
    assert "filters" not in rule and [b["weight"] for b in rule["backendRefs"]] == [100]


AB = {
    "model": {"name": "offers", "version": "1.0.0", "image": "reg/offers:1.0.0"},
    "replicas": 2,
    "strategy": {"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        "split": {"candidateWeight": 30},
        "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.02, "maxDuration": "2m"}}},
    "analysis": {"interval": "10s"},
}


def test_ab_routes_sticky_sessions():
    sim = Sim(AB, name="offers")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == "Experimenting", judge=always("Inconclusive"))
    rules = sim.obj("HTTPRoute", "offers")["spec"]["rules"]
    assert rules[1]["matches"][0]["headers"][0]["name"] == "Cookie"
    assert rules[1]["backendRefs"][0]["name"] == "offers-canary"
    assert rules[2]["backendRefs"][0]["name"] == "offers-stable"
    split = rules[0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in split] == [("offers-stable", 70), ("offers-canary", 30)]
    # No filter on a single backendRef (Traefik ignores those): the rule asks whichever
    # backend answers to set the cookie naming its own revision.
    assert all("filters" not in b for b in split)
    assert rules[0]["filters"] == [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-Modelops-Sticky-Cookie", "value": "modelops-variant"}]}}]
    cand, stable = sim.status["candidate"]["revision"], sim.status["stable"]["revision"]
    assert f"modelops-variant={cand}" in rules[1]["matches"][0]["headers"][0]["value"]
    assert f"modelops-variant={stable}" in rules[2]["matches"][0]["headers"][0]["value"]
    assert sim.status["weights"]["candidate"] == 30


def test_ab_winner_is_promoted():
    sim = Sim(AB, name="offers")
    sim.run(deployed)
    v2(sim)
    answers = iter([verdict("Inconclusive")] * 3 + [verdict("Pass", "lift 3.1%, p=0.001", winner="candidate")])
    sim.run(lambda s: stable_version(s) == "2.0.0", judge=lambda r: next(answers, verdict("Pass")))
    assert "ExperimentDecided" in sim.reasons()


def test_ab_without_difference_keeps_control():
    sim = Sim(AB, name="offers")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.phase() == "RolledBack", judge=always("Inconclusive"))
    assert sim.reasons()[-1] == "ControlKept" and stable_version(sim) == "1.0.0"
    degraded = next(c for c in sim.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False"  # keeping the control is not a failure


def test_ab_no_difference_at_the_planned_size_keeps_control_at_once():
    sim = Sim(AB, name="offers")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.phase() == "RolledBack", judge=always("Pass", winner="none"), limit=40)
    assert sim.reasons()[-1] == "ControlKept" and stable_version(sim) == "1.0.0"
    assert len(sim.requests) == 1  # read once, at the planned size; not again until the deadline


def test_ab_control_winner_keeps_control():
    sim = Sim(AB, name="offers")
    sim.run(deployed)
    v2(sim)
    sim.run(lambda s: s.phase() == "RolledBack", judge=always("Pass", winner="control"))
    assert sim.reasons()[-1] == "ControlKept"


def test_model_server_and_monitor_are_configured():
    spec = copy.deepcopy(CANARY)
    spec["model"]["uri"] = "file:///models/churn-v1"
    spec["monitor"] = {"window": "2m", "referenceProfile": {"path": "/models/churn-v1/profile.json"}}
    sim = Sim(spec)
    p = sim.reconcile()
    (deploy,) = [o for o in p.apply if o["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    model, monitor = pod["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in model["env"]}
    assert env["MODELOPS_MODEL_DIR"] == "/models/churn-v1"
    assert env["MODELOPS_MONITOR_URL"] == "http://127.0.0.1:9091"
    # Prediction ids name their pod, signed with a key of this ModelDeployment (not of a
    # revision): a Secret mounted into both containers, never a value in the pod spec.
    assert env["MODELOPS_POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert "MODELOPS_FEEDBACK_KEY" not in env
    menv = {e["name"]: e["value"] for e in monitor["env"]}
    for e, container in ((env, model), (menv, monitor)):
        assert e["MODELOPS_FEEDBACK_KEY_FILE"] == "/var/run/secrets/modelops.io/feedback/key"
        assert e["MODELOPS_MONITOR_SOCKET"] == "/var/run/modelops/monitor.sock"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["monitor-socket"] == "/var/run/modelops"
        assert mounts["feedback-key"] == "/var/run/secrets/modelops.io/feedback"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["monitor-socket"]
    assert volumes["feedback-key"]["secret"]["secretName"] == f"{sim.meta['name']}-feedback-key"
    assert menv["MODELOPS_WINDOW"] == "2m" and "MODELOPS_TRACK" not in menv
    assert menv["MODELOPS_PROFILE_PATH"] == "/etc/modelops/profile/profile.json"
    # The profile lives in the model image: an init container copies it where the monitor reads it.
    (init,) = pod["initContainers"]
    assert init["image"] == spec["model"]["image"] and init["command"][1] == "/models/churn-v1/profile.json"


def test_promotion_does_not_touch_the_promoted_pods():
    sim = Sim(CANARY).run(deployed)
    v2(sim)
    sim.run(lambda s: deployment_of(s, "2.0.0") is not None)
    before = copy.deepcopy(deployment_of(sim, "2.0.0")["spec"]["template"])
    sim.run(lambda s: stable_version(s) == "2.0.0" and s.phase() == "Succeeded")
    assert deployment_of(sim, "2.0.0")["spec"]["template"] == before  # no rolling restart at promotion


def test_every_status_field_the_planner_writes_is_in_the_crd_schema():
    # The API server prunes fields its schema does not list, so a field missing
    # there would be lost at the next write (a Paused condition losing its reason).
    import yaml

    from modelops_operator.spec import CRD_FILE

    crd = yaml.safe_load(CRD_FILE.read_text())
    known = set(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"])
    seen = set()
    manual = copy.deepcopy(CANARY)
    manual["strategy"]["canary"]["steps"][0] = {"weight": 25, "pause": "Manual"}
    for spec, judge, until in ((CANARY, always("Inconclusive"), lambda s: s.phase() == "Paused"),
                               (manual, always("Pass"), lambda s: s.phase() == "Paused"),
                               (CANARY, always("Fail"), lambda s: s.phase() == "RolledBack")):
        sim = Sim(spec).run(deployed)
        v2(sim)
        for _ in range(200):
            sim.reconcile(judge)
            seen |= set(sim.status)
            if until(sim):
                break
    assert "pausedReason" in seen
    assert seen <= known, seen - known
