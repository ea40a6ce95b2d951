"""The operator as a real process, as the chart's ServiceAccount, on the local cluster
(real API server, controller-manager, scheduler, kwok pods), analysing through a real
Prometheus. Custom PromQL checks stand in for the model's metrics here: vector(1)
passes a `min: 1` check and vector(0) fails it."""

import json
import random
import subprocess
import sys
import time

import pytest

from ..conftest import gateway_routing
from ..kube import wait_for
from .operator_harness import chart_operator, children, event_reasons, get_md, wait_phase

pytestmark = pytest.mark.cluster

RELEASE = "modelops-op"
PASS = [{"name": "healthy", "query": "vector(1)", "min": 1}]
FAIL = [{"name": "healthy", "query": "vector(0)", "min": 1}]


def md(name, version="1.0.0", strategy=None, checks=PASS, replicas=4, **analysis):
    return {
        "apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
        "spec": {
            "model": {"name": name, "version": version, "image": f"registry.example/{name}:{version}"},
            "replicas": replicas,
            "strategy": strategy or {"type": "Canary", "canary": {"steps": [{"weight": 25}, {"weight": 50, "pause": "2s"}]}},
            "analysis": {"interval": "2s", "drift": {"enabled": False}, "slo": {"enabled": False},
                         "customChecks": checks, **analysis},
            "progressDeadline": "2m",
        },
    }


@pytest.fixture
def operator(cluster, crd, namespace, prometheus, tmp_path):
    with chart_operator(cluster, namespace, RELEASE, prometheus.url, tmp_path) as op:
        yield op


def apply(cluster, namespace, doc):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))


def set_version(cluster, namespace, name, version, **spec_changes):
    patch = {"spec": {"model": {"version": version, "image": f"registry.example/{name}:{version}"}, **spec_changes}}
    cluster.kubectl("patch", "md", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def deployments(cluster, namespace, name):
    out = json.loads(cluster.kubectl("get", "deploy", "-n", namespace, "-l", f"modelops.io/modeldeployment={name}",
                                     "-o", "json").stdout)
    return {d["metadata"]["annotations"]["modelops.io/model-version"]: d for d in out["items"]}


def test_canary_is_promoted(cluster, namespace, operator):
    apply(cluster, namespace, md("churn"))
    st = wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    assert st["stable"]["readyReplicas"] == 4
    set_version(cluster, namespace, "churn", "2.0.0")
    st = wait_phase(cluster, namespace, "churn", "Succeeded", "2.0.0")
    assert st["history"][0]["outcome"] == "Succeeded"
    # Events follow the status write that records their transition, so the last may come a moment later.
    expected = ["Deploying", "Available", "RolloutStarted", "StepWeightSet", "StepStarted", "StepWeightSet",
                "PauseEnded", "Promoting", "Promoted"]
    reasons = wait_for(lambda: (r := event_reasons(cluster, namespace, "churn"))[-1:] == ["Promoted"] and r, 10,
                       message="the Promoted Event")
    assert reasons == expected
    wait_for(lambda: list(deployments(cluster, namespace, "churn")) == ["2.0.0"], 30, message="old revision removed")
    deploy = deployments(cluster, namespace, "churn")["2.0.0"]
    assert deploy["spec"]["replicas"] == 4 and deploy["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    # The entry Service selects the model's pods, and its endpoints are the kwok pods.
    svc = json.loads(cluster.kubectl("get", "svc", "churn", "-n", namespace, "-o", "json").stdout)
    assert svc["spec"]["selector"] == {"modelops.io/modeldeployment": "churn"}
    # The user's object was never edited: no finalizer, no annotation from the operator.
    meta = get_md(cluster, namespace, "churn")["metadata"]
    assert not meta.get("finalizers") and not meta.get("annotations", {}).keys() - {
        "kubectl.kubernetes.io/last-applied-configuration"}


def test_failing_canary_is_rolled_back(cluster, namespace, operator):
    apply(cluster, namespace, md("churn", failureLimit=2))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "churn", "2.0.0", analysis={"customChecks": FAIL})
    st = wait_phase(cluster, namespace, "churn", "RolledBack", "1.0.0")
    assert st["weights"] == {"stable": 100, "candidate": 0, "mirror": 0}
    assert st["lastVerdict"]["result"] == "Fail" and st["failedChecks"][0]["name"] == "custom.healthy"
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "custom.healthy" in degraded["message"]
    wait_for(lambda: list(deployments(cluster, namespace, "churn")) == ["1.0.0"], 30, message="candidate removed")
    assert event_reasons(cluster, namespace, "churn")[-1] == "AnalysisFailed"


def plugin(cluster, namespace, *args):
    return subprocess.run([sys.executable, "-m", "modelops_operator.plugin", *args, "-n", namespace,
                           "--kubeconfig", str(cluster.kubeconfig)], capture_output=True, text=True)


def test_manual_promote_abort_and_retry(cluster, namespace, operator):
    strategy = {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "Manual"}, {"weight": 50}]}}
    apply(cluster, namespace, md("churn", strategy=strategy))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "churn", "2.0.0")
    wait_phase(cluster, namespace, "churn", "Paused")
    status = plugin(cluster, namespace, "status", "churn")
    assert status.returncode == 0, status.stderr
    assert "Phase:       Paused - step 1/2, Paused" in status.stdout and "candidate 25%" in status.stdout
    assert plugin(cluster, namespace, "promote", "churn").returncode == 0
    wait_phase(cluster, namespace, "churn", "Succeeded", "2.0.0")

    set_version(cluster, namespace, "churn", "3.0.0")
    wait_phase(cluster, namespace, "churn", "Paused")
    # Abort through the annotation itself, as GitOps or a script would.
    cluster.kubectl("annotate", "md", "churn", "-n", namespace, "modelops.io/abort=first", "--overwrite")
    st = wait_phase(cluster, namespace, "churn", "RolledBack", "2.0.0")
    assert st["history"][0]["outcome"] == "Aborted" and st["blockedRevision"]
    time.sleep(3)
    assert get_md(cluster, namespace, "churn")["status"]["phase"] == "RolledBack"  # not retried by itself
    assert plugin(cluster, namespace, "retry", "churn").returncode == 0
    wait_phase(cluster, namespace, "churn", "Paused")
    assert plugin(cluster, namespace, "promote", "churn").returncode == 0
    wait_phase(cluster, namespace, "churn", "Succeeded", "3.0.0")
    history = plugin(cluster, namespace, "history", "churn").stdout.splitlines()
    assert history[0].split()[:3] == ["REVISION", "VERSION", "OUTCOME"]
    assert [line.split()[1:3] for line in history[1:]] == [["3.0.0", "Succeeded"], ["3.0.0", "Aborted"],
                                                           ["2.0.0", "Succeeded"]]
    missing = plugin(cluster, namespace, "status", "nobody")
    assert missing.returncode == 1 and "not found" in missing.stderr
    # The object says who wrote what: the user's apply the spec, the operator the status
    # (its own field manager, on the status subresource), the plugin its command annotations.
    fields = json.loads(cluster.kubectl("get", "md", "churn", "-n", namespace, "--show-managed-fields",
                                        "-o", "json").stdout)["metadata"]["managedFields"]
    by = {(f["manager"], f.get("subresource", "")): f["fieldsV1"] for f in fields}
    # (kubectl apply, patch and annotate are this test's own writes.)
    assert set(by) == {("kubectl-client-side-apply", ""), ("kubectl-patch", ""), ("kubectl-annotate", ""),
                       ("modelops-operator", "status"), ("modelops-plugin", "")}, set(by)
    assert set(by[("modelops-operator", "status")]) == {"f:status"}
    assert set(by[("modelops-plugin", "")]["f:metadata"]["f:annotations"]) == {"f:modelops.io/promote",
                                                                                "f:modelops.io/retry"}


def test_blue_green(cluster, namespace, operator):
    strategy = {"type": "BlueGreen", "blueGreen": {}, "scaleDownDelay": "3s"}
    apply(cluster, namespace, md("fraud", strategy=strategy, replicas=2))
    st = wait_phase(cluster, namespace, "fraud", "Succeeded", "1.0.0")
    blue = st["stable"]["revision"]

    def active():
        svc = json.loads(cluster.kubectl("get", "svc", "fraud", "-n", namespace, "-o", "json").stdout)
        return svc["spec"]["selector"]["modelops.io/revision"]

    assert active() == blue
    set_version(cluster, namespace, "fraud", "2.0.0", analysis={"customChecks": FAIL})
    seen = set()
    wait_for(lambda: (seen.add(active()), get_md(cluster, namespace, "fraud")["status"]["phase"] == "RolledBack")[1],
             60, interval=0.2, message="bad green rolled back")
    assert seen == {blue}  # a bad green is never switched to
    set_version(cluster, namespace, "fraud", "3.0.0", analysis={"customChecks": PASS})
    st = wait_phase(cluster, namespace, "fraud", "Succeeded", "3.0.0")
    # Succeeded is recorded only once the switch is in effect: the active Service already
    # selects green when the status says so.
    assert active() == st["stable"]["revision"] != blue
    wait_for(lambda: list(deployments(cluster, namespace, "fraud")) == ["3.0.0"], 30, message="old colour removed")


def test_shadow_mirrors_through_the_route(cluster, namespace, operator, envoy_gateway):
    strategy = {"type": "Shadow", "shadow": {"mirrorPercent": 40, "duration": "4s"},
                "trafficRouting": gateway_routing(envoy_gateway, namespace)}
    apply(cluster, namespace, md("pricing", strategy=strategy, replicas=2, champion={"enabled": False}))
    wait_phase(cluster, namespace, "pricing", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "pricing", "2.0.0")

    def mirroring():
        route = json.loads(cluster.kubectl("get", "httproute", "pricing", "-n", namespace, "-o", "json").stdout)
        filters = route["spec"]["rules"][0].get("filters", [])
        return filters and filters[0]["requestMirror"]["percent"] == 40 and route

    route = wait_for(mirroring, 60, message="mirroring route")
    assert route["spec"]["parentRefs"][0]["name"] == envoy_gateway.parent_ref["name"]
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["pricing-stable"]
    wait_phase(cluster, namespace, "pricing", "Succeeded", "2.0.0")
    assert "ShadowStarted" in event_reasons(cluster, namespace, "pricing")


def test_ab_test_keeps_the_control_without_a_winner(cluster, namespace, operator, envoy_gateway):
    strategy = {"type": "ABTest", "trafficRouting": gateway_routing(envoy_gateway, namespace), "abTest": {
        "split": {"candidateWeight": 30},
        "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.02, "maxDuration": "6s"}}}
    apply(cluster, namespace, md("offers", strategy=strategy, replicas=2))
    wait_phase(cluster, namespace, "offers", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "offers", "2.0.0")

    def split():
        route = json.loads(cluster.kubectl("get", "httproute", "offers", "-n", namespace, "-o", "json").stdout)
        split = route["spec"]["rules"][0]["backendRefs"]  # new sessions' rule
        return len(split) == 2 and [(b["name"], b["weight"]) for b in split]

    assert wait_for(split, 60, message="A/B route") == [("offers-stable", 70), ("offers-canary", 30)]
    st = wait_phase(cluster, namespace, "offers", "RolledBack", "1.0.0")
    assert st["history"][0]["reason"] == "ControlKept"
    assert next(c for c in st["conditions"] if c["type"] == "Degraded")["status"] == "False"


def test_spec_change_and_delete_mid_rollout(cluster, namespace, operator):
    strategy = {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "Manual"}, {"weight": 50}]}}
    apply(cluster, namespace, md("churn", strategy=strategy))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "churn", "2.0.0")
    wait_phase(cluster, namespace, "churn", "Paused")
    set_version(cluster, namespace, "churn", "3.0.0")
    st = wait_for(lambda: (s := get_md(cluster, namespace, "churn")["status"]).get("candidate", {}).get("version") == "3.0.0"
                  and s.get("phase") == "Paused" and s, 60, message="new candidate paused at step 1")
    assert st["history"][0]["outcome"] == "Superseded" and st["currentStep"] == 0
    wait_for(lambda: sorted(deployments(cluster, namespace, "churn")) == ["1.0.0", "3.0.0"], 30,
             message="superseded candidate removed")

    cluster.kubectl("delete", "md", "churn", "-n", namespace, "--wait=true")
    wait_for(lambda: not any(children(cluster, namespace, "churn").values()), 60, message="children collected")


def test_a_deployment_deleted_by_hand_comes_back(cluster, namespace, operator):
    apply(cluster, namespace, md("churn"))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    before = children(cluster, namespace, "churn")
    deploy = deployments(cluster, namespace, "churn")["1.0.0"]
    cluster.kubectl("delete", "deploy", deploy["metadata"]["name"], "-n", namespace, "--wait=true")
    again = wait_for(lambda: (d := deployments(cluster, namespace, "churn").get("1.0.0")) and
                     d["metadata"]["uid"] != deploy["metadata"]["uid"] and d, 30, message="Deployment re-created")
    assert again["spec"]["replicas"] == 4
    assert children(cluster, namespace, "churn") == before
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")


def test_kill_nine_at_random_moments(cluster, namespace, operator):
    """SIGKILL the operator at 10 random moments across rollouts; each rollout still
    ends right, and the Events show every step exactly once."""
    rng = random.Random(20261124)
    strategy = {"type": "Canary", "canary": {"steps": [{"weight": 25}, {"weight": 50, "pause": "1s"}, {"weight": 75}]}}
    apply(cluster, namespace, md("churn", strategy=strategy))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    kills = 0
    outcomes = []
    for round_, (version, checks, expected) in enumerate([("2.0.0", PASS, "Succeeded"), ("3.0.0", FAIL, "RolledBack"),
                                                          ("4.0.0", PASS, "Succeeded")]):
        set_version(cluster, namespace, "churn", version, analysis={"customChecks": checks})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = get_md(cluster, namespace, "churn").get("status") or {}
            if st.get("phase") == expected and not st.get("candidate") and st.get("specHash") and \
                    st["history"][0]["version"] == version:
                break
            if kills < 10 and rng.random() < 0.5:
                time.sleep(rng.uniform(0, 1.5))
                operator.kill9()
                kills += 1
                operator.start()
            time.sleep(0.3)
        outcomes.append(get_md(cluster, namespace, "churn")["status"]["history"][0]["outcome"])
    while kills < 10:  # the rest at rest: a restart of an idle operator changes nothing
        operator.kill9()
        kills += 1
        operator.start()
        time.sleep(0.5)
    assert outcomes == ["Succeeded", "RolledBack", "Succeeded"]
    # A transition recorded just before a kill is announced by the next process.
    seq = get_md(cluster, namespace, "churn")["status"]["transition"]["seq"]
    reasons = wait_for(lambda: len(r := event_reasons(cluster, namespace, "churn")) >= seq and r, 30,
                       message="every transition announced")
    one_rollout_ok = ["RolloutStarted", "StepWeightSet", "StepStarted", "StepWeightSet", "PauseEnded", "StepStarted",
                      "StepWeightSet", "Promoting", "Promoted"]
    expected = ["Deploying", "Available", *one_rollout_ok,
                "RolloutStarted", "StepWeightSet", "AnalysisFailed", *one_rollout_ok]
    assert reasons == expected, reasons
    assert len(deployments(cluster, namespace, "churn")) <= 2  # no duplicate children
    assert seq == len(reasons)  # no transition without its Event, and no Event twice


def test_invalid_spec_that_slipped_past_validation(cluster, namespace, operator):
    """With an older CRD that lacks a rule, a bad spec reaches the operator: it says
    InvalidSpec, naming the field, and changes nothing."""
    apply(cluster, namespace, md("churn"))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")
    before = children(cluster, namespace, "churn")
    crd = json.loads(cluster.kubectl("get", "crd", "modeldeployments.modelops.io", "-o", "json").stdout)
    steps = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "strategy"]["properties"]["canary"]["properties"]["steps"]
    rules = steps.pop("x-kubernetes-validations")
    path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/strategy/properties/canary/properties/steps/x-kubernetes-validations"
    cluster.kubectl("patch", "crd", "modeldeployments.modelops.io", "--type=json",
                    "-p", json.dumps([{"op": "remove", "path": path}]))
    try:
        bad = {"spec": {"model": {"version": "2.0.0"},
                        "strategy": {"canary": {"steps": [{"weight": 60}, {"weight": 30}]}}}}
        wait_for(lambda: cluster.kubectl("patch", "md", "churn", "-n", namespace, "--type=merge",
                                         "-p", json.dumps(bad), check=False).returncode == 0, 30,
                 message="the relaxed CRD to accept the bad spec")

        def invalid():
            st = get_md(cluster, namespace, "churn")["status"]
            cond = next((c for c in st["conditions"] if c["type"] == "InvalidSpec"), {})
            return cond.get("status") == "True" and (st, cond)

        st, cond = wait_for(invalid, 60, message="InvalidSpec")
        assert "spec.strategy.canary.steps[1].weight" in cond["message"]
        assert st["phase"] == "Succeeded" and st["stable"]["version"] == "1.0.0" and "candidate" not in st
        time.sleep(3)
        assert children(cluster, namespace, "churn") == before
        assert event_reasons(cluster, namespace, "churn")[-1] == "InvalidSpec"
    finally:
        cluster.kubectl("patch", "crd", "modeldeployments.modelops.io", "--type=json",
                        "-p", json.dumps([{"op": "add", "path": path, "value": rules}]))


def test_shadow_failure_never_takes_traffic(cluster, namespace, operator, envoy_gateway):
    strategy = {"type": "Shadow", "shadow": {"mirrorPercent": 100, "duration": "30s"},
                "trafficRouting": gateway_routing(envoy_gateway, namespace)}
    apply(cluster, namespace, md("pricing", strategy=strategy, replicas=2))
    wait_phase(cluster, namespace, "pricing", "Succeeded", "1.0.0")
    set_version(cluster, namespace, "pricing", "2.0.0", analysis={"customChecks": FAIL})
    weights = set()

    def rolled_back():
        route = json.loads(cluster.kubectl("get", "httproute", "pricing", "-n", namespace, "-o", "json").stdout)
        weights.update(b.get("weight") for b in route["spec"]["rules"][0]["backendRefs"] if b["name"].endswith("canary"))
        # The route is applied after the status write that records the rollback.
        return get_md(cluster, namespace, "pricing")["status"]["phase"] == "RolledBack" and \
            "filters" not in route["spec"]["rules"][0] and route

    route = wait_for(rolled_back, 60, interval=0.3, message="shadow rolled back and its mirror removed")
    assert weights <= {0}  # the candidate only ever saw mirrored requests
    assert "filters" not in route["spec"]["rules"][0]


def test_a_route_whose_gateway_does_not_exist_holds_the_rollout(cluster, namespace, operator):
    routing = {"gatewayAPI": {"parentRefs": [{"name": "no-such-gateway"}]}}
    strategy = {"type": "Canary", "canary": {"steps": [{"weight": 25}]}, "trafficRouting": routing}
    apply(cluster, namespace, md("churn", strategy=strategy, replicas=2))
    wait_phase(cluster, namespace, "churn", "Succeeded", "1.0.0")

    def route_ready():
        st = get_md(cluster, namespace, "churn").get("status") or {}
        return next((c for c in st.get("conditions", []) if c["type"] == "RouteReady"), None)
    cond = wait_for(lambda: (c := route_ready()) and c["reason"] == "GatewayNotFound" and c, 30,
                    message="RouteReady names the missing Gateway")
    assert cond["status"] == "False" and f"{namespace}/no-such-gateway does not exist" in cond["message"]
    shown = plugin(cluster, namespace, "status", "churn").stdout
    assert "RouteReady: GatewayNotFound" in shown and "no-such-gateway does not exist" in shown, shown
    set_version(cluster, namespace, "churn", "2.0.0")
    time.sleep(8)
    st = get_md(cluster, namespace, "churn")["status"]
    # The candidate may start its pods, but no traffic moves and nothing is analysed.
    assert st["weights"]["candidate"] == 0 and st.get("stage") == "Scaling" and "lastVerdict" not in st, st
    route = json.loads(cluster.kubectl("get", "httproute", "churn", "-n", namespace, "-o", "json").stdout)
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["churn-stable"]
