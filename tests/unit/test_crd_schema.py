"""The CRD file is the one source of the ModelDeployment schema, and it is structural."""

from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "manifests/crds/modelops.io_modeldeployments.yaml"
CHART_CRD = ROOT / "charts/modelops/crds/modelops.io_modeldeployments.yaml"
EXAMPLES = sorted((ROOT / "manifests/examples").glob("*.yaml"))


def load_crd():
    return yaml.safe_load(CRD.read_text())


def schema():
    return load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node, path="$"):
    """Yields (path, node) for every schema node."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_chart_and_manifests_share_one_file():
    assert CHART_CRD.is_symlink(), "the chart must link to the manifests' CRD, not copy it"
    assert CHART_CRD.resolve() == CRD.resolve()
    assert CHART_CRD.read_bytes() == CRD.read_bytes()


def test_kustomization_installs_that_file():
    kustomization = yaml.safe_load((ROOT / "manifests/kustomization.yaml").read_text())
    assert "crds/modelops.io_modeldeployments.yaml" in kustomization["resources"]


def test_schema_is_structural():
    for path, node in walk(schema()):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert not node.get("x-kubernetes-preserve-unknown-fields"), f"{path} keeps unknown fields"
        if node.get("type") == "object" and path != "$.metadata":
            # An object with neither properties nor a value schema accepts only {}.
            assert "properties" in node or "additionalProperties" in node or path.endswith("replicas"), path


def test_every_rule_explains_itself():
    rules = [(p, r) for p, n in walk(schema()) for r in n.get("x-kubernetes-validations", [])]
    assert len(rules) >= 30
    for path, rule in rules:
        assert rule.get("message"), f"rule {rule['rule']!r} at {path} has no message"


def test_rules_on_strings_and_lists_are_bounded():
    # The API server rejects CEL whose estimated cost is unbounded.
    for path, node in walk(schema()):
        if not node.get("x-kubernetes-validations"):
            continue
        if node.get("type") == "string" and node.get("enum") is None:
            assert "maxLength" in node, f"{path}: CEL on a string without maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: CEL on a list without maxItems"


def test_names_columns_and_subresources():
    crd = load_crd()
    names = crd["spec"]["names"]
    assert set(names["shortNames"]) == {"md", "mdeploy"}
    assert "modelops" in names["categories"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    for column in ["Phase", "Version", "Stable", "Candidate", "Weight", "Step", "Verdict", "Age"]:
        assert column in columns


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_match_the_openapi_part(example):
    # The API server also runs the CEL rules; the integration tests cover those.
    doc = yaml.safe_load(example.read_text())
    jsonschema.validate(doc, schema())
    assert doc["kind"] == "ModelDeployment"


def test_there_is_an_example_per_strategy():
    types = {yaml.safe_load(p.read_text())["spec"]["strategy"]["type"] for p in EXAMPLES}
    assert types == {"Canary", "BlueGreen", "Shadow", "ABTest"}
