"""Sequential drift evidence: how strongly the rows since a change point say that a
feature left its training distribution by at least a PSI band.

The rows arrive in blocks of a few seconds, kept in a ring that spans the horizon
(the rollout's expected length, 20 minutes by default). Every block boundary is a
candidate change point, and for each feature and each candidate start k the rows
from k to now give two numbers:

- **e-value** E_k against "the segment's rows come from the distribution the
  training rows came from": the Dirichlet-multinomial mixture likelihood of the
  segment's bin counts over their predictive likelihood given the reference counts
  (a Polya urn seeded with the training rows, so the reference's own sampling noise
  is not mistaken for drift however many rows arrive). The alternative is averaged
  over two priors (concentration 1/2 and 5 per bin, centred on the reference) and
  two resolutions (the profile's bins, and the ordered bins merged into quartiles),
  so both a large shift in few rows and a small one in many rows are found early.
  An average of e-processes is an e-process, and for a fixed start each E_k is a
  nonnegative martingale under the null (exactly so when the training distribution
  is drawn from the Jeffreys prior, and to the reference's precision for any fixed
  one), so by Ville's inequality P(sup_t E_k >= K/alpha) <= alpha/K; over the
  horizon's K start points P(any false alarm) <= alpha, however often the result is
  read.
- **effect**: the segment's PSI, corrected for the upward bias of a small sample (a
  two-sample PSI of n and m rows from the same distribution is about
  (bins-1)(1/n + 1/m)), read at a one-sided confidence per band: n_eff * PSI is read
  as a noncentral chi-square with bins-1 degrees of freedom and the normal
  approximation is inverted for the noncentrality. The larger of the two resolutions'
  values counts (coarser bins can only lower PSI).
  - the **fail** band, which rolls back on its own, needs the 95% lower bound;
  - the **warn** band needs the bias-corrected estimate (confidence 50%): a feature at
    warn only counts towards the share of drifted features, and a bound there would
    miss most shifts just over the band (a PSI of 0.11 against a band of 0.1 needs
    about 12,000 rows to clear a 95% bound against a 10,000-row reference).

A feature reaches a band when the segment with the most evidence (the likeliest change
point) has an e-value over the threshold and an effect at or above the band.
`band_evidence` is, per band, that segment's log e-value where its effect reaches the
band, else 0; the operator turns it into an anytime-valid p-value K * exp(-evidence),
corrects it across features, and compares it with its significance. Nothing here
depends on the operator's alpha, so a changed significance applies at the next read.

What is guaranteed and what is not: without drift, the false-alarm rate over the
horizon is at most alpha however often it is read (the e-value). Whether a drift that
did happen reaches the fail band is a 95% bound per read on one segment, not a
time-uniform bound: a bound maximised over every segment and read would be exceeded
by chance (a shift between the bands would be called at the upper one), and a
time-uniform one costs several times the rows (bench/loop measures both the speed and
how often a shift between the bands is rolled back). At the warn band a real shift
a little under the band is, read often enough, sometimes called at warn.

Pure numpy and scipy, no I/O, like the rest of the drift engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.special import gammaln

from .profile import CategoricalSpec, FeatureSpec, NumericSpec

# Prior concentration per bin of the two Dirichlet mixtures, centred on the reference.
CONCENTRATIONS = (0.5, 5.0)
COARSE_GROUPS = 4  # ordered bins merged into this many groups of about equal reference mass
# The effect's margin at the fail band: a one-sided 95% lower bound on the bias-corrected PSI, per read.
BOUND_Z = 1.644854
SMOOTHING = 0.5  # Jeffreys' pseudo-count per bin for the effect estimate


@dataclass(frozen=True)
class EvidenceConfig:
    block_seconds: float = 5.0
    horizon_seconds: float = 1200.0
    bands: tuple[float, ...] = (0.1, 0.25)  # PSI warn and alarm
    # Per band, the normal quantile of the one-sided confidence its effect is read at:
    # the estimate for warn, the 95% lower bound for the band that rolls back alone.
    band_z: tuple[float, ...] = (0.0, BOUND_Z)

    def __post_init__(self) -> None:
        if not self.block_seconds > 0:
            raise ValueError("block_seconds must be above 0")
        if self.horizon_seconds < self.block_seconds:
            raise ValueError("horizon_seconds must be at least block_seconds")
        if any(not (b >= 0 and math.isfinite(b)) for b in self.bands):
            raise ValueError("PSI bands must be finite and >= 0")
        if len(self.band_z) != len(self.bands) or any(not (z >= 0 and math.isfinite(z)) for z in self.band_z):
            raise ValueError("band_z needs one finite quantile >= 0 per band")

    @property
    def start_points(self) -> int:
        """Candidate change points over the horizon: the K of the threshold log(K/alpha)."""
        return max(1, math.ceil(self.horizon_seconds / self.block_seconds))


@dataclass
class EvidenceReport:
    start_points: int  # K
    blocks: int  # blocks filled so far (<= K)
    rows: np.ndarray  # per feature: rows since the oldest block kept
    log_evidence: np.ndarray  # per feature: max over segments of log E (nats), >= 0
    segment_rows: np.ndarray  # per feature: rows of the segment with that maximum
    psi_lower: np.ndarray  # per feature: that segment's PSI as a 95% lower bound
    psi_estimate: np.ndarray  # per feature: that segment's PSI, bias-corrected
    band_evidence: np.ndarray  # bands x features: that log E where the effect reaches the band, else 0

    def pvalue(self, band: int) -> np.ndarray:
        """Anytime-valid p-values per feature for reaching bands[band]: Bonferroni over
        the K start points of K * min_k 1/E_k."""
        return np.minimum(1.0, self.start_points * np.exp(-self.band_evidence[band]))


def coarse_groups(spec: FeatureSpec) -> np.ndarray:
    """Per bin of the feature, its group at the coarse resolution. Numeric: below-range,
    the quantile bins in COARSE_GROUPS groups, above-range and missing each alone.
    Categorical: the three most frequent categories alone, the other listed ones
    together, then OTHER, UNSEEN and MISSING alone."""
    n = spec.n_bins
    if isinstance(spec, NumericSpec):
        inner = n - 3
        groups = [0, *(1 + (i * COARSE_GROUPS) // max(inner, 1) for i in range(inner)), COARSE_GROUPS + 1,
                  COARSE_GROUPS + 2]
        return np.asarray(groups, dtype=np.int64)
    assert isinstance(spec, CategoricalSpec)
    top = len(spec.categories)
    cats = [min(i, 3) for i in range(top)]
    first = (max(cats) + 1) if cats else 0
    return np.asarray([*cats, first, first + 1, first + 2], dtype=np.int64)


class Resolution:
    """One binning of every feature: a map from the profile's flat bins to padded
    (feature x bin) cells, and the reference there."""

    def __init__(self, groups: Sequence[np.ndarray], offsets: np.ndarray, total_bins: int, ref_flat: np.ndarray):
        widths = [int(g.max()) + 1 for g in groups]
        self.shape = (len(groups), max(widths, default=1))
        # Each cell is a run of adjacent flat bins (groups ascend within a feature), so
        # one reduceat adds them up; `_slots` places the runs in the padded layout.
        starts, slots = [], []
        for f, g in enumerate(groups):
            if np.any(np.diff(g) < 0) or np.any(np.diff(g) > 1) or (len(g) and g[0] != 0):
                raise ValueError("groups must number adjacent bins in ascending runs from 0")
            first = np.flatnonzero(np.r_[True, np.diff(g) != 0])
            starts.extend(int(offsets[f]) + first)
            slots.extend(f * self.shape[1] + g[first])
        self._starts = np.asarray(starts, dtype=np.intp)
        self._slots = np.asarray(slots, dtype=np.intp)
        self.mask = np.zeros(self.shape, dtype=bool)
        for f, w in enumerate(widths):
            self.mask[f, :w] = True
        self.ref = self.cells(ref_flat[None, :])[0]
        self.m = self.ref.sum(axis=1)
        bins = self.mask.sum(axis=1)
        # Smoothed reference proportions: a bin empty in training (a value out of its
        # range, an unseen category) keeps a small probability instead of zero.
        self.q = np.where(self.mask, (self.ref + SMOOTHING) / (self.m + SMOOTHING * bins)[:, None], 1.0)
        self.log_q = np.log(self.q)

    def cells(self, flat: np.ndarray) -> np.ndarray:
        """(segments x flat bins) -> (segments x features x cells)."""
        out = np.zeros((flat.shape[0], self.shape[0] * self.shape[1]))
        if len(self._starts):
            out[:, self._slots] = np.add.reduceat(flat, self._starts, axis=1)
        return out.reshape(flat.shape[0], *self.shape)

    def log_evidence(self, c: np.ndarray, n: np.ndarray) -> np.ndarray:
        """log E per (segment, feature), E the mean over CONCENTRATIONS of the
        Dirichlet-multinomial mixture against the reference proportions."""
        bins = self.mask.sum(axis=1)
        logs = []
        for conc in CONCENTRATIONS:
            kappa = conc * bins  # prior mass, spread as q
            a = np.where(self.mask, kappa[:, None] * self.q, 1.0)
            mix = (gammaln(kappa) - gammaln(kappa + n) +
                   (np.where(self.mask, gammaln(a + c) - gammaln(a), 0.0)).sum(axis=-1))
            logs.append(mix - self._null(c, n))
        stacked = np.stack(logs)
        top = stacked.max(axis=0)
        return top + np.log(np.exp(stacked - top).mean(axis=0))

    def _null(self, c: np.ndarray, n: np.ndarray) -> np.ndarray:
        """log of the segment's probability if its rows came from the distribution the
        training rows came from: the Polya-urn predictive given the reference counts
        (a Jeffreys prior updated by the reference). Unlike the reference proportions
        alone, it knows the reference is a sample, so a long run of unchanged traffic
        does not pile up evidence against the reference's own sampling noise."""
        r = np.where(self.mask, self.ref + SMOOTHING, 1.0)
        total = np.where(self.mask, r, 0.0).sum(axis=-1)
        return (gammaln(total) - gammaln(total + n) +
                np.where(self.mask, gammaln(r + c) - gammaln(r), 0.0).sum(axis=-1))

    def psi_lower(self, c: np.ndarray, n: np.ndarray, zs: Sequence[float] = (BOUND_Z,)) -> np.ndarray:
        """The lower confidence bound on PSI per (segment, feature), bias-corrected, at
        each normal quantile z of zs (stacked when there are several); z = 0 gives the
        bias-corrected estimate."""
        p = np.where(self.mask, c + SMOOTHING, 1.0)
        p = p / np.where(self.mask, p, 0.0).sum(axis=-1, keepdims=True)
        psi = np.where(self.mask, (p - self.q) * (np.log(p) - self.log_q), 0.0).sum(axis=-1)
        # Degrees of freedom: the bins either sample touches.
        used = (self.mask & ((c > 0) | (self.ref[None] > 0))).sum(axis=-1)
        dof = np.maximum(used - 1, 1).astype(np.float64)
        n_eff = n * self.m / np.maximum(n + self.m, 1.0)
        excess = n_eff * psi - dof  # the statistic minus its mean without drift
        out = []
        for z in zs:
            z2 = z * z
            # Solve excess - lam = z * sqrt(2 * (dof + 2 * lam)) for the noncentrality lam.
            root = np.sqrt(np.maximum(4 * z2 * excess + 4 * z2 * z2 + 2 * z2 * dof, 0.0))
            lam = np.maximum(excess + 2 * z2 - root, 0.0)
            out.append(np.where(n_eff > 0, lam / np.maximum(n_eff, 1e-12), 0.0))
        return np.stack(out) if len(out) > 1 else out[0]


class SequentialEvidence:
    """The ring of blocks and the evidence over it. `add` counts rows into the
    newest block, `rotate` starts the next one (every block_seconds)."""

    def __init__(self, specs: Sequence[FeatureSpec], config: EvidenceConfig | None = None):
        self.config = config or EvidenceConfig()
        self.specs = list(specs)
        sizes = [s.n_bins for s in self.specs]
        self.total_bins = int(sum(sizes))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, int)
        ref_flat = (np.concatenate([s.counts for s in self.specs]).astype(np.float64) if self.specs
                    else np.zeros(0))
        fine = [np.arange(s.n_bins) for s in self.specs]
        coarse = [coarse_groups(s) for s in self.specs]
        self.resolutions = (Resolution(fine, offsets, self.total_bins, ref_flat),
                            Resolution(coarse, offsets, self.total_bins, ref_flat))
        k = self.config.start_points
        self.slots = np.zeros((k, self.total_bins), dtype=np.int64)
        self.rows = np.zeros(k, dtype=np.int64)
        self.started = np.full(k, np.nan)  # when each block began (any clock), for counts_since
        self.started[0] = 0.0
        self.head = 0
        self.filled = 1
        self._report: EvidenceReport | None = None

    def add(self, flat_counts: np.ndarray, n_rows: int) -> None:
        self.slots[self.head] += flat_counts
        self.rows[self.head] += int(n_rows)
        self._report = None

    def rotate(self, now: float | None = None) -> None:
        """Start a new block (at time `now`); the oldest beyond the horizon is dropped."""
        k = self.config.start_points
        self.head = (self.head + 1) % k
        self.slots[self.head] = 0
        self.rows[self.head] = 0
        self.started[self.head] = np.nan if now is None else now
        self.filled = min(self.filled + 1, k)
        self._report = None

    def counts_since(self, since: float) -> tuple[np.ndarray, int]:
        """Flat bin counts and rows of the blocks that began at or after `since` (the
        same clock as rotate's `now`): a period two tracks can be compared over."""
        keep = self.started >= since  # NaN (never started, or no clock) is never kept
        return self.slots[keep].sum(axis=0), int(self.rows[keep].sum())

    def clear(self) -> None:
        self.slots[:] = 0
        self.rows[:] = 0
        self.filled = 1
        self._report = None

    def evaluate(self) -> EvidenceReport:
        if self._report is None:
            self._report = self._evaluate()
        return self._report

    def _evaluate(self) -> EvidenceReport:
        k = self.config.start_points
        n_feat = len(self.specs)
        order = (self.head - np.arange(self.filled)) % k  # newest block first
        suffix = np.cumsum(self.slots[order], axis=0).astype(np.float64)  # segment from block i back to now
        # Bounds at each band's quantile, then the 95% one and the estimate for display.
        # (By default the bands' quantiles are those two already: each is computed once.)
        zs = tuple(dict.fromkeys((*self.config.band_z, BOUND_Z, 0.0)))
        at = {z: i for i, z in enumerate(zs)}
        log_e = np.full((self.filled, n_feat), -np.inf)
        bound = np.zeros((len(zs), self.filled, n_feat))
        rows = np.zeros((self.filled, n_feat))
        for res in self.resolutions:
            c = res.cells(suffix)
            n = (c * res.mask).sum(axis=-1)
            rows = n
            log_e = np.logaddexp(log_e, res.log_evidence(c, n))
            bound = np.maximum(bound, res.psi_lower(c, n, zs))
        log_e = np.where(rows > 0, log_e - math.log(len(self.resolutions)), 0.0)
        best = np.argmax(log_e, axis=0) if self.filled else np.zeros(n_feat, dtype=int)
        cols = np.arange(n_feat)
        bands = np.array(self.config.bands, dtype=np.float64)
        # The effect is judged on the segment with the most evidence only: over every
        # segment and read, chance would carry some bound over a band it is under.
        effect = bound[:, best, cols] if self.filled else np.zeros((len(zs), n_feat))
        top = np.maximum(log_e[best, cols], 0.0) if self.filled else np.zeros(n_feat)
        by_band = effect[[at[z] for z in self.config.band_z]]
        band_e = np.where(by_band >= bands[:, None] - 1e-12, top[None, :], 0.0)
        return EvidenceReport(
            start_points=k,
            blocks=self.filled,
            rows=rows[-1] if self.filled else np.zeros(n_feat),
            log_evidence=top,
            segment_rows=rows[best, cols] if self.filled else np.zeros(n_feat),
            psi_lower=effect[at[BOUND_Z]],
            psi_estimate=effect[at[0.0]],
            band_evidence=np.maximum(band_e, 0.0),
        )
