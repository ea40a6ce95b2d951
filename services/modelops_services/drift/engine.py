"""The drift engine: profile + sliding window -> per-feature scores and decisions.

Pure numpy, no I/O, so the monitor, the operator's analysis and the benchmarks
share one implementation.

Decision rule, per feature: drifted when the effect size is over its band (PSI
>= warn, or >= alarm when the decision level is "alarm") AND the chi-square
homogeneity test is significant at alpha after Holm (or Benjamini-Hochberg)
correction across the model's input features. The prediction is a family of its
own: its decision does not enter the share of drifted features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import stats
from .binning import Binner
from .profile import CategoricalSpec, NumericSpec, Profile
from .sequential import EvidenceConfig, EvidenceReport, SequentialEvidence
from .window import SlidingCounts


@dataclass(frozen=True)
class DriftConfig:
    psi_warn: float = 0.1
    psi_alarm: float = 0.25
    alpha: float = 0.05
    correction: str = "holm"  # "holm" (family-wise error) or "bh" (false discovery rate)
    decision_level: str = "warn"  # the PSI band a drift decision needs: "warn" or "alarm"
    min_samples: int = 30  # below this many rows in the window nothing is decided
    block_seconds: float = 5.0  # sequential evidence: one candidate change point per block
    horizon_seconds: float = 1200.0  # ... over this long: the rollout's expected length

    def __post_init__(self) -> None:
        if self.correction not in stats.CORRECTIONS:
            raise ValueError(f"correction must be one of {sorted(stats.CORRECTIONS)}")
        if self.decision_level not in ("warn", "alarm"):
            raise ValueError("decision_level must be 'warn' or 'alarm'")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")


@dataclass
class DriftReport:
    names: list[str]
    kinds: list[str]
    is_prediction: np.ndarray
    n: int  # rows in the window
    psi: np.ndarray
    js: np.ndarray
    ks: np.ndarray
    ks_pvalue: np.ndarray
    chi2: np.ndarray
    chi2_dof: np.ndarray
    pvalue: np.ndarray  # chi-square homogeneity p-value, before correction
    pvalue_adjusted: np.ndarray
    missing_rate: np.ndarray
    unseen_rate: np.ndarray
    level: np.ndarray  # 0 none, 1 warn, 2 alarm (each needs significance)
    drifted: np.ndarray  # bool
    config: DriftConfig
    evidence: EvidenceReport | None = None

    @property
    def feature_mask(self) -> np.ndarray:
        return ~self.is_prediction

    @property
    def drifted_feature_share(self) -> float:
        m = self.feature_mask
        return float(self.drifted[m].mean()) if m.any() else 0.0

    @property
    def any_feature_drifted(self) -> bool:
        return bool(self.drifted[self.feature_mask].any())

    def to_dict(self) -> dict[str, Any]:
        def num(x: Any) -> float | None:
            x = float(x)
            return x if np.isfinite(x) else None

        rows = []
        for i, name in enumerate(self.names):
            rows.append(
                {
                    "feature": name,
                    "kind": self.kinds[i],
                    "prediction": bool(self.is_prediction[i]),
                    "psi": num(self.psi[i]),
                    "js": num(self.js[i]),
                    "ks": num(self.ks[i]),
                    "ks_pvalue": num(self.ks_pvalue[i]),
                    "chi2": num(self.chi2[i]),
                    "chi2_dof": int(self.chi2_dof[i]),
                    "pvalue": num(self.pvalue[i]),
                    "pvalue_adjusted": num(self.pvalue_adjusted[i]),
                    "missing_rate": num(self.missing_rate[i]),
                    "unseen_rate": num(self.unseen_rate[i]),
                    "level": ["none", "warn", "alarm"][int(self.level[i])],
                    "drifted": bool(self.drifted[i]),
                }
            )
        ev = self.evidence
        if ev is not None:
            for i, row in enumerate(rows):
                row["evidence"] = {"nats": num(ev.log_evidence[i]), "segment_rows": int(ev.segment_rows[i]),
                                   "psi_lower": num(ev.psi_lower[i]),
                                   "psi_estimate": num(ev.psi_estimate[i]), "warn": num(ev.band_evidence[0, i]),
                                   "alarm": num(ev.band_evidence[1, i])}
        c = self.config
        sequential = None if ev is None else {
            "start_points": ev.start_points, "blocks": ev.blocks, "block_seconds": c.block_seconds,
            "horizon_seconds": c.horizon_seconds, "rows": int(ev.rows.max(initial=0))}
        return {
            "window_rows": int(self.n),
            "sequential": sequential,
            "enough_samples": self.n >= c.min_samples,
            "drifted_feature_share": self.drifted_feature_share,
            "drifted_features": [n for n, d, p in zip(self.names, self.drifted, self.is_prediction) if d and not p],
            "prediction_drifted": bool(self.drifted[self.is_prediction].any()),
            "config": {
                "psi_warn": c.psi_warn,
                "psi_alarm": c.psi_alarm,
                "alpha": c.alpha,
                "correction": c.correction,
                "decision_level": c.decision_level,
                "min_samples": c.min_samples,
            },
            "features": rows,
        }


class DriftEngine:
    def __init__(self, profile: Profile, config: DriftConfig | None = None, n_sub: int = 10):
        self.profile = profile
        self.config = config or DriftConfig()
        specs = profile.all_specs
        self.specs = specs
        self.binner = Binner(specs)
        self.window = SlidingCounts(n_sub, self.binner.total_bins)
        c = self.config
        self.evidence = SequentialEvidence(specs, EvidenceConfig(c.block_seconds, c.horizon_seconds,
                                                                 (c.psi_warn, c.psi_alarm)))
        n_feat, b_max = len(specs), max((s.n_bins for s in specs), default=1)
        # Where each flat bin lands in the padded (feature x bin) matrix.
        self._rows = np.concatenate([np.full(s.n_bins, i) for i, s in enumerate(specs)]) if specs else np.zeros(0, int)
        self._cols = np.concatenate([np.arange(s.n_bins) for s in specs]) if specs else np.zeros(0, int)
        self._shape = (n_feat, b_max)
        self.ref = self._pad(np.concatenate([s.counts for s in specs]) if specs else np.zeros(0))
        self.ordered = np.zeros(self._shape, dtype=bool)
        self.missing_col = np.array([s.n_bins - 1 for s in specs], dtype=np.int64)
        for i, s in enumerate(specs):
            self.ordered[i, : s.ordered_bins] = True
        # "Unseen" for a category is the UNSEEN bin; for a number it is the share
        # outside the reference range (below- and above-range bins).
        self._unseen = np.zeros(self._shape, dtype=bool)
        for i, s in enumerate(specs):
            if isinstance(s, NumericSpec):
                self._unseen[i, [0, s.n_bins - 2]] = True
            elif isinstance(s, CategoricalSpec):
                self._unseen[i, s.n_bins - 2] = True
        self.is_prediction = np.array([i >= len(profile.features) for i in range(n_feat)], dtype=bool)

    def _pad(self, flat: np.ndarray) -> np.ndarray:
        out = np.zeros(self._shape, dtype=np.float64)
        out[self._rows, self._cols] = flat
        return out

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def count(self, columns: Mapping[str, Any], n_rows: int) -> np.ndarray:
        return self.binner.count(dict(columns), n_rows)

    def observe(self, columns: Mapping[str, Any], n_rows: int) -> np.ndarray:
        """Add a batch of n_rows given as columns (name -> values); prediction
        columns use the profile's prediction names. Returns the batch's flat counts."""
        if n_rows <= 0:
            return np.zeros(self.binner.total_bins, dtype=np.int64)
        counts = self.count(columns, n_rows)
        self.window.add(counts, n_rows)
        self.evidence.add(counts, n_rows)
        return counts

    def rotate(self) -> None:
        self.window.rotate()

    def next_block(self, now: float | None = None) -> None:
        """Start the next block of the sequential evidence (every block_seconds)."""
        self.evidence.rotate(now)

    def evaluate(self, counts: np.ndarray | None = None, n_rows: int | None = None) -> DriftReport:
        """Score the current window (with the sequential evidence), or the given flat
        counts of n_rows rows."""
        evidence = None
        if counts is None:
            counts, n_rows = self.window.total, self.window.total_rows
            evidence = self.evidence.evaluate()
        cur = self._pad(counts)
        ref = self.ref
        n = int(n_rows if n_rows is not None else cur.sum() / max(len(self.specs), 1))
        c = self.config
        with np.errstate(invalid="ignore", divide="ignore"):
            psi = stats.psi(ref, cur)
            js = stats.js_distance(ref, cur)
            ks, ks_p = stats.ks_binned(ref, cur, self.ordered)
            chi2, dof, p = stats.chi2_homogeneity(ref, cur)
            tot = cur.sum(axis=1)
            safe = np.where(tot > 0, tot, 1.0)
            missing = np.where(tot > 0, cur[np.arange(len(self.specs)), self.missing_col] / safe, np.nan)
            unseen = np.where(tot > 0, (cur * self._unseen).sum(axis=1) / safe, np.nan)
        correct = stats.CORRECTIONS[c.correction]
        p_adj = np.ones_like(p)
        for fam in (~self.is_prediction, self.is_prediction):
            if fam.any():
                p_adj[fam] = correct(p[fam])
        significant = (p_adj <= c.alpha) & (n >= c.min_samples)
        psi0 = np.nan_to_num(psi, nan=0.0)
        level = np.where(significant & (psi0 >= c.psi_alarm), 2, np.where(significant & (psi0 >= c.psi_warn), 1, 0))
        need = 1 if c.decision_level == "warn" else 2
        return DriftReport(
            names=self.names,
            kinds=[s.kind for s in self.specs],
            is_prediction=self.is_prediction,
            n=n,
            psi=psi,
            js=js,
            ks=ks,
            ks_pvalue=ks_p,
            chi2=chi2,
            chi2_dof=dof,
            pvalue=p,
            pvalue_adjusted=p_adj,
            missing_rate=missing,
            unseen_rate=unseen,
            level=level,
            drifted=level >= need,
            config=c,
            evidence=evidence,
        )
