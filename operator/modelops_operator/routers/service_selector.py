"""Blue-green by Service selector: the active Service selects exactly one revision and
the switch is one selector change, so promotion and rollback are immediate. The new
revision is reachable before the switch through the preview Service."""

from __future__ import annotations

from ..naming import CANDIDATE, STABLE
from ..spec import Spec
from .base import Capacity, Traffic, service


class ServiceSelectorRouter:
    name = "serviceSelector"

    def capacity(self, spec: Spec, traffic: Traffic, candidate_ready: int) -> Capacity:
        if not traffic.candidate:
            return Capacity(spec.replicas, 0)
        preview = int(spec.blue_green.get("previewReplicas") or spec.replicas)
        # Before the switch, the preview size; for the switch, full size.
        return Capacity(spec.replicas, spec.replicas if traffic.weight >= 100 else preview)

    def reached(self, spec: Spec, traffic: Traffic, stable_replicas: int, candidate_ready: int) -> bool:
        return candidate_ready >= self.capacity(spec, traffic, candidate_ready).candidate

    def objects(self, meta: dict, spec: Spec, traffic: Traffic) -> list[dict]:
        active = traffic.candidate if (traffic.candidate and traffic.weight >= 100) else traffic.stable
        objs = [service(meta, spec, None, STABLE, active or traffic.candidate),
                service(meta, spec, "stable", STABLE, traffic.stable or traffic.candidate)]
        if traffic.candidate:
            objs.append(service(meta, spec, "preview", CANDIDATE, traffic.candidate))
        return objs
