"""The Prometheus provider against a real Prometheus scraping real monitor processes.

Scraped series carry the monitor's own labels (namespace, modeldeployment, track,
revision, feature, method, status) plus `pod` from the scrape config, the label contract
the provider relies on. A small exporter stands in for the application's conversion
counter in the A/B test. Custom checks are checked against their bounds, and every way
of having no answer is Inconclusive."""

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from modelops_operator.analysis import AnalysisRequest, Result
from modelops_operator.analysis.providers.prometheus import PrometheusProvider, render
from modelops_operator.analysis.runner import ProviderAnalyzer

from ..kube import wait_for
from ..prom import Prometheus, free_port
from .monitors import Monitor, make_profile, records

NS = "ml"
QUIET_ONLY = {"drift": {"enabled": False}, "slo": {"enabled": False}}


class Fleet:
    """Monitors for two ModelDeployments: `churn` (a drifted candidate on two pods) and
    `quiet` (a healthy stable and a healthy but slower candidate, with conversions)."""

    def __init__(self, workdir):
        profile = make_profile(workdir / "profile.json")
        self.pods = {
            "churn-bbbb-0": ("churn", "candidate", "bbbb"),
            "churn-bbbb-1": ("churn", "candidate", "bbbb"),
            "quiet-q1-0": ("quiet", "stable", "q1"),
            "quiet-q2-0": ("quiet", "candidate", "q2"),
        }
        self.monitors = {pod: Monitor(profile, workdir, "127.0.0.1", free_port(), NS, md, track, rev)
                         for pod, (md, track, rev) in self.pods.items()}
        for m in self.monitors.values():
            m.wait_ready()
        registry = CollectorRegistry()
        self.conversions = Counter("shop_conversions", "Orders after a recommendation",
                                   ["namespace", "modeldeployment", "track"], registry=registry)
        # The same conversions, counted by an application that knows the revision, not the track.
        self.orders = Counter("shop_orders", "Orders, by revision", ["namespace", "modeldeployment", "revision"],
                              registry=registry)
        for track, revision in (("stable", "q1"), ("candidate", "q2")):
            self.conversions.labels(NS, "quiet", track).inc(0)
            self.orders.labels(NS, "quiet", revision).inc(0)
        exporter_port = free_port()
        self.exporter, _ = start_http_server(exporter_port, "127.0.0.1", registry)
        scrape = [{"job_name": "monitors", "static_configs": [
            {"targets": [m.url.removeprefix("http://")], "labels": {"pod": pod}} for pod, m in self.monitors.items()]},
            {"job_name": "shop", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}]
        self.prom = Prometheus(workdir / "prometheus", scrape)
        self.provider = PrometheusProvider(self.prom.url)
        # Every counter is scraped at zero first, so increase() counts all that follows.
        wait_for(lambda: self.value("count(modelops_requests_total) + count(shop_conversions_total) + count(shop_orders_total)") == 16, 60,
                 message="first scrape of every target")
        time.sleep(2)
        self.monitors["churn-bbbb-0"].post(records(400, seed=1, drifted=True))
        self.monitors["churn-bbbb-1"].post(records(400, seed=2, drifted=True))
        self.monitors["quiet-q1-0"].post(records(800, seed=3, latency_ms=5))
        self.monitors["quiet-q2-0"].post(records(800, seed=4, latency_ms=20))
        self.conversions.labels(NS, "quiet", "stable").inc(80)
        self.conversions.labels(NS, "quiet", "candidate").inc(160)
        self.orders.labels(NS, "quiet", "q1").inc(80)
        self.orders.labels(NS, "quiet", "q2").inc(160)
        wait_for(lambda: self.value('sum(modelops_window_samples{namespace="ml"})') == 2400
                 and self.value("sum(shop_conversions_total) + sum(shop_orders_total)") == 480, 60, message="the samples in Prometheus")
        time.sleep(5)  # more scrapes after the data, so increase() extrapolates little

    def value(self, promql):
        return asyncio.run(self.provider.query(promql))

    def stop(self):
        self.exporter.shutdown()
        self.prom.stop()
        for m in self.monitors.values():
            m.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    yield f
    f.stop()


@pytest.fixture(scope="module")
def prometheus(fleet):
    return fleet.prom


def request(checks=(), address=None, provider="Prometheus", name="churn", stable="aaaa", candidate="bbbb",
            strategy="Canary", ab_test=None, **analysis):
    analysis = {"provider": {"type": provider}, "customChecks": list(checks), **analysis}
    if address:
        analysis["provider"]["address"] = address
    return AnalysisRequest(NS, name, strategy, stable, candidate, 0, 300.0, analysis, ab_test=ab_test or {})


def analyse(provider, req):
    return asyncio.run(ProviderAnalyzer({"Prometheus": provider}).analyse(req))


def by_name(verdict):
    return {c.name: c for c in verdict.checks}


# --- the monitor's gauges -------------------------------------------------------------------


def test_drifted_candidate_fails_with_the_features_named(fleet):
    verdict = analyse(fleet.provider, request())
    checks = by_name(verdict)
    assert verdict.result is Result.FAIL
    share = checks["drift.share"]
    # Two pods' windows together: 800 rows; charges (in cents) is 1 of 3 features.
    assert share.result is Result.FAIL and share.samples == 800 and share.value == pytest.approx(1 / 3)
    assert "1 of 3 features drifted (charges)" in share.message
    assert checks["drift.feature.charges"].result is Result.FAIL and checks["drift.feature.charges"].value > 1
    assert checks["drift.prediction"].result is Result.FAIL
    assert checks["slo.errorRate"].result is Result.PASS and checks["slo.errorRate"].value == 0
    assert checks["slo.latencyP99"].result is Result.PASS
    assert "drift.share" in verdict.message and "charges" in verdict.message


def test_healthy_candidate_passes(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2"))
    assert verdict.result is Result.PASS, verdict.message
    checks = by_name(verdict)
    assert set(checks) == {"drift.share", "drift.prediction", "slo.errorRate", "slo.latencyP99", "champion.prediction"}
    assert checks["drift.share"].samples == 800 and checks["drift.share"].value == 0
    # Both tracks' predictions over the candidate's age: the 800 rows each counted.
    champion = checks["champion.prediction"]
    assert champion.result is Result.PASS and champion.samples == 800, champion


def test_relative_checks_against_the_stable_in_the_same_window(fleet):
    slo = {"maxErrorRateIncrease": 0.01, "maxLatencyP99Ratio": 2}
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", slo=slo))
    checks = by_name(verdict)
    assert verdict.result is Result.FAIL
    ratio = checks["slo.latencyP99Ratio"]
    assert ratio.result is Result.FAIL and 3.5 < ratio.value < 4.5  # 20 ms against 5 ms
    assert checks["slo.errorRateIncrease"].result is Result.PASS and checks["slo.errorRateIncrease"].value == 0
    no_stable = by_name(analyse(fleet.provider, request(name="quiet", stable="gone", candidate="q2", slo=slo)))
    assert no_stable["slo.latencyP99Ratio"].result is Result.INCONCLUSIVE
    assert no_stable["slo.errorRate"].result is Result.PASS


def test_prediction_counts_are_the_periods_whole_counts(fleet):
    """The comparison with the stable tests bin counts: each bin's rows since the stage
    began, as the monitors counted them, not increase()'s extrapolation of each series."""
    def raw(rev):
        series = asyncio.run(fleet.provider.query_vector(
            f'modelops_prediction_bin_total{{namespace="ml",modeldeployment="quiet",revision="{rev}"}}'))
        out = {}
        for labels, value in series:
            out.setdefault(labels["feature"], {})[labels["bin"]] = value
        return out

    # Every pod is younger than the period: all it counted.
    tracks = asyncio.run(fleet.provider.tracks(request(name="quiet", stable="q1", candidate="q2")))
    for rev in ("q1", "q2"):
        assert tracks[rev].predictions == raw(rev) and raw(rev)
        assert all(sum(bins.values()) == 800 for bins in tracks[rev].predictions.values())
    # A period that began after the last record: nothing.
    later = AnalysisRequest(NS, "quiet", "Canary", "q1", "q2", 0, 1.0, {"provider": {"type": "Prometheus"}})
    tracks = asyncio.run(fleet.provider.tracks(later))
    assert tracks["q2"].predictions and all(
        v == 0 for bins in tracks["q2"].predictions.values() for v in bins.values())


def test_too_few_samples_is_inconclusive_with_the_count(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", minSampleSize=5000))
    assert verdict.result is Result.INCONCLUSIVE
    assert all(c.result is Result.INCONCLUSIVE for c in verdict.checks)
    assert all(c.samples == 800 for c in verdict.checks if c.name != "champion.prediction")


def test_no_monitor_series_is_inconclusive(fleet):
    verdict = analyse(fleet.provider, request(name="nobody"))
    (check,) = verdict.checks
    assert verdict.result is Result.INCONCLUSIVE and check.name == "monitor.candidate"
    assert "revision=bbbb" in check.message


def test_custom_checks_add_to_the_monitor_checks(fleet):
    query = 'sum(modelops_window_requests{modeldeployment="{{modeldeployment}}", revision="{{revision}}"})'
    verdict = analyse(fleet.provider, request([{"name": "traffic", "query": query, "min": 500}],
                                              name="quiet", stable="q1", candidate="q2"))
    assert verdict.result is Result.PASS and by_name(verdict)["custom.traffic"].value == 800


# --- A/B tests --------------------------------------------------------------------------------


def ab(**decision):
    return {"split": {"candidateWeight": 50},
            "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.05,
                         "conversionMetric": "shop_conversions_total", **decision}}


def test_ab_winner_from_conversions_and_exposures(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", strategy="ABTest",
                                              ab_test=ab()))
    assert verdict.result is Result.PASS and verdict.winner == "candidate", verdict.message
    exp = verdict.experiment
    control, candidate = exp["variants"]
    assert (control["name"], control["track"], candidate["name"]) == ("control", "stable", "candidate")
    # increase() extrapolates past the last scrape (by up to a scrape interval's worth)
    assert 780 <= control["exposures"] <= 1000 and 780 <= candidate["exposures"] <= 1000
    assert 78 <= control["conversions"] <= 100 and 156 <= candidate["conversions"] <= 200
    assert exp["requiredSampleSize"] == 686 and exp["pValue"] < 1e-6 and exp["winner"] == "candidate"
    check = by_name(verdict)["abtest.conversion"]
    assert check.result is Result.PASS and "the candidate converts better" in verdict.message


def test_ab_counts_by_revision_when_series_have_no_track(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", strategy="ABTest",
                                              ab_test=ab(conversionMetric="shop_orders_total")))
    assert verdict.winner == "candidate", verdict.message
    control, candidate = verdict.experiment["variants"]
    assert 78 <= control["conversions"] <= 100 and 156 <= candidate["conversions"] <= 200


def test_ab_keeps_collecting_below_the_sample_size(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", strategy="ABTest",
                                              ab_test=ab(minimumDetectableEffect=0.01)))
    assert verdict.result is Result.INCONCLUSIVE and verdict.winner is None
    assert verdict.experiment["requiredSampleSize"] == 14751 and "pValue" not in verdict.experiment
    assert "collecting" in by_name(verdict)["abtest.conversion"].message


def test_ab_without_the_conversion_metric_is_inconclusive(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", strategy="ABTest",
                                              ab_test=ab(conversionMetric="nothing_total")))
    assert verdict.result is Result.INCONCLUSIVE and verdict.winner is None
    assert "spec.strategy.abTest.decision.conversionMetric" in by_name(verdict)["abtest.conversion"].message


def test_ab_health_failure_wins_over_conversions(fleet):
    verdict = analyse(fleet.provider, request(name="quiet", stable="q1", candidate="q2", strategy="ABTest",
                                              ab_test=ab(), slo={"maxLatencyP99": "10ms"}))
    assert verdict.result is Result.FAIL and verdict.winner is None
    assert verdict.experiment["winner"] == "candidate"


# --- custom checks -----------------------------------------------------------------------


def measure(provider, checks, **kw):
    return asyncio.run(provider.measure(request(checks, **QUIET_ONLY, **kw)))


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
    verdict = analyse(provider, request([{"name": "c", "query": "vector(1)", "min": 0}]))
    assert verdict.result is Result.INCONCLUSIVE and "did not answer" in verdict.message
    assert {c.name for c in verdict.checks} == {"monitor", "custom.c"}


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
    provider = PrometheusProvider(prometheus.url)
    passing = analyse(provider, request([{"name": "a", "query": "vector(1)", "min": 1}], **QUIET_ONLY))
    failing = analyse(provider, request([{"name": "a", "query": "vector(1)", "min": 1},
                                         {"name": "b", "query": "vector(0)", "min": 1}], **QUIET_ONLY))
    none = analyse(provider, request([], **QUIET_ONLY))
    missing = asyncio.run(ProviderAnalyzer({"Prometheus": provider}).analyse(request([], provider="Direct")))
    assert passing.result is Result.PASS
    assert failing.result is Result.FAIL and "custom.b" in failing.message
    assert none.result is Result.INCONCLUSIVE and none.reason == "NoData"
    assert missing.result is Result.INCONCLUSIVE and "Direct" in missing.message
