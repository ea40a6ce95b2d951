"""The API server validates spec.analysis.quality, naming the field at fault, and fills
in its defaults."""

import json

import pytest

from .test_crd_validation import BASE, create, spec_with

pytestmark = pytest.mark.cluster


def quality(**fields):
    return spec_with(analysis={"quality": fields})


INVALID = [
    ("metric-unknown", quality(metric="auc", maxLoss=0.02),
     ["spec.analysis.quality.metric", "Unsupported value", "auc"]),
    ("metric-missing", quality(maxLoss=0.02),
     ["spec.analysis.quality.metric", "Required value"]),
    ("max-loss-missing", quality(metric="accuracy"),
     ["spec.analysis.quality.maxLoss", "Required value"]),
    ("max-loss-negative", quality(metric="accuracy", maxLoss=-0.01),
     ["spec.analysis.quality.maxLoss", "spec.analysis.quality.maxLoss must be at least 0"]),
    ("max-loss-above-one-for-a-proportion", quality(metric="roc_auc", maxLoss=1.5),
     ["spec.analysis.quality", "spec.analysis.quality.maxLoss must be at most 1"]),
    ("max-loss-not-a-number", quality(metric="accuracy", maxLoss="2%"),
     ["spec.analysis.quality.maxLoss", "must be of type number"]),
    ("min-labelled-zero", quality(metric="accuracy", maxLoss=0.02, minLabelled=0),
     ["spec.analysis.quality.minLabelled", "greater than or equal to 1"]),
    ("min-labelled-fraction", quality(metric="accuracy", maxLoss=0.02, minLabelled=2.5),
     ["spec.analysis.quality.minLabelled", "must be of type integer"]),
    ("significance-zero", quality(metric="accuracy", maxLoss=0.02, significance=0),
     ["spec.analysis.quality.significance", "spec.analysis.quality.significance must be above 0"]),
    ("significance-above-half", quality(metric="accuracy", maxLoss=0.02, significance=0.6),
     ["spec.analysis.quality.significance", "at most 0.5"]),
    ("unknown-field", quality(metric="accuracy", maxLoss=0.02, minLabeled=100),
     ["unknown field", "spec.analysis.quality.minLabeled"]),
]


@pytest.fixture(autouse=True)
def _crd_installed(crd):
    """Every test here talks to the API server about ModelDeployments."""


@pytest.mark.parametrize("name,doc,expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_quality_gate_is_rejected(cluster, namespace, name, doc, expected):
    result = create(cluster, namespace, doc)
    assert result.returncode != 0, f"{name} was accepted"
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in: {result.stderr}"


def test_quality_gate_is_off_unless_set_and_defaulted_when_set(cluster, namespace):
    assert create(cluster, namespace, BASE, dry_run=False).returncode == 0
    md = json.loads(cluster.kubectl("get", "md", "churn", "-n", namespace, "-o", "json").stdout)
    assert "quality" not in md["spec"]["analysis"]
    patch = json.dumps({"spec": {"analysis": {"quality": {"metric": "accuracy", "maxLoss": 0.02}}}})
    cluster.kubectl("patch", "md", "churn", "-n", namespace, "--type=merge", "-p", patch)
    md = json.loads(cluster.kubectl("get", "md", "churn", "-n", namespace, "-o", "json").stdout)
    assert md["spec"]["analysis"]["quality"] == {"metric": "accuracy", "maxLoss": 0.02, "minLabelled": 200,
                                                 "significance": 0.05}
    # An error metric may lose more than 1 in its own units.
    for metric in ("rmse", "r2"):
        doc = quality(metric=metric, maxLoss=25)
        doc["metadata"]["name"] = f"churn-{metric}"
        result = create(cluster, namespace, doc)
        assert result.returncode == 0, result.stderr
