"""The monitor's bookkeeping: counts, drops, malformed input, feedback."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops_services.drift import fit_profile
from modelops_services.monitor.config import MonitorConfig, parse_duration
from modelops_services.monitor.exposition import make_registry
from modelops_services.monitor.state import MonitorState
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def state():
    rng = np.random.default_rng(0)
    n = 5000
    prof = fit_profile(
        {"x": rng.normal(size=n), "c": rng.choice(["a", "b"], size=n).astype(object)},
        prediction={"__prediction__": rng.uniform(size=n), "__prediction_label__": rng.choice(["0", "1"], size=n).astype(object)},
        kinds={"__prediction_label__": "categorical"},
        info={"task": "classification", "positive_class": 1},
    )
    cfg = MonitorConfig(profile_path="-", labels={"modeldeployment": "m", "namespace": "ns", "track": "canary", "revision": "r"})
    return MonitorState(cfg, prof)


def record(i, status=200, x=0.1):
    return {"id": f"r{i}", "status": status, "latency_ms": 2.0, "features": [{"x": x, "c": "a"}],
            "predictions": [1], "scores": [0.8], "ids": [f"r{i}-0"]}


def test_counts_requests_rows_and_errors(state):
    state.observe({"records": [record(i) for i in range(8)] + [record(8, 500), record(9, 400)], "dropped": 3})
    h = state.window_health()
    assert state.report().n == 8
    assert h["requests"] == 10 and h["error_rate"] == pytest.approx(0.1)
    assert state.requests_total == {"2xx": 8, "4xx": 1, "5xx": 1}
    assert state.dropped == 3
    assert h["latency_p50_seconds"] == pytest.approx(0.002, rel=0.05)


def test_malformed_records_are_counted_and_the_rest_kept(state):
    bad = [{"status": 200}, {"status": "x", "latency_ms": 1}, 7, {**record(1), "predictions": []}]
    accepted, malformed = state.observe({"records": [record(0), *bad]})
    assert (accepted, malformed) == (1, 4)
    assert state.malformed == 4 and state.report().n == 1
    assert state.observe("garbage") == (0, 1)


def test_feedback_matches_by_id(state):
    state.observe({"records": [record(i) for i in range(4)]})
    assert state.add_feedback({"labels": [{"id": "r0-0", "label": 1}, {"id": "r1-0", "label": 0},
                                          {"id": "nope", "label": 1}, {"label": 1}]}) == (2, 1, 1)
    m = state.quality.metrics()
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 1.0


def test_metrics_use_only_bounded_labels(state):
    state.observe({"records": [record(i, x="not-a-number") for i in range(3)]})
    text = generate_latest(make_registry(state)).decode()
    allowed = {"modeldeployment", "namespace", "track", "revision", "feature", "method", "status", "band", "bin", "le"}
    fams = list(text_string_to_metric_families(text))
    assert all(f.name.startswith("modelops_") for f in fams)
    for f in fams:
        for s in f.samples:
            assert set(s.labels) <= allowed, s
            assert s.labels.get("feature", "x") in {"x", "c", "__prediction__", "__prediction_label__"}
    assert "not-a-number" not in text


def test_parse_duration():
    assert parse_duration("5m") == 300 and parse_duration("1h30m") == 5400 and parse_duration("45") == 45
    with pytest.raises(ValueError):
        parse_duration("5 minutes")


anything = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=6), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(anything, anything)
def test_any_input_is_absorbed(state, obs, fb):
    state.observe(obs)
    state.observe({"records": obs if isinstance(obs, list) else [obs]})
    state.add_feedback(fb)
    state.snapshot()
    generate_latest(make_registry(state))


def test_prediction_counts_since_a_time_and_in_total(state):
    state.observe({"records": [record(i) for i in range(5)]})
    state.next_block()
    mark = state.engine.evidence.started[state.engine.evidence.head]
    state.observe({"records": [record(i) for i in range(5, 8)]})
    since = state.predictions_since(mark)
    assert since["rows"] == 3 and set(since["features"]) == {"__prediction__", "__prediction_label__"}
    assert sum(since["features"]["__prediction_label__"].values()) == 3
    assert since["features"]["__prediction_label__"]["1"] == 3  # by the class' name
    assert sum(state.predictions_since(0.0)["features"]["__prediction_label__"].values()) == 8
    assert state.predictions_since(mark + 3600)["rows"] == 0
    assert sum(state.prediction_totals()["__prediction__"].values()) == 8
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(make_registry(state)).decode())}
    samples = [s for s in fams["modelops_prediction_bin"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in samples if s.labels["feature"] == "__prediction_label__") == 8


def test_drift_since_must_be_a_time():
    import asyncio
    import json

    from aiohttp.test_utils import TestClient, TestServer

    from modelops_services.monitor.app import make_app

    rng = np.random.default_rng(0)
    prof = fit_profile({"x": rng.normal(size=500)}, prediction={"__prediction__": rng.uniform(size=500)})
    app = make_app(MonitorConfig(profile_path="-"), prof)

    async def run():
        async with TestClient(TestServer(app)) as client:
            bad = await client.get("/drift", params={"since": "yesterday"})
            good = await client.get("/drift", params={"since": "0"})
            plain = await client.get("/drift")
            return bad.status, await bad.json(), good.status, json.loads(await good.text()), await plain.json()

    bad_status, bad_body, good_status, good, plain = asyncio.run(run())
    assert bad_status == 400 and "since" in bad_body["error"]
    assert good_status == 200 and good["predictions_since"]["rows"] == 0
    assert "predictions_since" not in plain and plain["drift"]["sequential"]["start_points"] == 240


def test_answers_by_request_key_can_be_listed_and_looked_up():
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from modelops_services.monitor.app import make_app

    rng = np.random.default_rng(0)
    prof = fit_profile({"x": rng.normal(size=500)}, prediction={"__prediction__": rng.uniform(size=500)})
    app = make_app(MonitorConfig(profile_path="-"), prof)
    keyed = [{"id": f"r{i}", "status": 200, "latency_ms": 1.0, "features": [{"x": 0.1}], "predictions": [i % 2],
              "key": f"req-{i}"} for i in range(5)]
    bad_key = dict(keyed[0], key="has spaces")

    async def run():
        async with TestClient(TestServer(app)) as client:
            observed = await (await client.post("/observe", json={"records": [*keyed, bad_key]})).json()
            listed = await (await client.get("/predictions", params={"since": "0"})).json()
            posted = await (await client.post("/predictions/lookup", json={"keys": ["req-1", "nope"]})).json()
            got = await (await client.get("/predictions/lookup", params=[("key", "req-2"), ("key", "req-3")])).json()
            bad = await client.post("/predictions/lookup", json={"keys": "req-1"})
            no_since = await client.get("/predictions")
            return observed, listed, posted, got, bad.status, no_since.status

    observed, listed, posted, got, bad, no_since = asyncio.run(run())
    assert observed == {"accepted": 5, "malformed": 1}
    assert list(listed["predictions"]) == [f"req-{i}" for i in range(5)] and listed["task"] == "classification"
    assert posted["predictions"] == {"req-1": [1]} and got["predictions"] == {"req-2": [0], "req-3": [1]}
    assert bad == 400 and no_since == 400


def test_recent_answers_are_bounded_and_the_newest_win():
    from modelops_services.monitor.recent import RecentPredictions

    recent = RecentPredictions(max_size=3)
    for i in range(5):
        recent.put(f"k{i}", float(i), [i])
    recent.put("k3", 9.0, ["again"])  # a key seen again moves to the newest place
    assert len(recent) == 3 and recent.lookup(["k0", "k1", "k2"]) == {"k2": [2]}
    assert recent.since(4.0) == {"k4": [4], "k3": ["again"]}
    assert recent.since(0.0, limit=1) == {"k3": ["again"]}
