"""Whether the gateways can serve, and do serve, the HTTPRoute the operator wrote.

Route status alone does not say what a gateway will do: Traefik reports a route with a
RequestMirror filter it cannot carry out as Accepted, and sends its requests to an
error backend. So two checks, both pure (the controller observes, this decides):
- before a rollout starts, the features the strategy needs (Gateway API's feature
  names) against what each parent Gateway's class declares in
  status.supportedFeatures, or, for implementations that do not publish them, what
  their conformance reports give (KNOWN_FEATURES);
- before traffic moves again, every parent has accepted the route as last written
  (its generation, recognised by ROUTE_DIGEST) and resolved its backends.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..spec import Spec

ROUTE_DIGEST = "modelops.io/route-digest"  # annotation: digest of the spec the operator wrote
MIRROR = "HTTPRouteRequestMirror"
PERCENTAGE_MIRROR = "HTTPRouteRequestPercentageMirror"

# Implementations that publish no GatewayClass.status.supportedFeatures, by controller
# name: what their Gateway API conformance reports list (only the features we use).
KNOWN_FEATURES: dict[str, frozenset[str]] = {
    # Envoy Gateway v1.x: the assignment of supportedFeatures is commented out.
    "gateway.envoyproxy.io/gatewayclass-controller": frozenset({MIRROR, PERCENTAGE_MIRROR}),
}


@dataclass(frozen=True)
class ParentState:
    """One parent's conditions on the route, for the route's current generation."""

    parent: str  # "namespace/name[/section]"
    accepted: tuple[str, str, str] | None = None  # (status, reason, message)
    resolved: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class RouteState:
    digest: str  # ROUTE_DIGEST of the observed route
    parents: tuple[ParentState, ...] = ()


@dataclass(frozen=True)
class GatewayState:
    """A parent Gateway as the operator could read it."""

    parent: str
    found: bool | None  # None: could not be read (the message says why)
    gateway_class: str | None = None
    controller: str | None = None
    features: frozenset[str] | None = None  # None: the class publishes none
    message: str = ""

    def supported(self) -> frozenset[str] | None:
        if self.features is not None:
            return self.features
        return KNOWN_FEATURES.get(self.controller or "")


@dataclass(frozen=True)
class Readiness:
    ok: bool
    reason: str
    message: str


def digest(route_spec: dict) -> str:
    return hashlib.sha256(json.dumps(route_spec, sort_keys=True).encode()).hexdigest()[:16]


def parent_key(ref: dict, namespace: str) -> str:
    key = f"{ref.get('namespace') or namespace}/{ref['name']}"
    return f"{key}/{ref['sectionName']}" if ref.get("sectionName") else key


def route_state(route: dict) -> RouteState:
    """What the gateways said about `route` (an HTTPRoute object) at its generation."""
    meta = route.get("metadata") or {}
    generation = meta.get("generation")
    parents = []
    for entry in (route.get("status") or {}).get("parents") or []:
        conds = {}
        for c in entry.get("conditions") or []:
            if generation is None or c.get("observedGeneration") in (None, generation):
                conds[c.get("type")] = (c.get("status", "Unknown"), c.get("reason", ""), c.get("message", ""))
        parents.append(ParentState(parent_key(entry.get("parentRef") or {"name": "?"}, meta.get("namespace", "")),
                                   conds.get("Accepted"), conds.get("ResolvedRefs")))
    return RouteState((meta.get("annotations") or {}).get(ROUTE_DIGEST, ""), tuple(parents))


def gateway_state(parent: str, gateway: dict | None, gateway_class: dict | None) -> GatewayState:
    if gateway is None:
        return GatewayState(parent, False, message=f"Gateway {parent} does not exist")
    class_name = (gateway.get("spec") or {}).get("gatewayClassName")
    if gateway_class is None:
        return GatewayState(parent, True, class_name, message=f"GatewayClass {class_name} does not exist")
    published = (gateway_class.get("status") or {}).get("supportedFeatures")
    features = None
    if published:
        # Gateway API >= v1.2 lists objects ({name}); earlier drafts listed strings.
        features = frozenset(f["name"] if isinstance(f, dict) else str(f) for f in published)
    return GatewayState(parent, True, class_name, (gateway_class.get("spec") or {}).get("controllerName"), features)


def strategy_features(spec: Spec) -> dict[str, str]:
    """Gateway API features (beyond the core ones) the strategy needs, and why."""
    if spec.strategy != "Shadow":
        return {}
    percent = int(spec.shadow.get("mirrorPercent", 100))
    needs = {MIRROR: "Shadow mirrors requests to the candidate"}
    if percent < 100:
        needs[PERCENTAGE_MIRROR] = f"Shadow mirrors {percent}% of requests"
    return needs


def missing_features(spec: Spec, gateways: tuple[GatewayState, ...] | None) -> Readiness | None:
    """Why the parents cannot serve the strategy, or None when they can."""
    needs = strategy_features(spec)
    if not needs:
        return None
    if gateways is None:
        return Readiness(False, "GatewayUnknown", f"the parent Gateways could not be read, so whether they support "
                                                  f"{', '.join(needs)} is unknown")
    for gw in gateways:
        if not gw.found:
            return Readiness(False, "GatewayNotFound" if gw.found is False else "GatewayUnknown",
                             f"{gw.message}; {spec.strategy} needs {', '.join(needs)}. The stable's route is unchanged")
        supported = gw.supported()
        lacking = [f for f in needs if supported is None or f not in supported]
        if not lacking:
            continue
        how = ("does not list them in status.supportedFeatures" if supported is not None else
               "publishes no status.supportedFeatures and is not a known implementation")
        why = "; ".join(f"{f} ({needs[f]})" for f in lacking)
        return Readiness(False, "FeatureNotSupported",
                         f"Gateway {gw.parent} (class {gw.gateway_class}, controller {gw.controller}) cannot serve "
                         f"{spec.strategy}: it needs {why}, and the class {how}. The stable's route is unchanged; "
                         f"use a GatewayClass that supports it, or another strategy")
    return None


def route_readiness(desired: dict, route: RouteState | None, gateways: tuple[GatewayState, ...] | None,
                    namespace: str) -> Readiness:
    """Whether every parent has accepted the route as desired, with its backends resolved."""
    for gw in gateways or ():
        if gw.found is False:
            return Readiness(False, "GatewayNotFound", f"{gw.message}; the route cannot carry traffic")
    want = desired["metadata"].get("annotations", {}).get(ROUTE_DIGEST)
    if route is None or route.digest != want:
        return Readiness(False, "RoutePending", "waiting for the HTTPRoute to be written")
    by_parent = {p.parent: p for p in route.parents}
    for ref in desired["spec"]["parentRefs"]:
        key = parent_key(ref, namespace)
        state = by_parent.get(key)
        if state is None or state.accepted is None:
            return Readiness(False, "RouteNotAccepted",
                             f"no gateway has reported on HTTPRoute {desired['metadata']['name']} for parent {key} yet")
        for cond, name in ((state.accepted, "Accepted"), (state.resolved, "ResolvedRefs")):
            if cond is not None and cond[0] != "True":
                return Readiness(False, cond[1] or f"{name}False",
                                 f"parent {key}: {name}={cond[0]}, {cond[1]}: {cond[2] or 'no message'}")
    return Readiness(True, "RouteAccepted", "every parent Gateway accepted the route and resolved its backends")


__all__ = ["GatewayState", "KNOWN_FEATURES", "ParentState", "ROUTE_DIGEST", "Readiness", "RouteState", "digest",
           "gateway_state", "missing_features", "parent_key", "route_readiness", "route_state", "strategy_features"]
