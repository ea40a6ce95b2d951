"""The Direct provider through the API server's pod proxy, as an operator outside the
cluster reads the monitors: GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/drift.

The API server refuses to proxy to loopback addresses, and kwok's usual pods have them
(test_direct_provider.py shows that refusal reported as Inconclusive). Here the pods sit
on an extra fake node whose podCIDR is an ordinary private range that this machine
routes to its loopback interface (`ip route add local`), so the API server proxies to
real monitor processes bound to those pod IPs. Changing routes needs CAP_NET_ADMIN;
without it the test is skipped and says so."""

from __future__ import annotations

import subprocess

import pytest

from modelops_operator.analysis import Result
from modelops_operator.naming import LABEL_MD, LABEL_REVISION

from ..prom import free_port
from .monitors import Monitor, make_profile, records
from .test_direct_provider import analyse, by_name, wait_pod_ips

pytestmark = pytest.mark.cluster

POD_NET = "10.213.0.0/24"
PODS = {  # pod -> (revision, drifted)
    "churn-bbbb-0": ("bbbb", True),
    "churn-bbbb-1": ("bbbb", True),
    "churn-aaaa-0": ("aaaa", False),
}


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def routed_pod_net():
    """POD_NET delivered to this machine's loopback, for the duration of the test."""
    try:
        added = _ip("route", "replace", "local", POD_NET, "dev", "lo")
    except FileNotFoundError:
        pytest.skip("no `ip` command: cannot route a pod network to loopback")
    if added.returncode != 0:
        pytest.skip(f"cannot route {POD_NET} to loopback (needs CAP_NET_ADMIN): {added.stderr.strip()}")
    yield
    _ip("route", "del", "local", POD_NET, "dev", "lo")


@pytest.fixture
def proxied_fleet(cluster, namespace, routed_pod_net, tmp_path):
    node = f"kwok-proxy-{namespace[-8:]}"
    cluster.apply({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": node}},
        # Tainted: no other test's pods land here; these are bound by nodeName.
        "spec": {"podCIDR": POD_NET, "taints": [{"key": "modelops.io/pod-proxy-test", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.2.250"}],
                   "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                   "capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"}},
    })
    monitors: dict[str, Monitor] = {}
    try:
        cluster.apply([{"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "labels": {LABEL_MD: "churn", LABEL_REVISION: rev}},
                        "spec": {"nodeName": node, "containers": [{"name": "model", "image": "registry.example/m:1"}]}}
                       for name, (rev, _) in PODS.items()], namespace)

        pod_ips = wait_pod_ips(cluster, namespace, len(PODS))
        profile = make_profile(tmp_path / "profile.json")
        port = free_port()
        for name, (rev, _) in PODS.items():
            track = "candidate" if rev == "bbbb" else "stable"
            monitors[name] = Monitor(profile, tmp_path, pod_ips[name], port, namespace, "churn", track, rev)
        for i, (name, (_, drifted)) in enumerate(PODS.items()):
            monitors[name].wait_ready().post(records(300, seed=20 + i, drifted=drifted))
        yield namespace, port, monitors, pod_ips
    finally:
        for m in monitors.values():
            m.stop()
        cluster.kubectl("delete", "pods", "--all", "-n", namespace, "--grace-period=0", "--force", "--wait=false",
                        check=False)
        cluster.kubectl("delete", "node", node, "--wait=false", check=False)


def test_pod_proxy_reads_every_monitor_of_the_track(api, proxied_fleet):
    namespace, port, monitors, pod_ips = proxied_fleet
    assert all(ip.startswith("10.213.0.") for ip in pod_ips.values()), pod_ips

    verdict = analyse(api, namespace, port, access="proxy")
    checks = by_name(verdict)
    # Both candidate monitors answered through the API server, and their drift is seen.
    assert verdict.result is Result.FAIL, verdict.message
    assert checks["drift.share"].samples == 600 and checks["drift.share"].result is Result.FAIL
    assert checks["drift.feature.charges"].result is Result.FAIL

    healthy = analyse(api, namespace, port, access="proxy", candidate="aaaa", stable=None)
    assert healthy.result is Result.PASS, healthy.message

    # A monitor that stops answering is named, through the proxy too.
    monitors["churn-bbbb-1"].stop()
    silent = by_name(analyse(api, namespace, port, access="proxy"))["monitor.candidate"]
    assert silent.result is Result.INCONCLUSIVE and "churn-bbbb-1" in silent.message
