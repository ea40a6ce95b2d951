"""The drift statistics agree with scipy and with PSI computed by hand."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp

from modelops_services.drift import DriftEngine, fit_profile
from modelops_services.drift import stats


def test_psi_matches_hand_computation():
    # p = (.3, .3, .4), q = (.5, .3, .2):
    # (.3-.5) ln(.3/.5) + 0 + (.4-.2) ln(.4/.2) = 0.102165 + 0.138629
    got = stats.psi(np.array([[50, 30, 20]]), np.array([[30, 30, 40]]))
    assert got[0] == pytest.approx(0.2407945, abs=1e-6)


def test_psi_floors_empty_reference_bin():
    # q = (1, 0 -> 1e-4), p = (.9, .1): -.1 ln(.9) + (.1 - 1e-4) ln(.1 / 1e-4)
    got = stats.psi(np.array([[100, 0]]), np.array([[90, 10]]))
    assert got[0] == pytest.approx(0.0105361 + 0.0999 * np.log(1000), abs=1e-6)


def test_js_distance_matches_scipy():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 50, size=(5, 12))
    cur = rng.integers(0, 50, size=(5, 12))
    cur[0, :3] = 0  # empty bins on one side
    got = stats.js_distance(ref, cur)
    want = [jensenshannon(r / r.sum(), c / c.sum(), base=2) for r, c in zip(ref, cur)]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_chi2_matches_scipy_contingency():
    rng = np.random.default_rng(2)
    ref = rng.integers(20, 400, size=(6, 8))
    cur = rng.integers(20, 400, size=(6, 8))
    stat, dof, p = stats.chi2_homogeneity(ref, cur)
    for i in range(6):
        want = chi2_contingency(np.vstack([ref[i], cur[i]]), correction=False)
        assert stat[i] == pytest.approx(want.statistic, rel=1e-9)
        assert dof[i] == want.dof
        assert p[i] == pytest.approx(want.pvalue, rel=1e-7)


def test_chi2_pools_sparse_cells_instead_of_exploding():
    # The two sparse bins pool into one, still too small, so the smallest other
    # bin joins them: two cells remain.
    ref = np.array([[500, 500, 1, 1]])
    cur = np.array([[50, 50, 1, 0]])
    stat, dof, p = stats.chi2_homogeneity(ref, cur)
    raw_stat, raw_dof, raw_p = stats.chi2_homogeneity(ref, cur, min_expected=0)
    assert (dof[0], raw_dof[0]) == (1, 3)
    assert p[0] > raw_p[0]


def test_binned_ks_equals_exact_ks_when_bins_hold_single_values():
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 10, size=5000).astype(float)
    cur = rng.integers(1, 11, size=1500).astype(float)  # shifted up by one
    engine = DriftEngine(fit_profile({"x": ref}))
    engine.observe({"x": cur}, len(cur))
    r = engine.evaluate()
    exact = ks_2samp(ref, cur, method="asymp")
    assert r.ks[0] == pytest.approx(exact.statistic, abs=1e-12)
    assert r.ks_pvalue[0] == pytest.approx(exact.pvalue, rel=1e-6, abs=1e-300)


def test_binned_ks_never_exceeds_exact_ks():
    rng = np.random.default_rng(4)
    ref = rng.normal(size=4000)
    cur = rng.normal(0.1, 1.1, size=3000)
    engine = DriftEngine(fit_profile({"x": ref}))
    engine.observe({"x": cur}, len(cur))
    d = engine.evaluate().ks[0]
    exact = ks_2samp(ref, cur).statistic
    assert 0.8 * exact <= d <= exact + 1e-12


def test_holm_and_bh_adjusted_pvalues():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted (.005,.01,.03,.04) x (4,3,2,1) = (.02,.03,.06,.04), running max.
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted x 4/(1,2,3,4) = (.02,.02,.04,.04), running min from the top.
    np.testing.assert_allclose(stats.benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])


def test_one_value_beyond_the_training_range_is_not_significant():
    # Below-range and above-range bins are empty in the reference; one window
    # value above the max must not count as evidence on its own.
    ref = np.array([[0] + [500] * 20 + [0, 0]])
    cur = np.array([[0] + [10] * 19 + [9] + [1, 0]])
    _, _, p = stats.chi2_homogeneity(ref, cur)
    assert p[0] > 0.5
