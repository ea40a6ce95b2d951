"""The pieces of a model pod that keep its monitor's windows and labels its own.

- The in-pod socket: an emptyDir mounted at /var/run/modelops in the model server
  and the monitor. The monitor takes the server's records (POST /observe) and the
  labels it relays only there; its TCP port serves what Prometheus and the operator
  read, so another pod cannot move the drift windows.
- The feedback key: prediction ids are signed (HMAC-SHA256) with a key of the
  ModelDeployment, and a monitor takes labels on its TCP port only for signed ids
  (services/modelops_services/feedback_routing.py). The key lives in a Secret
  `<name>-feedback-key` (key `key`) that the operator creates once with a random
  value (an existing one is left as it is) and owns, so it goes with the
  ModelDeployment. The Secret is mounted into both containers; the operator never
  reads it (its RBAC has `create` on Secrets and nothing else). One key for every
  revision, so any replica can route any label.
"""

from __future__ import annotations

import base64
import secrets

from .naming import common_labels, object_meta

SOCKET_VOLUME = "monitor-socket"
SOCKET_DIR = "/var/run/modelops"
SOCKET_PATH = f"{SOCKET_DIR}/monitor.sock"
KEY_VOLUME = "feedback-key"
KEY_DIR = "/var/run/secrets/modelops.io/feedback"
KEY_FIELD = "key"


def secret_name(md: str) -> str:
    return f"{md}-feedback-key"


def secret(meta: dict, model: dict) -> dict:
    """The Secret to create (once): 32 random bytes, hex-encoded."""
    value = secrets.token_hex(32).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": object_meta(meta, secret_name(meta["name"]), common_labels(meta["name"], model)),
        "data": {KEY_FIELD: base64.b64encode(value).decode()},
    }


def volumes(md: str) -> list[dict]:
    return [
        {"name": SOCKET_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        # 0440 with the pod's fsGroup: readable by the pod's containers only.
        {"name": KEY_VOLUME, "secret": {"secretName": secret_name(md), "defaultMode": 0o440,
                                        "items": [{"key": KEY_FIELD, "path": KEY_FIELD}]}},
    ]


def mounts() -> list[dict]:
    return [{"name": SOCKET_VOLUME, "mountPath": SOCKET_DIR},
            {"name": KEY_VOLUME, "mountPath": KEY_DIR, "readOnly": True}]


def env() -> list[dict]:
    return [{"name": "MODELOPS_MONITOR_SOCKET", "value": SOCKET_PATH},
            {"name": "MODELOPS_FEEDBACK_KEY_FILE", "value": f"{KEY_DIR}/{KEY_FIELD}"}]


def secrets_used(objects: list[dict]) -> set[str]:
    """The feedback key Secrets the pod templates among `objects` mount."""
    out = set()
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        for vol in obj["spec"]["template"]["spec"].get("volumes") or []:
            if vol.get("name") == KEY_VOLUME and "secret" in vol:
                out.add(vol["secret"]["secretName"])
    return out
