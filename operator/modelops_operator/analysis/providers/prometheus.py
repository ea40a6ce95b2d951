"""Prometheus: PromQL over the HTTP API. Queries are templated with the rollout's
ModelDeployment, namespace, track and revision ({{modeldeployment}}, ...).

An empty result, an error, NaN or a timeout is Inconclusive, never a pass."""

from __future__ import annotations

import asyncio
import math

import aiohttp

from ..base import AnalysisRequest, CheckResult, Result

TEMPLATE_KEYS = ("modeldeployment", "namespace", "track", "revision", "stable_revision", "candidate_revision")


class QueryError(Exception):
    pass


def render(query: str, request: AnalysisRequest, track: str = "candidate") -> str:
    values = {
        "modeldeployment": request.name,
        "namespace": request.namespace,
        "track": track,
        "revision": request.candidate_revision if track == "candidate" else (request.stable_revision or ""),
        "stable_revision": request.stable_revision or "",
        "candidate_revision": request.candidate_revision,
    }
    for key in TEMPLATE_KEYS:
        query = query.replace("{{" + key + "}}", values[key]).replace("{{ " + key + " }}", values[key])
    return query


def bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


class PrometheusProvider:
    name = "Prometheus"

    def __init__(self, address: str, timeout: float = 10.0):
        self.address = address.rstrip("/")
        self.timeout = timeout

    async def query(self, promql: str, address: str | None = None) -> float | None:
        """The single value of an instant query; None when it returns nothing."""
        url = f"{(address or self.address).rstrip('/')}/api/v1/query"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(url, data={"query": promql}) as resp:
                    body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
            raise QueryError(f"Prometheus at {address or self.address} did not answer: {type(err).__name__} {err}") from None
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType', 'error')}: {body.get('error', 'query failed')}")
        data = body.get("data") or {}
        result = data.get("result")
        if data.get("resultType") == "scalar":
            value = float(result[1])
        elif data.get("resultType") == "vector":
            if not result:
                return None
            if len(result) > 1:
                raise QueryError(f"query returned {len(result)} series; aggregate it to one (e.g. with sum or max)")
            value = float(result[0]["value"][1])
        else:
            raise QueryError(f"unsupported result type {data.get('resultType')!r}")
        return None if math.isnan(value) else value

    async def check_range(self, name: str, promql: str, low: float | None, high: float | None,
                          address: str | None = None) -> CheckResult:
        threshold = bounds_text(low, high)
        try:
            value = await self.query(promql, address)
        except QueryError as err:
            return CheckResult(name, Result.INCONCLUSIVE, threshold=threshold, message=str(err))
        if value is None:
            return CheckResult(name, Result.INCONCLUSIVE, threshold=threshold, message="the query returned no data")
        ok = (low is None or value >= low) and (high is None or value <= high)
        return CheckResult(name, Result.PASS if ok else Result.FAIL, value, threshold)

    async def measure(self, request: AnalysisRequest) -> list[CheckResult]:
        address = (request.analysis.get("provider") or {}).get("address")
        checks = [self.check_range(f"custom.{c['name']}", render(c["query"], request), c.get("min"), c.get("max"),
                                   address)
                  for c in request.analysis.get("customChecks") or ()]
        return list(await asyncio.gather(*checks))
