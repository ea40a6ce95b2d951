"""The candidate's predictions against the production model's on the same period's
traffic: the operator's pure-Python evidence equals the monitor's numpy one, a model
that predicts differently fails, one that predicts alike passes, and the check waits
for rows only to pass."""

import math

import numpy as np
import pytest

from modelops_operator.analysis import Result
from modelops_operator.analysis.champion import CHECK, ChampionSettings, compare, prediction_check
from modelops_operator.analysis.checks import Settings, TrackNumbers, evaluate, from_drift_json, merge_pods
from modelops_services.drift.profile import CategoricalSpec
from modelops_services.drift.sequential import Resolution

from .test_analysis_checks import analysis


def numpy_evidence(candidate, stable):
    """The monitor's implementation at the profile's bins, with the stable as the reference."""
    spec = CategoricalSpec("p", [str(i) for i in range(len(stable) - 3)], np.asarray(stable, dtype=np.int64))
    res = Resolution([np.arange(spec.n_bins)], np.zeros(1, dtype=np.int64), spec.n_bins,
                     np.asarray(stable, dtype=np.float64))
    c = np.asarray(candidate, dtype=np.float64)[None, None, :]
    n = c.sum(axis=-1)
    return float(res.log_evidence(c, n)[0, 0]), float(res.psi_lower(c, n)[0, 0])


@pytest.mark.parametrize("seed", range(6))
def test_the_operator_and_the_monitor_compute_the_same_evidence(seed):
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(4, 24))
    p = rng.dirichlet(np.ones(bins))
    stable = rng.multinomial(int(rng.integers(50, 5000)), p)
    shifted = rng.dirichlet(np.ones(bins)) if seed % 2 else p
    candidate = rng.multinomial(int(rng.integers(20, 2000)), shifted)
    ours = compare(candidate.tolist(), stable.tolist())
    log_e, lower = numpy_evidence(candidate, stable)
    assert ours.log_evidence == pytest.approx(max(log_e, 0.0), rel=1e-9, abs=1e-9)
    assert ours.psi_lower == pytest.approx(lower, rel=1e-9, abs=1e-12)


def test_alike_predictions_give_no_evidence_and_different_ones_do():
    rng = np.random.default_rng(1)
    p = np.array([0.7, 0.2, 0.1, 0.0, 0.0])
    alike = compare(rng.multinomial(2000, p).tolist(), rng.multinomial(3000, p).tolist())
    assert alike.log_evidence < 3 and alike.psi_lower < 0.05
    other = compare(rng.multinomial(600, [0.3, 0.3, 0.4, 0, 0]).tolist(), rng.multinomial(3000, p).tolist())
    assert other.log_evidence > 20 and other.psi_lower > 0.25


def labelled(counts):
    return dict(zip(("0", "1", "__OTHER__"), counts))


def tracks(cand_counts, stable_counts):
    return (TrackNumbers(samples=1000, requests=1000, error_rate=0.0, latency_p99=0.01,
                         predictions={"__prediction_label__": labelled(cand_counts)}),
            TrackNumbers(samples=1000, requests=1000, error_rate=0.0, latency_p99=0.01,
                         predictions={"__prediction_label__": labelled(stable_counts)}))


def check(cand, stable, strategy="Canary", **champion):
    a = analysis(drift={"enabled": False}, champion=champion)
    return next((c for c in evaluate(cand, stable, a, strategy) if c.name == CHECK), None)


def test_a_candidate_that_predicts_differently_fails_and_one_alike_passes():
    differs = check(*tracks([150, 450, 0], [2100, 900, 0]))
    assert differs.result is Result.FAIL and "predicts differently from the production model" in differs.message
    assert differs.value >= 0.25 and differs.progress >= 1 and differs.threshold == "PSI to the stable < 0.25"
    alike = check(*tracks([420, 180, 0], [2100, 900, 0]))
    assert alike.result is Result.PASS and alike.progress < 1
    relaxed = check(*tracks([150, 450, 0], [2100, 900, 0]), maxPredictionPsi=2.0)
    assert relaxed.result is Result.PASS


def test_it_waits_for_rows_only_to_pass():
    few = check(*tracks([70, 30, 0], [2100, 900, 0]))
    assert few.result is Result.INCONCLUSIVE and "minSampleSize 200" in few.message
    early_difference = check(*tracks([10, 140, 0], [2100, 900, 0]))
    assert early_difference.result is Result.FAIL and early_difference.samples == 150


def test_only_strategies_whose_tracks_share_one_period_compare():
    cand, stable = tracks([150, 450, 0], [2100, 900, 0])
    assert check(cand, stable, "BlueGreen") is None and check(cand, stable, "ABTest") is None
    assert check(cand, stable, "Shadow").result is Result.FAIL
    assert check(cand, stable, enabled=False) is None
    # A stable that served nothing over the period (no pods left at a step): nothing to compare.
    assert check(cand, None) is None
    assert check(cand, tracks([150, 450, 0], [0, 0, 0])[1]) is None
    silent = check(TrackNumbers(samples=1000, requests=1000, error_rate=0.0, latency_p99=0.01), stable)
    assert silent.result is Result.INCONCLUSIVE and "same period" in silent.message


def test_prediction_counts_come_from_both_providers_documents_and_add_up_over_pods():
    doc = {"drift": {"window_rows": 10, "features": []},
           "predictions_since": {"since": 1.0, "rows": 10, "features": {"__prediction_label__": labelled([6, 4, 0])}}}
    one = from_drift_json(doc)
    assert one.predictions == {"__prediction_label__": {"0": 6.0, "1": 4.0, "__OTHER__": 0.0}}
    merged = merge_pods([one, from_drift_json(doc)])
    assert merged.predictions == {"__prediction_label__": {"0": 12.0, "1": 8.0, "__OTHER__": 0.0}}


def test_only_bins_of_the_same_label_are_compared():
    # Another model's profile bins its scores at other edges: those are not compared,
    # while the predicted classes are, whatever order each profile lists them in.
    cand = {"__prediction__": {"[0,0.3)": 500.0, "[0.3,1)": 100.0},
            "__prediction_label__": {"1": 450.0, "0": 150.0}}
    stable = {"__prediction__": {"[0,0.5)": 2000.0, "[0.5,1)": 1000.0},
              "__prediction_label__": {"0": 2100.0, "1": 900.0}}
    s, c = Settings.from_analysis(analysis()), ChampionSettings(True, 0.25)
    check = prediction_check(cand, stable, s, c)
    assert check.result is Result.FAIL and "__prediction_label__" in check.message
    assert prediction_check({"__prediction__": cand["__prediction__"]}, {"__prediction__": stable["__prediction__"]},
                            s, c) is None


def test_a_bad_band_names_the_field():
    from modelops_operator.analysis.checks import SettingsError

    with pytest.raises(SettingsError, match=r"spec\.analysis\.champion\.maxPredictionPsi"):
        ChampionSettings.from_analysis({"champion": {"maxPredictionPsi": -1}})
    assert math.isclose(ChampionSettings.from_analysis({}).max_prediction_psi, 0.25)
    assert Settings.from_analysis(analysis()).significance == 0.05
    assert prediction_check({}, {"__prediction_label__": {"0": 5.0}}, Settings.from_analysis(analysis()),
                            ChampionSettings(True, 0.25)).result is Result.INCONCLUSIVE


# --- a shadow's answers against the stable's, matched by request -------------------------

from modelops_operator.analysis.champion import (AGREEMENT, Answers, agreement_check,  # noqa: E402
                                                 disagreement_evidence, mean_lower_bound)


def agreement(answers, **champion):
    return agreement_check(answers, Settings.from_analysis(analysis()),
                           ChampionSettings.from_analysis({"champion": champion}))


def test_the_disagreement_test_keeps_its_level_however_often_it_is_read():
    # At the boundary rate itself (the hardest null), read after every 20 answers.
    rng = np.random.default_rng(3)
    crossings = 0
    for _ in range(400):
        differ = np.cumsum(rng.uniform(size=2000) < 0.2)
        reads = range(20, 2001, 20)
        crossings += any(disagreement_evidence(int(differ[n - 1]), n, 0.2) >= math.log(1 / 0.05) for n in reads)
    assert crossings <= 0.05 * 400  # upper bound; Ville's inequality


def test_a_shadow_that_disagrees_on_a_third_fails_and_one_that_agrees_passes():
    rng = np.random.default_rng(4)
    stable = rng.integers(0, 2, size=600)
    third = [(int(s) if rng.uniform() > 1 / 3 else 1 - int(s), int(s)) for s in stable]
    bad = agreement(Answers("classification", third, keys=600))
    assert bad.name == AGREEMENT and bad.result is Result.FAIL and bad.progress >= 1
    assert "maxDisagreement" in bad.message and 0.28 < bad.value < 0.38
    close = [(int(s) if rng.uniform() > 0.05 else 1 - int(s), int(s)) for s in stable]
    good = agreement(Answers("classification", close, keys=600))
    assert good.result is Result.PASS and good.value < 0.1 and good.progress < 1
    assert agreement(Answers("classification", close[:150], keys=150)).result is Result.INCONCLUSIVE
    assert agreement(Answers("classification", third, keys=600), maxDisagreement=0.5).result is Result.PASS


def test_a_regressor_is_compared_relative_to_the_stable_spread():
    rng = np.random.default_rng(5)
    s = rng.normal(100, 10, size=800)
    near = agreement(Answers("regression", list(zip((s + rng.normal(0, 0.5, size=800)).tolist(), s.tolist()))))
    assert near.result is Result.PASS and near.value < 0.1
    far = agreement(Answers("regression", list(zip((s + rng.normal(0, 8, size=800)).tolist(), s.tolist()))))
    assert far.result is Result.FAIL and far.value > 0.5
    mean, lower = mean_lower_bound([1.0] * 10 + [0.0] * 10, 0.05)
    assert mean == 0.5 and lower < 0.5


def test_no_matched_answers_is_inconclusive_and_says_why():
    none = agreement(Answers("classification", [], keys=300))
    assert none.result is Result.INCONCLUSIVE and "x-request-id" in none.message
    broken = agreement(Answers(None, [], "2 monitors did not answer"))
    assert broken.result is Result.INCONCLUSIVE and "did not answer" in broken.message
    assert agreement(Answers("classification", [(1, 1)] * 300), enabled=False) is None
