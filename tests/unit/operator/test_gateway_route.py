"""The HTTPRoute is written so that Envoy Gateway and Traefik do the same with it.
Each test names a difference between the two that was seen on the real gateways."""

from __future__ import annotations

import re

import pytest

from modelops_operator.routers import Traffic
from modelops_operator.routers.gateway import STICKY_HEADER, GatewayAPIRouter, cookie_regex, search_regex
from modelops_operator.spec import parse

META = {"name": "offers", "namespace": "ml", "uid": "u-1"}
GATEWAY = {"gatewayAPI": {"parentRefs": [{"name": "gw", "namespace": "infra"}]}}


def spec(strategy: dict) -> dict:
    return parse({"model": {"name": "offers", "version": "1.0.0", "image": "reg/offers:1"}, "replicas": 2,
                  "strategy": {**strategy, "trafficRouting": GATEWAY}})


def envoy(regex: str, value: str) -> bool:
    """Envoy matches a header regex against the whole value."""
    return re.fullmatch(regex, value) is not None


def traefik(regex: str, value: str) -> bool:
    """Traefik (Go's regexp MatchString) matches it anywhere in the value."""
    return re.search(regex, value) is not None


COOKIES = [
    ("v=abc", True), ("v=abc; other=1", True), ("other=1; v=abc", True), ("a=1;v=abc;b=2", True),
    ("a=1;  v=abc ;b=2", True), ("v=abcd", False), ("xv=abc", False), ("v=ab", False),
    ("other=v=abc", False), ("", False),
]


@pytest.mark.parametrize("header,expected", COOKIES)
def test_cookie_match_is_the_same_on_both(header, expected):
    # The unanchored form the router used to write, (^|;\s*)v=abc(;|$), fails on Envoy as
    # soon as the client holds another cookie: every such session switched variant.
    regex = cookie_regex("v", "abc")
    assert envoy(regex, header) is expected
    assert traefik(regex, header) is expected


def test_cookie_names_are_escaped():
    regex = cookie_regex("a.b+c", "r1")
    assert envoy(regex, "a.b+c=r1") and not envoy(regex, "aXbbc=r1")


@pytest.mark.parametrize("pattern,value,expected", [
    ("beta", "x-beta-y", True), ("^beta$", "beta", True), ("^beta$", "xbeta", False), ("b.ta", "alpha", False)])
def test_user_header_regex_is_a_search_on_both(pattern, value, expected):
    regex = search_regex(pattern)
    assert envoy(regex, value) is expected
    assert traefik(regex, value) is expected


def test_ab_split_has_no_backend_filters_and_assigns_at_rule_level():
    s = spec({"type": "ABTest", "abTest": {"split": {"candidateWeight": 20},
                                           "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.05}}})
    rules = GatewayAPIRouter().route(META, s, Traffic("r-stable", "r-cand", experiment=True))["spec"]["rules"]
    assert [r["backendRefs"][0]["name"] for r in rules[1:]] == ["offers-canary", "offers-stable"]
    assert envoy(rules[1]["matches"][0]["headers"][0]["value"], "x=1; modelops-variant=r-cand")
    assert not envoy(rules[1]["matches"][0]["headers"][0]["value"], "modelops-variant=r-stable")
    split = rules[0]
    assert "matches" not in split and all("filters" not in b for b in split["backendRefs"])
    assert split["filters"][0]["requestHeaderModifier"]["set"] == [{"name": STICKY_HEADER, "value": "modelops-variant"}]
    assert [b["weight"] for b in split["backendRefs"]] == [80, 20]


def test_ab_header_match_assigns_both_variants():
    s = spec({"type": "ABTest", "abTest": {
        "match": {"headers": [{"name": "x-beta", "value": "yes|true", "type": "RegularExpression"}]},
        "stickiness": {"cookieName": "exp"},
        "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.05}}})
    rules = GatewayAPIRouter().route(META, s, Traffic("r-stable", "r-cand", experiment=True))["spec"]["rules"]
    header = rules[1]["matches"][0]["headers"][0]
    assert header["type"] == "RegularExpression" and envoy(header["value"], "oh yes")
    assert [r["backendRefs"][0]["name"] for r in rules[:2]] == ["offers-stable", "offers-canary"]
    for rule in rules[:2]:
        assert rule["filters"][0]["requestHeaderModifier"]["set"][0]["value"] == "exp"


def test_mirror_percent_only_below_100():
    # percent is HTTPRouteRequestPercentageMirror: asked for only when the spec needs it.
    router = GatewayAPIRouter()
    full = router.route(META, spec({"type": "Shadow", "shadow": {"mirrorPercent": 100}}),
                        Traffic("a", "b", mirror=100))["spec"]["rules"][0]["filters"][0]["requestMirror"]
    part = router.route(META, spec({"type": "Shadow", "shadow": {"mirrorPercent": 30}}),
                        Traffic("a", "b", mirror=30))["spec"]["rules"][0]["filters"][0]["requestMirror"]
    assert "percent" not in full and part["percent"] == 30


@pytest.mark.parametrize("weight,refs", [(0, [("offers-stable", 100)]), (1, [("offers-stable", 99), ("offers-canary", 1)]),
                                         (100, [("offers-canary", 100)])])
def test_zero_weight_backends_are_left_out(weight, refs):
    s = spec({"type": "Canary", "canary": {"steps": [{"weight": 1}]}})
    rule = GatewayAPIRouter().route(META, s, Traffic("a", "b", weight=weight))["spec"]["rules"][0]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == refs


def test_route_carries_the_digest_of_its_spec():
    s = spec({"type": "Canary", "canary": {"steps": [{"weight": 10}]}})
    router = GatewayAPIRouter()
    a = router.route(META, s, Traffic("a", "b", weight=10))
    b = router.route(META, s, Traffic("a", "b", weight=20))
    key = "modelops.io/route-digest"
    assert a["metadata"]["annotations"][key] != b["metadata"]["annotations"][key]
    assert a["metadata"]["annotations"][key] == router.route(META, s, Traffic("a", "b", weight=10))["metadata"][
        "annotations"][key]

AB_SPLIT = {"type": "ABTest", "abTest": {"split": {"candidateWeight": 30},
                                         "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.05}}}
AB_MATCH = {"type": "ABTest", "abTest": {"match": {"headers": [{"name": "x-beta", "value": "yes"}]},
                                         "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.05}}}


@pytest.mark.parametrize("strategy,shapes", [
    (AB_SPLIT, [Traffic("a", None), Traffic("a", "b"), Traffic("a", "b", experiment=True),
                Traffic("a", "b", weight=100), Traffic("b", None)]),
    (AB_MATCH, [Traffic("a", None), Traffic("a", "b"), Traffic("a", "b", experiment=True),
                Traffic("a", "b", weight=100), Traffic("b", None)]),
    ({"type": "Canary", "canary": {"steps": [{"weight": 10}]}},
     [Traffic("a", None), Traffic("a", "b", weight=10), Traffic("a", "b", weight=100), Traffic("b", None)]),
    ({"type": "Shadow", "shadow": {"mirrorPercent": 50}},
     [Traffic("a", None), Traffic("a", "b", mirror=50), Traffic("b", None)]),
])
def test_every_rule_keeps_its_index_through_a_rollout(strategy, shapes):
    """Envoy Gateway names a rule's cluster by its index, and Envoy answers 503 for a rule
    whose cluster it does not have yet, or no longer has: through a rollout, rules change
    in place, and none is added or removed."""
    s = spec(strategy)

    def kinds(traffic):  # per rule: the names of the headers it matches
        rules = GatewayAPIRouter().route(META, s, traffic)["spec"]["rules"]
        return [[h["name"] for m in r.get("matches", []) for h in m.get("headers", [])] for r in rules]

    first = kinds(shapes[0])
    for traffic in shapes[1:]:
        assert kinds(traffic) == first, traffic


@pytest.mark.parametrize("strategy", [AB_SPLIT, AB_MATCH])
def test_outside_the_experiment_every_ab_rule_goes_where_all_traffic_goes(strategy):
    router = GatewayAPIRouter()
    for traffic, backend in [(Traffic("a", None), "offers-stable"), (Traffic("a", "b"), "offers-stable"),
                             (Traffic("a", "b", weight=100), "offers-canary"), (Traffic(None, "b"), "offers-stable")]:
        rules = router.route(META, spec(strategy), traffic)["spec"]["rules"]
        assert {(b["name"], b["weight"]) for r in rules for b in r["backendRefs"]} == {(backend, 100)}, traffic
        assert all("filters" not in r for r in rules), traffic
