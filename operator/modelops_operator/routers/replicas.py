"""Replica-ratio routing: one Service selects both tracks, and the candidate's share of
traffic is its share of ready endpoints, as kube-proxy balances them.

Rounding: the candidate gets the nearest replica count to weight x replicas, at least
one pod for a weight above 0 (see candidate_share), so with 4 replicas the real steps
are 25, 50, 75, 100 percent; status.weights shows the real share. The stable track
only shrinks by as many pods as the candidate has ready, so ready capacity never drops
below spec.replicas."""

from __future__ import annotations

from ..naming import STABLE
from ..spec import Spec
from .base import Capacity, Traffic, candidate_share, service, track_services


class ReplicaRatioRouter:
    name = "replicas"

    def capacity(self, spec: Spec, traffic: Traffic, candidate_ready: int) -> Capacity:
        want = candidate_share(spec.replicas, traffic.weight) if traffic.candidate else 0
        # Shrink the stable track only by what the candidate already serves.
        stable = spec.replicas - min(want, candidate_ready)
        return Capacity(stable, want)

    def reached(self, spec: Spec, traffic: Traffic, stable_replicas: int, candidate_ready: int) -> bool:
        want = candidate_share(spec.replicas, traffic.weight) if traffic.candidate else 0
        return candidate_ready >= want and stable_replicas <= spec.replicas - want

    def objects(self, meta: dict, spec: Spec, traffic: Traffic) -> list[dict]:
        entry = service(meta, spec, None, STABLE, None)  # selects every serving revision
        return [entry, *track_services(meta, spec, traffic)]
