"""Drift decisions a user sees: shifts are caught, noise is not."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelops_services.drift import DriftConfig, DriftEngine, Profile, fit_profile

N_REF = 20_000


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(10)
    cols = {
        "tenure": rng.gamma(2.0, 12.0, size=N_REF),
        "charges": rng.normal(70, 20, size=N_REF),
        "plan": rng.choice(["basic", "plus", "pro"], p=[0.5, 0.3, 0.2], size=N_REF).astype(object),
    }
    return cols, fit_profile(cols, prediction={"__prediction__": rng.uniform(size=N_REF)})


def sample(rng, n, shift=0.0, missing=0.0, new_cat=0.0):
    charges = rng.normal(70 + shift * 20, 20, size=n)
    charges[rng.uniform(size=n) < missing] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], p=[0.5, 0.3, 0.2], size=n).astype(object)
    plan[rng.uniform(size=n) < new_cat] = "enterprise"
    return {"tenure": rng.gamma(2.0, 12.0, size=n), "charges": charges, "plan": plan,
            "__prediction__": rng.uniform(size=n)}


def report(profile, cols, config=None):
    engine = DriftEngine(profile, config)
    n = len(cols["tenure"])
    engine.observe(cols, n)
    return engine.evaluate()


def by_name(r, name):
    return r.to_dict()["features"][r.names.index(name)]


def test_same_distribution_is_not_drift(reference):
    _, profile = reference
    r = report(profile, sample(np.random.default_rng(11), 5000))
    assert not r.drifted.any()
    assert r.drifted_feature_share == 0.0


def test_mean_shift_is_drift_on_that_feature_only(reference):
    _, profile = reference
    r = report(profile, sample(np.random.default_rng(12), 5000, shift=1.0))
    assert r.to_dict()["drifted_features"] == ["charges"]
    assert by_name(r, "charges")["level"] == "alarm"
    assert r.drifted_feature_share == pytest.approx(1 / 3)


def test_missing_rate_change_is_drift_and_reported(reference):
    _, profile = reference
    r = report(profile, sample(np.random.default_rng(13), 2000, missing=0.2))
    f = by_name(r, "charges")
    assert f["drifted"]
    assert f["missing_rate"] == pytest.approx(0.2, abs=0.03)


def test_new_category_shows_as_unseen(reference):
    _, profile = reference
    r = report(profile, sample(np.random.default_rng(14), 2000, new_cat=0.05))
    f = by_name(r, "plan")
    assert f["drifted"]
    assert f["unseen_rate"] == pytest.approx(0.05, abs=0.015)


def test_small_window_noise_over_psi_band_is_not_drift(reference):
    # 40 rows in 20 bins: PSI is large by chance alone; significance stops it.
    _, profile = reference
    r = report(profile, sample(np.random.default_rng(15), 40))
    assert r.psi[r.names.index("charges")] > 0.1
    assert not r.drifted.any()


def test_significant_but_tiny_shift_is_not_drift(reference):
    _, profile = reference
    r = report(profile, sample(np.random.default_rng(16), 200_000, shift=0.05))
    f = by_name(r, "charges")
    assert f["pvalue_adjusted"] < 1e-6
    assert f["psi"] < 0.1
    assert not f["drifted"]


def test_alarm_level_decision_ignores_warn_band(reference):
    _, profile = reference
    cols = sample(np.random.default_rng(17), 20_000, shift=0.4)  # PSI ~0.16: warn only
    warn = report(profile, cols)
    alarm = report(profile, cols, DriftConfig(decision_level="alarm"))
    i = warn.names.index("charges")
    assert 0.1 < warn.psi[i] < 0.25
    assert warn.drifted[i] and not alarm.drifted[i]


def test_quantile_bins_are_robust_to_outliers(reference):
    _, profile = reference
    cols = sample(np.random.default_rng(18), 10_000)
    cols["charges"][:100] = 1e6  # 1% extreme outliers
    r = report(profile, cols)
    assert r.psi[r.names.index("charges")] < 0.05


def test_window_forgets_expired_subwindows(reference):
    _, profile = reference
    rng = np.random.default_rng(19)
    engine = DriftEngine(profile, n_sub=4)
    engine.observe(sample(rng, 3000, shift=1.0), 3000)
    assert engine.evaluate().any_feature_drifted
    for _ in range(4):
        engine.rotate()
        engine.observe(sample(rng, 1000), 1000)
    r = engine.evaluate()
    assert r.n == 4000
    assert not r.any_feature_drifted


def test_prediction_drift_is_reported_apart_from_features(reference):
    _, profile = reference
    cols = sample(np.random.default_rng(20), 3000)
    cols["__prediction__"] = np.random.default_rng(21).beta(5, 2, size=3000)
    d = report(profile, cols).to_dict()
    assert d["prediction_drifted"]
    assert d["drifted_features"] == []


def test_profile_roundtrip_keeps_hash_and_rejects_tampering(reference, tmp_path):
    _, profile = reference
    path = tmp_path / "profile.json"
    profile.save(str(path))
    loaded = Profile.load(str(path))
    assert loaded.hash == profile.hash
    d = json.loads(path.read_text())
    d["features"][0]["counts"][0] += 1
    with pytest.raises(ValueError, match="hash mismatch"):
        Profile.from_dict(d)


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.lists(st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=1, max_size=30))
def test_any_values_bin_without_error(reference, rows):
    _, profile = reference
    engine = DriftEngine(profile)
    cols = {"charges": [a for a, _ in rows], "plan": [b for _, b in rows]}
    engine.observe(cols, len(rows))
    r = engine.evaluate()
    assert r.n == len(rows)
    assert np.all(r.missing_rate[~np.isnan(r.missing_rate)] <= 1.0)


def test_small_windows_keep_the_family_wise_false_alarm_rate():
    # 100 windows of 200 rows, 6 features of three families, no change: Holm at
    # alpha 0.05 should flag any feature in about 5 windows or fewer.
    alarms = 0
    for s in range(100):
        rng = np.random.default_rng([7, s])
        def draw(n):
            return {"g": rng.normal(size=n), "g2": rng.normal(size=n), "l": rng.lognormal(size=n),
                    "l2": rng.lognormal(size=n), "z": (rng.zipf(1.6, size=n) % 40).astype(str).astype(object),
                    "z2": (rng.zipf(1.4, size=n) % 40).astype(str).astype(object)}
        engine = DriftEngine(fit_profile(draw(5000)))
        window = draw(200)
        alarms += engine.evaluate(engine.count(window, 200), 200).any_feature_drifted
    assert alarms <= 8
