"""Ground-truth labels reach the monitor that saw the prediction.

A label is matched by prediction id in the window of the monitor beside the model
server that made the prediction. Behind one Service with several replicas, a label
posted through the Service lands on any replica, where it would not match. So each
prediction id names its owner, the pod IP the operator gives the server
(MODELOPS_POD_IP), and POST /feedback on any replica sends every label on to its
owner's monitor (same port as its own).

The id is signed (HMAC-SHA256 with the ModelDeployment's feedback key: the file
MODELOPS_FEEDBACK_KEY_FILE, a Secret the operator creates with a random key and
mounts into the model server and the monitor, or MODELOPS_FEEDBACK_KEY), so a client
of the prediction API cannot make a server post to an address of its choosing, and a
monitor takes labels on its cluster port only for ids this ModelDeployment's servers
made. A label whose id is unsigned, badly signed or malformed is not routed: the
local monitor counts it as unverified (or malformed).

    request id: <32 hex>.<owner: packed IP as hex>.<32 hex: HMAC-SHA256(key, "<32 hex>.<owner>"), truncated>
    prediction id: <request id>-<row>

Without MODELOPS_POD_IP or a key (a server run by hand) ids are plain `<32 hex>` and
every label goes to the local monitor.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_HEX = 32  # 128 bits of the HMAC


def read_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The feedback key: the content of MODELOPS_FEEDBACK_KEY_FILE (a mounted Secret),
    else MODELOPS_FEEDBACK_KEY; None when neither is set. A named file that cannot be
    read is an error (OSError), not a silent "no key"."""
    env = os.environ if env is None else env
    path = env.get("MODELOPS_FEEDBACK_KEY_FILE", "").strip()
    if path:
        with open(path, "rb") as f:
            return f.read().strip() or None
    return env.get("MODELOPS_FEEDBACK_KEY", "").strip().encode() or None


def _signature(key: bytes, token: str, owner: str) -> str:
    return hmac.new(key, f"{token}.{owner}".encode(), hashlib.sha256).hexdigest()[:SIGNATURE_HEX]


def signed_owner(key: bytes | None, prediction_id: Any) -> str | None:
    """The IP of the server that made this prediction, if the id is signed with `key`;
    None for anything else (no key, unsigned, forged, malformed)."""
    if key is None or not isinstance(prediction_id, str) or len(prediction_id) > 200:
        return None
    parts = prediction_id.rsplit("-", 1)[0].split(".")
    if len(parts) != 3:
        return None
    token, owner, sig = parts
    if not hmac.compare_digest(sig.encode(), _signature(key, token, owner).encode()):
        return None
    try:
        return str(ipaddress.ip_address(bytes.fromhex(owner)))
    except ValueError:
        return None


@dataclass(frozen=True)
class Owner:
    """This server's identity in the ids it hands out."""

    ip: str | None = None
    key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Owner":
        env = os.environ if env is None else env
        ip, key = env.get("MODELOPS_POD_IP", "").strip(), read_key(env)
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return cls()
        return cls(ip, key) if key else cls()

    def new_request_id(self) -> str:
        token = uuid.uuid4().hex
        if self.ip is None or self.key is None:
            return token
        owner = ipaddress.ip_address(self.ip).packed.hex()
        return f"{token}.{owner}.{_signature(self.key, token, owner)}"

    def owner_of(self, prediction_id: Any) -> str | None:
        """The IP of the server that made this prediction, if the id says so
        verifiably; None for anything else (unsigned, forged, malformed)."""
        return signed_owner(self.key, prediction_id)

    def route(self, labels: Iterable[Any]) -> dict[str | None, list[Any]]:
        """Labels by the IP of the monitor to send them to; None is the local one."""
        out: dict[str | None, list[Any]] = {}
        for item in labels:
            owner = self.owner_of(item.get("id")) if isinstance(item, dict) else None
            out.setdefault(None if owner == self.ip else owner, []).append(item)
        return out


def monitor_url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}/feedback"

