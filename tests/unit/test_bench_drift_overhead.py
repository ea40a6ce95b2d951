"""The overhead benchmark's p99 claim: pooled percentiles and their paired bootstrap interval."""

import numpy as np
import pytest

from bench.drift.overhead import pooled_quantile_ci, verdict


def phases(seed: int, pairs: int = 20, n: int = 1000, shift_on: float = 0.0):
    """Latencies (ms) of `pairs` off/on phase pairs: a heavy right tail, and a load level per
    pair that both phases of the pair share (as the background load on a shared machine)."""
    rng = np.random.default_rng(seed)
    off, on = [], []
    for _ in range(pairs):
        load = rng.uniform(0.8, 1.5)
        off.append(load * rng.lognormal(np.log(4.0), 0.5, n))
        on.append(load * rng.lognormal(np.log(4.0), 0.5, n) + shift_on)
    return off, on


def test_identical_arms_give_an_interval_around_zero():
    off, on = phases(1)
    ci = pooled_quantile_ci(off, on, 99.0, resamples=2000, seed=0)
    assert ci["ci_low_ms"] < 0 < ci["ci_high_ms"]
    assert ci["ci_low_ms"] <= ci["delta_ms"] <= ci["ci_high_ms"]
    assert ci["samples_off"] == ci["samples_on"] == 20_000
    assert ci["ci_high_ms"] - ci["ci_low_ms"] < 4.0  # not so wide that it says nothing


def test_a_5ms_shift_gives_an_interval_around_5ms():
    off, on = phases(2, shift_on=5.0)
    ci = pooled_quantile_ci(off, on, 99.0, resamples=2000, seed=0)
    assert ci["ci_low_ms"] < 5.0 < ci["ci_high_ms"]
    assert ci["ci_low_ms"] > 3.0 and ci["ci_high_ms"] < 7.0
    assert verdict(ci, 1.0) == "not met"


def test_pooled_percentiles_and_seed():
    off = [np.arange(1, 101, dtype=float)] * 3
    on = [np.arange(1, 101, dtype=float) + 2.0] * 3
    ci = pooled_quantile_ci(off, on, 50.0, resamples=200, seed=3)
    assert ci["off_ms"] == pytest.approx(50.5) and ci["on_ms"] == pytest.approx(52.5)
    assert ci["ci_low_ms"] == pytest.approx(2.0) and ci["ci_high_ms"] == pytest.approx(2.0)
    a = pooled_quantile_ci(*phases(4), resamples=300, seed=7)
    b = pooled_quantile_ci(*phases(4), resamples=300, seed=7)
    assert (a["ci_low_ms"], a["ci_high_ms"]) == (b["ci_low_ms"], b["ci_high_ms"])


def test_resamples_pairs_not_requests():
    # One pair's on phase had a burst: 5% of its requests at 80 ms. Pooled over 20 pairs the
    # on p99 is pulled up, but whether that pair is drawn decides it, so the interval must
    # reach from about zero to well above; resampling single requests would hide this.
    off, on = phases(5)
    on[0] = on[0].copy()
    on[0][:50] = 80.0
    ci = pooled_quantile_ci(off, on, 99.0, resamples=2000, seed=0)
    assert ci["ci_low_ms"] < 1.0 and ci["ci_high_ms"] > 4.0
    assert verdict(ci, 1.0) == "undecided"


def test_strata_keep_the_order_balance():
    # Whichever arm runs first in a pair gets a slower tail; the design has ten pairs of each
    # order, so the difference is zero. Drawing pairs regardless of order mixes in draws with
    # more of one order, which the design never has; resampling within each order does not.
    off, on = phases(6)
    for k in range(20):
        slow = off[k] if k % 2 == 0 else on[k]
        slow[:30] += 25.0
    first = ["off" if k % 2 == 0 else "on" for k in range(20)]
    plain = pooled_quantile_ci(off, on, 99.0, resamples=2000, seed=0)
    strat = pooled_quantile_ci(off, on, 99.0, resamples=2000, seed=0, strata=first)
    assert strat["delta_ms"] == plain["delta_ms"] and strat["stratified"] and not plain["stratified"]
    assert plain["ci_low_ms"] < 0 < plain["ci_high_ms"]
    assert strat["ci_low_ms"] <= strat["delta_ms"] <= strat["ci_high_ms"]
    assert strat["ci_high_ms"] - strat["ci_low_ms"] < 0.3 * (plain["ci_high_ms"] - plain["ci_low_ms"])
    with pytest.raises(ValueError):
        pooled_quantile_ci(off, on, 99.0, strata=first[:-1])


def test_verdict():
    assert verdict({"ci_low_ms": -3.0, "ci_high_ms": 1.0}, 1.0) == "met"
    assert verdict({"ci_low_ms": -3.0, "ci_high_ms": 1.2}, 1.0) == "undecided"
    assert verdict({"ci_low_ms": 1.1, "ci_high_ms": 4.0}, 1.0) == "not met"


def test_mismatched_pairs_are_refused():
    with pytest.raises(ValueError):
        pooled_quantile_ci([np.ones(3)], [], 99.0)
