"""Resolving a model URI to a fixed reference: an alias becomes a registry version and
the directory gets its digest (sha256 of metadata.json). The operator runs this in a
short-lived pod of the ModelDeployment's namespace that mounts its credentials (the
operator never reads Secrets) and reads the result from the pod's termination message."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .base import open_source, read_manifest
from .credentials import Credentials
from .manifest import check_semver
from .uri import ModelUri

TERMINATION_LIMIT = 4096  # bytes a kubelet keeps of a termination message


@dataclass
class Resolution:
    uri: str  # pinned: models:/NAME/VERSION, or the S3 prefix itself
    digest: str  # sha256 of metadata.json
    version: str  # the semver metadata.json declares
    registryVersion: str = ""  # noqa: N815 - the status field's name
    source: dict = field(default_factory=dict)  # run id, git commit, training time, dataset digest
    hyperparameters: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    truncated: bool = False

    def to_json(self, limit: int = TERMINATION_LIMIT) -> str:
        """Compact JSON within `limit` bytes: the largest hyperparameters and metrics go
        first when the whole does not fit (the pinned reference always does)."""
        out = asdict(self)
        text = json.dumps(out, separators=(",", ":"), sort_keys=True)
        while len(text.encode()) > limit:
            pools = [(k, p) for p in ("hyperparameters", "metrics") for k in out[p]]
            if not pools:
                out["source"] = {k: str(v)[:128] for k, v in out["source"].items()}
                text = json.dumps(out, separators=(",", ":"), sort_keys=True)[:limit]
                break
            key, pool = max(pools, key=lambda kp: len(json.dumps(out[kp[1]][kp[0]])) + len(kp[0]))
            del out[pool][key]
            out["truncated"] = True
            text = json.dumps(out, separators=(",", ":"), sort_keys=True)
        return text


def _number(v) -> float | str:
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def resolve(uri: ModelUri, creds: Credentials, digest: str | None = None) -> Resolution:
    """Pins `uri` and reads what status shows of it. Mismatch when `digest` is given and
    metadata.json is not it; InvalidModel when the directory has no manifest."""
    src = open_source(uri, creds)
    _, actual, meta, _ = read_manifest(src, digest)
    details = src.details()
    source = {k: v for k, v in {
        "runId": details.get("run_id"),
        "gitCommit": details.get("git_commit") or meta.get("code_version"),
        "trainedAt": details.get("trained_at") or meta.get("training_date"),
        "datasetDigest": details.get("dataset_digest") or meta.get("training_data_hash"),
    }.items() if v}
    params = details.get("params") or meta.get("hyperparameters") or {}
    metrics = details.get("metrics") or meta.get("metrics") or {}
    return Resolution(uri=str(src.uri), digest=actual, version=check_semver(meta),
                      registryVersion=src.uri.version if src.uri.scheme == "models" else "",
                      source=source, hyperparameters={str(k): str(v) for k, v in params.items()},
                      metrics={str(k): _number(v) for k, v in metrics.items()})
