"""The rollout planner: spec + status + observed cluster + verdict in, next status and
desired objects out. Pure: no I/O, no clock, no memory between calls.

Each call makes at most one transition (recorded in status.transition with a
sequence number, so its Event is announced exactly once even across restarts), and
the desired objects always follow from the status it returns. A restarted operator
therefore resumes at the same step, and applying a plan twice changes nothing."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime

from .analysis import AnalysisRequest, Verdict
from . import resolution
from .config import OperatorConfig
from .lifecycle import ANNOTATION, Rollout, Transition, record_transition
from .model_source import resolver_pod
from .naming import common_labels
from .observed import Observed, RevisionState
from .spec import SpecError, check_metadata, parse
from .status import condition, set_condition

__all__ = ["ANNOTATION", "Observed", "Plan", "RevisionState", "plan"]


@dataclass
class Plan:
    status: dict
    apply: list[dict] = field(default_factory=list)  # whole objects, server-side applied
    scale: dict[str, int] = field(default_factory=dict)  # revision -> replicas, other revisions
    unscaled: list[str] = field(default_factory=list)  # HorizontalPodAutoscalers to delete, by name
    delete: list[str] = field(default_factory=list)  # revisions whose Deployments go
    transition: Transition | None = None
    analysis: AnalysisRequest | None = None  # a gate is due: call again with a verdict
    requeue_after: float | None = None
    resolver: dict | None = None  # the resolver pod that must exist (every other one goes)
    hook_calls: list[dict] = field(default_factory=list)  # HTTP hooks to call until they answer


def plan(meta: dict, raw_spec: dict, status: dict | None, observed: Observed, now: datetime,
         verdict: Verdict | None = None, config: OperatorConfig | None = None) -> Plan:
    """The next status and the objects that realise it. See the module docstring."""
    status = copy.deepcopy(status or {})
    generation = meta.get("generation")
    try:
        check_metadata(meta)
        spec = parse(raw_spec)
    except SpecError as err:
        invalid = _invalid(status, err, now, generation)
        invalid.status["observedGeneration"] = generation
        return invalid
    rejected = observed.rejected
    if rejected is not None and rejected.generation == generation:
        # Applying the same spec again would be refused again: it is invalid, not a failure to retry.
        err = SpecError(rejected_field(rejected), f"the API server refused the {rejected.kind} {rejected.name}: "
                                                  f"{rejected.message}")
        invalid = _invalid(status, err, now, generation)
        invalid.status["observedGeneration"] = generation
        return invalid

    pin = None
    if spec.source:
        pin = resolution.step(meta["name"], spec.version, spec.source, status, observed.resolvers, now, generation)
        resolver = resolver_pod(meta, spec.image, spec.source, pin.resolver,
                                {**common_labels(meta["name"], spec.model),
                                 "app.kubernetes.io/component": "model-resolver"}) if pin.resolver else None
        if pin.mismatch:
            invalid = _invalid(status, SpecError("spec.model.version", pin.mismatch), now, generation)
            invalid.status["observedGeneration"] = generation
            invalid.resolver, invalid.requeue_after = resolver, pin.wake
            return invalid
    else:
        for key in ("resolved", "resolution"):
            status.pop(key, None)
        status["conditions"] = [c for c in status.get("conditions", []) if c["type"] != "ModelResolved"]
    if pin is not None and pin.resolved:
        spec = spec.pinned(pin.resolved)

    rollout = Rollout(meta, spec, status, observed, now, verdict, config or OperatorConfig())
    if pin is not None and not pin.resolved:
        # Nothing new runs before it is pinned; what runs stays as it is.
        rollout.hold()
    else:
        if pin is not None and pin.event and pin.event[0] == "ModelMoved":
            rollout.why_new = pin.event[1]
        rollout.run()
    if pin is not None and pin.event and rollout.transition is None:
        rollout.move(*pin.event)
    rollout.step_text()
    apply, scale, delete = rollout.objects()
    rollout.conditions(generation)
    status["observedGeneration"] = generation
    status["specHash"] = spec.revision
    if pin is not None and pin.wake is not None:
        rollout.wake_in(pin.wake)
    due = [d for d in rollout.due if d is not None]
    return Plan(status=status, apply=apply, scale=scale, delete=delete, unscaled=rollout.unscaled,
                transition=rollout.transition,
                analysis=rollout.analysis, requeue_after=min(due) if due else None,
                resolver=resolver if pin is not None else None, hook_calls=rollout.hook_calls)


# The spec field a refused child's field comes from: (kind, the child's field starts with) -> spec field.
_CHILD_FIELDS = (
    (None, "metadata.name", "metadata.name"),
    ("HTTPRoute", "spec.hostnames", "spec.strategy.trafficRouting.gatewayAPI.hostnames"),
    ("HTTPRoute", "spec.parentRefs", "spec.strategy.trafficRouting.gatewayAPI.parentRefs"),
    ("HTTPRoute", "spec.rules", "spec.strategy.abTest"),
    ("Deployment", "spec.template.spec.containers[0].image", "spec.model.image"),
    ("Deployment", "spec.template.spec.containers[0].resources", "spec.resources"),
    ("Deployment", "spec.template.spec.containers[1].image", "spec.monitor.image"),
    ("Deployment", "spec.template.spec.containers[1].resources", "spec.monitor.resources"),
    ("Deployment", "spec.template.spec.containers[1].ports", "spec.monitor.port"),
    ("Deployment", "spec.template.spec.initContainers", "spec.model"),
    ("Deployment", "spec.template.spec.volumes", "spec.monitor.referenceProfile"),
    ("Service", "spec.ports", "spec.monitor.port"),
)
_CHILD_KINDS = {"Deployment": "spec.model", "Service": "metadata.name", "HTTPRoute": "spec.strategy.trafficRouting",
                "HorizontalPodAutoscaler": "spec.autoscaling", "Job": "spec.hooks", "Pod": "spec.model",
                "ConfigMap": "spec.monitor.referenceProfile.inline", "Secret": "metadata.name"}


def rejected_field(rejected) -> str:
    """The ModelDeployment's field behind the child field the API server refused."""
    for kind, child, field_ in _CHILD_FIELDS:
        if kind in (None, rejected.kind) and any(f.startswith(child) for f in rejected.fields):
            return field_
    return _CHILD_KINDS.get(rejected.kind, "spec")


def _invalid(status: dict, err: SpecError, now: datetime, generation) -> Plan:
    """An invalid spec changes nothing but the InvalidSpec condition."""
    previous = dict(condition(status, "InvalidSpec") or {})
    message = f"{err.field}: {err.problem}; nothing was changed"
    set_condition(status, "InvalidSpec", True, "InvalidSpec", message, now, generation)
    plan_ = Plan(status=status)
    if not previous or previous.get("status") != "True" or previous.get("message") != message:
        plan_.transition = record_transition(status, "InvalidSpec", message, True, now)
    return plan_
