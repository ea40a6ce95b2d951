"""Notifications: which transitions each webhook hears of, what it is sent, and that a
receiver that is down is retried, counted and never holds anything up."""

import asyncio

import pytest
from aiohttp import web

from modelops_operator import notifier as notifier_mod
from modelops_operator.notifications import NotificationError, Webhook, kind_of, parse_notifications, payload
from modelops_operator.notifier import SENT, Notifier

BODY = {"metadata": {"namespace": "ml", "name": "churn", "uid": "u1"},
        "status": {"phase": "RolledBack", "stable": {"revision": "a", "version": "1.0.0"},
                   "weights": {"stable": 100, "candidate": 0, "mirror": 0}}}
ROLLBACK = {"seq": 7, "reason": "AnalysisFailed", "type": "Warning", "time": "2026-12-02T12:00:00Z",
            "message": "2.0.0 (b) rolled back: drift.feature.tenure failed"}


@pytest.mark.parametrize("reason, kind_, phase, expected", [
    ("RolloutStarted", "Normal", "Progressing", "Started"),
    ("StepStarted", "Normal", "Progressing", "Step"),
    ("StepWeightSet", "Normal", "Progressing", "Step"),
    ("ExperimentStarted", "Normal", "Progressing", "Step"),
    ("StepPaused", "Normal", "Paused", "Paused"),
    ("Paused", "Warning", "Paused", "Paused"),
    ("AwaitingPromotion", "Normal", "Paused", "Paused"),
    ("Promoted", "Normal", "Succeeded", "Promoted"),
    ("AnalysisFailed", "Warning", "RolledBack", "RolledBack"),
    ("HookFailed", "Warning", "RolledBack", "RolledBack"),
    ("ControlKept", "Normal", "RolledBack", "RolledBack"),
    ("InvalidSpec", "Warning", "Succeeded", "Failed"),
    ("RolloutRefused", "Warning", "Pending", "Failed"),
    ("PauseEnded", "Normal", "Progressing", None),
    ("Available", "Normal", "Succeeded", None),
])
def test_every_transition_has_at_most_one_kind(reason, kind_, phase, expected):
    assert kind_of({"reason": reason, "type": kind_}, phase) == expected


def test_json_and_slack_payloads_say_what_happened():
    doc = payload(Webhook("x", "http://h"), "RolledBack", BODY, ROLLBACK)
    assert doc["kind"] == "RolledBack" and doc["seq"] == 7 and doc["modelDeployment"]["name"] == "churn"
    assert doc["stable"] == {"revision": "a", "version": "1.0.0"} and doc["candidate"] is None
    slack = payload(Webhook("x", "http://h", "Slack"), "RolledBack", BODY, ROLLBACK)
    assert "ml/churn: RolledBack" in slack["text"] and "drift.feature.tenure" in slack["text"]
    assert slack["blocks"][0]["type"] == "section"


@pytest.mark.parametrize("raw, field", [
    ([{"url": "http://h"}], "spec.notifications[0].name"),
    ([{"name": "a", "url": "h"}], "spec.notifications[0].url"),
    ([{"name": "a", "url": "http://h", "format": "XML"}], "spec.notifications[0].format"),
    ([{"name": "a", "url": "http://h", "events": ["Exploded"]}], "spec.notifications[0].events"),
    ([{"name": "a", "url": "http://h"}, {"name": "a", "url": "http://g"}], "spec.notifications[1].name"),
])
def test_bad_notifications_name_the_field(raw, field):
    with pytest.raises(NotificationError) as err:
        parse_notifications(raw)
    assert err.value.field == field


def counted(result, kind):
    return SENT.labels(result, kind)._value.get()


def test_a_receiver_is_retried_until_it_answers_and_only_chosen_kinds_are_sent(monkeypatch):
    monkeypatch.setattr(notifier_mod, "BACKOFF", 0.01)
    got, answers = [], [500, 503, 200]

    async def receive(request):
        got.append(await request.json())
        return web.Response(status=answers.pop(0) if answers else 200)

    async def scenario():
        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        n = Notifier()
        before = counted("sent", "RolledBack")
        only_promoted = Webhook("p", f"http://127.0.0.1:{port}/hook", events=("Promoted",))
        n.send(BODY, ROLLBACK, (Webhook("all", f"http://127.0.0.1:{port}/hook"), only_promoted))
        await asyncio.gather(*n.tasks)
        await n.close()
        await runner.cleanup()
        return before

    before = asyncio.run(scenario())
    assert len(got) == 3 and all(d["seq"] == 7 for d in got)  # two refusals, then delivered, once
    assert counted("sent", "RolledBack") == before + 1


def test_a_receiver_that_is_down_is_counted_and_holds_nothing(monkeypatch):
    monkeypatch.setattr(notifier_mod, "BACKOFF", 0.01)

    async def scenario():
        n = Notifier()
        before = counted("failed", "RolledBack")
        n.send(BODY, ROLLBACK, (Webhook("down", "http://127.0.0.1:9/nobody"),))  # send() returns at once
        await asyncio.gather(*n.tasks)
        await n.close()
        return before

    before = asyncio.run(scenario())
    assert counted("failed", "RolledBack") == before + 1
