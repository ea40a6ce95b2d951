"""Faults survived: rollouts of every strategy, each hit by one fault of the cluster,
its network or its metrics, must end as they would have without it.

Five ModelDeployments roll out from 1.0.0 to 2.0.0 at once in one namespace: a Canary
(25/50/75 through Envoy Gateway), a Canary whose candidate fails 30% of its requests,
a BlueGreen, a Shadow and an A/B test (no conversions come, so the control is kept).
The analysis reads the service levels of real monitor processes (the pod runner runs
each pod's monitor; the test hands them records through each pod's socket, as the model
server would) through a real Prometheus. The operator reaches the API server through a
TCP proxy. Once every rollout is under way, one fault is done to the real component
(no-fault: none, the control):

- apiserver-restart: kube-apiserver stopped and started again;
- etcd-pause: etcd frozen (SIGSTOP) for 20 s;
- watches-dropped: every connection of the operator's closed, three times;
- slow-connection: 300 ms added to every chunk each way, and a connection reset every
  2 s, for 25 s;
- prometheus-flapping: Prometheus killed and started again, four times;
- monitor-killed: every candidate's monitor SIGKILLed while its analysis runs (the pod
  runner restarts it after a 5 s back-off, as a kubelet would);
- pod-deleted: every candidate's pod deleted (its ReplicaSet makes another).

Every rollout must end as without the fault: the same outcome, the same Events in order
(each transition announced once: no step repeated or skipped), no verdict passed on
missing data (every check of a passing analysis counted at least minSampleSize
requests), the failing candidate never promoted, and no child of another revision left.

With MODELOPS_FAULTS_RESULTS=DIR the rows go to DIR/faults.{json,md}, the table in the
README:  MODELOPS_FAULTS_RESULTS=bench/results make test TESTS=tests/e2e/local/test_faults.py
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from ...conftest import gateway_routing
from ...faults import TcpProxy, pause, restart_apiserver
from ...integration.operator_harness import children, events, get_md
from ...kube import CommandError, wait_for
from ..feeder import Feeder
from .conftest import churn, open_stack

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

MIN_SAMPLES = 150  # 7.5 s of records at 20 a second: no gate can pass before the fault comes
ANALYSIS = {"interval": "2s", "minSampleSize": MIN_SAMPLES, "failureLimit": 2, "inconclusiveLimit": 60,
            "drift": {"enabled": False}, "slo": {"maxErrorRate": 0.05, "maxLatencyP99": "1s"}}
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 25}, {"weight": 50, "pause": "2s"}, {"weight": 75}]},
          "scaleDownDelay": "2s"}
AB = {"type": "ABTest", "abTest": {"split": {"candidateWeight": 30}, "decision": {
    "baselineRate": 0.1, "minimumDetectableEffect": 0.02, "maxDuration": "20s"}}, "scaleDownDelay": "2s"}
ROLLOUTS = {  # name -> (strategy, through the gateway, end phase and stable version, Events of the rollout)
    "canary": (CANARY, True, ("Succeeded", "2.0.0"),
               ["RolloutStarted", "StepWeightSet", "StepStarted", "StepWeightSet", "PauseEnded", "StepStarted",
                "StepWeightSet", "Promoting", "Promoted"]),
    "failing": (CANARY, True, ("RolledBack", "1.0.0"), ["RolloutStarted", "StepWeightSet", "AnalysisFailed"]),
    "bluegreen": ({"type": "BlueGreen", "blueGreen": {}, "scaleDownDelay": "2s"}, False, ("Succeeded", "2.0.0"),
                  ["RolloutStarted", "StepWeightSet", "Promoting", "Promoted"]),
    "shadow": ({"type": "Shadow", "shadow": {"mirrorPercent": 50, "duration": "20s"}, "scaleDownDelay": "2s"}, True,
               ("Succeeded", "2.0.0"),
               ["RolloutStarted", "ShadowStarted", "Promoting", "Promoted"]),
    "abtest": (AB, True, ("RolledBack", "1.0.0"), ["RolloutStarted", "ExperimentStarted", "ControlKept"]),
}
FAILING_ERRORS = 0.3  # the failing candidate's share of 5xx answers
SEED = 20261203


def no_fault(stack, candidates):
    return {}


def of_candidates(stack, candidates) -> list:
    """The running pods of every rollout's candidate."""
    return [p for p in stack.runner.running()
            if candidates.get(p.labels.get("modelops.io/modeldeployment")) == p.labels.get("modelops.io/revision")]


def monitor_killed(stack, candidates):
    killed = 0
    for pod in of_candidates(stack, candidates):
        proc = pod.procs.get("monitor")
        if proc and proc.alive():
            os.killpg(proc.p.pid, signal.SIGKILL)
            killed += 1
    assert killed >= len(candidates)
    return {"monitors killed": killed}


def pod_deleted(stack, candidates):
    names = [p.name for p in of_candidates(stack, candidates)]
    assert len(names) >= len(candidates)
    stack.cluster.kubectl("delete", "pod", "-n", stack.namespace, "--wait=false", *names)
    return {"pods deleted": len(names)}


def apiserver_restart(stack, candidates):
    return {"API server unready (s)": round(restart_apiserver(stack.cluster), 1)}


def etcd_pause(stack, candidates):
    pause("etcd", 20)
    return {"etcd paused (s)": 20}


def watches_dropped(stack, candidates):
    dropped = 0
    for _ in range(3):
        dropped += stack.proxy.drop_all()
        time.sleep(4)
    return {"connections closed": dropped}


def slow_connection(stack, candidates):
    stack.proxy.latency, stack.proxy.reset_every = 0.3, 2.0
    before = stack.proxy.dropped
    time.sleep(25)
    stack.proxy.latency, stack.proxy.reset_every = 0.0, None
    return {"latency (ms)": 300, "connections reset": stack.proxy.dropped - before}


def prometheus_flapping(stack, candidates):
    prom, down = stack.prometheus, 0.0
    for _ in range(4):
        went = time.monotonic()
        prom.proc.kill()
        prom.proc.wait(10)
        prom.log.close()
        time.sleep(3)
        prom.start()  # the same port and storage; returns once it is ready
        down += time.monotonic() - went
        time.sleep(3)
    return {"Prometheus down (s)": round(down, 1)}


FAULTS = {f.__name__.replace("_", "-"): f for f in (
    no_fault, apiserver_restart, etcd_pause, watches_dropped, slow_connection, prometheus_flapping, monitor_killed,
    pod_deleted)}


def spec(models, name, version, gw):
    strategy, through_gateway, _, _ = ROLLOUTS[name]
    analysis = {**ANALYSIS, **({"champion": {"enabled": False}} if strategy["type"] == "Shadow" else {})}
    doc = churn(models, version, "churn-sklearn-v1", replicas=1, strategy=strategy,
                routing=gw if through_gateway else None, **analysis)
    doc["metadata"]["name"] = name
    return doc


def status(stack, name) -> dict:
    """The status, or {} while the API server does not answer (it may be the fault)."""
    try:
        return stack.status(name)
    except CommandError:
        return {}


def leftovers(cluster, ns, name, revision) -> dict:
    """What is left of `revision` of ModelDeployment `name`: children named for it
    (Deployments, ConfigMaps, ...), its pods, and any Deployment but the stable's."""
    now = children(cluster, ns, name)
    out = {kind: [x for x in names if revision in x] for kind, names in now.items()}
    out["pods"] = [p["metadata"]["name"] for p in cluster.get_json(
        "pods", "-l", f"modelops.io/modeldeployment={name},modelops.io/revision={revision}", namespace=ns)["items"]]
    if len(now["deployments"]) != 1:
        out["more than one Deployment"] = now["deployments"]
    return {k: v for k, v in out.items() if v}


def finished(st, phase, version) -> bool:
    return st.get("phase") == phase and (st.get("stable") or {}).get("version") == version and \
        not st.get("candidate") and bool(st.get("history")) and st["history"][0]["version"] == "2.0.0"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_rollouts_end_right_through(fault, cluster, crd, namespace, models, envoy_gateway, tmp_path):
    proxy = TcpProxy(cluster.server.removeprefix("https://"), seed=SEED)
    gw = gateway_routing(envoy_gateway, namespace)
    stable_revisions: dict[str, str] = {}

    def errors(pod) -> float:
        md, rev = pod.labels.get("modelops.io/modeldeployment"), pod.labels.get("modelops.io/revision")
        return FAILING_ERRORS if md == "failing" and stable_revisions.get(md) not in (None, rev) else 0.0

    try:
        with open_stack(cluster, namespace, tmp_path, runner_args={"containers": ("monitor",), "restart_backoff": 5.0},
                        operator_kubeconfig=lambda k: proxy.kubeconfig(k, tmp_path / "proxied.kubeconfig")) as stack:
            stack.proxy = proxy
            stack.watchers.append(Feeder(stack.runner, rate=20.0, errors=errors, seed=SEED))  # stopped with the stack
            row = run_rollouts(stack, models, gw, fault, stable_revisions)
    finally:
        proxy.close()
    _publish(fault, row)


def run_rollouts(stack, models, gw, fault, stable_revisions) -> dict:
    cluster, ns = stack.cluster, stack.namespace
    for name in ROLLOUTS:
        stack.apply(spec(models, name, "1.0.0", gw))
    for name in ROLLOUTS:
        st = stack.wait_phase("Succeeded", "1.0.0", name=name)
        stable_revisions[name] = st["stable"]["revision"]
    seq0 = {name: get_md(cluster, ns, name)["status"]["transition"]["seq"] for name in ROLLOUTS}
    logs = {name: stack.watch(name) for name in ROLLOUTS}

    started = time.time()
    for name in ROLLOUTS:
        stack.apply(spec(models, name, "2.0.0", gw))
    # Under way: every rollout has a candidate whose monitor takes records (its analysis runs).
    candidates = wait_for(lambda: (c := {n: (stack.status(n).get("candidate") or {}).get("revision")
                                         for n in ROLLOUTS}) and all(c.values()) and c, 60,
                          message="every rollout to start")
    for name, rev in candidates.items():
        stack.runner.wait_serving(1, 60, modeldeployment=name, revision=rev)
    time.sleep(random.Random(SEED).uniform(0.5, 1.5))
    during = {n: "/".join(filter(None, [(st := stack.status(n)).get("phase"), st.get("stage")])) for n in ROLLOUTS}
    fault_at = time.time()
    measured = FAULTS[fault](stack, candidates)

    ends = {name: ROLLOUTS[name][2] for name in ROLLOUTS}
    last: dict[str, dict] = {}

    def all_ended() -> bool:
        last.update({n: status(stack, n) for n in ROLLOUTS})
        return all(finished(last[n], *ends[n]) for n in ROLLOUTS)
    try:
        wait_for(all_ended, 300, interval=1, message=f"every rollout to end after {fault}")
    except TimeoutError:
        pytest.fail(f"not ended 300 s after {fault}: " + json.dumps(
            {n: {k: v for k, v in st.items() if k != "history"}
             for n, st in last.items() if not finished(st, *ends[n])}, default=str))
    done_at = time.time()

    out = {"fault": fault, "measured": measured, "during": during, "rollouts": {}}
    for name in ROLLOUTS:
        st = stack.status(name)
        # The same Events as without the fault, each transition announced once, in order.
        seq = st["transition"]["seq"]
        evs = wait_for(lambda n=name, s=seq: len(e := events(cluster, ns, n)) >= s and e, 30,
                       message=f"every transition of {name} announced")
        assert [int(e["metadata"]["name"].rsplit(".", 1)[1]) for e in evs] == list(range(1, seq + 1)), name
        assert [e["reason"] for e in evs][seq0[name]:] == ROLLOUTS[name][3], (name, [e["reason"] for e in evs])
        # No verdict passed on missing data.
        verdicts = [v for _, v in logs[name].verdicts]
        for v in verdicts:
            if v["result"] == "Pass":
                assert all(c["result"] == "Pass" for c in v["checks"]), (name, v)
                assert all(c.get("samples", MIN_SAMPLES) >= MIN_SAMPLES for c in v["checks"]), (name, v)
        if name == "failing":
            assert any(c["name"] == "slo.errorRate" for c in st["failedChecks"]), st["failedChecks"]
            assert "Promoted" not in [e["reason"] for e in evs]
        # Nothing of the other revision is left.
        stable = st["stable"]["revision"]
        gone = candidates[name] if stable == stable_revisions[name] else stable_revisions[name]
        try:
            wait_for(lambda n=name, g=gone: not leftovers(cluster, ns, n, g), 60)
        except TimeoutError:
            pytest.fail(f"{name}: left of revision {gone}: {leftovers(cluster, ns, name, gone)}")
        out["rollouts"][name] = {
            "outcome": f"{st['phase']} on {st['stable']['version']}",
            "seconds": round(max(t for t, _ in logs[name].entries) - started, 1) if logs[name].entries else None,
            "inconclusive analyses": sum(v["result"] == "Inconclusive" for v in verdicts),
        }
    # Every rollout was still under way when the fault came.
    assert all(not p.startswith(("Succeeded", "RolledBack")) for p in during.values()), during
    out["seconds to the last end"] = round(done_at - fault_at, 1)
    print(json.dumps(out, indent=1))
    return out


def _publish(fault: str, row: dict | None) -> None:
    """Adds (or replaces) the fault's row; None re-renders the rows there are."""
    out = os.environ.get("MODELOPS_FAULTS_RESULTS")
    if not out:
        return
    path = Path(out) / "faults.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = [r for r in rows if r["fault"] != fault] + ([row] if row else [])
    order = list(FAULTS)
    rows.sort(key=lambda r: order.index(r["fault"]) if r["fault"] in order else len(order))
    names = list(ROLLOUTS)
    lines = [f"| {r['fault']} | " + ", ".join(f"{k} {v}" for k, v in r["measured"].items()) + " | " + " | ".join(
        f"{r['rollouts'][n]['outcome']}, {r['rollouts'][n]['seconds']} s ({r['rollouts'][n]['inconclusive analyses']}"
        " inconclusive)" for n in names) + " |" for r in rows]
    md = f"""# Faults survived

{len(names)} rollouts from 1.0.0 to 2.0.0 at once on the local cluster, one fault done to a real component once
all are under way (`tests/e2e/local/test_faults.py`; reproduce with
`MODELOPS_FAULTS_RESULTS=bench/results make test TESTS=tests/e2e/local/test_faults.py`). Each row passed:
the same outcome and Events (in order, each once) as without the fault, no analysis passed on missing data, the
failing candidate never promoted, no child of the other revision left. Each cell: the outcome, the seconds from
the new version's apply to the rollout's end, and in brackets the analyses that were inconclusive (missing or
too few data), which waited instead of deciding.

| fault | measured | {' | '.join(names)} |
|---|---|{'---|' * len(names)}
{chr(10).join(lines)}
"""
    from bench.results import publish
    publish(Path(out), "faults", {"rows": rows}, md)
