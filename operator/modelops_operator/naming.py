"""Names and labels of the objects the operator owns, derived from the ModelDeployment."""

from __future__ import annotations

import re

from . import GROUP, KIND, MANAGER, VERSION

LABEL_MD = "modelops.io/modeldeployment"
LABEL_TRACK = "modelops.io/track"
LABEL_REVISION = "modelops.io/revision"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED = {LABEL_MANAGED_BY: MANAGER}

STABLE, CANDIDATE = "stable", "candidate"
SERVICE_ROLES = ("stable", "canary", "preview")
# Every Service name (NAME, NAME-ROLE) must be a DNS-1035 label of at most 63 characters:
# the longest role suffix bounds the ModelDeployment's name (the CRD's root rule says so too).
# Deployments (NAME-REVISION), HPAs, ConfigMaps, the HTTPRoute and Secrets are DNS subdomains.
MAX_NAME_LENGTH = 63 - max(len(f"-{role}") for role in SERVICE_ROLES)


def label_value(text: str) -> str:
    """A valid label value (semver build metadata has '+', labels do not allow it)."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63]
    return value.strip("_.-")


def deployment_name(md: str, revision: str) -> str:
    return f"{md}-{revision}"


def service_name(md: str, role: str | None = None) -> str:
    """`md` is the entry Service; md-stable, md-canary and md-preview select one track."""
    return md if role is None else f"{md}-{role}"


def profile_configmap_name(md: str, revision: str) -> str:
    return f"{md}-{revision}-profile"


def common_labels(md: str, model: dict) -> dict:
    return {
        "app.kubernetes.io/name": label_value(model["name"]),
        "app.kubernetes.io/instance": md,
        "app.kubernetes.io/part-of": "modelops",
        "app.kubernetes.io/component": "model-server",
        LABEL_MANAGED_BY: MANAGER,
        LABEL_MD: md,
    }


def child_labels(md: str, model: dict, track: str, revision: str | None) -> dict:
    labels = {**common_labels(md, model), LABEL_TRACK: track, "app.kubernetes.io/version": label_value(model["version"])}
    if revision:
        labels[LABEL_REVISION] = revision
    return labels


def pod_selector(md: str, revision: str | None = None) -> dict:
    return {LABEL_MD: md, LABEL_REVISION: revision} if revision else {LABEL_MD: md}


def owner_reference(meta: dict) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(meta: dict, name: str, labels: dict, annotations: dict | None = None) -> dict:
    out = {"name": name, "namespace": meta["namespace"], "labels": labels, "ownerReferences": [owner_reference(meta)]}
    if annotations:
        out["annotations"] = annotations
    return out
