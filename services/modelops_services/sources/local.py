"""file:// model directories: a path in the image or a mounted volume."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .credentials import Credentials
from .errors import Mismatch, NotFound
from .uri import ModelUri


@dataclass
class LocalSource:
    uri: ModelUri

    def _path(self, rel: str) -> Path:
        path = Path(self.uri.path) / rel
        if not path.is_file():
            raise NotFound(f"{path} does not exist")
        return path

    def read(self, rel: str, max_bytes: int) -> bytes:
        with open(self._path(rel), "rb") as f:
            return f.read(max_bytes + 1)

    def download(self, rel: str, dest: Path, max_bytes: int | None = None) -> None:
        path = self._path(rel)
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise Mismatch(f"{rel} is larger than the {max_bytes} bytes metadata.json lists")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)

    def details(self) -> dict:
        return {}


def open_source(uri: ModelUri, creds: Credentials) -> LocalSource:
    return LocalSource(uri)
