"""The monitor's standard errors of its quality metrics: DeLong's AUC variance against a
brute-force computation and against the spread of AUC over repeated samples, the
regression delta methods against numpy and the bootstrap, F1's delta method against
simulation."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from modelops_services.quality import AUC_BINS, QualityWindow, delong_variance


def brute_delong(pos_scores: np.ndarray, neg_scores: np.ndarray) -> tuple[float, float]:
    """(AUC, DeLong variance) over all m x n pairs."""
    psi = (pos_scores[:, None] > neg_scores[None, :]) + 0.5 * (pos_scores[:, None] == neg_scores[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    m, n = len(pos_scores), len(neg_scores)
    return float(psi.mean()), float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)


def window_of(y, score, threshold=0.5) -> QualityWindow:
    q = QualityWindow("classification", n_sub=3)
    for a, s in zip(y, score):
        assert q.add(int(a), int(s > threshold), float(s))
    return q


@pytest.mark.parametrize("seed,m,n", [(0, 12, 9), (1, 40, 60), (2, 3, 2)])
def test_delong_from_histograms_equals_brute_force(seed, m, n):
    rng = np.random.default_rng(seed)
    # Scores at bin centres, some shared: the histogram loses nothing, ties included.
    bins_pos = rng.integers(300, 1000, size=m)
    bins_neg = rng.integers(0, 700, size=n)
    bins_neg[: n // 2] = bins_pos[: n // 2] if m >= n // 2 else bins_neg[: n // 2]
    pos_scores, neg_scores = (bins_pos + 0.5) / AUC_BINS, (bins_neg + 0.5) / AUC_BINS
    q = window_of([1] * m + [0] * n, np.concatenate([pos_scores, neg_scores]))
    auc, var = brute_delong(pos_scores, neg_scores)
    assert q.metrics()["roc_auc"] == pytest.approx(auc, rel=1e-12)
    assert q.stderr()["roc_auc"] == pytest.approx(math.sqrt(var), rel=1e-9)
    assert q.samples()["roc_auc"] == m + n


def test_delong_variance_matches_the_spread_of_auc_over_samples():
    rng = np.random.default_rng(3)
    m, n, reps = 80, 120, 1500
    aucs, variances = [], []
    for _ in range(reps):
        pos = np.clip(rng.normal(0.6, 0.15, m), 0, 1)
        neg = np.clip(rng.normal(0.45, 0.15, n), 0, 1)
        hp = np.bincount(np.minimum((pos * AUC_BINS).astype(int), AUC_BINS - 1), minlength=AUC_BINS)
        hn = np.bincount(np.minimum((neg * AUC_BINS).astype(int), AUC_BINS - 1), minlength=AUC_BINS)
        aucs.append(skm.roc_auc_score([1] * m + [0] * n, np.concatenate([pos, neg])))
        variances.append(delong_variance(hp, hn))
    # 1500 replicates: the empirical variance is within ~7% (2 sd) of the true one.
    assert np.mean(variances) == pytest.approx(np.var(aucs, ddof=1), rel=0.12)


def test_delong_needs_two_of_each_class():
    pos, neg = np.zeros(AUC_BINS), np.zeros(AUC_BINS)
    pos[700], neg[100], neg[200] = 1, 1, 1
    assert math.isnan(delong_variance(pos, neg))
    pos[800] = 1
    assert delong_variance(pos, neg) == 0.0  # perfectly separated: no spread of placements


def test_proportion_errors_are_binomial():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 1000)
    score = np.clip(0.35 * y + 0.65 * rng.uniform(size=1000), 0, 1)
    q = window_of(y, score)
    pred = (score > 0.5).astype(int)
    se, rows = q.stderr(), q.samples()
    acc, prec, rec = skm.accuracy_score(y, pred), skm.precision_score(y, pred), skm.recall_score(y, pred)
    assert rows["accuracy"] == 1000 and rows["precision"] == pred.sum() and rows["recall"] == y.sum()
    assert se["accuracy"] == pytest.approx(math.sqrt(acc * (1 - acc) / 1000))
    assert se["precision"] == pytest.approx(math.sqrt(prec * (1 - prec) / pred.sum()))
    assert se["recall"] == pytest.approx(math.sqrt(rec * (1 - rec) / y.sum()))


def test_f1_delta_method_matches_simulation():
    rng = np.random.default_rng(5)
    probs = np.array([0.2, 0.1, 0.15, 0.55])  # tp, fp, fn, tn
    n, reps = 600, 3000
    counts = rng.multinomial(n, probs, size=reps)
    tp, fp, fn = counts[:, 0], counts[:, 1], counts[:, 2]
    f1 = 2 * tp / (2 * tp + fp + fn)
    q = QualityWindow("classification", n_sub=2)
    for label, pred, k in ((1, 1, 120), (0, 1, 60), (1, 0, 90), (0, 0, 330)):  # the expected counts
        for _ in range(k):
            q.add(label, pred, None)
    assert q.metrics()["f1"] == pytest.approx(2 * 0.2 / (0.4 + 0.25))
    assert q.stderr()["f1"] == pytest.approx(np.std(f1, ddof=1), rel=0.07)


def test_undefined_errors_are_nan():
    q = QualityWindow("classification", n_sub=2)
    assert all(math.isnan(v) for v in q.stderr().values())
    assert all(v == 0 for v in q.samples().values())
    q.add(1, 1, None)  # no score: no AUC
    assert math.isnan(q.stderr()["roc_auc"]) and q.samples()["roc_auc"] == 0
    r = QualityWindow("regression", n_sub=2)
    assert all(math.isnan(v) for v in r.stderr().values())


def regression_window(y, yhat, n_sub=3) -> QualityWindow:
    q = QualityWindow("regression", n_sub=n_sub)
    for a, b in zip(y, yhat):
        assert q.add(float(a), float(b), None)
    return q


def numpy_r2_delta(y, yhat) -> float:
    e2, d2 = (yhat - y) ** 2, (y - y.mean()) ** 2
    a, b, n = e2.mean(), d2.mean(), len(y)
    cov = np.cov(e2, d2, ddof=1)
    return math.sqrt((cov[0, 0] / b**2 + a * a * cov[1, 1] / b**4 - 2 * a * cov[0, 1] / b**3) / n)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_regression_errors_match_numpy(offset):
    rng = np.random.default_rng(6)
    y = offset + rng.normal(10, 3, 1500)
    yhat = y + rng.standard_t(5, 1500)
    q = regression_window(y, yhat)
    e = yhat - y
    se = q.stderr()
    assert q.samples() == {"rmse": 1500, "mae": 1500, "r2": 1500}
    assert se["mae"] == pytest.approx(np.std(np.abs(e), ddof=1) / math.sqrt(1500), rel=1e-6)
    rmse = math.sqrt(np.mean(e**2))
    assert se["rmse"] == pytest.approx(np.std(e**2, ddof=1) / math.sqrt(1500) / (2 * rmse), rel=1e-6)
    # The moments about the mean come from shifted raw sums: exact even 1e6 away from 0.
    assert se["r2"] == pytest.approx(numpy_r2_delta(y, yhat), rel=1e-4)


def test_regression_errors_match_the_bootstrap():
    rng = np.random.default_rng(7)
    n = 800
    y = rng.gamma(2.0, 2.0, n)
    yhat = 0.8 * y + rng.normal(0, 1.5, n)
    se = regression_window(y, yhat).stderr()
    idx = rng.integers(0, n, size=(2000, n))
    yb, hb = y[idx], yhat[idx]
    eb = hb - yb
    rmse = np.sqrt((eb**2).mean(axis=1))
    mae = np.abs(eb).mean(axis=1)
    r2 = 1 - (eb**2).sum(axis=1) / ((yb - yb.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    assert se["rmse"] == pytest.approx(rmse.std(ddof=1), rel=0.1)
    assert se["mae"] == pytest.approx(mae.std(ddof=1), rel=0.1)
    assert se["r2"] == pytest.approx(r2.std(ddof=1), rel=0.1)


def test_regression_errors_slide_with_the_window():
    rng = np.random.default_rng(8)
    q = QualityWindow("regression", n_sub=2)
    for a in rng.normal(0, 1, 200):
        q.add(float(a), float(a) + 5.0, None)  # off by 5: expires
    q.rotate()
    y = rng.normal(0, 1, 300)
    yhat = y + rng.normal(0, 0.5, 300)
    for a, b in zip(y, yhat):
        q.add(float(a), float(b), None)
    q.rotate()
    fresh = regression_window(y, yhat, n_sub=2)
    for k, v in fresh.stderr().items():
        assert q.stderr()[k] == pytest.approx(v, rel=1e-6)
    assert q.metrics()["r2"] == pytest.approx(skm.r2_score(y, yhat), rel=1e-6)


def test_the_monitor_exports_values_errors_and_rows():
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from modelops_services.drift import fit_profile
    from modelops_services.monitor.config import MonitorConfig
    from modelops_services.monitor.exposition import make_registry
    from modelops_services.monitor.state import MonitorState

    rng = np.random.default_rng(9)
    prof = fit_profile({"x": rng.normal(size=500)}, prediction={"__prediction__": rng.uniform(size=500)},
                       info={"task": "classification", "positive_class": 1})
    state = MonitorState(MonitorConfig(profile_path="-", labels={"modeldeployment": "m", "namespace": "ns",
                                                                  "track": "canary", "revision": "r"}), prof)
    scores = rng.uniform(size=300)
    state.observe({"records": [{"id": f"q{i}", "status": 200, "latency_ms": 1.0, "features": [{"x": 0.0}],
                                "predictions": [int(s > 0.5)], "scores": [float(s)], "ids": [f"q{i}-0"]}
                               for i, s in enumerate(scores)]})
    labels = (rng.uniform(size=300) < scores).astype(int)
    assert state.add_feedback({"labels": [{"id": f"q{i}-0", "label": int(y)} for i, y in enumerate(labels)]})[0] == 300
    doc = state.snapshot()["quality"]
    assert doc["samples"]["accuracy"] == 300 and doc["stderr"] == state.quality.stderr()
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(make_registry(state)).decode())}
    stderr = {s.labels["method"]: s.value for s in fams["modelops_model_quality_stderr"].samples}
    rows = {s.labels["method"]: s.value for s in fams["modelops_model_quality_samples"].samples}
    assert set(stderr) == set(rows) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert stderr["roc_auc"] == pytest.approx(state.quality.stderr()["roc_auc"])
    assert rows["recall"] == labels.sum()
