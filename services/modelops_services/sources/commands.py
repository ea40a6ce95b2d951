"""The model-source commands of the `modelops` CLI: fetch (the pods' init container),
resolve (the operator's resolver pod) and publish (a training job's last step).

A failure is one line, `model fetch failed: <cause>: <detail>`, on stderr and in the
container's termination message, which the operator turns into a condition."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .credentials import Credentials
from .errors import SourceError
from .uri import parse, parse_target

TERMINATION_LOG = "/dev/termination-log"
EXIT_SOURCE = 3  # the store said no: retrying the same thing will not help by itself


def _terminate(path: str | None, text: str) -> None:
    """Writes the kubelet's termination message, when there is a place for it (the
    kubelet mounts the file; it is never created outside a container)."""
    path = path or os.environ.get("MODELOPS_TERMINATION_LOG") or (
        TERMINATION_LOG if os.path.isfile(TERMINATION_LOG) and os.access(TERMINATION_LOG, os.W_OK) else None)
    if path:
        try:
            Path(path).write_text(text)
        except OSError:
            pass


def _failed(what: str, err: SourceError, args) -> int:
    line = f"model {what} failed: {err}"
    print(line, file=sys.stderr, flush=True)
    payload = json.dumps({"error": {"reason": err.reason, "cause": err.cause, "message": line}}) \
        if what == "resolution" else line
    _terminate(args.termination_log, payload[:4096])
    return EXIT_SOURCE


def fetch_cmd(args: argparse.Namespace) -> int:
    from .fetch import fetch

    try:
        path = fetch(parse(args.uri), Credentials.load(args.credentials), Path(args.cache), args.digest,
                     args.version)
    except SourceError as err:
        return _failed("fetch", err, args)
    print(path)
    return 0


def resolve_cmd(args: argparse.Namespace) -> int:
    from .resolve import resolve

    try:
        result = resolve(parse(args.uri), Credentials.load(args.credentials), args.digest)
    except SourceError as err:
        return _failed("resolution", err, args)
    text = result.to_json()
    _terminate(args.termination_log, text)
    print(text)
    return 0


def publish_cmd(args: argparse.Namespace) -> int:
    from .publish import publish

    try:
        uri, digest = publish(Path(args.model_dir), parse_target(args.to), Credentials.load(args.credentials),
                              alias=args.alias, force=args.force)
    except SourceError as err:
        print(f"modelops publish: {err}", file=sys.stderr)
        return EXIT_SOURCE
    print(f"published {args.model_dir} to {uri} ({digest})")
    return 0


def add_commands(sub) -> None:
    creds = {"help": "directory of a mounted Secret (one file per key: AWS_ACCESS_KEY_ID, ..., "
                     "MLFLOW_TRACKING_URI, ca.crt); the environment's AWS_*/MLFLOW_* otherwise"}
    f = sub.add_parser("fetch", help="fetch a model directory into a cache and verify every file")
    f.add_argument("--uri", required=True, help="s3://BUCKET/PREFIX/, models:/NAME/VERSION or file:///PATH")
    f.add_argument("--digest", help="sha256:... of metadata.json; the fetch fails on any other")
    f.add_argument("--version", help="the semantic version metadata.json must declare")
    f.add_argument("--cache", required=True, help="cache directory; a verified entry is reused")
    f.add_argument("--credentials", **creds)
    f.add_argument("--termination-log", help=f"where the failure line goes (default {TERMINATION_LOG})")
    f.set_defaults(func=fetch_cmd)
    r = sub.add_parser("resolve", help="pin a model URI (alias -> version, directory -> digest) and print it as JSON")
    r.add_argument("--uri", required=True)
    r.add_argument("--digest", help="sha256:... metadata.json must have")
    r.add_argument("--credentials", **creds)
    r.add_argument("--termination-log", help=f"where the JSON result goes (default {TERMINATION_LOG})")
    r.set_defaults(func=resolve_cmd)
    p = sub.add_parser("publish", help="add file digests to metadata.json and publish the directory")
    p.add_argument("model_dir", help="a model directory (metadata.json, the model, profile.json)")
    p.add_argument("--to", required=True, help="s3://BUCKET/PREFIX/ or models:/NAME")
    p.add_argument("--alias", help="MLflow: point this alias at the new version")
    p.add_argument("--force", action="store_true", help="S3: overwrite a prefix that holds another model")
    p.add_argument("--credentials", **creds)
    p.set_defaults(func=publish_cmd)
