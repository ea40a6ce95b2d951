"""Operator-wide settings, from the environment the chart sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

MODEL_PORT = 3000  # BentoML's default HTTP port
PROFILE_DIR = "/etc/modelops/profile"


@dataclass(frozen=True)
class OperatorConfig:
    monitor_image: str = "modelops/monitor:0.1.0"
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    # How often an idle, finished ModelDeployment is looked at again (drift of children).
    resync_seconds: float = 60.0
    # How the Direct provider reaches the monitor sidecars: "direct" (pod IPs, the
    # operator runs in the cluster) or "proxy" (the API server's pods/proxy).
    monitor_access: str = "direct"

    @classmethod
    def from_env(cls, env=os.environ) -> "OperatorConfig":
        return cls(
            monitor_image=env.get("MODELOPS_MONITOR_IMAGE", cls.monitor_image),
            prometheus_url=env.get("MODELOPS_PROMETHEUS_URL", cls.prometheus_url),
            resync_seconds=float(env.get("MODELOPS_RESYNC_SECONDS", cls.resync_seconds)),
            monitor_access=_choice(env, "MODELOPS_MONITOR_ACCESS", cls.monitor_access, ("direct", "proxy")),
        )


def _choice(env, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, default)
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: must be one of {', '.join(allowed)}")
    return value
