"""The candidate's online quality against the stable's, from delayed labels
(spec.analysis.quality). Pure Python: the operator has no numpy.

Every monitor scores the predictions whose true labels came back through POST
/feedback over its sliding window, and exports per method the value, its standard
error and the rows behind it (services/modelops_services/quality.py). A track's pods
are pooled here (`merge`); the check then asks whether the candidate is worse than the
stable, over the same window, by more than maxLoss:

    loss = stable - candidate   (accuracy, precision, recall, F1, ROC AUC, R2: a drop)
    loss = candidate - stable   (RMSE, MAE: a rise)
    H0: loss <= maxLoss  against  H1: loss > maxLoss, one-sided at `significance`.

It fails only on significant evidence of a loss beyond maxLoss; without that evidence
(a good candidate, or a bad one with too few labels to tell) it passes, so minLabelled
is what gives the test its power. The interval shown is the two-sided 1 - 2 alpha one;
the check fails exactly when its lower end is above maxLoss.

- Proportions (accuracy, precision, recall): the two-proportion z-test of
  analysis/abtest.py with a margin, the variance from each track's own rate (Wald), on
  Agresti-Caffo adjusted counts (one success and one failure added to each track),
  which keeps its level near the nominal one at small counts and at rates near 0 or 1
  (statsmodels' test_proportions_2indep(method="agresti-caffo") computes the same).
- F1, ROC AUC, RMSE, MAE, R2: z = (loss - maxLoss) / sqrt(se_c^2 + se_s^2) with the
  monitors' standard errors (F1 and RMSE/R2 by the delta method, AUC by DeLong), the
  tracks being independent samples.

Pooling pods: proportions add their counts (value x rows), F1 is recomputed from the
pooled counts that precision and recall give (TP = precision x predicted positives),
RMSE pools the mean squared error; MAE, ROC AUC and R2 are the row-weighted mean of the
pods' values (exact for MAE; for AUC and R2 a stratified estimate, exact with one pod),
with the variance of a weighted mean of independent estimates.

The check is a window check (judge.py): it is read at every gate and a rollback needs
failureLimit failed analyses in a row; each read has its own chance of a false failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping, Sequence

from . import abtest
from .base import CheckResult, Result, number_or_none

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "rmse", "mae", "r2")
PROPORTIONS = ("accuracy", "precision", "recall")
ERRORS = ("rmse", "mae")  # lower is better: the loss is a rise
BOUNDED = ("accuracy", "precision", "recall", "f1", "roc_auc")  # in [0, 1]: a loss above 1 is impossible
STRATEGIES = ("Canary", "ABTest")  # the candidate answers clients, so labels come back to its monitors
FIELD = "spec.analysis.quality"
_N = NormalDist()


def _finite(x) -> float | None:
    return number_or_none(x, finite=True)


@dataclass(frozen=True)
class QualityScore:
    """One method's numbers over a window: value, standard error and the rows behind it."""

    value: float | None = None
    stderr: float | None = None
    samples: float | None = None

    def __post_init__(self):
        # NaN (the monitor's "undefined") and negatives are unknown, never a number to compare.
        object.__setattr__(self, "value", _finite(self.value))
        se, n = _finite(self.stderr), _finite(self.samples)
        object.__setattr__(self, "stderr", se if se is not None and se >= 0 else None)
        object.__setattr__(self, "samples", n if n is not None and n >= 0 else None)


def from_drift_json(quality: Mapping | None) -> dict[str, QualityScore]:
    """The `quality` section of a monitor's GET /drift document."""
    if not isinstance(quality, Mapping):
        return {}
    stderr = quality.get("stderr") if isinstance(quality.get("stderr"), Mapping) else {}
    samples = quality.get("samples") if isinstance(quality.get("samples"), Mapping) else {}
    return {m: QualityScore(quality.get(m), stderr.get(m), samples.get(m))
            for m in METRICS if m in quality or m in samples}


# --- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class QualitySettings:
    metric: str
    max_loss: float
    min_labelled: int
    significance: float

    @classmethod
    def from_analysis(cls, analysis: Mapping) -> "QualitySettings | None":
        """spec.analysis.quality, None when it is not set (the gate is off)."""
        from .checks import SettingsError  # checks imports this module

        quality = analysis.get("quality")
        if quality is None:
            return None
        if not isinstance(quality, Mapping):
            raise SettingsError(f"{FIELD}: must be an object")
        metric = quality.get("metric")
        if metric not in METRICS:
            raise SettingsError(f"{FIELD}.metric: {metric!r} is not one of {', '.join(METRICS)}")
        loss = quality.get("maxLoss")
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss) or loss < 0:
            raise SettingsError(f"{FIELD}.maxLoss: {loss!r} is not a number of at least 0")
        if metric in BOUNDED and loss > 1:
            raise SettingsError(f"{FIELD}.maxLoss: {loss!r} is more than {metric} can lose (it is in [0, 1])")
        labelled = quality.get("minLabelled", 200)
        if isinstance(labelled, bool) or not isinstance(labelled, int) or labelled < 1:
            raise SettingsError(f"{FIELD}.minLabelled: {labelled!r} is not a positive integer")
        alpha = quality.get("significance", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 0.5:
            raise SettingsError(f"{FIELD}.significance: {alpha!r} is not a number above 0 and at most 0.5")
        return cls(metric, float(loss), labelled, float(alpha))


# --- pooling a track's pods -------------------------------------------------------------


def merge(pods: Sequence[Mapping[str, QualityScore]]) -> dict[str, QualityScore]:
    """A track's numbers per method from its pods' (see the module's docstring)."""
    pods = [p for p in pods if p]
    if len(pods) <= 1:
        return dict(pods[0]) if pods else {}
    methods = {m for p in pods for m in p}
    out = {m: _merge_method(m, [p[m] for p in pods if m in p]) for m in methods}
    if {"precision", "recall"} <= methods and "f1" in methods:
        f1 = _f1_from_counts(pods)
        if f1 is not None:
            out["f1"] = f1
    return out


def _merge_method(method: str, scores: list[QualityScore]) -> QualityScore:
    total = sum(s.samples or 0.0 for s in scores)
    known = [s for s in scores if s.value is not None and s.samples]
    if not known:
        return QualityScore(None, None, total)
    n = sum(s.samples for s in known)
    if method in PROPORTIONS:
        rate = sum(s.value * s.samples for s in known) / n
        return QualityScore(rate, math.sqrt(max(rate * (1 - rate), 0.0) / n), n)
    errors = [s.stderr for s in known]
    if method == "rmse":  # pool the mean squared error; se(MSE) = 2 RMSE se(RMSE)
        mse = sum(s.value ** 2 * s.samples for s in known) / n
        rmse = math.sqrt(mse)
        if None in errors or rmse <= 0:
            return QualityScore(rmse, None if None in errors else 0.0, n)
        var = sum((s.samples / n) ** 2 * (2 * s.value * s.stderr) ** 2 for s in known)
        return QualityScore(rmse, math.sqrt(var) / (2 * rmse), n)
    value = sum(s.value * s.samples for s in known) / n
    if None in errors:
        return QualityScore(value, None, n)
    return QualityScore(value, math.sqrt(sum((s.samples / n) ** 2 * s.stderr ** 2 for s in known)), n)


def _f1_from_counts(pods: Sequence[Mapping[str, QualityScore]]) -> QualityScore | None:
    """F1 from the pooled TP, FP and FN that each pod's precision and recall give."""
    tp = fp = fn = 0.0
    for p in pods:
        prec, rec = p.get("precision"), p.get("recall")
        if prec is None or rec is None or prec.samples is None or rec.samples is None:
            return None
        if prec.samples and prec.value is None or rec.samples and rec.value is None:
            return None
        hits = prec.value * prec.samples if prec.samples else (rec.value * rec.samples if rec.samples else 0.0)
        tp, fp, fn = tp + hits, fp + prec.samples - hits, fn + rec.samples - hits
    tp, fp, fn = round(tp), max(round(fp), 0), max(round(fn), 0)
    rows = sum((p["f1"].samples or 0.0) for p in pods if "f1" in p)
    d = 2 * tp + fp + fn
    if d <= 0:
        return QualityScore(None, None, rows)
    return QualityScore(2 * tp / d, math.sqrt(4 * tp * (fp + fn) * (tp + fp + fn)) / (d * d), rows)


# --- the test ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    loss: float  # stable - candidate, or candidate - stable for errors
    low: float  # the two-sided 1 - 2 alpha interval of the loss
    high: float
    z: float  # (loss - maxLoss) / se: positive when the candidate loses more than allowed
    p_value: float  # one-sided, for H0: loss <= maxLoss
    failed: bool


def compare(metric: str, cand: QualityScore, stable: QualityScore, max_loss: float,
            significance: float) -> Comparison:
    """The one-sided test of H0: loss <= max_loss; both scores must have value, stderr
    (except for proportions) and samples."""
    sign = -1.0 if metric in ERRORS else 1.0
    loss = sign * (stable.value - cand.value)
    if metric in PROPORTIONS:
        # Agresti-Caffo: add one success and one failure to each track, then the Wald
        # test of p_candidate - p_stable = -max_loss (abtest.z_test, unpooled).
        xs, ns = stable.value * stable.samples + 1, stable.samples + 2
        xc, nc = cand.value * cand.samples + 1, cand.samples + 2
        z_better, _ = abtest.z_test(xs, ns, xc, nc, difference=-max_loss, pooled=False)
        z = -z_better
        centre = xs / ns - xc / nc
        se = abtest.difference_stderr(xs, ns, xc, nc, pooled=False)
    else:
        centre = loss
        se = math.sqrt(cand.stderr ** 2 + stable.stderr ** 2)
        z = (loss - max_loss) / se if se > 0 else (0.0 if loss == max_loss else math.copysign(math.inf, loss - max_loss))
    p = 1.0 - _N.cdf(z) if math.isfinite(z) else (0.0 if z > 0 else 1.0)
    half = _N.inv_cdf(1 - significance) * se
    return Comparison(loss, centre - half, centre + half, z, p, p < significance)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def quality_check(cand, stable, settings: QualitySettings, strategy: str | None = None) -> CheckResult:
    """`quality.<metric>` from the candidate's and the stable's TrackNumbers (their
    `labelled` rows and `quality` scores, merged over pods)."""
    metric, m = settings.metric, settings.max_loss
    name = f"quality.{metric}"
    threshold = f"loss <= {m:g} against the stable"

    def unsure(message: str, samples=None, value=None) -> CheckResult:
        return CheckResult(name, Result.INCONCLUSIVE, value, threshold, samples, message)

    if strategy is not None and strategy not in STRATEGIES:
        return unsure(f"under {strategy} the candidate's predictions do not reach clients, so no labels come "
                      f"back to it; {FIELD} needs {' or '.join(STRATEGIES)}")
    n_c = getattr(cand, "labelled", None)
    if n_c is None:
        return unsure("the candidate's monitors reported no labelled rows (labels are posted to /feedback)")
    if stable is None or getattr(stable, "labelled", None) is None:
        return unsure("no labelled rows from the stable track to compare with", int(n_c))
    n_s = stable.labelled
    samples = int(min(n_c, n_s))
    if min(n_c, n_s) < settings.min_labelled:
        return unsure(f"{int(n_c)} candidate and {int(n_s)} stable labelled rows in the window; each track needs "
                      f"{FIELD}.minLabelled {settings.min_labelled}", samples)
    c, s = cand.quality.get(metric), stable.quality.get(metric)
    for who, score in (("candidate", c), ("stable", s)):
        if score is None or score.value is None or not score.samples:
            return unsure(f"the {who}'s {metric} is undefined over the window (e.g. no positives, or no scores)",
                          samples)
        if metric not in PROPORTIONS and score.stderr is None:
            return unsure(f"the {who}'s monitors reported no standard error of {metric}", samples)
    r = compare(metric, c, s, m, settings.significance)
    worse = "rise" if metric in ERRORS else "drop"
    text = (f"{metric}: candidate {_fmt(c.value)} vs stable {_fmt(s.value)}, a {worse} of {_fmt(r.loss)} "
            f"({1 - 2 * settings.significance:.0%} interval {_fmt(r.low)} to {_fmt(r.high)}, "
            f"one-sided p = {r.p_value:.3g})")
    if r.failed:
        return CheckResult(name, Result.FAIL, r.loss, threshold, samples,
                           f"{text}: significantly more than {FIELD}.maxLoss {m:g}; the candidate predicts worse "
                           "than the stable on the same traffic")
    return CheckResult(name, Result.PASS, r.loss, threshold, samples,
                       f"{text}: not significantly more than {FIELD}.maxLoss {m:g} at {FIELD}.significance "
                       f"{settings.significance:g}")
