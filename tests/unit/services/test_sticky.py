"""The model server assigns an A/B session to its own revision when the gateway asks."""

import asyncio

from modelops_services.sticky import RevisionMiddleware, set_cookie


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def call(headers, revision="r-abc"):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers}
    asyncio.run(RevisionMiddleware(app, revision)(scope, receive, send))
    return dict((k, v) for k, v in sent[0]["headers"])


def test_a_request_asking_for_a_variant_gets_its_cookie():
    headers = call([(b"x-modelops-sticky-cookie", b"modelops-variant")])
    assert headers[b"set-cookie"] == b"modelops-variant=r-abc; Path=/; HttpOnly; SameSite=Lax"


def test_every_answer_names_its_revision():
    assert call([])[b"x-modelops-revision"] == b"r-abc"


def test_other_requests_get_no_cookie():
    assert b"set-cookie" not in call([(b"cookie", b"modelops-variant=r-abc")])
    assert b"set-cookie" not in call([(b"x-modelops-sticky-cookie", b"v")], revision="")


def test_a_name_that_is_no_cookie_name_is_ignored():
    assert set_cookie(b"bad name; Domain=evil", "r") is None
    assert b"set-cookie" not in call([(b"x-modelops-sticky-cookie", b"a=b")])
