"""Batching as a client sees it: concurrent requests share model calls without
sharing failures, and a lone request is answered without waiting for company."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from churn_data import customers
from modelops_services.model_dir import load_model_dir
from traffic import to_rows


def expected(model, rows: list[dict]) -> tuple[list, list]:
    """What the model itself says for these rows, called directly."""
    return model.predict(model.schema.validate(rows))


async def post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=len(bodies))) as client:
        return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))


@pytest.mark.parametrize("batching", ["on", "off"])
def test_one_malformed_request_among_concurrent_ones_fails_alone(models_dir, start, batching):
    model = models_dir / "churn-sklearn-v1"
    _, server = start.server(model, None, env={"MODELOPS_BATCHING": batching, "MODELOPS_BATCH_MAX_SIZE": "16"})
    rows = to_rows(customers(400, seed=202))
    # Single-row and multi-row requests, one of them larger than a batch.
    sizes = [1, 1, 3, 1, 20, 1, 2, 1, 1, 5] * 4
    bodies, start_at = [], 0
    for n in sizes:
        bodies.append({"rows": rows[start_at : start_at + n]})
        start_at += n
    bad = 17
    bodies[bad] = {"rows": [*bodies[bad]["rows"][:-1], {**bodies[bad]["rows"][-1], "tenure_months": "long"}]}
    bad_field = f"rows[{len(bodies[bad]['rows']) - 1}].tenure_months"

    direct = load_model_dir(model)
    for _ in range(3):  # several rounds, so requests meet in different batches
        answers = asyncio.run(post_all(server, bodies))
        assert answers[bad].status_code == 400
        assert answers[bad].json()["field"] == bad_field
        for i, (body, r) in enumerate(zip(bodies, answers)):
            if i == bad:
                continue
            assert r.status_code == 200, r.text
            preds, scores = expected(direct, body["rows"])
            got = r.json()
            assert got["predictions"] == preds
            assert got["scores"] == pytest.approx(scores, rel=1e-9, abs=1e-12)
            assert len(got["ids"]) == len(body["rows"])


def test_a_lone_request_does_not_wait_for_a_batch(models_dir, start):
    """Sequential requests (one in flight at a time) are answered as fast with
    batching on as with batching off: nothing waits for a batch to fill."""
    model = models_dir / "churn-sklearn-v1"
    _, on = start.server(model, None)
    _, off = start.server(model, None, env={"MODELOPS_BATCHING": "off"})
    bodies = [{"rows": [r]} for r in to_rows(customers(80, seed=203))]
    lat: dict[str, list[float]] = {on: [], off: []}
    with httpx.Client(timeout=30) as client:
        for url in (on, off):  # warm both
            for b in bodies[:5]:
                assert client.post(url + "/predict", json=b).status_code == 200
        for b in bodies:  # alternate, so machine load hits both alike
            for url in (on, off):
                t0 = time.perf_counter()
                r = client.post(url + "/predict", json=b)
                lat[url].append(time.perf_counter() - t0)
                assert r.status_code == 200
    med_on, med_off = statistics.median(lat[on]), statistics.median(lat[off])
    # A dispatcher that waits to fill batches adds tens of milliseconds here.
    assert med_on <= 1.5 * med_off + 0.003, (med_on, med_off)
