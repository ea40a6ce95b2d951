"""modelops_services.sources.s3 against a real S3-compatible store (versitygw, tests/s3store.py):
round trips, prefix listing, and each failure mapped onto its sources.errors exception."""

import time
import uuid

import pytest

from modelops_services.sources.credentials import Credentials
from modelops_services.sources.errors import BadCredentials, NotFound, Unreachable, UntrustedCertificate
from modelops_services.sources.s3 import S3Client, S3Location
from ..s3store import free_port


def client(store, **overrides) -> S3Client:
    kwargs = {"endpoint": store.endpoint, "access_key": store.access_key, "secret_key": store.secret_key,
              "region": store.region, "ca_bundle": str(store.ca_bundle) if store.ca_bundle else None}
    kwargs.update(overrides)
    return S3Client(**kwargs)


@pytest.fixture
def bucket(versity):
    name = f"t-{uuid.uuid4().hex[:16]}"
    client(versity).ensure_bucket(name)
    return name


def test_put_list_download_round_trip(versity, bucket, tmp_path):
    s3 = client(versity)
    src = tmp_path / "model.pkl"
    src.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, several download chunks' worth
    s3.put(bucket, "churn/1.0.0/model.pkl", src)
    s3.put(bucket, "churn/1.0.0/metadata.json", b'{"name": "churn"}')
    s3.put(bucket, "churn/1.0.0/sub/dir/extra.txt", b"x")

    assert s3.list_objects(bucket, "churn/1.0.0/") == [
        ("metadata.json", 17), ("model.pkl", src.stat().st_size), ("sub/dir/extra.txt", 1)]

    dest = tmp_path / "out" / "deep" / "model.pkl"
    s3.download(bucket, "churn/1.0.0/model.pkl", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.pkl"]  # no .part left behind
    assert s3.get_bytes(bucket, "churn/1.0.0/metadata.json") == b'{"name": "churn"}'
    assert s3.get_bytes(bucket, "churn/1.0.0/metadata.json", max_bytes=5) == b'{"nam'
    s3.ensure_bucket(bucket)  # already there, and ours: fine


def test_prefix_is_used_exactly(versity, bucket):
    s3 = client(versity)
    for key in ("churn/1.0.0/a", "churn/1.0.0/b/c", "churn/1.0.0-old/a", "churn/1.0.00", "churn/2.0.0/a", "other"):
        s3.put(bucket, key, key.encode())
    assert s3.list_objects(bucket, "churn/1.0.0/") == [("a", 13), ("b/c", 15)]
    assert [k for k, _ in s3.list_objects(bucket, "churn/")] == [
        "1.0.0-old/a", "1.0.0/a", "1.0.0/b/c", "1.0.00", "2.0.0/a"]
    assert len(s3.list_objects(bucket, "")) == 6
    assert s3.list_objects(bucket, "nothing/") == []


def test_listing_many_keys(versity, bucket):
    s3 = client(versity)
    keys = [f"m/v1/part-{i:03d}.bin" for i in range(40)]
    for key in keys:
        s3.put(bucket, key, b"0123456789")
    assert s3.list_objects(bucket, "m/v1/") == [(k.removeprefix("m/v1/"), 10) for k in keys]


def test_from_credentials_reads_a_mounted_secret(versity_tls, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    for key, value in versity_tls.secret_data().items():
        (secret / key).write_text(value)
    creds = Credentials.load(secret, env={})
    assert creds.ca_bundle == str(secret / "ca.crt")
    s3 = S3Client.from_credentials(creds)
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.ensure_bucket(name)
    s3.put(name, "m/1/metadata.json", b"{}")
    assert s3.list_objects(name, "m/1/") == [("metadata.json", 2)]


def test_tls_with_the_ca_works(versity_tls, tmp_path):
    s3 = client(versity_tls)
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.ensure_bucket(name)
    s3.put(name, "k", b"secure")
    s3.download(name, "k", tmp_path / "k")
    assert (tmp_path / "k").read_bytes() == b"secure"


def test_tls_without_the_ca_is_untrusted(versity_tls):
    s3 = client(versity_tls, ca_bundle=None)  # the system's CAs: ours is not among them
    with pytest.raises(UntrustedCertificate) as e:
        s3.list_objects("models", "churn/1.0.0/")
    assert versity_tls.endpoint in str(e.value) and "'models'" in str(e.value)


def test_wrong_secret_is_bad_credentials(versity, bucket):
    wrong = "not-" + versity.secret_key
    s3 = client(versity, secret_key=wrong)
    with pytest.raises(BadCredentials) as e:
        s3.list_objects(bucket, "churn/")
    msg = str(e.value)
    assert versity.endpoint in msg and bucket in msg
    assert wrong not in msg and versity.secret_key not in msg
    with pytest.raises(BadCredentials):
        s3.get_bytes(bucket, "churn/1.0.0/metadata.json")


def test_unknown_access_key_is_bad_credentials(versity, bucket):
    with pytest.raises(BadCredentials):
        client(versity, access_key="nobody").list_objects(bucket, "")


def test_nothing_listening_is_unreachable_fast(versity):
    endpoint = f"http://127.0.0.1:{free_port()}"
    s3 = client(versity, endpoint=endpoint)
    start = time.monotonic()
    with pytest.raises(Unreachable) as e:
        s3.list_objects("models", "churn/")
    assert time.monotonic() - start < 5
    assert endpoint in str(e.value) and "'models'" in str(e.value)


def test_missing_key_and_bucket_are_not_found(versity, bucket, tmp_path):
    s3 = client(versity)
    with pytest.raises(NotFound) as e:
        s3.get_bytes(bucket, "churn/9.9.9/metadata.json")
    assert bucket in str(e.value) and "churn/9.9.9/metadata.json" in str(e.value)
    dest = tmp_path / "missing.bin"
    with pytest.raises(NotFound):
        s3.download(bucket, "churn/9.9.9/model.pkl", dest)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part
    with pytest.raises(NotFound):
        s3.list_objects(f"t-missing-{uuid.uuid4().hex[:8]}", "churn/")


def test_location_prefix_ends_with_a_slash():
    assert S3Location("models", "churn/1.0.0").prefix == "churn/1.0.0/"
    assert S3Location("models", "").prefix == ""
    assert str(S3Location("models", "churn/1.0.0/")) == "s3://models/churn/1.0.0/"
