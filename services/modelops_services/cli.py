"""The `modelops` command: data-plane tooling.

    modelops profile --model-dir DIR --data train.parquet [--out DIR/profile.json]
    modelops publish DIR --to s3://BUCKET/PREFIX/ | models:/NAME [--alias champion]
    modelops fetch --uri URI --cache DIR [--digest sha256:...] [--version SEMVER]
    modelops resolve --uri URI
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .sources.commands import add_commands


def _profile(args: argparse.Namespace) -> int:
    # Imported here: the fetch and resolve commands start pods and must start fast.
    from .model_dir import PROFILE, load_model_dir
    from .profiling import build_profile, read_table

    model = load_model_dir(args.model_dir)
    df = read_table(args.data)
    profile = build_profile(df, model, n_bins=args.bins, top_k=args.top_k)
    out = Path(args.out) if args.out else Path(args.model_dir) / PROFILE
    profile.save(str(out))
    print(f"{out}: {len(profile.features)} features, {profile.n_reference} rows, {profile.hash}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="modelops", description="modelops data-plane tools")
    sub = p.add_subparsers(dest="command", required=True)
    prof = sub.add_parser("profile", help="build a reference profile from training data and the model's predictions on it")
    prof.add_argument("--model-dir", required=True, help="model directory with metadata.json and the saved model")
    prof.add_argument("--data", required=True, help="training data, CSV or Parquet, with the schema's feature columns")
    prof.add_argument("--out", help="output path (default: MODEL_DIR/profile.json)")
    prof.add_argument("--bins", type=int, default=20, help="quantile bins per numeric feature")
    prof.add_argument("--top-k", type=int, default=20, help="categories kept per categorical feature")
    prof.set_defaults(func=_profile)
    add_commands(sub)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError) as exc:
        print(f"modelops {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
