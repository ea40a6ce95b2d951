"""A small in-memory cluster that carries out plans, for planner tests.

Deployments scale up one reconcile later (pods take time to turn Ready) and scale
down at once, like the real thing with kwok's instant pods."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

from modelops_operator.analysis import CheckResult, Result, Verdict
from modelops_operator.naming import LABEL_REVISION
from modelops_operator.planner import Observed, RevisionState, plan
from modelops_operator.routers.gateway_readiness import (MIRROR, PERCENTAGE_MIRROR, ROUTE_DIGEST, GatewayState,
                                                         ParentState, RouteState, parent_key)

T0 = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


def verdict(result: str, message: str = "", winner: str | None = None, check: str = "slo.errorRate") -> Verdict:
    """A verdict of one check; a window check by default (failureLimit applies to it,
    while a failing drift.* check is a sequential alarm that rolls back at once)."""
    res = Result(result)
    check = CheckResult(check, res, 0.001 if res is Result.PASS else 0.5, "<= 0.01", 500, message)
    return Verdict(res, {"Pass": "AllChecksPassed", "Fail": "CheckFailed", "Inconclusive": "NotEnoughData"}[result],
                   message or result, (check,), winner)


def always(result: str, winner: str | None = None):
    return lambda request: verdict(result, winner=winner)


class Sim:
    def __init__(self, spec: dict, name: str = "churn", lag: int = 1):
        self.meta = {"name": name, "namespace": "ml", "uid": "0d6c5a4e-1111-2222-3333-444455556666",
                     "generation": 1, "annotations": {}}
        self.spec = copy.deepcopy(spec)
        self.status: dict = {}
        self.watches: list = []  # reads between gates
        self.watch_judge = always("Inconclusive")
        self.replicas: dict[str, int] = {}
        self.ready: dict[str, int] = {}
        self.objects: dict[tuple, dict] = {}
        self.now = T0
        self.lag = lag
        self.events: list[tuple[str, str]] = []
        self.requests = []
        self.last = None
        self.min_ready_after_available: int | None = None
        # A gateway that takes up each route one pass after it is written, and whose
        # class declares these features; accepts=False makes it refuse every route.
        self.gateway_features: frozenset[str] | None = frozenset({MIRROR, PERCENTAGE_MIRROR})
        self.gateway_exists = True
        self.accepts = True
        self.route: RouteState | None = None
        self._written_route: dict | None = None
        self.hook_results: dict[str, tuple[str, str]] = {}  # what the controller saw of each hook run
        self.in_effect = True  # False: the controller's last apply of the recorded status did not finish

    def observed(self) -> Observed:
        parents = [p for p in ((self.spec.get("strategy") or {}).get("trafficRouting") or {})
                   .get("gatewayAPI", {}).get("parentRefs", [])]
        gateways = tuple(
            GatewayState(parent_key(p, "ml"), True, "sim", "sim.example/gateway", self.gateway_features)
            if self.gateway_exists else GatewayState(parent_key(p, "ml"), False, message="Gateway ml/x does not exist")
            for p in parents)
        return Observed({r: RevisionState(self.replicas[r], self.ready.get(r, 0)) for r in self.replicas},
                        route=self.route, gateways=gateways, hook_results=dict(self.hook_results),
                        in_effect=self.in_effect)

    def take_up_route(self) -> None:
        route = self._written_route
        if route is None or not self.gateway_exists:
            return
        cond = ("True", "Accepted", "") if self.accepts else ("False", "NotAllowedByListeners", "no listener allows it")
        self.route = RouteState(route["metadata"]["annotations"][ROUTE_DIGEST], tuple(
            ParentState(parent_key(p, "ml"), cond, ("True", "ResolvedRefs", "")) for p in route["spec"]["parentRefs"]))

    def set_spec(self, **changes):
        for dotted, value in changes.items():
            node = self.spec
            *parents, leaf = dotted.split("__")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        self.meta["generation"] += 1

    def annotate(self, command: str, value: str):
        self.meta["annotations"][f"modelops.io/{command}"] = value

    def reconcile(self, judge=always("Pass"), advance: float = 1.0):
        # Pods started during the last pass are ready now, and the gateway serves its route.
        for rev, want in self.replicas.items():
            self.ready[rev] = want
        self.take_up_route()
        p = plan(self.meta, self.spec, self.status, self.observed(), self.now)
        if p.analysis is not None:
            # Reads of the drift evidence between gates have a judge of their own.
            asked, answer = (self.watches, self.watch_judge) if p.analysis.watch else (self.requests, judge)
            asked.append(p.analysis)
            p = plan(self.meta, self.spec, self.status, self.observed(), self.now, verdict=answer(p.analysis))
        self.carry_out(p)
        self.last = p
        self.now += timedelta(seconds=advance)
        return p

    def carry_out(self, p):
        for obj in p.apply:
            key = (obj["kind"], obj["metadata"]["name"])
            self.objects[key] = obj
            if obj["kind"] == "HTTPRoute":
                self._written_route = obj
            if obj["kind"] == "Deployment":
                rev = obj["metadata"]["labels"][LABEL_REVISION]
                want = obj["spec"]["replicas"]
                self.scale_to(rev, want)
        for rev, want in p.scale.items():
            self.scale_to(rev, want)
        for rev in p.delete:
            self.replicas.pop(rev, None)
            self.ready.pop(rev, None)
            self.objects = {k: v for k, v in self.objects.items()
                            if v["metadata"]["labels"].get(LABEL_REVISION) != rev}
        self.status = p.status
        if p.transition:
            self.events.append((p.transition.reason, p.transition.message))
        self.track_capacity()

    def scale_to(self, rev, want):
        self.replicas[rev] = want
        # Scale-down is immediate; scale-up shows as ready on the next pass.
        self.ready[rev] = min(self.ready.get(rev, 0), want)

    def track_capacity(self):
        if self.status.get("phase") in (None, "Progressing") and not self.status.get("candidate"):
            return  # still the first deployment
        total = sum(self.ready.values())
        self.min_ready_after_available = total if self.min_ready_after_available is None else min(
            self.min_ready_after_available, total)

    def run(self, until, judge=always("Pass"), limit: int = 400, advance: float = 1.0):
        for _ in range(limit):
            self.reconcile(judge, advance)
            if until(self):
                return self
        raise AssertionError(f"not reached after {limit} passes: status={self.status}, events={self.events}")

    def phase(self):
        return self.status.get("phase")

    def reasons(self):
        return [r for r, _ in self.events]

    def obj(self, kind, name):
        return self.objects.get((kind, name))


def deployed(sim: Sim) -> bool:
    return sim.phase() == "Succeeded"
