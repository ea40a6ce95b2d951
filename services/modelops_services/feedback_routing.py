"""Ground-truth labels reach the monitor that saw the prediction.

A label is matched by prediction id in the window of the monitor beside the model
server that made the prediction. Behind one Service with several replicas, a label
posted through the Service lands on any replica, where it would not match. So each
prediction id names its owner, the pod IP the operator gives the server
(MODELOPS_POD_IP), and POST /feedback on any replica sends every label on to its
owner's monitor (same port as its own).

The owner is signed (HMAC-SHA256 with MODELOPS_FEEDBACK_KEY, which the operator
derives per ModelDeployment), so a client of the prediction API cannot make a server
post to an address of its choosing: a label whose id is unsigned, badly signed or
malformed goes to the local monitor, which counts it as unmatched or malformed.

    request id: <32 hex>.<owner: packed IP as hex>.<16 hex signature>
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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEX = 16


@dataclass(frozen=True)
class Owner:
    """This server's identity in the ids it hands out."""

    ip: str | None = None
    key: bytes | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Owner":
        env = os.environ if env is None else env
        ip, key = env.get("MODELOPS_POD_IP", "").strip(), env.get("MODELOPS_FEEDBACK_KEY", "").strip()
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return cls()
        return cls(ip, key.encode()) if key else cls()

    def _sign(self, token: str, owner: str) -> str:
        assert self.key is not None
        return hmac.new(self.key, f"{token}.{owner}".encode(), hashlib.sha256).hexdigest()[:SIGNATURE_HEX]

    def new_request_id(self) -> str:
        token = uuid.uuid4().hex
        if self.ip is None:
            return token
        owner = ipaddress.ip_address(self.ip).packed.hex()
        return f"{token}.{owner}.{self._sign(token, owner)}"

    def owner_of(self, prediction_id: Any) -> str | None:
        """The IP of the server that made this prediction, if the id says so
        verifiably; None for anything else (unsigned, forged, malformed)."""
        if self.key is None or not isinstance(prediction_id, str):
            return None
        parts = prediction_id.rsplit("-", 1)[0].split(".")
        if len(parts) != 3:
            return None
        token, owner, sig = parts
        if not hmac.compare_digest(sig, self._sign(token, owner)):
            return None
        try:
            return str(ipaddress.ip_address(bytes.fromhex(owner)))
        except ValueError:
            return None

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

