"""The operator never sends traffic where a gateway cannot serve it: a strategy the
parent Gateways lack a feature for is refused before anything moves, and no step is
taken, nor analysis run, until the gateways have accepted the route as it is now."""

from __future__ import annotations

import copy

from modelops_operator.routers.gateway_readiness import (MIRROR, PERCENTAGE_MIRROR, GatewayState, gateway_state,
                                                         missing_features, route_readiness, route_state)
from modelops_operator.spec import parse
from modelops_operator.status import condition

from .sim import Sim, always, deployed
from .test_planner import CANARY, GATEWAY, SHADOW, v2


def route_ready(sim):
    return condition(sim.status, "RouteReady")


def test_shadow_on_a_gateway_without_mirror_is_refused_and_the_stable_route_kept():
    sim = Sim(SHADOW, name="pricing")
    sim.gateway_features = frozenset({"HTTPRoute", "HTTPRouteResponseHeaderModification"})
    sim.run(deployed)
    before = copy.deepcopy(sim.obj("HTTPRoute", "pricing")["spec"])
    v2(sim)
    for _ in range(20):
        sim.reconcile()
    assert sim.obj("HTTPRoute", "pricing")["spec"] == before  # no mirror, no candidate backend
    assert sim.status.get("candidate") is None and sim.phase() == "Pending"
    assert len([d for d in sim.objects.values() if d["kind"] == "Deployment"]) == 1  # no candidate pods
    cond = route_ready(sim)
    assert cond["status"] == "False" and cond["reason"] == "FeatureNotSupported"
    assert MIRROR in cond["message"] and PERCENTAGE_MIRROR in cond["message"] and "unchanged" in cond["message"]
    assert sim.reasons().count("RolloutRefused") == 1  # announced once, not every pass

    # Once the class declares the features, the same spec rolls out.
    sim.gateway_features = frozenset({MIRROR, PERCENTAGE_MIRROR})
    sim.run(lambda s: s.status.get("stage") == "Shadowing")
    sim.reconcile()
    assert route_ready(sim)["status"] == "True"
    assert sim.obj("HTTPRoute", "pricing")["spec"]["rules"][0]["filters"][0]["type"] == "RequestMirror"


def test_a_class_that_publishes_nothing_is_judged_by_its_controller():
    spec = parse({**SHADOW, "strategy": {**SHADOW["strategy"], "shadow": {"mirrorPercent": 100}}})
    envoy = GatewayState("ml/gw", True, "eg", "gateway.envoyproxy.io/gatewayclass-controller", None)
    unknown = GatewayState("ml/gw", True, "x", "example.com/unknown", None)
    assert missing_features(spec, (envoy,)) is None
    refused = missing_features(spec, (unknown,))
    assert refused.reason == "FeatureNotSupported" and "publishes no status.supportedFeatures" in refused.message
    assert missing_features(spec, None).reason == "GatewayUnknown"


def test_gateway_state_reads_published_features():
    gw = {"spec": {"gatewayClassName": "traefik"}}
    cls = {"spec": {"controllerName": "traefik.io/gateway-controller"},
           "status": {"supportedFeatures": [{"name": "HTTPRoute"}, {"name": "HTTPRouteHostRewrite"}]}}
    state = gateway_state("ml/gw", gw, cls)
    assert state.supported() == frozenset({"HTTPRoute", "HTTPRouteHostRewrite"})
    assert gateway_state("ml/gw", None, None).found is False


def test_no_step_until_the_gateway_accepts_the_route():
    spec = {**CANARY, "strategy": {**CANARY["strategy"], "trafficRouting": GATEWAY}}
    sim = Sim(spec)
    sim.run(deployed)
    sim.accepts = False
    v2(sim)
    for _ in range(60):
        sim.reconcile(advance=5.0)
    assert sim.status["weights"]["candidate"] == 0 and sim.status["stage"] == "Scaling"
    assert not sim.requests  # no analysis of traffic that cannot reach the candidate
    cond = route_ready(sim)
    assert cond["status"] == "False" and cond["reason"] == "NotAllowedByListeners"
    assert "Accepted=False" in cond["message"] and "no listener allows it" in cond["message"]
    sim.accepts = True
    sim.run(lambda s: s.status["weights"]["candidate"] == 25)
    # Just after a step the new route is not taken up yet; the gateway then accepts it.
    assert route_ready(sim)["reason"] == "RoutePending"
    sim.reconcile()
    assert route_ready(sim)["status"] == "True"


def test_a_missing_parent_gateway_is_named():
    spec = {**CANARY, "strategy": {**CANARY["strategy"], "trafficRouting": GATEWAY}}
    sim = Sim(spec)
    sim.gateway_exists = False
    for _ in range(5):
        sim.reconcile()
    cond = route_ready(sim)
    assert cond["status"] == "False" and cond["reason"] == "GatewayNotFound"
    v2(sim)
    for _ in range(20):
        sim.reconcile(judge=always("Pass"))
    assert sim.status["weights"]["candidate"] == 0


def test_route_status_of_an_older_generation_does_not_count():
    route = {"metadata": {"name": "r", "namespace": "ml", "generation": 3, "annotations": {
        "modelops.io/route-digest": "d1"}},
        "status": {"parents": [{"parentRef": {"name": "gw"}, "conditions": [
            {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": 2}]}]}}
    desired = {"metadata": {"name": "r", "annotations": {"modelops.io/route-digest": "d1"}},
               "spec": {"parentRefs": [{"name": "gw"}]}}
    assert route_readiness(desired, route_state(route), (), "ml").reason == "RouteNotAccepted"
    route["status"]["parents"][0]["conditions"][0]["observedGeneration"] = 3
    assert route_readiness(desired, route_state(route), (), "ml").ok
    desired["metadata"]["annotations"]["modelops.io/route-digest"] = "d2"  # not written yet
    assert route_readiness(desired, route_state(route), (), "ml").reason == "RoutePending"


def test_replica_routing_has_no_route_condition():
    sim = Sim(CANARY)
    sim.run(deployed)
    assert route_ready(sim) is None
