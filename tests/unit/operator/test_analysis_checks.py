"""The drift and service-level checks on the monitor's numbers, with spec.analysis'
thresholds: the sequential drift rule, the correction across features, pods merged, and
every way of not having enough data."""

import math
import random

import pytest
from statsmodels.stats.multitest import multipletests

from modelops_operator.analysis import AnalysisRequest, Result
from modelops_operator.analysis.checks import (FeatureScore, Settings, SettingsError, TrackNumbers, adjust,
                                               evaluate, evidence_pvalue, from_drift_json, merge_pods)
from modelops_operator.analysis.runner import with_defaults

NAN = float("nan")


def analysis(**sections) -> dict:
    """spec.analysis with the CRD's defaults; sections like drift={...} are merged in."""
    return with_defaults(AnalysisRequest("ml", "churn", "Canary", "a", "b", 0, 30.0, sections)).analysis


def score(p_warn, p_fail=1.0, prediction=False, lower=0.0):
    """A feature whose anytime-valid p-values for the warn and fail bands are given."""
    return FeatureScore(0.01, 0.5, prediction, p_warn, p_fail, lower)


def track(features=None, samples=1000, requests=1000, error_rate=0.0, latency=0.05, predictions=None):
    """features: name -> p_warn or (p_warn, p_fail[, psi_lower])."""
    def one(v, prediction=False):
        v = v if isinstance(v, tuple) else (v,)
        return score(*v[:2], prediction=prediction, lower=v[2] if len(v) > 2 else 0.0)

    feats = {n: one(v) for n, v in (features or {}).items()}
    preds = predictions if predictions is not None else {"__prediction__": 0.9}
    feats.update({n: one(v, True) for n, v in preds.items()})
    return TrackNumbers(samples, requests, error_rate, latency, feats, evidence_rows=samples)


def by_name(checks):
    return {c.name: c for c in checks}


QUIET = {f"f{i}": 1.0 for i in range(10)}


# --- the drift rule -------------------------------------------------------------------


def test_quiet_features_pass_every_default_check():
    checks = by_name(evaluate(track(QUIET), track(QUIET), analysis()))
    assert set(checks) == {"drift.share", "drift.prediction", "slo.errorRate", "slo.latencyP99"}
    assert all(c.result is Result.PASS for c in checks.values())
    assert checks["drift.share"].value == 0 and checks["drift.share"].threshold == "<= 0.3"
    assert checks["drift.share"].progress == 0 and checks["drift.share"].to_status()["progress"] == "0%"
    assert checks["slo.latencyP99"].threshold == "<= 500ms"


def test_share_above_the_limit_fails_and_names_the_features():
    feats = {**QUIET, "f0": 1e-9, "f1": 1e-6, "f2": 1e-4, "f3": 1e-5, "f4": 0.2}
    checks = by_name(evaluate(track(feats), None, analysis()))
    share = checks["drift.share"]
    # f0 to f3 have evidence for the warn band after Holm; f4 has too little.
    assert share.result is Result.FAIL and share.value == pytest.approx(0.4) and share.samples == 1000
    assert "4 of 10 features drifted (f0, f1, f3, f2)" in share.message
    assert "maxDriftedFeatureShare" in share.message and share.progress >= 1
    assert not [c for c in checks if c.startswith("drift.feature.")]  # none at the fail band


def test_evidence_for_the_fail_band_fails_on_its_own():
    feats = {**QUIET, "f0": (0.0, 1e-8, 0.6), "f1": (1e-7, 1e-5, 0.3)}
    checks = by_name(evaluate(track(feats), None, analysis()))
    assert checks["drift.share"].result is Result.PASS and checks["drift.share"].value == pytest.approx(0.2)
    alarm = [c for c in checks.values() if c.name.startswith("drift.feature.")]
    assert [c.name for c in alarm] == ["drift.feature.f0", "drift.feature.f1"]  # strongest evidence first
    assert all(c.result is Result.FAIL and c.threshold == "PSI < 0.25" for c in alarm)
    assert "spec.analysis.drift.psi.fail" in alarm[0].message and alarm[0].value == 0.6
    assert "PSI at least 0.6" in alarm[0].message


def test_an_alarm_does_not_wait_for_the_minimum_sample_size_but_a_pass_does():
    early = by_name(evaluate(track({**QUIET, "f0": (1e-9, 1e-9, 0.9)}, samples=60), None, analysis()))
    assert early["drift.feature.f0"].result is Result.FAIL and early["drift.feature.f0"].samples == 60
    quiet = by_name(evaluate(track(QUIET, samples=60), None, analysis()))["drift.share"]
    assert quiet.result is Result.INCONCLUSIVE and "minSampleSize 200" in quiet.message
    assert "does not wait" in quiet.message


def test_progress_says_how_far_the_evidence_is_from_an_alarm():
    # Holm's first step multiplies by ten features: corrected p = 0.05 ** 0.73.
    p = 0.05 ** 0.73 / 10
    share = by_name(evaluate(track({**QUIET, "f0": (0.5, p)}), None, analysis()))["drift.share"]
    assert share.result is Result.PASS and share.progress == pytest.approx(0.73)
    assert share.to_status()["progress"] == "73%"
    assert "closest to an alarm: f0, 73% of the evidence for PSI >= 0.25" in share.message


def test_exactly_at_thresholds():
    # A share exactly at the limit passes; a corrected p exactly at the significance does not count.
    a = analysis(drift={"maxDriftedFeatureShare": 0.5})
    half = by_name(evaluate(track({"x": 0.001, "y": 1.0}), None, a))["drift.share"]
    assert half.value == 0.5 and half.result is Result.PASS
    at_alpha = by_name(evaluate(track({"x": 0.05}), None, a))["drift.share"]
    assert at_alpha.value == 0.0 and at_alpha.result is Result.PASS and at_alpha.progress == pytest.approx(1.0)
    below = by_name(evaluate(track({"x": 0.0499}), None, a))["drift.share"]
    assert below.value == 1.0 and below.result is Result.FAIL


def test_the_correction_runs_over_the_features_not_ignored():
    feats = {"a": 0.03, "b": 0.03}
    holm = by_name(evaluate(track(feats), None, analysis()))["drift.share"]
    assert holm.value == 0  # Holm over two: 0.06 each, not below 0.05
    one = by_name(evaluate(track(feats), None, analysis(drift={"ignoreFeatures": ["b"]})))["drift.share"]
    assert one.value == 1.0 and one.result is Result.FAIL and "1 ignored" in one.message
    bh = by_name(evaluate(track({"a": 0.02, "b": 0.03, "c": 0.9}), None,
                          analysis(drift={"correction": "BenjaminiHochberg", "maxDriftedFeatureShare": 1})))
    assert bh["drift.share"].value == pytest.approx(2 / 3)  # BH: 0.03, 0.045; Holm would keep neither


def test_a_significance_change_applies_to_the_same_numbers():
    numbers = track({**QUIET, "f0": 0.002, "f1": 0.002, "f2": 0.002, "f3": 0.002})
    assert by_name(evaluate(numbers, None, analysis()))["drift.share"].result is Result.FAIL
    strict = analysis(drift={"significance": 0.001})
    assert by_name(evaluate(numbers, None, strict))["drift.share"].result is Result.PASS


def test_no_features_is_inconclusive_and_all_ignored_passes():
    none = by_name(evaluate(track({}), None, analysis()))["drift.share"]
    assert none.result is Result.INCONCLUSIVE and "no feature scores" in none.message
    ignored = by_name(evaluate(track({"a": (0.0, 0.0)}), None, analysis(drift={"ignoreFeatures": ["a"]})))
    assert ignored["drift.share"].result is Result.PASS and "ignoreFeatures" in ignored["drift.share"].message
    assert "drift.feature.a" not in ignored


def test_unknown_evidence_passes_or_fails_only_when_it_cannot_matter():
    base = {f"f{i}": 1.0 for i in range(8)}
    # Two unknown of ten: at most 0.2 drifted <= 0.3, a pass whatever they are.
    low = by_name(evaluate(track({**base, "u": (NAN, NAN), "v": (None, None)}), None, analysis()))["drift.share"]
    assert low.result is Result.PASS
    # Two drifted and two unknown: between 0.2 and 0.4, unknown.
    mid = {**{f"f{i}": 1.0 for i in range(6)}, "d1": 0.0, "d2": 0.0, "u": (NAN, 1.0), "v": (None, 1.0)}
    unsure = by_name(evaluate(track(mid), None, analysis()))["drift.share"]
    assert unsure.result is Result.INCONCLUSIVE and "2 features have no evidence yet (u, v)" in unsure.message
    # Four drifted of ten already exceed 0.3, whatever the unknown ones are.
    many = {**mid, "f0": 0.0, "f1": 0.0}
    assert by_name(evaluate(track(many), None, analysis()))["drift.share"].result is Result.FAIL


def test_below_the_minimum_sample_size_nothing_passes():
    checks = evaluate(track({"a": 0.9}, samples=150, requests=120, error_rate=0.5), None, analysis())
    assert {c.name for c in checks} == {"drift.share", "drift.prediction", "slo.errorRate", "slo.latencyP99"}
    for c in checks:
        assert c.result is Result.INCONCLUSIVE and "minSampleSize 200" in c.message
    assert by_name(checks)["drift.share"].samples == 150 and by_name(checks)["slo.errorRate"].samples == 120
    missing = by_name(evaluate(TrackNumbers(), None, analysis()))
    assert all(c.result is Result.INCONCLUSIVE and "no data" in c.message for c in missing.values())


def test_evidence_becomes_an_anytime_valid_p_value():
    assert evidence_pvalue(0.0, 240) == 1.0 and evidence_pvalue(None, 240) is None
    assert evidence_pvalue(math.log(240 / 0.05), 240) == pytest.approx(0.05)
    assert evidence_pvalue(3.0, None) is None and evidence_pvalue(NAN, 240) is None


def test_prediction_drift():
    drifted = by_name(evaluate(track(QUIET, predictions={"__prediction__": (1e-12, 1.0, 0.4),
                                                         "__prediction_label__": 0.5}), None, analysis()))
    assert drifted["drift.prediction"].result is Result.FAIL and drifted["drift.prediction"].value == 0.4
    assert "__prediction__ drifted" in drifted["drift.prediction"].message
    assert drifted["drift.share"].result is Result.PASS  # predictions are not features
    absent = by_name(evaluate(track(QUIET, predictions={}), None, analysis()))["drift.prediction"]
    assert absent.result is Result.INCONCLUSIVE
    off = by_name(evaluate(track(QUIET, predictions={}), None, analysis(drift={"prediction": False})))
    assert "drift.prediction" not in off and off["drift.share"].result is Result.PASS


def test_disabled_sections_give_no_checks():
    assert evaluate(track(QUIET), None, analysis(drift={"enabled": False}, slo={"enabled": False})) == []


# --- service levels -------------------------------------------------------------------


def test_error_rate_and_latency_limits():
    a = analysis(slo={"maxErrorRate": 0.02, "maxLatencyP99": "250ms"})
    at = by_name(evaluate(track(QUIET, error_rate=0.02, latency=0.25), None, a))
    assert at["slo.errorRate"].result is Result.PASS and at["slo.latencyP99"].result is Result.PASS
    over = by_name(evaluate(track(QUIET, error_rate=0.021, latency=0.2501), None, a))
    assert over["slo.errorRate"].result is Result.FAIL and "spec.analysis.slo.maxErrorRate" in over["slo.errorRate"].message
    assert over["slo.latencyP99"].result is Result.FAIL and over["slo.latencyP99"].threshold == "<= 250ms"
    unknown = by_name(evaluate(track(QUIET, error_rate=None, latency=NAN), None, a))
    assert unknown["slo.errorRate"].result is Result.INCONCLUSIVE


def test_relative_checks_compare_with_the_stable():
    a = analysis(slo={"maxErrorRateIncrease": 0.01, "maxLatencyP99Ratio": 1.5})
    cand = track(QUIET, error_rate=0.015, latency=0.3)
    ok = by_name(evaluate(cand, track(QUIET, error_rate=0.006, latency=0.2), a))
    assert ok["slo.errorRateIncrease"].result is Result.PASS and ok["slo.errorRateIncrease"].value == pytest.approx(0.009)
    assert ok["slo.latencyP99Ratio"].result is Result.PASS and ok["slo.latencyP99Ratio"].value == pytest.approx(1.5)
    bad = by_name(evaluate(cand, track(QUIET, error_rate=0.004, latency=0.1), a))
    assert bad["slo.errorRateIncrease"].result is Result.FAIL
    assert bad["slo.latencyP99Ratio"].result is Result.FAIL and "300ms vs stable 100ms" in bad["slo.latencyP99Ratio"].message
    for stable in (None, TrackNumbers(pods=0)):
        missing = by_name(evaluate(cand, stable, a))
        assert missing["slo.errorRateIncrease"].result is Result.INCONCLUSIVE
        assert "no numbers from the stable" in missing["slo.latencyP99Ratio"].message
    few = by_name(evaluate(cand, track(QUIET, requests=10), a))
    assert few["slo.errorRateIncrease"].result is Result.INCONCLUSIVE and "stable requests" in few["slo.errorRateIncrease"].message


# --- pods, JSON, settings -------------------------------------------------------------


def test_pods_are_merged():
    a = TrackNumbers(100, 100, 0.1, 0.2, {"x": FeatureScore(0.3, 0.01, False, 0.01, 0.2, 0.3),
                                           "__prediction__": FeatureScore(0.1, 0.5, True)}, evidence_rows=500)
    b = TrackNumbers(300, 300, 0.0, 0.05, {"x": FeatureScore(0.1, 0.2, False, 0.3, 0.6, 0.1),
                                           "y": FeatureScore(NAN, None)}, evidence_rows=1500)
    m = merge_pods([a, b, TrackNumbers()])
    assert (m.samples, m.requests, m.pods, m.evidence_rows) == (400, 400, 2, 2000)
    assert m.error_rate == pytest.approx(0.025) and m.latency_p99 == 0.2
    # Worst PSI and bound; each p-value the smallest times two pods.
    assert m.features["x"] == FeatureScore(0.3, 0.02, False, 0.02, 0.4, 0.3)
    assert m.features["__prediction__"].prediction and m.features["y"].psi is None
    idle = merge_pods([TrackNumbers(0, 0, None, None, {})])
    assert idle.samples == 0 and idle.error_rate is None
    assert merge_pods([]).empty


def test_numbers_from_the_monitor_drift_document():
    doc = {"drift": {"window_rows": 6000, "sequential": {"start_points": 240, "rows": 9000}, "features": [
        {"feature": "monthly_charges", "prediction": False, "psi": 0.41, "pvalue": 0.0,
         "evidence": {"nats": 30.0, "warn": 30.0, "alarm": math.log(240 / 0.01), "psi_lower": 0.33}},
        {"feature": "contract", "prediction": False, "psi": None, "pvalue": None},
        {"feature": "__prediction__", "prediction": True, "psi": 0.02, "pvalue": 0.7,
         "evidence": {"nats": 0.0, "warn": 0.0, "alarm": 0.0, "psi_lower": 0.0}}]},
           "health": {"requests": 600, "error_rate": None, "latency_p99_seconds": 0.012}}
    n = from_drift_json(doc)
    assert (n.samples, n.requests, n.error_rate, n.latency_p99, n.evidence_rows) == (6000, 600, None, 0.012, 9000)
    charges = n.features["monthly_charges"]
    assert (charges.psi, charges.pvalue, charges.psi_lower) == (0.41, 0.0, 0.33)
    assert charges.p_warn == pytest.approx(240 * math.exp(-30)) and charges.p_fail == pytest.approx(0.01)
    assert n.features["contract"] == FeatureScore(None, None)
    assert n.features["__prediction__"].prediction and n.features["__prediction__"].p_warn == 1.0
    assert from_drift_json({}).empty


@pytest.mark.parametrize("section,value,field", [
    ("drift", {"psi": {"warn": 0.3, "fail": 0.2}}, "spec.analysis.drift.psi.warn"),
    ("drift", {"correction": "Bonferroni"}, "spec.analysis.drift.correction"),
    ("drift", {"maxDriftedFeatureShare": 1.5}, "spec.analysis.drift.maxDriftedFeatureShare"),
    ("drift", {"ignoreFeatures": "tenure"}, "spec.analysis.drift.ignoreFeatures"),
    ("slo", {"maxLatencyP99": "fast"}, "spec.analysis.slo.maxLatencyP99"),
    ("slo", {"maxLatencyP99Ratio": 0.5}, "spec.analysis.slo.maxLatencyP99Ratio"),
])
def test_bad_settings_name_the_field(section, value, field):
    with pytest.raises(SettingsError, match=field.replace(".", r"\.")):
        Settings.from_analysis(analysis(**{section: value}))


# --- corrections against statsmodels ----------------------------------------------------


FIXED = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0001, 0.05, 0.5]


@pytest.mark.parametrize("method,reference", [("Holm", "holm"), ("BenjaminiHochberg", "fdr_bh")])
def test_corrections_match_statsmodels(method, reference):
    rng = random.Random(7)
    families = [FIXED, [0.5], [0.01, 0.01, 0.01], [0.0, 1.0],
                *[[rng.random() ** 3 for _ in range(rng.randint(1, 40))] for _ in range(50)]]
    for ps in families:
        ours = adjust(ps, method)
        theirs = multipletests(ps, method=reference)[1]
        assert ours == pytest.approx(list(theirs), rel=1e-12, abs=1e-15)


def test_missing_p_values_stay_out_of_the_family():
    ours = adjust([0.01, None, NAN, 0.04], "Holm")
    assert ours[1] is None and ours[2] is None
    assert ours[0] == pytest.approx(0.02) and ours[3] == pytest.approx(0.04)
    assert adjust([], "Holm") == []
    assert all(math.isclose(a, b) for a, b in zip(adjust([0.01, 0.04], "BenjaminiHochberg"), [0.02, 0.04]))


# --- wiring ----------------------------------------------------------------------------


def test_the_operator_offers_both_providers():
    from modelops_operator.config import OperatorConfig
    from modelops_operator.handlers import default_analyzer

    analyzer = default_analyzer(OperatorConfig.from_env({"MODELOPS_MONITOR_ACCESS": "proxy"}))
    assert set(analyzer.providers) == {"Prometheus", "Direct"}
    assert analyzer.providers["Direct"].access == "proxy"
    assert OperatorConfig.from_env({}).monitor_access == "direct"
    with pytest.raises(ValueError, match="MODELOPS_MONITOR_ACCESS='pods'"):
        OperatorConfig.from_env({"MODELOPS_MONITOR_ACCESS": "pods"})
