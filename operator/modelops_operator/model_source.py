"""Remote model sources (s3://, models:/): pinning before a rollout, and the pod pieces
that fetch and verify in the model pods. Pure: builders and parsers, no I/O.

The operator never reads the credentials Secret. A moving reference is resolved by a
short-lived resolver pod in the ModelDeployment's namespace that mounts it and runs
`modelops resolve`; the result comes back as the pod's termination message. The
planner records it in status (status.resolved) and rolls out the pinned reference:
the model pods' init container fetches exactly that (`modelops fetch --digest`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from modelops_services.sources.uri import ModelUri
from modelops_services.sources.uri import parse as parse_uri

from .naming import object_meta
from .security import POD_SECURITY, RESTRICTED

CREDENTIALS_DIR = "/var/run/modelops/credentials"
CACHE_DIR = "/var/cache/modelops/models"
FETCH_CONTAINER = "fetch-model"
RESOLVER_LABEL = "modelops.io/resolver"  # on resolver pods: the key of what they resolve
# On every pod that reads a remote source (model pods fetching, resolver pods): the
# operator watches only these pods, never the many others.
SOURCE_LABEL = "modelops.io/model-source"
RESOLVER_DEADLINE = 120  # seconds a resolver pod may run


@dataclass(frozen=True)
class ModelSource:
    uri: ModelUri
    digest: str | None
    secret: str | None
    resolve_interval: float | None  # seconds; None: pinned once per spec change
    version: str = ""  # spec.model.version, which the pinned metadata.json must match

    @property
    def key(self) -> str:
        """What a resolution depends on: when this changes, an earlier one is void."""
        text = json.dumps([str(self.uri), self.digest, self.secret, self.version], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_source(model: dict, interval_seconds) -> ModelSource | None:
    """The model's remote source, or None for file:// and image-baked models.
    ValueError names the problem; the caller names the field."""
    uri = model.get("uri")
    if not uri:
        return None
    parsed = parse_uri(uri)
    if not parsed.remote:
        return None
    secret = (model.get("credentialsSecretRef") or {}).get("name")
    return ModelSource(parsed, model.get("digest"), secret, interval_seconds, str(model.get("version", "")))


def pinned_revision(revision: str, resolved: dict) -> str:
    """The revision of a spec as pinned: the same spec is a new revision when its alias
    moved or its prefix was overwritten."""
    text = f"{revision}|{resolved['uri']}|{resolved['digest']}"
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def model_summary(resolved: dict) -> dict:
    """What status.stable/candidate and the history keep of a pinned model."""
    keys = ("uri", "registryVersion", "digest", "source", "hyperparameters", "metrics")
    return {k: resolved[k] for k in keys if resolved.get(k)}


# --- the resolver pod --------------------------------------------------------------
def resolver_name(md: str, source: ModelSource, attempt: int) -> str:
    h = hashlib.sha256(f"{source.key}|{attempt}".encode()).hexdigest()[:8]
    return f"{md[:40]}-resolve-{h}"


def _credentials(source: ModelSource) -> tuple[list[dict], list[dict], list[str]]:
    """The Secret's volume and mount, and the command's flag naming it."""
    if not source.secret:
        return [], [], []
    volume = {"name": "credentials", "secret": {"secretName": source.secret, "defaultMode": 0o440}}
    mount = {"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True}
    return [volume], [mount], ["--credentials", CREDENTIALS_DIR]


def resolver_pod(meta: dict, image: str, source: ModelSource, name: str, labels: dict) -> dict:
    volumes, mounts, flag = _credentials(source)
    cmd = ["modelops", "resolve", "--uri", str(source.uri), *flag]
    if source.digest:
        cmd += ["--digest", source.digest]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": object_meta(meta, name, {**labels, RESOLVER_LABEL: source.key,
                                             SOURCE_LABEL: source.uri.scheme}),
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": RESOLVER_DEADLINE,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": POD_SECURITY,
            "containers": [{
                "name": "resolve",
                "image": image,
                "command": cmd,
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": RESTRICTED,
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    }


@dataclass(frozen=True)
class ResolverResult:
    name: str
    ok: bool
    result: dict | None  # the Resolution, when ok
    reason: str  # condition reason when not ok
    message: str


def resolver_result(pod: dict) -> ResolverResult | None:
    """The outcome of a finished resolver pod (a dict as the API returns it), or None
    while it runs."""
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    phase = status.get("phase")
    term = next(((cs.get("state") or {}).get("terminated") for cs in status.get("containerStatuses") or []
                 if (cs.get("state") or {}).get("terminated")), None)
    if phase not in ("Succeeded", "Failed") and term is None:
        return None
    message = (term or {}).get("message") or status.get("message") or ""
    try:
        data = json.loads(message.strip().splitlines()[-1]) if message.strip() else {}
    except (json.JSONDecodeError, IndexError):
        data = {}
    if phase == "Succeeded" or (term and term.get("exitCode") == 0):
        if isinstance(data, dict) and data.get("uri") and data.get("digest") and data.get("version"):
            return ResolverResult(name, True, data, "Resolved", "")
        return ResolverResult(name, False, None, "ResolverFailed", f"the resolver printed no result: {message[:300]}")
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return ResolverResult(name, False, None, str(err.get("reason") or "ModelSourceError"), str(err.get("message")))
    why = status.get("reason") or (term or {}).get("reason") or "Error"
    tail = message.strip().splitlines()[-1][:300] if message.strip() else ""
    return ResolverResult(name, False, None, "ResolverFailed", f"model resolution failed: resolver pod {why}"
                          + (f": {tail}" if tail else ""))


# --- the model pods -----------------------------------------------------------------
def model_dir(resolved: dict) -> str:
    return f"{CACHE_DIR}/{resolved['digest'].removeprefix('sha256:')}"


def fetch_pieces(source: ModelSource, resolved: dict, version: str, image: str) -> tuple[dict, list[dict], list[dict]]:
    """The init container that fetches and verifies the pinned model into the cache
    volume, the pod volumes, and the read-only mount of the cache for the containers."""
    volumes, mounts, flag = _credentials(source)
    init = {
        "name": FETCH_CONTAINER,
        "image": image,
        "command": ["modelops", "fetch", "--uri", resolved["uri"], "--digest", resolved["digest"],
                    "--version", version, "--cache", CACHE_DIR, *flag],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "model-cache", "mountPath": CACHE_DIR}, *mounts],
    }
    volumes = [{"name": "model-cache", "emptyDir": {"sizeLimit": "4Gi"}}, *volumes]
    read = [{"name": "model-cache", "mountPath": CACHE_DIR, "readOnly": True}]
    return init, volumes, read


def fetch_error(pod: dict) -> str | None:
    """Why a model pod's fetch failed (its init container's last termination), or None."""
    for cs in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if cs.get("name") != FETCH_CONTAINER:
            continue
        done = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
        if done == 0:
            return None  # it fetched after all: an earlier failure (lastState) is history
        for state in (cs.get("state") or {}, cs.get("lastState") or {}):
            term = state.get("terminated")
            if term and term.get("exitCode") not in (0, None):
                lines = (term.get("message") or "").strip().splitlines()
                line = next((ln for ln in reversed(lines) if "model fetch failed" in ln), lines[-1] if lines else "")
                return line[:500] or f"model fetch failed: exit code {term.get('exitCode')}"
    return None
