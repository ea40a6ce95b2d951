"""Analysis: metric providers measure checks, the judge turns them into a verdict,
and the gate turns verdicts over time into a rollout decision."""

from .base import AnalysisRequest, Analyzer, CheckResult, MetricProvider, Result, Verdict
from .judge import Decision, drift_alarm, gate, judge

__all__ = ["AnalysisRequest", "Analyzer", "CheckResult", "Decision", "MetricProvider", "Result", "Verdict",
           "drift_alarm", "gate", "judge"]
