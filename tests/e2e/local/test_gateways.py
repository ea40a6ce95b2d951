"""End to end through real Gateway API implementations: Envoy Gateway (the reference
implementation, Envoy from PyPI) and Traefik v3. Every request goes to the gateway's
listener; which backend serves it is the gateway's decision alone, and the tests count
it from what the model servers answered and what their monitors saw."""

from __future__ import annotations

import math
import re
import time
import urllib.request

import pytest

from ...kube import wait_for
from ..faulty import flaky_model_dir
from .conftest import churn
from .test_rollbacks import DRIFT, back_on_stable, rolled_back
from .test_rollouts import deploy_stable, settled, start_rollout, wait_promoted

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

SETTLE = 2.0  # seconds after a status change before its route is counted as in effect


def within_binomial(hits: int, n: int, p: float, sds: float = 4.0) -> bool:
    """hits out of n is within `sds` standard deviations of a share p (and 2 points)."""
    return n > 0 and abs(hits / n - p) <= sds * math.sqrt(p * (1 - p) / n) + 0.02


def weight_periods(watch, end: float) -> list[tuple[int, float, float]]:
    """(candidate weight, from, to) for each stretch the status held one weight, less
    SETTLE seconds at its start for the gateway to take up the route."""
    out = []
    entries = watch.entries
    for i, (t, st) in enumerate(entries):
        until = entries[i + 1][0] if i + 1 < len(entries) else end
        if st.get("candidate") and st.get("weights"):
            out.append((int(st["weights"]["candidate"]), t + SETTLE, until))
    return [p for p in out if p[2] - p[1] > 3]


def canary_steps(stack, models, impl):
    routing = stack.through(impl)
    deploy_stable(stack, models, replicas=1, routing=routing)
    traffic = stack.traffic(rate=20, rows=2)  # 20 req/s: enough candidate rows for minSampleSize at 20%
    watch = stack.watch()
    candidate = start_rollout(stack, models, "2.0.0", "churn-xgboost-v1", replicas=1, routing=routing,
                              steps=[{"weight": 20, "pause": "12s"}, {"weight": 80, "pause": "8s"}])
    st, promoted_at = wait_promoted(stack)
    assert st["lastVerdict"]["result"] == "Pass", st["lastVerdict"]
    seen = {}
    for weight, start, end in weight_periods(watch, promoted_at):
        sent = [r for r in traffic.between(start, end) if r[3] == 200]
        hits = sum(1 for r in sent if r[2] == candidate)
        seen.setdefault(weight, [0, 0])
        seen[weight][0] += hits
        seen[weight][1] += len(sent)
    print(f"{impl.name}: candidate share per step {seen}")
    # Both steps far enough from an even split that a gateway ignoring weights fails.
    for weight in (20, 80):
        hits, n = seen[weight]
        assert n >= 100 and within_binomial(hits, n, weight / 100), (weight, hits, n)
    settled(stack, candidate, 1)
    time.sleep(SETTLE)
    assert {r[2] for r in traffic.between(time.time() - 1.5)} == {candidate}
    errors = [r for r in traffic.requests if r[3] != 200]
    assert not errors, timeline(watch, errors)
    return seen


def route_ready(st: dict) -> dict:
    return next((c for c in st.get("conditions", []) if c["type"] == "RouteReady"), {})


def timeline(watch, requests) -> str:
    """What the status said when each of these requests was sent, for failure messages."""
    lines = []
    for r in requests[:20]:
        st = next((s for t, s in reversed(watch.entries) if t <= r[0]), {})
        lines.append(f"{r} phase={st.get('phase')} stage={st.get('stage')} weights={st.get('weights')}")
    return "\n".join(lines)


def test_canary_steps_through_envoy_gateway(stack, models, envoy_gateway):
    canary_steps(stack, models, envoy_gateway)


def test_canary_steps_through_traefik(stack, models, traefik_gateway):
    canary_steps(stack, models, traefik_gateway)


def test_drifting_gateway_canary_is_rolled_back(stack, models, envoy_gateway):
    routing = stack.through(envoy_gateway)
    stable = deploy_stable(stack, models, replicas=1, routing=routing)
    traffic = stack.traffic(rate=10, rows=5)
    candidate = start_rollout(stack, models, "2.0.0", "churn-xgboost-v1", replicas=1, routing=routing,
                              steps=[{"weight": 50, "pause": "60s"}])
    wait_for(lambda: traffic.rows_by_revision[candidate] >= 50, 60, interval=0.1, message="canary traffic")
    traffic.drift(DRIFT["kind"], DRIFT["feature"], DRIFT["amount"])
    st = wait_for(rolled_back(stack), 180, interval=0.25, message="the drifting canary rolled back")
    assert "monthly_charges" in str(st["failedChecks"])
    back_on_stable(stack, traffic, stable, candidate, traffic.drift_started)
    assert not [r for r in traffic.requests if r[3] != 200]


def wait_status(stack, watch, predicate, timeout: float, message: str, since: float = 0.0):
    """The first (time, status) the status log saw at or after `since` with predicate
    true; on timeout the error carries the status as it is."""
    try:
        return wait_for(lambda: watch.first(predicate, since), timeout, message=message)
    except TimeoutError as err:
        raise TimeoutError(f"{err}; status: {stack.status()}") from None


def requests_seen(pod) -> float:
    """Requests the pod's monitor has counted (every status class)."""
    with urllib.request.urlopen(f"{pod.monitor_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(m) for m in re.findall(r'^modelops_requests_total\{[^}]*\} (\S+)$', text, re.M))


def candidate_pod(stack, revision):
    return next(p for p in stack.runner.running() if p.labels.get("modelops.io/revision") == revision)


def shadow(models, stack, impl, model: str, mirror: int, duration: str, analysis: dict | None = None):
    routing = stack.through(impl)
    strategy = {"type": "Shadow", "shadow": {"mirrorPercent": mirror, "duration": duration}}
    deploy_stable(stack, models, replicas=1, routing=routing, strategy=strategy)
    traffic = stack.traffic(rate=20, rows=2)
    # Clients' answers before the rollout, as a baseline: the shadow can start within seconds.
    wait_for(lambda: len(traffic.requests) >= 60, 30, interval=0.1, message="traffic before the rollout")
    watch = stack.watch()
    stack.apply(churn(models, "2.0.0", model, replicas=1, routing=routing, strategy=strategy, **(analysis or {})))
    return traffic, watch


def test_shadow_mirrors_its_share_and_clients_see_only_the_stable(stack, models, envoy_gateway):
    traffic, watch = shadow(models, stack, envoy_gateway, "churn-xgboost-v1", 40, "40s")
    _, st = wait_status(stack, watch, lambda s: s.get("stage") == "Shadowing", 90, "shadowing")
    stable, candidate = st["stable"]["revision"], st["candidate"]["revision"]
    stack.wait_serving(candidate, 1)
    pod = candidate_pod(stack, candidate)
    time.sleep(SETTLE)
    t0, seen0 = time.time(), requests_seen(pod)
    time.sleep(20)
    t1, seen1 = time.time(), requests_seen(pod)
    sent = len(traffic.between(t0 + 0.3, t1 + 0.3))  # the monitor hears of a request ~0.25 s later
    mirrored = seen1 - seen0
    print(f"shadow 40%: {mirrored:.0f} of {sent} client requests reached the candidate's monitor")
    assert sent >= 200 and within_binomial(int(mirrored), sent, 0.40), (mirrored, sent)
    during = traffic.between(t0, t1)
    assert during and {r[2] for r in during} == {stable}  # every client answer came from the stable
    wait_promoted(stack)
    assert not [r for r in traffic.requests if r[3] != 200]


def test_a_hanging_failing_shadow_never_touches_clients(stack, models, envoy_gateway, tmp_path):
    """A candidate that takes a second over every call and fails half of them: the
    mirror's answers are discarded, so clients see neither, and it is never promoted
    (rolled back on its errors, or paused when too few of its answers arrive)."""
    name = f"churn-hanging-{tmp_path.name}"
    flaky_model_dir(models / "churn-sklearn-v1", models / name, rate=0.5, delay=1.0)
    traffic, watch = shadow(models, stack, envoy_gateway, name, 100, "60s")
    begun, st = wait_status(stack, watch, lambda s: s.get("stage") == "Shadowing", 90, "shadowing")
    stable = st["stable"]["revision"]
    # The log starts with the stable's own Succeeded: the shadow's end comes after `begun`.
    ended, final = wait_status(stack, watch, lambda s: s.get("phase") in ("RolledBack", "Paused", "Succeeded"), 180,
                               "the shadow's end", since=begun)
    time.sleep(5)
    assert (stack.status().get("stable") or {}).get("revision") == stable, "a failing shadow was promoted"
    print(f"hanging shadow: {final['phase']}, {final.get('history', [{}])[0].get('reason')}; "
          f"last verdict {final.get('lastVerdict', {}).get('message')}")
    # No client saw the candidate's errors or waited for it.
    assert not [r for r in traffic.requests if r[3] != 200]
    assert {r[2] for r in traffic.between(begun, ended)} == {stable}
    baseline = sorted(lat for t, lat in traffic.latencies if t < begun - 1)
    shadowed = sorted(lat for t, lat in traffic.latencies if begun + SETTLE <= t < ended)
    p95 = lambda xs: xs[int(0.95 * (len(xs) - 1))]  # noqa: E731
    print(f"client p95 before {p95(baseline) * 1000:.1f} ms ({len(baseline)} requests), while shadowing a "
          f"1 s candidate {p95(shadowed) * 1000:.1f} ms ({len(shadowed)} requests)")
    assert len(baseline) >= 50 and len(shadowed) >= 50
    assert p95(shadowed) < p95(baseline) + 0.1 < 1.0  # noise, never the candidate's second


def test_shadow_on_traefik_is_refused_and_the_stable_keeps_serving(stack, models, traefik_gateway):
    traffic, watch = shadow(models, stack, traefik_gateway, "churn-xgboost-v1", 50, "20s")

    def refused(st):
        return route_ready(st).get("reason") == "FeatureNotSupported"
    _, st = wait_status(stack, watch, refused, 60, "the Shadow refused")
    cond = route_ready(st)
    assert "HTTPRouteRequestMirror" in cond["message"] and "traefik" in cond["message"]
    assert st["phase"] == "Pending" and not st.get("candidate")
    time.sleep(10)
    route = stack.cluster.get_json("httproute", "churn", namespace=stack.namespace)
    assert "filters" not in route["spec"]["rules"][0]  # the stable's route as it was
    recent = traffic.between(time.time() - 10)
    assert len(recent) >= 100 and {(r[2], r[3]) for r in recent} == {(st["stable"]["revision"], 200)}
    assert not [r for r in traffic.requests if r[3] != 200]
    reasons = stack.cluster.kubectl("get", "events", "-n", stack.namespace, "-o",
                                    "jsonpath={.items[*].reason}").stdout.split()
    assert reasons.count("RolloutRefused") == 1
