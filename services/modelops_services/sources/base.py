"""The interface every model source implements, and the registry of sources by URI
scheme. A new source (GCS, HTTP, ...) is one module with a Source and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from .credentials import Credentials
from .errors import Mismatch
from .manifest import MAX_METADATA_BYTES, files_of, parse_metadata, sha256_bytes
from .uri import ModelUri

# scheme -> module with `open_source(uri, creds) -> Source`
SOURCES = {"file": "local", "s3": "s3", "models": "mlflow"}


class Source(Protocol):
    """One model directory in a store, pinned: `uri` never moves while it is used."""

    uri: ModelUri

    def read(self, rel: str, max_bytes: int) -> bytes:
        """A file of the directory (metadata.json); NotFound when it is not there."""

    def download(self, rel: str, dest: Path, max_bytes: int | None = None) -> None:
        """A file of the directory, streamed to dest; NotFound when it is not there, and
        Mismatch once it exceeds max_bytes."""

    def details(self) -> dict:
        """What the store knows beyond metadata.json (a registry's version, run, metrics)."""


def open_source(uri: ModelUri, creds: Credentials) -> Source:
    """The source for a URI. An alias is pinned here, once: every later read of the
    returned source sees the same registry version."""
    module = importlib.import_module(f"{__package__}.{SOURCES[uri.scheme]}")
    return module.open_source(uri, creds)


def read_manifest(src: Source, digest: str | None) -> tuple[bytes, str, dict, dict]:
    """metadata.json of a source: its bytes, its digest (checked against `digest` when
    given), the metadata, and the files it lists (checked for shape)."""
    data = src.read("metadata.json", MAX_METADATA_BYTES)
    actual = sha256_bytes(data)
    if digest and actual != digest:
        raise Mismatch(f"metadata.json digest mismatch: want {digest}, {src.uri} has {actual}")
    meta = parse_metadata(data)
    return data, actual, meta, files_of(meta)
