"""Reference profile: the binned shape of the training data, fitted once.

A profile is plain JSON so it can live in a ConfigMap or inside the model image.
Its identity is the sha256 of its canonical JSON, so the operator and the monitor
can tell whether they compare against the same reference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

FORMAT = "modelops.profile/v1"
PREDICTION = "__prediction__"
PREDICTION_LABEL = "__prediction_label__"
OTHER = "__OTHER__"
UNSEEN = "__UNSEEN__"
MISSING = "__MISSING__"
BELOW = "__BELOW__"
ABOVE = "__ABOVE__"

# Beyond this many distinct categories we stop listing the non-top ones, and can
# no longer tell OTHER from UNSEEN: the profile records that it is incomplete.
MAX_LISTED_CATEGORIES = 10_000


@dataclass
class NumericSpec:
    """Bins: below-range, (len(edges)-1) quantile bins, above-range, MISSING."""

    name: str
    edges: np.ndarray  # sorted, strictly increasing; last edge is just above the max
    counts: np.ndarray  # reference counts per bin, len(edges) + 2
    mean: float = float("nan")
    std: float = float("nan")
    kind: str = "numeric"

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 2

    @property
    def ordered_bins(self) -> int:
        # All bins but MISSING have an order, which the KS statistic needs.
        return len(self.edges) + 1

    def labels(self) -> list[str]:
        inner = [f"[{a:.6g},{b:.6g})" for a, b in zip(self.edges[:-1], self.edges[1:])]
        return [BELOW, *inner, ABOVE, MISSING]


@dataclass
class CategoricalSpec:
    """Bins: top-K categories, OTHER (seen in training), UNSEEN, MISSING."""

    name: str
    categories: list[str]
    counts: np.ndarray  # len(categories) + 3
    other_categories: list[str] = field(default_factory=list)
    other_complete: bool = True
    kind: str = "categorical"

    @property
    def n_bins(self) -> int:
        return len(self.categories) + 3

    @property
    def ordered_bins(self) -> int:
        return 0

    def labels(self) -> list[str]:
        return [*self.categories, OTHER, UNSEEN, MISSING]


FeatureSpec = NumericSpec | CategoricalSpec


@dataclass
class Profile:
    features: list[FeatureSpec]
    prediction: list[FeatureSpec]
    n_reference: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def all_specs(self) -> list[FeatureSpec]:
        return [*self.features, *self.prediction]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "n_reference": int(self.n_reference),
            "info": self.info,
            "features": [_spec_to_dict(s) for s in self.features],
            "prediction": [_spec_to_dict(s) for s in self.prediction],
        }

    @property
    def hash(self) -> str:
        return "sha256:" + hashlib.sha256(_canonical(self.to_dict())).hexdigest()

    def to_json(self) -> str:
        d = self.to_dict()
        d["hash"] = self.hash
        return json.dumps(d, indent=1, sort_keys=True)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Profile":
        if d.get("format") != FORMAT:
            raise ValueError(f"unsupported profile format {d.get('format')!r}, want {FORMAT}")
        prof = cls(
            features=[_spec_from_dict(s) for s in d["features"]],
            prediction=[_spec_from_dict(s) for s in d.get("prediction", [])],
            n_reference=int(d["n_reference"]),
            info=dict(d.get("info", {})),
        )
        stated = d.get("hash")
        if stated is not None and stated != prof.hash:
            raise ValueError(f"profile hash mismatch: file says {stated}, content is {prof.hash}")
        return prof

    @classmethod
    def load(cls, path: str) -> "Profile":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def _canonical(d: Mapping[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def _spec_to_dict(s: FeatureSpec) -> dict[str, Any]:
    if isinstance(s, NumericSpec):
        return {
            "name": s.name,
            "kind": "numeric",
            "edges": [float(e) for e in s.edges],
            "counts": [int(c) for c in s.counts],
            "mean": _finite_or_none(s.mean),
            "std": _finite_or_none(s.std),
        }
    return {
        "name": s.name,
        "kind": "categorical",
        "categories": list(s.categories),
        "counts": [int(c) for c in s.counts],
        "other_categories": list(s.other_categories),
        "other_complete": bool(s.other_complete),
    }


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _spec_from_dict(d: Mapping[str, Any]) -> FeatureSpec:
    counts = np.asarray(d["counts"], dtype=np.int64)
    if d["kind"] == "numeric":
        edges = np.asarray(d["edges"], dtype=np.float64)
        if len(edges) < 1 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"feature {d['name']!r}: edges must be strictly increasing")
        if len(counts) != len(edges) + 2:
            raise ValueError(f"feature {d['name']!r}: want {len(edges) + 2} counts")
        return NumericSpec(
            name=d["name"],
            edges=edges,
            counts=counts,
            mean=float("nan") if d.get("mean") is None else float(d["mean"]),
            std=float("nan") if d.get("std") is None else float(d["std"]),
        )
    if d["kind"] == "categorical":
        cats = [str(c) for c in d["categories"]]
        if len(counts) != len(cats) + 3:
            raise ValueError(f"feature {d['name']!r}: want {len(cats) + 3} counts")
        return CategoricalSpec(
            name=d["name"],
            categories=cats,
            counts=counts,
            other_categories=[str(c) for c in d.get("other_categories", [])],
            other_complete=bool(d.get("other_complete", True)),
        )
    raise ValueError(f"feature {d.get('name')!r}: unknown kind {d.get('kind')!r}")


# ---------------------------------------------------------------- fitting


def fit_numeric(name: str, values: Sequence[Any] | np.ndarray, n_bins: int = 20) -> NumericSpec:
    """Quantile bins of the reference, so each holds about the same share.

    Equal-width bins let a few outliers squeeze the bulk into one bin; quantile
    bins keep PSI stable under outliers.
    """
    from .binning import as_float, bin_numeric  # local: binning imports this module

    x = as_float(values)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        edges = np.array([0.0, 1.0])
    else:
        qs = np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1))
        edges = np.unique(qs)
        # The top edge sits just above the max, so the max is in range and only
        # larger values count as above-range.
        edges[-1] = np.nextafter(edges[-1], np.inf)
        if len(edges) == 1:
            edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
    spec = NumericSpec(
        name=name,
        edges=edges,
        counts=np.zeros(len(edges) + 2, dtype=np.int64),
        mean=float(finite.mean()) if finite.size else float("nan"),
        std=float(finite.std()) if finite.size else float("nan"),
    )
    spec.counts = np.bincount(bin_numeric(x, spec.edges), minlength=spec.n_bins).astype(np.int64)
    return spec


def fit_categorical(name: str, values: Iterable[Any], top_k: int = 20) -> CategoricalSpec:
    from .binning import CategoryBinner, is_missing

    freq: dict[str, int] = {}
    for v in values:
        if is_missing(v):
            continue
        k = str(v)
        freq[k] = freq.get(k, 0) + 1
    # Ties broken by name so that the same data always gives the same profile.
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    top = [k for k, _ in ranked[:top_k]]
    rest = [k for k, _ in ranked[top_k:]]
    complete = len(rest) <= MAX_LISTED_CATEGORIES
    spec = CategoricalSpec(
        name=name,
        categories=top,
        counts=np.zeros(len(top) + 3, dtype=np.int64),
        other_categories=sorted(rest[:MAX_LISTED_CATEGORIES]),
        other_complete=complete,
    )
    spec.counts = np.bincount(CategoryBinner(spec).bin(values), minlength=spec.n_bins).astype(np.int64)
    return spec


def fit_profile(
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    kinds: Mapping[str, str] | None = None,
    prediction: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
    n_bins: int = 20,
    top_k: int = 20,
    info: Mapping[str, Any] | None = None,
) -> Profile:
    """Fit a profile from columns; kinds maps name -> "numeric" | "categorical"
    (inferred from the values when absent)."""
    kinds = dict(kinds or {})
    sizes = {len(v) for v in columns.values()}
    if len(sizes) > 1:
        raise ValueError(f"columns differ in length: {sorted(sizes)}")

    def fit(name: str, vals: Any, kind: str | None) -> FeatureSpec:
        kind = kind or infer_kind(vals)
        if kind == "numeric":
            return fit_numeric(name, vals, n_bins)
        if kind == "categorical":
            return fit_categorical(name, vals, top_k)
        raise ValueError(f"feature {name!r}: unknown kind {kind!r}")

    feats = [fit(n, v, kinds.get(n)) for n, v in columns.items()]
    preds = [fit(n, v, kinds.get(n)) for n, v in (prediction or {}).items()]
    return Profile(features=feats, prediction=preds, n_reference=sizes.pop() if sizes else 0, info=dict(info or {}))


def infer_kind(values: Any) -> str:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return "numeric" if arr.dtype.kind != "b" else "categorical"
    return "categorical"
