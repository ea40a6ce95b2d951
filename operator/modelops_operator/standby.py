"""A standby replica: it campaigns for the Lease and opens no watch until it leads.

Watching while standing by would keep a second cache warm, at the price of every watch
event being sent to, and decoded by, a process that does nothing with it: at a thousand
ModelDeployments such a standby spent 40% of the leader's CPU, and the API server served
each event twice (bench/results/operator_convergence.md). The new leader lists
everything when it starts, as any operator does after a restart: server-side apply and
the status-recorded hooks, Events and transitions make a first pass over a cold cache
safe, and the list takes a second or two against a Lease duration of fifteen.

While it waits it answers the liveness probe itself (kopf serves it only once it runs), so
the kubelet does not restart a healthy standby and the PodDisruptionBudget counts it."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

from aiohttp import web

from .leadership import LeaderElector

log = logging.getLogger(__name__)


async def stand_by(elector: LeaderElector, liveness: str | None = None) -> LeaderElector:
    """Returns the elector, started, once this process holds the Lease; it keeps renewing it."""
    config = elector.config
    probe = await _serve_liveness(liveness) if liveness else None
    try:
        elector.start()
        log.info("%s stands by for Lease %s/%s: no watch is opened until it leads", config.identity,
                 config.lease_namespace, config.lease_name)
        await elector.wait_leading()
    finally:
        if probe is not None:
            await probe.cleanup()  # kopf binds the same address next
    return elector


async def _serve_liveness(endpoint: str) -> web.AppRunner:
    """The endpoint kopf will serve (--liveness), answered with an empty report meanwhile."""
    url = urlparse(endpoint)

    async def alive(_request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get(url.path or "/", alive)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, url.hostname, url.port or 80, reuse_address=True).start()
    return runner
