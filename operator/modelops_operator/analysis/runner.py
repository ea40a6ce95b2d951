"""The analyzer the operator uses: picks the provider the spec names, lets it measure,
and has the judge decide. A missing provider, an error or a timeout is no data, and
no data is never a pass.

For an A/B test the provider also counts conversions (`experiment`); the verdict then
names a winner: "control" as soon as the test says so, "candidate" only when every
other check passed too."""

from __future__ import annotations

import copy
import dataclasses
import logging

from ..spec import apply_defaults, spec_schema
from . import champion
from .abtest import DECIDED, NO_DIFFERENCE, Outcome
from .base import AnalysisRequest, CheckResult, MetricProvider, Result, Verdict
from .checks import Settings
from .judge import judge

log = logging.getLogger(__name__)
AB_CHECK = "abtest.conversion"


def with_defaults(request: AnalysisRequest) -> AnalysisRequest:
    """The request with the CRD's defaults in spec.analysis and spec.strategy.abTest,
    so the checks see the values the API server would have filled in."""
    props = spec_schema()["properties"]
    analysis = apply_defaults(props["analysis"], copy.deepcopy(dict(request.analysis or {})))
    ab_test = request.ab_test
    if ab_test:
        ab_test = apply_defaults(props["strategy"]["properties"]["abTest"], copy.deepcopy(dict(ab_test)))
    monitor = apply_defaults(props["monitor"], copy.deepcopy(dict(request.monitor or {})))
    return dataclasses.replace(request, analysis=analysis, ab_test=ab_test, monitor=monitor)


def experiment_check(outcome: Outcome, alpha: float | None = None) -> CheckResult:
    threshold = f">= {outcome.required} exposures per group, then p < {alpha:g}" if alpha else \
        f">= {outcome.required} exposures per group"
    result = Result.PASS if outcome.status == DECIDED else Result.INCONCLUSIVE
    samples = int(min(outcome.control.exposures, outcome.candidate.exposures))
    return CheckResult(AB_CHECK, result, outcome.p_value, threshold, samples, outcome.message)


class ProviderAnalyzer:
    def __init__(self, providers: dict[str, MetricProvider]):
        self.providers = providers

    async def analyse(self, request: AnalysisRequest) -> Verdict:
        kind = (request.analysis.get("provider") or {}).get("type", "Prometheus")
        provider = self.providers.get(kind)
        if provider is None:
            check = CheckResult("analysis", Result.INCONCLUSIVE, message=f"no {kind} metric provider is configured")
            return judge([check])
        try:
            request = with_defaults(request)
            checks = list(await provider.measure(request))
        except Exception as err:  # noqa: BLE001 - any failure to measure is no data
            log.warning("%s provider failed for %s/%s: %s", kind, request.namespace, request.name, err)
            checks = [CheckResult(f"{kind.lower()}", Result.INCONCLUSIVE, message=f"{type(err).__name__}: {err}")]
        if request.strategy == "Shadow" and not request.watch:
            checks.extend(await self._agreement(request))
        outcome = None
        if request.strategy == "ABTest" and not request.watch:
            outcome, check = await self._experiment(provider, kind, request)
            checks.append(check)
        verdict = judge(checks)
        if outcome is None:
            return verdict
        winner = outcome.winner
        if winner == "candidate" and verdict.result is not Result.PASS:
            winner = None  # a better conversion rate does not excuse a failing or unknown health check
        if winner in ("control", NO_DIFFERENCE) and verdict.result is Result.FAIL:
            winner = None  # the failure rolls back on its own
        message = outcome.message if winner else verdict.message
        return dataclasses.replace(verdict, winner=winner, message=message, experiment=outcome.to_status())

    async def _agreement(self, request: AnalysisRequest) -> list[CheckResult]:
        """A shadow's answers against the stable's, matched by request at the monitors
        (whatever provider reads the metrics)."""
        settings = champion.ChampionSettings.from_analysis(request.analysis)
        reader = getattr(self.providers.get("Direct"), "answers", None)
        if not settings.enabled:
            return []
        if reader is None:
            return [CheckResult(champion.AGREEMENT, Result.INCONCLUSIVE,
                                message="no monitor reader is configured to match the shadow's answers")]
        try:
            answers = await reader(request)
        except Exception as err:  # noqa: BLE001 - no answers is no data
            log.warning("could not match the answers of %s/%s: %s", request.namespace, request.name, err)
            return [CheckResult(champion.AGREEMENT, Result.INCONCLUSIVE, message=f"{type(err).__name__}: {err}")]
        check = champion.agreement_check(answers, Settings.from_analysis(request.analysis), settings)
        return [check] if check else []

    async def _experiment(self, provider, kind: str, request: AnalysisRequest) -> tuple[Outcome | None, CheckResult]:
        count = getattr(provider, "experiment", None)
        if count is None:
            return None, CheckResult(AB_CHECK, Result.INCONCLUSIVE,
                                     message=f"the {kind} provider cannot count conversions; "
                                             "use spec.analysis.provider.type: Prometheus for A/B tests")
        try:
            outcome = await count(request)
        except Exception as err:  # noqa: BLE001 - no count is no data
            log.warning("%s provider could not count conversions for %s/%s: %s", kind, request.namespace,
                        request.name, err)
            return None, CheckResult(AB_CHECK, Result.INCONCLUSIVE, message=f"{type(err).__name__}: {err}")
        alpha = ((request.ab_test or {}).get("decision") or {}).get("alpha")
        return outcome, experiment_check(outcome, alpha)
