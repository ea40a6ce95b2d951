"""Autoscaling during rollouts: one autoscaling/v2 HorizontalPodAutoscaler per track,
and the sizes the operator gives each track when spec.autoscaling is set.

Who owns a Deployment's spec.replicas: the HPA decides it (through the scale
subresource). The operator still applies the field, but with the value the HPA set
(the observed spec.replicas), so its server-side apply changes nothing there and the
operator stays a co-owner of the field. Leaving the field out instead would release
it, and where the HPA had not written it yet, the API server would reset it to its
default of 1 pod: a capacity drop. A new Deployment starts at spec.replicas (clamped
to the HPA's range). The value applied is the one last observed: an apply made in the
moment between an HPA's scale and its watch event would write the older size back once,
and the HPA corrects it at its next sync; every HPA scale is itself a watch event that
re-applies the new size.

The rules, per strategy:
- Replica-ratio canary: the weight is the candidate's share of pods. The stable keeps
  its HPA and is never shrunk; the candidate gets the replicas that hold the step's
  share against the stable's *current* size: candidate / (stable + candidate) ~ weight,
  i.e. candidate = round(stable x weight / (100 - weight)), at least 1. The candidate
  has no HPA of its own while it is a canary: two controllers would fight over its size.
- Gateway canary, Shadow, A/B and the blue-green preview: each track has its own HPA
  and scales on its own; the candidate starts at the router's size for the step.
- Promotion: the candidate is brought to the stable's current size before it takes
  all traffic, so capacity never drops; its HPA's minReplicas is raised to that size
  while promoting, and relaxed to spec.autoscaling.minReplicas once it is the stable.
- Rollback: the candidate's HPA is deleted with the candidate's Deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

from .naming import child_labels, deployment_name, object_meta

MODEL_CONTAINER = "model"


@dataclass(frozen=True)
class Autoscaling:
    """spec.autoscaling, checked (see spec._autoscaling)."""

    min_replicas: int
    max_replicas: int
    cpu_utilization: int | None = None  # percent of the model container's CPU request
    pods_metric: str | None = None  # a per-pod metric of the custom metrics API
    pods_target: str | None = None  # its target average value per pod (a quantity)

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))

    def metrics(self) -> list[dict]:
        if self.cpu_utilization is not None:
            # The model container's own CPU: the monitor sidecar neither dilutes nor
            # inflates it (and only the model container needs a CPU request).
            return [{"type": "ContainerResource",
                     "containerResource": {"name": "cpu", "container": MODEL_CONTAINER,
                                           "target": {"type": "Utilization",
                                                      "averageUtilization": self.cpu_utilization}}}]
        return [{"type": "Pods",
                 "pods": {"metric": {"name": self.pods_metric},
                          "target": {"type": "AverageValue", "averageValue": self.pods_target}}}]


def ratio_replicas(stable: int, weight: int) -> int:
    """Candidate pods that give it `weight` percent of all pods next to `stable` pods
    that are not shrunk: at least one for a weight above 0, as many as the stable at 100."""
    if weight <= 0:
        return 0
    if weight >= 100:
        return max(1, stable)
    return max(1, int(stable * weight / (100 - weight) + 0.5))


def share(stable: int, candidate: int) -> int:
    """The candidate's percent of all pods."""
    total = stable + candidate
    return round(100 * candidate / total) if total else 0


def horizontal_pod_autoscaler(meta: dict, model: dict, auto: Autoscaling, track: str, revision: str,
                              min_replicas: int | None = None) -> dict:
    """The HPA of one revision's Deployment; named like it, so it keeps its name when
    the revision changes track at promotion."""
    name = deployment_name(meta["name"], revision)
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": auto.clamp(min_replicas if min_replicas is not None else auto.min_replicas),
        "maxReplicas": auto.max_replicas,
        "metrics": auto.metrics(),
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(meta, name, child_labels(meta["name"], model, track, revision)),
        "spec": spec,
    }


@dataclass(frozen=True)
class Sizes:
    """Replicas the plan gives each track of an autoscaled ModelDeployment, and the
    candidate's HPA (None: it has none)."""

    stable: int
    candidate: int
    candidate_min: int | None  # minReplicas of the candidate's HPA; None: no HPA


def sizes(auto: Autoscaling, router: str, start: int, candidate: bool, weight: int,
          stable_now: int, candidate_now: int, router_candidate: int) -> Sizes:
    """`start`: spec.replicas; `weight`: the target's candidate percent (100: promoting);
    `stable_now`/`candidate_now`: the Deployments' observed spec.replicas (0: not there
    yet); `router_candidate`: the candidate size the router gives without autoscaling."""
    stable = stable_now or auto.clamp(start)
    if not candidate:
        return Sizes(stable, 0, None)
    if router == "replicas":
        # The operator sizes the canary from the stable as its HPA scaled it.
        return Sizes(stable, min(ratio_replicas(stable, weight), auto.max_replicas), None)
    if weight >= 100:
        # Promotion: at least the stable's current size before it takes all traffic.
        floor = auto.clamp(stable)
        return Sizes(stable, max(candidate_now, floor), floor)
    return Sizes(stable, candidate_now or auto.clamp(router_candidate), auto.min_replicas)


def autoscalers(meta: dict, model_name: str, auto: Autoscaling, tracks: list[tuple[str, str, str]],
                sized: Sizes) -> list[dict]:
    """The HPAs of the tracks: (track, revision, model version) each; the stable's has
    spec's range, the candidate's one only where sizes() gives it one."""
    out = []
    for track, revision, version in tracks:
        low = auto.min_replicas if track == "stable" else sized.candidate_min
        if low is None:
            continue
        out.append(horizontal_pod_autoscaler(meta, {"name": model_name, "version": version}, auto, track,
                                             revision, low))
    return out
