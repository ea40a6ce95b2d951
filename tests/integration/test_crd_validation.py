"""The API server itself rejects invalid ModelDeployments, naming the field at fault."""

import copy
import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests/examples").glob("*.yaml"))

BASE = {
    "apiVersion": "modelops.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "churn"},
    "spec": {
        "model": {"name": "churn", "version": "1.3.0", "image": "registry.example/churn:1.3.0"},
        "replicas": 4,
        "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "30s"}, {"weight": 50}]}},
    },
}
GATEWAY = {"gatewayAPI": {"parentRefs": [{"name": "ml-gateway"}]}}
AB = {"split": {"candidateWeight": 50}, "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.02}}


def spec_with(**changes):
    """BASE with dotted paths under spec set (None deletes the key)."""
    doc = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = doc["spec"]
        for name in parents:
            node = node.setdefault(name, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return doc


# (id, document, substrings the error must contain: the field's path and the problem)
INVALID = [
    ("weight-above-100", spec_with(strategy__canary={"steps": [{"weight": 101}]}),
     ["spec.strategy.canary.steps[0].weight", "less than or equal to 100"]),
    ("weight-negative", spec_with(strategy__canary={"steps": [{"weight": -5}, {"weight": 50}]}),
     ["spec.strategy.canary.steps[0].weight", "greater than or equal to 0"]),
    ("weights-decreasing", spec_with(strategy__canary={"steps": [{"weight": 50}, {"weight": 20}]}),
     ["spec.strategy.canary.steps", "must not decrease"]),
    ("last-step-zero", spec_with(strategy__canary={"steps": [{"weight": 0}]}),
     ["spec.strategy.canary.steps", "weight > 0"]),
    ("no-steps", spec_with(strategy__canary={"steps": []}),
     ["spec.strategy.canary.steps", "at least 1 items"]),
    ("unknown-strategy", spec_with(strategy={"type": "Linear", "canary": {"steps": [{"weight": 5}]}}),
     ["spec.strategy.type", "Unsupported value", "Linear"]),
    ("strategy-block-missing", spec_with(strategy={"type": "Canary"}),
     ["spec.strategy", "spec.strategy.canary must be set"]),
    ("strategy-block-mismatched", spec_with(strategy={"type": "BlueGreen", "canary": {"steps": [{"weight": 5}]}}),
     ["spec.strategy", "spec.strategy.blueGreen must be set", "spec.strategy.canary must be set"]),
    ("two-strategy-blocks", spec_with(strategy__blueGreen={}),
     ["spec.strategy", "spec.strategy.blueGreen must be set when, and only when"]),
    ("semver-two-parts", spec_with(model__version="1.3"),
     ["spec.model.version", "semantic version"]),
    ("semver-leading-v", spec_with(model__version="v1.3.0"),
     ["spec.model.version", "semantic version"]),
    ("semver-leading-zero", spec_with(model__version="1.03.0"),
     ["spec.model.version", "semantic version"]),
    ("pause-not-a-duration", spec_with(strategy__canary={"steps": [{"weight": 10, "pause": "30 seconds"}]}),
     ["spec.strategy.canary.steps[0].pause", "must be a duration", "Manual"]),
    ("interval-not-a-duration", spec_with(analysis={"interval": "fast"}),
     ["spec.analysis.interval", "must be a duration"]),
    ("interval-too-short", spec_with(analysis={"interval": "100ms"}),
     ["spec.analysis.interval", "at least 1s"]),
    ("progress-deadline-bad", spec_with(progressDeadline="10 minutes"),
     ["spec.progressDeadline", "must be a duration"]),
    ("replicas-negative", spec_with(replicas=-1),
     ["spec.replicas", "greater than or equal to 1"]),
    ("replicas-zero", spec_with(replicas=0),
     ["spec.replicas", "greater than or equal to 1"]),
    ("image-empty", spec_with(model__image=""),
     ["spec.model.image", "at least 1 chars"]),
    ("image-with-space", spec_with(model__image="registry.example/churn 1.3"),
     ["spec.model.image", "container image reference"]),
    ("model-missing", spec_with(model=None),
     ["spec.model", "Required value"]),
    ("model-name-not-dns", spec_with(model__name="Churn_Model"),
     ["spec.model.name", "DNS label"]),
    ("framework-unknown", spec_with(model__framework="pytorch"),
     ["spec.model.framework", "Unsupported value"]),
    ("uri-without-scheme", spec_with(model__uri="/models/churn"),
     ["spec.model.uri", "s3://BUCKET/PREFIX/, models:/NAME/VERSION or models:/NAME@ALIAS"]),
    ("uri-other-scheme", spec_with(model__uri="gs://models/churn/"),
     ["spec.model.uri", "must be file:///PATH"]),
    ("uri-bad-bucket", spec_with(model__uri="s3://Models/churn/"),
     ["spec.model.uri", "s3://BUCKET/PREFIX/"]),
    ("uri-registry-without-version", spec_with(model__uri="models:/churn"),
     ["spec.model.uri", "models:/NAME@ALIAS"]),
    ("digest-not-sha256", spec_with(model__uri="s3://models/churn/", model__digest="md5:abc"),
     ["spec.model.digest", "sha256:"]),
    ("resolve-interval-on-a-pinned-version", spec_with(model__uri="models:/churn/3", model__resolveInterval="1m"),
     ["spec.model", "resolveInterval needs a moving uri"]),
    ("credentials-for-a-local-model", spec_with(model__uri="file:///models/churn",
                                                model__credentialsSecretRef={"name": "store"}),
     ["spec.model", "credentialsSecretRef is for s3:// and models:/ uris"]),
    ("training-date-not-a-date", spec_with(model__metadata={"trainingDate": "yesterday"}),
     ["spec.model.metadata.trainingDate", "date-time"]),
    ("training-hash-not-hex", spec_with(model__metadata={"trainingDataHash": "not-a-hash"}),
     ["spec.model.metadata.trainingDataHash", "hex digest"]),
    ("metric-not-a-number", spec_with(model__metadata={"metrics": {"auc": "high"}}),
     ["spec.model.metadata.metrics.auc", "number"]),
    ("duplicate-feature", spec_with(model__metadata={"features": [
        {"name": "age", "type": "numeric"}, {"name": "age", "type": "categorical"}]}),
     ["spec.model.metadata.features[1]", "Duplicate value"]),
    ("shadow-without-gateway", spec_with(strategy={"type": "Shadow", "shadow": {}}),
     ["spec.strategy", "trafficRouting.gatewayAPI is required for Shadow and ABTest"]),
    ("abtest-with-replica-routing", spec_with(strategy={"type": "ABTest", "abTest": AB, "trafficRouting": {"replicas": {}}}),
     ["spec.strategy", "trafficRouting.gatewayAPI is required"]),
    ("both-routings", spec_with(strategy__trafficRouting={"replicas": {}, **GATEWAY}),
     ["spec.strategy.trafficRouting", "exactly one of"]),
    ("gateway-without-parents", spec_with(strategy__trafficRouting={"gatewayAPI": {"parentRefs": []}}),
     ["spec.strategy.trafficRouting.gatewayAPI.parentRefs", "at least 1 items"]),
    ("psi-warn-above-fail", spec_with(analysis={"drift": {"psi": {"warn": 0.3, "fail": 0.2}}}),
     ["spec.analysis.drift", "psi.warn must not exceed"]),
    ("drift-share-above-one", spec_with(analysis={"drift": {"maxDriftedFeatureShare": 1.5}}),
     ["spec.analysis.drift.maxDriftedFeatureShare", "between 0 and 1"]),
    ("error-rate-negative", spec_with(analysis={"slo": {"maxErrorRate": -0.1}}),
     ["spec.analysis.slo.maxErrorRate", "between 0 and 1"]),
    ("latency-not-a-duration", spec_with(analysis={"slo": {"maxLatencyP99": "fast"}}),
     ["spec.analysis.slo.maxLatencyP99", "must be a duration"]),
    ("on-inconclusive-unknown", spec_with(analysis={"onInconclusive": "Ignore"}),
     ["spec.analysis.onInconclusive", "Unsupported value"]),
    ("failure-limit-zero", spec_with(analysis={"failureLimit": 0}),
     ["spec.analysis.failureLimit", "greater than or equal to 1"]),
    ("custom-check-without-bounds", spec_with(analysis={"customChecks": [{"name": "kpi", "query": "up"}]}),
     ["spec.analysis.customChecks[0]", "needs min, max or both"]),
    ("custom-check-min-above-max", spec_with(analysis={"customChecks": [{"name": "kpi", "query": "up", "min": 2, "max": 1}]}),
     ["spec.analysis.customChecks[0]", "min must not exceed max"]),
    ("custom-check-with-direct-provider", spec_with(analysis={
        "provider": {"type": "Direct"}, "customChecks": [{"name": "kpi", "query": "up", "min": 1}]}),
     ["spec", "customChecks are PromQL"]),
    ("provider-address-not-url", spec_with(analysis={"provider": {"address": "prometheus:9090"}}),
     ["spec.analysis.provider.address", "http:// or https:// URL"]),
    ("abtest-split-and-match", spec_with(strategy={"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        **AB, "match": {"headers": [{"name": "x-variant", "value": "b"}]}}}),
     ["spec.strategy.abTest", "exactly one of spec.strategy.abTest.split and spec.strategy.abTest.match"]),
    ("abtest-baseline-above-one", spec_with(strategy={"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        **AB, "decision": {"baselineRate": 1.5, "minimumDetectableEffect": 0.02}}}),
     ["spec.strategy.abTest.decision.baselineRate", "strictly between 0 and 1"]),
    ("abtest-effect-too-large", spec_with(strategy={"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        **AB, "decision": {"baselineRate": 0.6, "minimumDetectableEffect": 0.5}}}),
     ["spec.strategy.abTest.decision", "must be below 1"]),
    ("abtest-alpha-zero", spec_with(strategy={"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        **AB, "decision": {"baselineRate": 0.1, "minimumDetectableEffect": 0.02, "alpha": 0}}}),
     ["spec.strategy.abTest.decision.alpha", "above 0"]),
    ("abtest-bad-header-name", spec_with(strategy={"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        "decision": AB["decision"], "match": {"headers": [{"name": "x variant", "value": "b"}]}}}),
     ["spec.strategy.abTest.match.headers[0].name", "HTTP header name"]),
    ("shadow-mirror-zero", spec_with(strategy={"type": "Shadow", "trafficRouting": GATEWAY, "shadow": {"mirrorPercent": 0}}),
     ["spec.strategy.shadow.mirrorPercent", "greater than or equal to 1"]),
    ("shadow-canary-without-steps", spec_with(strategy={"type": "Shadow", "trafficRouting": GATEWAY, "shadow": {"promotion": "Canary"}}),
     ["spec.strategy.shadow", "steps are required"]),
    ("preview-above-replicas", spec_with(replicas=2, strategy={"type": "BlueGreen", "blueGreen": {"previewReplicas": 3}}),
     ["spec", "previewReplicas must not exceed spec.replicas"]),
    ("profile-two-sources", spec_with(monitor={"referenceProfile": {"path": "/models/p.json", "inline": "{}"}}),
     ["spec.monitor.referenceProfile", "exactly one of"]),
    ("profile-relative-path", spec_with(monitor={"referenceProfile": {"path": "models/p.json"}}),
     ["spec.monitor.referenceProfile.path", "absolute path"]),
    ("monitor-window-bad", spec_with(monitor={"window": "five minutes"}),
     ["spec.monitor.window", "must be a duration"]),
    ("resource-quantity-bad", spec_with(resources={"requests": {"cpu": "lots"}}),
     ["spec.resources.requests.cpu", "should match"]),
    ("unknown-field", spec_with(replica=3),
     ["unknown field", "spec.replica"]),
    ("autoscaling-min-zero", spec_with(autoscaling={"minReplicas": 0, "maxReplicas": 3, "podsMetric": {
        "name": "inflight", "targetAverageValue": "4"}}),
     ["spec.autoscaling.minReplicas", "greater than or equal to 1"]),
    ("autoscaling-max-below-min", spec_with(autoscaling={"minReplicas": 4, "maxReplicas": 2, "podsMetric": {
        "name": "inflight", "targetAverageValue": "4"}}),
     ["spec.autoscaling", "maxReplicas must be at least"]),
    ("autoscaling-no-target", spec_with(autoscaling={"minReplicas": 1, "maxReplicas": 2}),
     ["spec.autoscaling", "exactly one of"]),
    ("autoscaling-two-targets", spec_with(resources={"requests": {"cpu": "100m"}}, autoscaling={
        "minReplicas": 1, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50,
        "podsMetric": {"name": "inflight", "targetAverageValue": "4"}}),
     ["spec.autoscaling", "exactly one of"]),
    ("autoscaling-cpu-without-request", spec_with(autoscaling={
        "minReplicas": 1, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50}),
     ["spec", "spec.resources.requests.cpu is required"]),
]


@pytest.fixture(autouse=True)
def _crd_installed(crd):
    """Every test here talks to the API server about ModelDeployments."""


def create(cluster, namespace, doc, dry_run=True):
    args = ["create", "-n", namespace, "-f", "-"]
    if dry_run:
        args.insert(1, "--dry-run=server")
    return cluster.kubectl(*args, input=json.dumps(doc), check=False)


def test_there_are_many_invalid_cases():
    assert len(INVALID) >= 25


@pytest.mark.parametrize("name,doc,expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_model_deployment_is_rejected(cluster, namespace, name, doc, expected):
    result = create(cluster, namespace, doc)
    assert result.returncode != 0, f"{name} was accepted"
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in: {result.stderr}"


def test_valid_base_is_accepted_and_defaulted(cluster, namespace):
    result = create(cluster, namespace, BASE, dry_run=False)
    assert result.returncode == 0, result.stderr
    md = json.loads(cluster.kubectl("get", "md", "churn", "-n", namespace, "-o", "json").stdout)
    spec = md["spec"]
    # Defaults the API server applies, so the operator never guesses them.
    assert spec["analysis"]["interval"] == "30s"
    assert spec["analysis"]["onInconclusive"] == "Pause"
    assert spec["analysis"]["drift"]["psi"] == {"warn": 0.1, "fail": 0.25}
    assert spec["analysis"]["slo"]["maxErrorRate"] == 0.01
    assert spec["strategy"]["trafficRouting"] == {"replicas": {}}
    assert spec["monitor"]["window"] == "5m"
    assert spec["model"]["framework"] == "sklearn"


def test_examples_apply_and_print_columns(cluster, namespace):
    for example in EXAMPLES:
        result = cluster.kubectl("apply", "-n", namespace, "-f", str(example), check=False)
        assert result.returncode == 0, f"{example.name}: {result.stderr}"
    names = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES}

    # The operator writes status through the subresource; the columns show it.
    status = {"status": {"phase": "Progressing", "stable": {"revision": "a1b2c3"},
                         "candidate": {"revision": "d4e5f6"}, "weights": {"stable": 75, "candidate": 25},
                         "currentStep": 0, "stepText": "1/3", "lastVerdict": {"result": "Pass", "reason": "AllChecksPassed"}}}
    cluster.kubectl("patch", "md", "churn", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps(status))

    for kind in ["md", "mdeploy", "modeldeployments", "modelops"]:
        out = cluster.kubectl("get", kind, "-n", namespace).stdout
        header = out.splitlines()[0].split()
        assert header == ["NAME", "PHASE", "VERSION", "STABLE", "CANDIDATE", "WEIGHT", "STEP", "VERDICT", "AGE"], out
        assert {line.split()[0] for line in out.splitlines()[1:]} >= names
    row = next(line.split() for line in cluster.kubectl("get", "md", "-n", namespace).stdout.splitlines()
               if line.startswith("churn "))
    assert row[1:8] == ["Progressing", "1.3.0", "a1b2c3", "d4e5f6", "25", "1/3", "Pass"]
    wide = cluster.kubectl("get", "md", "churn", "-n", namespace, "-o", "wide").stdout
    assert "STRATEGY" in wide and "Canary" in wide and "AllChecksPassed" in wide


def test_spec_update_to_invalid_is_rejected_and_object_unchanged(cluster, namespace):
    assert create(cluster, namespace, BASE, dry_run=False).returncode == 0
    patch = json.dumps({"spec": {"strategy": {"canary": {"steps": [{"weight": 60}, {"weight": 30}]}}}})
    result = cluster.kubectl("patch", "md", "churn", "-n", namespace, "--type=merge", "-p", patch, check=False)
    assert result.returncode != 0 and "must not decrease" in result.stderr
    md = json.loads(cluster.kubectl("get", "md", "churn", "-n", namespace, "-o", "json").stdout)
    assert [s["weight"] for s in md["spec"]["strategy"]["canary"]["steps"]] == [10, 50]
    assert md["metadata"]["generation"] == 1


# --- what the children's APIs would refuse is refused at admission ---------------------
HOOK = {"name": "check", "at": "BeforeStep", "http": {"url": "https://hooks.example/check"}}
JOB_HOOK = {"name": "eval", "at": "BeforeRollout", "job": {"image": "registry.example/eval:1"}}


def named(name: str) -> dict:
    doc = copy.deepcopy(BASE)
    doc["metadata"]["name"] = name
    return doc


def gateway(**changes) -> dict:
    return {"gatewayAPI": {"parentRefs": [{"name": "ml-gateway"}], **changes}}


# (id, document, the field both the API server and the operator name, what the server says)
ADMISSION = [
    ("name-too-long", named("a" * 56), "metadata.name", ["metadata.name must be at most 55"]),
    ("name-starts-with-digit", named("0churn"), "metadata.name", ["metadata.name must be a DNS label"]),
    ("name-with-dot", named("churn.v2"), "metadata.name", ["metadata.name must be a DNS label"]),
    ("image-upper-case", spec_with(model__image="Registry.example/Churn:1"), "spec.model.image",
     ["spec.model.image", "container image reference"]),
    ("image-space", spec_with(model__image="registry.example/churn :1"), "spec.model.image",
     ["spec.model.image", "container image reference"]),
    ("monitor-image", spec_with(monitor={"image": "monitor:"}), "spec.monitor.image",
     ["spec.monitor.image", "container image reference"]),
    ("hostname-underscore", spec_with(strategy__trafficRouting=gateway(hostnames=["bad_host.example"])),
     "spec.strategy.trafficRouting.gatewayAPI.hostnames[0]",
     ["spec.strategy.trafficRouting.gatewayAPI.hostnames[0]", "should match"]),
    ("hostname-inner-wildcard", spec_with(strategy__trafficRouting=gateway(hostnames=["api.*.example"])),
     "spec.strategy.trafficRouting.gatewayAPI.hostnames[0]",
     ["spec.strategy.trafficRouting.gatewayAPI.hostnames[0]", "should match"]),
    ("parent-port-zero", spec_with(strategy__trafficRouting={"gatewayAPI": {"parentRefs": [
        {"name": "ml-gateway", "port": 0}]}}), "spec.strategy.trafficRouting.gatewayAPI.parentRefs[0].port",
     ["spec.strategy.trafficRouting.gatewayAPI.parentRefs[0].port", "greater than or equal to 1"]),
    ("parent-twice", spec_with(strategy__trafficRouting={"gatewayAPI": {"parentRefs": [
        {"name": "ml-gateway"}, {"name": "ml-gateway"}]}}), "spec.strategy.trafficRouting.gatewayAPI.parentRefs",
     ["spec.strategy.trafficRouting.gatewayAPI.parentRefs", "referenced only once"]),
    ("parent-namespace", spec_with(strategy__trafficRouting={"gatewayAPI": {"parentRefs": [
        {"name": "ml-gateway", "namespace": "Infra"}]}}),
     "spec.strategy.trafficRouting.gatewayAPI.parentRefs[0].namespace",
     ["spec.strategy.trafficRouting.gatewayAPI.parentRefs[0].namespace", "should match"]),
    ("monitor-port-model", spec_with(monitor={"port": 3000}), "spec.monitor.port",
     ["spec.monitor.port", "must not be 3000"]),
    ("negative-request", spec_with(resources={"requests": {"cpu": "-1"}}), "spec.resources.requests.cpu",
     ["spec.resources.requests", "must not be negative"]),
    ("request-above-limit", spec_with(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
     "spec.resources.requests.memory", ["spec.resources", "must not exceed its limit"]),
    ("unknown-resource", spec_with(resources={"requests": {"gpu": "1"}}), "spec.resources.requests.gpu",
     ["spec.resources.requests", "resource names are"]),
    ("gpu-overcommitted", spec_with(resources={"requests": {"nvidia.com/gpu": 1}}),
     "spec.resources.limits.nvidia.com/gpu", ["spec.resources", "cannot be overcommitted"]),
    ("gpu-fraction", spec_with(resources={"requests": {"nvidia.com/gpu": "500m"},
                                          "limits": {"nvidia.com/gpu": "500m"}}),
     "spec.resources.requests.nvidia.com/gpu", ["spec.resources.requests", "whole units"]),
    ("progress-deadline-zero", spec_with(progressDeadline="0s"), "spec.progressDeadline",
     ["spec.progressDeadline", "must be above 0"]),
    ("latency-bound-zero", spec_with(analysis={"slo": {"maxLatencyP99": "0ms"}}), "spec.analysis.slo.maxLatencyP99",
     ["spec.analysis.slo.maxLatencyP99", "must be above 0"]),
    ("window-too-short", spec_with(monitor={"window": "500ms"}), "spec.monitor.window",
     ["spec.monitor.window", "at least 1s"]),
    ("resolve-interval-short", spec_with(model__uri="s3://models/churn/", model__resolveInterval="5s"),
     "spec.model.resolveInterval", ["spec.model.resolveInterval", "at least 10s"]),
    ("scale-down-delay-overflow", spec_with(strategy__scaleDownDelay="99999999999h"), "spec.strategy.scaleDownDelay",
     ["spec.strategy.scaleDownDelay"]),
    ("hook-url-ftp", spec_with(hooks=[{**HOOK, "http": {"url": "ftp://hooks.example/x"}}]), "spec.hooks[0].http.url",
     ["spec.hooks[0].http.url", "should match"]),
    ("hook-url-no-host", spec_with(hooks=[{**HOOK, "http": {"url": "https:///check"}}]), "spec.hooks[0].http.url",
     ["spec.hooks[0].http.url", "should match"]),
    ("hook-poll-zero", spec_with(hooks=[{**HOOK, "http": {"url": "https://h.example", "pollInterval": "0s"}}]),
     "spec.hooks[0].http.pollInterval", ["spec.hooks[0].http.pollInterval", "at least 1s"]),
    ("hook-deadline-zero", spec_with(hooks=[{**JOB_HOOK, "deadline": "0s"}]), "spec.hooks[0].deadline",
     ["spec.hooks[0].deadline", "at least 1s"]),
    ("hook-job-image", spec_with(hooks=[{**JOB_HOOK, "job": {"image": "eval image"}}]), "spec.hooks[0].job.image",
     ["spec.hooks[0].job.image", "container image reference"]),
    ("hook-service-account", spec_with(hooks=[{**JOB_HOOK, "job": {"image": "eval:1", "serviceAccountName": "a..b"}}]),
     "spec.hooks[0].job.serviceAccountName", ["spec.hooks[0].job.serviceAccountName", "DNS subdomain"]),
    ("notification-url", spec_with(notifications=[{"name": "ops", "url": "https://"}]), "spec.notifications[0].url",
     ["spec.notifications[0].url", "should match"]),
    ("provider-address", spec_with(analysis={"provider": {"address": "http://"}}), "spec.analysis.provider.address",
     ["spec.analysis.provider.address", "with a host"]),
    ("pods-metric-zero", spec_with(autoscaling={"minReplicas": 1, "maxReplicas": 2, "podsMetric": {
        "name": "inflight", "targetAverageValue": "0"}}), "spec.autoscaling.podsMetric.targetAverageValue",
     ["spec.autoscaling.podsMetric.targetAverageValue", "above 0"]),
    ("pods-metric-slash", spec_with(autoscaling={"minReplicas": 1, "maxReplicas": 2, "podsMetric": {
        "name": "a/b", "targetAverageValue": "4"}}), "spec.autoscaling.podsMetric.name",
     ["spec.autoscaling.podsMetric.name", "path segment"]),
    ("profile-configmap-key", spec_with(monitor={"referenceProfile": {"configMapRef": {"name": "p", "key": "a/b"}}}),
     "spec.monitor.referenceProfile.configMapRef.key",
     ["spec.monitor.referenceProfile.configMapRef.key", "should match"]),
    ("ab-header-twice", spec_with(strategy={"type": "ABTest", "trafficRouting": GATEWAY, "abTest": {
        "match": {"headers": [{"name": "X-Group", "value": "b"}, {"name": "x-group", "value": "c"}]},
        "decision": AB["decision"]}}), "spec.strategy.abTest.match.headers[1].name",
     ["spec.strategy.abTest.match.headers", "may appear once"]),
]

# Edge values that are fine: the children accept them.
ADMITTED = [
    ("name-55", named("a" * 55)),
    ("wildcard-hostname", spec_with(strategy__trafficRouting=gateway(hostnames=["*.models.example", "a.example"]))),
    ("image-digest", spec_with(model__image="registry.example:5000/ml/churn:1.3.0@sha256:" + "a" * 64)),
    ("scale-down-at-once", spec_with(strategy__scaleDownDelay="0s")),
    ("gpu", spec_with(resources={"requests": {"cpu": "1", "nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": "1"}})),
    ("two-listeners", spec_with(strategy__trafficRouting={"gatewayAPI": {"parentRefs": [
        {"name": "gw", "sectionName": "http"}, {"name": "gw", "sectionName": "https"}]}})),
]


@pytest.mark.parametrize("name,doc,field,expected", ADMISSION, ids=[c[0] for c in ADMISSION])
def test_what_a_child_would_refuse_is_refused_at_admission(cluster, namespace, name, doc, field, expected):
    result = create(cluster, namespace, doc)
    assert result.returncode != 0, f"{name} was accepted"
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in: {result.stderr}"


@pytest.mark.parametrize("name,doc", ADMITTED, ids=[c[0] for c in ADMITTED])
def test_edge_values_the_children_accept_are_admitted(cluster, namespace, name, doc):
    result = create(cluster, namespace, doc)
    assert result.returncode == 0, f"{name}: {result.stderr}"
