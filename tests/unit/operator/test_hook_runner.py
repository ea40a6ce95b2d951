"""HTTP hooks against a real local receiver: pending answers wait and are called again,
errors are retried, every call of one run carries its id, and the controller notifies
once per transition (only when its Event was new)."""

import asyncio

from aiohttp import web

from modelops_operator import hook_runner
from modelops_operator.config import OperatorConfig
from modelops_operator.controller import Controller
from modelops_operator.hooks import parse_hooks
from modelops_operator.notifications import Webhook

KEY = ("ml", "churn")


async def serve(handler):
    app = web.Application()
    app.router.add_route("*", "/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"


async def run_hook(url, answers, **http):
    """Runs one hook until it has a final result; returns (result, calls, wakes)."""
    calls, wakes = [], []

    async def handler(request):
        calls.append((request.headers.get(hook_runner.HOOK_ID_HEADER), await request.json()))
        status, body = answers.pop(0) if answers else (200, "{}")
        if status == "hang":
            await asyncio.sleep(5)
            status = 200
        return web.Response(status=status, text=body, content_type="application/json")

    runner, url = await serve(handler)
    (hook,) = parse_hooks([{"name": "h", "at": "BeforeStep", "http": {"url": url, "pollInterval": "1s", **http}}])
    r = hook_runner.HookRunner(wakes.append)
    r.ensure(KEY, [{"id": "run-1", "hook": hook, "context": {"step": 1}}])
    r.ensure(KEY, [{"id": "run-1", "hook": hook, "context": {"step": 1}}])  # asked again: still one run
    for _ in range(200):
        await asyncio.sleep(0.05)
        result = r.results_for(KEY).get("run-1")
        if result and result[0] in ("Succeeded", "Failed"):
            break
    r.ensure(KEY, [])  # recorded: forgotten
    leftover = dict(r.results)
    await r.close()
    await runner.cleanup()
    return result, calls, wakes, leftover


def test_pending_answers_wait_and_the_run_is_called_again():
    result, calls, wakes, leftover = asyncio.run(run_hook(None, [(202, ""), (200, '{"status": "Pending"}'),
                                                                 (200, '{"message": "p99 120ms"}')]))
    assert result == ("Succeeded", "HTTP 200: p99 120ms")
    assert len(calls) == 3 and {c[0] for c in calls} == {"run-1"}
    assert [c[1]["attempt"] for c in calls] == [1, 2, 3] and calls[0][1]["step"] == 1
    assert wakes == [KEY] * 3 and leftover == {}


def test_server_errors_are_retried_then_fail_and_refusals_fail_at_once(monkeypatch):
    monkeypatch.setattr(hook_runner, "RETRY_BACKOFF", 0.01)
    result, calls, _, _ = asyncio.run(run_hook(None, [(500, "boom")] * 5, retries=2))
    assert result[0] == "Failed" and "HTTP 500: boom" in result[1] and "after 3 calls" in result[1]
    assert len(calls) == 3
    result, calls, _, _ = asyncio.run(run_hook(None, [(403, "no")], retries=2))
    assert result == ("Failed", "HTTP 403: no") and len(calls) == 1


def test_a_call_that_outlives_its_timeout_is_retried(monkeypatch):
    monkeypatch.setattr(hook_runner, "RETRY_BACKOFF", 0.01)
    result, calls, _, _ = asyncio.run(run_hook(None, [("hang", ""), (200, "")], timeout="200ms", retries=1))
    assert result == ("Succeeded", "HTTP 200") and len(calls) == 2


class FakeEvents:
    """The API server's answer to an Event: created the first time, 409 after."""

    def __init__(self):
        self.names = set()

    async def announce(self, body, transition):
        name = (body["metadata"]["name"], transition["seq"])
        created = name not in self.names
        self.names.add(name)
        return created


def test_a_transition_is_notified_once_also_by_a_restarted_operator():
    body = {"metadata": {"namespace": "ml", "name": "churn", "uid": "u"},
            "spec": {"notifications": [{"name": "team", "url": "http://127.0.0.1:9/x"}]},
            "status": {"phase": "RolledBack"}}
    transition = {"seq": 3, "reason": "AnalysisFailed", "type": "Warning", "message": "m"}
    api, sent = FakeEvents(), []

    async def scenario():
        for _ in range(2):  # the first operator, then one restarted after announcing
            c = Controller(api=api, config=OperatorConfig())
            c.notifier.send = lambda body, t, hooks: sent.append((t["seq"], [h.name for h in hooks]))
            await c._announce(KEY, body, transition)

    asyncio.run(scenario())
    assert sent == [(3, ["team"])]
    assert isinstance(Webhook("a", "http://x").events, tuple)
