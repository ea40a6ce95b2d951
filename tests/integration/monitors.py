"""Real drift-monitor processes (`python -m modelops_services.monitor`) for the analysis
tests, a reference profile to run them with, and model-server-shaped records to feed them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from modelops_services.drift import PREDICTION, PREDICTION_LABEL, fit_profile

CONTRACTS = ["monthly", "one-year", "two-year"]


def make_profile(path: Path, rows: int = 5000, seed: int = 1) -> Path:
    """Three input features (two numbers, one category) and the prediction."""
    rng = np.random.default_rng(seed)
    tenure = rng.normal(30, 10, rows)
    charges = rng.normal(70, 20, rows)
    contract = rng.choice(CONTRACTS, rows, p=[0.5, 0.3, 0.2])
    score = rng.beta(2, 5, rows)
    profile = fit_profile({"tenure": tenure, "charges": charges, "contract": contract},
                          kinds={"tenure": "numeric", "charges": "numeric", "contract": "categorical"},
                          prediction={PREDICTION: score, PREDICTION_LABEL: [str(int(s > 0.5)) for s in score]},
                          info={"model": "churn", "version": "1.0.0", "task": "classification", "positive_class": 1})
    path.write_text(profile.to_json())
    return path


def records(n: int, seed: int, drifted: bool = False, latency_ms: float = 5.0, status: int = 200) -> list[dict]:
    """n one-row requests like the model server forwards them; `drifted` records carry
    charges in cents and higher scores (the release a rollout should stop)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        charges = float(rng.normal(70, 20)) * (100 if drifted else 1)
        score = float(min(0.999, rng.beta(2, 5) + (0.4 if drifted else 0.0)))
        row = {"tenure": float(rng.normal(30, 10)), "charges": charges,
               "contract": str(rng.choice(CONTRACTS, p=[0.5, 0.3, 0.2]))}
        out.append({"id": f"{seed}-{i}", "status": status, "latency_ms": latency_ms, "features": [row],
                    "predictions": [int(score > 0.5)], "scores": [score], "ids": [f"{seed}-{i}-0"]})
    return out


class Monitor:
    """One monitor process with the labels the operator gives it (MODELOPS_* env)."""

    def __init__(self, profile: Path, workdir: Path, host: str, port: int, namespace: str, name: str,
                 track: str, revision: str):
        self.url = f"http://{host}:{port}"
        self.log_path = workdir / f"monitor-{host}-{port}.log"
        env = {**os.environ, "MODELOPS_PROFILE_PATH": str(profile), "MODELOPS_WINDOW": "10m",
               "MODELOPS_MONITOR_HOST": host, "MODELOPS_MONITOR_PORT": str(port),
               "MODELOPS_MODELDEPLOYMENT": name, "MODELOPS_NAMESPACE": namespace,
               "MODELOPS_TRACK": track, "MODELOPS_REVISION": revision}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "modelops_services.monitor"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> "Monitor":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"monitor exited {self.proc.returncode}:\n{self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            time.sleep(0.2)
        raise TimeoutError(f"{self.url} not ready:\n{self.log_path.read_text()[-2000:]}")

    def post(self, batch: list[dict]) -> None:
        for i in range(0, len(batch), 500):
            req = urllib.request.Request(self.url + "/observe", data=json.dumps({"records": batch[i:i + 500]}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 200

    def drift(self) -> dict:
        with urllib.request.urlopen(self.url + "/drift", timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
