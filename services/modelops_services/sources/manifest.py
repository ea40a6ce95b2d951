"""A model directory's manifest: metadata.json lists the sha256 and size of every other
file (`files`), so the sha256 of metadata.json alone pins the whole directory. That
digest is what status shows and what spec.model.digest names."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ..model_files import METADATA, MODEL_FILES
from .errors import InvalidModel, Mismatch, MissingFile

MAX_METADATA_BYTES = 4 << 20
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _safe(rel: str) -> str:
    """A listed path that stays inside the directory: no absolute paths, no '..'."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
        raise InvalidModel(f"metadata.json lists an unsafe path {rel!r}")
    return rel


def files_of(metadata: dict) -> dict[str, dict]:
    """{relative path: {"sha256", "size"}} of a model's metadata, checked for shape."""
    files = metadata.get("files")
    if not isinstance(files, dict) or not files:
        raise InvalidModel("metadata.json lists no file digests (`files`); publish the directory with "
                           "`modelops publish`, which adds them")
    out = {}
    for rel, entry in files.items():
        if not isinstance(entry, dict) or not DIGEST.match(str(entry.get("sha256", ""))) \
                or not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise InvalidModel(f"metadata.json: files[{rel!r}] wants sha256 'sha256:<64 hex>' and a size in bytes")
        out[_safe(rel)] = entry
    model_file = MODEL_FILES.get(str(metadata.get("framework")))
    if model_file and model_file not in out:
        # The one file that is unpickled or parsed must be covered by the digest.
        raise InvalidModel(f"metadata.json does not list the model file {model_file}")
    return out


def parse_metadata(data: bytes) -> dict:
    if len(data) > MAX_METADATA_BYTES:
        raise InvalidModel(f"metadata.json is {len(data)} bytes, over {MAX_METADATA_BYTES}")
    try:
        meta = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidModel(f"metadata.json is not JSON: {err}") from None
    if not isinstance(meta, dict):
        raise InvalidModel("metadata.json is not a JSON object")
    return meta


def check_semver(metadata: dict) -> str:
    version = str(metadata.get("version", ""))
    if not SEMVER.match(version):
        raise InvalidModel(f"metadata.json version {version!r} is not a semantic version such as 1.3.0")
    return version


def write_manifest(model_dir: Path) -> tuple[dict, str]:
    """Adds `files` (every file but metadata.json, recursively) to metadata.json and
    returns the metadata and its digest. Run again after any change."""
    model_dir = Path(model_dir)
    meta = parse_metadata((model_dir / METADATA).read_bytes())
    check_semver(meta)
    files = {}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        if rel == METADATA or any(part.startswith(".") for part in rel.split("/")):
            continue
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    meta["files"] = files
    files_of(meta)
    data = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    (model_dir / METADATA).write_bytes(data)
    return meta, sha256_bytes(data)


def verify_dir(model_dir: Path, digest: str | None = None) -> tuple[dict, str]:
    """Checks metadata.json against `digest` (when given) and every listed file against
    its own; returns the metadata and its digest. Nothing is loaded."""
    model_dir = Path(model_dir)
    try:
        data = (model_dir / METADATA).read_bytes()
    except FileNotFoundError:
        raise MissingFile(f"no {METADATA} in {model_dir}") from None
    actual = sha256_bytes(data)
    if digest and actual != digest:
        raise Mismatch(f"metadata.json digest mismatch: want {digest}, got {actual}")
    meta = parse_metadata(data)
    for rel, entry in files_of(meta).items():
        path = model_dir / rel
        if not path.is_file():
            raise MissingFile(f"{rel} is listed in metadata.json but missing")
        got = sha256_file(path)
        if got != entry["sha256"]:
            raise Mismatch(f"{rel} digest mismatch: want {entry['sha256']}, got {got}")
    return meta, actual
