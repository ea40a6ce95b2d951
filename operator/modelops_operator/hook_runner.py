"""Calls HTTP hooks (spec.hooks[].http) for the controller: one task per run id, its
answer kept until the planner has recorded it in status.

An answer is read as: 2xx passes, unless it is 202 or a JSON body says
{"status": "Pending"}: then it waits and is called again after pollInterval. A timeout,
a connection error or a 5xx is retried `retries` times (1 s, 2 s, 4 s ... apart); after
that, or on any other answer, the run fails. Every call of one run carries the same
X-Modelops-Hook-Id, so a receiver can make a repeated call (after an operator restart)
harmless."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Callable

import aiohttp

from .hooks import FAILED, PENDING, SUCCEEDED, Hook

log = logging.getLogger(__name__)

HOOK_ID_HEADER = "X-Modelops-Hook-Id"
RETRY_BACKOFF = 1.0  # seconds before the first retry; doubled for each next one


async def call_once(session: aiohttp.ClientSession, hook: Hook, hook_id: str, body: dict) -> tuple[str, str, bool]:
    """(phase, message, retryable) of one call."""
    try:
        async with session.request(hook.method, hook.url, json=None if hook.method == "GET" else body,
                                   params={"id": hook_id} if hook.method == "GET" else None,
                                   headers={HOOK_ID_HEADER: hook_id},
                                   timeout=aiohttp.ClientTimeout(total=hook.timeout)) as resp:
            text = (await resp.text())[:300]
            if 200 <= resp.status < 300:
                pending = resp.status == 202
                try:
                    doc = json.loads(text) if text else {}
                    pending = pending or (isinstance(doc, dict) and str(doc.get("status", "")).lower() == "pending")
                    detail = str(doc.get("message", "")) if isinstance(doc, dict) else ""
                except ValueError:
                    detail = ""
                if pending:
                    return PENDING, f"HTTP {resp.status}: pending" + (f": {detail}" if detail else ""), False
                return SUCCEEDED, f"HTTP {resp.status}" + (f": {detail}" if detail else ""), False
            return FAILED, f"HTTP {resp.status}: {text.strip()}", resp.status >= 500
    except asyncio.TimeoutError:
        return FAILED, f"no answer within {hook.timeout:g}s", True
    except aiohttp.ClientError as err:
        return FAILED, f"{hook.url} unreachable: {err}", True


class HookRunner:
    def __init__(self, wake: Callable[[tuple], None]):
        self.wake = wake  # re-queues a ModelDeployment when one of its runs has news
        self.results: dict[str, tuple[str, str]] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.owner: dict[str, tuple] = {}
        self._session: aiohttp.ClientSession | None = None

    def results_for(self, key: tuple) -> dict[str, tuple[str, str]]:
        return {i: r for i, r in self.results.items() if self.owner.get(i) == key}

    def ensure(self, key: tuple, calls: list[dict]) -> None:
        """Exactly these runs of `key` are being called; runs the planner no longer
        lists (recorded, or gone with their rollout) are forgotten."""
        wanted = {c["id"] for c in calls}
        for hook_id in [i for i, k in self.owner.items() if k == key and i not in wanted]:
            task = self.tasks.pop(hook_id, None)
            if task:
                task.cancel()
            self.results.pop(hook_id, None)
            self.owner.pop(hook_id, None)
        for c in calls:
            if c["id"] not in self.owner:
                self.owner[c["id"]] = key
                self.tasks[c["id"]] = asyncio.create_task(self._run(key, c["id"], c["hook"], c["context"]))

    async def _run(self, key: tuple, hook_id: str, hook: Hook, context: dict) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        attempt, failures = 0, 0
        while True:
            attempt += 1
            phase, message, retryable = await call_once(self._session, hook, hook_id, {**context, "attempt": attempt})
            if phase == FAILED and retryable and failures < hook.retries:
                failures += 1
                self.results[hook_id] = (PENDING, f"{message}; retry {failures} of {hook.retries}")
                await asyncio.sleep(min(RETRY_BACKOFF * 2 ** (failures - 1), 30))
                continue
            if phase == FAILED and retryable:
                message += f" (after {failures + 1} calls)"
            self.results[hook_id] = (phase, message)
            self.wake(key)
            if phase != PENDING:
                log.info("hook %s (%s/%s) %s: %s", hook.name, *key, phase, message)
                self.tasks.pop(hook_id, None)
                return
            failures = 0
            await asyncio.sleep(hook.poll_interval)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
