"""Gateway API routing: an HTTPRoute owned by the operator, attached to the parents
from the spec, with exact backend weights, request mirroring (Shadow), and header or
cookie matches for A/B tests with sticky sessions."""

from __future__ import annotations

import json
import math

from ..naming import CANDIDATE, STABLE, child_labels, object_meta, service_name
from ..spec import Spec
from .base import Capacity, Traffic, service, track_services

GATEWAY_API = "gateway.networking.k8s.io/v1"


def _backend(meta: dict, role: str, weight: int | None = None) -> dict:
    ref = {"name": service_name(meta["name"], role), "port": 80}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _sticky(meta: dict, role: str, weight: int, cookie: str, variant: str) -> dict:
    ref = _backend(meta, role, weight)
    # The variant a session got is remembered in a cookie the next requests match on.
    ref["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "add": [{"name": "Set-Cookie", "value": f"{cookie}={variant}; Path=/; HttpOnly"}]}}]
    return ref


class GatewayAPIRouter:
    name = "gatewayAPI"

    def capacity(self, spec: Spec, traffic: Traffic, candidate_ready: int) -> Capacity:
        share = max(traffic.weight, traffic.mirror, 50 if traffic.experiment else 0)
        candidate = min(spec.replicas, max(1, math.ceil(spec.replicas * share / 100))) if traffic.candidate else 0
        if traffic.weight >= 100:
            candidate = spec.replicas
        return Capacity(spec.replicas, candidate)

    def reached(self, spec: Spec, traffic: Traffic, stable_replicas: int, candidate_ready: int) -> bool:
        return candidate_ready >= self.capacity(spec, traffic, candidate_ready).candidate

    def objects(self, meta: dict, spec: Spec, traffic: Traffic) -> list[dict]:
        objs = [service(meta, spec, None, STABLE, traffic.stable or traffic.candidate),
                *track_services(meta, spec, traffic)]
        objs.append(self.route(meta, spec, traffic))
        return objs

    def route(self, meta: dict, spec: Spec, traffic: Traffic) -> dict:
        weight = traffic.weight
        stable_role = "stable" if traffic.stable else "canary"
        if not traffic.candidate:
            rules = [{"backendRefs": [_backend(meta, stable_role, 100)]}]
        elif traffic.experiment:
            rules = self._experiment_rules(meta, spec)
        else:
            rule = {"backendRefs": [_backend(meta, "stable", 100 - weight), _backend(meta, "canary", weight)]}
            if traffic.mirror:
                rule["filters"] = [{"type": "RequestMirror", "requestMirror": {
                    "backendRef": _backend(meta, "canary"), "percent": traffic.mirror}}]
            rules = [rule]
        parents = [json.loads(p) for p in spec.routing.parent_refs]
        route_spec = {"parentRefs": parents, "rules": rules}
        if spec.routing.hostnames:
            route_spec["hostnames"] = list(spec.routing.hostnames)
        track = CANDIDATE if traffic.candidate else STABLE
        return {
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": object_meta(meta, meta["name"], child_labels(meta["name"], spec.model, track, None)),
            "spec": route_spec,
        }

    def _experiment_rules(self, meta: dict, spec: Spec) -> list[dict]:
        ab = spec.ab_test
        cookie = (ab.get("stickiness") or {}).get("cookieName", "modelops-variant")

        def cookie_match(variant):
            return {"headers": [{"type": "RegularExpression", "name": "Cookie",
                                 "value": f"(^|;\\s*){cookie}={variant}(;|$)"}]}

        rules = [
            {"matches": [cookie_match("candidate")], "backendRefs": [_backend(meta, "canary", 1)]},
            {"matches": [cookie_match("control")], "backendRefs": [_backend(meta, "stable", 1)]},
        ]
        if "match" in ab:
            headers = [{"type": h.get("type", "Exact"), "name": h["name"], "value": h["value"]}
                       for h in ab["match"]["headers"]]
            rules.append({"matches": [{"headers": headers}], "backendRefs": [_sticky(meta, "canary", 1, cookie, "candidate")]})
            rules.append({"backendRefs": [_sticky(meta, "stable", 1, cookie, "control")]})
        else:
            share = int(ab["split"]["candidateWeight"])
            rules.append({"backendRefs": [_sticky(meta, "stable", 100 - share, cookie, "control"),
                                          _sticky(meta, "canary", share, cookie, "candidate")]})
        return rules
