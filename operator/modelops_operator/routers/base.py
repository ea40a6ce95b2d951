"""One interface for every way of moving traffic between the stable and the candidate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..naming import CANDIDATE, STABLE, child_labels, object_meta, pod_selector, service_name
from ..spec import Spec


@dataclass(frozen=True)
class Traffic:
    """Where traffic should go now."""

    stable: str | None  # revision
    candidate: str | None  # revision
    weight: int = 0  # percent of live traffic on the candidate
    mirror: int = 0  # percent of live traffic copied to the candidate (Shadow)
    experiment: bool = False  # A/B split or header match, with stickiness


@dataclass(frozen=True)
class Capacity:
    """Replicas per revision for a traffic target, given what is ready now."""

    stable: int
    candidate: int


class TrafficRouter(Protocol):
    name: str

    def capacity(self, spec: Spec, traffic: Traffic, candidate_ready: int) -> Capacity:
        """Replicas for both tracks. Serving capacity stays at least spec.replicas."""

    def reached(self, spec: Spec, traffic: Traffic, stable_replicas: int, candidate_ready: int) -> bool:
        """Whether the traffic target is in effect, given the observed replicas."""

    def objects(self, meta: dict, spec: Spec, traffic: Traffic) -> list[dict]:
        """Services and routes that carry the traffic."""


def service(meta: dict, spec: Spec, role: str | None, track: str, revision: str | None,
            monitor_port: bool = True) -> dict:
    """A Service for the entry point (role None) or one track."""
    ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    if monitor_port and spec.monitor["enabled"]:
        ports.append({"name": "monitor", "port": int(spec.monitor["port"]), "targetPort": "monitor",
                      "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(meta, service_name(meta["name"], role),
                                child_labels(meta["name"], spec.model, track, revision)),
        "spec": {"type": "ClusterIP", "selector": pod_selector(meta["name"], revision), "ports": ports},
    }


def track_services(meta: dict, spec: Spec, traffic: Traffic, candidate_role: str = "canary") -> list[dict]:
    """md-stable and, during a rollout, md-canary (or md-preview): one track each,
    for analysis, for direct access and as route backends."""
    out = []
    if traffic.stable:
        out.append(service(meta, spec, "stable", STABLE, traffic.stable))
    if traffic.candidate:
        out.append(service(meta, spec, candidate_role, CANDIDATE, traffic.candidate))
    return out


def candidate_share(total: int, percent: int) -> int:
    """Candidate replicas for `percent` of `total`: the nearest count, at least one
    when percent > 0 and at most total. 4 replicas at 10% -> 1 (25% real share)."""
    if percent <= 0:
        return 0
    return min(total, max(1, int(total * percent / 100 + 0.5)))


__all__ = ["Capacity", "Traffic", "TrafficRouter", "candidate_share", "service", "track_services"]
