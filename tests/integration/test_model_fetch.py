"""Publishing to a real S3-compatible store (versitygw) and fetching back with
verification: the paths a model pod's init container and the resolver pod take."""

import json
import subprocess
import sys
import uuid

import pytest

from modelops_services.sources.credentials import Credentials
from modelops_services.sources.errors import BadCredentials, Mismatch, MissingFile, UntrustedCertificate
from modelops_services.sources.fetch import fetch
from modelops_services.sources.publish import publish
from modelops_services.sources.resolve import resolve
from modelops_services.sources.s3 import S3Client
from modelops_services.sources.uri import parse


def creds_of(store, ca=True, **override) -> Credentials:
    env = {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key,
           "AWS_DEFAULT_REGION": store.region, "AWS_ENDPOINT_URL": store.endpoint, **override}
    return Credentials(env, str(store.ca_bundle) if (ca and store.ca_bundle) else None)


def model_dir(root, version="1.0.0", payload=b"weights"):
    d = root / f"churn-{version}-{uuid.uuid4().hex[:6]}"
    d.mkdir(parents=True)
    (d / "metadata.json").write_text(json.dumps({
        "name": "churn", "version": version, "framework": "sklearn", "task": "classification", "features": [],
        "hyperparameters": {"C": 1.0}, "metrics": {"auc": 0.9}}))
    (d / "model.joblib").write_bytes(payload)
    (d / "profile.json").write_text("{}")
    return d


@pytest.fixture
def bucket():
    return f"m-{uuid.uuid4().hex[:12]}"


def test_publish_then_fetch_verified(versity, bucket, tmp_path):
    creds = creds_of(versity)
    uri = parse(f"s3://{bucket}/churn/1.0.0/")
    pinned, digest = publish(model_dir(tmp_path), uri, creds)
    # A sibling prefix with the same start is never read as part of it.
    publish(model_dir(tmp_path, payload=b"old"), parse(f"s3://{bucket}/churn/1.0.0-old/"), creds)
    r = resolve(uri, creds)
    assert (r.uri, r.digest, r.version, r.metrics) == (pinned, digest, "1.0.0", {"auc": 0.9})
    got = fetch(uri, creds, tmp_path / "cache", digest, "1.0.0")
    assert (got / "model.joblib").read_bytes() == b"weights"
    assert sorted(p.name for p in got.iterdir()) == [".verified", "metadata.json", "model.joblib", "profile.json"]


def test_a_published_prefix_is_not_overwritten_by_another_model(versity, bucket, tmp_path):
    creds = creds_of(versity)
    uri = parse(f"s3://{bucket}/churn/1.0.0/")
    publish(model_dir(tmp_path), uri, creds)
    with pytest.raises(Exception, match="already holds another model"):
        publish(model_dir(tmp_path, payload=b"other"), uri, creds)


def test_a_tampered_object_is_refused_and_never_cached(versity, bucket, tmp_path):
    creds = creds_of(versity)
    uri = parse(f"s3://{bucket}/churn/1.0.0/")
    _, digest = publish(model_dir(tmp_path), uri, creds)
    S3Client.from_credentials(creds).put(bucket, "churn/1.0.0/model.joblib", b"weightz")
    with pytest.raises(Mismatch, match="model.joblib digest mismatch"):
        fetch(uri, creds, tmp_path / "cache", digest)
    assert not list((tmp_path / "cache").iterdir())


def test_an_object_larger_than_listed_is_cut_off(versity, bucket, tmp_path):
    creds = creds_of(versity)
    uri = parse(f"s3://{bucket}/churn/1.0.0/")
    _, digest = publish(model_dir(tmp_path), uri, creds)
    S3Client.from_credentials(creds).put(bucket, "churn/1.0.0/model.joblib", b"w" * (4 << 20))
    with pytest.raises(Mismatch, match="model.joblib is larger than the 7 bytes"):
        fetch(uri, creds, tmp_path / "cache", digest)
    assert not list((tmp_path / "cache").iterdir())


def test_a_missing_object_is_named(versity, bucket, tmp_path):
    creds = creds_of(versity)
    d = model_dir(tmp_path)
    uri = parse(f"s3://{bucket}/churn/1.0.0/")
    _, digest = publish(d, uri, creds)
    s3 = S3Client.from_credentials(creds)
    s3._s3.delete_object(Bucket=bucket, Key="churn/1.0.0/profile.json")
    with pytest.raises(MissingFile, match="profile.json"):
        fetch(uri, creds, tmp_path / "cache", digest)


def test_bad_credentials_and_an_untrusted_store_are_told_apart(versity, versity_tls, bucket, tmp_path):
    publish(model_dir(tmp_path), parse(f"s3://{bucket}/churn/1.0.0/"), creds_of(versity))
    with pytest.raises(BadCredentials):
        resolve(parse(f"s3://{bucket}/churn/1.0.0/"), creds_of(versity, AWS_SECRET_ACCESS_KEY="wrong"))
    publish(model_dir(tmp_path), parse(f"s3://{bucket}/churn/1.0.0/"), creds_of(versity_tls))
    assert resolve(parse(f"s3://{bucket}/churn/1.0.0/"), creds_of(versity_tls)).version == "1.0.0"
    with pytest.raises(UntrustedCertificate):
        resolve(parse(f"s3://{bucket}/churn/1.0.0/"), creds_of(versity_tls, ca=False))


def test_the_fetch_command_says_the_cause_in_one_line(versity, bucket, tmp_path):
    """What a pod's init container prints and leaves as its termination message."""
    secret = tmp_path / "secret"
    secret.mkdir()
    for k, v in {"AWS_ACCESS_KEY_ID": versity.access_key, "AWS_SECRET_ACCESS_KEY": "wrong",
                 "AWS_DEFAULT_REGION": versity.region, "AWS_ENDPOINT_URL": versity.endpoint}.items():
        (secret / k).write_text(v)
    log = tmp_path / "termination-log"
    out = subprocess.run([sys.executable, "-m", "modelops_services.cli", "fetch", "--uri", f"s3://{bucket}/x/",
                          "--cache", str(tmp_path / "cache"), "--credentials", str(secret),
                          "--termination-log", str(log)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 3
    assert out.stderr.strip().splitlines()[-1].startswith("model fetch failed: bad credentials:")
    assert log.read_text().startswith("model fetch failed: bad credentials:")
    assert "wrong" not in out.stderr
