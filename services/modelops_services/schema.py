"""Feature schema and request validation.

A request is a batch of rows, each a JSON object with named features. Errors
name the offending field (rows[3].tenure) so the caller can fix the request;
validation never raises anything but SchemaError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

TYPES = ("number", "integer", "category", "boolean")


class SchemaError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    nullable: bool = True  # null is a missing value, which the models handle
    categories: tuple[str, ...] = ()  # known at training; others are allowed (unseen)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.categories:
            d["categories"] = list(self.categories)
        return d


@dataclass(frozen=True)
class FeatureSchema:
    features: tuple[Feature, ...]
    max_rows: int = 10_000
    _by_name: Mapping[str, Feature] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.features})

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @classmethod
    def from_list(cls, items: Sequence[Mapping[str, Any]], max_rows: int = 10_000) -> "FeatureSchema":
        feats = []
        for it in items:
            if it.get("type") not in TYPES:
                raise ValueError(f"feature {it.get('name')!r}: type must be one of {TYPES}")
            feats.append(
                Feature(
                    name=str(it["name"]),
                    type=it["type"],
                    nullable=bool(it.get("nullable", True)),
                    categories=tuple(str(c) for c in it.get("categories", ())),
                )
            )
        return cls(tuple(feats), max_rows=max_rows)

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.features]

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A trusted table (training data) in the same representation validate()
        gives the model at serving time, so training and serving agree."""
        data = {}
        for f in self.features:
            s = df[f.name]
            if f.type == "category":
                data[f.name] = s.astype(object).where(s.notna(), np.nan).to_numpy()
            else:
                data[f.name] = s.astype("float64").to_numpy()
        return pd.DataFrame(data, columns=self.names)

    def validate(self, rows: Any) -> pd.DataFrame:
        """Rows -> a DataFrame in schema order (numbers float64, categories
        object; NaN for null). Raises SchemaError naming the first bad field."""
        if not isinstance(rows, list):
            raise SchemaError("rows", "must be a list of objects")
        if not rows:
            raise SchemaError("rows", "empty batch")
        if len(rows) > self.max_rows:
            raise SchemaError("rows", f"{len(rows)} rows, at most {self.max_rows} per request")
        cols: dict[str, list[Any]] = {f.name: [None] * len(rows) for f in self.features}
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise SchemaError(f"rows[{i}]", "must be an object of feature values")
            for key in row:
                if key not in self._by_name:
                    raise SchemaError(f"rows[{i}].{key}", "unknown feature")
            for f in self.features:
                if f.name not in row:
                    raise SchemaError(f"rows[{i}].{f.name}", "missing feature")
                cols[f.name][i] = _check_value(f, row[f.name], f"rows[{i}].{f.name}")
        data = {}
        for f in self.features:
            if f.type in ("number", "integer"):
                data[f.name] = np.array([np.nan if v is None else v for v in cols[f.name]], dtype=np.float64)
            elif f.type == "boolean":
                data[f.name] = np.array([np.nan if v is None else float(v) for v in cols[f.name]], dtype=np.float64)
            else:
                # Missing categories are NaN, the marker scikit-learn's imputers expect.
                data[f.name] = np.array([np.nan if v is None else v for v in cols[f.name]], dtype=object)
        return pd.DataFrame(data, columns=self.names)


def _check_value(f: Feature, v: Any, where: str) -> Any:
    if v is None:
        if not f.nullable:
            raise SchemaError(where, "must not be null")
        return None
    if f.type in ("number", "integer"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SchemaError(where, f"must be a number, got {type(v).__name__}")
        try:
            x = float(v)
        except OverflowError:
            raise SchemaError(where, "number out of range") from None
        if not math.isfinite(x):
            raise SchemaError(where, "must be finite")
        if f.type == "integer" and not x.is_integer():
            raise SchemaError(where, "must be an integer")
        return x
    if f.type == "boolean":
        if not isinstance(v, bool):
            raise SchemaError(where, f"must be true or false, got {type(v).__name__}")
        return v
    if not isinstance(v, str):
        raise SchemaError(where, f"must be a string category, got {type(v).__name__}")
    return v
