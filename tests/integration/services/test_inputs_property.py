"""Property-based inputs against the real services: no 5xx, no crash."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract", "payment_method",
            "internet_service", "paperless_billing"]

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                           max_leaves=12)
rows = st.lists(st.dictionaries(st.sampled_from([*FEATURES, "extra"]), json_values, max_size=9), max_size=4)
bodies = st.one_of(json_values, st.fixed_dictionaries({"rows": rows}), st.fixed_dictionaries({"rows": json_values}))
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


def test_model_server_answers_any_json_without_5xx(models_dir, start):
    _, server = start.server(models_dir / "churn-sklearn-v1", None)
    client = httpx.Client(base_url=server, timeout=30)

    @SETTINGS
    @given(bodies)
    def check(body):
        r = client.post("/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (body, r.text)

    check()
    r = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code < 500
    assert client.get("/readyz").status_code == 200


def test_monitor_survives_any_json_and_counts_it(models_dir, start):
    _, monitor = start.monitor(models_dir / "churn-sklearn-v1" / "profile.json")
    client = httpx.Client(base_url=monitor, timeout=30)
    record = st.fixed_dictionaries(
        {"status": st.integers(0, 700) | json_values, "latency_ms": st.floats(allow_nan=False) | json_values,
         "features": st.lists(st.dictionaries(st.sampled_from(FEATURES), json_values), max_size=3) | json_values,
         "predictions": st.lists(json_values, max_size=3) | json_values,
         "ids": st.lists(st.text(max_size=4), max_size=3) | json_values},
    )
    observe = st.one_of(json_values, st.fixed_dictionaries({"records": st.lists(record, max_size=4)}))

    @SETTINGS
    @given(observe, json_values)
    def check(obs, fb):
        assert client.post("/observe", content=json.dumps(obs)).status_code < 500
        assert client.post("/feedback", content=json.dumps(fb)).status_code < 500

    check()
    assert client.post("/observe", content=b"\xff\xfe").status_code == 400
    assert client.get("/healthz").status_code == 200
    assert client.get("/drift").status_code == 200
    assert "modelops_malformed_observations_total" in client.get("/metrics").text
