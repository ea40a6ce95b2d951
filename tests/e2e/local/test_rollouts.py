"""End-to-end rollouts with real model servers, monitors, Prometheus and operator.

Stable is examples/train_churn.py's scikit-learn model (1.0.0). The healthy release
(2.0.0) is its XGBoost model trained on the same data: a different model whose inputs
and predictions match its own reference profile. (The examples' `-v2` models learnt
monthly charges in cents: a release that drifts on normal traffic.)"""

from __future__ import annotations

import time

import pytest

from ...kube import wait_for
from .conftest import churn

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

CONTRACT = {"namespace", "modeldeployment", "revision", "pod"}


def pods_of(stack, revision: str) -> set[str]:
    out = stack.cluster.kubectl("get", "pods", "-n", stack.namespace, "-l", f"modelops.io/revision={revision}",
                                "-o", "jsonpath={.items[*].metadata.name}").stdout
    return set(out.split())


def settled(stack, revision: str, count: int, timeout: float = 90) -> None:
    """Waits until the promoted revision's Deployment is the stable track's and fully
    rolled out, and its `count` pods serve."""
    def check():
        deploy = stack.cluster.get_json("deploy", "-l", f"modelops.io/revision={revision}",
                                        namespace=stack.namespace)["items"]
        if len(deploy) != 1:
            return False
        d = deploy[0]
        st = d.get("status") or {}
        if d["metadata"]["labels"].get("modelops.io/track") != "stable" or \
                st.get("observedGeneration") != d["metadata"]["generation"] or \
                not st.get("updatedReplicas") == st.get("replicas") == count:
            return False
        names = pods_of(stack, revision)
        serving = {p.name for p in stack.runner.running() if stack.runner.serving(p.ip)}
        return len(names) == count and names <= serving
    wait_for(check, timeout, message=f"{count} serving pods of revision {revision}")


def deploy_stable(stack, models, replicas: int = 2, **kw) -> str:
    stack.apply(churn(models, "1.0.0", "churn-sklearn-v1", replicas=replicas, **kw))
    st = stack.wait_phase("Succeeded", "1.0.0")
    revision = st["stable"]["revision"]
    stack.wait_serving(revision, replicas)
    return revision


def start_rollout(stack, models, version: str, model: str, **kw) -> str:
    stack.apply(churn(models, version, model, **kw))
    st = wait_for(lambda: (s := stack.status()).get("candidate") and s, 60, message="the rollout to start")
    revision = st["candidate"]["revision"]
    stack.wait_serving(revision, 1)
    return revision


def wait_promoted(stack, version: str = "2.0.0") -> tuple[dict, float]:
    """Waits until `version` is stable with no rollout in flight; returns that status and
    when the candidate was first seen with all the traffic (the promotion's start)."""
    promoted_at = None

    def promoted():
        nonlocal promoted_at
        st = stack.status()
        if promoted_at is None and (st.get("weights") or {}).get("candidate") == 100:
            promoted_at = time.time()
        return st.get("phase") == "Succeeded" and (st.get("stable") or {}).get("version") == version \
            and not st.get("candidate") and st
    try:
        st = wait_for(promoted, 240, interval=0.3, message=f"{version} promoted")
    except TimeoutError as err:
        st = stack.status()
        raise TimeoutError(f"{err}; status: phase={st.get('phase')} stage={st.get('stage')} "
                           f"weights={st.get('weights')} conditions={st.get('conditions')} "
                           f"lastVerdict={st.get('lastVerdict')}") from None
    return st, promoted_at or time.time()


def test_healthy_canary_is_promoted(stack, models):
    stable = deploy_stable(stack, models)
    traffic = stack.traffic(rate=10, rows=5)

    # Prometheus found both pods through the API server, with the label contract.
    def scraped():
        series = stack.query(f'modelops_window_samples{{namespace="{stack.namespace}"}}')
        return len(series) == 2 and series
    series = wait_for(scraped, 60, message="both stable monitors scraped")
    for s in series:
        assert CONTRACT <= s["metric"].keys()
        assert not any(k.startswith("exported_") for k in s["metric"])
        assert s["metric"]["modeldeployment"] == "churn" and s["metric"]["revision"] == stable
    assert {s["metric"]["pod"] for s in series} == pods_of(stack, stable)

    candidate = start_rollout(stack, models, "2.0.0", "churn-xgboost-v1")
    serving_at = time.time()
    st, promoted_at = wait_promoted(stack)

    assert st["history"][0]["outcome"] == "Succeeded"
    verdict = st["lastVerdict"]
    assert verdict["result"] == "Pass", verdict
    # The verdict rests on the candidate's real traffic, not on an empty window.
    samples = [c for c in verdict["checks"] if c.get("samples") is not None]
    assert samples and all(c["samples"] >= 100 for c in samples), verdict["checks"]

    # At the 50% step the canary's share of requests is its share of endpoints (1 of 2).
    during = stack.drivers[0].between(serving_at, promoted_at)
    to_candidate = sum(1 for r in during if r[2] == candidate)
    assert len(during) >= 50 and 0.3 <= to_candidate / len(during) <= 0.7, (to_candidate, len(during))

    # Afterwards every request lands on 2.0.0, and the old pods are gone.
    wait_for(lambda: not pods_of(stack, stable), 60, message="1.0.0 pods removed")
    # The 2.0.0 pods scale to full size; kwok reports new ones Ready before they serve.
    settled(stack, candidate, 2)
    time.sleep(3)
    after = traffic.between(time.time() - 2.5)
    assert after and {r[2] for r in after} == {candidate}
    # Nobody noticed the rollout: every request of the whole run was answered.
    failed = [r for r in traffic.requests if r[3] != 200]
    assert not failed, failed[:5]
