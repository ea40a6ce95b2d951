"""Which revision answered, and sticky A/B sessions assigned by the server that answers.

Every answer names the revision that served it (REVISION_HEADER): for people and
tests following where a gateway sent a request.

The operator's HTTPRoute sets STICKY_HEADER, naming the variant cookie, on requests
of sessions that have no variant yet (a rule-level filter: every Gateway API
implementation carries those, while Traefik ignores filters on a single backend).
Whichever backend the gateway picked answers with that cookie set to its own
revision, and the route sends later requests carrying it to the same revision. A
cookie from an earlier experiment names a revision the route no longer matches, so
the session is assigned afresh."""

from __future__ import annotations

import os
import re

STICKY_HEADER = b"x-modelops-sticky-cookie"
REVISION_HEADER = b"x-modelops-revision"
_TOKEN = re.compile(rb"^[A-Za-z0-9!#$%&*+.^_|~-]{1,64}$")  # a cookie name (RFC 6265 token)


def set_cookie(cookie: bytes, revision: str) -> bytes | None:
    """The Set-Cookie value for a request that asked for `cookie`, or None when the
    name is not a cookie name."""
    if not revision or not _TOKEN.match(cookie):
        return None
    return cookie + b"=" + revision.encode() + b"; Path=/; HttpOnly; SameSite=Lax"


class RevisionMiddleware:
    """ASGI middleware: names this server's revision (MODELOPS_REVISION) on every
    answer, and adds the variant cookie to the answer of a request that asks for one
    (STICKY_HEADER)."""

    def __init__(self, app, revision: str | None = None):
        self.app = app
        self.revision = revision if revision is not None else os.environ.get("MODELOPS_REVISION", "")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.revision:
            return await self.app(scope, receive, send)
        added = [(REVISION_HEADER, self.revision.encode())]
        cookie = next((v for k, v in scope.get("headers") or () if k == STICKY_HEADER), None)
        header = set_cookie(cookie.strip(), self.revision) if cookie else None
        if header is not None:
            added.append((b"set-cookie", header))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        return await self.app(scope, receive, send_with_headers)
