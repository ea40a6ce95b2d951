"""Sequential drift evidence: calibrated without drift however long it runs and however
often it is read, fast with drift, located at the change point, and honest about the
effect's size (a small sample's inflated PSI is not evidence for a band)."""

import math

import numpy as np
import pytest

from modelops_services.drift import DriftConfig, DriftEngine, fit_profile
from modelops_services.drift.sequential import EvidenceConfig, SequentialEvidence, coarse_groups

ALPHA = 0.05


def reference(rng, n=10_000):
    return {"x": rng.normal(size=n), "y": rng.normal(size=n),
            "c": rng.choice(["a", "b", "c", "d", "e"], p=[0.4, 0.3, 0.15, 0.1, 0.05], size=n).astype(object)}


def rows(rng, n, shift=0.0, new_category=0.0, missing=0.0):
    cols = reference(rng, n)
    cols["x"] = cols["x"] + shift
    if new_category:
        c = cols["c"].copy()
        c[rng.uniform(size=n) < new_category] = "never-seen"
        cols["c"] = c
    if missing:
        y = cols["y"].copy()
        y[rng.uniform(size=n) < missing] = np.nan
        cols["y"] = y
    return cols


def engine(seed=0, **config):
    rng = np.random.default_rng(seed)
    return DriftEngine(fit_profile(reference(rng)), DriftConfig(**config)), rng


def threshold(ev: SequentialEvidence, features: int = 3) -> float:
    """Log e-value for a Bonferroni-corrected alarm over the horizon's change points."""
    return math.log(ev.config.start_points * features / ALPHA)


def feed(eng, rng, blocks, per_block, **change):
    for _ in range(blocks):
        eng.observe(rows(rng, per_block, **change), per_block)
        eng.next_block()


def test_without_drift_evidence_does_not_pile_up_however_long_it_runs():
    # 100 rows/s for the whole 20-minute horizon: 120,000 rows against a reference of
    # 10,000, whose own sampling noise a naive test would soon call drift.
    eng, rng = engine()
    feed(eng, rng, 240, 500)
    report = eng.evidence.evaluate()
    assert report.blocks == 240 and report.rows.min() == 239 * 500  # the newest block is still empty
    assert (report.log_evidence < threshold(eng.evidence)).all(), report.log_evidence
    assert (report.band_evidence == 0).all() and (report.psi_lower < 0.02).all()


def test_false_alarms_stay_within_alpha_when_read_after_every_block():
    alarms = 0
    for seed in range(60):
        eng, rng = engine(seed)
        for _ in range(60):  # 5 minutes at 10 rows/s, read every 5 s
            eng.observe(rows(rng, 50), 50)
            report = eng.evidence.evaluate()
            if (report.band_evidence[0] >= threshold(eng.evidence)).any():
                alarms += 1
                break
            eng.next_block()
    assert alarms <= 3  # 5% of 60; in fact none


def test_a_one_sd_shift_reaches_the_fail_band_within_a_few_hundred_rows():
    eng, rng = engine(1)
    feed(eng, rng, 60, 50)  # five minutes of normal traffic first
    onset_rows = None
    for block in range(1, 41):
        eng.observe(rows(rng, 50, shift=1.0), 50)
        report = eng.evidence.evaluate()
        if report.band_evidence[1][0] >= threshold(eng.evidence):
            onset_rows = block * 50
            break
        eng.next_block()
    assert onset_rows is not None and onset_rows <= 300
    # The change point is found: the best segment holds the shifted rows, not the 3,000 before.
    assert report.segment_rows[0] <= onset_rows + 100
    assert 0.25 <= report.psi_lower[0] < 1.1  # the binned PSI of a 1 sd shift is about 1
    assert report.band_evidence[0][1] < threshold(eng.evidence)  # y did not move


def test_a_small_sample_inflated_psi_is_no_evidence_for_a_band():
    eng, rng = engine(2)
    eng.observe(rows(rng, 40), 40)
    report = eng.evaluate()
    assert report.psi[0] > 0.1  # 40 rows over 23 bins: the window's PSI is mostly bias
    assert report.evidence.psi_lower[0] < 0.1 and report.evidence.band_evidence[0][0] == 0


def widen(eng, rng, blocks, per_block, scale):
    for _ in range(blocks):
        cols = rows(rng, per_block)
        cols["x"] = cols["x"] * scale
        eng.observe(cols, per_block)
        eng.next_block()


@pytest.mark.parametrize("scale, warn", [(1.3, True), (1.2, False)])
def test_warn_is_read_on_the_estimate_and_fail_on_the_bound(scale, warn):
    # x's spread times 1.3 is a PSI of about 0.11, just over warn (0.1): a 95% bound
    # would need about 12,000 rows to clear it, the estimate a few thousand. Times 1.2
    # is about 0.05, under warn however many rows come.
    eng, rng = engine(6)
    feed(eng, rng, 10, 50)
    widen(eng, rng, 100, 50, scale)  # 5,000 rows since the change
    report = eng.evidence.evaluate()
    limit = threshold(eng.evidence)
    assert report.log_evidence[0] >= limit  # a change either way
    assert bool(report.band_evidence[0][0] >= limit) is warn
    assert report.band_evidence[1][0] == 0  # far under fail
    assert report.psi_lower[0] < 0.1 <= report.psi_estimate[0] if warn else report.psi_estimate[0] < 0.1


def test_new_categories_and_missing_values_are_found():
    eng, rng = engine(3)
    feed(eng, rng, 20, 50)
    for _ in range(20):
        eng.observe(rows(rng, 50, new_category=0.3, missing=0.3), 50)
        eng.next_block()
    report = eng.evidence.evaluate()
    names = [s.name for s in eng.specs]
    limit = threshold(eng.evidence)
    assert report.band_evidence[0][names.index("c")] >= limit
    assert report.band_evidence[0][names.index("y")] >= limit
    assert report.band_evidence[0][names.index("x")] < limit


def test_the_ring_keeps_only_the_horizon():
    eng, rng = engine(4, block_seconds=5.0, horizon_seconds=50.0)
    assert eng.evidence.config.start_points == 10
    feed(eng, rng, 25, 20)
    report = eng.evidence.evaluate()
    assert report.blocks == 10 and report.rows[0] == 9 * 20  # the newest block is empty


def test_the_report_and_document_carry_the_evidence():
    eng, rng = engine(5)
    feed(eng, rng, 3, 30)
    doc = eng.evaluate().to_dict()
    assert doc["sequential"] == {"start_points": 240, "blocks": 4, "block_seconds": 5.0, "horizon_seconds": 1200.0,
                                 "rows": 90}
    ev = doc["features"][0]["evidence"]
    assert set(ev) == {"nats", "segment_rows", "psi_lower", "psi_estimate", "warn", "alarm"}
    assert ev["psi_estimate"] >= ev["psi_lower"]
    assert ev["warn"] >= ev["alarm"] >= 0  # evidence for the higher band is never more


def test_coarse_groups_merge_the_ordered_bins_only():
    rng = np.random.default_rng(6)
    prof = fit_profile(reference(rng))
    x = coarse_groups(prof.features[0])
    assert len(x) == prof.features[0].n_bins and x[0] == 0 and list(x[-2:]) == [5, 6]
    assert sorted(set(x[1:-2])) == [1, 2, 3, 4]
    c = coarse_groups(prof.features[2])
    assert list(c) == [0, 1, 2, 3, 3, 4, 5, 6]  # a, b, c alone; d and e together; OTHER, UNSEEN, MISSING


@pytest.mark.parametrize("bad", [dict(block_seconds=0), dict(horizon_seconds=1, block_seconds=5),
                                 dict(bands=(float("nan"),)), dict(band_z=(0.0,)),
                                 dict(band_z=(0.0, -1.0))])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        EvidenceConfig(**bad)
