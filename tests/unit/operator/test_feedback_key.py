"""The feedback key Secret and the in-pod socket: what the operator creates and mounts."""

import base64

from modelops_operator import feedback_key

META = {"name": "churn", "namespace": "ml", "uid": "u-1"}
MODEL = {"name": "churn", "version": "1.0.0"}


def test_the_secret_holds_a_random_key_and_belongs_to_the_modeldeployment():
    a, b = feedback_key.secret(META, MODEL), feedback_key.secret(META, MODEL)
    assert a["kind"] == "Secret" and a["metadata"]["name"] == "churn-feedback-key"
    assert a["metadata"]["namespace"] == "ml"
    assert a["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    key = base64.b64decode(a["data"]["key"])
    assert len(key) == 64 and key != base64.b64decode(b["data"]["key"])


def test_the_pod_templates_name_the_secrets_they_mount():
    pod = {"volumes": [{"name": "tmp", "emptyDir": {}}, *feedback_key.volumes("churn")]}
    deploy = {"kind": "Deployment", "spec": {"template": {"spec": pod}}}
    other = {"kind": "Deployment", "spec": {"template": {"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}}}
    service = {"kind": "Service", "spec": {}}
    assert feedback_key.secrets_used([deploy, other, service]) == {"churn-feedback-key"}
    assert feedback_key.secrets_used([other, service]) == set()
    env = {e["name"]: e["value"] for e in feedback_key.env()}
    mounts = {m["name"]: m["mountPath"] for m in feedback_key.mounts()}
    # The paths the containers are told are under the volumes they mount.
    assert env["MODELOPS_MONITOR_SOCKET"].startswith(mounts["monitor-socket"] + "/")
    assert env["MODELOPS_FEEDBACK_KEY_FILE"].startswith(mounts["feedback-key"] + "/")
