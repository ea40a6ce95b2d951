"""Every spec the CRD's OpenAPI schema accepts is either planned or marked InvalidSpec
naming a field, never an exception; and what a planned spec asks the API server to
create passes the child APIs' own name and label rules.

Specs are generated from the CRD's schema (its types, enums, bounds, patterns and
lengths; CEL rules are not applied, as when validation is off or an older CRD is
installed), with edge values: the longest names, odd hostnames, 0 and huge numbers,
unicode. Half start from an example manifest with a few fields replaced by generated
values, so the generated values also reach the deeper parts of the planner."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops_operator.observed import Observed, RevisionState
from modelops_operator.planner import plan
from modelops_operator.status import condition

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "manifests/crds/modelops.io_modeldeployments.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
EXAMPLES = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "manifests/examples").glob("*.yaml"))]
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)

# --- the child APIs' rules (apimachinery's validation, restated) ------------------------
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUALIFIED = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUANTITY = re.compile(r"\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?")


def is_label(text, pattern=DNS_LABEL, longest=63) -> bool:
    return isinstance(text, str) and len(text) <= longest and pattern.fullmatch(text) is not None


def child_problems(obj: dict) -> list[str]:
    """What the API server would refuse in a child object (names, labels, ports, env)."""
    problems = []
    kind, meta = obj["kind"], obj["metadata"]
    name = meta["name"]
    if kind == "Service":
        ok = is_label(name, DNS1035)
    elif kind == "Job":
        ok = is_label(name)  # its name is the job-name label of its pods
    else:
        ok = is_label(name, SUBDOMAIN, 253)
    if not ok:
        problems.append(f"{kind} name {name!r}")

    def labels(where: str, values: dict | None):
        for key, value in (values or {}).items():
            prefix, _, last = key.rpartition("/")
            if not QUALIFIED.fullmatch(key) or len(last) > 63 or len(prefix) > 253:
                problems.append(f"{kind} {where} label key {key!r}")
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
                problems.append(f"{kind} {where} label {key}={value!r}")

    labels("metadata", meta.get("labels"))
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    labels("template", (template.get("metadata") or {}).get("labels"))
    if kind == "Deployment":
        selector = spec["selector"]["matchLabels"]
        labels("selector", selector)
        if any(template["metadata"]["labels"].get(k) != v for k, v in selector.items()):
            problems.append("Deployment selector does not select its template")
    pod = template.get("spec") if kind in ("Deployment", "Job") else spec if kind == "Pod" else None
    if pod is not None:
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            image = container.get("image")
            if not image or image != image.strip():
                problems.append(f"{kind} container {container['name']} image {image!r}")
            for env in container.get("env") or []:
                if not ENV_NAME.fullmatch(env["name"]):
                    problems.append(f"{kind} env name {env['name']!r}")
            for port in container.get("ports") or []:
                if not 1 <= port["containerPort"] <= 65535 or not is_label(port["name"], IANA_SVC_NAME, 15):
                    problems.append(f"{kind} container port {port}")
            for part in ("requests", "limits"):
                for res, value in ((container.get("resources") or {}).get(part) or {}).items():
                    if not QUANTITY.fullmatch(str(value)):
                        problems.append(f"{kind} {part}.{res}={value!r}")
        if pod.get("serviceAccountName") and not is_label(pod["serviceAccountName"], SUBDOMAIN, 253):
            problems.append(f"{kind} serviceAccountName {pod['serviceAccountName']!r}")
    if kind == "Service":
        ports = spec.get("ports") or []
        if len({p["port"] for p in ports}) != len(ports) or any(not 1 <= p["port"] <= 65535 for p in ports):
            problems.append(f"Service ports {ports}")
    if kind == "HTTPRoute":
        for host in spec.get("hostnames") or []:
            if not is_label(host, HOSTNAME, 253):
                problems.append(f"HTTPRoute hostname {host!r}")
        for rule in spec.get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if not is_label(ref["name"], DNS1035):
                    problems.append(f"HTTPRoute backend {ref['name']!r}")
            for match in rule.get("matches") or []:
                names = [h["name"].lower() for h in match.get("headers") or []]
                if len(names) != len(set(names)) or any(len(h["value"]) > 4096 for h in match.get("headers") or []):
                    problems.append(f"HTTPRoute header match {match}")
    if kind == "HorizontalPodAutoscaler":
        if not 1 <= spec["minReplicas"] <= spec["maxReplicas"]:
            problems.append(f"HPA replicas {spec['minReplicas']}..{spec['maxReplicas']}")
    return problems


# --- specs from the schema -------------------------------------------------------------
EDGE_TEXT = st.sampled_from([
    "", "a", "0", "-", "x" * 63, "x" * 64, "y" * 253, "Ünïcødé", "名前", "a b", " a", "*.example.com",
    "*", "a..b", "1.2.3.4", "-a", "a-", "UPPER", "30s", "0s", "0ms", "1.5h", "99999999999h", "Manual",
    "http://", "https://hooks.example/x", "ftp://x", "file:///m", "s3://bucket/p/", "models:/m@champion",
    "registry.example/churn:1.0.0", "Registry/Churn", "nvidia.com/gpu", "hugepages-2Mi", "-1", "1e3",
    "100m", "0", "1Ei", "sha256:" + "a" * 64, "%", "..", ".", "a/b"])


def _string(node: dict):
    low, high = node.get("minLength", 0), min(node.get("maxLength", 300), 300)
    if "pattern" in node:
        try:
            patterned = st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= high)
        except Exception:  # noqa: BLE001 - a pattern Python's re does not read
            patterned = st.nothing()
        return st.one_of(patterned, EDGE_TEXT.filter(lambda s: re.fullmatch(node["pattern"], s) and
                                                     low <= len(s) <= node.get("maxLength", 10 ** 6)))
    if node.get("format") == "date-time":
        return st.sampled_from(["2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
    longest = st.just("z" * node["maxLength"]) if "maxLength" in node and node["maxLength"] <= 1024 else st.nothing()
    return st.one_of(EDGE_TEXT, st.text(min_size=low, max_size=min(high, 40)), longest).filter(
        lambda s: low <= len(s) <= node.get("maxLength", 10 ** 6))


def _number(node: dict, integer: bool):
    low, high = node.get("minimum"), node.get("maximum")
    if integer:
        base = st.integers(min_value=low if low is not None else -(2 ** 31),
                           max_value=high if high is not None else 2 ** 31)
        edges = [v for v in (low, high, 0, 1, -1, 2 ** 31 - 1) if v is not None and (low is None or v >= low)
                 and (high is None or v <= high)]
        return st.one_of(st.sampled_from(edges), base)
    return st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-300, 1e300, 100.0]),
                     st.floats(allow_nan=False, allow_infinity=False))


def from_schema(node: dict, depth: int = 0):
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if node.get("x-kubernetes-int-or-string"):
        return st.one_of(_number({"minimum": -5, "maximum": 10 ** 12}, True), _string(node))
    kind = node.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _number(node, True)
    if kind == "number":
        return _number(node, False)
    if kind == "string":
        return _string(node)
    if kind == "array":
        items = node.get("items") or {}
        low, high = node.get("minItems", 0), min(node.get("maxItems", 3), 3)
        return st.lists(from_schema(items, depth + 1), min_size=low, max_size=max(low, high))
    if kind == "object":
        props = node.get("properties") or {}
        if not props and isinstance(node.get("additionalProperties"), dict):
            return st.dictionaries(st.one_of(EDGE_TEXT, st.sampled_from(["cpu", "memory", "nvidia.com/gpu"])),
                                   from_schema(node["additionalProperties"], depth + 1), max_size=3)
        required = {k: from_schema(v, depth + 1) for k, v in props.items() if k in node.get("required", [])}
        optional = {k: from_schema(v, depth + 1) for k, v in props.items() if k not in node.get("required", [])}
        if depth > 6:
            optional = {}
        return st.fixed_dictionaries(required, optional=optional)
    return st.none()


def _paths(node: dict, prefix=()):
    """Every property path of the schema, with its schema node."""
    for name, sub in (node.get("properties") or {}).items():
        yield prefix + (name,), sub
        yield from _paths(sub, prefix + (name,))


PATHS = list(_paths(SCHEMA))

EDGE_NAMES = st.one_of(
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["a", "a" * 55, "a" * 56, "a" * 63, "a" * 64, "b" * 253, "0churn", "churn.v2",
                     "x-" * 27 + "y", "churn-" + "9" * 49]))
# Three in four names are ones the CRD accepts, so that most specs get past the name.
NAMES = st.integers(0, 3).flatmap(lambda i: EDGE_NAMES if i == 0 else st.one_of(
    st.from_regex(r"[a-z]([-a-z0-9]{0,53}[a-z0-9])?", fullmatch=True), st.sampled_from(["churn", "a" * 55])))


@st.composite
def specs(draw):
    if draw(st.integers(0, 3)) == 0:
        return draw(from_schema(SCHEMA))
    spec = copy.deepcopy(draw(st.sampled_from(EXAMPLES))["spec"])
    for _ in range(draw(st.integers(1, 2))):
        path, node = draw(st.sampled_from(PATHS))
        target = spec
        for name in path[:-1]:
            if not isinstance(target.get(name), dict):
                target[name] = {}
            target = target[name]
        target[path[-1]] = draw(from_schema(node, depth=3))
    return spec


def _later_status(status: dict, p) -> tuple[dict, Observed]:
    """The status after a pass, and every Deployment the pass asked for fully ready."""
    revisions = {}
    for obj in p.apply:
        if obj["kind"] == "Deployment":
            rev = obj["metadata"]["labels"]["modelops.io/revision"]
            revisions[rev] = RevisionState(obj["spec"]["replicas"], obj["spec"]["replicas"])
    return status, Observed(revisions=revisions)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(name=NAMES, spec=specs())
def test_a_schema_valid_spec_is_planned_or_invalid_naming_a_field(name, spec):
    meta = {"name": name, "namespace": "ml", "uid": "u-1", "generation": 1}
    status, observed, now = None, Observed(), NOW
    for _ in range(3):  # the first passes: creation, then with the Deployments ready
        p = plan(meta, spec, status, observed, now)
        invalid = condition(p.status, "InvalidSpec")
        if invalid and invalid["status"] == "True":
            assert invalid["message"].startswith(("spec.", "metadata.")), invalid["message"]
            assert p.apply == []
            return
        objects = [*p.apply, *([p.resolver] if p.resolver else [])]
        problems = [problem for obj in objects for problem in child_problems(obj)]
        assert not problems, problems
        status, observed = _later_status(p.status, p)
        now += timedelta(minutes=1)


def test_the_name_limit_is_the_longest_service_suffix():
    from modelops_operator.naming import MAX_NAME_LENGTH, SERVICE_ROLES, service_name
    assert MAX_NAME_LENGTH == 55
    assert all(len(service_name("a" * MAX_NAME_LENGTH, role)) == 63 or role != "preview" for role in SERVICE_ROLES)
    rules = [r["rule"] for r in CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]]
    assert f"size(self.metadata.name) <= {MAX_NAME_LENGTH}" in rules


def test_examples_are_planned():
    for example in EXAMPLES:
        p = plan({**example["metadata"], "namespace": "ml", "uid": "u", "generation": 1}, example["spec"], None,
                 Observed(), NOW)
        assert (condition(p.status, "InvalidSpec") or {}).get("status") != "True", example["metadata"]["name"]
        assert not [x for obj in p.apply for x in child_problems(obj)]
