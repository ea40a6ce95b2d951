"""End-to-end: the quality gate from delayed labels (spec.analysis.quality).

The traffic posts each row's true label to the Service's /feedback a few seconds after
its prediction, the way a business learns whether a customer churned; the model servers
send each label on to the monitor that saw the prediction, and the monitors score both
tracks over the same window.

The bad release is examples/train_churn.py's scikit-learn model trained on shuffled
labels: its inputs are the stable's, and its predictions match its own reference
profile, so nothing drifts; it is only worse (ROC AUC about 0.5 against 0.81, accuracy
0.68 against 0.76). It is rolled back on quality.roc_auc: with the ~25 labelled rows/s
per track this traffic gives, a 30 s window holds too few labels for accuracy to tell a
0.08 loss from maxLoss 0.02 at every read (about 2 reads in 3 at 500 rows per track), and
one passing gate would promote it. A release as good as the stable (the XGBoost model on
the same data: accuracy 0.749 against 0.758) passes the accuracy gate and is promoted
(read by the Direct provider, from the monitors' /drift)."""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections import Counter

import httpx
import pytest

from ...kube import wait_for
from ..traffic import TrafficDriver
from .test_rollbacks import back_on_stable, rolled_back
from .test_rollouts import deploy_stable, start_rollout, wait_promoted

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

RATE, ROWS = 10, 5  # requests/s, rows per request
DELAY = (2.0, 5.0)  # seconds from a prediction to its label
# The gate alone: the candidate's predictions are not compared with the stable's here.
NO_CHAMPION = {"champion": {"enabled": False}}
AUC_GATE = {**NO_CHAMPION, "quality": {"metric": "roc_auc", "maxLoss": 0.05, "minLabelled": 200}}
ACCURACY_GATE = {**NO_CHAMPION, "quality": {"metric": "accuracy", "maxLoss": 0.03, "minLabelled": 200}}


class LabelledTraffic(TrafficDriver):
    """TrafficDriver that also posts every answered row's true label to /feedback of a
    ready endpoint of the Service (any replica: it forwards the label to the owner),
    `DELAY` seconds after the answer."""

    def __init__(self, *args, delay=DELAY, **kw):
        super().__init__(*args, **kw)
        from churn_data import LABEL

        self._truth = [int(v) for v in self._normal[LABEL]]  # aligned with the row pool
        self._labels: list[int] = []
        self.delay = delay
        self._due: list[tuple[float, int, list[dict]]] = []  # heap of (due, seq, labels)
        self._seq = 0
        self._label_rng = random.Random(7)
        self.feedback: Counter = Counter()  # the servers' answers: matched, unmatched, ...
        self._threads.append(threading.Thread(target=self._feedback_loop, daemon=True))

    def _next_rows(self) -> list[dict]:
        with self._lock:
            pool, i = self._pool, self._cursor
            self._cursor = (i + self.rows) % len(pool)
            self._labels = [self._truth[(i + k) % len(pool)] for k in range(self.rows)]
        return [pool[(i + k) % len(pool)] for k in range(self.rows)]

    def _post(self, http, ep, rows, headers=None):
        labels = self._labels  # the send loop is one thread: these are the rows' labels
        sent = time.time()
        try:
            resp = http.post(f"http://{ep.ip}:{ep.port}/predict", content=json.dumps({"rows": rows}),
                             headers={"content-type": "application/json", **(headers or {})})
        except httpx.HTTPError:
            return sent, 0
        if resp.status_code == 200:
            ids = resp.json().get("ids") or []
            due = time.time() + self._label_rng.uniform(*self.delay)
            with self._lock:
                self._seq += 1
                heapq.heappush(self._due, (due, self._seq, [{"id": i, "label": y} for i, y in zip(ids, labels)]))
        return sent, resp.status_code

    def _feedback_loop(self) -> None:
        with httpx.Client(timeout=10.0) as http:
            while not self._stop.wait(0.2):
                now, batch = time.time(), []
                with self._lock:
                    while self._due and self._due[0][0] <= now:
                        batch.extend(heapq.heappop(self._due)[2])
                    routing = self.routing
                if not batch:
                    continue
                ep = routing.pick(self._label_rng, self.serving)
                if ep is None:
                    self.feedback["unroutable"] += len(batch)
                    continue
                try:
                    answer = http.post(f"http://{ep.ip}:{ep.port}/feedback", json={"labels": batch})
                    for key, n in (answer.json() if answer.status_code == 200 else {}).items():
                        if isinstance(n, int):
                            self.feedback[key] += n
                    if answer.status_code != 200:
                        self.feedback[f"http {answer.status_code}"] += len(batch)
                except httpx.HTTPError:
                    self.feedback["failed"] += len(batch)


@pytest.fixture(scope="session")
def bad_model(models):
    """The scikit-learn churn model trained on shuffled labels (examples/train_churn.py
    --shuffle-labels 1.0): as uninformed as a model can be, with no drift to show it."""
    from train_churn import train_one

    path = train_one("sklearn", "v1", models, rows=8000, seed=7, training_date="2026-01-01", shuffled=1.0)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["metrics"]["roc_auc"] < 0.55, meta["metrics"]
    return path.name


def labelled_traffic(stack) -> LabelledTraffic:
    driver = LabelledTraffic(stack.cluster, stack.namespace, "churn", rate=RATE, rows=ROWS,
                             serving=stack.runner.serving).start()
    stack.drivers.append(driver)
    return driver


def test_a_worse_candidate_is_rolled_back_on_its_quality(stack, models, bad_model):
    t0 = time.time()
    stable = deploy_stable(stack, models, **AUC_GATE)
    traffic = labelled_traffic(stack)
    candidate = start_rollout(stack, models, "2.0.0", bad_model, **AUC_GATE)
    begun = time.time()

    try:
        st = wait_for(rolled_back(stack), 120, interval=0.25, message="the worse canary rolled back")
    except TimeoutError as err:
        st = stack.status()
        raise TimeoutError(f"{err}; status: phase={st.get('phase')} stable={st.get('stable')} "
                           f"lastVerdict={st.get('lastVerdict')}") from None
    decided = time.time()
    # The labels reached the monitors that saw their predictions (those of a pod that has
    # gone since, such as the stable's second one during the canary, are undelivered).
    feedback = Counter(traffic.feedback)
    assert feedback["matched"] >= 400 and not feedback["unmatched"] and not feedback["malformed"], feedback
    assert feedback["undelivered"] < 0.1 * feedback["matched"], feedback
    failed = {c["name"]: c for c in st["failedChecks"]}
    assert "quality.roc_auc" in failed, st["failedChecks"]
    check = failed["quality.roc_auc"]
    assert check["result"] == "Fail" and float(check["value"]) > 0.2
    assert "spec.analysis.quality.maxLoss" in check["message"] and "candidate" in check["message"]
    assert int(check["samples"]) >= 200
    # Nothing else failed: no drift, no service level.
    assert set(failed) == {"quality.roc_auc"}, st["failedChecks"]
    assert st["history"][0]["outcome"] == "RolledBack"
    back_on_stable(stack, traffic, stable, candidate, begun)
    print(json.dumps({"seconds_from_rollout_to_rollback": round(decided - begun, 1),
                      "seconds_total": round(time.time() - t0, 1), "failed_check": check,
                      "feedback_at_the_decision": dict(feedback)}, indent=1))


def test_a_candidate_as_good_passes_the_gate(stack, models):
    direct = {**ACCURACY_GATE, "provider": {"type": "Direct"}}
    deploy_stable(stack, models, **direct)
    labelled_traffic(stack)
    start_rollout(stack, models, "2.0.0", "churn-xgboost-v1", **direct)
    seen: list[dict] = []

    def quality_passed():
        verdict = stack.status().get("lastVerdict") or {}
        check = next((c for c in verdict.get("checks") or () if c["name"] == "quality.accuracy"), None)
        if check and (not seen or seen[-1] != check):
            seen.append(check)
        return check if check and check["result"] == "Pass" else None

    check = wait_for(quality_passed, 120, interval=0.5, message="the quality gate to pass")
    assert int(check["samples"]) >= 200 and "not significantly more than" in check["message"], check
    st, _ = wait_promoted(stack)
    assert st["history"][0]["outcome"] == "Succeeded"
    # Until enough labels were in, the gate waited instead of passing.
    assert not [c for c in seen if c["result"] == "Fail"], seen
