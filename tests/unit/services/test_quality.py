"""Online quality metrics agree with scikit-learn's over the window."""

import numpy as np
import pytest
from sklearn import metrics as skm

from modelops_services.quality import PendingPredictions, QualityWindow


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=3000)
    score = np.clip(0.3 * y + rng.uniform(size=3000) * 0.7, 0, 1)
    pred = (score > 0.5).astype(int)
    q = QualityWindow("classification", n_sub=4)
    for a, b, s in zip(y, pred, score):
        assert q.add(int(a), int(b), float(s))
    m = q.metrics()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-3)


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, size=2000)
    yhat = y + rng.normal(0, 1, size=2000)
    q = QualityWindow("regression", n_sub=4)
    for a, b in zip(y, yhat):
        assert q.add(float(a), float(b), None)
    m = q.metrics()
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    assert m["r2"] == pytest.approx(skm.r2_score(y, yhat))


def test_quality_window_slides():
    q = QualityWindow("classification", n_sub=2)
    for _ in range(10):
        q.add(1, 0, 0.1)  # all wrong
    q.rotate()
    for _ in range(10):
        q.add(1, 1, 0.9)
    assert q.metrics()["accuracy"] == 0.5
    q.rotate()  # the wrong ones expire
    assert q.metrics()["accuracy"] == 1.0 and q.n == 10
    q.rotate()
    assert np.isnan(q.metrics()["accuracy"])


def test_unusable_labels_are_refused():
    assert not QualityWindow("regression", 2).add("abc", 1.0, None)
    assert not QualityWindow("regression", 2).add(True, 1.0, None)
    assert not QualityWindow("classification", 2).add({"a": 1}, 1, 0.5)


def test_pending_predictions_are_bounded():
    p = PendingPredictions(max_size=3)
    for i in range(5):
        p.put(str(i), 1, 0.5)
    assert len(p) == 3 and p.evicted == 2
    assert p.pop("0") is None and p.pop("4") == (1, 0.5)
    assert p.pop("4") is None and len(p) == 2


def test_pending_predictions_keep_the_newest_of_a_repeated_id():
    p = PendingPredictions(max_size=4)
    p.put("a", 0, 0.1)
    p.put("a", 1, 0.9)
    for i in range(3):
        p.put(f"x{i}", "yes", None)
    assert p.pop("a") == (1, 0.9)
    assert p.pop("x2") == ("yes", None)
    assert len(p) == 2 and p.evicted == 0
