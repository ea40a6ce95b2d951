"""The interface every model source implements, and the registry of sources by URI
scheme. A new source (GCS, HTTP, ...) is one module with a Source and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from .credentials import Credentials
from .uri import ModelUri

# scheme -> module with `open_source(uri, creds) -> Source`
SOURCES = {"file": "local", "s3": "s3", "models": "mlflow"}


class Source(Protocol):
    """One model directory in a store, pinned: `uri` never moves while it is used."""

    uri: ModelUri

    def read(self, rel: str, max_bytes: int) -> bytes:
        """A file of the directory (metadata.json); NotFound when it is not there."""

    def download(self, rel: str, dest: Path) -> None:
        """A file of the directory, streamed to dest; NotFound when it is not there."""

    def details(self) -> dict:
        """What the store knows beyond metadata.json (a registry's version, run, metrics)."""


def open_source(uri: ModelUri, creds: Credentials) -> Source:
    """The source for a URI. An alias is pinned here, once: every later read of the
    returned source sees the same registry version."""
    module = importlib.import_module(f"{__package__}.{SOURCES[uri.scheme]}")
    return module.open_source(uri, creds)
