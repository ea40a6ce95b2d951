"""A/B statistics against statsmodels, the decision, and status.abTest in the planner."""

import math

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (proportion_effectsize, proportions_ztest,
                                          samplesize_proportions_2indep_onetail)

from modelops_operator.analysis import CheckResult, Result, Verdict
from modelops_operator.analysis.abtest import (COLLECTING, DECIDED, INVALID, NO_DIFFERENCE, Decision, DecisionError, Variant,
                                               decide, required_sample_size, z_test)

from .sim import Sim, always, verdict
from .sim import deployed
from .test_planner import AB, stable_version, v2

DECISION = {"baselineRate": 0.1, "minimumDetectableEffect": 0.02, "alpha": 0.05, "power": 0.8,
            "maxDuration": "24h", "conversionMetric": "shop_conversions_total", "exposureMetric": "modelops_requests_total"}


@pytest.mark.parametrize("xc,nc,xt,nt", [
    (100, 1000, 130, 1000), (480, 4000, 400, 3900), (5, 60, 9, 61), (3000, 30000, 3000, 30000),
    (1, 10, 9, 10), (120, 2000, 121, 1500),
])
def test_z_test_matches_statsmodels(xc, nc, xt, nt):
    z, p = z_test(xc, nc, xt, nt)
    ref_z, ref_p = proportions_ztest([xt, xc], [nt, nc])  # pooled variance, two-sided, like ours
    assert z == pytest.approx(ref_z, rel=1e-9) and p == pytest.approx(ref_p, rel=1e-9, abs=1e-15)


def test_z_test_corners():
    assert z_test(0, 100, 0, 100) == (0.0, 1.0)
    assert z_test(50, 50, 80, 80) == (0.0, 1.0)
    z, p = z_test(100, 1000, 100, 1000)
    assert z == 0 and p == pytest.approx(1.0)
    with pytest.raises(ValueError):
        z_test(0, 0, 1, 10)


@pytest.mark.parametrize("p1,mde,alpha,power", [
    (0.1, 0.02, 0.05, 0.8), (0.3, 0.05, 0.01, 0.9), (0.02, 0.005, 0.05, 0.8), (0.5, 0.1, 0.1, 0.5),
    (0.9, 0.05, 0.05, 0.95),
])
def test_sample_size_matches_the_closed_form(p1, mde, alpha, power):
    n = required_sample_size(p1, mde, alpha, power)
    # statsmodels' two-independent-proportions size: pooled variance under H0, unpooled under H1.
    ref = samplesize_proportions_2indep_onetail(mde, p1, power, alpha=alpha, alternative="two-sided")
    assert n == math.ceil(ref)
    # NormalIndPower works on Cohen's h (arcsine scale): close, not equal (most apart near 0 or 1),
    # so it is not the reference.
    cohen = NormalIndPower().solve_power(proportion_effectsize(p1 + mde, p1), alpha=alpha, power=power)
    assert abs(n - cohen) / n < 0.05


def test_known_sample_size():
    # 10% baseline, +2 points, alpha 0.05, power 0.8: the textbook 3841 per group.
    assert required_sample_size(0.1, 0.02) == 3841
    assert required_sample_size(0.1, 0.04) < required_sample_size(0.1, 0.02) < required_sample_size(0.1, 0.01)
    with pytest.raises(ValueError):
        required_sample_size(0.95, 0.1)


def variants(nc, xc, nt, xt):
    return Variant("control", "stable", nc, xc), Variant("candidate", "candidate", nt, xt)


def test_not_read_before_both_groups_have_the_sample_size():
    d = Decision.from_spec({"decision": DECISION})
    # A huge difference, but the control has too few exposures: no p-value, no winner.
    out = decide(*variants(3000, 100, 5000, 1000), d)
    assert out.status == COLLECTING and out.winner is None and out.p_value is None and out.required == 3841
    assert "3000 control / 5000 candidate exposures, 3841 needed per group" in out.message
    assert out.to_status() == {"variants": [
        {"name": "control", "track": "stable", "exposures": 3000, "conversions": 100},
        {"name": "candidate", "track": "candidate", "exposures": 5000, "conversions": 1000}],
        "requiredSampleSize": 3841}


def test_winner_either_way_or_no_difference_at_the_planned_size():
    d = Decision.from_spec({"decision": DECISION})
    better = decide(*variants(4000, 400, 4000, 500), d)
    assert better.status == DECIDED and better.winner == "candidate" and better.p_value < 0.05 and better.z > 0
    assert better.to_status()["winner"] == "candidate" and better.to_status()["pValue"] == pytest.approx(better.p_value, rel=1e-5)
    worse = decide(*variants(4000, 500, 4000, 400), d)
    assert worse.status == DECIDED and worse.winner == "control"
    same = decide(*variants(4000, 400, 4000, 410), d)
    # Read once at the planned size: no difference then keeps the control, no more looks.
    assert same.status == DECIDED and same.winner == NO_DIFFERENCE and same.p_value > 0.05
    assert "no significant difference at the planned sample size" in same.message and "pValue" in same.to_status()


def test_more_conversions_than_exposures_is_invalid():
    out = decide(*variants(4000, 5000, 4000, 400), Decision.from_spec({"decision": DECISION}))
    assert out.status == INVALID and "conversionMetric" in out.message and out.winner is None


@pytest.mark.parametrize("change,field", [
    ({"baselineRate": 0}, "spec.strategy.abTest.decision.baselineRate"),
    ({"minimumDetectableEffect": "2%"}, "spec.strategy.abTest.decision.minimumDetectableEffect"),
    ({"baselineRate": 0.9, "minimumDetectableEffect": 0.1}, "spec.strategy.abTest.decision: baselineRate"),
    ({"alpha": 0.6}, "spec.strategy.abTest.decision.alpha"),
    ({"power": 1.0}, "spec.strategy.abTest.decision.power"),
    ({"conversionMetric": 'x{a="b"}'}, "spec.strategy.abTest.decision.conversionMetric"),
])
def test_bad_decision_settings_name_the_field(change, field):
    with pytest.raises(DecisionError, match=field.replace(".", r"\.")):
        Decision.from_spec({"decision": {**DECISION, **change}})
    with pytest.raises(DecisionError, match="spec.strategy.abTest.decision"):
        Decision.from_spec({})


# --- the planner writes the experiment's numbers to status.abTest ----------------------------


EXPERIMENT = {"variants": [{"name": "control", "track": "stable", "exposures": 1200, "conversions": 120},
                           {"name": "candidate", "track": "candidate", "exposures": 1100, "conversions": 130}],
              "requiredSampleSize": 3841}


def with_experiment(v: Verdict, experiment: dict) -> Verdict:
    return Verdict(v.result, v.reason, v.message, v.checks, v.winner, experiment)


def test_status_shows_the_experiment_and_the_winner():
    sim = Sim(AB, name="offers")
    sim.run(deployed)
    v2(sim)
    collecting = with_experiment(verdict("Inconclusive"), EXPERIMENT)
    sim.run(lambda s: "abTest" in s.status, judge=lambda r: collecting)
    assert sim.status["abTest"] == EXPERIMENT and sim.status["stage"] == "Experimenting"
    request = sim.requests[-1]
    assert request.ab_test["decision"]["baselineRate"] == 0.1 and request.monitor["port"] == 9091
    done = {**EXPERIMENT, "pValue": 0.001, "winner": "candidate"}
    won = with_experiment(Verdict(Result.PASS, "AllChecksPassed", "the candidate converts better",
                                  (CheckResult("abtest.conversion", Result.PASS, 0.001),), "candidate"), done)
    sim.run(lambda s: stable_version(s) == "2.0.0", judge=lambda r: won)
    assert sim.status["abTest"]["winner"] == "candidate" and sim.status["abTest"]["pValue"] == 0.001
    # The next rollout starts without the old experiment's numbers.
    sim.set_spec(model__version="3.0.0", model__image="reg/offers:3.0.0")
    sim.run(lambda s: (s.status.get("candidate") or {}).get("version") == "3.0.0", judge=always("Inconclusive"))
    assert "abTest" not in sim.status
