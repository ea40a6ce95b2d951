"""The Direct provider on the local cluster: pods listed by the API server (kwok gives
them loopback IPs), real monitor processes bound to those IPs, and the same checks as
the Prometheus provider on the pods' merged numbers."""

import asyncio

import pytest

from modelops_operator.analysis import AnalysisRequest, Result
from modelops_operator.analysis.providers.direct import DirectProvider
from modelops_operator.analysis.runner import ProviderAnalyzer
from modelops_operator.naming import LABEL_MD, LABEL_REVISION

from ..kube import wait_for
from ..prom import free_port
from .monitors import Monitor, make_profile, records

pytestmark = pytest.mark.cluster

PODS = {  # pod -> (ModelDeployment, revision, track, drifted, latency_ms)
    "churn-bbbb-0": ("churn", "bbbb", "candidate", True, 30),
    "churn-bbbb-1": ("churn", "bbbb", "candidate", True, 30),
    "churn-aaaa-0": ("churn", "aaaa", "stable", False, 5),
    "other-bbbb-0": ("other", "bbbb", "candidate", False, 5),  # same revision label, another ModelDeployment
}


def pod_manifest(name, md, revision):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {LABEL_MD: md, LABEL_REVISION: revision}},
            "spec": {"containers": [{"name": "model", "image": "registry.example/model:1"}]}}


def wait_pod_ips(cluster, namespace: str, count: int) -> dict[str, str]:
    """pod name -> IP, once all `count` pods of the namespace are Running with one."""
    def ips():
        items = cluster.get_json("pods", namespace=namespace)["items"]
        found = {p["metadata"]["name"]: p["status"].get("podIP") for p in items
                 if p["status"].get("phase") == "Running"}
        return len(found) == count and all(found.values()) and found

    return wait_for(ips, 60, message=f"{count} pods running with IPs")


@pytest.fixture
def fleet(cluster, namespace, tmp_path):
    """The pods, each with a monitor listening on its pod IP, fed with its records."""
    cluster.apply([pod_manifest(name, md, rev) for name, (md, rev, *_) in PODS.items()], namespace)

    pod_ips = wait_pod_ips(cluster, namespace, len(PODS))
    profile = make_profile(tmp_path / "profile.json")
    port = free_port()
    monitors = {}
    try:
        for i, (name, (md, rev, track, drifted, latency)) in enumerate(PODS.items()):
            monitors[name] = Monitor(profile, tmp_path, pod_ips[name], port, namespace, md, track, rev)
        for i, (name, (md, rev, track, drifted, latency)) in enumerate(PODS.items()):
            monitors[name].wait_ready().post(records(300, seed=10 + i, drifted=drifted, latency_ms=latency))
        yield namespace, port, monitors, pod_ips
    finally:
        for m in monitors.values():
            m.stop()


def analyse(api, namespace, port, access="direct", candidate="bbbb", stable="aaaa", strategy="Canary", **analysis):
    request = AnalysisRequest(namespace, "churn", strategy, stable, candidate, 0, 60.0,
                              {"provider": {"type": "Direct"}, **analysis}, monitor={"port": port})
    analyzer = ProviderAnalyzer({"Direct": DirectProvider(api, access=access, timeout=5)})
    return asyncio.run(analyzer.analyse(request))


def by_name(verdict):
    return {c.name: c for c in verdict.checks}


def test_drifted_pods_fail_and_the_stable_is_compared(api, fleet):
    namespace, port, monitors, pod_ips = fleet
    assert all(ip.startswith("127.1.") for ip in pod_ips.values())
    verdict = analyse(api, namespace, port, slo={"maxLatencyP99Ratio": 3, "maxErrorRateIncrease": 0.01})
    checks = by_name(verdict)
    assert verdict.result is Result.FAIL
    # Both candidate pods of churn, and not the other ModelDeployment's pod with the same revision.
    assert checks["drift.share"].samples == 600 and checks["drift.share"].result is Result.FAIL
    assert "(charges)" in checks["drift.share"].message
    assert checks["drift.feature.charges"].result is Result.FAIL
    assert checks["drift.prediction"].result is Result.FAIL
    ratio = checks["slo.latencyP99Ratio"]
    assert ratio.result is Result.FAIL and 5 < ratio.value < 7  # 30 ms against 5 ms
    assert checks["slo.errorRateIncrease"].result is Result.PASS


def test_healthy_pods_pass(api, fleet):
    namespace, port, *_ = fleet
    verdict = analyse(api, namespace, port, candidate="aaaa", stable=None)
    assert verdict.result is Result.PASS, verdict.message
    assert by_name(verdict)["drift.share"].samples == 300


def test_a_silent_monitor_is_inconclusive_and_the_rest_still_count(api, fleet):
    namespace, port, monitors, _ = fleet
    monitors["churn-bbbb-1"].stop()
    verdict = analyse(api, namespace, port)
    checks = by_name(verdict)
    silent = checks["monitor.candidate"]
    assert silent.result is Result.INCONCLUSIVE and "1 of 2 monitors did not answer" in silent.message
    assert "churn-bbbb-1" in silent.message
    assert checks["drift.share"].samples == 300 and verdict.result is Result.FAIL  # the drift is still seen
    monitors["churn-bbbb-0"].stop()
    verdict = analyse(api, namespace, port)
    assert verdict.result is Result.INCONCLUSIVE
    assert "2 of 2 monitors did not answer" in by_name(verdict)["monitor.candidate"].message


def test_no_pods_and_too_few_samples_are_inconclusive(api, fleet):
    namespace, port, *_ = fleet
    verdict = analyse(api, namespace, port, candidate="zzzz")
    (check,) = verdict.checks
    assert verdict.result is Result.INCONCLUSIVE and "no running pods" in check.message
    assert f"{LABEL_REVISION}=zzzz" in check.message
    few = analyse(api, namespace, port, candidate="aaaa", minSampleSize=1000)
    assert few.result is Result.INCONCLUSIVE
    assert all(c.samples == 300 for c in few.checks)


def test_pod_proxy_reports_what_the_api_server_says(api, fleet):
    # The API server refuses to proxy to loopback addresses, which kwok's pods have here:
    # its refusal is Inconclusive. test_pod_proxy.py reads real monitors through the proxy.
    namespace, port, *_ = fleet
    verdict = analyse(api, namespace, port, access="proxy")
    assert verdict.result is Result.INCONCLUSIVE
    message = by_name(verdict)["monitor.candidate"].message
    assert "2 of 2 monitors did not answer" in message and "address not allowed" in message


def test_bad_access_mode_is_refused():
    with pytest.raises(ValueError, match="direct, proxy"):
        DirectProvider(access="sidecar")


def test_a_shadow_is_matched_with_the_stable_by_request_key(api, fleet):
    """The stable answered every request; the shadow's two pods answered mirrored copies
    (same key), differing on a third of them. Unkeyed answers, and keys only one side
    saw, are not compared."""
    namespace, port, monitors, _ = fleet
    stable = records(400, seed=40)
    for i, rec in enumerate(stable):
        rec["key"] = f"req-{i}"
    monitors["churn-aaaa-0"].post(stable)
    for pod, part in (("churn-bbbb-0", range(0, 300, 2)), ("churn-bbbb-1", range(1, 300, 2))):
        mirrored = []
        for i in part:
            rec = dict(stable[i], id=f"shadow-{i}")
            if i % 3 == 0:
                rec["predictions"] = [1 - rec["predictions"][0]]
            mirrored.append(rec)
        mirrored.append(dict(records(1, seed=41)[0], key="only-the-shadow-saw-this"))
        monitors[pod].post(mirrored)
    verdict = analyse(api, namespace, port, strategy="Shadow", drift={"enabled": False}, slo={"enabled": False},
                      champion={"maxDisagreement": 0.2}, minSampleSize=100)
    check = by_name(verdict)["champion.agreement"]
    assert check.result is Result.FAIL and check.samples == 300, check
    assert check.value == 100 / 300 and "100 of 300 matched answers differ" in check.message
    relaxed = analyse(api, namespace, port, strategy="Shadow", drift={"enabled": False}, slo={"enabled": False},
                      champion={"maxDisagreement": 0.5}, minSampleSize=100)
    assert by_name(relaxed)["champion.agreement"].result is Result.PASS
    canary = analyse(api, namespace, port, drift={"enabled": False}, slo={"enabled": False})
    assert "champion.agreement" not in by_name(canary)  # a canary's tracks answer different requests
