"""The monitor's HTTP face (aiohttp): /observe, /feedback, /metrics, /drift, /healthz,
and /predictions (answers by request key, for comparing a shadow with the stable).

Two listeners serve the one app. The Unix socket (MODELOPS_MONITOR_SOCKET, in a volume
only the pod's containers share) is the model server's: POST /observe is taken there
only, and labels it relays are checked one by one. The TCP port is the cluster's:
Prometheus and the operator read /metrics, /drift, /predictions and /healthz there;
POST /observe is refused (403) and POST /feedback is taken only when every label's id
is signed with the ModelDeployment's feedback key (403 otherwise, nothing kept): another
pod can neither move the windows nor label predictions it did not get. A monitor run
without a socket (by hand) serves everything on its port.

Background tasks rotate the sub-windows every window/n_sub seconds and start a new
block of the sequential evidence every block_seconds. Handlers
never let an exception out: bad input is a 400 and a counter, not a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..drift import Profile
from ..feedback_routing import signed_owner
from .config import MonitorConfig
from .recent import MAX_KEYS
from .exposition import make_registry
from .state import MonitorState

log = logging.getLogger("modelops.monitor")
STATE = web.AppKey("state", MonitorState)


def _finite(x: Any) -> Any:
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


async def _json_body(request: web.Request) -> tuple[Any, bool]:
    try:
        return json.loads(await request.read()), True
    except (ValueError, UnicodeDecodeError):
        return None, False


def _in_pod(request: web.Request) -> bool:
    """Whether the request came through the pod's Unix socket (its local address is a
    path; a TCP connection's is a host and port)."""
    transport = request.transport
    return transport is not None and isinstance(transport.get_extra_info("sockname"), str)


def _cluster_port(request: web.Request) -> bool:
    """A request on the TCP port of a monitor that has its in-pod socket."""
    return request.app[STATE].config.socket_path is not None and not _in_pod(request)


async def observe(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _cluster_port(request):
        return web.json_response({"error": "observations are taken only from the model server in this pod, "
                                           "through its Unix socket"}, status=403)
    body, ok = await _json_body(request)
    if not ok:
        state.malformed += 1
        return web.json_response({"error": "body is not JSON"}, status=400)
    accepted, bad = state.observe(body)
    status = 400 if accepted == 0 and bad > 0 else 200
    return web.json_response({"accepted": accepted, "malformed": bad}, status=status)


def _refuse_unsigned(state: MonitorState, body: Any) -> web.Response | None:
    """On the cluster port: a 403 (counted unverified, nothing kept) unless every
    label's id is signed with the feedback key; None when the labels may go on."""
    items = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return None  # malformed: a 400 below
    key = state.config.feedback_key
    ids = [(i, it["id"]) for i, it in enumerate(items) if isinstance(it, dict) and isinstance(it.get("id"), str)]
    if key is None:
        state.feedback["unverified"] += len(ids)
        return web.json_response({"error": "this monitor has no feedback key, so it takes labels only from its "
                                           "model server: post them to the model's /feedback", "field": "labels",
                                  "unverified": len(ids)}, status=403)
    bad = [i for i, pid in ids if signed_owner(key, pid) is None]
    if not bad:
        return None
    state.feedback["unverified"] += len(bad)
    field = f"labels[{bad[0]}].id"
    return web.json_response({"error": f"{field}: not a prediction id signed with this ModelDeployment's feedback "
                                       f"key ({len(bad)} such labels; none were kept)",
                              "field": field, "unverified": len(bad)}, status=403)


async def feedback(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body, ok = await _json_body(request)
    if not ok:
        state.feedback["malformed"] += 1
        return web.json_response({"error": "body is not JSON"}, status=400)
    if _cluster_port(request):
        refused = _refuse_unsigned(state, body)
        if refused is not None:
            return refused
    counts = state.take_feedback(body, state.config.feedback_key)
    nothing = counts["matched"] == counts["unmatched"] == counts["unverified"] == 0
    status = 400 if nothing and counts["malformed"] else 200
    return web.json_response(counts, status=status)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app["registry"])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def drift(request: web.Request) -> web.Response:
    """The monitor's numbers; with ?since=UNIX_SECONDS also the prediction bin counts of
    the blocks begun since then (the operator compares the tracks over one period)."""
    state = request.app[STATE]
    doc = state.snapshot()
    since = request.query.get("since")
    if since is not None:
        try:
            t = float(since)
            if not math.isfinite(t):
                raise ValueError
        except ValueError:
            return web.json_response({"error": "since: not a number of seconds since the epoch"}, status=400)
        doc["predictions_since"] = state.predictions_since(t)
    return web.json_response(_finite(doc))


async def predictions(request: web.Request) -> web.Response:
    """GET ?since=UNIX_SECONDS: the latest answers by request key since then."""
    try:
        since = float(request.query.get("since", "nan"))
        if not math.isfinite(since):
            raise ValueError
    except ValueError:
        return web.json_response({"error": "since: not a number of seconds since the epoch"}, status=400)
    answers = request.app[STATE].recent.since(since)
    return web.json_response({"task": request.app[STATE].task, "predictions": _finite(answers)})


async def lookup(request: web.Request) -> web.Response:
    """POST {"keys": [...]}, or GET ?key=..&key=.. (what a pod proxy allows with only
    `get`): the answers this monitor has for those request keys."""
    if request.method == "GET":
        keys = request.query.getall("key", [])
    else:
        body, ok = await _json_body(request)
        keys = body.get("keys") if ok and isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return web.json_response({"error": "keys: want a list of request keys"}, status=400)
    if len(keys) > MAX_KEYS:
        return web.json_response({"error": f"keys: at most {MAX_KEYS} per lookup"}, status=400)
    return web.json_response({"predictions": _finite(request.app[STATE].recent.lookup(keys))})


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "profile": state.profile.hash})


@web.middleware
async def never_crash(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # a bug must cost one request, not the monitor
        log.exception("unhandled error on %s", request.path)
        if request.path in ("/observe", "/feedback"):
            request.app[STATE].malformed += 1
        return web.json_response({"error": "internal error"}, status=500)


async def _rotator(app: web.Application) -> Any:
    state = app[STATE]
    period = state.config.window_seconds / state.config.n_sub

    async def loop() -> None:
        while True:
            await asyncio.sleep(period)
            state.rotate()

    async def blocks() -> None:
        while True:
            await asyncio.sleep(state.config.drift.block_seconds)
            state.next_block()

    tasks = [asyncio.create_task(loop()), asyncio.create_task(blocks())]
    yield
    for task in tasks:
        task.cancel()


def make_app(config: MonitorConfig, profile: Profile | None = None) -> web.Application:
    profile = profile or Profile.load(config.profile_path)
    state = MonitorState(config, profile)
    app = web.Application(middlewares=[never_crash], client_max_size=config.max_body_bytes)
    app[STATE] = state
    app["registry"] = make_registry(state)
    app.router.add_post("/observe", observe)
    app.router.add_post("/feedback", feedback)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/drift", drift)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/predictions", predictions)
    app.router.add_post("/predictions/lookup", lookup)
    app.router.add_get("/predictions/lookup", lookup)
    app.cleanup_ctx.append(_rotator)
    return app
