"""A release that fails some of its requests: a fitted model wrapped so that a share
of its calls raise (the model server answers those with 500). The model server loads
it from model.joblib like any scikit-learn model; it finds this class because the pod
runner starts the server from the repository root."""

from __future__ import annotations

import random
import shutil
from pathlib import Path


class Flaky:
    def __init__(self, model, rate: float, seed: int = 0):
        self.model, self.rate = model, rate
        self._rng = random.Random(seed)

    def _maybe_fail(self) -> None:
        if self._rng.random() < self.rate:
            raise RuntimeError("flaky model: simulated inference failure")

    def predict(self, x):
        self._maybe_fail()
        return self.model.predict(x)

    def predict_proba(self, x):
        self._maybe_fail()
        return self.model.predict_proba(x)


def flaky_model_dir(source: Path, target: Path, rate: float, delay: float = 0.0) -> Path:
    """A copy of an sklearn model directory whose model fails `rate` of its calls and,
    with `delay`, takes that many seconds over each."""
    import joblib

    shutil.copytree(source, target)
    model = joblib.load(source / "model.joblib")
    joblib.dump(Hanging(model, rate, delay) if delay else Flaky(model, rate), target / "model.joblib")
    return target


class Hanging(Flaky):
    """Takes `delay` seconds over every call, and fails a share `rate` of them."""

    def __init__(self, model, rate: float, delay: float, seed: int = 0):
        super().__init__(model, rate, seed)
        self.delay = delay

    def _maybe_fail(self) -> None:
        import time

        time.sleep(self.delay)
        super()._maybe_fail()

