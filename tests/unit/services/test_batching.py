"""The opportunistic batcher: no waiting when idle, shared calls when busy, failures stay local.

The model call is gated by threading events, so the tests decide exactly which
requests arrive while a call is running; nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from modelops_services.batching import Batcher


class GatedModel:
    """Doubles numbers; each call blocks until released, and records its batch."""

    def __init__(self, fail_on: set[int] | None = None):
        self.calls: list[list[int]] = []
        self.threads: set[int] = set()
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail_on = fail_on or set()

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        self.threads.add(threading.get_ident())
        self.entered.release()
        self.release.acquire()
        if self.fail_on & set(items):
            raise ValueError(f"cannot predict {sorted(self.fail_on & set(items))}")
        return [2 * x for x in items]

    async def wait_entered(self) -> None:
        await asyncio.to_thread(self.entered.acquire)

    def let_through(self, n: int = 1000) -> None:
        for _ in range(n):
            self.release.release()


def test_an_idle_model_takes_a_request_at_once_and_busy_arrivals_share_the_next_call():
    async def run():
        model = GatedModel()
        b = Batcher(model, max_batch_size=100)
        first = asyncio.create_task(b.submit(1))
        # The model is entered with the lone request: nothing waits for company.
        await model.wait_entered()
        assert model.calls == [[1]]
        later = [asyncio.create_task(b.submit(x)) for x in (2, 3, 4)]
        await asyncio.sleep(0)  # they are queued while the model computes
        model.let_through()
        results = await asyncio.gather(first, *later)
        b.close()
        return model, results

    model, results = asyncio.run(run())
    assert results == [2, 4, 6, 8]
    assert model.calls == [[1], [2, 3, 4]]


def test_batches_respect_the_size_limit_and_a_large_request_runs_alone():
    async def run():
        seen: list[list[list[int]]] = []
        gate = threading.Event()

        def model(items: list[list[int]]) -> list[int]:
            gate.wait()
            seen.append(items)
            return [sum(i) for i in items]

        b = Batcher(model, max_batch_size=5, size=len)
        tasks = [asyncio.create_task(b.submit(rows)) for rows in
                 ([1], [1, 1], [1, 1], [1], [1] * 9, [1, 1])]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks)
        b.close()
        return seen, results

    seen, results = asyncio.run(run())
    assert results == [1, 2, 2, 1, 9, 2]
    assert [[len(r) for r in batch] for batch in seen] == [[1, 2, 2], [1], [9], [2]]
    assert all(sum(len(r) for r in batch) <= 5 or len(batch) == 1 for batch in seen)


def test_a_request_that_makes_the_model_fail_fails_alone():
    async def run():
        model = GatedModel(fail_on={13})
        model.let_through()
        b = Batcher(model, max_batch_size=100)
        blocker = asyncio.create_task(b.submit(0))
        await model.wait_entered()
        batch = [asyncio.create_task(b.submit(x)) for x in (11, 12, 13, 14)]
        results = await asyncio.gather(blocker, *batch, return_exceptions=True)
        b.close()
        return results

    results = asyncio.run(run())
    assert results[:3] == [0, 22, 24] and results[4] == 28
    assert isinstance(results[3], ValueError) and "13" in str(results[3])


def test_the_model_runs_off_the_event_loop_on_one_thread():
    async def run():
        model = GatedModel()
        b = Batcher(model, max_batch_size=2)
        tasks = [asyncio.create_task(b.submit(x)) for x in range(7)]
        await model.wait_entered()
        # The loop still runs other work while the model is busy.
        ticks = 0
        for _ in range(3):
            await asyncio.sleep(0)
            ticks += 1
        model.let_through()
        results = await asyncio.gather(*tasks)
        b.close()
        return model, results, ticks, threading.get_ident()

    model, results, ticks, loop_thread = asyncio.run(run())
    assert results == [2 * x for x in range(7)] and ticks == 3
    assert len(model.threads) == 1 and loop_thread not in model.threads
    assert all(len(c) <= 2 for c in model.calls)


def test_a_cancelled_request_is_skipped_and_others_are_answered():
    async def run():
        model = GatedModel()
        b = Batcher(model, max_batch_size=100)
        first = asyncio.create_task(b.submit(1))
        await model.wait_entered()
        gone = asyncio.create_task(b.submit(2))
        kept = asyncio.create_task(b.submit(3))
        await asyncio.sleep(0)
        gone.cancel()
        model.let_through()
        results = await asyncio.gather(first, kept)
        b.close()
        return model, results, gone

    model, results, gone = asyncio.run(run())
    assert results == [2, 6] and gone.cancelled()
    assert model.calls == [[1], [3]]


def test_max_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        Batcher(lambda items: items, max_batch_size=0)
