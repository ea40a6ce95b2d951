"""End-to-end: bad releases are stopped by the analysis of their live traffic, and a
rollout without metrics never promotes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ...kube import wait_for
from ..faulty import flaky_model_dir
from .test_rollouts import deploy_stable, pods_of, start_rollout

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

# With MODELOPS_ROLLBACK_RESULTS=DIR the drift scenario's figures go to DIR/e2e_rollback.json
# (bench/results holds the committed ones); a plain test run leaves the clone as it was.
RESULTS = os.environ.get("MODELOPS_ROLLBACK_RESULTS")
RATE, ROWS = 10, 5  # requests/s, rows per request
DRIFT = {"kind": "mean", "feature": "monthly_charges", "amount": 2.0}  # + 2 standard deviations


def rolled_back(stack):
    def check():
        st = stack.status()
        return st.get("phase") == "RolledBack" and (st.get("stable") or {}).get("version") == "1.0.0" \
            and not st.get("candidate") and st
    return check


def back_on_stable(stack, traffic, stable: str, candidate: str, since: float) -> float:
    """Waits until the candidate's pods are gone and requests reach only the stable
    revision; returns when the last request went to the candidate."""
    wait_for(lambda: not pods_of(stack, candidate), 60, message="the candidate's pods removed")
    time.sleep(2)
    recent = traffic.between(time.time() - 1.5)
    assert recent and {r[2] for r in recent} == {stable}
    to_candidate = [r[0] for r in traffic.between(since) if r[2] == candidate]
    return max(to_candidate) if to_candidate else since


def test_drifting_canary_is_rolled_back_by_itself(stack, models):
    stable = deploy_stable(stack, models)
    traffic = stack.traffic(rate=RATE, rows=ROWS)
    watch = stack.watch()
    candidate = start_rollout(stack, models, "2.0.0", "churn-xgboost-v1")  # default drift thresholds
    # The canary serves some normal traffic; then the inputs shift (a unit change
    # upstream, say), before any gate could have passed.
    wait_for(lambda: traffic.rows_by_revision[candidate] >= 50, 30, interval=0.1, message="canary traffic")
    traffic.drift(DRIFT["kind"], DRIFT["feature"], DRIFT["amount"])
    onset = traffic.drift_started

    st = wait_for(rolled_back(stack), 180, interval=0.25, message="the drifting canary rolled back")
    decided_at, _ = wait_for(lambda: watch.first(lambda s: s.get("phase") == "RolledBack"), 5,
                             message="the rollback seen by the status log")
    assert st["history"][0]["outcome"] == "RolledBack"
    assert any(c["name"].startswith("drift.") for c in st["failedChecks"]), st["failedChecks"]
    assert "monthly_charges" in json.dumps(st["failedChecks"])
    assert st["weights"]["candidate"] == 0

    last_to_candidate = back_on_stable(stack, traffic, stable, candidate, onset)
    # The stable shrank to 1 pod for the canary; it is back to 2 serving pods when the
    # second one's model server answers (kwok schedules it at once; BentoML starts in seconds).
    full_at = max(p.started_at for p in stack.runner.wait_serving(2, 60, revision=stable))
    gates = [v for t, v in watch.verdicts if onset < t <= decided_at + 0.5]
    canary_rows = sum(r[4] for r in traffic.between(onset, decided_at) if r[2] == candidate and r[3] == 200)
    result = {
        "scenario": "canary at 50% of 2 replicas (replica-ratio routing); the traffic drifts mid-canary",
        "drift": DRIFT,
        "analysis": {"interval_s": 5, "failureLimit": 2, "minSampleSize": 100, "monitor_window": "30s",
                     "drift": "CRD defaults (psi warn 0.1, fail 0.25, maxDriftedFeatureShare 0.3)",
                     "prometheus_scrape_interval_s": 2},
        "traffic": {"requests_per_s": RATE, "rows_per_request": ROWS},
        "canary_rows_from_drift_onset_to_rollback_decision": canary_rows,
        "analysis_intervals_from_drift_onset_to_rollback_decision": len(gates),
        "verdicts_after_onset": [v["result"] for v in gates],
        "seconds_from_drift_onset_to_rollback_decision": round(decided_at - onset, 2),
        "seconds_from_rollback_decision_until_all_traffic_on_stable": round(max(0.0, last_to_candidate - decided_at), 2),
        "seconds_from_rollback_decision_until_stable_serves_all_replicas": round(full_at - decided_at, 1),
        "decision_time_resolution_s": 0.25,
        "failed_checks": st["failedChecks"],
    }
    print(json.dumps(result, indent=1))
    if RESULTS:
        Path(RESULTS).mkdir(parents=True, exist_ok=True)
        (Path(RESULTS) / "e2e_rollback.json").write_text(json.dumps(result, indent=1) + "\n")
    # Nobody's request failed on the way.
    assert not [r for r in traffic.requests if r[3] != 200]


def test_failing_canary_is_rolled_back_on_its_error_rate(stack, models, tmp_path):
    stable = deploy_stable(stack, models)
    traffic = stack.traffic(rate=RATE, rows=ROWS)
    # A release whose model fails about a third of its calls.
    flaky_model_dir(models / "churn-sklearn-v1", models / f"churn-flaky-{tmp_path.name}", 0.3)
    candidate = start_rollout(stack, models, "2.0.0", f"churn-flaky-{tmp_path.name}")
    st = wait_for(rolled_back(stack), 180, interval=0.25, message="the failing canary rolled back")
    failed = {c["name"]: c for c in st["failedChecks"]}
    assert "slo.errorRate" in failed, st["failedChecks"]
    assert float(failed["slo.errorRate"]["value"]) > 0.02
    back_on_stable(stack, traffic, stable, candidate, time.time())
    # Users saw errors only from the candidate, and none once it was gone.
    errors = [r for r in traffic.requests if r[3] != 200]
    assert errors and {r[2] for r in errors} == {candidate}
    assert not [r for r in traffic.between(time.time() - 1.5) if r[3] != 200]


def test_rollout_pauses_without_prometheus_and_never_promotes(stack, models):
    stable = deploy_stable(stack, models)
    traffic = stack.traffic(rate=RATE, rows=ROWS)
    watch = stack.watch()
    candidate = start_rollout(stack, models, "2.0.0", "churn-xgboost-v1", inconclusiveLimit=3)
    stack.prometheus.stop()  # before any gate could pass
    st = wait_for(lambda: (s := stack.status()).get("phase") == "Paused" and s, 120, interval=0.25,
                  message="the rollout to pause")
    assert st["lastVerdict"]["result"] == "Inconclusive"
    assert "Prometheus" in st["lastVerdict"]["message"]
    paused = next(c for c in st["conditions"] if c["type"] == "Paused")
    assert paused["status"] == "True" and paused["reason"] == "InconclusiveAnalysis"
    # Several analysis intervals later it still waits for a person, the canary still
    # serves its share, and 1.0.0 is still stable.
    time.sleep(20)
    st = stack.status()
    assert st["phase"] == "Paused" and st["stable"]["revision"] == stable
    assert st["candidate"]["revision"] == candidate and st["weights"]["candidate"] == 50
    # The log may start with the stable's own Succeeded: look from the rollout's start.
    begun, _ = watch.first(lambda s: (s.get("candidate") or {}).get("revision") == candidate)
    assert not watch.first(lambda s: s.get("phase") == "Succeeded" or (s.get("weights") or {}).get("candidate") == 100,
                           since=begun)
    recent = traffic.between(time.time() - 5)
    assert {r[2] for r in recent} == {stable, candidate}
    assert not [r for r in traffic.requests if r[3] != 200]
