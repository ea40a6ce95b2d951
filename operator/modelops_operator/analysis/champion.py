"""The candidate against the production model (the champion) on the same traffic.

Shadow: the candidate answers mirrored copies of the stable's requests, matched by
request key (the gateway's x-request-id, which a mirrored copy keeps). For a
classifier, `champion.agreement` counts the answers that differ; for a regressor it
takes the absolute difference relative to the spread of the stable's answers. It
fails on evidence that the disagreement exceeds spec.analysis.champion.maxDisagreement:
for a classifier a mixture likelihood ratio against the boundary rate (a test
martingale for every rate at or below it), for a regressor an asymptotic confidence
sequence on the mean difference; both may be read at every gate.

Canary and Shadow send live traffic of one period to both tracks, so the candidate's
predictions can be compared with the stable's directly, not only with training: a
two-sample test between the two live prediction distributions, since the stage began.
The same evidence as the sequential drift check, with the stable's counts as the
reference (services/modelops_services/drift/sequential.py, profile bins only; a unit
test holds the two implementations equal):

- an e-value: the Dirichlet-multinomial mixture likelihood of the candidate's bin counts
  over their Polya-urn predictive given the stable's counts, averaged over two prior
  strengths; read as often as one likes, P(ever >= 1/alpha) <= alpha when both predict
  alike;
- the PSI between the two, corrected for a small sample's bias, as a one-sided 95%
  lower bound per read (not a time-uniform bound).

`champion.prediction` fails when there is evidence that the PSI between the candidate's
and the stable's predictions reaches spec.analysis.champion.maxPredictionPsi: corrected
p-value below drift.significance (Holm or BH across the prediction specs, as for
drift). Pure Python (the operator has no numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from .base import CheckResult, Result

CONCENTRATIONS = (0.5, 5.0)
SMOOTHING = 0.5
BOUND_Z = 1.644854  # the effect: a one-sided 95% lower bound per read on the bias-corrected PSI, as for drift
STRATEGIES = ("Canary", "Shadow")  # both tracks see live traffic of the same period
CHECK = "champion.prediction"
AGREEMENT = "champion.agreement"
MAX_KEYS = 20_000  # request keys looked up per read (the monitors keep as many)
# Alternatives of the disagreement test: rates spread between the boundary and 1.
GRID = 24
RHO_ROWS = 500  # the regression bound is tightest around this many matched answers


@dataclass(frozen=True)
class Answers:
    """The two tracks' answers to the same requests, one pair per row."""

    task: str | None
    pairs: list
    problem: str | None = None
    keys: int = 0  # the candidate's request keys looked up


@dataclass(frozen=True)
class Comparison:
    log_evidence: float  # nats, against "the candidate predicts like the stable"
    psi_lower: float
    candidate_rows: float
    stable_rows: float


def compare(candidate: Sequence[float], stable: Sequence[float]) -> Comparison:
    """Two-sample evidence and PSI bound for one prediction spec's bin counts."""
    if len(candidate) != len(stable):
        raise ValueError(f"bin counts differ in length: {len(candidate)} and {len(stable)}")
    c = [max(float(x), 0.0) for x in candidate]
    r = [max(float(x), 0.0) for x in stable]
    bins, n, m = len(c), sum(c), sum(r)
    if not bins or n <= 0 or m <= 0:
        return Comparison(0.0, 0.0, n, m)
    q = [(x + SMOOTHING) / (m + SMOOTHING * bins) for x in r]
    total = m + SMOOTHING * bins
    null = (math.lgamma(total) - math.lgamma(total + n) +
            sum(math.lgamma(rj + SMOOTHING + cj) - math.lgamma(rj + SMOOTHING) for rj, cj in zip(r, c)))
    logs = []
    for conc in CONCENTRATIONS:
        kappa = conc * bins
        mix = math.lgamma(kappa) - math.lgamma(kappa + n) + sum(
            math.lgamma(kappa * qj + cj) - math.lgamma(kappa * qj) for qj, cj in zip(q, c))
        logs.append(mix - null)
    top = max(logs)
    log_e = top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))
    p = [(cj + SMOOTHING) / (n + SMOOTHING * bins) for cj in c]
    psi = sum((pj - qj) * math.log(pj / qj) for pj, qj in zip(p, q))
    used = sum(1 for cj, rj in zip(c, r) if cj > 0 or rj > 0)
    dof = float(max(used - 1, 1))
    n_eff = n * m / (n + m)
    excess = n_eff * psi - dof
    z2 = BOUND_Z**2
    root = math.sqrt(max(4 * z2 * excess + 4 * z2 * z2 + 2 * z2 * dof, 0.0))
    lam = max(excess + 2 * z2 - root, 0.0)
    return Comparison(max(log_e, 0.0), lam / n_eff, n, m)


@dataclass(frozen=True)
class ChampionSettings:
    enabled: bool
    max_prediction_psi: float

    max_disagreement: float = 0.2

    @classmethod
    def from_analysis(cls, analysis: Mapping) -> "ChampionSettings":
        from .checks import SettingsError  # checks imports this module

        champion = analysis.get("champion") or {}

        def number(key, default, high):
            value = champion.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
                raise SettingsError(f"spec.analysis.champion.{key}: {value!r} is not a number in [0, {high:g}]")
            return float(value)

        return cls(bool(champion.get("enabled", True)), number("maxPredictionPsi", 0.25, 10),
                   number("maxDisagreement", 0.2, 1))


def prediction_check(candidate: Mapping[str, Mapping[str, float]] | None,
                     stable: Mapping[str, Mapping[str, float]] | None,
                     settings, champion: ChampionSettings) -> CheckResult | None:
    """The candidate's predictions against the stable's over the same period, per
    prediction spec and bin label; None when the comparison is off or no spec has the
    same bins on both tracks. `settings` is checks.Settings (significance, correction,
    minSampleSize)."""
    from .checks import _progress, adjust  # checks imports this module

    if not champion.enabled:
        return None
    threshold = f"PSI to the stable < {champion.max_prediction_psi:g}"
    if not any(sum(bins.values()) > 0 for bins in (stable or {}).values()):
        return None  # the stable answered nothing over the period (it may have no pods): nothing to compare
    shared = sorted(set(candidate or {}) & set(stable or {}))
    if not shared:
        return CheckResult(CHECK, Result.INCONCLUSIVE, None, threshold, None,
                           "no prediction counts from both tracks over the same period yet")
    # Only bins of the same label compare: the predicted classes, or score intervals when
    # both profiles binned the scores alike (another model's profile has its own edges).
    names = [n for n in shared if set(candidate[n]) == set(stable[n])]
    if not names:
        return None
    results = {name: compare([candidate[name][b] for b in sorted(candidate[name])],
                             [stable[name][b] for b in sorted(candidate[name])]) for name in names}
    # Evidence counts for the band only where the bound reaches it.
    pvalues = [math.exp(-r.log_evidence) if r.psi_lower >= champion.max_prediction_psi else 1.0
               for r in results.values()]
    adjusted = adjust(pvalues, settings.correction)
    worst = max(names, key=lambda n: results[n].psi_lower)
    progress = max(_progress(p, settings.significance) for p in adjusted)
    rows_c = int(min(r.candidate_rows for r in results.values()))
    rows_s = int(min(r.stable_rows for r in results.values()))
    text = (f"{worst}: PSI between the candidate's and the stable's predictions at least "
            f"{results[worst].psi_lower:.3g} over {rows_c} candidate and {rows_s} stable rows")
    failed = [n for n, p in zip(names, adjusted) if p is not None and p < settings.significance]
    if failed:
        return CheckResult(CHECK, Result.FAIL, results[worst].psi_lower, threshold, rows_c,
                           f"{text}: the candidate predicts differently from the production model on the same "
                           f"traffic ({', '.join(failed)}); raise spec.analysis.champion.maxPredictionPsi if that "
                           "is intended", progress)
    if min(rows_c, rows_s) < settings.min_samples:
        return CheckResult(CHECK, Result.INCONCLUSIVE, results[worst].psi_lower, threshold, rows_c,
                           f"{text}; fewer than spec.analysis.minSampleSize {settings.min_samples} rows on a track "
                           "(a difference does not wait for them)", progress)
    return CheckResult(CHECK, Result.PASS, results[worst].psi_lower, threshold, rows_c, text, progress)


def disagreement_evidence(disagree: int, n: int, boundary: float) -> float:
    """Log e-value against "the disagreement rate is at most `boundary`": the likelihood
    ratio of rates above it (a grid mixture) over the boundary rate."""
    if n <= 0 or boundary >= 1.0:
        return 0.0
    b = max(boundary, 1e-9)
    logs = []
    for i in range(1, GRID + 1):
        rate = b + (0.999 - b) * (i / GRID) ** 2
        logs.append(disagree * math.log(rate / b) + (n - disagree) * math.log((1 - rate) / (1 - b)))
    top = max(logs)
    return max(top + math.log(sum(math.exp(x - top) for x in logs) / len(logs)), 0.0)


def mean_lower_bound(values: Sequence[float], alpha: float) -> tuple[float, float]:
    """Mean and its asymptotic confidence-sequence lower bound (Waudby-Smith et al.,
    the normal mixture boundary tuned for RHO_ROWS rows), valid at every read."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / RHO_ROWS
    width = math.sqrt(var) * math.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))
    return mean, mean - width


def agreement_check(answers: Answers, settings, champion: ChampionSettings) -> CheckResult | None:
    """The shadow's answers against the stable's on the same mirrored requests."""
    if not champion.enabled:
        return None
    bound = champion.max_disagreement
    threshold = f"disagreement with the stable <= {bound:g}"
    n = len(answers.pairs)
    if answers.problem and not n:
        return CheckResult(AGREEMENT, Result.INCONCLUSIVE, None, threshold, 0, answers.problem)
    if not n:
        why = ("the candidate answered no request with an x-request-id the stable also answered (the gateway "
               "sets x-request-id, and mirrored copies keep it)" if answers.keys else
               "the candidate has answered no keyed request since the stage began")
        return CheckResult(AGREEMENT, Result.INCONCLUSIVE, None, threshold, 0, why)
    alpha = settings.significance
    if answers.task == "regression":
        pairs = [(float(c), float(s)) for c, s in answers.pairs
                 if isinstance(c, (int, float)) and isinstance(s, (int, float))]
        stable = [s for _, s in pairs]
        mean_s = sum(stable) / len(stable) if stable else 0.0
        spread = math.sqrt(sum((s - mean_s) ** 2 for s in stable) / max(len(stable) - 1, 1)) if stable else 0.0
        if len(pairs) < 2 or spread <= 0:
            return CheckResult(AGREEMENT, Result.INCONCLUSIVE, None, threshold, len(pairs),
                               "too few numeric answers, or the stable's answers do not vary")
        value, lower = mean_lower_bound([abs(c - s) / spread for c, s in pairs], alpha)
        failed = lower > bound
        progress = max(value - bound, 0.0) / max(value - lower, 1e-12) if value > bound else 0.0
        text = (f"mean absolute difference {value:.3g} of the stable's spread (at least {lower:.3g}) over "
                f"{len(pairs)} matched answers")
    else:
        differ = sum(1 for c, s in answers.pairs if str(c) != str(s))
        value = differ / n
        p = math.exp(-disagreement_evidence(differ, n, bound))
        failed = p < alpha
        from .checks import _progress  # checks imports this module

        progress = _progress(p, alpha)
        text = f"{differ} of {n} matched answers differ ({value:.1%})"
    if failed:
        return CheckResult(AGREEMENT, Result.FAIL, value, threshold, n,
                           f"{text}: the candidate disagrees with the production model by more than "
                           "spec.analysis.champion.maxDisagreement", progress)
    if n < settings.min_samples:
        return CheckResult(AGREEMENT, Result.INCONCLUSIVE, value, threshold, n,
                           f"{text}; fewer than spec.analysis.minSampleSize {settings.min_samples}", progress)
    return CheckResult(AGREEMENT, Result.PASS, value, threshold, n, text, progress)
