"""Model directories load for both frameworks, from a path or the BentoML model store."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_services.model_dir import load_model_dir, public_metadata

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from train_churn import train_all

    out = tmp_path_factory.mktemp("models")
    train_all(out, rows=3000, seed=5, versions=("v1",), training_date="2026-01-01")
    return out


@pytest.mark.parametrize("flavour", ["sklearn", "xgboost"])
def test_models_predict_with_unseen_and_missing_values(models, flavour):
    m = load_model_dir(models / f"churn-{flavour}-v1")
    rows = [{"tenure_months": 3.0, "monthly_charges": 90.0, "support_calls": 4, "contract": "month-to-month",
             "payment_method": "e-check", "internet_service": "fiber", "paperless_billing": True},
            {"tenure_months": None, "monthly_charges": 20.0, "support_calls": 0, "contract": "two-year",
             "payment_method": "crypto", "internet_service": None, "paperless_billing": False}]
    preds, scores = m.predict(m.schema.validate(rows))
    assert preds == [1, 0]  # a short, expensive, complaining customer churns; a long-contract one does not
    assert all(0.0 <= s <= 1.0 for s in scores) and scores[0] > 0.5 > scores[1]
    meta = public_metadata(m)
    assert meta["version"] == "1.0.0" and meta["profile_hash"].startswith("sha256:")
    assert meta["metrics"]["roc_auc"] > 0.7


def test_training_is_reproducible(models, tmp_path):
    from train_churn import train_one

    again = train_one("xgboost", "v1", tmp_path, rows=3000, seed=5, training_date="2026-01-01")
    a = json.loads((models / "churn-xgboost-v1" / "metadata.json").read_text())
    b = json.loads((again / "metadata.json").read_text())
    assert a == b
    pa = json.loads((models / "churn-xgboost-v1" / "profile.json").read_text())["hash"]
    assert pa == json.loads((again / "profile.json").read_text())["hash"]


def test_model_store_tag_resolves_to_the_same_model(models, tmp_path):
    code = f"""
import sys; sys.path.insert(0, {str(EXAMPLES)!r})
from pathlib import Path
from train_churn import save_to_bentoml_store
from modelops_services.model_dir import load_model_dir, resolve_model_dir
tag = save_to_bentoml_store(Path({str(models / 'churn-sklearn-v1')!r}))
m = load_model_dir(resolve_model_dir({{"MODELOPS_MODEL_TAG": tag}}))
print(m.metadata["name"], m.metadata["version"])
"""
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["churn-sklearn", "1.0.0"]


def test_missing_metadata_fields_are_named(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"name": "x", "framework": "sklearn"}))
    with pytest.raises(ValueError, match="version, task, features"):
        load_model_dir(tmp_path)
