"""Online model quality from late ground truth, over the same sliding windows as drift.

The model server returns an id per prediction; the monitor keeps the prediction
under that id (bounded, oldest evicted first) until a label arrives. Each label
then adds to per-sub-window sufficient statistics, so every metric is exact over
the window in fixed memory. ROC AUC is computed from score histograms (1000 bins
on [0, 1]); scores in the same bin count as ties, so it is within 1e-3 of exact.

Each metric also has a standard error over the window (`stderr`) and the rows it is
computed from (`samples`), so the operator can pool pods and compare two tracks:
- accuracy, precision, recall: binomial, sqrt(p (1 - p) / rows), rows being the
  labelled rows, the predicted positives and the actual positives;
- F1 = 2 TP / (2 TP + FP + FN): delta method over the multinomial counts,
  Var = 4 TP (FP + FN) (TP + FP + FN) / (2 TP + FP + FN)^4;
- ROC AUC: DeLong's variance, S10 / m + S01 / n, from the placement values of the
  m positives and n negatives, which the score histograms give per bin;
- MAE and MSE: the standard error of a mean (of |e| and of e^2); RMSE's by the delta
  method, se(MSE) / (2 RMSE); R2 = 1 - mean(e^2) / mean((y - ybar)^2) by the delta
  method over the two means. The window keeps sums of e^4, y^3, y^4, e^2 y and e^2 y^2
  for them (y shifted by the first label seen, so the sums do not lose precision).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .drift.window import SlidingCounts

AUC_BINS = 1000
# Classification slots: correct, total, tp, fp, fn, tn. Regression slots: n,
# sum(err), sum(|err|), sum(err^2), sum(y), sum(y^2), sum(err^4), sum(y^3), sum(y^4),
# sum(err^2 y), sum(err^2 y^2) (float sums kept as float; y shifted, see _add_reg).
_CLS = 6
_REG = 11
METHODS = {"classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
           "regression": ("rmse", "mae", "r2")}


class PendingPredictions:
    """Predictions awaiting their label, keyed by id; the oldest go first when full.

    Memory is allocated up front for max_size entries (a ring of numpy slots and
    an index dict pre-filled with placeholders), so it does not grow with traffic.
    Ids are kept as their 64-bit hash: a collision needs ~2^32 pending ids.
    """

    def __init__(self, max_size: int = 200_000):
        self.max_size = max_size
        self._key = np.zeros(max_size, dtype=np.int64)
        self._pred = np.zeros(max_size, dtype=np.float64)
        self._pred_is_label = np.zeros(max_size, dtype=bool)
        self._score = np.full(max_size, np.nan)
        # Placeholders are negative (real keys are not) and as wide as real
        # keys. The dict is first grown to the size that steady churn of
        # max_size live keys settles at, so later traffic does not grow it.
        self._slot: dict[int, int] = {_placeholder(i): i for i in range(2 * max_size)}
        for i in range(max_size, 2 * max_size):
            del self._slot[_placeholder(i)]
        self._key[:] = [_placeholder(i) for i in range(max_size)]
        self._live = np.zeros(max_size, dtype=bool)
        self._labels: list[Any] = []  # non-numeric predictions, by index (bounded)
        self._label_index: dict[str, int] = {}
        self._next = 0
        self._n = 0
        self.evicted = 0

    def __len__(self) -> int:
        return self._n

    def put(self, key: str, prediction: Any, score: float | None) -> None:
        if isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
            value, is_label = float(prediction), False
        else:
            code = self._label_index.get(str(prediction))
            if code is None:
                if len(self._labels) >= 1024:
                    return  # an unbounded label set cannot be scored anyway
                code = self._label_index[str(prediction)] = len(self._labels)
                self._labels.append(prediction)
            value, is_label = float(code), True
        h = _h(key)
        old = self._slot.get(h)
        if old is not None and self._live[old]:
            self._release(old)  # same id again: the newer prediction wins
        i = self._next
        self._next = (i + 1) % self.max_size
        if self._live[i]:
            self.evicted += 1
            self._free(i)
        self._slot.pop(int(self._key[i]), None)
        self._key[i] = h
        self._slot[h] = i
        self._pred[i], self._pred_is_label[i] = value, is_label
        self._score[i] = np.nan if score is None else score
        self._live[i] = True
        self._n += 1

    def _free(self, i: int) -> None:
        self._live[i] = False
        self._n -= 1

    def _release(self, i: int) -> None:
        """Free slot i and turn its index entry back into a placeholder, so the
        dict keeps its size."""
        self._free(i)
        del self._slot[int(self._key[i])]
        self._key[i] = _placeholder(i)
        self._slot[_placeholder(i)] = i

    def pop(self, key: str) -> tuple[Any, float | None] | None:
        h = _h(key)
        i = self._slot.get(h)
        if i is None or not self._live[i]:
            return None
        self._release(i)
        v = self._pred[i]
        pred: Any = self._labels[int(v)] if self._pred_is_label[i] else (int(v) if v.is_integer() else float(v))
        s = self._score[i]
        return pred, None if np.isnan(s) else float(s)


def _placeholder(i: int) -> int:
    return -(2**62) - i


def _h(key: str) -> int:
    # Non-negative, so it never meets a placeholder key.
    return hash(key) & 0x7FFF_FFFF_FFFF_FFFF


class QualityWindow:
    def __init__(self, task: str, n_sub: int, positive_class: Any = 1):
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, not {task!r}")
        self.task = task
        self.positive = str(positive_class)
        if task == "classification":
            # Counts, then positive-score histogram, then negative-score histogram.
            self.win = SlidingCounts(n_sub, _CLS + 2 * AUC_BINS)
        else:
            self._reg = np.zeros((n_sub, _REG))
            self._head = 0
            self._y0: float | None = None  # the shift of y in the sums: the first label
            self.win = SlidingCounts(n_sub, 1)  # row counts only

    def add(self, label: Any, prediction: Any, score: float | None) -> bool:
        """Add one labelled prediction; False when the label cannot be used."""
        if self.task == "classification":
            return self._add_cls(label, prediction, score)
        return self._add_reg(label, prediction)

    def _add_cls(self, label: Any, prediction: Any, score: float | None) -> bool:
        if label is None or isinstance(label, (dict, list)):
            return False
        y, yhat = str(label) == self.positive, str(prediction) == self.positive
        v = np.zeros(self.win.total.shape[0], dtype=np.int64)
        v[0] = str(label) == str(prediction)
        v[1] = 1
        v[2 + (0 if y and yhat else 1 if yhat else 2 if y else 3)] = 1
        if score is not None and isinstance(score, (int, float)) and math.isfinite(score):
            b = min(max(int(score * AUC_BINS), 0), AUC_BINS - 1)
            v[_CLS + (0 if y else AUC_BINS) + b] = 1
        self.win.add(v, 1)
        return True

    def _add_reg(self, label: Any, prediction: Any) -> bool:
        try:
            y, yhat = float(label), float(prediction)
        except (TypeError, ValueError, OverflowError):
            return False
        if isinstance(label, bool) or not (math.isfinite(y) and math.isfinite(yhat)):
            return False
        e = yhat - y
        if self._y0 is None:
            self._y0 = y
        # Shifted by a fixed value, y's moments are sums of small numbers on
        # stationary data (the sum of squares about the mean is shift-invariant).
        y -= self._y0
        e2 = e * e
        self._reg[self.win.head] += (1.0, e, abs(e), e2, y, y * y, e2 * e2, y ** 3, y ** 4, e2 * y, e2 * y * y)
        self.win.add(np.ones(1, dtype=np.int64), 1)
        return True

    def rotate(self) -> None:
        self.win.rotate()
        if self.task == "regression":
            self._reg[self.win.head] = 0.0

    @property
    def n(self) -> int:
        return self.win.total_rows

    def metrics(self) -> dict[str, float]:
        """Metric name -> value over the window; NaN where undefined (no labels,
        or no positives for recall, ...)."""
        nan = float("nan")
        if self.task == "regression":
            n, _, sa, ss, sy, sy2 = self._reg.sum(axis=0)[:6]
            if n == 0:
                return {"rmse": nan, "mae": nan, "r2": nan}
            sst = sy2 - sy * sy / n
            return {
                "rmse": math.sqrt(ss / n),
                "mae": sa / n,
                "r2": 1.0 - ss / sst if sst > 1e-12 * max(sy2, 1.0) else nan,
            }
        t = self.win.total
        correct, n, tp, fp, fn, _tn = (float(x) for x in t[:_CLS])

        def ratio(a: float, b: float) -> float:
            return a / b if b > 0 else nan

        precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
        f1 = ratio(2 * tp, 2 * tp + fp + fn)
        pos = t[_CLS : _CLS + AUC_BINS].astype(np.float64)
        neg = t[_CLS + AUC_BINS :].astype(np.float64)
        npos, nneg = pos.sum(), neg.sum()
        if npos > 0 and nneg > 0:
            below = np.cumsum(neg) - neg  # negatives in strictly lower bins
            auc = float((pos * (below + 0.5 * neg)).sum() / (npos * nneg))
        else:
            auc = nan
        return {
            "accuracy": ratio(correct, n),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "roc_auc": auc,
        }

    def samples(self) -> dict[str, float]:
        """Method -> the labelled rows its value is computed from: all of them, except
        precision (the predicted positives), recall (the actual positives) and ROC AUC
        (the rows with a score)."""
        if self.task == "regression":
            n = float(self._reg[:, 0].sum())
            return {"rmse": n, "mae": n, "r2": n}
        t = self.win.total
        _, n, tp, fp, fn, _tn = (float(x) for x in t[:_CLS])
        return {"accuracy": n, "precision": tp + fp, "recall": tp + fn, "f1": n,
                "roc_auc": float(t[_CLS:].sum())}

    def stderr(self) -> dict[str, float]:
        """Method -> the standard error of its value over the window (see the module's
        docstring); NaN where it is undefined."""
        nan = float("nan")
        if self.task == "regression":
            return _regression_stderr(self._reg.sum(axis=0))
        t = self.win.total
        correct, n, tp, fp, fn, _tn = (float(x) for x in t[:_CLS])

        def binomial(x: float, rows: float) -> float:
            return math.sqrt(x / rows * (1 - x / rows) / rows) if rows > 0 else nan

        d = 2 * tp + fp + fn
        f1 = math.sqrt(4 * tp * (fp + fn) * (tp + fp + fn)) / (d * d) if d > 0 else nan
        auc_var = delong_variance(t[_CLS : _CLS + AUC_BINS], t[_CLS + AUC_BINS :])
        return {
            "accuracy": binomial(correct, n),
            "precision": binomial(tp, tp + fp),
            "recall": binomial(tp, tp + fn),
            "f1": f1,
            "roc_auc": math.sqrt(auc_var) if math.isfinite(auc_var) else nan,
        }


def delong_variance(pos: np.ndarray, neg: np.ndarray) -> float:
    """DeLong's variance of the ROC AUC from score histograms of the positives and the
    negatives (the same bins; a shared bin is a tie, worth one half). NaN with fewer
    than two of either.

    A positive in bin b is placed above V10(b) = (negatives below b + half those in b) / n
    of the negatives, a negative below V01(b) = (positives above b + half those in b) / m
    of the positives; AUC is the mean of either, and
    Var = S10 / m + S01 / n, S10 and S01 the sample variances of the placements."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    m, n = pos.sum(), neg.sum()
    if m < 2 or n < 2:
        return float("nan")
    v10 = (np.cumsum(neg) - neg + 0.5 * neg) / n
    v01 = (m - np.cumsum(pos) + 0.5 * pos) / m
    auc = float((pos * v10).sum() / m)
    s10 = float((pos * (v10 - auc) ** 2).sum() / (m - 1))
    s01 = float((neg * (v01 - auc) ** 2).sum() / (n - 1))
    return s10 / m + s01 / n


def _regression_stderr(sums: np.ndarray) -> dict[str, float]:
    """Standard errors of RMSE, MAE and R2 from the window's sums (delta method)."""
    nan = float("nan")
    n, _se, sa, ss, sy, sy2, s4, sy3, sy4, s2y, s2y2 = (float(x) for x in sums)
    out = {"rmse": nan, "mae": nan, "r2": nan}
    if n < 2:
        return out
    mae, mse = sa / n, ss / n
    out["mae"] = math.sqrt(max(ss / n - mae * mae, 0.0) * n / (n - 1) / n)  # E|e|^2 = E e^2
    var_e2 = max(s4 / n - mse * mse, 0.0) * n / (n - 1)  # variance of e^2
    if mse > 0:
        out["rmse"] = math.sqrt(var_e2 / n) / (2 * math.sqrt(mse))
    # R2 = 1 - a / b, a = mean(e^2), b = mean((y - ybar)^2); moments about ybar from
    # the (shifted) raw sums.
    ybar = sy / n
    b = sy2 / n - ybar * ybar
    if b <= 1e-12 * max(sy2 / n, 1.0):
        return out
    c4 = sy4 / n - 4 * ybar * sy3 / n + 6 * ybar**2 * sy2 / n - 3 * ybar**4  # E (y - ybar)^4
    var_d2 = max(c4 - b * b, 0.0) * n / (n - 1)  # variance of (y - ybar)^2
    cross = (s2y2 / n - 2 * ybar * s2y / n + ybar * ybar * mse) - mse * b  # cov(e^2, (y - ybar)^2)
    cross *= n / (n - 1)
    a = mse
    var_r2 = (var_e2 / b**2 + a * a * var_d2 / b**4 - 2 * a * cross / b**3) / n
    out["r2"] = math.sqrt(max(var_r2, 0.0))
    return out
