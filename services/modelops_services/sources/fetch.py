"""Fetching a pinned model directory into the pod's cache and verifying it, before the
model server loads anything: metadata.json against the pinned digest, then every file
it lists against its own. Files land in a staging directory and become the cache entry
only once all of them check, so a cache entry is always a verified one, and a
restarted container (or pod, with a persistent cache) reuses it without a fetch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .base import open_source, read_manifest
from .credentials import Credentials
from .errors import Mismatch, MissingFile, NotFound
from .manifest import sha256_file
from .uri import ModelUri

VERIFIED = ".verified"  # written last into a cache entry: its digest


def cache_entry(cache: Path, digest: str) -> Path:
    return Path(cache) / digest.removeprefix("sha256:")


def cached(cache: Path, digest: str | None) -> Path | None:
    if not digest:
        return None
    entry = cache_entry(cache, digest)
    marker = entry / VERIFIED
    return entry if marker.is_file() and marker.read_text().strip() == digest else None


def fetch(uri: ModelUri, creds: Credentials, cache: Path, digest: str | None = None,
          version: str | None = None) -> Path:
    """The verified model directory of `uri` under `cache`. `digest` pins metadata.json;
    `version` is the semver metadata.json must declare. Raises a SourceError."""
    if (hit := cached(cache, digest)) is not None:
        return hit
    src = open_source(uri, creds)
    data, actual, meta, files = read_manifest(src, digest)
    if version and str(meta.get("version")) != version:
        raise Mismatch(f"metadata.json declares version {meta.get('version')!r}, the deployment wants {version}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    entry = cache_entry(cache, actual)
    if (hit := cached(cache, actual)) is not None:
        return hit
    staging = cache / f".staging-{actual.removeprefix('sha256:')[:16]}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        (staging / "metadata.json").write_bytes(data)
        for rel, want in files.items():
            dest = staging / rel
            try:
                src.download(rel, dest, want["size"])
            except NotFound:
                raise MissingFile(f"{rel} is listed in metadata.json but {src.uri} does not hold it") from None
            size = dest.stat().st_size
            if size != want["size"]:
                raise Mismatch(f"{rel} digest mismatch: want {want['size']} bytes, got {size}")
            got = sha256_file(dest)
            if got != want["sha256"]:
                raise Mismatch(f"{rel} digest mismatch: want {want['sha256']}, got {got}")
        (staging / VERIFIED).write_text(actual + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        staging.rename(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry
