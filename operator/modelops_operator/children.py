"""Pure builders of the model Deployments and the profile ConfigMap."""

from __future__ import annotations

from . import feedback_key
from .config import MODEL_PORT, PROFILE_DIR, OperatorConfig
from .model_source import SOURCE_LABEL, fetch_pieces, model_dir
from .naming import child_labels, deployment_name, object_meta, pod_selector, profile_configmap_name
from .security import POD_SECURITY, RESTRICTED
from .spec import Spec

MONITOR_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


def _monitor_container(spec: Spec, config: OperatorConfig, meta: dict) -> dict:
    mon = spec.monitor
    profile = mon.get("referenceProfile") or {}
    env = [
        {"name": "MODELOPS_WINDOW", "value": mon["window"]},
        {"name": "MODELOPS_MONITOR_HOST", "value": "0.0.0.0"},
        {"name": "MODELOPS_MONITOR_PORT", "value": str(mon["port"])},
        {"name": "MODELOPS_MODELDEPLOYMENT", "value": meta["name"]},
        {"name": "MODELOPS_NAMESPACE", "value": meta["namespace"]},
        # No track here: it changes at promotion, and the pod template must not (that
        # would restart every pod of the promoted revision). The revision is their identity.
        {"name": "MODELOPS_REVISION", "value": spec.revision},
        # The bands the sequential evidence is measured against (the significance and
        # the correction stay with the operator, and apply at the next read).
        {"name": "MODELOPS_PSI_WARN", "value": f"{spec.analysis.psi_warn:g}"},
        {"name": "MODELOPS_PSI_ALARM", "value": f"{spec.analysis.psi_fail:g}"},
    ]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    if profile:
        env.append({"name": "MODELOPS_PROFILE_PATH", "value": f"{PROFILE_DIR}/profile.json"})
        mounts.append({"name": "profile", "mountPath": PROFILE_DIR, "readOnly": True})
    return {
        "name": "monitor",
        "image": mon.get("image") or config.monitor_image,
        "env": env,
        "ports": [{"name": "monitor", "containerPort": int(mon["port"])}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "monitor"}, "periodSeconds": 5},
        "resources": mon.get("resources") or MONITOR_RESOURCES,
        "securityContext": RESTRICTED,
        "volumeMounts": mounts,
    }


def _profile_volume(spec: Spec, meta: dict) -> tuple[dict | None, dict | None]:
    """The volume holding profile.json and, for a path in the model image, the init
    container that copies it there (the monitor cannot see the model's filesystem)."""
    profile = spec.monitor.get("referenceProfile") or {}
    if "configMapRef" in profile:
        ref = profile["configMapRef"]
        items = [{"key": ref.get("key", "profile.json"), "path": "profile.json"}]
        return {"name": "profile", "configMap": {"name": ref["name"], "items": items}}, None
    if "inline" in profile:
        return {"name": "profile", "configMap": {"name": profile_configmap_name(meta["name"], spec.revision)}}, None
    if "path" in profile:
        init = {
            "name": "profile",
            "image": spec.image,
            "command": ["cp", profile["path"], f"{PROFILE_DIR}/profile.json"],
            "securityContext": RESTRICTED,
            "volumeMounts": [{"name": "profile", "mountPath": PROFILE_DIR}],
        }
        return {"name": "profile", "emptyDir": {"sizeLimit": "16Mi"}}, init
    return None, None


def model_deployment(meta: dict, spec: Spec, config: OperatorConfig, track: str, replicas: int) -> dict:
    """The Deployment of one revision. Its pods carry the revision (their identity),
    never the track, which changes at promotion without restarting them."""
    name = meta["name"]
    labels = child_labels(name, spec.model, track, spec.revision)
    selector = pod_selector(name, spec.revision)
    pod_labels = {k: v for k, v in labels.items() if k != "modelops.io/track"}
    env = [
        {"name": "MODELOPS_MODEL_NAME", "value": spec.model["name"]},
        {"name": "MODELOPS_MODEL_VERSION", "value": spec.version},
        # Names the variant cookie of A/B sessions this server answers (sticky.py).
        {"name": "MODELOPS_REVISION", "value": spec.revision},
        {"name": "BENTOML_HOME", "value": "/tmp/bentoml"},
    ]
    uri = spec.model.get("uri")
    fetched = None
    if spec.source and spec.resolved:
        # Every replica fetches the pinned reference, verified against its digest.
        fetched = fetch_pieces(spec.source, spec.resolved, spec.version, spec.image)
        pod_labels[SOURCE_LABEL] = spec.source.uri.scheme
        env.append({"name": "MODELOPS_MODEL_URI", "value": spec.resolved["uri"]})
        env.append({"name": "MODELOPS_MODEL_DIGEST", "value": spec.resolved["digest"]})
        env.append({"name": "MODELOPS_MODEL_DIR", "value": model_dir(spec.resolved)})
    elif uri:
        env.append({"name": "MODELOPS_MODEL_URI", "value": uri})
        if uri.startswith("file://"):
            # The model server loads a mounted or baked-in model directory.
            env.append({"name": "MODELOPS_MODEL_DIR", "value": uri[len("file://"):]})
    if spec.monitor["enabled"]:
        env.append({"name": "MODELOPS_MONITOR_URL", "value": f"http://127.0.0.1:{spec.monitor['port']}"})
        # Prediction ids name their pod, signed with the ModelDeployment's key, so that a
        # label posted to any replica reaches the monitor that saw the prediction
        # (services/.../feedback_routing.py); records go through the in-pod socket.
        env.append({"name": "MODELOPS_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        env.extend(feedback_key.env())
    model = {
        "name": "model",
        "image": spec.image,
        "env": env,
        "ports": [{"name": "http", "containerPort": MODEL_PORT}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10, "failureThreshold": 6},
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if spec.raw.get("resources"):
        model["resources"] = spec.raw["resources"]
    containers = [model]
    volumes = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    pod: dict = {
        "automountServiceAccountToken": False,
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": volumes,
    }
    inits = []
    if fetched:
        init, fetch_volumes, read_mounts = fetched
        inits.append(init)
        volumes.extend(fetch_volumes)
        model["volumeMounts"].extend(read_mounts)
    if spec.monitor["enabled"]:
        monitor = _monitor_container(spec, config, meta)
        containers.append(monitor)
        # The socket the two share, and the key both sign and verify with (feedback_key.py).
        volumes.extend(feedback_key.volumes(name))
        for container in (model, monitor):
            container["volumeMounts"].extend(feedback_key.mounts())
        monitor["env"].extend(feedback_key.env())
        volume, init = _profile_volume(spec, meta)
        if volume:
            volumes.append(volume)
        if init:
            inits.append(init)
        elif fetched and not spec.monitor.get("referenceProfile"):
            # The reference profile published with the model, from the verified cache.
            monitor["env"].append({"name": "MODELOPS_PROFILE_PATH", "value": f"{model_dir(spec.resolved)}/profile.json"})
            monitor["volumeMounts"].extend(fetched[2])
    if inits:
        pod["initContainers"] = inits
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(meta, deployment_name(name, spec.revision), labels,
                                {"modelops.io/model-version": spec.version}),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": selector},
            # Capacity never drops during a rollout of the Deployment itself.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def profile_configmap(meta: dict, spec: Spec, track: str) -> dict | None:
    inline = (spec.monitor.get("referenceProfile") or {}).get("inline")
    if inline is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(meta, profile_configmap_name(meta["name"], spec.revision),
                                child_labels(meta["name"], spec.model, track, spec.revision)),
        "data": {"profile.json": inline},
    }
