"""Publishing a trained model directory: digests into metadata.json, then the files to
an S3 prefix (metadata.json last, so no reader sees a manifest before its files) or to
an MLflow run whose artifacts back a new registered model version."""

from __future__ import annotations

from pathlib import Path

from .credentials import Credentials
from .errors import InvalidModel, NotFound
from .manifest import MAX_METADATA_BYTES, sha256_bytes, write_manifest
from .uri import ModelUri


def publish(model_dir: Path, to: ModelUri, creds: Credentials, alias: str | None = None,
            force: bool = False) -> tuple[str, str]:
    """Publishes `model_dir`; returns the pinned URI and the digest of metadata.json."""
    meta, digest = write_manifest(model_dir)
    if to.scheme == "s3":
        if alias:
            raise InvalidModel("--alias is for MLflow registries (models:/NAME)")
        return _to_s3(model_dir, to, creds, meta, digest, force), digest
    if to.scheme == "models":
        if to.version or to.alias:
            raise InvalidModel(f"{to}: publish to models:/NAME (the registry numbers the version; --alias sets "
                               "an alias)")
        from .mlflow import MlflowClient

        tags = {k: str(v) for k, v in {"mlflow.source.git.commit": meta.get("code_version"),
                                       "modelops.training_date": meta.get("training_date"),
                                       "modelops.training_data_hash": meta.get("training_data_hash"),
                                       "modelops.digest": digest}.items() if v}
        mv = MlflowClient.from_credentials(creds).publish(
            Path(model_dir), to.name, str(meta["version"]), params=meta.get("hyperparameters") or {},
            metrics=meta.get("metrics") or {}, tags=tags, alias=alias)
        return f"models:/{mv.name}/{mv.version}", digest
    raise InvalidModel(f"publish to s3:// or models:/, not {to}")


def _to_s3(model_dir: Path, to: ModelUri, creds: Credentials, meta: dict, digest: str, force: bool) -> str:
    from .s3 import S3Client

    client = S3Client.from_credentials(creds)
    client.ensure_bucket(to.bucket)
    try:
        existing = client.get_bytes(to.bucket, to.prefix + "metadata.json", MAX_METADATA_BYTES)
    except NotFound:
        existing = None
    if existing is not None and sha256_bytes(existing) != digest and not force:
        # A published version is immutable: a rollout pinned to it must not change under it.
        raise InvalidModel(f"{to} already holds another model ({sha256_bytes(existing)}); publish to a new "
                           "prefix, or --force")
    for rel in sorted(meta["files"]):
        client.put(to.bucket, to.prefix + rel, Path(model_dir) / rel)
    client.put(to.bucket, to.prefix + "metadata.json", Path(model_dir) / "metadata.json")
    return str(to)
