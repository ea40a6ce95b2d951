"""Reads a ModelDeployment's spec into typed values the planner can trust.

The API server validates and defaults the spec with the CRD's schema and CEL rules.
A spec can still slip past them (validation off, an older CRD installed), so the
operator applies the same defaults from the same CRD file and checks what the planner
relies on; any problem is a SpecError naming the field, shown as InvalidSpec."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .autoscaling import Autoscaling
from .hooks import Hook, HookError, parse_hooks
from .model_source import ModelSource, parse_source, pinned_revision
from .notifications import NotificationError, Webhook, parse_notifications
from . import validation
from .validation import Invalid

CRD_FILE = Path(__file__).with_name("crd.yaml")
STRATEGY_BLOCKS = {"Canary": "canary", "BlueGreen": "blueGreen", "Shadow": "shadow", "ABTest": "abTest"}


class SpecError(ValueError):
    def __init__(self, field_path: str, problem: str):
        super().__init__(f"{field_path}: {problem}")
        self.field = field_path
        self.problem = problem


@lru_cache(maxsize=1)
def spec_schema() -> dict:
    crd = yaml.safe_load(CRD_FILE.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def apply_defaults(schema: dict, value):
    """Fills defaults the way the API server does: a missing property with a default
    gets it, then defaults apply inside it, recursively."""
    if isinstance(value, dict) and schema.get("type") == "object":
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                value[name] = apply_defaults(extra, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_defaults(schema["items"], v) for v in value]
    return value


@dataclass(frozen=True)
class Step:
    weight: int
    pause: float | None = None  # seconds; None: no pause
    manual: bool = False  # wait for a person


@dataclass(frozen=True)
class Routing:
    kind: str  # "replicas" | "gatewayAPI"
    parent_refs: tuple = ()
    hostnames: tuple = ()


@dataclass(frozen=True)
class Analysis:
    interval: float
    provider: str
    provider_address: str | None
    min_samples: int
    failure_limit: int
    inconclusive_limit: int
    on_inconclusive: str
    drift: dict
    slo: dict
    custom_checks: tuple
    read_interval: float = 5.0  # seconds between reads of the sequential drift evidence

    @property
    def psi_warn(self) -> float:
        return float((self.drift.get("psi") or {}).get("warn", 0.1))

    @property
    def psi_fail(self) -> float:
        return float((self.drift.get("psi") or {}).get("fail", 0.25))

    @property
    def watches_drift(self) -> bool:
        """Drift is read between analyses: a sequential alarm need not wait for the gate."""
        return bool(self.drift.get("enabled", True)) and self.read_interval < self.interval


@dataclass(frozen=True)
class Spec:
    raw: dict = field(repr=False, compare=False)
    model: dict
    replicas: int
    strategy: str
    routing: Routing
    steps: tuple[Step, ...]  # Canary steps, or Shadow's canary promotion steps
    scale_down_delay: float
    analysis: Analysis
    progress_deadline: float
    history_limit: int
    blue_green: dict
    shadow: dict
    ab_test: dict
    monitor: dict
    revision: str
    shadow_duration: float = 0.0  # seconds, Shadow only
    ab_deadline: float = 0.0  # seconds, ABTest only
    source: ModelSource | None = None  # s3:// or models:/, pinned before it is rolled out
    resolved: dict | None = None  # the pin (status.resolved) this Spec rolls out
    autoscaling: Autoscaling | None = None  # spec.autoscaling; spec.replicas is then the starting size
    hooks: tuple[Hook, ...] = ()
    notifications: tuple[Webhook, ...] = ()

    def pinned(self, resolved: dict) -> "Spec":
        """This spec with its remote model pinned: the revision names the pinned bytes."""
        model = {**self.model, "version": resolved["version"]}  # the semver the pinned metadata.json declares
        return dataclasses.replace(self, model=model, resolved=resolved,
                                   revision=pinned_revision(self.revision, resolved))

    @property
    def version(self) -> str:
        return self.model["version"]

    @property
    def image(self) -> str:
        return self.model["image"]


def revision_of(spec: dict) -> str:
    """Identity of what runs in the pods: the model, its resources and its monitor.
    Changing replicas, strategy or analysis does not start a new rollout."""
    keyed = {k: spec.get(k) for k in ("model", "resources", "monitor")}
    # How often an alias is looked at again is not what runs.
    keyed["model"] = {k: v for k, v in (keyed["model"] or {}).items() if k != "resolveInterval"}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:10]


def _duration(value, path: str) -> float:
    try:
        return validation.duration(value, path)
    except Invalid as err:
        raise SpecError(err.field, err.problem) from None


def check_metadata(meta: dict) -> None:
    """metadata.name, the stem of every child's name: SpecError unless every child name fits."""
    try:
        validation.check_name(meta.get("name"))
    except Invalid as err:
        raise SpecError(err.field, err.problem) from None


def _require(obj: dict, key: str, path: str):
    if not isinstance(obj, dict) or obj.get(key) in (None, ""):
        raise SpecError(f"{path}.{key}", "is required")
    return obj[key]


def _steps(raw_steps, path: str) -> tuple[Step, ...]:
    if not isinstance(raw_steps, list) or not raw_steps:
        raise SpecError(path, "needs at least one step")
    steps, previous = [], 0
    for i, raw in enumerate(raw_steps):
        weight = raw.get("weight") if isinstance(raw, dict) else None
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise SpecError(f"{path}[{i}].weight", "must be an integer from 0 to 100")
        if weight < previous:
            raise SpecError(f"{path}[{i}].weight", f"{weight} is below the previous step's {previous}; weights must not decrease")
        previous = weight
        pause = raw.get("pause")
        if pause == "Manual":
            steps.append(Step(weight, None, True))
        elif pause is None:
            steps.append(Step(weight))
        else:
            steps.append(Step(weight, _duration(pause, f"{path}[{i}].pause")))
    if steps[-1].weight == 0:
        raise SpecError(f"{path}[{len(steps) - 1}].weight", "the last step must send traffic to the candidate")
    return tuple(steps)


def parse(raw_spec: dict) -> Spec:
    """A typed, defaulted Spec; SpecError names the first field at fault."""
    if not isinstance(raw_spec, dict):
        raise SpecError("spec", "is required")
    spec = apply_defaults(spec_schema(), copy.deepcopy(raw_spec))
    model = _require(spec, "model", "spec")
    for key in ("name", "version", "image"):
        _require(model, key, "spec.model")
    source = _source(model)
    try:
        # What the children's APIs would refuse (the CRD's rules, mirrored).
        validation.spec(spec)
    except Invalid as err:
        raise SpecError(err.field, err.problem) from None
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise SpecError("spec.replicas", "must be an integer of at least 1")

    strategy = _require(spec, "strategy", "spec")
    kind = _require(strategy, "type", "spec.strategy")
    if kind not in STRATEGY_BLOCKS:
        raise SpecError("spec.strategy.type", f"{kind!r} is not one of {', '.join(STRATEGY_BLOCKS)}")
    for other_kind, block in STRATEGY_BLOCKS.items():
        if (other_kind == kind) != (block in strategy):
            which = "is required" if other_kind == kind else f"must not be set when spec.strategy.type is {kind}"
            raise SpecError(f"spec.strategy.{block}", which)

    routing_raw = strategy["trafficRouting"]
    if ("replicas" in routing_raw) == ("gatewayAPI" in routing_raw):
        raise SpecError("spec.strategy.trafficRouting", "exactly one of replicas and gatewayAPI must be set")
    if "gatewayAPI" in routing_raw:
        gw = routing_raw["gatewayAPI"] or {}
        if not gw.get("parentRefs"):
            raise SpecError("spec.strategy.trafficRouting.gatewayAPI.parentRefs", "needs at least one parent")
        routing = Routing("gatewayAPI", tuple(json.dumps(p, sort_keys=True) for p in gw["parentRefs"]),
                          tuple(gw.get("hostnames") or ()))
    else:
        routing = Routing("replicas")
    if kind in ("Shadow", "ABTest") and routing.kind != "gatewayAPI":
        raise SpecError("spec.strategy.trafficRouting.gatewayAPI", f"is required for {kind}")

    steps: tuple[Step, ...] = ()
    if kind == "Canary":
        steps = _steps((strategy["canary"] or {}).get("steps"), "spec.strategy.canary.steps")
    shadow = strategy.get("shadow") or {}
    shadow_duration = ab_deadline = 0.0
    if kind == "Shadow":
        shadow_duration = _duration(shadow["duration"], "spec.strategy.shadow.duration")
        if shadow.get("promotion") == "Canary":
            steps = _steps(shadow.get("steps"), "spec.strategy.shadow.steps")
    ab = strategy.get("abTest") or {}
    if kind == "ABTest":
        if ("split" in ab) == ("match" in ab):
            raise SpecError("spec.strategy.abTest", "exactly one of split and match must be set")
        ab_deadline = _duration(_require(ab, "decision", "spec.strategy.abTest")["maxDuration"],
                                "spec.strategy.abTest.decision.maxDuration")

    # Every default below was filled in from the CRD by apply_defaults.
    an = spec["analysis"]
    analysis = Analysis(
        interval=_duration(an["interval"], "spec.analysis.interval"),
        provider=an["provider"]["type"],
        provider_address=an["provider"].get("address"),
        min_samples=int(an["minSampleSize"]),
        failure_limit=int(an["failureLimit"]),
        inconclusive_limit=int(an["inconclusiveLimit"]),
        on_inconclusive=an["onInconclusive"],
        drift=an["drift"],
        slo=an["slo"],
        custom_checks=tuple(an.get("customChecks") or ()),
        read_interval=_duration(an["drift"].get("readInterval", "5s"), "spec.analysis.drift.readInterval"),
    )
    if analysis.interval < 1:
        raise SpecError("spec.analysis.interval", "must be at least 1s")
    if analysis.read_interval < 1:
        raise SpecError("spec.analysis.drift.readInterval", "must be at least 1s")
    slo_latency = analysis.slo.get("maxLatencyP99")
    if slo_latency is not None:
        _duration(slo_latency, "spec.analysis.slo.maxLatencyP99")
    if an.get("quality") is not None:
        _quality(an, kind)
    try:
        hooks = parse_hooks(spec.get("hooks"))
        notifications = parse_notifications(spec.get("notifications"))
    except (HookError, NotificationError) as err:
        raise SpecError(err.field, err.problem) from None

    return Spec(
        raw=spec,
        model=model,
        replicas=replicas,
        strategy=kind,
        routing=routing,
        steps=steps,
        scale_down_delay=_duration(strategy["scaleDownDelay"], "spec.strategy.scaleDownDelay"),
        analysis=analysis,
        progress_deadline=_duration(spec.get("progressDeadline"), "spec.progressDeadline"),
        history_limit=int(spec["revisionHistoryLimit"]),
        blue_green=strategy.get("blueGreen") or {},
        shadow=shadow,
        ab_test=ab,
        monitor=spec["monitor"],
        revision=revision_of(spec),
        shadow_duration=shadow_duration,
        ab_deadline=ab_deadline,
        source=source,
        autoscaling=_autoscaling(spec),
        hooks=hooks,
        notifications=notifications,
    )


def _quality(analysis: dict, strategy: str) -> None:
    """spec.analysis.quality: values the quality gate can use, under a strategy whose
    candidate answers clients (labels come back only for predictions clients saw)."""
    from .analysis.checks import SettingsError
    from .analysis.quality_gate import STRATEGIES, QualitySettings

    try:
        QualitySettings.from_analysis(analysis)
    except SettingsError as err:
        path, _, problem = str(err).partition(": ")
        raise SpecError(path, problem) from None
    if strategy not in STRATEGIES:
        raise SpecError("spec.analysis.quality", f"needs spec.strategy.type {' or '.join(STRATEGIES)}: under "
                        f"{strategy} the candidate's predictions do not reach clients, so no labels come back to it")


def _autoscaling(spec: dict) -> Autoscaling | None:
    """spec.autoscaling: a range and exactly one target; the CPU target needs a CPU
    request on the model container (utilisation is measured against it)."""
    raw = spec.get("autoscaling")
    if raw is None:
        return None
    path = "spec.autoscaling"
    if not isinstance(raw, dict):
        raise SpecError(path, "must be an object")

    def count(key: str, low: int) -> int:
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise SpecError(f"{path}.{key}", f"must be an integer of at least {low}")
        return value

    low = count("minReplicas", 1)
    high = count("maxReplicas", 1)
    if high < low:
        raise SpecError(f"{path}.maxReplicas", f"{high} is below minReplicas {low}")
    targets = [k for k in ("targetCPUUtilizationPercentage", "podsMetric") if raw.get(k) is not None]
    if len(targets) != 1:
        raise SpecError(path, "exactly one of targetCPUUtilizationPercentage and podsMetric must be set")
    if targets[0] == "targetCPUUtilizationPercentage":
        cpu = raw["targetCPUUtilizationPercentage"]
        if not isinstance(cpu, int) or isinstance(cpu, bool) or not 1 <= cpu <= 1000:
            raise SpecError(f"{path}.targetCPUUtilizationPercentage", "must be an integer from 1 to 1000")
        if not ((spec.get("resources") or {}).get("requests") or {}).get("cpu"):
            raise SpecError("spec.resources.requests.cpu", "is required with spec.autoscaling."
                            "targetCPUUtilizationPercentage: CPU utilisation is measured against this request")
        return Autoscaling(low, high, cpu_utilization=cpu)
    metric = raw["podsMetric"]
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or not metric["name"]:
        raise SpecError(f"{path}.podsMetric.name", "is required")
    if metric["name"] in (".", "..") or "/" in metric["name"] or "%" in metric["name"]:
        raise SpecError(f"{path}.podsMetric.name", "must be a path segment: not . or .., and without / or %")
    target = metric.get("targetAverageValue")
    amount = validation.quantity(target)
    if amount is None or amount <= 0:
        raise SpecError(f"{path}.podsMetric.targetAverageValue", "must be a quantity above 0, e.g. \"10\" or 500m")
    return Autoscaling(low, high, pods_metric=metric["name"], pods_target=str(target))


def _source(model: dict) -> ModelSource | None:
    interval = model.get("resolveInterval")
    seconds = _duration(interval, "spec.model.resolveInterval") if interval else None
    try:
        source = parse_source(model, seconds)
    except ValueError as err:
        raise SpecError("spec.model.uri", str(err)) from None
    if seconds is not None and not (source and source.uri.moving):
        raise SpecError("spec.model.resolveInterval", "needs a moving uri: an s3:// prefix or models:/NAME@ALIAS")
    if seconds is not None and seconds < 10:
        raise SpecError("spec.model.resolveInterval", "must be at least 10s")
    if model.get("credentialsSecretRef") and source is None:
        raise SpecError("spec.model.credentialsSecretRef", "is for s3:// and models:/ uris")
    if model.get("digest") and source is None:
        raise SpecError("spec.model.digest", "is for s3:// and models:/ uris")
    return source
