"""What the operator saw of a ModelDeployment's children, as the planner's input."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model_source import ResolverResult
from .routers.gateway_readiness import GatewayState, RouteState


@dataclass(frozen=True)
class RevisionState:
    replicas: int  # spec.replicas of its Deployment
    ready: int
    fetch_error: str | None = None  # why a pod's model fetch failed (its init container's message)


@dataclass(frozen=True)
class Rejection:
    """The API server refused a child the plan wanted (422 Invalid): the spec of this
    generation cannot be realised, and applying it again would be refused again."""
    generation: int | None
    kind: str
    name: str
    message: str  # the API server's, which names the child's field
    fields: tuple[str, ...] = ()  # the child's fields its status details name


@dataclass(frozen=True)
class Observed:
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    # Names of its HorizontalPodAutoscalers that exist (keyword only: the fields above are given by position).
    autoscalers: frozenset[str] = field(default=frozenset(), kw_only=True)
    route: RouteState | None = None  # the HTTPRoute as the gateways reported on it
    gateways: tuple[GatewayState, ...] | None = None  # its parent Gateways; None: not read
    resolvers: dict[str, ResolverResult] = field(default_factory=dict)  # finished resolver pods by name
    hook_results: dict[str, tuple[str, str]] = field(default_factory=dict)  # hook run id -> (phase, message)
    rejected: Rejection | None = field(default=None, kw_only=True)  # a child the API server refused
    # Every child the status as recorded asks for has been applied (a pass since the status
    # last changed applied them all): what status.weights says is what the Services do.
    in_effect: bool = field(default=True, kw_only=True)

    def ready(self, revision: str | None) -> int:
        state = self.revisions.get(revision) if revision else None
        return state.ready if state else 0

    def replicas(self, revision: str | None) -> int:
        state = self.revisions.get(revision) if revision else None
        return state.replicas if state else 0
