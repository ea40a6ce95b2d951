"""The analyzer the operator uses: picks the provider the spec names, lets it measure,
and has the judge decide. A missing provider, an error or a timeout is no data, and
no data is never a pass."""

from __future__ import annotations

import logging

from .base import AnalysisRequest, CheckResult, MetricProvider, Result, Verdict
from .judge import judge

log = logging.getLogger(__name__)


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
            checks = await provider.measure(request)
        except Exception as err:  # noqa: BLE001 - any failure to measure is no data
            log.warning("%s provider failed for %s/%s: %s", kind, request.namespace, request.name, err)
            checks = [CheckResult(f"{kind.lower()}", Result.INCONCLUSIVE, message=f"{type(err).__name__}: {err}")]
        return judge(checks)
