"""Models from where ML teams keep them, end to end on the local cluster: a real
S3-compatible store (versitygw, over TLS with a self-signed CA) and a real MLflow
registry. The operator pins each reference with a resolver pod that mounts the
ModelDeployment's Secret; every model pod's init container (`modelops fetch`) fetches
the pinned directory and verifies each file before the model server loads it."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest

from modelops_services.sources.credentials import Credentials
from modelops_services.sources.publish import publish
from modelops_services.sources.s3 import S3Client
from modelops_services.sources.uri import parse, parse_target

from ...kube import wait_for
from .conftest import release, remote
from .test_rollouts import wait_promoted

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def secret(stack, name: str, data: dict) -> None:
    stack.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
                 "stringData": data})


def cond(st: dict, ctype: str) -> dict:
    return next((c for c in st.get("conditions", []) if c["type"] == ctype), {})


def resolver_pods(stack) -> list[str]:
    return stack.cluster.kubectl("get", "pods", "-n", stack.namespace, "-l", "modelops.io/resolver", "-o",
                                 "jsonpath={.items[*].metadata.name}").stdout.split()


@pytest.fixture
def store(versity_tls, tmp_path):
    """A bucket of this test's own on the TLS store, and the Secret that reaches it."""
    bucket = f"models-{uuid.uuid4().hex[:10]}"
    return versity_tls, bucket, Credentials.load(env=versity_tls.credentials_env())


def test_a_canary_from_one_s3_prefix_to_the_next_is_promoted(stack, models, store, tmp_path):
    versity, bucket, creds = store
    secret(stack, "store", versity.secret_data())
    uri1, uri2 = f"s3://{bucket}/churn/1.0.0/", f"s3://{bucket}/churn/2.0.0/"
    _, d1 = publish(release(models, tmp_path / "releases", "churn-sklearn-v1", "1.0.0"), parse(uri1), creds)
    _, d2 = publish(release(models, tmp_path / "releases", "churn-xgboost-v1", "2.0.0"), parse(uri2), creds)
    stack.apply(remote(models, "1.0.0", uri1, "store"))
    st = stack.wait_phase("Succeeded", "1.0.0")
    assert st["stable"]["model"]["digest"] == d1 and st["stable"]["model"]["uri"] == uri1
    stack.wait_serving(st["stable"]["revision"], 1)
    traffic = stack.traffic(rate=20, rows=2)
    stack.apply(remote(models, "2.0.0", uri2, "store"))
    st, _ = wait_promoted(stack)
    assert st["stable"]["model"]["digest"] == d2 and st["history"][0]["model"]["uri"] == uri2
    assert cond(st, "ModelResolved")["status"] == "True"
    pod = next(p for p in stack.runner.running() if p.labels.get("modelops.io/revision") == st["stable"]["revision"])
    # What the pod serves is what was published: the model server's own metadata.
    with urllib.request.urlopen(f"{pod.model_url}/model/metadata", timeout=5) as resp:
        assert json.loads(resp.read())["version"] == "2.0.0"
    assert not [r for r in traffic.requests if r[3] != 200]
    wait_for(lambda: not resolver_pods(stack), 30, message="resolver pods gone once recorded")


def test_a_tampered_model_file_is_refused_and_the_rollout_stops_with_the_cause(stack, models, store, tmp_path):
    versity, bucket, creds = store
    secret(stack, "store", versity.secret_data())
    uri1, uri2 = f"s3://{bucket}/churn/1.0.0/", f"s3://{bucket}/churn/2.0.0/"
    publish(release(models, tmp_path / "releases", "churn-sklearn-v1", "1.0.0"), parse(uri1), creds)
    publish(release(models, tmp_path / "releases", "churn-sklearn-v1", "2.0.0"), parse(uri2), creds)
    stack.apply(remote(models, "1.0.0", uri1, "store"))
    stable = stack.wait_phase("Succeeded", "1.0.0")["stable"]["revision"]
    # Someone swaps the pickle behind the published manifest.
    S3Client.from_credentials(creds).put(bucket, "churn/2.0.0/model.joblib", b"cos(x) and a malicious pickle")
    started = time.time()
    stack.apply(remote(models, "2.0.0", uri2, "store"))
    st = stack.wait_phase("RolledBack", timeout=120)
    took = time.time() - started
    assert st["history"][0]["reason"] == "ModelFetchFailed"
    degraded = cond(st, "Degraded")
    assert "model fetch failed: digest mismatch: model.joblib digest mismatch" in degraded["message"], degraded
    assert took < 90, "stopped by the cause, not by the 3m progress deadline"
    assert st["stable"]["revision"] == stable


def test_bad_credentials_and_an_untrusted_store_are_conditions_not_crash_loops(stack, models, store, tmp_path):
    versity, bucket, creds = store
    secret(stack, "store", versity.secret_data())
    secret(stack, "wrong-key", {**versity.secret_data(), "AWS_SECRET_ACCESS_KEY": "not-the-key"})
    secret(stack, "no-ca", versity.secret_data(ca=False))
    uri1, uri2 = f"s3://{bucket}/churn/1.0.0/", f"s3://{bucket}/churn/2.0.0/"
    publish(release(models, tmp_path / "releases", "churn-sklearn-v1", "1.0.0"), parse(uri1), creds)
    publish(release(models, tmp_path / "releases", "churn-xgboost-v1", "2.0.0"), parse(uri2), creds)
    stack.apply(remote(models, "1.0.0", uri1, "store"))
    stable = stack.wait_phase("Succeeded", "1.0.0")["stable"]["revision"]

    for name, reason, words in (("wrong-key", "ModelCredentialsRejected", "bad credentials"),
                                ("no-ca", "ModelStoreCertificateUntrusted", "untrusted certificate")):
        stack.apply(remote(models, "2.0.0", uri2, name))
        st = wait_for(lambda: (s := stack.status()) and cond(s, "ModelResolved").get("reason") == reason and s, 90,
                      message=f"ModelResolved {reason}")
        assert words in cond(st, "ModelResolved")["message"] and "not-the-key" not in json.dumps(st)
        time.sleep(20)
        st = stack.status()
        # Nothing started: no candidate, the stable serves; resolver pods back off.
        assert not st.get("candidate") and st["stable"]["revision"] == stable
        assert st["resolution"]["failures"] <= 3, st["resolution"]  # 15 s, 30 s, ... apart
        assert len(resolver_pods(stack)) <= 1


def test_a_registry_alias_that_moves_starts_a_rollout_with_both_versions_in_status(stack, models, mlflow_server,
                                                                                     tmp_path):
    creds = Credentials.load(env=mlflow_server.env())
    secret(stack, "registry", mlflow_server.env())
    name = f"churn-{uuid.uuid4().hex[:8]}"
    target = parse_target(f"models:/{name}")
    publish(release(models, tmp_path / "releases", "churn-sklearn-v1", "1.0.0"), target, creds, alias="champion")
    stack.apply(remote(models, "1.0.0", f"models:/{name}@champion", "registry", resolveInterval="10s"))
    st = stack.wait_phase("Succeeded", "1.0.0")
    assert st["stable"]["model"]["uri"] == f"models:/{name}/1" and st["stable"]["model"]["registryVersion"] == "1"
    assert st["stable"]["model"]["metrics"]
    stack.wait_serving(st["stable"]["revision"], 1)
    traffic = stack.traffic(rate=20, rows=2)
    # A registry promotion, no spec change: 1.0.0 retrained (another model) takes the alias.
    publish(release(models, tmp_path / "releases", "churn-xgboost-v1", "1.0.0"), target, creds, alias="champion")
    st = wait_for(lambda: (s := stack.status()).get("candidate") and s, 60, message="the alias' move noticed")
    assert st["candidate"]["model"]["registryVersion"] == "2" and st["stable"]["model"]["registryVersion"] == "1"
    assert st["candidate"]["model"]["metrics"] and st["stable"]["model"]["metrics"]
    assert st["candidate"]["model"]["digest"] != st["stable"]["model"]["digest"]
    st, _ = wait_promoted(stack, "1.0.0")
    assert st["stable"]["model"]["uri"] == f"models:/{name}/2"
    assert st["history"][0]["model"]["registryVersion"] == "2"
    assert not [r for r in traffic.requests if r[3] != 200]
