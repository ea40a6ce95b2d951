"""Where the benchmarks write their results, and how: NAME.json (the numbers) and
NAME.md (the report, also printed)."""

from __future__ import annotations

import json
from pathlib import Path

DIR = Path(__file__).resolve().parent / "results"


def publish(out: str | Path, name: str, result: dict, md: str) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"{name}.md").write_text(md)
    print(md)
