"""End-to-end blue-green: the new colour is analysed on smoke traffic to its preview
Service before users see it; a good one is switched to, a bad one never is."""

from __future__ import annotations

import time

import pytest

from ...kube import wait_for
from .test_rollouts import deploy_stable, start_rollout

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

BLUE_GREEN = {"type": "BlueGreen", "blueGreen": {"prePromotionAnalysis": True}}


def test_blue_green_switches_after_preview_analysis_and_never_to_a_bad_green(stack, models):
    blue = deploy_stable(stack, models, strategy=BLUE_GREEN)
    users = stack.traffic(rate=10, rows=5)  # the active Service
    watch = stack.watch()
    green = start_rollout(stack, models, "2.0.0", "churn-xgboost-v1", strategy=BLUE_GREEN)
    smoke = stack.traffic(rate=10, rows=5, service="churn-preview", seed=2)

    st = wait_for(lambda: (s := stack.status()).get("phase") == "Succeeded" and
                  (s.get("stable") or {}).get("revision") == green and s, 180, interval=0.3,
                  message="the green 2.0.0 promoted after its preview analysis")
    assert st["history"][0]["outcome"] == "Succeeded" and st["lastVerdict"]["result"] == "Pass"
    assert all(c["samples"] >= 100 for c in st["lastVerdict"]["checks"] if "samples" in c)
    # The switch is recorded (stage Promoting) before the active Service's selector
    # changes: until then every user request went to the blue.
    switch, _ = wait_for(lambda: watch.first(lambda s: s.get("stage") == "Promoting" or
                                             (s.get("stable") or {}).get("revision") == green), 5,
                         message="the switch seen by the status log")
    before = [r for r in users.requests if r[0] < switch - 0.5]
    assert before and {r[2] for r in before} == {blue}
    wait_for(lambda: {r[2] for r in users.between(time.time() - 2)} == {green}, 60,
             message="users on the green")
    smoke.stop()

    # A bad green: its preview traffic drifts. The active Service never points at it.
    bad = start_rollout(stack, models, "3.0.0", "churn-xgboost-v1", strategy=BLUE_GREEN)
    smoke = stack.traffic(rate=10, rows=5, service="churn-preview", seed=3)
    smoke.drift("mean", "monthly_charges", 2.0)
    started = time.time()
    st = wait_for(lambda: (s := stack.status()).get("phase") == "RolledBack" and not s.get("candidate") and s,
                  180, interval=0.3, message="the bad green rolled back")
    assert st["stable"]["revision"] == green and st["history"][0]["outcome"] == "RolledBack"
    assert {c["name"] for c in st["failedChecks"]} & {"drift.share", "drift.feature.monthly_charges"}
    assert bad not in {r[2] for r in users.between(started)}  # no user request ever reached it
    assert not [r for r in users.requests if r[3] != 200]
    assert blue != green
