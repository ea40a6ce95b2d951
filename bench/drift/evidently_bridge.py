"""Run Evidently jobs in its own venv and return the results (see evidently_runner.py)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import evidently_env
from .streams import frame

RUNNER = Path(__file__).with_name("evidently_runner.py")


class EvidentlyJobs:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="modelops-evidently-")
        self.dir = Path(self._dir.name)
        self.jobs: list[dict[str, Any]] = []

    def add(self, job_id: str, reference: dict, stream: dict, windows: list[tuple[int, int]],
            numeric: list[str], categorical: list[str], stop_on: str | None = None, ref_key: str | None = None) -> None:
        ref_path = self.dir / f"ref-{ref_key or job_id}.parquet"
        if not ref_path.exists():
            frame(reference).to_parquet(ref_path)
        stream_path = self.dir / f"stream-{len(self.jobs)}.parquet"
        frame(stream).to_parquet(stream_path)
        self.jobs.append({"id": job_id, "reference": str(ref_path), "stream": str(stream_path),
                          "windows": [list(w) for w in windows], "numeric": numeric,
                          "categorical": categorical, "stop_on": stop_on})

    def run(self) -> dict[str, list[dict[str, Any]]]:
        if not self.jobs:
            return {}
        jobs_path, out_path = self.dir / "jobs.json", self.dir / "out.json"
        jobs_path.write_text(json.dumps(self.jobs))
        subprocess.run([evidently_env.python(), str(RUNNER), str(jobs_path), str(out_path)], check=True)
        res = {r["id"]: r["results"] for r in json.loads(out_path.read_text())}
        self._dir.cleanup()
        return res
