"""The interface between the rollout and whatever measures the model's behaviour."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


def number_or_none(x, finite: bool = False) -> float | None:
    """x as a float; None for missing, NaN (the monitor's "undefined"), a boolean or
    anything else, and with `finite` also for an infinity."""
    if x is None or isinstance(x, bool):
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    if math.isnan(x) or (finite and math.isinf(x)):
        return None
    return x


class Result(str, Enum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, e.g. name="drift.share", value=0.4, threshold="<= 0.3"."""

    name: str
    result: Result
    value: float | None = None
    threshold: str = ""
    samples: int | None = None
    message: str = ""
    # Sequential checks: the evidence so far over what a failure needs (1.0: there).
    progress: float | None = None

    def to_status(self) -> dict:
        out = {"name": self.name, "result": self.result.value, "threshold": self.threshold, "message": self.message}
        if self.value is not None:
            out["value"] = f"{self.value:.4g}"
        if self.samples is not None:
            out["samples"] = int(self.samples)
        if self.progress is not None:
            out["progress"] = f"{min(self.progress, 1.0):.0%}"
        return out


@dataclass(frozen=True)
class Verdict:
    result: Result
    reason: str
    message: str
    checks: tuple[CheckResult, ...] = ()
    # For A/B tests: "candidate" or "control" once the test has a significant winner.
    winner: str | None = None
    # For A/B tests: the numbers status.abTest shows (variants, requiredSampleSize, pValue, winner).
    experiment: dict | None = None

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.result is Result.FAIL)


@dataclass(frozen=True)
class AnalysisRequest:
    """What to analyse: one ModelDeployment's candidate against its stable track."""

    namespace: str
    name: str
    strategy: str
    stable_revision: str | None
    candidate_revision: str
    step: int
    window_seconds: float
    analysis: dict = field(default_factory=dict)  # spec.analysis, defaulted
    monitor: dict = field(default_factory=dict)  # spec.monitor (the sidecar's port)
    ab_test: dict = field(default_factory=dict)  # spec.strategy.abTest, ABTest only
    # A read between gates: only a sequential drift alarm acts on it.
    watch: bool = False

    @property
    def compared_strategy(self) -> str | None:
        """The strategy, for comparing the candidate with the stable; None without one."""
        return self.strategy if self.stable_revision else None


class MetricProvider(Protocol):
    """One source of measurements (Prometheus, the monitor sidecars, ...)."""

    name: str

    async def measure(self, request: AnalysisRequest) -> list[CheckResult]: ...


class Analyzer(Protocol):
    """Turns a request into a verdict; the operator calls it at every gate."""

    async def analyse(self, request: AnalysisRequest) -> Verdict: ...
