"""kopf wiring: watch events in, the controller does the rest.

Only event handlers are used: kopf then puts no finalizer and no annotation on the
ModelDeployment, so the user's object is never edited and GitOps tools see no drift.
Children are deleted by the garbage collector through their ownerReferences."""

from __future__ import annotations

import logging
import os

import kopf

from . import GROUP, MANAGER, PLURAL, VERSION
from .analysis.providers.direct import DirectProvider
from .analysis.providers.prometheus import PrometheusProvider
from .analysis.runner import ProviderAnalyzer
from .config import OperatorConfig
from .controller import Controller
from .kube import KubeApi, load_config
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


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_):
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]
    load_config()
    config = OperatorConfig.from_env()
    analyzer = ANALYZER_FACTORY(config)
    controller = Controller(KubeApi(), config, analyzer, workers=int(os.environ.get("MODELOPS_WORKERS", "32")))
    controller.start()
    memo.controller = controller
    log.info("%s started", MANAGER)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_):
    controller = getattr(memo, "controller", None)
    if controller:
        await controller.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def model_deployment_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_model_deployment(event["type"], event["object"])


@kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGER})
async def deployment_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_deployment(event["type"], event["object"])


@kopf.on.event("gateway.networking.k8s.io", "v1", "httproutes", labels={LABEL_MANAGED_BY: MANAGER})
async def route_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_route(event["type"], event["object"])


@kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: MANAGER, SOURCE_LABEL: kopf.PRESENT})
async def pod_event(event, memo: kopf.Memo, **_):
    memo.controller.observe_pod(event["type"], event["object"])


@kopf.on.probe(id="queue")
async def queue_depth(memo: kopf.Memo, **_):
    controller = getattr(memo, "controller", None)
    return len(controller.queue) if controller else 0
