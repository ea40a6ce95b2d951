"""The model server and the monitor as real processes, talking HTTP."""

from __future__ import annotations

import asyncio
import math
import signal
import threading

import httpx
from prometheus_client.parser import text_string_to_metric_families

from churn_data import LABEL, customers, shift
from traffic import replay, to_rows

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract", "payment_method",
            "internet_service", "paperless_billing"]


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: dict, name: str, **labels: str) -> float:
    hits = [v for (n, ls), v in m.items() if n == name and set(labels.items()) <= ls]
    assert len(hits) == 1, f"{name} {labels}: {len(hits)} series"
    return hits[0]


def send(server: str, df, feedback: str | None = None, concurrency: int = 4) -> dict:
    return asyncio.run(replay(server, to_rows(df), df[LABEL].tolist(), batch=10, concurrency=concurrency,
                              feedback=feedback))


def wait_rows(monitor: str, rows: int) -> dict:
    """Forwarding is asynchronous: wait until the monitor holds the rows."""
    for _ in range(200):
        d = httpx.get(monitor + "/drift", timeout=10).json()
        if d["window"]["rows"] >= rows:
            return d
        threading.Event().wait(0.1)
    raise AssertionError(f"monitor has {d['window']['rows']} rows, want {rows}")


def test_normal_traffic_is_quiet_then_shifted_traffic_drifts(models_dir, start):
    _, monitor = start.monitor(models_dir / "churn-sklearn-v1" / "profile.json")
    _, server = start.server(models_dir / "churn-sklearn-v1", monitor)

    stats = send(server, customers(2000, seed=101))
    assert stats["ok"] == stats["requests"] == 200
    wait_rows(monitor, 2000)
    # Ground truth arrives later, by prediction id.
    r = httpx.post(monitor + "/feedback", json={"labels": stats["labels"]})
    assert r.json() == {"matched": 2000, "unmatched": 0, "malformed": 0, "unverified": 0}
    m = scrape(monitor)
    base = {"modeldeployment": "churn", "namespace": "ml", "track": "canary", "revision": "r1"}
    assert value(m, "modelops_window_samples", **base) == 2000
    assert value(m, "modelops_drifted_feature_share", **base) == 0
    for f in FEATURES:
        assert value(m, "modelops_feature_drifted", feature=f) == 0
    assert value(m, "modelops_requests_total", status="2xx") == 200
    assert value(m, "modelops_error_rate") == 0
    assert value(m, "modelops_request_latency_seconds_count") == 200
    assert 0.65 < value(m, "modelops_model_quality", method="accuracy") < 0.85
    assert 0.7 < value(m, "modelops_model_quality", method="roc_auc") < 0.9
    assert value(m, "modelops_feedback_total", status="matched") == 2000

    shifted = shift(customers(4000, seed=102), "mean", "monthly_charges", 1.0)
    shifted = shift(shifted, "missing", "tenure_months", 0.3, seed=5)
    send(server, shifted)
    wait_rows(monitor, 6000)
    m = scrape(monitor)
    assert value(m, "modelops_feature_drifted", feature="monthly_charges") == 1
    assert value(m, "modelops_feature_drifted", feature="tenure_months") == 1
    assert value(m, "modelops_feature_drifted", feature="contract") == 0
    assert 0.15 < value(m, "modelops_feature_missing_rate", feature="tenure_months") < 0.25
    assert value(m, "modelops_feature_drift_score", feature="monthly_charges", method="psi") > 0.25
    assert value(m, "modelops_drifted_feature_share") == 2 / 7
    # The sequential evidence that the shifted feature reached the fail band is far past an
    # alarm's threshold (log of change points x features / alpha); an unshifted one has none.
    alarm = math.log(value(m, "modelops_drift_change_points") * 7 / 0.05)
    assert value(m, "modelops_feature_drift_evidence", feature="monthly_charges", band="fail") > alarm
    assert value(m, "modelops_feature_drift_evidence", feature="contract", band="warn") < alarm
    assert value(m, "modelops_feature_psi_lower", feature="monthly_charges") > 0.25
    # /drift carries the same state as JSON.
    d = httpx.get(monitor + "/drift").json()
    assert sorted(d["drift"]["drifted_features"]) == ["monthly_charges", "tenure_months"]
    # No label carries a raw value or category.
    allowed = {"modeldeployment", "namespace", "track", "revision", "feature", "method", "status", "band", "bin", "le"}
    assert all(k in allowed for (_, ls) in m for k, _ in ls)
    assert all(n.startswith("modelops_") for (n, _) in m)


def test_xgboost_v2_with_unit_bug_is_caught_on_normal_traffic(models_dir, start):
    v2 = models_dir / "churn-xgboost-v2"
    _, monitor = start.monitor(v2 / "profile.json")
    _, server = start.server(v2, monitor)
    meta = httpx.get(server + "/model/metadata").json()
    assert (meta["name"], meta["version"], meta["framework"]) == ("churn-xgboost", "2.0.0", "xgboost")
    assert meta["training_data_hash"].startswith("sha256:") and meta["features"][0]["name"] == "tenure_months"

    send(server, customers(1500, seed=103))
    d = wait_rows(monitor, 1500)
    assert d["drift"]["drifted_features"] == ["monthly_charges"]
    assert d["drift"]["prediction_drifted"]


def test_bad_requests_get_a_4xx_naming_the_field(models_dir, start):
    _, server = start.server(models_dir / "churn-sklearn-v1", None)
    good = to_rows(customers(1, seed=1))[0]
    cases = [
        ({"rows": []}, "rows"),
        ({"rows": [{k: v for k, v in good.items() if k != "contract"}]}, "rows[0].contract"),
        ({"rows": [{**good, "colour": "red"}]}, "rows[0].colour"),
        ({"rows": [good, {**good, "tenure_months": "long"}]}, "rows[1].tenure_months"),
        ({"rows": [{**good, "paperless_billing": 1}]}, "rows[0].paperless_billing"),
        ({"rows": [{**good, "contract": 3}]}, "rows[0].contract"),
    ]
    for body, field in cases:
        r = httpx.post(server + "/predict", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == field
    r = httpx.post(server + "/predict", json={"rowz": [good]})
    assert r.status_code == 400 and "rows" in r.text
    # A null is a missing value, which the model handles.
    r = httpx.post(server + "/predict", json={"rows": [{**good, "tenure_months": None},
                                                       {**good, "contract": None, "payment_method": "crypto"}]})
    assert r.status_code == 200 and r.json()["predictions"][0] in (0, 1)


def test_killing_the_monitor_under_load_fails_no_prediction(models_dir, start):
    mon_proc, monitor = start.monitor(models_dir / "churn-sklearn-v1" / "profile.json")
    _, server = start.server(models_dir / "churn-sklearn-v1", monitor, queue=200)
    df = customers(6000, seed=104)
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(send(server, df, concurrency=8)))
    t.start()
    threading.Event().wait(1.0)
    mon_proc.stop(signal.SIGKILL)  # the monitor dies while requests are in flight
    t.join()
    assert result["requests"] == 600
    assert result["errors"] == 0
    # Records that could not be handed over are counted by the server.
    text = httpx.get(server + "/metrics").text
    dropped = [float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("modelops_monitor_dropped_records_total")]
    assert dropped and dropped[0] > 0


def test_the_server_assigns_a_session_to_its_revision_when_asked(models_dir, start):
    """The route's rule-level header asks the answering server for the variant cookie."""
    _, server = start.server(models_dir / "churn-sklearn-v1", None, env={"MODELOPS_REVISION": "r-7f3a"})
    rows = {"rows": to_rows(customers(2, seed=5))}
    asked = httpx.post(server + "/predict", json=rows, headers={"X-Modelops-Sticky-Cookie": "exp"})
    assert asked.status_code == 200
    assert asked.headers["set-cookie"] == "exp=r-7f3a; Path=/; HttpOnly; SameSite=Lax"
    returning = httpx.post(server + "/predict", json=rows, headers={"Cookie": "exp=r-7f3a"})
    assert returning.status_code == 200 and "set-cookie" not in returning.headers
    bad = httpx.post(server + "/predict", json={"rowz": []}, headers={"X-Modelops-Sticky-Cookie": "exp"})
    assert bad.status_code == 400 and bad.headers["set-cookie"].startswith("exp=r-7f3a")
