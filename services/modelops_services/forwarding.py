"""Hand records to the monitor off the request path.

submit() only puts into a bounded asyncio queue and never waits: when the queue
is full (monitor slow or down) the record is dropped and counted. A background
task drains the queue in batches to POST /observe; a failed POST drops its batch
(counted) and backs off, so a dead monitor costs the request path nothing but
a put_nowait. The drop count travels with the next successful batch so the
monitor can export it too. With a socket path the records go through the monitor's
Unix socket in the pod (the only place it takes them from), else to `url`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger("modelops.forwarding")


class MonitorForwarder:
    def __init__(self, url: str, queue_size: int = 10_000, batch_max: int = 500, flush_s: float = 0.25,
                 timeout_s: float = 2.0, backoff_s: float = 0.5, on_drop: Any = None,
                 socket_path: str | None = None):
        self.socket_path = socket_path
        # Through a Unix socket the host part only fills the Host header.
        self.url = ("http://localhost" if socket_path else url.rstrip("/")) + "/observe"
        self.queue_size = queue_size
        self.batch_max = batch_max
        self.flush_s = flush_s
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.queue: asyncio.Queue[dict[str, Any]] | None = None
        self.sent = 0
        self.dropped = 0
        self._unreported = 0
        self._task: asyncio.Task[None] | None = None
        self.on_drop = on_drop

    def submit(self, record: dict[str, Any]) -> bool:
        """Queue a record; False (and counted) when it had to be dropped."""
        if self.queue is None:
            # Created lazily inside the server's event loop.
            self.queue = asyncio.Queue(maxsize=self.queue_size)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self.queue.put_nowait(record)
            return True
        except asyncio.QueueFull:
            self._drop(1)
            return False

    def _drop(self, n: int) -> None:
        self.dropped += n
        self._unreported += n
        if self.on_drop is not None:
            self.on_drop(n)

    async def _run(self) -> None:
        import aiohttp

        assert self.queue is not None
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.UnixConnector(path=self.socket_path) if self.socket_path else None
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            while True:
                batch = [await self.queue.get()]
                # Gather for a moment: one POST per few hundred records keeps the
                # forwarding cost per request small (drift needs no low latency).
                if self.flush_s > 0 and self.queue.qsize() < self.batch_max:
                    await asyncio.sleep(self.flush_s)
                while len(batch) < self.batch_max and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                unreported = self._unreported
                body = json.dumps({"records": batch, "dropped": unreported}, default=_jsonable)
                try:
                    async with session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as resp:
                        await resp.read()
                    self.sent += len(batch)
                    self._unreported -= unreported
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # monitor down or slow: drop, count, back off
                    self._drop(len(batch))
                    log.debug("monitor unreachable (%s); dropped %d records", exc, len(batch))
                    await asyncio.sleep(self.backoff_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)
