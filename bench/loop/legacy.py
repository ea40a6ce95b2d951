"""The previous drift rule and gate, kept as the rollback benchmark's baseline.

Before drift became sequential, the operator decided drift from the monitor's sliding
window alone (5 minutes, 10 sub-windows of 30 s): a feature drifted when its window
PSI >= spec.analysis.drift.psi.warn AND its Holm-corrected chi-square homogeneity
p-value < significance; drift.share failed above maxDriftedFeatureShare, and a drifted
feature with window PSI >= psi.fail failed on its own. An analysis ran every
spec.analysis.interval (30 s), was Inconclusive below minSampleSize (200) rows in the
window, and the gate rolled back after failureLimit (2) failed analyses in a row.

This module is a faithful copy of that rule's drift part (decide_features,
_share_checks, _prediction_check, drift_checks) and of the old gate, reading the same
/drift document the monitor serves today (features' "psi" and "pvalue", "window_rows").
It is the baseline only: the product does not use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

from modelops_operator.analysis import CheckResult, Decision, Result, Verdict, judge
from modelops_operator.analysis.base import number_or_none
from modelops_operator.analysis import checks
from modelops_operator.analysis.checks import adjust  # the correction did not change

CORRECTIONS = ("Holm", "BenjaminiHochberg")
MAX_FEATURE_CHECKS = 10


_finite = number_or_none


@dataclass(frozen=True)
class FeatureScore:
    psi: float | None = None
    pvalue: float | None = None  # chi-square homogeneity p-value, unadjusted
    prediction: bool = False


@dataclass(frozen=True)
class TrackNumbers:
    samples: int | None
    features: Mapping[str, FeatureScore]


@dataclass(frozen=True)
class Settings(checks.Settings):
    """The product's spec.analysis settings, with the gate's limits the old rule applied to drift."""

    failure_limit: int = 2
    inconclusive_limit: int = 3

    @classmethod
    def from_analysis(cls, analysis: Mapping) -> "Settings":
        """From spec.analysis with the CRD's defaults already filled in."""
        base = checks.Settings.from_analysis(analysis)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        return cls(**fields, failure_limit=int(analysis["failureLimit"]),
                   inconclusive_limit=int(analysis["inconclusiveLimit"]))


def from_drift_json(doc: Mapping) -> TrackNumbers:
    """The old reading of GET /drift: the window's rows and per-feature PSI and p-value."""
    drift = doc.get("drift") or {}
    features = {}
    for row in drift.get("features") or ():
        if isinstance(row, Mapping) and isinstance(row.get("feature"), str):
            features[row["feature"]] = FeatureScore(_finite(row.get("psi")), _finite(row.get("pvalue")),
                                                    bool(row.get("prediction",
                                                                 row["feature"].startswith("__prediction"))))
    samples = _finite(drift.get("window_rows"))
    return TrackNumbers(None if samples is None else int(samples), features)


@dataclass(frozen=True)
class FeatureDecision:
    name: str
    psi: float | None
    pvalue_adjusted: float | None
    drifted: bool | None  # None: unknown (missing scores)


def decide_features(scores: Mapping[str, FeatureScore], s: Settings) -> list[FeatureDecision]:
    names = sorted(scores)
    adjusted = adjust([scores[n].pvalue for n in names], s.correction)
    out = []
    for name, p_adj in zip(names, adjusted):
        psi = scores[name].psi
        if psi is None:
            drifted = None
        elif psi >= s.psi_warn:
            drifted = None if p_adj is None else p_adj < s.significance
        else:
            drifted = False
        out.append(FeatureDecision(name, psi, p_adj, drifted))
    return out


def _too_few(name: str, threshold: str, samples: int | None, s: Settings) -> CheckResult | None:
    if samples is None:
        return CheckResult(name, Result.INCONCLUSIVE, threshold=threshold, message="the monitor reported no data")
    if samples < s.min_samples:
        return CheckResult(name, Result.INCONCLUSIVE, threshold=threshold, samples=samples,
                           message=f"{samples} rows in the window, fewer than minSampleSize {s.min_samples}")
    return None


def drift_checks(cand: TrackNumbers, s: Settings) -> list[CheckResult]:
    if not s.drift_enabled:
        return []
    share_threshold = f"<= {s.max_share:g}"
    out: list[CheckResult] = []
    unsure = _too_few("drift.share", share_threshold, cand.samples, s)
    if unsure:
        out.append(unsure)
        if s.prediction:
            out.append(_too_few("drift.prediction", "no drift", cand.samples, s))
        return out
    n = cand.samples
    inputs = {k: v for k, v in cand.features.items() if not v.prediction and k not in s.ignore}
    ignored = sum(1 for k, v in cand.features.items() if not v.prediction and k in s.ignore)
    decisions = decide_features(inputs, s)
    if not decisions:
        out.append(CheckResult("drift.share", Result.PASS if ignored else Result.INCONCLUSIVE, None,
                               share_threshold, n))
    else:
        out.extend(_share_checks(decisions, n, s))
    if s.prediction:
        out.append(_prediction_check(cand, n, s))
    return out


def _share_checks(decisions: list[FeatureDecision], n: int, s: Settings) -> list[CheckResult]:
    total = len(decisions)
    drifted = [d for d in decisions if d.drifted]
    unknown = [d for d in decisions if d.drifted is None]
    low = len(drifted) / total
    high = (len(drifted) + len(unknown)) / total
    threshold = f"<= {s.max_share:g}"
    if low > s.max_share:
        result = Result.FAIL
    elif high <= s.max_share:
        result = Result.PASS
    else:
        result = Result.INCONCLUSIVE
    out = [CheckResult("drift.share", result, low, threshold, n, f"{len(drifted)} of {total} features drifted")]
    alarm = sorted((d for d in decisions if d.drifted and d.psi >= s.psi_fail), key=lambda d: -d.psi)
    for d in alarm[:MAX_FEATURE_CHECKS]:
        # A significant drift at the fail band fails the gate whatever the share.
        out.append(CheckResult(f"drift.feature.{d.name}", Result.FAIL, d.psi, f"PSI < {s.psi_fail:g}", n,
                               f"PSI {d.psi:.3g} >= psi.fail {s.psi_fail:g}"))
    return out


def _prediction_check(cand: TrackNumbers, n: int, s: Settings) -> CheckResult:
    threshold = "no drift"
    preds = {k: v for k, v in cand.features.items() if v.prediction}
    if not preds:
        return CheckResult("drift.prediction", Result.INCONCLUSIVE, None, threshold, n, "no prediction scores")
    decisions = decide_features(preds, s)
    psis = [d.psi for d in decisions if d.psi is not None]
    worst = max(psis) if psis else None
    if any(d.drifted for d in decisions):
        return CheckResult("drift.prediction", Result.FAIL, worst, threshold, n)
    if any(d.drifted is None for d in decisions):
        return CheckResult("drift.prediction", Result.INCONCLUSIVE, worst, threshold, n)
    return CheckResult("drift.prediction", Result.PASS, worst, threshold, n)


def gate(verdict: Verdict, consecutive_failures: int, consecutive_inconclusive: int, failure_limit: int,
         inconclusive_limit: int, on_inconclusive: str) -> tuple[Decision, int, int]:
    """The old gate: every failure, drift included, must repeat failure_limit times in a row."""
    if verdict.result is Result.PASS:
        return Decision.ADVANCE, 0, 0
    if verdict.result is Result.FAIL:
        failures = consecutive_failures + 1
        return (Decision.ROLLBACK if failures >= failure_limit else Decision.WAIT), failures, 0
    unsure = consecutive_inconclusive + 1
    if unsure < inconclusive_limit:
        return Decision.WAIT, consecutive_failures, unsure
    return (Decision.ROLLBACK if on_inconclusive == "Rollback" else Decision.PAUSE), consecutive_failures, unsure


@dataclass
class LegacyJudge:
    """One analysis of the old rule per call (every spec.analysis.interval)."""

    settings: Settings
    failures: int = 0
    inconclusive: int = 0

    def look(self, doc: Mapping) -> bool:
        """True when this analysis decides to roll back on a failed drift check."""
        s = self.settings
        verdict = judge(drift_checks(from_drift_json(doc), s))
        # An inconclusive pause is not a rollback: the bench keeps reading, as before.
        decision, self.failures, self.inconclusive = gate(verdict, self.failures, self.inconclusive,
                                                          s.failure_limit, s.inconclusive_limit, "Pause")
        return decision is Decision.ROLLBACK and verdict.result is Result.FAIL
