"""A/B test statistics: the two-proportion z-test and the sample size it needs. Pure.

Conversion rates p_c (control) and p_t (candidate) from conversions / exposures.

- z-test, pooled: p = (x_c + x_t) / (n_c + n_t), z = (p_t - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_t)),
  two-sided p-value 2 (1 - Phi(|z|)). This is statsmodels' proportions_ztest.
- Sample size per group to detect p2 = p1 + mde with a two-sided test at alpha and the
  given power, with the variance pooled under H0 and unpooled under H1
  (Fleiss, Statistical Methods for Rates and Proportions, without continuity correction):

      n = (z_{1-alpha/2} sqrt(2 pbar (1 - pbar)) + z_{power} sqrt(p1 (1 - p1) + p2 (1 - p2)))^2 / mde^2,
      pbar = (p1 + p2) / 2

  statsmodels' NormalIndPower with proportion_effectsize uses Cohen's h (an arcsine
  transform) instead, which gives a close but different n.

The decision is not read before both groups have the required size (no peeking at
small samples); after that a significant difference names the winner, and no
difference means: keep collecting until spec.strategy.abTest.decision.maxDuration.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping

_N = NormalDist()
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

COLLECTING, DECIDED, INVALID = "collecting", "decided", "invalid"


class DecisionError(ValueError):
    """A spec.strategy.abTest.decision value that cannot be used; names the field."""


@dataclass(frozen=True)
class Decision:
    baseline_rate: float
    mde: float
    alpha: float
    power: float
    conversion_metric: str
    exposure_metric: str

    @classmethod
    def from_spec(cls, ab_test: Mapping) -> "Decision":
        """From spec.strategy.abTest with the CRD's defaults filled in."""
        d = ab_test.get("decision") if isinstance(ab_test, Mapping) else None
        base = "spec.strategy.abTest.decision"
        if not isinstance(d, Mapping):
            raise DecisionError(f"{base}: is required for an A/B test")

        def number(key, low, high, low_open=True, high_open=True):
            value = d.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise DecisionError(f"{base}.{key}: {value!r} is not a number")
            if (value <= low if low_open else value < low) or (value >= high if high_open else value > high):
                raise DecisionError(f"{base}.{key}: {value!r} is outside its range")
            return float(value)

        baseline = number("baselineRate", 0, 1)
        mde = number("minimumDetectableEffect", 0, 1)
        if baseline + mde >= 1:
            raise DecisionError(f"{base}: baselineRate + minimumDetectableEffect must be below 1")
        metrics = {}
        for key in ("conversionMetric", "exposureMetric"):
            name = d.get(key)
            if not isinstance(name, str) or not METRIC_NAME.match(name):
                raise DecisionError(f"{base}.{key}: {name!r} is not a Prometheus metric name")
            metrics[key] = name
        return cls(baseline, mde, number("alpha", 0, 0.5, high_open=False),
                   number("power", 0.5, 1, low_open=False), metrics["conversionMetric"],
                   metrics["exposureMetric"])


def z_test(conv_control: float, n_control: float, conv_candidate: float, n_candidate: float,
           difference: float = 0.0, pooled: bool = True) -> tuple[float, float]:
    """(z, two-sided p-value) of the two-proportion z-test of H0: p_candidate - p_control
    = difference; z > 0 when the candidate does better than that. The variance comes
    from the pooled proportion (statsmodels' proportions_ztest, which pools for any
    difference), or with pooled=False from each group's own rate (the Wald test,
    statsmodels' test_proportions_2indep(method="wald")). Equal rates of 0 or 1 give (0, 1)."""
    se = difference_stderr(conv_control, n_control, conv_candidate, n_candidate, pooled)
    pc, pt = conv_control / n_control, conv_candidate / n_candidate
    if se <= 0:
        if pt - pc == difference:
            return 0.0, 1.0
        return math.copysign(math.inf, pt - pc - difference), 0.0
    z = (pt - pc - difference) / se
    return z, 2 * (1 - _N.cdf(abs(z)))


def difference_stderr(conv_control: float, n_control: float, conv_candidate: float, n_candidate: float,
                      pooled: bool = True) -> float:
    """The standard error of p_candidate - p_control that z_test divides by."""
    if n_control <= 0 or n_candidate <= 0:
        raise ValueError("both groups need exposures")
    if pooled:
        rate = (conv_control + conv_candidate) / (n_control + n_candidate)
        var = rate * (1 - rate) * (1 / n_control + 1 / n_candidate)
    else:
        pc, pt = conv_control / n_control, conv_candidate / n_candidate
        var = pc * (1 - pc) / n_control + pt * (1 - pt) / n_candidate
    return math.sqrt(max(var, 0.0))


def required_sample_size(baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Exposures per group (see the module's docstring for the formula)."""
    p1, p2 = baseline, baseline + mde
    if not (0 < p1 < 1 and 0 < p2 < 1 and mde > 0 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError("need 0 < baseline < baseline + mde < 1, 0 < alpha < 1 and 0 < power < 1")
    pbar = (p1 + p2) / 2
    za, zb = _N.inv_cdf(1 - alpha / 2), _N.inv_cdf(power)
    root = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (mde * mde))


NO_DIFFERENCE = "none"  # the winner when the test, read at its planned size, finds none


@dataclass(frozen=True)
class Variant:
    name: str  # "control" | "candidate"
    track: str  # "stable" | "candidate"
    exposures: float
    conversions: float

    @property
    def rate(self) -> float | None:
        return self.conversions / self.exposures if self.exposures > 0 else None

    def to_status(self) -> dict:
        return {"name": self.name, "track": self.track, "exposures": int(round(self.exposures)),
                "conversions": int(round(self.conversions))}


@dataclass(frozen=True)
class Outcome:
    status: str  # collecting | decided | invalid
    winner: str | None  # "candidate" | "control" | NO_DIFFERENCE | None (not decided)
    required: int
    z: float | None
    p_value: float | None
    control: Variant
    candidate: Variant
    message: str

    def to_status(self) -> dict:
        out = {"variants": [self.control.to_status(), self.candidate.to_status()], "requiredSampleSize": self.required}
        if self.p_value is not None:
            out["pValue"] = float(f"{self.p_value:.6g}")
        if self.winner:
            out["winner"] = self.winner
        return out


def decide(control: Variant, candidate: Variant, decision: Decision) -> Outcome:
    required = required_sample_size(decision.baseline_rate, decision.mde, decision.alpha, decision.power)
    sizes = f"{int(control.exposures)} control / {int(candidate.exposures)} candidate exposures, " \
            f"{required} needed per group"
    for v in (control, candidate):
        if v.conversions > v.exposures:
            return Outcome(INVALID, None, required, None, None, control, candidate,
                           f"the {v.name} has more conversions ({int(v.conversions)}) than exposures "
                           f"({int(v.exposures)}); check spec.strategy.abTest.decision.conversionMetric "
                           "and exposureMetric")
    if min(control.exposures, candidate.exposures) < required:
        return Outcome(COLLECTING, None, required, None, None, control, candidate, f"collecting: {sizes}")
    z, p = z_test(control.conversions, control.exposures, candidate.conversions, candidate.exposures)
    rates = f"candidate {candidate.rate:.2%} vs control {control.rate:.2%}, z = {z:.3g}, p = {p:.3g}"
    if p < decision.alpha:
        winner = "candidate" if z > 0 else "control"
        return Outcome(DECIDED, winner, required, z, p, control, candidate,
                       f"{rates} < alpha {decision.alpha:g}: the {winner} converts better ({sizes})")
    # Fixed horizon: read once, at the planned size. Reading again as data keeps coming
    # would give every later look its own chance of a false winner.
    return Outcome(DECIDED, NO_DIFFERENCE, required, z, p, control, candidate,
                   f"{rates}: no significant difference at the planned sample size ({sizes}); keeping the control")
