"""Gateway API routing: an HTTPRoute owned by the operator, attached to the parents
from the spec, with exact backend weights, request mirroring (Shadow), and header or
cookie matches for A/B tests with sticky sessions.

The route is written so that implementations that read Gateway API differently still
do the same with it (tested on Envoy Gateway and Traefik):
- regular expressions are written to mean the same under full-value matching (Envoy)
  and partial matching (Traefik): a cookie match is anchored over the whole Cookie
  header, and a user's header regex is searched for anywhere in the value;
- no filter sits on a single backendRef (Traefik ignores those): sessions are made
  sticky by the model server, which answers a request carrying STICKY_HEADER (set by a
  rule-level filter, a core feature) with a cookie naming its own revision;
- a backend with weight 0 is left out, and RequestMirror carries `percent` only below
  100, so a route asks for no more than the strategy needs.
"""

from __future__ import annotations

import copy
import json
import math

from ..naming import CANDIDATE, STABLE, child_labels, object_meta, service_name
from ..spec import Spec
from .base import Capacity, Traffic, service, track_services
from .gateway_readiness import ROUTE_DIGEST, digest

GATEWAY_API = "gateway.networking.k8s.io/v1"
# Set on requests that should be assigned a variant; its value is the cookie's name.
STICKY_HEADER = "X-Modelops-Sticky-Cookie"
DEFAULT_COOKIE = "modelops-variant"
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


def regex_escape(text: str) -> str:
    """Escapes the characters that are special in RE2, Go and ECMAScript alike
    (Python's re.escape also escapes characters some engines reject escaped)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def cookie_regex(name: str, value: str) -> str:
    """Matches a Cookie header that holds NAME=VALUE among any other cookies, both
    where the whole value must match (Envoy) and where any part may (Traefik)."""
    return f"^(.*;\\s*)?{regex_escape(name)}={regex_escape(value)}(\\s*;.*)?$"


def search_regex(pattern: str) -> str:
    """A user's header regex, found anywhere in the value on every implementation."""
    return f".*(?:{pattern}).*"


def _backend(meta: dict, role: str, weight: int | None = None) -> dict:
    ref = {"name": service_name(meta["name"], role), "port": 80}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _split(meta: dict, stable_weight: int, candidate_weight: int) -> list[dict]:
    refs = [_backend(meta, "stable", stable_weight), _backend(meta, "canary", candidate_weight)]
    return [r for r in refs if r["weight"] > 0] or refs[:1]


def _assign_variant(cookie: str) -> list[dict]:
    """Rule-level: whichever backend answers sets the cookie naming its revision."""
    return [{"type": "RequestHeaderModifier",
             "requestHeaderModifier": {"set": [{"name": STICKY_HEADER, "value": cookie}]}}]


def cookie_name(spec: Spec) -> str:
    return (spec.ab_test.get("stickiness") or {}).get("cookieName") or DEFAULT_COOKIE


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
        if traffic.candidate and traffic.experiment:
            rules = self._experiment_rules(meta, spec, traffic)
        else:
            if not traffic.candidate:
                rule = {"backendRefs": [_backend(meta, stable_role, 100)]}
            else:
                rule = {"backendRefs": _split(meta, 100 - weight, weight)}
            if traffic.candidate and traffic.mirror:
                mirror = {"backendRef": _backend(meta, "canary")}
                if traffic.mirror < 100:
                    mirror["percent"] = traffic.mirror
                rule["filters"] = [{"type": "RequestMirror", "requestMirror": mirror}]
            rules = [rule]
            if spec.strategy == "ABTest":
                rules += self._held_rules(meta, spec, traffic, rule["backendRefs"])
        parents = [json.loads(p) for p in spec.routing.parent_refs]
        route_spec = {"parentRefs": parents, "rules": rules}
        if spec.routing.hostnames:
            route_spec["hostnames"] = list(spec.routing.hostnames)
        track = CANDIDATE if traffic.candidate else STABLE
        return {
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": object_meta(meta, meta["name"], child_labels(meta["name"], spec.model, track, None),
                                    {ROUTE_DIGEST: digest(route_spec)}),
            "spec": route_spec,
        }

    def _experiment_rules(self, meta: dict, spec: Spec, traffic: Traffic) -> list[dict]:
        """New sessions, by weighted split or header match, each assigned a variant by the
        backend that answers; then returning sessions, by the revision their cookie names
        (a cookie from an earlier experiment names neither, and the session is assigned
        afresh).

        The order does not decide which rule a request takes: Gateway API gives
        precedence to the rule with more header matches, then to the earlier one. So a
        request that matches spec.strategy.abTest.match goes to the candidate whatever
        its cookie, and the rule for all other requests can be the first."""
        cookie = cookie_name(spec)
        if match := _ab_match(spec):
            rules = [{"filters": _assign_variant(cookie), "backendRefs": [_backend(meta, "stable", 1)]},
                     {"matches": [match], "filters": _assign_variant(cookie),
                      "backendRefs": [_backend(meta, "canary", 1)]}]
        else:
            share = int(spec.ab_test["split"]["candidateWeight"])
            rules = [{"filters": _assign_variant(cookie), "backendRefs": _split(meta, 100 - share, share)}]
        return [*rules, _returning(cookie, traffic.candidate, [_backend(meta, "canary", 1)]),
                _returning(cookie, traffic.stable, [_backend(meta, "stable", 1)])]

    def _held_rules(self, meta: dict, spec: Spec, traffic: Traffic, backends: list[dict]) -> list[dict]:
        """An A/B test's route has the experiment's rules at every stage, at the same index,
        going where all requests go outside the experiment. Envoy Gateway names a rule's
        cluster by the rule's index, and Envoy answers 503 for a rule whose cluster it does
        not have yet, or no longer has: added or removed rules would fail requests for a
        moment at the start and end of each experiment, changed rules do not."""
        cookie = cookie_name(spec)
        candidate = traffic.candidate or traffic.stable or ""
        stable = traffic.stable or candidate
        rules = [{"matches": [match], "backendRefs": copy.deepcopy(backends)}] if (match := _ab_match(spec)) else []
        return [*rules, _returning(cookie, candidate, copy.deepcopy(backends)),
                _returning(cookie, stable, copy.deepcopy(backends))]


def _returning(cookie: str, revision: str, backends: list[dict]) -> dict:
    """The rule for sessions whose cookie names `revision`."""
    match = {"headers": [{"type": "RegularExpression", "name": "Cookie", "value": cookie_regex(cookie, revision)}]}
    return {"matches": [match], "backendRefs": backends}


def _ab_match(spec: Spec) -> dict | None:
    """The HTTPRouteMatch of an A/B test by header match; None for other strategies."""
    if spec.strategy != "ABTest" or "match" not in spec.ab_test:
        return None
    headers = []
    for h in spec.ab_test["match"]["headers"]:
        kind = h.get("type", "Exact")
        value = search_regex(h["value"]) if kind == "RegularExpression" else h["value"]
        headers.append({"type": kind, "name": h["name"], "value": value})
    return {"headers": headers}
