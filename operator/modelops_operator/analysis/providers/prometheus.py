"""Prometheus: PromQL over the HTTP API.

Three kinds of measurement:
- the monitor sidecars' gauges, for the drift and service-level checks of
  spec.analysis (analysis/checks.py decides; this file only fetches). Scraped series
  carry `namespace`, `modeldeployment`, `track`, `revision` and `pod` besides the
  monitor's own `feature`, `method` and `status`. Tracks are selected by `revision`
  (the pods' identity; a promoted candidate keeps the track it was created with), and
  the per-pod series are merged by checks.merge_pods;
- custom checks: PromQL templated with {{modeldeployment}}, {{namespace}}, {{track}},
  {{revision}}, ...;
- A/B tests: conversions and exposures per variant since the experiment started,
  whole counts of `METRIC{namespace, modeldeployment, track}` over its age (counted_since).

An empty result, an error, NaN or a timeout is Inconclusive, never a pass."""

from __future__ import annotations

import asyncio
import math
import re

import aiohttp

from .. import abtest, checks, quality_gate
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

    def _address(self, request: AnalysisRequest | None = None, address: str | None = None) -> str:
        if address:
            return address.rstrip("/")
        if request is not None:
            address = (request.analysis.get("provider") or {}).get("address")
        return (address or self.address).rstrip("/")

    async def _result(self, promql: str, address: str | None = None) -> dict:
        """The `data` of an instant query."""
        url = f"{self._address(address=address)}/api/v1/query"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(url, data={"query": promql}) as resp:
                    body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
            raise QueryError(f"Prometheus at {address or self.address} did not answer: {type(err).__name__} {err}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            body = body if isinstance(body, dict) else {}
            raise QueryError(f"{body.get('errorType', 'error')}: {body.get('error', 'query failed')}")
        return body.get("data") or {}

    async def query(self, promql: str, address: str | None = None) -> float | None:
        """The single value of an instant query; None when it returns nothing."""
        data = await self._result(promql, address)
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

    async def query_vector(self, promql: str, address: str | None = None) -> list[tuple[dict, float]]:
        """Every series of an instant vector query, as (labels, value); NaN values included."""
        data = await self._result(promql, address)
        if data.get("resultType") != "vector":
            raise QueryError(f"expected a vector, got {data.get('resultType')!r}")
        return [(item.get("metric") or {}, float(item["value"][1])) for item in data.get("result") or ()]

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
        address = self._address(request)
        custom = [self.check_range(f"custom.{c['name']}", render(c["query"], request), c.get("min"), c.get("max"),
                                   address)
                  for c in request.analysis.get("customChecks") or ()]
        results = await asyncio.gather(self.monitor_checks(request, address), *custom)
        return [*results[0], *results[1:]]

    # --- the monitor's gauges -----------------------------------------------------

    async def tracks(self, request: AnalysisRequest, address: str | None = None) -> dict[str, checks.TrackNumbers]:
        """Revision -> its pods' numbers merged; revisions without series are left out."""
        revisions = [r for r in (request.candidate_revision, request.stable_revision) if r]
        sel = (f'namespace="{_quote(request.namespace)}",modeldeployment="{_quote(request.name)}",'
               f'revision=~"{"|".join(_regex(r) for r in revisions)}"')
        # `max by` keeps one value per pod when a target is scraped by two jobs.
        queries = {
            "psi": f'max by (revision, pod, feature) (modelops_feature_drift_score{{{sel},method="psi"}})',
            "pvalue": f'max by (revision, pod, feature) (modelops_feature_drift_pvalue{{{sel},method="chi2"}})',
            "warn": f'max by (revision, pod, feature) (modelops_feature_drift_evidence{{{sel},band="warn"}})',
            "fail": f'max by (revision, pod, feature) (modelops_feature_drift_evidence{{{sel},band="fail"}})',
            "psi_lower": f'max by (revision, pod, feature) (modelops_feature_psi_lower{{{sel}}})',
            **{key: f"max by (revision, pod) ({metric}{{{sel}}})" for key, metric in GAUGES.items()},
        }
        # Prediction counts since the stage began, for the comparison with the stable.
        age = f"{max(1, math.ceil(request.window_seconds))}s"
        queries["predictions"] = (f"sum by (revision, pod, feature, bin) "
                                  f"({counted_since(f'modelops_prediction_bin_total{{{sel}}}', age)})")
        if request.analysis.get("quality"):
            # Online quality from delayed labels: value, standard error and rows per method
            # and pod, pooled by checks.merge_pods (quality_gate.merge).
            queries.update({key: f"max by (revision, pod, method) ({metric}{{{sel}}})"
                            for key, metric in QUALITY.items()})
            queries["labelled"] = f"max by (revision, pod) (modelops_window_labelled_samples{{{sel}}})"
        answers = await asyncio.gather(*(self.query_vector(q, address) for q in queries.values()))
        pods: dict[tuple[str, str], dict] = {}
        for key, series in zip(queries, answers):
            for labels, value in series:
                pod = pods.setdefault((labels.get("revision", ""), labels.get("pod", "")), {"features": {}})
                if key == "predictions":
                    if labels.get("bin") and not math.isnan(value):
                        pod.setdefault("predictions", {}).setdefault(labels.get("feature", ""), {})[
                            labels["bin"]] = value
                elif key in QUALITY:
                    scores = pod.setdefault("quality", {}).setdefault(labels.get("method", ""), {})
                    scores[key.removeprefix("quality_")] = value
                elif key in FEATURE_KEYS:
                    pod["features"].setdefault(labels.get("feature", ""), {})[key] = value
                else:
                    pod[key] = value
        by_revision: dict[str, list[checks.TrackNumbers]] = {}
        for (revision, _), raw in pods.items():
            by_revision.setdefault(revision, []).append(_pod_numbers(raw))
        return {r: checks.merge_pods(p) for r, p in by_revision.items()}

    async def monitor_checks(self, request: AnalysisRequest, address: str | None = None) -> list[CheckResult]:
        an = request.analysis
        if not (an.get("drift") or {}).get("enabled", True) and not (an.get("slo") or {}).get("enabled", True) \
                and not an.get("quality"):
            return []
        try:
            tracks = await self.tracks(request, address)
        except QueryError as err:
            return [CheckResult("monitor", Result.INCONCLUSIVE, message=str(err))]
        cand = tracks.get(request.candidate_revision)
        if cand is None or cand.empty:
            return [CheckResult("monitor.candidate", Result.INCONCLUSIVE,
                                message=f"Prometheus has no monitor series for namespace={request.namespace}, "
                                        f"modeldeployment={request.name}, revision={request.candidate_revision}")]
        return checks.evaluate(cand, tracks.get(request.stable_revision or ""), an, request.compared_strategy)

    # --- A/B tests ----------------------------------------------------------------

    async def experiment(self, request: AnalysisRequest) -> abtest.Outcome:
        """Conversions and exposures of both variants since the experiment started."""
        decision = abtest.Decision.from_spec(request.ab_test or {})
        address = self._address(request)
        age = f"{max(1, math.ceil(request.window_seconds))}s"
        revisions = {"stable": request.stable_revision, "candidate": request.candidate_revision}

        async def total(metric: str, track: str) -> float | None:
            base = f'namespace="{_quote(request.namespace)}",modeldeployment="{_quote(request.name)}"'
            by_track = f'{metric}{{{base},track="{track}"}}'
            value = await self.query(f"sum({counted_since(by_track, age)})", address)
            if value is None and revisions[track]:
                # Series scraped without a track label still carry the pods' revision.
                by_revision = f'{metric}{{{base},revision="{_quote(revisions[track])}"}}'
                value = await self.query(f"sum({counted_since(by_revision, age)})", address)
            return value

        values = await asyncio.gather(*(total(m, t) for m in (decision.exposure_metric, decision.conversion_metric)
                                        for t in ("stable", "candidate")))
        exposures, conversions = values[:2], values[2:]
        for track, value in zip(("stable", "candidate"), exposures):
            if value is None:
                raise QueryError(f"no {decision.exposure_metric} series for track={track} "
                                 "(spec.strategy.abTest.decision.exposureMetric)")
        if all(v is None for v in conversions):
            raise QueryError(f"no {decision.conversion_metric} series for either variant "
                             "(spec.strategy.abTest.decision.conversionMetric)")
        # A counter a variant has never incremented has no series yet: zero conversions.
        control = abtest.Variant("control", "stable", exposures[0], conversions[0] or 0.0)
        candidate = abtest.Variant("candidate", "candidate", exposures[1], conversions[1] or 0.0)
        return abtest.decide(control, candidate, decision)


FEATURE_KEYS = ("psi", "pvalue", "warn", "fail", "psi_lower")
QUALITY = {  # query key -> metric; the key's suffix is the QualityScore field
    "quality_value": "modelops_model_quality",
    "quality_stderr": "modelops_model_quality_stderr",
    "quality_samples": "modelops_model_quality_samples",
}
GAUGES = {
    "samples": "modelops_window_samples",
    "evidence_rows": "modelops_drift_evidence_rows",
    "change_points": "modelops_drift_change_points",
    "requests": "modelops_window_requests",
    "error_rate": "modelops_error_rate",
    "latency_p99": "modelops_window_latency_p99_seconds",
}


def counted_since(counter: str, age: str) -> str:
    """PromQL for what each series of `counter` (a selector) counted in the last `age`:
    its value now less its value then, or, for a series younger than that (a new pod) or
    reset since (a restarted process), all it counted. Whole counts, as the tests on them
    (the champion comparison, the A/B z-test) need: increase() extrapolates every series
    to the range's ends on its own, which pulls a young pod's series apart (one still at
    zero at its first scrape is not extrapolated back, the others are)."""
    return f"({counter} - {counter} offset {age}) >= 0 or {counter}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _regex(value: str) -> str:
    """A literal inside a PromQL regex string."""
    return _quote(re.escape(value))


def _pod_numbers(raw: dict) -> checks.TrackNumbers:
    def num(value):
        return None if value is None or math.isnan(value) else value

    k = num(raw.get("change_points"))
    features = {name: checks.FeatureScore(num(v.get("psi")), num(v.get("pvalue")), checks.is_prediction(name),
                                          checks.evidence_pvalue(num(v.get("warn")), k),
                                          checks.evidence_pvalue(num(v.get("fail")), k), num(v.get("psi_lower")))
                for name, v in raw["features"].items() if name}
    samples, requests, rows = num(raw.get("samples")), num(raw.get("requests")), num(raw.get("evidence_rows"))
    predictions = {name: bins for name, bins in (raw.get("predictions") or {}).items() if name and bins}
    quality = {method: quality_gate.QualityScore(v.get("value"), v.get("stderr"), v.get("samples"))
               for method, v in (raw.get("quality") or {}).items() if method in quality_gate.METRICS}
    labelled = num(raw.get("labelled"))
    return checks.TrackNumbers(
        samples=None if samples is None else int(samples),
        requests=None if requests is None else int(requests),
        error_rate=num(raw.get("error_rate")),
        latency_p99=num(raw.get("latency_p99")),
        features=features,
        evidence_rows=None if rows is None else int(rows),
        predictions=predictions,
        labelled=None if labelled is None else int(labelled),
        quality=quality,
    )
