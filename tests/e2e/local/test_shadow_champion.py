"""End-to-end: a shadow compared with the production model on the same requests.

Envoy Gateway mirrors every request to the shadow with its x-request-id; both model
servers hand that key to their monitors, and the operator matches the shadow's answers
with the stable's. A shadow that answers the opposite for the third of customers with
the shortest tenure (examples/train_churn.py, labels inverted there) disagrees with the
champion on about a third of the requests while its inputs are the stable's: it is not
promoted. The XGBoost model, which agrees on about nine in ten, is."""

from __future__ import annotations

import pytest

from ...kube import wait_for
from .test_gateways import shadow
from .test_rollbacks import rolled_back
from .test_rollouts import wait_promoted

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

CHAMPION = {"champion": {"maxDisagreement": 0.2}}


@pytest.fixture(scope="module")
def contrary_model(models):
    from train_churn import train_one  # examples/ is on sys.path (the models fixture)

    path = train_one("xgboost", "v1", models, rows=8000, seed=7, training_date="2026-01-01", inverted=1 / 3)
    return path.name


def agreement_check(st: dict) -> dict:
    checks = (st.get("lastVerdict") or {}).get("checks", []) + st.get("failedChecks", [])
    return next(c for c in checks if c["name"] == "champion.agreement")


def test_a_shadow_that_disagrees_with_the_champion_is_not_promoted(stack, models, envoy_gateway, contrary_model):
    traffic, _ = shadow(models, stack, envoy_gateway, contrary_model, 100, "60s", CHAMPION)
    st = wait_for(rolled_back(stack), 150, interval=0.5, message="the contrary shadow rolled back")
    check = agreement_check(st)
    print(f"contrary shadow: {check}")
    assert check["result"] == "Fail" and 0.25 < float(check["value"]) < 0.42, check
    assert "maxDisagreement" in check["message"] and st["history"][0]["reason"] == "AnalysisFailed"
    assert not [r for r in traffic.requests if r[3] != 200]  # clients only ever saw the stable


def test_a_shadow_that_agrees_with_the_champion_is_promoted(stack, models, envoy_gateway):
    traffic, watch = shadow(models, stack, envoy_gateway, "churn-xgboost-v1", 100, "30s", CHAMPION)
    wait_promoted(stack)
    verdicts = [s.get("lastVerdict") or {} for _, s in watch.entries]
    seen = [c for v in verdicts for c in v.get("checks", []) if c["name"] == "champion.agreement"]
    assert seen and seen[-1]["result"] == "Pass" and float(seen[-1]["value"]) < 0.15, seen[-1:]
    assert seen[-1]["samples"] >= 100
    assert not [r for r in traffic.requests if r[3] != 200]
