"""kopf wiring: watch events in, the controller does the rest.

Only event handlers are used: kopf then puts no finalizer and no annotation on the
ModelDeployment, so the user's object is never edited and GitOps tools see no drift.
Children are deleted by the garbage collector through their ownerReferences.

With leader election on, a replica starts kopf, and so its watches, only once it holds
the Lease (standby.py); it exits when it loses the Lease (leadership.py)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os

import kopf
from prometheus_client import start_http_server

from . import GROUP, MANAGER, PLURAL, VERSION
from .analysis.providers.direct import DirectProvider
from .analysis.providers.prometheus import PrometheusProvider
from .analysis.runner import ProviderAnalyzer
from .config import OperatorConfig
from .controller import Controller
from .kube import KubeApi, load_config
from .leadership import ElectionConfig, LeaderElector
from .standby import stand_by
from .hooks import HOOK_ID_LABEL
from .model_source import SOURCE_LABEL
from .naming import LABEL_MANAGED_BY

log = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf diffs every event against a deep copy of the last one, for change
    handlers; with event handlers only, nothing reads that diff, and at a thousand
    ModelDeployments the copies were a third of the operator's CPU."""

    def build(self, *, body, extra_fields=None):
        return {}

    def fetch(self, *, body):
        return None

    def store(self, *, body, patch, essence) -> None:
        pass


def default_analyzer(config: OperatorConfig) -> ProviderAnalyzer:
    return ProviderAnalyzer({
        "Prometheus": PrometheusProvider(config.prometheus_url),
        # Its own small API client: monitor reads must not queue behind child applies.
        "Direct": DirectProvider(access=config.monitor_access),
    })


# Embedders may replace this before the operator starts, to add metric providers.
ANALYZER_FACTORY = default_analyzer


@functools.cache  # once per process: a standby starts it before kopf runs startup
def serve_metrics() -> None:
    """The operator's own metrics (notifications sent and failed), for Prometheus; a
    standby serves them too, so its scrape target is up."""
    if os.environ.get("MODELOPS_METRICS_PORT"):
        start_http_server(int(os.environ["MODELOPS_METRICS_PORT"]), os.environ.get("MODELOPS_METRICS_ADDRESS", ""))


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_):
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]
    load_config()
    config = OperatorConfig.from_env()
    serve_metrics()
    analyzer = ANALYZER_FACTORY(config)
    election = getattr(memo, "election", None) or ElectionConfig.from_env()
    elector = getattr(memo, "elector", None)
    if elector is None and election.enabled:
        # Run as `kopf run`: the campaign holds kopf's startup, so nothing watches before it leads.
        elector = await stand_by(LeaderElector(election))
    controller = Controller(KubeApi(), config, analyzer, workers=int(os.environ.get("MODELOPS_WORKERS", "32")),
                            may_write=elector.valid if elector else (lambda: True))
    memo.controller, memo.elector = controller, elector
    controller.start()
    if elector is None:
        log.info("%s started", MANAGER)
    else:
        log.info("%s leads on Lease %s/%s: the controller started", election.identity, election.lease_namespace,
                 election.lease_name)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_):
    controller = getattr(memo, "controller", None)
    if controller:
        await controller.stop()
    elector = getattr(memo, "elector", None)
    if elector:
        # Hand the Lease over only once no request of the workers is in flight; if one
        # hangs, the standby waits for the Lease to expire instead.
        try:
            await asyncio.wait_for(asyncio.to_thread(controller.api.pool.shutdown, True), 5)
        except asyncio.TimeoutError:
            log.warning("requests still in flight: the Lease is left to expire")
            return
        await elector.release()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def model_deployment_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_model_deployment(event["type"], event["object"])


@kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGER})
async def deployment_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_deployment(event["type"], event["object"])


@kopf.on.event("gateway.networking.k8s.io", "v1", "httproutes", labels={LABEL_MANAGED_BY: MANAGER})
async def route_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_route(event["type"], event["object"])


@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels={LABEL_MANAGED_BY: MANAGER})
async def autoscaler_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_autoscaler(event["type"], event["object"])


@kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: MANAGER, SOURCE_LABEL: kopf.PRESENT})
async def pod_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_pod(event["type"], event["object"])


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_MANAGED_BY: MANAGER, HOOK_ID_LABEL: kopf.PRESENT})
async def job_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_job(event["type"], event["object"])


@kopf.on.probe(id="queue")
async def queue_depth(memo: kopf.Memo, **_):
    controller = getattr(memo, "controller", None)
    return len(controller.queue) if controller else 0
