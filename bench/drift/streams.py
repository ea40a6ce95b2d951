"""Synthetic tabular streams for the drift benchmarks: Gaussian, lognormal and
Zipf-categorical features, with an optional change applied from a row on."""

from __future__ import annotations

import numpy as np
import pandas as pd

N_ZIPF = 50  # categories per Zipf feature; the profile keeps the top 20


def feature_names(n_features: int) -> tuple[list[str], list[str]]:
    """(numeric, categorical) names: a mix of 40% Gaussian, 30% lognormal, 30% Zipf."""
    n_cat = max(1, round(0.3 * n_features))
    n_log = max(1, round(0.3 * n_features))
    n_gauss = n_features - n_cat - n_log
    return [f"g{i}" for i in range(n_gauss)] + [f"l{i}" for i in range(n_log)], [f"z{i}" for i in range(n_cat)]


def _zipf_probs(a: float = 1.3) -> np.ndarray:
    w = 1.0 / np.arange(1, N_ZIPF + 1) ** a
    return w / w.sum()


ZIPF_CATS = np.array([f"c{i:02d}" for i in range(N_ZIPF)], dtype=object)


def sample(n: int, n_features: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    num, cat = feature_names(n_features)
    out: dict[str, np.ndarray] = {}
    p = _zipf_probs()
    for name in num:
        out[name] = rng.normal(0.0, 1.0, size=n) if name[0] == "g" else rng.lognormal(0.0, 1.0, size=n)
    for name in cat:
        out[name] = ZIPF_CATS[rng.choice(N_ZIPF, size=n, p=p)]
    return out


# The changes the benchmark measures, each on one feature.
CHANGES = {
    "mean_0.2sd": ("g0", "mean shift of 0.2 standard deviations"),
    "variance_1.3x": ("g0", "standard deviation times 1.3"),
    "new_category_5pct": ("z0", "5% of rows take a category never seen in training"),
    "missing_0_to_20pct": ("g1", "missing rate from 0 to 20%"),
}


def apply_change(cols: dict[str, np.ndarray], change: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = dict(cols)
    feat = CHANGES[change][0]
    n = len(out[feat])
    if change == "mean_0.2sd":
        out[feat] = out[feat] + 0.2
    elif change == "variance_1.3x":
        out[feat] = out[feat] * 1.3
    elif change == "new_category_5pct":
        v = out[feat].copy()
        v[rng.uniform(size=n) < 0.05] = "NEW"
        out[feat] = v
    elif change == "missing_0_to_20pct":
        v = out[feat].astype(float).copy()
        v[rng.uniform(size=n) < 0.2] = np.nan
        out[feat] = v
    else:
        raise ValueError(change)
    return out


def concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(cols)
