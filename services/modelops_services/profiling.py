"""Build a model's reference profile from its training data and its predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .drift import PREDICTION, PREDICTION_LABEL, Profile, fit_profile
from .model_dir import LoadedModel


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".gz"):
        return pd.read_csv(path)
    raise ValueError(f"{path}: want a .csv or .parquet file")


def build_profile(df: pd.DataFrame, model: LoadedModel, n_bins: int = 20, top_k: int = 20) -> Profile:
    """Profile of the schema's features in df, plus the model's predictions on df
    (the positive-class score as a number and the label as a category for
    binary classifiers; the value for regressors)."""
    schema = model.schema
    absent = [n for n in schema.names if n not in df.columns]
    if absent:
        raise ValueError(f"training data lacks feature(s): {', '.join(absent)}")
    cols: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for f in schema.features:
        kinds[f.name] = "numeric" if f.type in ("number", "integer") else "categorical"
        s = df[f.name]
        cols[f.name] = s.to_numpy(dtype=float, na_value=float("nan")) if kinds[f.name] == "numeric" else s.astype(object).where(s.notna(), None).to_numpy()
    preds, scores = model.predict(schema.frame(df))
    prediction: dict[str, Any] = {}
    if scores is not None:
        prediction[PREDICTION] = scores
        prediction[PREDICTION_LABEL] = [str(p) for p in preds]
        kinds[PREDICTION], kinds[PREDICTION_LABEL] = "numeric", "categorical"
    elif model.task == "regression":
        prediction[PREDICTION] = preds
        kinds[PREDICTION] = "numeric"
    else:
        prediction[PREDICTION_LABEL] = [str(p) for p in preds]
        kinds[PREDICTION_LABEL] = "categorical"
    meta = model.metadata
    info = {
        "model": meta.get("name"),
        "version": meta.get("version"),
        "training_data_hash": meta.get("training_data_hash"),
        "task": model.task,
    }
    if model.task == "classification":
        info["positive_class"] = meta.get("positive_class", (model.classes or [1])[-1])
    return fit_profile(cols, kinds=kinds, prediction=prediction, n_bins=n_bins, top_k=top_k, info=info)
