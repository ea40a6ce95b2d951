"""Two-sample drift statistics on binned counts, vectorised over features.

Inputs are (features x bins) count matrices, each row padded with zero bins to
the widest feature; a bin empty in both samples contributes nothing anywhere.
Both samples are finite: the reference is the training sample (its size is in
the profile), so every test is a two-sample test with n_eff = n*m/(n+m), not a
one-sample test against a "true" reference distribution.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

# Proportions are floored at this before the log in PSI: an empty bin would
# otherwise make PSI infinite. 1e-4 is the customary floor in credit scoring.
PSI_EPS = 1e-4
# Cochran's rule: the chi-square approximation needs expected counts >= 5, so
# smaller cells are pooled into one before the test.
MIN_EXPECTED = 5.0


def _props(c: np.ndarray) -> np.ndarray:
    n = c.sum(axis=1, keepdims=True)
    return np.divide(c, n, out=np.zeros_like(c, dtype=np.float64), where=n > 0)


def psi(ref: np.ndarray, cur: np.ndarray, eps: float = PSI_EPS) -> np.ndarray:
    """Population stability index sum((p - q) * ln(p / q)), q the reference."""
    q = np.maximum(_props(np.atleast_2d(ref)), eps)
    p = np.maximum(_props(np.atleast_2d(cur)), eps)
    out = ((p - q) * np.log(p / q)).sum(axis=1)
    return np.where(np.atleast_2d(cur).sum(axis=1) > 0, out, np.nan)


def js_distance(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance in base 2, so it lies in [0, 1]."""
    q = _props(np.atleast_2d(ref))
    p = _props(np.atleast_2d(cur))
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * np.log2(a / np.where(m > 0, m, 1.0)), 0.0)
        return t.sum(axis=1)

    d = np.sqrt(np.maximum(0.5 * kl(p) + 0.5 * kl(q), 0.0))
    return np.where(np.atleast_2d(cur).sum(axis=1) > 0, d, np.nan)


def ks_binned(ref: np.ndarray, cur: np.ndarray, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic from the binned CDFs over the ordered bins (MISSING left out),
    and its asymptotic p-value at n_eff = n*m/(n+m) of the non-missing counts.

    Binning can only merge the points where the two CDFs differ, so the binned
    D is <= the exact D and the test is conservative; it is exact when the bin
    edges include every distinct value. Rows with no ordered bins give NaN.
    """
    ref = np.atleast_2d(ref) * ordered
    cur = np.atleast_2d(cur) * ordered
    n, m = cur.sum(axis=1), ref.sum(axis=1)
    d = np.abs(np.cumsum(_props(cur), axis=1) - np.cumsum(_props(ref), axis=1)).max(axis=1)
    valid = (n > 0) & (m > 0) & ordered.any(axis=1)
    n_eff = np.where(valid, n * m / np.where(valid, n + m, 1.0), 1.0)
    p = sps.kstwo.sf(d, np.maximum(np.round(n_eff), 1.0))
    return np.where(valid, d, np.nan), np.where(valid, p, np.nan)


def chi2_homogeneity(
    ref: np.ndarray, cur: np.ndarray, min_expected: float = MIN_EXPECTED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson's chi-square test that both samples share one distribution over the
    bins (2 x B contingency table). Returns (statistic, dof, p-value); p = 1
    when dof < 1.

    Cells whose expected count is below min_expected are pooled into one, and
    if that pool is itself still too small, the smallest remaining cells join
    it. Without this, a single value just beyond the training range (a cell
    with reference count 0) would make the statistic explode. The pooling
    looks only at the column totals, so the test stays valid.

    This is the statistic that n_eff * PSI approximates to second order; it is
    used for significance instead of n_eff * PSI because it stays calibrated
    when some bins are sparse, where the log in PSI does not.
    """
    ref = np.atleast_2d(ref).astype(np.float64)
    cur = np.atleast_2d(cur).astype(np.float64)
    m = ref.sum(axis=1, keepdims=True)
    n = cur.sum(axis=1, keepdims=True)
    total = m + n
    col = ref + cur
    safe_total = np.where(total > 0, total, 1.0)
    # Expected counts are col * m / total and col * n / total; a cell is small
    # when the smaller of the two is below min_expected, i.e. col < need.
    need = min_expected * safe_total / np.maximum(np.minimum(m, n), 1.0)
    small = (col > 0) & (col < need)
    pool = (col * small).sum(axis=1, keepdims=True)
    short = (pool > 0) & (pool < need)
    if short.any():
        kept = np.where((col > 0) & ~small, col, np.inf)
        order = np.argsort(kept, axis=1, kind="stable")
        sk = np.take_along_axis(kept, order, axis=1)
        finite = np.isfinite(sk)
        sk = np.where(finite, sk, 0.0)
        before = pool + np.cumsum(sk, axis=1) - sk  # pool size before adding each cell
        # Take sorted cells up to and including the first that fills the pool.
        take_sorted = finite & (before < need) & short
        take = np.zeros_like(small)
        np.put_along_axis(take, order, take_sorted, axis=1)
        small |= take
    keep = (col > 0) & ~small

    def x2(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        t = r + c
        er, ec = t * m / safe_total, t * n / safe_total
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(t > 0, (r - er) ** 2 / np.where(er > 0, er, 1.0) + (c - ec) ** 2 / np.where(ec > 0, ec, 1.0), 0.0)
        return v

    stat = (x2(ref, cur) * keep).sum(axis=1)
    pr = (ref * small).sum(axis=1, keepdims=True)
    pc = (cur * small).sum(axis=1, keepdims=True)
    stat = stat + x2(pr, pc)[:, 0]
    cells = keep.sum(axis=1) + small.any(axis=1)
    dof = cells - 1
    ok = (dof >= 1) & (n[:, 0] > 0) & (m[:, 0] > 0)
    p = np.where(ok, sps.chi2.sf(stat, np.maximum(dof, 1)), 1.0)
    return np.where(ok, stat, 0.0), dof, p


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error rate)."""
    p = np.asarray(p, dtype=np.float64)
    k = len(p)
    if k == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((k - np.arange(k)) * p[order]))
    out = np.empty(k)
    out[order] = adj
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (controls the false discovery rate)."""
    p = np.asarray(p, dtype=np.float64)
    k = len(p)
    if k == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * k / np.arange(1, k + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(k)
    out[order] = adj
    return out


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}
