"""The Prometheus provider against a real Prometheus: values are checked against
their bounds, and every way of having no answer is Inconclusive."""

import asyncio

import pytest

from modelops_operator.analysis import AnalysisRequest, Result
from modelops_operator.analysis.providers.prometheus import PrometheusProvider, render
from modelops_operator.analysis.runner import ProviderAnalyzer

from ..prom import Prometheus, free_port


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"))
    yield prom
    prom.stop()


def request(checks, address=None, provider="Prometheus"):
    analysis = {"provider": {"type": provider}, "customChecks": checks}
    if address:
        analysis["provider"]["address"] = address
    return AnalysisRequest("ml", "churn", "Canary", "aaaa", "bbbb", 0, 30.0, analysis)


def measure(provider, checks, **kw):
    return asyncio.run(provider.measure(request(checks, **kw)))


def test_values_inside_and_outside_bounds(prometheus):
    provider = PrometheusProvider(prometheus.url)
    inside, below, above, scalar = measure(provider, [
        {"name": "ok", "query": "vector(0.5)", "min": 0.1, "max": 1},
        {"name": "low", "query": "vector(0.05)", "min": 0.1},
        {"name": "high", "query": "vector(7)", "max": 1},
        {"name": "scalar", "query": "scalar(vector(3))", "min": 3, "max": 3},
    ])
    assert inside.result is Result.PASS and inside.value == 0.5 and inside.threshold == "in [0.1, 1]"
    assert below.result is Result.FAIL and below.threshold == ">= 0.1"
    assert above.result is Result.FAIL and above.value == 7
    assert scalar.result is Result.PASS


@pytest.mark.parametrize("query,why", [
    ('sum(rate(modelops_requests_total{modeldeployment="nobody"}[1m]))', "no data"),
    ("vector(0) / 0", "no data"),  # NaN
    ("rate(", "bad_data"),
    ('label_replace(vector(1), "x", "a", "", "") or label_replace(vector(2), "x", "b", "", "")', "series"),
])
def test_no_answer_is_inconclusive(prometheus, query, why):
    (check,) = measure(PrometheusProvider(prometheus.url), [{"name": "c", "query": query, "min": 0}])
    assert check.result is Result.INCONCLUSIVE and why in check.message


def test_unreachable_prometheus_is_inconclusive():
    provider = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout=2)
    verdict = asyncio.run(ProviderAnalyzer({"Prometheus": provider}).analyse(
        request([{"name": "c", "query": "vector(1)", "min": 0}])))
    assert verdict.result is Result.INCONCLUSIVE and "did not answer" in verdict.message


def test_spec_address_overrides_the_default(prometheus):
    provider = PrometheusProvider(f"http://127.0.0.1:{free_port()}")
    (check,) = measure(provider, [{"name": "c", "query": "vector(1)", "min": 1}], address=prometheus.url)
    assert check.result is Result.PASS


def test_queries_are_templated():
    req = request([])
    text = render('x{modeldeployment="{{modeldeployment}}", namespace="{{ namespace }}", revision="{{revision}}"}', req)
    assert text == 'x{modeldeployment="churn", namespace="ml", revision="bbbb"}'
    assert render("{{revision}}", req, track="stable") == "aaaa"


def test_verdict_from_checks(prometheus):
    analyzer = ProviderAnalyzer({"Prometheus": PrometheusProvider(prometheus.url)})
    passing = asyncio.run(analyzer.analyse(request([{"name": "a", "query": "vector(1)", "min": 1}])))
    failing = asyncio.run(analyzer.analyse(request([{"name": "a", "query": "vector(1)", "min": 1},
                                                     {"name": "b", "query": "vector(0)", "min": 1}])))
    none = asyncio.run(analyzer.analyse(request([])))
    missing = asyncio.run(analyzer.analyse(request([], provider="Direct")))
    assert passing.result is Result.PASS
    assert failing.result is Result.FAIL and "custom.b" in failing.message
    assert none.result is Result.INCONCLUSIVE and none.reason == "NoData"
    assert missing.result is Result.INCONCLUSIVE and "Direct" in missing.message
