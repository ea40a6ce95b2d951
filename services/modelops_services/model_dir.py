"""A model directory: the saved model, metadata.json and profile.json.

metadata.json carries what a person or the operator needs to know about the
model (name, semantic version, training date, training-data hash, code version,
hyperparameters, training metrics, feature schema) and how to load it
(framework: "sklearn" -> model.joblib, "xgboost" -> model.ubj).
The directory may be mounted (MODELOPS_MODEL_DIR) or be a BentoML model store
entry (MODELOPS_MODEL_TAG), which holds the same files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .model_files import METADATA, MODEL_FILES, PROFILE, REQUIRED  # noqa: F401 - also imported from here
from .schema import FeatureSchema


def resolve_model_dir(env: dict[str, str] | None = None) -> Path:
    """The model directory to load. With MODELOPS_MODEL_DIGEST (a pinned remote model)
    every file is checked against it first, so nothing unverified is ever unpickled; a
    remote MODELOPS_MODEL_URI without a directory is fetched here (outside Kubernetes,
    where no init container ran)."""
    env = dict(os.environ if env is None else env)
    digest = env.get("MODELOPS_MODEL_DIGEST") or None
    if env.get("MODELOPS_MODEL_DIR"):
        path = Path(env["MODELOPS_MODEL_DIR"])
        if digest:
            from .sources.manifest import verify_dir

            verify_dir(path, digest)
        return path
    uri = env.get("MODELOPS_MODEL_URI", "")
    if uri and not uri.startswith("file://"):
        from .sources.credentials import Credentials
        from .sources.fetch import fetch
        from .sources.uri import parse

        cache = Path(env.get("MODELOPS_MODEL_CACHE") or "/tmp/modelops-models")
        return fetch(parse(uri), Credentials.load(env.get("MODELOPS_CREDENTIALS_DIR"), env), cache, digest,
                     env.get("MODELOPS_MODEL_VERSION"))
    if env.get("MODELOPS_MODEL_TAG"):
        import bentoml

        return Path(bentoml.models.get(env["MODELOPS_MODEL_TAG"]).path)
    raise ValueError("set MODELOPS_MODEL_DIR (a model directory), MODELOPS_MODEL_URI (s3:// or models:/) or "
                     "MODELOPS_MODEL_TAG (a BentoML model tag)")


@dataclass
class LoadedModel:
    metadata: dict[str, Any]
    schema: FeatureSchema
    model: Any
    path: Path

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def classes(self) -> list[Any]:
        return list(self.metadata.get("classes", []))

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """The framework's input frame: XGBoost's native categorical support
        needs the training categories in the training order; a category it
        never saw is treated as missing."""
        if self.metadata["framework"] != "xgboost":
            return df
        out = df.copy()
        for f in self.schema.features:
            if f.type == "category":
                cats = list(f.categories)
                known = out[f.name].where(out[f.name].isin(cats))
                out[f.name] = pd.Categorical(known, categories=cats)
        return out

    def predict(self, df: pd.DataFrame) -> tuple[list[Any], list[float] | None]:
        """Predictions, and for binary classifiers the positive-class score."""
        x = self.prepare(df)
        if self.task == "regression":
            return [float(v) for v in np.asarray(self.model.predict(x), dtype=float)], None
        proba = np.asarray(self.model.predict_proba(x), dtype=float)
        classes = self.classes or list(range(proba.shape[1]))
        labels = [classes[i] for i in proba.argmax(axis=1)]
        scores = [float(s) for s in proba[:, -1]] if proba.shape[1] == 2 else None
        return [_plain(v) for v in labels], scores


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def load_model_dir(path: str | Path) -> LoadedModel:
    path = Path(path)
    meta = json.loads((path / METADATA).read_text())
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"{path / METADATA}: missing {', '.join(missing)}")
    framework = meta["framework"]
    if framework == "sklearn":
        import joblib

        model = joblib.load(path / MODEL_FILES["sklearn"])
    elif framework == "xgboost":
        import xgboost

        cls = xgboost.XGBRegressor if meta["task"] == "regression" else xgboost.XGBClassifier
        model = cls()
        model.load_model(str(path / MODEL_FILES["xgboost"]))
    else:
        raise ValueError(f"unknown framework {framework!r}; want sklearn or xgboost")
    return LoadedModel(metadata=meta, schema=FeatureSchema.from_list(meta["features"]), model=model, path=path)


def public_metadata(m: LoadedModel) -> dict[str, Any]:
    """What GET /metadata answers."""
    keys = ("name", "version", "training_date", "training_data_hash", "code_version",
            "hyperparameters", "metrics", "framework", "task", "classes", "positive_class")
    out = {k: m.metadata.get(k) for k in keys if k in m.metadata}
    out["features"] = m.schema.to_list()
    prof = m.path / PROFILE
    if prof.exists():
        out["profile_hash"] = json.loads(prof.read_text()).get("hash")
    return out
