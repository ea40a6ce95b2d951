"""Convergence at scale: N ModelDeployments created at once; the time until every one
has its children (Deployment, Services) and a status, against a plain client that
creates the same children directly, in the same run on the same cluster. Also the
operator's peak RSS. Results: bench/results/operator_convergence.{json,md}.

Each phase starts on a quiet cluster: the baseline's pods are all Running (nothing in
flight) before the operator's phase begins. Its objects stay until the end: deleting a
thousand pods takes the controller-manager many minutes, and idle objects cost nothing.

python -m bench.operator.convergence [--count 1000] [--quick]"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import kube  # noqa: E402  (the test suite's cluster helpers)

from modelops_operator import MANAGER  # noqa: E402
from modelops_operator.planner import Observed, plan  # noqa: E402

RESULTS = ROOT / "bench/results"
THREADS = 8


def model_deployment(i: int) -> dict:
    return {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": f"m{i:04d}"},
            "spec": {"model": {"name": f"m{i:04d}", "version": "1.0.0", "image": "registry.example/m:1.0.0"},
                     "replicas": 1, "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50}]}}}}


def children_of(doc: dict, namespace: str) -> list[dict]:
    """Exactly what the operator creates for a new ModelDeployment (its own planner)."""
    meta = {"name": doc["metadata"]["name"], "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000000",
            "generation": 1}
    return plan(meta, doc["spec"], {}, Observed(), datetime.now(timezone.utc)).apply


class Follower:
    """The objects of one kind in a namespace, kept current by a watch: keep(obj) is what
    is remembered of each, by name. Polling a thousand objects of each kind twice a
    second loaded the cluster being measured: the API server encoding them and this
    process decoding them took a third of a core, more in the longer operator phase."""

    def __init__(self, list_fn, *args, keep):
        self.list_fn, self.args, self.keep = list_fn, args, keep
        self.items: dict[str, object] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError(f"no watch from {list_fn.__name__}")

    def _run(self) -> None:
        while True:  # a watch the server ends is opened again; it replays every object
            try:
                resp = self.list_fn(*self.args, watch=True, timeout_seconds=3600, _preload_content=False)
                self.ready.set()
                for line in watch.watch.iter_resp_lines(resp):
                    event = json.loads(line)
                    if event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    obj = event["object"]
                    with self.lock:
                        if event["type"] == "DELETED":
                            self.items.pop(obj["metadata"]["name"], None)
                        else:
                            self.items[obj["metadata"]["name"]] = self.keep(obj)
            except Exception as err:  # noqa: BLE001 - the watch is opened again
                print(f"watch {self.list_fn.__name__}: {err}; again", flush=True)
                time.sleep(0.5)

    def values(self) -> list:
        with self.lock:
            return list(self.items.values())

    def matching(self, test) -> set[str]:
        with self.lock:
            return {name for name, value in self.items.items() if test(value)}


def owner_label(obj: dict) -> str | None:
    return (obj["metadata"].get("labels") or {}).get("modelops.io/modeldeployment")


def follow(namespace: str, with_status: bool):
    """A probe counting the ModelDeployments whose Deployment and two Services exist
    (and, with_status, which have a status phase)."""
    apps, core = client.AppsV1Api(), client.CoreV1Api()
    deploys = Follower(apps.list_namespaced_deployment, namespace, keep=owner_label)
    services = Follower(core.list_namespaced_service, namespace, keep=owner_label)
    mds = Follower(client.CustomObjectsApi().list_namespaced_custom_object, "modelops.io", "v1alpha1", namespace,
                   "modeldeployments", keep=lambda o: (o.get("status") or {}).get("phase")) if with_status else None

    def count() -> int:
        per_md = collections.Counter(services.values())
        done = {md for md in deploys.values() if per_md[md] >= 2}
        if mds is not None:
            done &= mds.matching(bool)
        return len(done)
    return count


def wait_all(count: int, probe, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe() >= count:
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"not converged in {timeout}s: {probe()} of {count}")


def create_all(fn, items) -> None:
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(fn, item) for item in items]:
            future.result()


def drop_namespace(core: client.CoreV1Api, name: str) -> None:
    """Deletes the namespace and waits until it is gone: its pods' churn (ReplicaSets,
    scheduling, kwok status updates) must not spill into the next measurement."""
    try:
        core.delete_namespace(name)
        while True:
            core.read_namespace(name)
            time.sleep(1)
    except ApiException as err:
        if err.status != 404:
            raise


def settle(core: client.CoreV1Api, namespace: str, count: int, timeout: float = 900) -> None:
    """Waits until the pods of the run are all Running, so nothing is still in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace).items
        if len(pods) >= count and all(p.status.phase == "Running" for p in pods):
            return
        time.sleep(2)
    running = sum(p.status.phase == "Running" for p in core.list_namespaced_pod(namespace).items)
    raise RuntimeError(f"only {running} of {count} pods Running after {timeout:.0f}s: is the nodes' pod capacity enough?")


def fresh_namespace(core: client.CoreV1Api, name: str) -> None:
    drop_namespace(core, name)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def baseline(count: int, namespace: str) -> float:
    """The same children, created directly by a plain client (same threads, SSA)."""
    core = client.CoreV1Api()
    dyn = DynamicClient(client.ApiClient())
    fresh_namespace(core, namespace)
    objs = [o for i in range(count) for o in children_of(model_deployment(i), namespace)]
    for o in objs:
        o["metadata"].pop("ownerReferences", None)  # no owner: nothing to own them here

    def create(obj):
        res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        res.server_side_apply(body=obj, namespace=namespace, field_manager=MANAGER, force_conflicts=True)

    probe = follow(namespace, with_status=False)
    start = time.monotonic()
    create_all(create, objs)
    end = wait_all(count, probe, 1800)
    print(f"baseline: {end - start:.1f}s; letting its pods settle", flush=True)
    settle(core, namespace, count)
    return end - start


def with_operator(count: int, namespace: str, kubeconfig: Path, log_path: Path) -> tuple[float, float]:
    core, api = client.CoreV1Api(), client.CustomObjectsApi()
    fresh_namespace(core, namespace)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MODELOPS_LOG_LEVEL": "warning",
           "MODELOPS_PROMETHEUS_URL": "http://127.0.0.1:9"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "modelops_operator.main", "--namespace", namespace],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    peak = [0]
    stop = threading.Event()

    def sample():
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], p.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        probe = follow(namespace, with_status=True)
        time.sleep(3)  # the operator's watches are up
        start = time.monotonic()
        create_all(lambda doc: api.create_namespaced_custom_object("modelops.io", "v1alpha1", namespace,
                                                                   "modeldeployments", doc),
                   [model_deployment(i) for i in range(count)])
        print(f"operator: all {count} ModelDeployments created after {time.monotonic() - start:.1f}s", flush=True)
        end = wait_all(count, probe, 1800)
        print(f"operator: {end - start:.1f}s, peak RSS {peak[0] / 2**20:.0f} MiB", flush=True)
        return end - start, peak[0] / 2**20
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 ModelDeployments")
    args = parser.parse_args(argv)
    count = 100 if args.quick else args.count

    reused = os.environ.get("MODELOPS_REUSE_CLUSTER") == "1" and kube.cluster_healthy()
    cluster = kube.start_session_cluster()
    try:
        config.load_kube_config(str(cluster.kubeconfig))
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                        str(ROOT / "manifests/crds/modelops.io_modeldeployments.yaml"))
        cluster.kubectl("wait", "--for=condition=Established", "crd/modeldeployments.modelops.io")
        base = baseline(count, "bench-baseline")
        operator_s, rss = with_operator(count, "bench-operator", cluster.kubeconfig,
                                        RESULTS / "operator_convergence.log")
        for namespace in ("bench-baseline", "bench-operator"):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    finally:
        if not reused:
            kube.stop_session_cluster(cluster)

    result = {"count": count, "baseline_seconds": round(base, 2), "operator_seconds": round(operator_s, 2),
              "ratio": round(operator_s / base, 3), "ratio_target": 2.0, "operator_peak_rss_mib": round(rss, 1),
              "rss_target_mib": 300, "threads": THREADS, "cpus": os.cpu_count(),
              "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "operator_convergence.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "operator_convergence.md").write_text(
        "# Operator convergence at scale\n\n"
        f"{count} ModelDeployments created at once; time until each has its Deployment, Services and a status.\n\n"
        "| | seconds | target |\n|---|---|---|\n"
        f"| plain client creating the same children | {base:.1f} | |\n"
        f"| operator | {operator_s:.1f} | |\n"
        f"| ratio operator / plain client | {operator_s / base:.2f} | <= 2 |\n"
        f"| operator peak RSS | {rss:.0f} MiB | <= 300 MiB |\n")
    print(json.dumps(result, indent=2))
    ok = result["ratio"] <= 2.0 and rss <= 300
    print("convergence:", "within targets" if ok else "MISSES a target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
