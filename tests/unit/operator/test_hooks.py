"""Rollout hooks in the planner: where they run, what a rollout does while they decide,
how their results gate it, and that each runs once per rollout and step."""

import copy

import pytest

from modelops_operator.hooks import HookError, job_result, parse_hooks
from modelops_operator.planner import plan

from .sim import Sim, always, deployed

URL = "http://checks.example/run"
CANARY = {
    "model": {"name": "churn", "version": "1.0.0", "image": "reg/churn:1.0.0"},
    "replicas": 4,
    "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 25}, {"weight": 50}]}},
    "analysis": {"interval": "10s"},
}


def http(name, at, **extra):
    return {"name": name, "at": at, "http": {"url": f"{URL}/{name}", **extra}}


def live(spec=CANARY, hooks=()):
    spec = copy.deepcopy(spec)
    spec["hooks"] = list(hooks)
    sim = Sim(spec)
    sim.run(deployed)
    return sim


def v2(sim):
    sim.set_spec(model__version="2.0.0", model__image="reg/churn:2.0.0")


def answer(sim, result="Succeeded", only=None, message="ok"):
    """Plays the controller: every hook the last plan asked to run answers `result`."""
    for call in sim.last.hook_calls:
        if only is None or call["hook"].name == only:
            sim.hook_results[call["id"]] = (result, message)
    for obj in sim.last.apply:
        if obj["kind"] == "Job" and (only is None or obj["metadata"]["labels"]["modelops.io/hook"] == only):
            sim.hook_results[obj["metadata"]["labels"]["modelops.io/hook-id"]] = (result, message)


def run_answering(sim, until, result="Succeeded", limit=200):
    for _ in range(limit):
        sim.reconcile(always("Pass"))
        answer(sim, result)
        if until(sim):
            return sim
    raise AssertionError(f"not reached: {sim.status} {sim.events}")


def records(sim):
    return {(r["name"], r["at"], r["step"]): r for r in sim.status.get("hooks", [])}


def test_each_point_runs_its_hooks_once_in_order():
    sim = live(hooks=[http("offline-eval", "BeforeRollout"), http("load", "BeforeStep"),
                      http("confirm", "BeforePromotion"), http("report", "AfterRollout")])
    v2(sim)
    calls = []
    for _ in range(200):
        sim.reconcile(always("Pass"))
        calls.extend((c["hook"].name, c["context"]["step"], c["id"]) for c in sim.last.hook_calls)
        answer(sim)
        if sim.phase() == "Succeeded" and all(r["phase"] == "Succeeded" for r in sim.status["hooks"]):
            break
    assert sim.status["stable"]["version"] == "2.0.0"
    # One run per hook, point and step; asked for until it answered, then never again.
    ids = {}
    for name, step, hid in calls:
        ids.setdefault((name, step), set()).add(hid)
    assert {k: len(v) for k, v in ids.items()} == {("offline-eval", 0): 1, ("load", 0): 1, ("load", 1): 1,
                                                     ("confirm", 1): 1, ("report", 0): 1}
    assert set(records(sim)) == {("offline-eval", "BeforeRollout", 0), ("load", "BeforeStep", 0),
                                 ("load", "BeforeStep", 1), ("confirm", "BeforePromotion", 1),
                                 ("report", "AfterRollout", 0)}
    reasons = sim.reasons()
    started = reasons.index("RolloutStarted")
    assert reasons[started:started + 2] == ["RolloutStarted", "HooksPassed"]
    assert "first waiting for hooks offline-eval, load" in sim.events[started][1]
    assert reasons.count("HooksPassed") == 3  # before the rollout and step 1, step 2, promotion
    assert reasons[-2:] == ["HooksPassed", "Promoted"]


def test_nothing_moves_while_a_hook_is_pending():
    sim = live(hooks=[http("load", "BeforeStep")])
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == "Hooks")
    for _ in range(20):
        sim.reconcile()
        answer(sim, "Pending", message="load test running")
        assert sim.status["stage"] == "Hooks" and sim.status["weights"]["candidate"] == 0
        assert sim.last.requeue_after is not None and sim.last.requeue_after <= 2.0
    cand = sim.status["candidate"]["revision"]
    assert sim.replicas.get(cand, 0) == 0  # the replica-ratio candidate got no pods (that is traffic)
    (rec,) = sim.status["hooks"]
    assert rec["phase"] == "Running" and rec["message"] == "load test running"
    answer(sim, "Succeeded")
    sim.reconcile()
    assert sim.reasons()[-1] == "HooksPassed" and sim.status["stage"] == "Scaling"


@pytest.mark.parametrize("at", ["BeforeRollout", "BeforeStep", "BeforePromotion"])
def test_a_failed_hook_rolls_back_like_a_failed_analysis(at):
    sim = live(hooks=[http("gate", at)])
    v2(sim)
    for _ in range(100):
        sim.reconcile(always("Pass"))
        answer(sim, "Failed", message="HTTP 500: boom")
        if sim.phase() == "RolledBack":
            break
    assert sim.reasons()[-1] == "HookFailed"
    assert f"hook gate ({at}) failed: HTTP 500: boom" in sim.events[-1][1]
    assert sim.status["stable"]["version"] == "1.0.0" and sim.status["weights"]["candidate"] == 0
    assert sim.status["history"][0]["reason"] == "HookFailed"
    degraded = {c["type"]: c for c in sim.status["conditions"]}["Degraded"]
    assert degraded["status"] == "True" and degraded["reason"] == "HookFailed"


def test_a_hook_with_no_result_by_its_deadline_fails():
    sim = live(hooks=[http("slow", "BeforeRollout") | {"deadline": "30s"}])
    v2(sim)
    sim.run(lambda s: s.phase() == "RolledBack", advance=5.0)
    assert sim.reasons()[-1] == "HookFailed" and "no result within its deadline of 30s" in sim.events[-1][1]


def test_a_job_hook_is_one_job_per_run_owned_by_the_model_deployment():
    job = {"image": "reg/eval:1", "args": ["--min-auc", "0.8"], "env": [{"name": "SUITE", "value": "full"}]}
    sim = live(hooks=[{"name": "eval", "at": "BeforePromotion", "job": job}])
    v2(sim)
    names = set()
    for _ in range(200):
        sim.reconcile(always("Pass"))
        names |= {o["metadata"]["name"] for o in sim.last.apply if o["kind"] == "Job"}
        if sim.status.get("stage") == "Hooks" and names:
            break
    (name,) = names
    obj = sim.obj("Job", name)
    assert obj["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert obj["spec"]["backoffLimit"] == 0 and obj["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODELOPS_AT"] == "BeforePromotion" and env["MODELOPS_CANDIDATE_VERSION"] == "2.0.0"
    assert env["SUITE"] == "full" and container["args"] == ["--min-auc", "0.8"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # A restarted operator plans the same Job (same name, same spec), so it runs once.
    again = plan(sim.meta, sim.spec, sim.status, sim.observed(), sim.now)
    assert [o for o in again.apply if o["kind"] == "Job"] == [obj]
    sim.hook_results[obj["metadata"]["labels"]["modelops.io/hook-id"]] = job_result(
        {"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    sim.run(lambda s: s.phase() == "Succeeded")
    assert records(sim)[("eval", "BeforePromotion", 1)]["phase"] == "Succeeded"
    assert not [o for o in sim.last.apply if o["kind"] == "Job"]


def test_a_failed_after_rollout_hook_is_told_once_and_changes_nothing():
    sim = live(hooks=[http("report", "AfterRollout")])
    v2(sim)
    sim.run(lambda s: s.phase() == "Succeeded" and s.status.get("hooks"))
    answer(sim, "Failed", message="HTTP 404")
    for _ in range(5):
        sim.reconcile()
    assert sim.reasons().count("HookFailed") == 1
    assert sim.phase() == "Succeeded" and sim.status["stable"]["version"] == "2.0.0"
    (rec,) = sim.status["hooks"]
    assert rec["outcome"] == "Succeeded" and rec["revision"]


def test_a_person_can_promote_past_a_waiting_hook():
    sim = live(hooks=[http("confirm", "BeforeStep")])
    v2(sim)
    sim.run(lambda s: s.status.get("stage") == "Hooks")
    sim.annotate("promote", "1")
    sim.reconcile()
    assert sim.reasons()[-1] == "HooksPassed" and "promoted by a person" in sim.events[-1][1]
    assert sim.status["hooks"][0]["phase"] == "Skipped"


def test_hooks_and_their_runs_are_reset_for_the_next_rollout():
    sim = live(hooks=[http("gate", "BeforeRollout")])
    v2(sim)
    run_answering(sim, lambda s: s.phase() == "Succeeded")
    first = {r["id"] for r in sim.status["hooks"]}
    sim.set_spec(model__version="3.0.0", model__image="reg/churn:3.0.0")
    sim.run(lambda s: s.status.get("stage") == "Hooks")
    assert {r["id"] for r in sim.status["hooks"]}.isdisjoint(first)


def test_strategies_without_steps_run_before_rollout_and_promotion_only():
    spec = {**CANARY, "strategy": {"type": "BlueGreen", "blueGreen": {}}}
    sim = live(spec, hooks=[http("a", "BeforeRollout"), http("b", "BeforeStep"), http("c", "BeforePromotion")])
    v2(sim)
    run_answering(sim, lambda s: s.phase() == "Succeeded")
    assert {k[0] for k in records(sim)} == {"a", "c"}


@pytest.mark.parametrize("raw, field", [
    ([{"name": "x", "at": "BeforeStep"}], "spec.hooks[0]"),
    ([{"name": "x", "at": "Sometime", "http": {"url": URL}}], "spec.hooks[0].at"),
    ([{"name": "x", "at": "BeforeStep", "http": {"url": "ftp://x"}}], "spec.hooks[0].http.url"),
    ([http("x", "BeforeStep"), http("x", "AfterRollout")], "spec.hooks[1].name"),
    ([{"name": "x", "at": "BeforeStep", "job": {"command": ["x"]}}], "spec.hooks[0].job.image"),
    ([http("x", "BeforeStep", retries=11)], "spec.hooks[0].http.retries"),
    ([http("x", "BeforeStep", timeout="soon")], "spec.hooks[0].http.timeout"),
])
def test_bad_hooks_name_the_field(raw, field):
    with pytest.raises(HookError) as err:
        parse_hooks(raw)
    assert err.value.field == field


def test_a_bad_hook_is_invalid_spec_and_changes_nothing():
    sim = live()
    before = copy.deepcopy(sim.status)
    sim.set_spec(hooks=[{"name": "x", "at": "BeforeStep"}])
    v2(sim)
    sim.reconcile()
    cond = {c["type"]: c for c in sim.status["conditions"]}["InvalidSpec"]
    assert cond["status"] == "True" and cond["message"].startswith("spec.hooks[0]: exactly one of http and job")
    assert sim.status["stable"] == before["stable"] and not sim.status.get("candidate")


def test_job_results_are_read_from_its_conditions():
    assert job_result({"status": {}}) is None
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    assert job_result(failed) == ("Failed", "the Job failed: BackoffLimitExceeded")
