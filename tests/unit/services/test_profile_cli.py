"""`modelops profile` rebuilds the profile the training script shipped, from the data alone."""

import json
import sys
from pathlib import Path

from modelops_services.cli import main
from modelops_services.drift import Profile

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))


def test_profile_from_csv_and_parquet_matches_training(tmp_path):
    from churn_data import customers
    from train_churn import train_one

    model_dir = train_one("sklearn", "v1", tmp_path, rows=3000, seed=3, training_date="2026-01-01")
    shipped = Profile.load(str(model_dir / "profile.json"))
    df = customers(3000, 3)
    df.to_csv(tmp_path / "train.csv", index=False)
    df.to_parquet(tmp_path / "train.parquet")
    for name in ("train.csv", "train.parquet"):
        out = tmp_path / f"{name}.profile.json"
        assert main(["profile", "--model-dir", str(model_dir), "--data", str(tmp_path / name), "--out", str(out)]) == 0
        assert Profile.load(str(out)).hash == shipped.hash
    names = [f["name"] for f in json.loads((tmp_path / "train.csv.profile.json").read_text())["prediction"]]
    assert names == ["__prediction__", "__prediction_label__"]


def test_profile_reports_missing_columns(tmp_path, capsys):
    from churn_data import customers
    from train_churn import train_one

    model_dir = train_one("sklearn", "v1", tmp_path, rows=2000, seed=3, training_date="2026-01-01")
    customers(100, 1).drop(columns=["contract"]).to_csv(tmp_path / "t.csv", index=False)
    assert main(["profile", "--model-dir", str(model_dir), "--data", str(tmp_path / "t.csv")]) == 2
    assert "contract" in capsys.readouterr().err
