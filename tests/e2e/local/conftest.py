"""The whole system on the local cluster: the operator as a real process (the chart's
ServiceAccount), kwok's model pods run for real by the pod runner (BentoML model
server + drift monitor at each pod IP), a real Prometheus that finds them through
Kubernetes service discovery, and traffic routed the way kube-proxy routes it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from ... import kube
from ...gateways import GATEWAY_NAMESPACE
from ...conftest import gateway_routing, route_host
from ...integration.conftest import install_crd
from ...integration.operator_harness import OperatorProcess, get_md, install_chart, wait_phase
from ..podrunner import PodRunner
from ..prometheus_sd import start_prometheus
from ..traffic import TrafficDriver

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def models() -> Path:
    """examples/train_churn.py's model directories (file:// URIs of the ModelDeployments).

    In the cache, not under /tmp: the model container mounts an emptyDir there, which
    would hide them, as it would in a real pod."""
    import shutil
    import sys

    sys.path.insert(0, str(ROOT / "examples"))
    from train_churn import train_all

    out = kube.models_dir("e2e-models")
    shutil.rmtree(out, ignore_errors=True)
    train_all(out, rows=8000, seed=7, training_date="2026-01-01")
    return out


@pytest.fixture(scope="session")
def crd(cluster):
    install_crd(cluster)


def churn(models: Path, version: str, model: str, *, replicas: int = 2, steps=None, routing: dict | None = None,
          strategy: dict | None = None, **analysis) -> dict:
    """The churn ModelDeployment, serving model directory `model` as `version`, with
    analysis settings short enough for a test (5 s gates, a 30 s drift window)."""
    directory = models / model
    # Images under podrunner.local/ turn Ready only once the pod runner's processes
    # answer (hack/kwok/pod-ready.yaml), as with a kubelet's readinessProbe.
    spec_analysis = {"interval": "5s", "minSampleSize": 100, "failureLimit": 2, "inconclusiveLimit": 6,
                     "slo": {"maxErrorRate": 0.02, "maxLatencyP99": "2s"}}
    spec_analysis.update(analysis)
    return {
        "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "churn"},
        "spec": {
            "model": {"name": "churn", "version": version, "image": f"podrunner.local/churn:{version}",
                      "uri": f"file://{directory}", "framework": "xgboost" if "xgboost" in model else "sklearn"},
            "replicas": replicas,
            # The profile is copied out of the "image" by the pod's init container.
            "monitor": {"window": "30s", "referenceProfile": {"path": f"{directory}/profile.json"}},
            "strategy": {**(strategy or {"type": "Canary",
                                          "canary": {"steps": steps or [{"weight": 50, "pause": "10s"}]}}),
                         "trafficRouting": routing or {"replicas": {}}},
            "analysis": spec_analysis,
            "progressDeadline": "3m",
        },
    }


MODEL_SERVER_IMAGE = "podrunner.local/modelops-model:0.1.0"  # the generic model server: no model inside


def release(models: Path, out: Path, source: str, version: str) -> Path:
    """A copy of example model directory `source` released as `version`, to publish."""
    import shutil
    import uuid

    d = out / f"{source}-{version}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(models / source, d)
    meta = json.loads((d / "metadata.json").read_text())
    meta["version"] = version
    (d / "metadata.json").write_text(json.dumps(meta, indent=2))
    return d


def remote(models: Path, version: str, uri: str, secret: str, replicas: int = 1, steps=None, **model) -> dict:
    """The churn ModelDeployment serving a published model by URI with the generic model
    server image; its reference profile is the one published with the model."""
    doc = churn(models, version, "churn-sklearn-v1", replicas=replicas, steps=steps or [{"weight": 50, "pause": "10s"}])
    doc["spec"]["model"] = {"name": "churn", "version": version, "image": MODEL_SERVER_IMAGE, "uri": uri,
                            "credentialsSecretRef": {"name": secret}, **model}
    doc["spec"]["monitor"] = {"window": "30s"}
    return doc


class StatusLog:
    """The ModelDeployment's status, polled every `every` seconds from a thread: when
    each verdict came, and when the phase and weights changed."""

    def __init__(self, stack: "Stack", name: str = "churn", every: float = 0.25):
        self.stack, self.name, self.every = stack, name, every
        self.entries: list[tuple[float, dict]] = []  # (time.time(), status) on every change
        self.verdicts: list[tuple[float, dict]] = []  # (time first seen, lastVerdict)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = None
        while not self._stop.wait(self.every):
            try:
                st = self.stack.status(self.name)
            except Exception:  # noqa: BLE001 - a failed read is retried
                continue
            now = time.time()
            key = (st.get("phase"), json.dumps(st.get("weights")), st.get("stage"),
                   json.dumps(st.get("lastVerdict"), sort_keys=True))
            if key != last:
                self.entries.append((now, st))
                last = key
            v = st.get("lastVerdict")
            if v and (not self.verdicts or self.verdicts[-1][1].get("time") != v.get("time")):
                self.verdicts.append((now, v))

    def first(self, predicate, since: float = 0.0) -> tuple[float, dict] | None:
        """The first (time, status) logged at or after `since` with predicate true."""
        return next(((t, st) for t, st in self.entries if t >= since and predicate(st)), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Stack:
    cluster: kube.Cluster
    namespace: str
    operator: OperatorProcess
    prometheus: object
    runner: PodRunner
    workdir: Path
    drivers: list[TrafficDriver] = field(default_factory=list)
    watchers: list[StatusLog] = field(default_factory=list)
    gateway: object = None  # tests/gateways.GatewayImpl that carries gatewayAPI traffic
    host: str | None = None

    def through(self, impl) -> dict:
        """Routes this stack's traffic through a real gateway; returns the trafficRouting
        for its ModelDeployments."""
        self.gateway, self.host = impl, route_host(self.namespace)
        return gateway_routing(impl, self.namespace)

    def apply(self, doc: dict) -> None:
        self.cluster.apply(doc, namespace=self.namespace)

    def md(self, name: str = "churn") -> dict:
        return get_md(self.cluster, self.namespace, name)

    def status(self, name: str = "churn") -> dict:
        return self.md(name).get("status") or {}

    def wait_phase(self, phase: str, version: str | None = None, timeout: float = 180, name: str = "churn") -> dict:
        return wait_phase(self.cluster, self.namespace, name, phase, version, timeout)

    def wait_serving(self, revision: str, count: int, timeout: float = 120) -> None:
        self.runner.wait_serving(count, timeout, revision=revision)

    def traffic(self, name: str = "churn", **kw) -> TrafficDriver:
        kw.setdefault("gateway", self.gateway)
        kw.setdefault("host", self.host)
        driver = TrafficDriver(self.cluster, self.namespace, name, serving=self.runner.serving, **kw).start()
        self.drivers.append(driver)
        return driver

    def watch(self, name: str = "churn") -> StatusLog:
        log = StatusLog(self, name)
        self.watchers.append(log)
        return log

    def query(self, promql: str) -> list[dict]:
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["data"]["result"]

    def targets(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.prometheus.url}/api/v1/targets", timeout=5) as resp:
            return json.loads(resp.read())["data"]["activeTargets"]


@contextlib.contextmanager
def open_stack(cluster, namespace, tmp_path, *, runner_args: dict | None = None,
               operator_kubeconfig=None) -> Iterator[Stack]:
    """The chart, a Prometheus, the pod runner (PodRunner(**runner_args)) and the operator
    (through `operator_kubeconfig(sa_kubeconfig)` when given, e.g. a proxy's)."""
    # Cluster-scoped chart objects are named after the release: one per namespace.
    release = f"modelops-e2e-{namespace[-6:]}"
    # The chart's RoleBindings there need it, whether or not a gateway has started yet.
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}})
    install_chart(cluster, namespace, release, "--set", f"watchNamespaces={{{namespace}}}",
                  "--set", f"gatewayNamespaces={{{GATEWAY_NAMESPACE}}}")
    closers = [lambda: cluster.helm("uninstall", release, "-n", namespace, "--wait", check=False)]
    s = None
    try:
        kubeconfig = cluster.service_account_kubeconfig(namespace, f"{release}-operator", tmp_path / "sa.kubeconfig")
        if operator_kubeconfig is not None:
            kubeconfig = operator_kubeconfig(kubeconfig)
        prometheus = start_prometheus(cluster, namespace, tmp_path / "prometheus")
        closers.append(prometheus.stop)
        runner = PodRunner(cluster.kubeconfig, namespace, tmp_path / "pods", **(runner_args or {}))
        closers.append(runner.close)
        operator = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", prometheus.url)
        closers.append(operator.stop)
        operator.start()
        s = Stack(cluster, namespace, operator, prometheus, runner, tmp_path)
        closers.append(lambda: [x.stop() for x in s.drivers + s.watchers])
        yield s
    finally:
        for close in reversed(closers):
            close()
        # Shown by pytest when the test failed.
        if s is not None:
            print(s.operator.log()[-15000:])
        for log in sorted((tmp_path / "pods").glob("*/*.log")):
            print(f"----- {log.relative_to(tmp_path)}\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def stack(cluster, crd, namespace, tmp_path):
    with open_stack(cluster, namespace, tmp_path) as s:
        yield s
