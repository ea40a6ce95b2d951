"""Two operator processes with leader election on, as the chart's ServiceAccount, on the
local cluster: the leader is SIGKILLed at random moments while rollouts of every
strategy run, and restarted (it comes back as a standby). A standby takes over
and finishes every rollout, without a repeated or skipped step, and only ever one
process writes.

Takeover times (SIGKILL to the new leader's acquisition of the Lease, and to its first
reconcile) are measured; with MODELOPS_TAKEOVER_RESULTS=DIR they are written to
DIR/operator_takeover.{json,md} (bench/results/ holds the published run)."""

from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ..conftest import gateway_routing
from ..kube import wait_for
from .operator_harness import OperatorProcess, events, get_md, install_chart
from .test_operator import FAIL, PASS, RELEASE, apply, md, set_version

pytestmark = pytest.mark.cluster

LEASE = f"{RELEASE}-operator"  # the chart's default Lease name: its RBAC grants only that one
# Short terms, so the test is quick; MODELOPS_TAKEOVER_LEASE=15,10,2 measures the chart's defaults.
DURATION, RENEW, RETRY = (float(v) for v in os.environ.get("MODELOPS_TAKEOVER_LEASE", "4,3,1").split(","))
SEED = 20261125
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 25}, {"weight": 50, "pause": "1s"}, {"weight": 75}]}}
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


class Candidate(OperatorProcess):
    def identity(self) -> str:
        return f"{platform.node()}_{self.proc.pid}"

    def segments(self) -> list[str]:
        """The log of each start, in order."""
        return re.split(r"\n===== start \d+ =====\n", self.log())[1:]


def log_time(line: str) -> float:
    return datetime.strptime(LOG_TIME.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def lease(cluster, namespace) -> dict:
    res = cluster.kubectl("get", "lease", LEASE, "-n", namespace, "-o", "json", check=False)
    return json.loads(res.stdout)["spec"] if res.returncode == 0 else {}


@pytest.fixture
def pair(cluster, crd, namespace, prometheus, tmp_path):  # noqa: F811 - the fixture imported above
    install_chart(cluster, namespace, RELEASE)
    kubeconfig = cluster.service_account_kubeconfig(namespace, LEASE, tmp_path / "sa.kubeconfig")
    args = ("--leader-elect", f"--lease-name={LEASE}", f"--lease-namespace={namespace}",
            f"--lease-duration={DURATION:g}", f"--renew-deadline={RENEW:g}", f"--retry-period={RETRY:g}")
    ops = [Candidate(kubeconfig, namespace, tmp_path / f"operator-{n}.log", prometheus.url, args) for n in "ab"]
    for op in ops:
        op.start()
    yield ops
    for op in ops:
        op.stop()
    for op in ops:
        print(f"----- {op.log_path.name}\n{op.log()[-15000:]}")  # pytest shows it when the test failed
    cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)


def leader_of(cluster, namespace, ops, timeout=30.0, not_=None) -> tuple[Candidate, dict]:
    """The process holding the Lease, other than the one of identity not_."""
    def find():
        spec = lease(cluster, namespace)
        holder = spec.get("holderIdentity")
        op = next((o for o in ops if o.alive() and o.identity() == holder), None)
        return op is not None and holder != not_ and (op, spec)
    return wait_for(find, timeout, interval=0.1, message="a leader")


def first_after(op: Candidate, pattern: str, after: float) -> float | None:
    for line in op.segments()[-1].splitlines():
        if pattern in line and LOG_TIME.match(line) and log_time(line) >= after:
            return log_time(line)
    return None


ROLLOUTS = {  # name -> (strategy, extra analysis / spec, end phase and stable version after 2.0.0)
    "churn": lambda gw: (CANARY, {}, ("Succeeded", "2.0.0")),
    "fraud": lambda gw: ({"type": "BlueGreen", "blueGreen": {}, "scaleDownDelay": "2s"}, {}, ("Succeeded", "2.0.0")),
    "pricing": lambda gw: ({"type": "Shadow", "shadow": {"mirrorPercent": 40, "duration": "10s"},
                            "trafficRouting": gw}, {"champion": {"enabled": False}}, ("Succeeded", "2.0.0")),
    "offers": lambda gw: ({"type": "ABTest", "trafficRouting": gw, "abTest": {
        "split": {"candidateWeight": 30},
        "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.02, "maxDuration": "10s"}}},
        {}, ("RolledBack", "1.0.0")),  # no winner within maxDuration: the control is kept
}
# What one uninterrupted run of each announces, per rollout: a takeover changes none of it.
CANARY_OK = ["RolloutStarted", "StepWeightSet", "StepStarted", "StepWeightSet", "PauseEnded", "StepStarted",
             "StepWeightSet", "Promoting", "Promoted"]


def done(cluster, namespace, name, phase, version, rollout_version) -> bool:
    st = get_md(cluster, namespace, name).get("status") or {}
    return st.get("phase") == phase and (st.get("stable") or {}).get("version") == version and \
        not st.get("candidate") and (rollout_version is None or
                                     bool(st.get("history")) and st["history"][0]["version"] == rollout_version)


def test_standby_takes_over_every_rollout(cluster, namespace, pair, envoy_gateway, tmp_path):
    rng = random.Random(SEED)
    gw = gateway_routing(envoy_gateway, namespace)
    leader, spec = leader_of(cluster, namespace, pair)
    assert spec["leaseDurationSeconds"] == DURATION
    standby = next(o for o in pair if o is not leader)
    # The standby opens no watch (kopf does not run) and starts no worker.
    wait_for(lambda: "no watch is opened until it leads" in standby.log(), 30, message="the standby standing by")
    assert "the controller started" not in standby.log() and "kopf" not in standby.log()

    for name, make in ROLLOUTS.items():
        strategy, extra, _ = make(gw)
        apply(cluster, namespace, md(name, strategy=strategy, replicas=2, **extra))
    for name in ROLLOUTS:
        wait_for(lambda n=name: done(cluster, namespace, n, "Succeeded", "1.0.0", None), 120,
                 message=f"{name} on 1.0.0")

    takeovers, kills = [], 0

    def kill_leader():
        nonlocal leader, kills
        old, old_identity = leader, leader.identity()
        assert all(o.alive() for o in pair)
        before = int(lease(cluster, namespace).get("leaseTransitions", 0))
        mds = json.loads(cluster.kubectl("get", "md", "-n", namespace, "-o", "json").stdout)["items"]
        moment = {m["metadata"]["name"]: "/".join(filter(None, [(m.get("status") or {}).get("phase"),
                                                              (m.get("status") or {}).get("stage")]))
                  for m in mds}
        killed_at = time.time()
        old.kill9()
        kills += 1
        old.start()  # Kubernetes would restart it: it comes back as a standby
        # Either standby may win: the restarted one first read the Lease as soon as it
        # started, the other only at its next retry, so their terms can end in either order.
        leader, spec = leader_of(cluster, namespace, pair, timeout=4 * DURATION + 10, not_=old_identity)
        assert int(spec["leaseTransitions"]) == before + 1
        acquired = first_after(leader, "the controller started", killed_at)
        first_pass = wait_for(lambda: first_after(leader, "first pass done", killed_at), 30,
                              message="the new leader's first reconcile")
        lease_acquired = datetime.strptime(spec["acquireTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc).timestamp()
        takeovers.append({"kill": kills, "lease_acquired_s": round(lease_acquired - killed_at, 3),
                          "leading_s": round(acquired - killed_at, 3) if acquired else None,
                          "first_reconcile_s": round(first_pass - killed_at, 3), "during": moment})

    for version, churn_checks, churn_end in [("2.0.0", PASS, "Succeeded"), ("3.0.0", FAIL, "RolledBack")]:
        ends = {}
        for name, make in ROLLOUTS.items():
            end = make(gw)[2]
            if name == "churn":
                set_version(cluster, namespace, name, version, analysis={"customChecks": churn_checks})
                end = (churn_end, "2.0.0" if churn_end == "RolledBack" else version)
            else:
                set_version(cluster, namespace, name, version)
                if end[0] == "Succeeded":
                    end = ("Succeeded", version)
                else:
                    end = (end[0], "1.0.0")
            ends[name] = end
        deadline, round_kills = time.monotonic() + 240 + 8 * DURATION, 0
        pending = set(ends)
        while pending and time.monotonic() < deadline:
            pending = {n for n in pending if not done(cluster, namespace, n, *ends[n], version)}
            if pending and round_kills < 4:
                time.sleep(rng.uniform(0.2, 3.0))
                kill_leader()
                round_kills += 1
            time.sleep(0.3)
        assert not pending, f"not finished after the takeovers: {pending}"
    kill_leader()  # at rest: a takeover of idle ModelDeployments changes nothing
    time.sleep(2 * RETRY)

    # Every step exactly once: Events are named by the transition's sequence number, so
    # none is announced twice; their reasons are those of an uninterrupted run.
    expected = {
        "churn": ["Deploying", "Available", *CANARY_OK, "RolloutStarted", "StepWeightSet", "AnalysisFailed"],
        "fraud": ["Deploying", "Available", *["RolloutStarted", "StepWeightSet", "Promoting", "Promoted"] * 2],
        "pricing": ["Deploying", "Available", *["RolloutStarted", "ShadowStarted", "Promoting", "Promoted"] * 2],
        "offers": ["Deploying", "Available", *["RolloutStarted", "ExperimentStarted", "ControlKept"] * 2],
    }
    seen = {}
    for name in ROLLOUTS:
        st = get_md(cluster, namespace, name)["status"]
        seq = st["transition"]["seq"]
        evs = wait_for(lambda n=name, s=seq: len(e := events(cluster, namespace, n)) >= s and e, 30,
                       message=f"every transition of {name} announced")
        assert [int(e["metadata"]["name"].rsplit(".", 1)[1]) for e in evs] == list(range(1, seq + 1)), name
        seen[name] = [e["reason"] for e in evs]
        # One history entry per rollout, newest first: none repeated, none lost.
        assert [h["version"] for h in st["history"]][:2] == ["3.0.0", "2.0.0"], (name, st["history"])
    print(json.dumps(seen, indent=1))
    assert seen == expected

    # Only the leader wrote. Every write of a transition is logged by the process that
    # made it; a process logs none before it leads, and no transition is written twice.
    written = []
    for op in pair:
        for segment in op.segments():
            lines = segment.splitlines()
            lead = next((i for i, line in enumerate(lines) if "the controller started" in line), len(lines))
            for i, line in enumerate(lines):
                if m := re.search(r": (\S+)/(\S+): (\w+) \(transition (\d+)\)$", line):
                    assert i > lead, f"{op.log_path.name}: a write before leading: {line}"
                    written.append((m.group(2), int(m.group(4))))
    assert len(written) == len(set(written)), "a transition written twice"
    assert kills >= 3
    assert any(any(not p.startswith(("Succeeded", "RolledBack")) for p in t["during"].values()) for t in takeovers)

    result = {"lease_duration_s": DURATION, "renew_deadline_s": RENEW, "retry_period_s": RETRY, "seed": SEED,
              "strategies": ["Canary", "BlueGreen", "Shadow", "ABTest"], "takeovers": takeovers}
    for key in ("lease_acquired_s", "first_reconcile_s"):
        values = [t[key] for t in takeovers]
        result[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    # The standby waited for the Lease to lapse (it never took a live leader's), and not much longer.
    for t in takeovers:
        assert DURATION - RETRY - 0.5 <= t["lease_acquired_s"] <= DURATION + 2 * RETRY + 10, t
    _publish(result)


def _publish(result: dict) -> None:
    """One row per lease setting; a run replaces the row of its own setting."""
    out = os.environ.get("MODELOPS_TAKEOVER_RESULTS")
    runs = [result]
    if out and (Path(out) / "operator_takeover.json").exists():
        old = json.loads((Path(out) / "operator_takeover.json").read_text()).get("runs", [])
        setting = ("lease_duration_s", "renew_deadline_s", "retry_period_s")
        runs += [r for r in old if [r[k] for k in setting] != [result[k] for k in setting]]
    runs.sort(key=lambda r: r["lease_duration_s"])
    summary = "\n".join(
        f"| {r['lease_duration_s']:g} / {r['renew_deadline_s']:g} / {r['retry_period_s']:g} | {len(r['takeovers'])} | "
        f"{r['lease_acquired_s']['min']:.2f} / {r['lease_acquired_s']['median']:.2f} / "
        f"{r['lease_acquired_s']['max']:.2f} | {r['first_reconcile_s']['min']:.2f} / "
        f"{r['first_reconcile_s']['median']:.2f} / {r['first_reconcile_s']['max']:.2f} |" for r in runs)
    details = "\n\n".join(
        f"Lease {r['lease_duration_s']:g}s / {r['renew_deadline_s']:g}s / {r['retry_period_s']:g}s:\n\n"
        "| kill | Lease acquired (s) | first reconcile (s) | phase of each ModelDeployment at the kill |\n"
        "|---|---|---|---|\n" + "\n".join(
            f"| {t['kill']} | {t['lease_acquired_s']:.2f} | {t['first_reconcile_s']:.2f} | "
            + ", ".join(f"{k} {v}" for k, v in sorted(t["during"].items())) + " |" for t in r["takeovers"])
        for r in runs)
    md_ = f"""# Operator takeover

Two operator processes with leader election on the local cluster; the leader is SIGKILLed at random moments
(seed {SEED}) while Canary, BlueGreen, Shadow and ABTest rollouts run, and restarted as the standby. Seconds
from the SIGKILL until the standby acquired the Lease (its acquireTime) and until its first reconcile
finished (its log). Produced by `tests/integration/test_operator_ha.py` with
MODELOPS_TAKEOVER_RESULTS=bench/results (and MODELOPS_TAKEOVER_LEASE=duration,deadline,retry).

| Lease duration / renew deadline / retry period (s) | kills | Lease acquired: min / median / max (s) \
| first reconcile: min / median / max (s) |
|---|---|---|---|
{summary}

The standby takes the Lease once it has seen no renewal for the Lease duration, checking every retry period:
between duration - retry and duration + retry after the kill, plus the API round trips. It opens its watches
only then (a standby watches nothing), so its first reconcile follows once they have listed the objects.

{details}
"""
    if out:
        from bench.results import publish
        publish(Path(out), "operator_takeover", {"runs": runs}, md_)
    else:
        print(md_)
