"""Request validation: the model only ever sees well-typed rows; errors name the field."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelops_services.schema import FeatureSchema, SchemaError

SCHEMA = FeatureSchema.from_list([
    {"name": "age", "type": "number"},
    {"name": "calls", "type": "integer"},
    {"name": "plan", "type": "category", "categories": ["a", "b"]},
    {"name": "paperless", "type": "boolean", "nullable": False},
])
GOOD = {"age": 30.5, "calls": 2, "plan": "a", "paperless": True}


def test_valid_rows_become_a_typed_frame():
    df = SCHEMA.validate([GOOD, {**GOOD, "age": None, "plan": "zzz"}])
    assert list(df.columns) == ["age", "calls", "plan", "paperless"]
    assert df["age"].dtype == np.float64 and np.isnan(df["age"][1])
    assert df["plan"].tolist() == ["a", "zzz"]  # unseen categories pass: drift will see them
    assert np.isnan(SCHEMA.validate([{**GOOD, "plan": None}])["plan"][0])
    assert df["paperless"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("rows, field", [
    ([], "rows"),
    ("abc", "rows"),
    ([GOOD, 3], "rows[1]"),
    ([{**GOOD, "x": 1}], "rows[0].x"),
    ([{k: v for k, v in GOOD.items() if k != "calls"}], "rows[0].calls"),
    ([{**GOOD, "age": "old"}], "rows[0].age"),
    ([{**GOOD, "age": True}], "rows[0].age"),
    ([{**GOOD, "age": 10**400}], "rows[0].age"),
    ([{**GOOD, "calls": 2.5}], "rows[0].calls"),
    ([{**GOOD, "plan": 1}], "rows[0].plan"),
    ([{**GOOD, "paperless": None}], "rows[0].paperless"),
    ([{**GOOD, "paperless": "yes"}], "rows[0].paperless"),
])
def test_errors_name_the_field(rows, field):
    with pytest.raises(SchemaError) as e:
        SCHEMA.validate(rows)
    assert e.value.field == field


def test_batch_size_is_capped():
    small = FeatureSchema(SCHEMA.features, max_rows=2)
    with pytest.raises(SchemaError, match="at most 2"):
        small.validate([GOOD] * 3)


anything = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from([*GOOD, "q"]), c), max_leaves=15)


@settings(max_examples=200, deadline=None)
@given(anything)
def test_only_schema_errors_escape(rows):
    try:
        SCHEMA.validate(rows)
    except SchemaError:
        pass
