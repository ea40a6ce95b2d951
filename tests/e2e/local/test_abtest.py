"""End-to-end A/B tests: a shop's sessions go through a real gateway (Envoy Gateway or
Traefik) on the operator's HTTPRoute, stay on the variant they were given, and convert
at a rate that depends on the variant; the shop's own counters, scraped by Prometheus,
decide.

alpha is 0.001 here so that each scenario fails by chance in about 1 run in 1000 (a
false winner when the variants are equal); the sample size this needs (434 sessions
per variant for a 10-point lift from 10%) takes about half a minute of traffic."""

from __future__ import annotations

import time

import pytest

from ...kube import wait_for
from ..shop import start_shop
from .test_rollouts import deploy_stable, start_rollout

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

AB_TEST = {"type": "ABTest", "abTest": {
    "split": {"candidateWeight": 50},
    "decision": {"baselineRate": 0.10, "minimumDetectableEffect": 0.10, "alpha": 0.001, "power": 0.8,
                 "maxDuration": "5m", "exposureMetric": "shop_sessions_total",
                 "conversionMetric": "shop_conversions_total"}}}
PER_VARIANT = 434  # abtest.required_sample_size(0.10, 0.10, 0.001, 0.8)


def run_experiment(stack, models, gateway, conversion: dict[str, float], strategy: dict = AB_TEST,
                   **shop) -> tuple[dict, object, float]:
    """Stable 1.0.0, then an A/B test against 2.0.0 through `gateway` with the given
    true conversion rates; returns the final status, the shop, and when the
    experiment ended."""
    routing = stack.through(gateway)
    deploy_stable(stack, models, replicas=1, routing=routing, strategy=strategy)
    shop = start_shop(stack, conversion, **shop)
    watch = stack.watch()
    start_rollout(stack, models, "2.0.0", "churn-xgboost-v1", replicas=1, routing=routing, strategy=strategy)
    st = wait_for(lambda: (s := stack.status()).get("phase") in ("Succeeded", "RolledBack") and
                  not s.get("candidate") and s, 240, interval=0.5, message="the A/B test decided")
    stages = [(t, s.get("stage")) for t, s in watch.entries]
    begun = next((t for t, stage in stages if stage == "Experimenting"), None)
    assert begun, stages
    ended = next((t for t, stage in stages if t > begun and stage != "Experimenting"), time.time())
    served = shop.revisions_by_session(ended - 1.0)
    print(f"{gateway.name}: A/B test decided {ended - begun:.1f} s after it began: {st.get('abTest')}; "
          f"the shop assigned {dict(shop.assigned)}, converted {dict(shop.converted)}; "
          f"{sum(1 for r in served.values() if len(r) > 1)} returning sessions, "
          f"{sum(1 for r in served.values() if len(set(r)) > 1)} of them switched variant")
    return st, shop, ended


def variants(st: dict) -> tuple[dict, dict]:
    by_name = {v["name"]: v for v in st["abTest"]["variants"]}
    return by_name["control"], by_name["candidate"]


def assert_sticky(shop, end: float) -> None:
    # Once a session had its variant, it kept it until the decision (a second before the
    # decision was seen: the route may change just before the status). The sessions of
    # that last second, and Prometheus' extrapolation of the exposures, leave a few
    # percent fewer sessions here than the decision counted.
    served = shop.revisions_by_session(end - 1.0)
    mixed = [i for i, revisions in served.items() if len(set(revisions)) > 1]
    returned = [i for i, revisions in served.items() if len(revisions) > 1]
    assert len(served) > 1.8 * PER_VARIANT and len(returned) > 100 and not mixed, (len(served), len(returned), mixed[:5])


def assert_sticky_and_split(shop, end: float) -> None:
    assert_sticky(shop, end)
    # New sessions split by the route's 50/50 weights.
    split = shop.split()
    share = split["candidate"] / sum(split.values())
    assert 0.44 <= share <= 0.56, (split, shop.assigned)


def test_ab_test_promotes_the_variant_that_converts_better(stack, models, envoy_gateway):
    st, shop, end = run_experiment(stack, models, envoy_gateway, {"control": 0.10, "candidate": 0.25})

    assert st["phase"] == "Succeeded" and st["stable"]["version"] == "2.0.0", st
    ab = st["abTest"]
    assert ab["winner"] == "candidate" and ab["requiredSampleSize"] == PER_VARIANT, ab
    # Read once, at the planned sample size, from the shop's counters in Prometheus.
    control, candidate = variants(st)
    assert control["exposures"] >= PER_VARIANT and candidate["exposures"] >= PER_VARIANT, ab
    # (Prometheus' increase() extrapolates to the ends of its range: a few percent.)
    assert control["exposures"] <= 1.05 * shop.assigned["control"], (ab, shop.assigned)
    assert candidate["conversions"] / candidate["exposures"] > control["conversions"] / control["exposures"]
    assert_sticky_and_split(shop, end)
    verdict = st["lastVerdict"]
    assert verdict["result"] == "Pass", verdict
    # Afterwards every session, whichever cookie it carries, is served by 2.0.0.
    time.sleep(3)
    assert {r[2] for r in shop.between(time.time() - 1.5)} == {st["stable"]["revision"]}
    assert not [r for r in shop.requests if r[3] != 200]


def test_ab_test_keeps_the_control_when_the_variants_convert_alike(stack, models, traefik_gateway):
    st, shop, end = run_experiment(stack, models, traefik_gateway, {"control": 0.12, "candidate": 0.12})

    assert st["phase"] == "RolledBack" and st["stable"]["version"] == "1.0.0", st
    assert st["history"][0]["reason"] == "ControlKept", st["history"][0]
    ab = st["abTest"]
    assert ab["winner"] == "none", ab
    control, candidate = variants(st)
    assert control["exposures"] >= PER_VARIANT and candidate["exposures"] >= PER_VARIANT, ab
    assert_sticky_and_split(shop, end)
    # The candidate's sessions are back on the control.
    time.sleep(3)
    assert {r[2] for r in shop.between(time.time() - 1.5)} == {st["stable"]["revision"]}
    assert not [r for r in shop.requests if r[3] != 200]


def test_ab_test_by_header_match(stack, models, envoy_gateway):
    """Sessions that send `x-cohort: beta` get the candidate, the others the control, and
    each keeps its variant."""
    strategy = {"type": "ABTest", "abTest": {
        "match": {"headers": [{"name": "x-cohort", "value": "beta|preview", "type": "RegularExpression"}]},
        "decision": AB_TEST["abTest"]["decision"]}}
    # A session's first request decides its cohort; a third of the sessions are beta.
    cohort = lambda index: {"x-cohort": "beta-users"} if index % 3 == 0 else {}  # noqa: E731
    st, shop, end = run_experiment(stack, models, envoy_gateway, {"control": 0.10, "candidate": 0.25},
                                   strategy=strategy, headers=cohort)
    assert st["stable"]["version"] == "2.0.0", st
    assert_sticky(shop, end)
    # Judged over the experiment: a session first seen as the decision lands is assigned
    # by whatever the route is then (at promotion the candidate becomes the stable).
    with shop._lock:
        judged = [(i, s) for i, s in enumerate(shop.sessions) if s.variant and s.assigned_at < end - 1.0]
        wrong = [(i, s.variant, round(end - s.assigned_at, 2)) for i, s in judged
                 if (s.variant == "candidate") != (i % 3 == 0)]
    assert len(judged) > 1.8 * PER_VARIANT and not wrong, (len(judged), wrong[:5])
