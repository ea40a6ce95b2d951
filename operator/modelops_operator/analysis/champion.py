"""The candidate against the production model (the champion) on the same traffic.

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
- a bias-corrected lower confidence bound on the PSI between the two.

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
BOUND_Z = 1.959964
STRATEGIES = ("Canary", "Shadow")  # both tracks see live traffic of the same period
CHECK = "champion.prediction"


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

    @classmethod
    def from_analysis(cls, analysis: Mapping) -> "ChampionSettings":
        from .checks import SettingsError  # checks imports this module

        champion = analysis.get("champion") or {}
        band = champion.get("maxPredictionPsi", 0.25)
        if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 <= band <= 10:
            raise SettingsError(f"spec.analysis.champion.maxPredictionPsi: {band!r} is not a number in [0, 10]")
        return cls(bool(champion.get("enabled", True)), float(band))


def prediction_check(candidate: Mapping[str, Sequence[float]] | None, stable: Mapping[str, Sequence[float]] | None,
                     settings, champion: ChampionSettings) -> CheckResult | None:
    """The candidate's predictions against the stable's over the same period; None when
    the comparison is off. `settings` is checks.Settings (significance, correction,
    minSampleSize)."""
    from .checks import _progress, adjust  # checks imports this module

    if not champion.enabled:
        return None
    threshold = f"PSI to the stable < {champion.max_prediction_psi:g}"
    names = sorted(set(candidate or {}) & set(stable or {}))
    if not names:
        return CheckResult(CHECK, Result.INCONCLUSIVE, None, threshold, None,
                           "no prediction counts from both tracks over the same period yet")
    results = {name: compare(candidate[name], stable[name]) for name in names}
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
