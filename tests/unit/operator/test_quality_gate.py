"""The quality gate: the candidate's online quality from delayed labels against the
stable's (analysis/quality_gate.py). The statistics against statsmodels and scipy, the
level of the test at the boundary by simulation, the corner cases of the check, the
pooling of pods, both providers' parsing, and settings errors that name the field."""

import asyncio
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.proportion import test_proportions_2indep as two_proportions

from modelops_operator.analysis import AnalysisRequest, Result
from modelops_operator.analysis.abtest import z_test
from modelops_operator.analysis.checks import Settings, SettingsError, TrackNumbers, evaluate, from_drift_json, merge_pods
from modelops_operator.analysis.quality_gate import (QualityScore, QualitySettings, compare, merge,
                                                     quality_check)
from modelops_operator.analysis.runner import with_defaults
from modelops_operator.spec import SpecError, parse

OFF = {"drift": {"enabled": False}, "slo": {"enabled": False}}


def settings(metric="accuracy", max_loss=0.02, min_labelled=200, significance=0.05) -> QualitySettings:
    return QualitySettings(metric, max_loss, min_labelled, significance)


def prop(rate, n) -> QualityScore:
    return QualityScore(rate, math.sqrt(rate * (1 - rate) / n), n)


def track(labelled=1000, **quality) -> TrackNumbers:
    return TrackNumbers(samples=labelled, requests=labelled, labelled=labelled, quality=quality)


# --- the statistics ---------------------------------------------------------------------


@pytest.mark.parametrize("xc,nc,xt,nt,diff", [(160, 200, 140, 200, -0.02), (800, 1000, 790, 1000, 0.05),
                                              (30, 45, 40, 52, 0.0), (999, 1000, 990, 1000, -0.01)])
def test_z_test_with_a_margin_matches_statsmodels(xc, nc, xt, nt, diff):
    z, p = z_test(xc, nc, xt, nt, difference=diff)  # pooled, as proportions_ztest pools
    z_ref, p_ref = proportions_ztest([xt, xc], [nt, nc], value=diff)
    assert z == pytest.approx(z_ref) and p == pytest.approx(p_ref)
    z, p = z_test(xc, nc, xt, nt, difference=diff, pooled=False)
    ref = two_proportions(xt, nt, xc, nc, value=diff, method="wald", compare="diff")
    assert z == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)


@pytest.mark.parametrize("xs,ns,xc,nc,margin", [(160, 200, 140, 200, 0.02), (800, 1000, 700, 1000, 0.05),
                                                (199, 200, 190, 200, 0.01), (100, 300, 110, 300, 0.0)])
def test_proportion_gate_is_the_one_sided_agresti_caffo_test(xs, ns, xc, nc, margin):
    r = compare("accuracy", QualityScore(xc / nc, None, nc), QualityScore(xs / ns, None, ns), margin, 0.05)
    ref = two_proportions(xs, ns, xc, nc, value=margin, method="agresti-caffo", compare="diff",
                                  alternative="larger")
    assert r.z == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert r.loss == pytest.approx(xs / ns - xc / nc)
    assert r.failed == (ref.pvalue < 0.05)
    # The check fails exactly when the interval lies above maxLoss.
    assert r.failed == (r.low > margin)


def test_proportion_gate_holds_its_level_at_the_boundary():
    """Candidate worse by exactly maxLoss: it fails about `significance` of the time, no more."""
    rng = np.random.default_rng(0)
    n, reps, margin = 300, 4000, 0.03
    xs = rng.binomial(n, 0.80, reps)
    xc = rng.binomial(n, 0.77, reps)
    fails = sum(compare("accuracy", QualityScore(c / n, None, n), QualityScore(s / n, None, n), margin, 0.05).failed
                for s, c in zip(xs, xc))
    assert 0.03 < fails / reps < 0.065


def test_normal_gate_matches_scipy_and_orients_errors():
    c, s = QualityScore(0.80, 0.012, 800), QualityScore(0.86, 0.010, 900)
    r = compare("roc_auc", c, s, 0.02, 0.05)
    se = math.hypot(0.012, 0.010)
    assert r.loss == pytest.approx(0.06) and r.z == pytest.approx(0.04 / se)
    assert r.p_value == pytest.approx(stats.norm.sf(0.04 / se))
    assert (r.low, r.high) == pytest.approx((0.06 - stats.norm.ppf(0.95) * se, 0.06 + stats.norm.ppf(0.95) * se))
    assert r.failed
    # RMSE: the loss is the candidate's rise.
    r = compare("rmse", QualityScore(2.5, 0.05, 500), QualityScore(2.0, 0.05, 500), 0.3, 0.05)
    assert r.loss == pytest.approx(0.5) and r.failed
    r = compare("rmse", QualityScore(1.5, 0.05, 500), QualityScore(2.0, 0.05, 500), 0.0, 0.05)
    assert r.loss == pytest.approx(-0.5) and not r.failed


def test_auc_gate_with_delong_errors_holds_its_level():
    """AUC and DeLong's standard error from the monitor's own window, both tracks from one
    score distribution, maxLoss 0: about 5% false failures."""
    from modelops_services.quality import QualityWindow

    rng = np.random.default_rng(1)

    def window():
        q = QualityWindow("classification", n_sub=1)
        y = rng.integers(0, 2, 300)
        score = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
        for a, sc in zip(y, score):
            q.add(int(a), int(sc > 0.5), float(sc))
        return QualityScore(q.metrics()["roc_auc"], q.stderr()["roc_auc"], q.samples()["roc_auc"])

    reps = 600
    fails = sum(compare("roc_auc", window(), window(), 0.0, 0.05).failed for _ in range(reps))
    assert fails / reps < 0.085  # 5% nominal; 600 replicates have a standard deviation of ~0.9%


def test_zero_standard_errors_decide_on_the_values():
    same = QualityScore(1.0, 0.0, 500)
    assert not compare("roc_auc", same, same, 0.0, 0.05).failed
    assert compare("roc_auc", QualityScore(0.9, 0.0, 500), same, 0.05, 0.05).failed
    # Proportions of exactly 1: Agresti-Caffo keeps a variance; no evidence of a loss.
    r = compare("accuracy", QualityScore(1.0, 0.0, 300), QualityScore(1.0, 0.0, 300), 0.0, 0.05)
    assert not r.failed and r.p_value == pytest.approx(0.5)


# --- the check ----------------------------------------------------------------------------


def test_a_clearly_worse_candidate_fails_naming_everything():
    check = quality_check(track(accuracy=prop(0.70, 1000)), track(accuracy=prop(0.80, 1000)), settings())
    assert check.name == "quality.accuracy" and check.result is Result.FAIL
    assert check.value == pytest.approx(0.10) and check.samples == 1000
    for text in ("candidate 0.7", "stable 0.8", "drop of 0.1", "90% interval", "spec.analysis.quality.maxLoss 0.02"):
        assert text in check.message, check.message


def test_a_candidate_as_good_passes():
    check = quality_check(track(accuracy=prop(0.79, 1000)), track(accuracy=prop(0.80, 1000)), settings())
    assert check.result is Result.PASS and "not significantly more than" in check.message


def test_too_few_labels_is_inconclusive_for_either_track():
    s = settings(min_labelled=500)
    for cand, stable in ((track(499, accuracy=prop(0.5, 499)), track(1000, accuracy=prop(0.9, 1000))),
                         (track(1000, accuracy=prop(0.5, 1000)), track(499, accuracy=prop(0.9, 499)))):
        check = quality_check(cand, stable, s)
        assert check.result is Result.INCONCLUSIVE and "spec.analysis.quality.minLabelled 500" in check.message
        assert check.samples == 499
    # Exactly minLabelled: decides.
    assert quality_check(track(500, accuracy=prop(0.5, 500)), track(500, accuracy=prop(0.9, 500)),
                         s).result is Result.FAIL


def test_exactly_at_max_loss_passes():
    s = settings("roc_auc", max_loss=0.05)
    check = quality_check(track(roc_auc=QualityScore(0.80, 0.001, 1000)), track(roc_auc=QualityScore(0.85, 0.001, 1000)),
                          s)
    assert check.value == pytest.approx(0.05) and check.result is Result.PASS
    check = quality_check(track(roc_auc=QualityScore(0.79, 0.001, 1000)), track(roc_auc=QualityScore(0.85, 0.001, 1000)),
                          s)
    assert check.result is Result.FAIL


def test_missing_stable_and_missing_labels_are_inconclusive():
    cand = track(accuracy=prop(0.5, 1000))
    assert "stable" in quality_check(cand, None, settings()).message
    assert quality_check(cand, None, settings()).result is Result.INCONCLUSIVE
    assert quality_check(cand, TrackNumbers(samples=10), settings()).result is Result.INCONCLUSIVE
    check = quality_check(TrackNumbers(samples=1000), track(accuracy=prop(0.5, 1000)), settings())
    assert check.result is Result.INCONCLUSIVE and "/feedback" in check.message


def test_nan_and_missing_values_are_inconclusive():
    nan = float("nan")
    stable = track(recall=prop(0.6, 300), roc_auc=QualityScore(0.8, 0.01, 1000))
    # No positives among the candidate's labels: recall is NaN with no rows.
    check = quality_check(track(recall=QualityScore(nan, nan, 0)), stable, settings("recall"))
    assert check.result is Result.INCONCLUSIVE and "recall is undefined" in check.message
    check = quality_check(track(roc_auc=QualityScore(0.7, nan, 1000)), stable, settings("roc_auc"))
    assert check.result is Result.INCONCLUSIVE and "standard error" in check.message
    check = quality_check(track(accuracy=prop(0.7, 1000)), stable, settings("f1"))
    assert check.result is Result.INCONCLUSIVE


def test_strategies_without_labels_for_the_candidate_are_inconclusive():
    check = quality_check(track(accuracy=prop(0.5, 1000)), track(accuracy=prop(0.9, 1000)), settings(), "Shadow")
    assert check.result is Result.INCONCLUSIVE and "Canary or ABTest" in check.message


def test_evaluate_adds_the_gate_only_when_set():
    cand, stable = track(accuracy=prop(0.6, 1000)), track(accuracy=prop(0.8, 1000))
    analysis = with_defaults(AnalysisRequest("ns", "m", "Canary", "a", "b", 0, 60, {**OFF})).analysis
    assert not [c for c in evaluate(cand, stable, analysis, "Canary") if c.name.startswith("quality.")]
    req = AnalysisRequest("ns", "m", "Canary", "a", "b", 0, 60, {**OFF, "quality": {"metric": "accuracy", "maxLoss": 0.05}})
    analysis = with_defaults(req).analysis
    assert analysis["quality"] == {"metric": "accuracy", "maxLoss": 0.05, "minLabelled": 200, "significance": 0.05}
    checks = {c.name: c for c in evaluate(cand, stable, analysis, "Canary")}
    assert checks["quality.accuracy"].result is Result.FAIL


# --- pooling pods -------------------------------------------------------------------------


def test_proportions_pool_their_counts():
    pods = [{"accuracy": prop(0.8, 100)}, {"accuracy": prop(0.6, 300)}, {"accuracy": QualityScore(None, None, 0)}]
    merged = merge(pods)["accuracy"]
    assert merged.value == pytest.approx((80 + 180) / 400) and merged.samples == 400
    assert merged.stderr == pytest.approx(math.sqrt(0.65 * 0.35 / 400))


def test_f1_is_recomputed_from_pooled_counts():
    def pod(tp, fp, fn, tn):
        n = tp + fp + fn + tn
        return {"precision": QualityScore(tp / (tp + fp), None, tp + fp), "recall": QualityScore(tp / (tp + fn), None, tp + fn),
                "f1": QualityScore(2 * tp / (2 * tp + fp + fn), 0.0, n)}
    merged = merge([pod(50, 10, 20, 120), pod(30, 30, 5, 135)])["f1"]
    tp, fp, fn = 80, 40, 25
    assert merged.value == pytest.approx(2 * tp / (2 * tp + fp + fn)) and merged.samples == 400
    assert merged.stderr == pytest.approx(math.sqrt(4 * tp * (fp + fn) * (tp + fp + fn)) / (2 * tp + fp + fn) ** 2)


def test_rmse_pools_squared_errors_and_weighted_means_the_rest():
    pods = [{"rmse": QualityScore(1.0, 0.1, 100), "mae": QualityScore(0.8, 0.05, 100), "r2": QualityScore(0.5, 0.04, 100)},
            {"rmse": QualityScore(2.0, 0.2, 300), "mae": QualityScore(1.6, 0.1, 300), "r2": QualityScore(0.3, 0.02, 300)}]
    m = merge(pods)
    mse = (100 * 1.0 + 300 * 4.0) / 400
    assert m["rmse"].value == pytest.approx(math.sqrt(mse))
    var_mse = (0.25 * 2 * 1.0 * 0.1) ** 2 + (0.75 * 2 * 2.0 * 0.2) ** 2
    assert m["rmse"].stderr == pytest.approx(math.sqrt(var_mse) / (2 * math.sqrt(mse)))
    assert m["mae"].value == pytest.approx(0.25 * 0.8 + 0.75 * 1.6)
    assert m["r2"].stderr == pytest.approx(math.hypot(0.25 * 0.04, 0.75 * 0.02))


def test_one_pod_is_kept_as_it_is():
    pod = {"roc_auc": QualityScore(0.8, 0.013, 500), "f1": QualityScore(0.6, 0.02, 500)}
    assert merge([pod]) == pod


def test_merge_pods_adds_labelled_rows():
    a = TrackNumbers(samples=100, labelled=40, quality={"accuracy": prop(0.5, 40)})
    b = TrackNumbers(samples=100, labelled=60, quality={"accuracy": prop(1.0, 60)})
    merged = merge_pods([a, b])
    assert merged.labelled == 100 and merged.quality["accuracy"].value == pytest.approx(0.8)
    assert merge_pods([TrackNumbers(samples=5)]).labelled is None


# --- the providers' parsing ---------------------------------------------------------------


def test_numbers_from_the_monitor_drift_document():
    nan = None  # the monitor's JSON has null for NaN
    doc = {"window": {"rows": 900, "labelled_rows": 700}, "drift": {"window_rows": 900},
           "quality": {"task": "classification", "accuracy": 0.8, "precision": nan, "recall": 0.5, "f1": 0.6,
                       "roc_auc": 0.85, "stderr": {"accuracy": 0.015, "roc_auc": 0.014, "precision": nan},
                       "samples": {"accuracy": 700, "precision": 0, "recall": 200, "f1": 700, "roc_auc": 700}}}
    t = from_drift_json(doc)
    assert t.labelled == 700
    assert t.quality["accuracy"] == QualityScore(0.8, 0.015, 700)
    assert t.quality["precision"] == QualityScore(None, None, 0)
    assert t.quality["roc_auc"].stderr == 0.014
    assert from_drift_json({"drift": {}}).quality == {} and from_drift_json({}).labelled is None


def test_prometheus_reads_the_quality_series_per_pod(monkeypatch):
    from modelops_operator.analysis.providers.prometheus import PrometheusProvider

    provider = PrometheusProvider("http://prometheus.invalid")
    series = {
        "modelops_model_quality{": [("a", "s-0", 0.8, 500), ("b", "c-0", 0.7, 250), ("b", "c-1", 0.6, 250)],
    }
    queries = []

    async def query_vector(promql, address=None):
        queries.append(promql)
        out = []
        for rev, pod, value, n in series["modelops_model_quality{"]:
            base = {"revision": rev, "pod": pod}
            if "modelops_model_quality_stderr{" in promql:
                out.append(({**base, "method": "accuracy"}, math.sqrt(value * (1 - value) / n)))
            elif "modelops_model_quality_samples{" in promql:
                out.append(({**base, "method": "accuracy"}, float(n)))
            elif "modelops_model_quality{" in promql:
                out.append(({**base, "method": "accuracy"}, value))
                out.append(({**base, "method": "roc_auc"}, float("nan")))
            elif "modelops_window_labelled_samples" in promql:
                out.append((base, float(n)))
            elif "modelops_window_samples" in promql:
                out.append((base, 1000.0))
        return out

    monkeypatch.setattr(provider, "query_vector", query_vector)
    req = AnalysisRequest("ns", "m", "Canary", "a", "b", 0, 60,
                          {**OFF, "quality": {"metric": "accuracy", "maxLoss": 0.02, "minLabelled": 200}})
    tracks = asyncio.run(provider.tracks(with_defaults(req)))
    assert tracks["b"].labelled == 500 and tracks["b"].quality["accuracy"].value == pytest.approx(0.65)
    assert tracks["b"].quality["roc_auc"].value is None
    checks = asyncio.run(provider.monitor_checks(with_defaults(req)))
    assert {c.name: c.result for c in checks}["quality.accuracy"] is Result.FAIL
    # Without the gate, no quality series are asked for.
    queries.clear()
    asyncio.run(provider.tracks(with_defaults(AnalysisRequest("ns", "m", "Canary", "a", "b", 0, 60, {}))))
    assert not [q for q in queries if "quality" in q or "labelled" in q]


def test_the_direct_provider_reads_the_stable_for_the_gate(monkeypatch):
    from modelops_operator.analysis.providers.direct import DirectProvider

    provider = DirectProvider(api=object())
    read = []

    async def fake_track(request, revision, role, port, session, limit):
        read.append(role)
        acc = 0.6 if role == "candidate" else 0.8
        return TrackNumbers(samples=1000, labelled=1000, quality={"accuracy": prop(acc, 1000)}), None

    monkeypatch.setattr(provider, "track", fake_track)
    req = with_defaults(AnalysisRequest("ns", "m", "Canary", "a", "b", 0, 60,
                                        {**OFF, "quality": {"metric": "accuracy", "maxLoss": 0.05}}))
    checks = {c.name: c.result for c in asyncio.run(provider.measure(req))}
    assert sorted(read) == ["candidate", "stable"]
    assert checks["quality.accuracy"] is Result.FAIL


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("quality,field", [
    ({"metric": "auc", "maxLoss": 0.1}, "spec.analysis.quality.metric"),
    ({"maxLoss": 0.1}, "spec.analysis.quality.metric"),
    ({"metric": "accuracy"}, "spec.analysis.quality.maxLoss"),
    ({"metric": "accuracy", "maxLoss": -0.01}, "spec.analysis.quality.maxLoss"),
    ({"metric": "accuracy", "maxLoss": float("nan")}, "spec.analysis.quality.maxLoss"),
    ({"metric": "accuracy", "maxLoss": True}, "spec.analysis.quality.maxLoss"),
    ({"metric": "roc_auc", "maxLoss": 1.5}, "spec.analysis.quality.maxLoss"),
    ({"metric": "accuracy", "maxLoss": 0.1, "minLabelled": 0}, "spec.analysis.quality.minLabelled"),
    ({"metric": "accuracy", "maxLoss": 0.1, "minLabelled": 10.5}, "spec.analysis.quality.minLabelled"),
    ({"metric": "accuracy", "maxLoss": 0.1, "significance": 0}, "spec.analysis.quality.significance"),
    ({"metric": "accuracy", "maxLoss": 0.1, "significance": 0.7}, "spec.analysis.quality.significance"),
    ("yes", "spec.analysis.quality"),
])
def test_bad_settings_name_the_field(quality, field):
    analysis = with_defaults(AnalysisRequest("ns", "m", "Canary", "a", "b", 0, 60, {})).analysis
    with pytest.raises(SettingsError, match=field.replace(".", r"\.") + ":"):
        Settings.from_analysis({**analysis, "quality": quality})
    spec = {"model": {"name": "m", "version": "1.0.0", "image": "x"}, "replicas": 2,
            "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50}]}}, "analysis": {"quality": quality}}
    with pytest.raises(SpecError) as err:
        parse(spec)
    assert err.value.field == field


def test_large_losses_are_fine_for_unbounded_metrics():
    assert QualitySettings.from_analysis({"quality": {"metric": "rmse", "maxLoss": 25}}).max_loss == 25.0
    assert QualitySettings.from_analysis({}) is None


def test_the_spec_refuses_the_gate_where_no_labels_reach_the_candidate():
    spec = {"model": {"name": "m", "version": "1.0.0", "image": "x"}, "replicas": 2,
            "strategy": {"type": "BlueGreen", "blueGreen": {}}, "analysis": {"quality": {"metric": "f1", "maxLoss": 0.05}}}
    with pytest.raises(SpecError) as err:
        parse(spec)
    assert err.value.field == "spec.analysis.quality" and "Canary or ABTest" in str(err.value)
    spec["strategy"] = {"type": "Canary", "canary": {"steps": [{"weight": 50}]}}
    assert parse(spec).analysis  # accepted under Canary
