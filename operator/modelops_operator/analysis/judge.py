"""The judge: check results -> one verdict; the gate: verdicts over time -> decision.

A gate never passes on missing data: no checks, or any check without enough samples,
is Inconclusive (a failing check still fails). Failures of window checks (service
levels, custom queries) must repeat `failureLimit` times in a row before a rollback, so
one noisy window does not roll back a good model. A drift failure is sequential
evidence, valid however often it is read, and rolls back at once."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .base import CheckResult, Result, Verdict


def judge(checks: list[CheckResult] | tuple[CheckResult, ...]) -> Verdict:
    checks = tuple(checks)
    failed = [c for c in checks if c.result is Result.FAIL]
    if failed:
        return Verdict(Result.FAIL, "CheckFailed", "; ".join(_describe(c) for c in failed), checks)
    if not checks:
        return Verdict(Result.INCONCLUSIVE, "NoData", "no check returned a result", checks)
    unsure = [c for c in checks if c.result is Result.INCONCLUSIVE]
    if unsure:
        return Verdict(Result.INCONCLUSIVE, "NotEnoughData", "; ".join(_describe(c) for c in unsure), checks)
    return Verdict(Result.PASS, "AllChecksPassed", f"{len(checks)} checks passed", checks)


def _describe(check: CheckResult) -> str:
    parts = [check.name]
    if check.value is not None:
        parts.append(f"= {check.value:.4g}")
    if check.threshold:
        parts.append(f"(want {check.threshold})")
    if check.message:
        parts.append(f"- {check.message}")
    return " ".join(parts)


class Decision(str, Enum):
    ADVANCE = "Advance"  # the gate passed
    WAIT = "Wait"  # analyse again at the next interval
    PAUSE = "Pause"  # stop and wait for a person
    ROLLBACK = "Rollback"


@dataclass(frozen=True)
class GateOutcome:
    decision: Decision
    consecutive_failures: int
    consecutive_inconclusive: int


def drift_alarm(verdict: Verdict) -> bool:
    """A failing drift check: sequential evidence, which needs no second look."""
    return verdict.result is Result.FAIL and any(c.name.startswith("drift.") for c in verdict.failed)


def gate(verdict: Verdict, consecutive_failures: int, consecutive_inconclusive: int,
         failure_limit: int, inconclusive_limit: int, on_inconclusive: str) -> GateOutcome:
    if verdict.result is Result.PASS:
        return GateOutcome(Decision.ADVANCE, 0, 0)
    if verdict.result is Result.FAIL:
        failures = consecutive_failures + 1
        decision = Decision.ROLLBACK if failures >= failure_limit or drift_alarm(verdict) else Decision.WAIT
        return GateOutcome(decision, failures, 0)
    unsure = consecutive_inconclusive + 1
    if unsure < inconclusive_limit:
        return GateOutcome(Decision.WAIT, consecutive_failures, unsure)
    decision = Decision.ROLLBACK if on_inconclusive == "Rollback" else Decision.PAUSE
    return GateOutcome(decision, consecutive_failures, unsure)
