"""Manifests, fetching with verification, and resolution, on file:// directories (the
same code paths S3 and MLflow take once their bytes arrive: tests/integration covers
those stores for real)."""

import json
import shutil

import pytest

from modelops_services.sources.credentials import Credentials
from modelops_services.sources.errors import InvalidModel, Mismatch, MissingFile
from modelops_services.sources.fetch import fetch
from modelops_services.sources.manifest import verify_dir, write_manifest
from modelops_services.sources.resolve import Resolution, resolve
from modelops_services.sources.uri import parse


@pytest.fixture
def model(tmp_path):
    d = tmp_path / "src" / "churn"
    (d / "extra").mkdir(parents=True)
    (d / "metadata.json").write_text(json.dumps({
        "name": "churn", "version": "1.2.0", "framework": "sklearn", "task": "classification", "features": [],
        "hyperparameters": {"C": 0.5, "max_iter": 200}, "metrics": {"auc": 0.91},
        "training_date": "2026-01-01", "code_version": "sha256:abc", "training_data_hash": "sha256:def"}))
    (d / "model.joblib").write_bytes(b"not really a pickle")
    (d / "profile.json").write_text("{}")
    (d / "extra" / "notes.txt").write_text("hello")
    _, digest = write_manifest(d)
    return d, digest


def test_the_manifest_lists_every_file_and_the_digest_pins_it(model):
    d, digest = model
    meta = json.loads((d / "metadata.json").read_text())
    assert set(meta["files"]) == {"model.joblib", "profile.json", "extra/notes.txt"}
    assert verify_dir(d, digest)[1] == digest
    assert write_manifest(d)[1] == digest  # stable: publishing twice gives one digest


def test_fetch_verifies_and_the_cache_is_reused(model, tmp_path):
    d, digest = model
    cache = tmp_path / "cache"
    got = fetch(parse(f"file://{d}"), Credentials(), cache, digest, "1.2.0")
    assert (got / "model.joblib").read_bytes() == b"not really a pickle"
    assert (got / "extra" / "notes.txt").read_text() == "hello"
    shutil.rmtree(d)  # the source is gone: a restarted container still starts from the cache
    assert fetch(parse(f"file://{d}"), Credentials(), cache, digest, "1.2.0") == got


def test_a_tampered_file_is_refused_and_nothing_is_cached(model, tmp_path):
    d, digest = model
    (d / "model.joblib").write_bytes(b"not really a PICKLE")  # same size, other bytes
    cache = tmp_path / "cache"
    with pytest.raises(Mismatch, match="model.joblib digest mismatch"):
        fetch(parse(f"file://{d}"), Credentials(), cache, digest)
    assert not [p for p in cache.iterdir()]  # no entry, no staging left behind


def test_a_changed_manifest_is_refused_against_the_pinned_digest(model, tmp_path):
    d, digest = model
    meta = json.loads((d / "metadata.json").read_text())
    meta["files"]["model.joblib"]["sha256"] = "sha256:" + "0" * 64
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(Mismatch, match="metadata.json digest mismatch"):
        fetch(parse(f"file://{d}"), Credentials(), tmp_path / "cache", digest)


def test_a_missing_file_is_named(model, tmp_path):
    d, digest = model
    (d / "profile.json").unlink()
    with pytest.raises(MissingFile, match="profile.json"):
        fetch(parse(f"file://{d}"), Credentials(), tmp_path / "cache", digest)


def test_a_version_other_than_the_deployments_is_refused(model, tmp_path):
    d, digest = model
    with pytest.raises(Mismatch, match="1.2.0.*2.0.0"):
        fetch(parse(f"file://{d}"), Credentials(), tmp_path / "cache", digest, "2.0.0")


@pytest.mark.parametrize("files,match", [
    (None, "no file digests"),
    ({"../evil": {"sha256": "sha256:" + "0" * 64, "size": 1}}, "unsafe path"),
    ({"/etc/passwd": {"sha256": "sha256:" + "0" * 64, "size": 1}}, "unsafe path"),
    ({"profile.json": {"sha256": "sha256:" + "0" * 64, "size": 2}}, "does not list the model file model.joblib"),
    ({"model.joblib": {"sha256": "md5:00", "size": 2}}, "wants sha256"),
])
def test_a_manifest_that_does_not_cover_the_model_is_refused(model, tmp_path, files, match):
    d, _ = model
    meta = json.loads((d / "metadata.json").read_text())
    if files is None:
        meta.pop("files")
    else:
        meta["files"] = files
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidModel, match=match):
        fetch(parse(f"file://{d}"), Credentials(), tmp_path / "cache")
    assert not (tmp_path / "evil").exists()


def test_resolution_reads_what_status_shows(model):
    d, digest = model
    r = resolve(parse(f"file://{d}"), Credentials())
    assert (r.digest, r.version) == (digest, "1.2.0")
    assert r.hyperparameters == {"C": "0.5", "max_iter": "200"} and r.metrics == {"auc": 0.91}
    assert r.source == {"gitCommit": "sha256:abc", "trainedAt": "2026-01-01", "datasetDigest": "sha256:def"}
    with pytest.raises(Mismatch):
        resolve(parse(f"file://{d}"), Credentials(), digest="sha256:" + "1" * 64)


def test_a_resolution_fits_a_termination_message():
    r = Resolution(uri="models:/churn/3", digest="sha256:" + "a" * 64, version="1.0.0", registryVersion="3",
                   hyperparameters={f"p{i}": "x" * 50 for i in range(200)}, metrics={"auc": 0.9})
    text = r.to_json()
    out = json.loads(text)
    assert len(text.encode()) <= 4096 and out["truncated"]
    assert out["uri"] == "models:/churn/3" and out["metrics"] == {"auc": 0.9}  # the small ones stay
