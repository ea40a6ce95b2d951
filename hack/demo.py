"""The demo: a drifting canary rolled back by itself, on the local cluster.

The two models are published to an S3-compatible store (Versity gateway over TLS with
its own CA) with `modelops publish`, and the ModelDeployment names them by URI: the
operator pins each one (the digest of its metadata.json) and every pod fetches and
verifies it before loading. Model 1.0.0 serves; 2.0.0 rolls out as a canary; mid-canary the inputs shift (one
feature's mean moves, as after a unit change upstream); the operator sees the drift at
its next gates and rolls back. Everything is real except the nodes: the chart's
ServiceAccount runs the operator, kwok's pods are served by the pod runner (BentoML
model server and drift monitor at each pod IP), Prometheus finds them through
Kubernetes service discovery, and the traffic goes to the Service's endpoints the way
kube-proxy sends it.

While it runs the terminal shows the ModelDeployment's status (phase, step, weights,
the last verdict with its checks) and the candidate's drift scores; at the end it
writes a PNG timeline and a short summary to build/demo/.

    python hack/demo.py [--out build/demo]   (make demo runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from modelops_operator.plugin import render_status  # noqa: E402
from modelops_operator.timeline import Event, Timeline, finished  # noqa: E402
from tests import kube  # noqa: E402
from tests.e2e.podrunner import PodRunner  # noqa: E402
from tests.e2e.prometheus_sd import start_prometheus  # noqa: E402
from tests.e2e.local.conftest import release, remote  # noqa: E402  (the scenarios' ModelDeployment: short gates)
from tests.s3store import start_versity, versitygw_binary  # noqa: E402
from tests.e2e.traffic import TrafficDriver  # noqa: E402
from tests.integration.operator_harness import OperatorProcess  # noqa: E402

NAMESPACE = "ml"
RELEASE = "modelops"
DRIFT = {"kind": "mean", "feature": "monthly_charges", "amount": 2.0}


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


STEPS = [{"weight": 25, "pause": "15s"}, {"weight": 50}, {"weight": 75}]


class Scores:
    """The candidate's per-feature PSI, as Prometheus has it."""

    def __init__(self, url: str):
        self.url = url

    def psi(self, revision: str) -> dict[str, float]:
        q = (f'max by (feature) (modelops_feature_drift_score{{namespace="{NAMESPACE}",modeldeployment="churn",'
             f'revision="{revision}",method="psi"}})')
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": q}),
                                        timeout=3) as resp:
                result = json.loads(resp.read())["data"]["result"]
        except (OSError, ValueError, KeyError):
            return {}
        out = {}
        for r in result:
            try:
                value = float(r["value"][1])
            except (TypeError, ValueError):
                continue
            if value == value and not r["metric"].get("feature", "").startswith("__"):
                out[r["metric"]["feature"]] = value
        return out


def live(cluster: kube.Cluster, scores: Scores, timeline: Timeline, traffic: TrafficDriver, drift_at_weight: int,
         timeout: float = 600) -> dict:
    """Redraws the status until the rollout ends; shifts the traffic once the canary
    carries `drift_at_weight` percent and has served some rows."""
    tty = sys.stdout.isatty()
    start = time.monotonic()
    md = {}
    while time.monotonic() - start < timeout:
        md = cluster.get_json("md", "churn", namespace=NAMESPACE)
        st = md.get("status") or {}
        now = time.monotonic()
        timeline.add(md, now)
        cand = (st.get("candidate") or {}).get("revision")
        psi = scores.psi(cand) if cand else {}
        if cand and psi:
            timeline.checks.setdefault("drift: candidate max PSI (Prometheus; noisy while the window is small)", []).append((now - timeline.start, max(psi.values())))
        if (traffic.drift_started is None and cand and (st.get("weights") or {}).get("candidate", 0) >= drift_at_weight
                and traffic.rows_by_revision[cand] >= 100):
            traffic.drift(**DRIFT)
            timeline.events.append(Event(now - timeline.start, "TrafficDrifted",
                                         f"inputs drift: {DRIFT['feature']} mean shifted by {DRIFT['amount']}", True))
        lines = [render_status(md)]
        if psi:
            top = sorted(psi.items(), key=lambda kv: -kv[1])[:5]
            lines.append("Drift now:   candidate PSI " + ", ".join(f"{k} {v:.3f}" for k, v in top))
        sent = dict(traffic.rows_by_track)
        lines.append(f"Traffic:     rows by track {sent}" + ("  [inputs drifting]" if traffic.drift_started else ""))
        text = "\n".join(lines)
        print(("\x1b[H\x1b[2J" if tty else "\n") + text, flush=True)
        if finished(md) and timeline.events and st.get("history"):
            for _ in range(5):  # a few looks after the decision, so the timeline shows its effect
                time.sleep(1.0)
                timeline.add(cluster.get_json("md", "churn", namespace=NAMESPACE), time.monotonic())
            return md
        time.sleep(1.0 if tty else 3.0)
    raise SystemExit("the rollout did not finish in time; see build/demo/operator.log")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "build" / "demo"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    os.environ.setdefault("MODELOPS_REUSE_CLUSTER", "1")  # keep a healthy cluster; start one otherwise
    say("local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes)")
    cluster = kube.start_session_cluster()
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                    str(ROOT / "manifests/crds/modelops.io_modeldeployments.yaml"))
    kube.delete_namespace(cluster, NAMESPACE, wait=True, timeout=120)
    cluster.kubectl("create", "namespace", NAMESPACE)

    say(f"installing the chart (release {RELEASE} in namespace modelops, managing namespace {NAMESPACE})")
    cluster.helm("upgrade", "--install", RELEASE, str(ROOT / "charts/modelops"), "-n", "modelops", "--create-namespace",
                 "--set", f"watchNamespaces={{{NAMESPACE}}}", "--wait", "--timeout", "3m")
    kubeconfig = cluster.service_account_kubeconfig("modelops", f"{RELEASE}-operator", out / "operator.kubeconfig")

    say("training the example models (scikit-learn 1.0.0, XGBoost 2.0.0) with their drift profiles")
    from train_churn import train_all

    models = kube.models_dir("demo-models")
    shutil.rmtree(models, ignore_errors=True)
    train_all(models, rows=8000, seed=7, training_date="2026-01-01")

    closers = []
    try:
        say("an S3-compatible model store (Versity gateway, TLS with a self-signed CA); publishing both models")
        store = start_versity(out / "store", tls=True, binary=versitygw_binary())
        closers.append(store.stop)
        env = {**os.environ, **store.credentials_env()}
        for version, source in (("1.0.0", "churn-sklearn-v1"), ("2.0.0", "churn-xgboost-v1")):
            directory = release(models, out / "releases", source, version)
            uri = f"s3://models/churn/{version}/"
            print(f"  $ modelops publish {directory.name} --to {uri}")
            subprocess.run([str(Path(sys.executable).parent / "modelops"), "publish", str(directory), "--to", uri],
                           env=env, check=True)
        cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "model-store"},
                       "stringData": store.secret_data()}, namespace=NAMESPACE)

        say("Prometheus with Kubernetes service discovery; the pod runner; the operator as its ServiceAccount")
        prometheus = start_prometheus(cluster, NAMESPACE, out / "prometheus")
        closers.append(prometheus.stop)
        runner = PodRunner(cluster.kubeconfig, NAMESPACE, out / "pods")
        closers.append(runner.close)
        operator = OperatorProcess(kubeconfig, NAMESPACE, out / "operator.log", prometheus.url)
        operator.start()
        closers.append(operator.stop)

        say("1.0.0 (scikit-learn) from s3://models/churn/1.0.0/, pinned, fetched and verified by each pod")
        cluster.apply(remote(models, "1.0.0", "s3://models/churn/1.0.0/", "model-store", replicas=4, steps=STEPS),
                      namespace=NAMESPACE)
        kube.wait_for(lambda: (cluster.get_json("md", "churn", namespace=NAMESPACE).get("status") or {})
                      .get("phase") == "Succeeded", 180, message="1.0.0 available")
        stable = cluster.get_json("md", "churn", namespace=NAMESPACE)["status"]["stable"]["revision"]
        runner.wait_serving(4, 180, revision=stable)
        traffic = TrafficDriver(cluster, NAMESPACE, "churn", rate=20, rows=5, serving=runner.serving).start()
        closers.append(traffic.stop)
        time.sleep(5)
        print(render_status(cluster.get_json("md", "churn", namespace=NAMESPACE)))

        say("rolling out 2.0.0 (XGBoost) as a canary: 25% (15s pause), 50%, 75%, gates every 5s")
        timeline = Timeline()
        timeline.add(cluster.get_json("md", "churn", namespace=NAMESPACE), time.monotonic())
        cluster.apply(remote(models, "2.0.0", "s3://models/churn/2.0.0/", "model-store", replicas=4, steps=STEPS),
                      namespace=NAMESPACE)
        md = live(cluster, Scores(prometheus.url), timeline, traffic, drift_at_weight=25)

        png = out / "timeline.png"
        timeline.render_png(str(png))
        st = md["status"]
        last = st["history"][0]
        summary = [timeline.summary(), "",
                   f"outcome: {last['outcome']} ({last['reason']}): {last['message']}",
                   "failed checks: " + "; ".join(f"{c['name']} = {c.get('value')} (want {c.get('threshold')})"
                                                 for c in st.get("failedChecks", [])),
                   f"stable: {st['stable']['version']} ({st['stable']['revision']}), "
                   f"weights now {st['weights']}",
                   f"rows sent by track: {dict(traffic.rows_by_track)}"]
        (out / "summary.txt").write_text("\n".join(summary) + "\n")
        say("summary")
        print("\n".join(summary))
        print(f"\ntimeline: {png}\nsummary:  {out / 'summary.txt'}\noperator log: {out / 'operator.log'}")
        print(f"\nThe cluster keeps running: kubectl --kubeconfig {cluster.kubeconfig} get md -n {NAMESPACE}")
        return 0 if last["outcome"] == "RolledBack" else 1
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception as err:  # noqa: BLE001 - clean up the rest
                print(f"cleanup: {err}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
