"""Traffic routers: one file each, chosen by the strategy and spec.strategy.trafficRouting."""

from ..spec import Spec
from .base import Capacity, Traffic, TrafficRouter
from .gateway import GatewayAPIRouter
from .replicas import ReplicaRatioRouter
from .service_selector import ServiceSelectorRouter


def router_for(spec: Spec) -> TrafficRouter:
    if spec.strategy == "BlueGreen":
        return ServiceSelectorRouter()
    if spec.routing.kind == "gatewayAPI":
        return GatewayAPIRouter()
    return ReplicaRatioRouter()


__all__ = ["Capacity", "GatewayAPIRouter", "ReplicaRatioRouter", "ServiceSelectorRouter", "Traffic",
           "TrafficRouter", "router_for"]
