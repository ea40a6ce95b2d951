"""The operator refuses what admission refuses, naming the same field: a spec that
slipped past the CRD (validation off, an older CRD) becomes InvalidSpec, never a child
the API server refuses."""

from datetime import datetime, timezone

import pytest

from modelops_operator.observed import Observed
from modelops_operator.planner import plan
from modelops_operator.status import condition
from tests.integration.test_crd_validation import ADMISSION, ADMITTED

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def planned(doc):
    meta = {**doc["metadata"], "namespace": "ml", "uid": "u", "generation": 1}
    return plan(meta, doc["spec"], None, Observed(), NOW)


@pytest.mark.parametrize("name,doc,field,expected", ADMISSION, ids=[c[0] for c in ADMISSION])
def test_the_operator_names_the_field_admission_names(name, doc, field, expected):
    cond = condition(planned(doc).status, "InvalidSpec")
    assert cond and cond["status"] == "True", f"{name} was planned"
    assert cond["message"].startswith(f"{field}:"), cond["message"]


@pytest.mark.parametrize("name,doc", ADMITTED, ids=[c[0] for c in ADMITTED])
def test_edge_values_are_planned(name, doc):
    assert (condition(planned(doc).status, "InvalidSpec") or {}).get("status") != "True"
