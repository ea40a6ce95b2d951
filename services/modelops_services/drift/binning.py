"""Map raw values to bin indices of a profile: one searchsorted per numeric column,
one hash lookup per categorical column. Never raises on odd values: anything that
is not a number counts as MISSING for a numeric feature."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .profile import CategoricalSpec, FeatureSpec, NumericSpec


def is_missing(v: Any) -> bool:
    if v is None:
        return True
    if type(v) is str:
        return False
    if isinstance(v, float):
        return math.isnan(v)
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def as_float(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Values as float64; None, NaN, booleans-as-text and non-numbers become NaN."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    try:
        # None becomes NaN here; strings raise and take the slow path below.
        out = np.asarray(values, dtype=np.float64)
        if out.ndim == 1:
            return out
    except (TypeError, ValueError, OverflowError):
        pass
    return np.fromiter((_one_float(v) for v in values), dtype=np.float64)


def _one_float(v: Any) -> float:
    # bool is an int subclass, but True is no measurement: treat as missing.
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    return math.nan


def bin_numeric(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, x, side="right")
    idx[np.isnan(x)] = len(edges) + 1
    return idx


class CategoryBinner:
    def __init__(self, spec: CategoricalSpec):
        self.n_top = len(spec.categories)
        self.other = self.n_top
        self.unseen = self.n_top + 1 if spec.other_complete else self.n_top
        self.missing = self.n_top + 2
        self._index = pd.Index([*spec.categories, *spec.other_categories], dtype=object)
        # A dict is faster than the Index for the usual few hundred categories.
        names = [*spec.categories, *spec.other_categories]
        self._small = {n: i for i, n in enumerate(names)} if len(names) <= 100_000 else None

    def bin(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        # Hash each value once (factorize), then look up only the distinct
        # values: a window has few distinct categories however long it is.
        arr = values if isinstance(values, np.ndarray) and values.dtype == object else _object_array(values)
        if len(arr) == 0:
            return np.zeros(0, dtype=np.int64)
        try:
            codes, uniques = pd.factorize(arr)
        except TypeError:  # unhashable values (lists, dicts): compare as text
            codes, uniques = pd.factorize(np.array([None if is_missing(v) else str(v) for v in arr], dtype=object))
        # factorize marks None/NaN as -1, which picks the trailing MISSING entry.
        lut = np.fromiter((self._one(u) for u in uniques), dtype=np.int64, count=len(uniques))
        return np.append(lut, self.missing)[codes]

    def _one(self, v: Any) -> int:
        if type(v) is not str:
            if is_missing(v):
                return self.missing
            v = str(v)
        i = self._index.get_indexer([v])[0] if self._small is None else self._small.get(v, -1)
        if i < 0:
            return self.unseen
        return int(i) if i < self.n_top else self.other


def _object_array(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


class Binner:
    """Bins one batch of columns for every spec of a profile, into one flat index
    space (feature offsets + bin), so counting is a single bincount."""

    def __init__(self, specs: Sequence[FeatureSpec]):
        self.specs = list(specs)
        sizes = [s.n_bins for s in self.specs]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.total_bins = int(sum(sizes))
        self._cat = {s.name: CategoryBinner(s) for s in self.specs if isinstance(s, CategoricalSpec)}

    def bin_column(self, spec: FeatureSpec, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        if isinstance(spec, NumericSpec):
            return bin_numeric(as_float(values), spec.edges)
        return self._cat[spec.name].bin(values)

    def count(self, columns: dict[str, Any], n_rows: int) -> np.ndarray:
        """Flat bin counts for a batch of n_rows; an absent column counts as missing."""
        if not self.specs:
            return np.zeros(0, dtype=np.int64)

        def one(spec: FeatureSpec) -> np.ndarray:
            vals = columns.get(spec.name)
            if vals is None:
                c = np.zeros(spec.n_bins, dtype=np.int64)
                c[-1] = n_rows
                return c
            idx = self.bin_column(spec, vals)
            if len(idx) != n_rows:
                raise ValueError(f"column {spec.name!r} has {len(idx)} values, want {n_rows}")
            return np.bincount(idx, minlength=spec.n_bins)

        if n_rows < PARALLEL_ROWS:
            parts = [one(s) for s in self.specs]
        else:
            # searchsorted releases the GIL: numeric columns of a large window
            # are binned on the other cores while this thread does categories.
            futs = {i: _pool().submit(one, s) for i, s in enumerate(self.specs) if isinstance(s, NumericSpec)}
            done = {i: one(s) for i, s in enumerate(self.specs) if i not in futs}
            parts = [futs[i].result() if i in futs else done[i] for i in range(len(self.specs))]
        return np.concatenate(parts).astype(np.int64)


PARALLEL_ROWS = 50_000
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="modelops-binning")
    return _POOL
