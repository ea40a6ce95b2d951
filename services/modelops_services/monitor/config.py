"""Monitor settings, read from the environment once at start."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from ..drift import DriftConfig
from ..feedback_routing import read_key

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'90', '30s', '5m', '1h30m' -> seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    return sum(float(a) * _UNITS[b] for a, b in parts)


@dataclass(frozen=True)
class MonitorConfig:
    profile_path: str
    window_seconds: float = 300.0
    n_sub: int = 10
    host: str = "0.0.0.0"
    port: int = 9091
    labels: Mapping[str, str] = field(default_factory=dict)
    drift: DriftConfig = field(default_factory=DriftConfig)
    pending_max: int = 200_000
    max_body_bytes: int = 32 * 1024 * 1024
    # The in-pod listener (a Unix socket in a volume only the pod's containers share):
    # with it, POST /observe is served there only, and labels on the TCP port must
    # carry ids signed with the feedback key. None: everything on the TCP port (by hand).
    socket_path: str | None = None
    feedback_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "MonitorConfig":
        env = os.environ if env is None else env
        path = env.get("MODELOPS_PROFILE_PATH")
        if not path:
            raise ValueError("MODELOPS_PROFILE_PATH is required")
        return cls(
            profile_path=path,
            window_seconds=parse_duration(env.get("MODELOPS_WINDOW", "5m")),
            n_sub=int(env.get("MODELOPS_SUBWINDOWS", "10")),
            host=env.get("MODELOPS_MONITOR_HOST", "0.0.0.0"),
            port=int(env.get("MODELOPS_MONITOR_PORT", "9091")),
            labels={
                "modeldeployment": env.get("MODELOPS_MODELDEPLOYMENT", ""),
                "namespace": env.get("MODELOPS_NAMESPACE", ""),
                "track": env.get("MODELOPS_TRACK", ""),
                "revision": env.get("MODELOPS_REVISION", ""),
            },
            drift=DriftConfig(
                psi_warn=float(env.get("MODELOPS_PSI_WARN", "0.1")),
                psi_alarm=float(env.get("MODELOPS_PSI_ALARM", "0.25")),
                alpha=float(env.get("MODELOPS_ALPHA", "0.05")),
                correction=env.get("MODELOPS_CORRECTION", "holm"),
                decision_level=env.get("MODELOPS_DECISION_LEVEL", "warn"),
                min_samples=int(env.get("MODELOPS_MIN_SAMPLES", "30")),
                block_seconds=parse_duration(env.get("MODELOPS_EVIDENCE_BLOCK", "5s")),
                horizon_seconds=parse_duration(env.get("MODELOPS_EVIDENCE_HORIZON", "20m")),
            ),
            pending_max=int(env.get("MODELOPS_PENDING_MAX", "200000")),
            socket_path=env.get("MODELOPS_MONITOR_SOCKET", "").strip() or None,
            feedback_key=read_key(env),
        )
