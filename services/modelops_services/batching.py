"""Opportunistic batching of model calls, with no artificial wait.

    batcher = Batcher(predict_many, max_batch_size=256, size=len)
    result = await batcher.submit(item)

If no batch is running, a submitted item starts a model call at once (on the
next turn of the event loop, so items submitted in the same turn share it).
Items that arrive while a batch is computing wait for it and then go together
in the next batch, up to `max_batch_size` (measured by `size`, e.g. rows); an
item larger than that runs on its own. So under low load every request is
answered after one model call, and under high load batches grow by themselves
to what the model can absorb: there is no timer and no latency bound to tune.

`fn(items)` gets a list of items and must return one result per item, in order.
It runs on one worker thread, off the event loop, so the loop keeps accepting,
validating and answering requests while the model computes; one thread also
means the model is never called concurrently (scikit-learn and XGBoost
predictors are not all thread-safe, and two CPU-bound calls would only fight
for the same cores).

If a batch call raises, each of its items is retried on its own, so a request
that makes the model fail fails alone and never takes its neighbours with it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch_size: int = 256,
                 size: Callable[[T], int] = lambda _: 1, thread_name: str = "model") -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._pending: collections.deque[tuple[T, int, asyncio.Future[R]]] = collections.deque()
        self._runner: asyncio.Task[None] | None = None
        # Counters for tests and debugging: model calls made, items answered.
        self.calls = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """The result of fn for this item, computed alone or with others."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, self.size(item), fut))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._drain())
        return await fut

    def _take(self) -> list[tuple[T, int, asyncio.Future[R]]]:
        """The next batch: pending items in arrival order while they fit."""
        batch: list[tuple[T, int, asyncio.Future[R]]] = []
        total = 0
        while self._pending:
            item, n, fut = self._pending[0]
            if fut.done():  # the caller went away (cancelled): skip its work
                self._pending.popleft()
                continue
            if batch and total + n > self.max_batch_size:
                break
            self._pending.popleft()
            batch.append((item, n, fut))
            total += n
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._take()
            if not batch:
                break
            items = [b[0] for b in batch]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._call, items)
            except BaseException as exc:  # loop shutting down: never leave a caller hanging
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("batcher stopped"))
                raise
            self.calls += 1
            self.items += len(batch)
            for (_, _, fut), (ok, value) in zip(batch, outcomes):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    def _call(self, items: list[T]) -> list[tuple[bool, Any]]:
        """On the worker thread: the batch at once, or item by item if it fails."""
        try:
            results = list(self.fn(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            return [(True, r) for r in results]
        except Exception as exc:
            if len(items) == 1:
                return [(False, exc)]
        out: list[tuple[bool, Any]] = []
        for item in items:
            try:
                out.append((True, self.fn([item])[0]))
            except Exception as exc:
                out.append((False, exc))
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
