"""Sends notifications (spec.notifications) for the controller: in the background, with
retries, never holding or failing a rollout. A receiver that is down is logged and
counted (modelops_notifications_total{result="failed"})."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from prometheus_client import Counter

from .notifications import Webhook, kind_of, payload

log = logging.getLogger(__name__)

SENT = Counter("modelops_notifications", "Notifications by outcome: sent, or failed after every retry",
               ["result", "kind"])
ATTEMPTS = 4  # calls per notification, BACKOFF, 2 x BACKOFF and 4 x BACKOFF apart
BACKOFF = 1.0
TIMEOUT = 5.0


class Notifier:
    def __init__(self):
        self._session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task] = set()

    def send(self, body: dict, transition: dict, webhooks: tuple[Webhook, ...]) -> None:
        """Sends what the transition means to every webhook that asked for its kind."""
        kind = kind_of(transition, (body.get("status") or {}).get("phase"))
        if kind is None:
            return
        for hook in webhooks:
            if kind in hook.events:
                task = asyncio.create_task(self._post(hook, kind, payload(hook, kind, body, transition), body))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _post(self, hook: Webhook, kind: str, doc: dict, body: dict) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        meta = body["metadata"]
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(BACKOFF * 2 ** (attempt - 1))
            try:
                async with self._session.post(hook.url, json=doc, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
                    if 200 <= resp.status < 300:
                        SENT.labels("sent", kind).inc()
                        return
                    problem = f"HTTP {resp.status}"
                    if 400 <= resp.status < 500 and resp.status != 429:
                        break  # the receiver refuses it; sending again changes nothing
            except (asyncio.TimeoutError, aiohttp.ClientError) as err:
                problem = str(err) or type(err).__name__
        SENT.labels("failed", kind).inc()
        log.warning("notification %s (%s) for %s/%s not delivered: %s", hook.name, kind, meta["namespace"],
                    meta["name"], problem)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
