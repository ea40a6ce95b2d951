"""The checks on the monitor's numbers, with the thresholds of spec.analysis.

Pure: the providers fetch the monitor's raw numbers (per pod), `merge_pods` combines
a track's pods, and `evaluate` turns the candidate's (and the stable's) numbers into
CheckResults. The multiple-testing correction and the significance are applied here,
so a threshold changed in the spec applies at the next read without restarting any
pod.

Drift is sequential (services/modelops_services/drift/sequential.py): for every
feature the monitor reports, per PSI band, the log e-value that the feature's rows
since the most telling change point left training by at least that band. K * exp(-e)
is an anytime-valid p-value (K candidate change points over the horizon), so it may be
read every few seconds without inflating false alarms. A feature drifts when its
corrected p-value for the warn band is below significance, and counts towards
drift.share (maxDriftedFeatureShare); one whose corrected p-value for the fail band is
below significance fails the gate on its own. Either fails as soon as the evidence is
there, before minSampleSize rows; a pass needs minSampleSize rows. Missing numbers
are Inconclusive, never a pass. The sliding window's PSI is shown for context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from ..durations import format_duration, parse_duration
from . import champion, quality_gate
from .base import CheckResult, Result, number_or_none

CORRECTIONS = ("Holm", "BenjaminiHochberg")
MAX_FEATURE_CHECKS = 10  # status stays small; the share check names the rest


class SettingsError(ValueError):
    """A spec.analysis value the checks cannot use; the message names the field."""


_finite = number_or_none


# --- the monitor's numbers ------------------------------------------------------------


@dataclass(frozen=True)
class FeatureScore:
    psi: float | None = None  # the sliding window's PSI (context, not the decision)
    pvalue: float | None = None  # the window's chi-square homogeneity p-value (context)
    prediction: bool = False  # a prediction spec (__prediction__, __prediction_label__)
    p_warn: float | None = None  # anytime-valid p-value that PSI reached the warn band, uncorrected
    p_fail: float | None = None  # ... the fail band
    psi_lower: float | None = None  # lower confidence bound on PSI since the change point

    def __post_init__(self):
        # NaN is the monitor's "undefined": kept as None so no comparison can pass on it.
        for name in ("psi", "pvalue", "p_warn", "p_fail", "psi_lower"):
            object.__setattr__(self, name, _finite(getattr(self, name)))


@dataclass(frozen=True)
class TrackNumbers:
    """One track's window, from one pod or merged over its pods."""

    samples: int | None = None  # rows in the drift window
    requests: int | None = None  # requests in the health window
    error_rate: float | None = None  # 5xx share
    latency_p99: float | None = None  # seconds
    features: Mapping[str, FeatureScore] = field(default_factory=dict)
    pods: int = 1
    evidence_rows: int | None = None  # rows over the sequential evidence's horizon
    # Prediction counts since the stage began, per prediction spec and bin label (champion.py).
    predictions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    labelled: int | None = None  # rows whose true label came back, over the window
    quality: Mapping[str, quality_gate.QualityScore] = field(default_factory=dict)  # per method (quality_gate.py)

    def __post_init__(self):
        object.__setattr__(self, "error_rate", _finite(self.error_rate))
        object.__setattr__(self, "latency_p99", _finite(self.latency_p99))

    @property
    def empty(self) -> bool:
        return self.samples is None and self.requests is None and not self.features


def evidence_pvalue(nats, change_points) -> float | None:
    """The anytime-valid p-value of a log e-value maximised over K change points."""
    nats, k = _finite(nats), _finite(change_points)
    if nats is None or k is None or k < 1:
        return None
    return min(1.0, k * math.exp(-max(nats, 0.0)))


def is_prediction(name: str) -> bool:
    return name.startswith("__prediction")


def from_drift_json(doc: Mapping) -> TrackNumbers:
    """A pod's numbers from the monitor's GET /drift document."""
    drift = doc.get("drift") or {}
    health = doc.get("health") or {}
    sequential = drift.get("sequential") or {}
    k = sequential.get("start_points")
    features = {}
    for row in drift.get("features") or ():
        if isinstance(row, Mapping) and isinstance(row.get("feature"), str):
            ev = row.get("evidence") if isinstance(row.get("evidence"), Mapping) else {}
            features[row["feature"]] = FeatureScore(
                _finite(row.get("psi")), _finite(row.get("pvalue")),
                bool(row.get("prediction", is_prediction(row["feature"]))),
                evidence_pvalue(ev.get("warn"), k), evidence_pvalue(ev.get("alarm"), k), _finite(ev.get("psi_lower")))
    samples = _finite(drift.get("window_rows"))
    requests = _finite(health.get("requests"))
    rows = _finite(sequential.get("rows"))
    labelled = _finite((doc.get("window") or {}).get("labelled_rows")) if isinstance(doc.get("window"), Mapping) \
        else None
    since = doc.get("predictions_since") if isinstance(doc.get("predictions_since"), Mapping) else {}
    predictions = {name: {str(label): _finite(c) or 0.0 for label, c in counts.items()}
                   for name, counts in (since.get("features") or {}).items() if isinstance(counts, Mapping)}
    return TrackNumbers(
        samples=None if samples is None else int(samples),
        requests=None if requests is None else int(requests),
        error_rate=_finite(health.get("error_rate")),
        latency_p99=_finite(health.get("latency_p99_seconds")),
        features=features,
        evidence_rows=None if rows is None else int(rows),
        predictions=predictions,
        labelled=None if labelled is None else int(labelled),
        quality=quality_gate.from_drift_json(doc.get("quality")),
    )


def add_counts(tracks: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Counts per prediction spec and bin label, added up over pods."""
    out: dict[str, dict[str, float]] = {}
    for counts in tracks:
        for name, bins in counts.items():
            acc = out.setdefault(name, {})
            for label, c in bins.items():
                acc[label] = acc.get(label, 0.0) + c
    return out


def _bonferroni(values: list[float]) -> float | None:
    return min(1.0, min(values) * len(values)) if values else None


def merge_pods(pods: Sequence[TrackNumbers]) -> TrackNumbers:
    """A track's numbers from its pods' windows.

    Each pod sees its own share of the traffic. Samples and requests add up; the error
    rate is the request-weighted mean; p99 latency is the worst pod's (an upper bound
    of the merged p99). Per feature the PSI and its lower bound are the worst pod's,
    and each p-value is the smallest pod p-value times the number of pods (Bonferroni
    over pods: is any pod's traffic different), so more pods do not mean more false
    alarms."""
    pods = [p for p in pods if not p.empty]
    if not pods:
        return TrackNumbers(pods=0)
    samples = [p.samples for p in pods if p.samples is not None]
    rows = [p.evidence_rows for p in pods if p.evidence_rows is not None]
    requests = [p.requests for p in pods if p.requests is not None]
    weighted = [(p.error_rate, p.requests) for p in pods
                if p.error_rate is not None and p.requests is not None and p.requests > 0]
    weight = sum(n for _, n in weighted)
    latencies = [p.latency_p99 for p in pods if p.latency_p99 is not None]
    names: dict[str, list[FeatureScore]] = {}
    for p in pods:
        for name, score in p.features.items():
            names.setdefault(name, []).append(score)
    features = {}
    for name, scores in names.items():
        known = {attr: [getattr(x, attr) for x in scores if getattr(x, attr) is not None]
                 for attr in ("psi", "pvalue", "p_warn", "p_fail", "psi_lower")}
        features[name] = FeatureScore(max(known["psi"], default=None), _bonferroni(known["pvalue"]),
                                      any(x.prediction for x in scores), _bonferroni(known["p_warn"]),
                                      _bonferroni(known["p_fail"]), max(known["psi_lower"], default=None))
    return TrackNumbers(
        samples=sum(samples) if samples else None,
        requests=sum(requests) if requests else None,
        error_rate=sum(r * n for r, n in weighted) / weight if weight else None,
        latency_p99=max(latencies) if latencies else None,
        features=features,
        pods=len(pods),
        evidence_rows=sum(rows) if rows else None,
        predictions=add_counts([p.predictions for p in pods]),
        labelled=sum(labelled) if (labelled := [p.labelled for p in pods if p.labelled is not None]) else None,
        quality=quality_gate.merge([p.quality for p in pods]),
    )


# --- multiple testing -----------------------------------------------------------------


def adjust(pvalues: Sequence[float | None], method: str) -> list[float | None]:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted
    p-values, as statsmodels.stats.multitest.multipletests gives them. Missing p-values
    are left out of the family and stay None."""
    if method not in CORRECTIONS:
        raise SettingsError(f"spec.analysis.drift.correction: {method!r} is not one of {', '.join(CORRECTIONS)}")
    known = [(p, i) for i, p in enumerate(pvalues) if _finite(p) is not None]
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    order = sorted(known)
    if method == "Holm":
        running = 0.0
        for rank, (p, i) in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p))
            out[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            p, i = order[rank]
            running = min(running, m * p / (rank + 1))
            out[i] = min(1.0, running)
    return out


# --- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    min_samples: int
    drift_enabled: bool
    psi_warn: float
    psi_fail: float
    max_share: float
    prediction: bool
    significance: float
    correction: str
    ignore: frozenset[str]
    slo_enabled: bool
    max_error_rate: float | None
    max_latency_p99: float | None  # seconds
    max_error_rate_increase: float | None
    max_latency_p99_ratio: float | None
    quality: quality_gate.QualitySettings | None = None  # spec.analysis.quality; None: off

    @classmethod
    def from_analysis(cls, analysis: Mapping) -> "Settings":
        """From spec.analysis with the CRD's defaults filled in."""
        drift = analysis.get("drift") or {}
        slo = analysis.get("slo") or {}
        psi = drift.get("psi") or {}

        def number(value, path, low=None, high=None, optional=False):
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise SettingsError(f"spec.analysis.{path}: {value!r} is not a number")
            if (low is not None and value < low) or (high is not None and value > high):
                raise SettingsError(f"spec.analysis.{path}: {value!r} is outside [{low}, {high}]")
            return float(value)

        min_samples = analysis.get("minSampleSize")
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
            raise SettingsError(f"spec.analysis.minSampleSize: {min_samples!r} is not a positive integer")
        warn = number(psi.get("warn"), "drift.psi.warn", 0, 10)
        fail = number(psi.get("fail"), "drift.psi.fail", 0, 10)
        if warn > fail:
            raise SettingsError(f"spec.analysis.drift.psi.warn: {warn:g} exceeds spec.analysis.drift.psi.fail {fail:g}")
        correction = drift.get("correction")
        if correction not in CORRECTIONS:
            raise SettingsError(f"spec.analysis.drift.correction: {correction!r} is not one of {', '.join(CORRECTIONS)}")
        latency = slo.get("maxLatencyP99")
        try:
            latency_s = None if latency is None else parse_duration(latency)
        except ValueError as err:
            raise SettingsError(f"spec.analysis.slo.maxLatencyP99: {err}") from None
        ignore = drift.get("ignoreFeatures") or []
        if not isinstance(ignore, list) or not all(isinstance(n, str) for n in ignore):
            raise SettingsError("spec.analysis.drift.ignoreFeatures: must be a list of feature names")
        return cls(
            min_samples=min_samples,
            drift_enabled=bool(drift.get("enabled", True)),
            psi_warn=warn,
            psi_fail=fail,
            max_share=number(drift.get("maxDriftedFeatureShare"), "drift.maxDriftedFeatureShare", 0, 1),
            prediction=bool(drift.get("prediction", True)),
            significance=number(drift.get("significance"), "drift.significance", 0, 1),
            correction=correction,
            ignore=frozenset(ignore),
            slo_enabled=bool(slo.get("enabled", True)),
            max_error_rate=number(slo.get("maxErrorRate"), "slo.maxErrorRate", 0, 1, optional=True),
            max_latency_p99=latency_s,
            max_error_rate_increase=number(slo.get("maxErrorRateIncrease"), "slo.maxErrorRateIncrease", 0, 1,
                                           optional=True),
            max_latency_p99_ratio=number(slo.get("maxLatencyP99Ratio"), "slo.maxLatencyP99Ratio", 1, 100,
                                         optional=True),
            quality=quality_gate.QualitySettings.from_analysis(analysis),
        )


# --- drift ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDecision:
    name: str
    psi: float | None  # the window's, for context
    psi_lower: float | None
    p_warn: float | None  # corrected across the family
    p_fail: float | None
    drifted: bool | None  # evidence for the warn band; None: unknown (no evidence reported)
    alarm: bool  # evidence for the fail band
    progress_warn: float  # evidence so far over what the warn band needs (1.0 = there)
    progress_fail: float


def _progress(p_adj: float | None, significance: float) -> float:
    """How far a corrected p-value is towards significance, on the scale of evidence:
    log(p) / log(significance), 0 with no evidence, 1 at the threshold."""
    if p_adj is None or p_adj >= 1.0:
        return 0.0
    return math.log(max(p_adj, 1e-300)) / math.log(significance)


def decide_features(scores: Mapping[str, FeatureScore], s: Settings) -> list[FeatureDecision]:
    """The drift rule over one family of features, corrected together per band."""
    names = sorted(scores)
    warn = adjust([scores[n].p_warn for n in names], s.correction)
    fail = adjust([scores[n].p_fail for n in names], s.correction)
    out = []
    for name, pw, pf in zip(names, warn, fail):
        sc = scores[name]
        alarm = pf is not None and pf < s.significance
        # Evidence for the fail band is evidence for the lower warn band too.
        drifted = True if alarm else None if pw is None else pw < s.significance
        out.append(FeatureDecision(name, sc.psi, sc.psi_lower, pw, pf, drifted, alarm,
                                   _progress(pw, s.significance), _progress(pf, s.significance)))
    return out


def _rule(s: Settings) -> str:
    word = "Holm" if s.correction == "Holm" else "BH"
    return (f"evidence that PSI >= {s.psi_warn:g} since a change point "
            f"(anytime-valid, {word}-corrected p < {s.significance:g})")


def _percent(progress: float) -> str:
    return f"{min(progress, 9.99):.0%}"


def _too_few(name: str, threshold: str, samples: int | None, s: Settings, what: str = "rows") -> CheckResult | None:
    if samples is None:
        return CheckResult(name, Result.INCONCLUSIVE, threshold=threshold, message="the monitor reported no data")
    if samples < s.min_samples:
        return CheckResult(name, Result.INCONCLUSIVE, threshold=threshold, samples=samples,
                           message=f"{samples} {what} in the window, fewer than spec.analysis.minSampleSize "
                                   f"{s.min_samples}")
    return None


def drift_checks(cand: TrackNumbers, s: Settings) -> list[CheckResult]:
    if not s.drift_enabled:
        return []
    share_threshold = f"<= {s.max_share:g}"
    n = cand.evidence_rows if cand.evidence_rows is not None else cand.samples
    if n is None:
        out = [_too_few("drift.share", share_threshold, None, s)]
        if s.prediction:
            out.append(_too_few("drift.prediction", "no drift", None, s))
        return out
    inputs = {k: v for k, v in cand.features.items() if not v.prediction and k not in s.ignore}
    ignored = sum(1 for k, v in cand.features.items() if not v.prediction and k in s.ignore)
    decisions = decide_features(inputs, s)
    out: list[CheckResult] = []
    if not decisions:
        if ignored:
            out.append(CheckResult("drift.share", Result.PASS, None, share_threshold, n,
                                   f"all {ignored} features are in spec.analysis.drift.ignoreFeatures"))
        else:
            out.append(CheckResult("drift.share", Result.INCONCLUSIVE, None, share_threshold, n,
                                   "the monitor reported no feature scores"))
    else:
        out.extend(_share_checks(decisions, ignored, n, s))
    if s.prediction:
        out.append(_prediction_check(cand, n, s))
    return out


def _pass_or_wait(name: str, threshold: str, value, n: int, text: str, s: Settings, progress: float) -> CheckResult:
    """No failure yet: a pass once minSampleSize rows are in, else keep reading."""
    if n < s.min_samples:
        return CheckResult(name, Result.INCONCLUSIVE, value, threshold, n,
                           f"{text}; {n} rows so far, fewer than spec.analysis.minSampleSize {s.min_samples} "
                           "(a drift alarm does not wait for them)", progress)
    return CheckResult(name, Result.PASS, value, threshold, n, text, progress)


def _share_checks(decisions: list[FeatureDecision], ignored: int, n: int, s: Settings) -> list[CheckResult]:
    total = len(decisions)
    drifted = [d for d in decisions if d.drifted]
    unknown = [d for d in decisions if d.drifted is None]
    low = len(drifted) / total  # unknown features taken as not drifted
    high = (len(drifted) + len(unknown)) / total  # ... and as drifted
    threshold = f"<= {s.max_share:g}"
    names = ", ".join(d.name for d in sorted(drifted, key=lambda d: -d.progress_warn)[:MAX_FEATURE_CHECKS])
    more = f" and {len(drifted) - MAX_FEATURE_CHECKS} more" if len(drifted) > MAX_FEATURE_CHECKS else ""
    text = f"{len(drifted)} of {total} features drifted" + (f" ({names}{more})" if drifted else "")
    text += f"; drifted means {_rule(s)}"
    if ignored:
        text += f"; {ignored} ignored"
    # The share fails once more than max_share * total features drift: its progress is
    # that of the feature that would tip it over; a feature at the fail band alone fails.
    need = math.floor(s.max_share * total + 1e-9) + 1
    ranked = sorted((d.progress_warn for d in decisions), reverse=True)
    share_progress = ranked[need - 1] if need <= total else 0.0
    closest = max(decisions, key=lambda d: d.progress_fail)
    progress = max(share_progress, closest.progress_fail)
    if not drifted and progress > 0:
        text += (f"; closest to an alarm: {closest.name}, {_percent(closest.progress_fail)} of the evidence "
                 f"for PSI >= {s.psi_fail:g}")
    if low > s.max_share:
        text += ("; fix the inputs, or raise spec.analysis.drift.maxDriftedFeatureShare / list expected "
                 "shifts in spec.analysis.drift.ignoreFeatures")
        out = [CheckResult("drift.share", Result.FAIL, low, threshold, n, text, progress)]
    elif high <= s.max_share:
        out = [_pass_or_wait("drift.share", threshold, low, n, text, s, progress)]
    else:
        text += f"; {len(unknown)} features have no evidence yet ({', '.join(d.name for d in unknown[:5])})"
        out = [CheckResult("drift.share", Result.INCONCLUSIVE, low, threshold, n, text, progress)]
    alarm = sorted((d for d in decisions if d.alarm), key=lambda d: -d.progress_fail)
    for d in alarm[:MAX_FEATURE_CHECKS]:
        # Evidence of drift at the fail band fails the gate whatever the share.
        lower = "" if d.psi_lower is None else f" (PSI at least {d.psi_lower:.3g})"
        out.append(CheckResult(f"drift.feature.{d.name}", Result.FAIL, d.psi_lower, f"PSI < {s.psi_fail:g}", n,
                               f"evidence that PSI >= spec.analysis.drift.psi.fail {s.psi_fail:g}{lower}, "
                               f"corrected p = {d.p_fail:.3g}: the candidate's {d.name} differs from training; "
                               "fix the inputs or list it in spec.analysis.drift.ignoreFeatures", d.progress_fail))
    return out


def _prediction_check(cand: TrackNumbers, n: int, s: Settings) -> CheckResult:
    threshold = "no drift"
    preds = {k: v for k, v in cand.features.items() if v.prediction}
    if not preds:
        return CheckResult("drift.prediction", Result.INCONCLUSIVE, None, threshold, n,
                           "the monitor reported no prediction scores; set spec.analysis.drift.prediction: false "
                           "if the profile has none")
    decisions = decide_features(preds, s)
    lowers = [d.psi_lower for d in decisions if d.psi_lower is not None]
    worst = max(lowers) if lowers else None
    progress = max(d.progress_warn for d in decisions)
    rule = _rule(s)
    drifted = [d.name for d in decisions if d.drifted]
    if drifted:
        return CheckResult("drift.prediction", Result.FAIL, worst, threshold, n,
                           f"{', '.join(drifted)} drifted ({rule}); the candidate predicts differently than in "
                           "training; disable with spec.analysis.drift.prediction: false", progress)
    if any(d.drifted is None for d in decisions):
        return CheckResult("drift.prediction", Result.INCONCLUSIVE, worst, threshold, n,
                           "the prediction has no drift evidence yet", progress)
    return _pass_or_wait("drift.prediction", threshold, worst, n,
                         f"drifted means {rule}; {_percent(progress)} of the way", s, progress)


# --- service levels -------------------------------------------------------------------


def slo_checks(cand: TrackNumbers, stable: TrackNumbers | None, s: Settings) -> list[CheckResult]:
    if not s.slo_enabled:
        return []
    out = []
    if s.max_error_rate is not None:
        out.append(_absolute("slo.errorRate", cand.error_rate, cand.requests, s.max_error_rate,
                             f"<= {s.max_error_rate:g}", "spec.analysis.slo.maxErrorRate", s))
    if s.max_latency_p99 is not None:
        out.append(_absolute("slo.latencyP99", cand.latency_p99, cand.requests, s.max_latency_p99,
                             f"<= {format_duration(s.max_latency_p99)}", "spec.analysis.slo.maxLatencyP99", s))
    if s.max_error_rate_increase is not None:
        out.append(_relative("slo.errorRateIncrease", cand, stable, "error_rate", s, s.max_error_rate_increase))
    if s.max_latency_p99_ratio is not None:
        out.append(_relative("slo.latencyP99Ratio", cand, stable, "latency_p99", s, s.max_latency_p99_ratio))
    return out


def _absolute(name: str, value: float | None, requests: int | None, limit: float, threshold: str, field_name: str,
              s: Settings) -> CheckResult:
    unsure = _too_few(name, threshold, requests, s, "requests")
    if unsure:
        return unsure
    if value is None:
        return CheckResult(name, Result.INCONCLUSIVE, None, threshold, requests, "the monitor reported no value")
    if value <= limit:
        return CheckResult(name, Result.PASS, value, threshold, requests)
    return CheckResult(name, Result.FAIL, value, threshold, requests,
                       f"above {field_name} over the last {requests} requests")


def _relative(name: str, cand: TrackNumbers, stable: TrackNumbers | None, attr: str, s: Settings,
              limit: float) -> CheckResult:
    if attr == "error_rate":
        threshold = f"<= {limit:g} above the stable's error rate"
        field_name = "spec.analysis.slo.maxErrorRateIncrease"
    else:
        threshold = f"<= {limit:g} x the stable's p99 latency"
        field_name = "spec.analysis.slo.maxLatencyP99Ratio"
    unsure = _too_few(name, threshold, cand.requests, s, "candidate requests")
    if unsure:
        return unsure
    if stable is None or stable.empty:
        return CheckResult(name, Result.INCONCLUSIVE, None, threshold, cand.requests,
                           "no numbers from the stable track to compare with")
    unsure = _too_few(name, threshold, stable.requests, s, "stable requests")
    if unsure:
        return unsure
    c, b = getattr(cand, attr), getattr(stable, attr)
    if c is None or b is None:
        return CheckResult(name, Result.INCONCLUSIVE, None, threshold, cand.requests,
                           "the monitor reported no value for " + ("the candidate" if c is None else "the stable"))
    if attr == "error_rate":
        value = c - b
        detail = f"candidate {c:.4g} vs stable {b:.4g}"
    else:
        if b <= 0:
            return CheckResult(name, Result.INCONCLUSIVE, None, threshold, cand.requests,
                               "the stable's p99 latency is zero")
        value = c / b
        detail = f"candidate {format_duration(c)} vs stable {format_duration(b)}"
    if value <= limit:
        return CheckResult(name, Result.PASS, value, threshold, cand.requests, detail)
    return CheckResult(name, Result.FAIL, value, threshold, cand.requests, f"{detail}; above {field_name}")


def evaluate(cand: TrackNumbers, stable: TrackNumbers | None, analysis: Mapping,
             strategy: str | None = None) -> list[CheckResult]:
    """Every drift and service-level check of spec.analysis (defaulted) on the
    candidate's numbers, the relative ones against the stable's; for a strategy whose
    tracks share the traffic of one period, the candidate's predictions against the
    stable's; with spec.analysis.quality, the candidate's online quality from delayed
    labels against the stable's (quality_gate.py)."""
    s = Settings.from_analysis(analysis)
    out = [*drift_checks(cand, s), *slo_checks(cand, stable, s)]
    if compares_champion(analysis, strategy):
        check = champion.prediction_check(cand.predictions, stable.predictions if stable else None, s,
                                          champion.ChampionSettings.from_analysis(analysis))
        if check is not None:
            out.append(check)
    if s.quality is not None:
        out.append(quality_gate.quality_check(cand, stable, s.quality, strategy))
    return out


def compares_champion(analysis: Mapping, strategy: str | None) -> bool:
    """Whether the candidate's predictions are compared with the stable's (and the
    providers must read the stable track)."""
    return strategy in champion.STRATEGIES and champion.ChampionSettings.from_analysis(analysis).enabled


def unreachable(tracks: Iterable[str], message: str) -> list[CheckResult]:
    """One Inconclusive check per track whose monitors could not be read."""
    return [CheckResult(f"monitor.{t}", Result.INCONCLUSIVE, message=message) for t in tracks]
