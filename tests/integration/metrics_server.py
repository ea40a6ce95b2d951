"""metrics-server (built by hack/build-metrics-server.sh) as a local process serving the
resource metrics API (metrics.k8s.io) of the local cluster, from the pod usage kwok
simulates; and the simulated load itself.

How the pieces meet (hack/cluster.sh sets up the cluster side):
- kwok-controller runs with the Metric and ClusterResourceUsage CRDs enabled; here a
  Metric object (kwok's own kustomize/metrics/resource) makes it serve a kubelet-like
  /metrics/nodes/<node>/metrics/resource per node, and a ClusterResourceUsage object
  sets the model containers' CPU use (what `SimulatedLoad` changes).
- The nodes carry the annotation metrics.k8s.io/resource-metrics-path with that path
  and an ExternalIP 127.0.0.1 (kwok-controller listens there), and their kubelet port
  (status.daemonEndpoints) is kwok-controller's: metrics-server scrapes kwok as kubelets.
- The APIService v1beta1.metrics.k8s.io points at a selector-less Service whose
  ClusterIP is a loopback address (the cluster's Service range is 127.3.0.0/16), with
  an Endpoints object of the same address; metrics-server binds that address, so
  kube-apiserver's aggregator, which dials the Service's ClusterIP, reaches it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..kube import wait_for

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "kube-system"
SERVICE = "modelops-metrics-server"
ADDRESS = "127.3.255.250"  # in the Service range: the Service's ClusterIP, bound by metrics-server
PORT = 4443
APISERVICE = "v1beta1.metrics.k8s.io"


def build() -> Path:
    """The cached metrics-server binary, built from its Go module if missing."""
    out = subprocess.run([str(ROOT / "hack/build-metrics-server.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def kwok_metric_object() -> str:
    """kwok's own Metric that simulates the kubelet's /metrics/resource, from its module."""
    env = {**os.environ}
    versions = (ROOT / "hack/versions.env").read_text()
    kwok_version = next(line.split("=", 1)[1] for line in versions.splitlines() if line.startswith("KWOK_VERSION="))
    out = subprocess.run(["go", "mod", "download", "-json", f"sigs.k8s.io/kwok@{kwok_version}"], cwd="/",
                         check=True, capture_output=True, text=True, env=env)
    return (Path(json.loads(out.stdout)["Dir"]) / "kustomize/metrics/resource/metrics-resource.yaml").read_text()


class MetricsServer:
    def __init__(self, cluster, workdir: Path):
        self.cluster, self.workdir = cluster, workdir
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "metrics-server.log"

    def start(self) -> None:
        binary = build()
        kc = self.cluster.kubectl
        kc("apply", "-f", "-", input=kwok_metric_object())
        service = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                   "spec": {"clusterIP": ADDRESS, "ports": [{"name": "https", "port": PORT, "targetPort": PORT}]}}
        endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                     "subsets": [{"addresses": [{"ip": ADDRESS}], "ports": [{"name": "https", "port": PORT}]}]}
        apiservice = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
                      "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                               "service": {"namespace": NAMESPACE, "name": SERVICE, "port": PORT},
                               # As metrics-server's own manifests: it serves a self-signed certificate.
                               "insecureSkipTLSVerify": True, "groupPriorityMinimum": 100, "versionPriority": 100}}
        for obj in (service, endpoints, apiservice):
            kc("apply", "-f", "-", input=json.dumps(obj))
        kubeconfig = str(self.cluster.kubeconfig)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([
            str(binary), f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", f"--bind-address={ADDRESS}", f"--secure-port={PORT}",
            f"--cert-dir={self.workdir / 'certs'}",
            # kwok-controller as every node's kubelet: its port from node status, its address
            # the nodes' ExternalIP, its self-signed certificate.
            "--kubelet-use-node-status-port", "--kubelet-preferred-address-types=ExternalIP",
            "--kubelet-insecure-tls", "--metric-resolution=10s", "--kubelet-request-timeout=5s", "--v=1",
        ], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(self.serving, 120, interval=2, message="the metrics API to be available")

    def serving(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"metrics-server exited: {self.log()[-3000:]}")
        # Available: the aggregator reached it. Nodes are listed only once a pod on them uses
        # CPU (kwok sums its pods), so an empty list is a working API too.
        available = self.cluster.kubectl("get", "apiservice", APISERVICE, "-o",
                                         'jsonpath={.status.conditions[?(@.type=="Available")].status}', check=False)
        out = self.cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False)
        return available.stdout == "True" and out.returncode == 0

    def stop(self) -> None:
        self.cluster.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found", check=False)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class SimulatedLoad:
    """A total CPU demand spread evenly over the running pods of a ModelDeployment, as its
    Service spreads requests: each model container uses total / pods, as kwok reports it
    (a ClusterResourceUsage object per namespace, updated as the pod count changes)."""

    def __init__(self, cluster, namespace: str, name: str, millicores: int = 0):
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.millicores = millicores
        self.object = f"load-{namespace}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.per_pod: int | None = None

    def pods(self) -> int:
        out = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l",
                                   f"modelops.io/modeldeployment={self.name}",
                                   "--field-selector=status.phase=Running", "-o", "name", check=False)
        return len(out.stdout.split()) if out.returncode == 0 else 0

    def update(self) -> None:
        pods = self.pods()
        per_pod = max(1, round(self.millicores / pods)) if pods else 1
        if per_pod == self.per_pod:
            return
        usage = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterResourceUsage",
                 "metadata": {"name": self.object},
                 "spec": {"selector": {"matchNamespaces": [self.namespace]},
                          "usages": [{"containers": ["model"], "usage": {"cpu": {"value": f"{per_pod}m"},
                                                                         "memory": {"value": "64Mi"}}},
                                     # metrics-server drops a pod whose any container reports no use.
                                     {"containers": ["monitor"], "usage": {"cpu": {"value": "5m"},
                                                                           "memory": {"value": "32Mi"}}}]}}
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(usage))
        self.per_pod = per_pod

    def set(self, millicores: int) -> None:
        self.millicores = millicores
        self.update()

    def start(self) -> None:
        self.update()

        def loop():
            while not self._stop.wait(2.0):
                try:
                    self.update()
                except Exception as err:  # noqa: BLE001 - keep simulating; the test's waits tell
                    print(f"load update failed: {err}")
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self.cluster.kubectl("delete", "clusterresourceusage", self.object, "--ignore-not-found", check=False)


def sample_every(seconds: float, fn, stop: threading.Event) -> threading.Thread:
    def loop():
        start = time.monotonic()
        while not stop.is_set():
            fn(time.monotonic() - start)
            stop.wait(seconds)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t
