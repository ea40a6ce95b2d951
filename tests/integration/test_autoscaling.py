"""Autoscaling during a rollout, on the local cluster, with the real HPA controller
(kube-controller-manager) reading real resource metrics: metrics-server, built from its
Go module, scrapes the pod CPU use kwok simulates (tests/integration/metrics_server.py).
Nothing here decides for the HPA: the test only changes the simulated load.

The scenario: a replica-ratio canary paused at a manual 25% step; the load rises, the
stable's HPA scales it up, and the candidate's replicas follow so its share of pods
holds (recorded over time; with MODELOPS_AUTOSCALING_RESULTS=DIR written to
DIR/autoscaling-canary-share.{json,md}, and bench/results/ holds the published run); then
promotion starts the candidate at the stable's current size; and a blue-green preview's
own HPA goes with its rollback."""

import json
import os
import threading
import time
from pathlib import Path

import pytest

from ..kube import wait_for
from .metrics_server import MetricsServer, SimulatedLoad, sample_every
from .operator_harness import OperatorProcess, get_md, install_chart, wait_phase

pytestmark = pytest.mark.cluster

RELEASE = "modelops-as"
TARGET = 50  # percent of the model container's 100m CPU request
PASS = [{"name": "healthy", "query": "vector(1)", "min": 1}]


def md(name, strategy, version="1.0.0", replicas=3):
    return {
        "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
        "spec": {
            "model": {"name": name, "version": version, "image": f"registry.example/{name}:{version}"},
            "replicas": replicas,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "autoscaling": {"minReplicas": 2, "maxReplicas": 12, "targetCPUUtilizationPercentage": TARGET},
            "strategy": strategy,
            "analysis": {"interval": "2s", "drift": {"enabled": False}, "slo": {"enabled": False},
                         "customChecks": PASS},
            "progressDeadline": "5m",
        },
    }


@pytest.fixture(scope="module")
def metrics(cluster, tmp_path_factory):
    server = MetricsServer(cluster, tmp_path_factory.mktemp("metrics-server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        print(server.log()[-5000:])


@pytest.fixture
def operator(cluster, crd, namespace, metrics, tmp_path):
    install_chart(cluster, namespace, RELEASE)
    kubeconfig = cluster.service_account_kubeconfig(namespace, f"{RELEASE}-operator", tmp_path / "sa.kubeconfig")
    # No Prometheus: the custom check is never reached (manual step, no analysis).
    op = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "http://127.0.0.1:1")
    op.start()
    yield op
    op.stop()
    print(op.log()[-20000:])
    cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)


def apply(cluster, namespace, doc):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))


def set_version(cluster, namespace, name, version):
    patch = {"spec": {"model": {"version": version, "image": f"registry.example/{name}:{version}"}}}
    cluster.kubectl("patch", "md", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def get_json(cluster, namespace, *args) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-n", namespace, "-o", "json").stdout)


def deployments(cluster, namespace, name) -> dict[str, dict]:
    """Deployments by revision."""
    out = get_json(cluster, namespace, "deploy", "-l", f"modelops.io/modeldeployment={name}")
    return {d["metadata"]["labels"]["modelops.io/revision"]: d for d in out["items"]}


def autoscalers(cluster, namespace, name) -> dict[str, dict]:
    out = get_json(cluster, namespace, "hpa", "-l", f"modelops.io/modeldeployment={name}")
    return {h["metadata"]["name"]: h for h in out["items"]}


def sizes(cluster, namespace, name, stable, cand) -> tuple[int, int, int, int]:
    deps = deployments(cluster, namespace, name)

    def of(rev):
        d = deps.get(rev) or {}
        return int((d.get("spec") or {}).get("replicas") or 0), int((d.get("status") or {}).get("readyReplicas") or 0)
    return (*of(stable), *of(cand))


def test_replica_canary_holds_its_share_while_the_hpa_scales_the_stable(cluster, namespace, operator):
    name = "churn"
    strategy = {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "Manual"}]}}
    load = SimulatedLoad(cluster, namespace, name, millicores=120)  # 40m per pod of 3: below the target
    load.start()
    try:
        apply(cluster, namespace, md(name, strategy))
        st = wait_phase(cluster, namespace, name, "Succeeded", "1.0.0", timeout=180)
        stable = st["stable"]["revision"]
        hpa = wait_for(lambda: autoscalers(cluster, namespace, name).get(f"{name}-{stable}"), 30,
                       message="the stable's HPA")
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"{name}-{stable}" and hpa["spec"]["minReplicas"] == 2
        assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
        # The real HPA reads real metrics before anything moves.
        wait_for(lambda: (autoscalers(cluster, namespace, name)[f"{name}-{stable}"].get("status") or {})
                 .get("currentMetrics"), 150, interval=2, message="the HPA to read the pods' CPU")

        set_version(cluster, namespace, name, "2.0.0")
        st = wait_phase(cluster, namespace, name, "Paused", timeout=180)
        cand = st["candidate"]["revision"]
        assert sizes(cluster, namespace, name, stable, cand)[::2] == (3, 1)
        assert f"{name}-{cand}" not in autoscalers(cluster, namespace, name)  # sized by the operator

        samples = []
        stop = threading.Event()

        def sample(t):
            try:
                s, s_ready, c, c_ready = sizes(cluster, namespace, name, stable, cand)
                weights = (get_md(cluster, namespace, name).get("status") or {}).get("weights") or {}
            except Exception:  # noqa: BLE001 - a missed sample is not a failure
                return
            samples.append({"t": round(t, 1), "stable": s, "stableReady": s_ready, "candidate": c,
                            "candidateReady": c_ready, "share": round(100 * c / (s + c)) if s + c else 0,
                            "statusWeight": weights.get("candidate"), "loadMillicores": load.millicores,
                            "perPodMillicores": load.per_pod})
        sampler = sample_every(1.0, sample, stop)
        time.sleep(6)
        load.set(600)  # 150m per pod of 4: three times the target

        def scaled():
            s, s_ready, c, c_ready = sizes(cluster, namespace, name, stable, cand)
            return s >= 7 and c == round(s / 3) and c_ready == c and s_ready == s and (s, c)
        s, c = wait_for(scaled, 300, interval=3, message="the stable's HPA to scale it up and the candidate to follow")
        time.sleep(15)  # a few more samples at the new size
        stop.set()
        sampler.join(10)
        record(samples)
        assert s > 3, "the real HPA scaled the stable up"
        assert get_md(cluster, namespace, name)["status"]["phase"] == "Paused"
        # Whenever the sizes settled, the candidate held a quarter of the pods (25% +- rounding).
        settled = [x for x in samples if x["candidate"] == round(x["stable"] / 3)]
        assert all(abs(x["share"] - 25) <= 5 for x in settled if x["stable"] >= 6), settled
        assert f"{name}-{cand}" not in autoscalers(cluster, namespace, name)

        # Promotion: the candidate starts at the stable's current size before the switch.
        before = sizes(cluster, namespace, name, stable, cand)[0]
        cluster.kubectl("annotate", "md", name, "-n", namespace, "modelops.io/promote=1", "--overwrite")
        st = wait_phase(cluster, namespace, name, "Succeeded", "2.0.0", timeout=300)
        assert st["history"][0]["outcome"] == "Succeeded"
        new = deployments(cluster, namespace, name)[cand]
        assert new["spec"]["replicas"] >= before and new["status"].get("readyReplicas", 0) >= before
        hpas = wait_for(lambda: (h := autoscalers(cluster, namespace, name)) and list(h) == [f"{name}-{cand}"] and h,
                        60, message="only the new stable's HPA")
        assert hpas[f"{name}-{cand}"]["spec"]["minReplicas"] == 2
        assert hpas[f"{name}-{cand}"]["metadata"]["labels"]["modelops.io/track"] == "stable"
        wait_for(lambda: list(deployments(cluster, namespace, name)) == [cand], 60, message="old revision removed")
        record(samples, promoted_at=before, new_size=new["spec"]["replicas"])
    finally:
        load.stop()


def test_a_blue_green_rollback_deletes_the_previews_hpa(cluster, namespace, operator):
    name = "fraud"
    load = SimulatedLoad(cluster, namespace, name, millicores=100)
    load.start()
    try:
        apply(cluster, namespace, md(name, {"type": "BlueGreen", "blueGreen": {"autoPromote": False,
                                                                             "prePromotionAnalysis": False}}))
        st = wait_phase(cluster, namespace, name, "Succeeded", "1.0.0", timeout=180)
        stable = st["stable"]["revision"]
        set_version(cluster, namespace, name, "2.0.0")
        st = wait_phase(cluster, namespace, name, "Paused", timeout=180)
        cand = st["candidate"]["revision"]
        hpas = wait_for(lambda: (h := autoscalers(cluster, namespace, name)) and len(h) == 2 and h, 30,
                        message="an HPA per track")
        assert hpas[f"{name}-{cand}"]["metadata"]["labels"]["modelops.io/track"] == "candidate"
        assert hpas[f"{name}-{cand}"]["spec"]["scaleTargetRef"]["name"] == f"{name}-{cand}"
        cluster.kubectl("annotate", "md", name, "-n", namespace, "modelops.io/abort=1", "--overwrite")
        wait_phase(cluster, namespace, name, "RolledBack", "1.0.0", timeout=120)
        wait_for(lambda: list(autoscalers(cluster, namespace, name)) == [f"{name}-{stable}"], 60,
                 message="the preview's HPA deleted with it")
        wait_for(lambda: list(deployments(cluster, namespace, name)) == [stable], 60, message="preview removed")
    finally:
        load.stop()


def record(samples, **extra) -> None:
    """The candidate's share over time, into MODELOPS_AUTOSCALING_RESULTS if set: a test
    run leaves the published figures in the tree alone."""
    out = os.environ.get("MODELOPS_AUTOSCALING_RESULTS")
    if not out:
        return
    results = Path(out)
    results.mkdir(parents=True, exist_ok=True)
    doc = {"scenario": "replica-ratio canary paused at 25%; simulated load 120m -> 600m over pods with 100m "
                       f"CPU requests, HPA target {TARGET}% (real HPA controller, metrics-server, kwok usage)",
           "samples": samples, **extra}
    (results / "autoscaling-canary-share.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["# Replica-ratio canary under a scaling HPA", "", doc["scenario"], "",
             "Produced by `tests/integration/test_autoscaling.py` with MODELOPS_AUTOSCALING_RESULTS=bench/results.", "",
             "| t (s) | load (m) | per pod (m) | stable replicas (ready) | candidate replicas (ready) "
             "| candidate share of pods | status weight |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for x in samples:
        lines.append(f"| {x['t']} | {x['loadMillicores']} | {x['perPodMillicores']} | {x['stable']} "
                     f"({x['stableReady']}) | {x['candidate']} ({x['candidateReady']}) | {x['share']}% "
                     f"| {x['statusWeight']}% |")
    if extra:
        lines += ["", ", ".join(f"{k}: {v}" for k, v in extra.items())]
    (results / "autoscaling-canary-share.md").write_text("\n".join(lines) + "\n")
