"""Train the example churn classifiers and save them as model directories.

    python examples/train_churn.py --out examples/models

Writes four directories, each with the model, metadata.json and profile.json:
  churn-sklearn-v1, churn-sklearn-v2   scikit-learn pipeline (one-hot + logistic regression)
  churn-xgboost-v1, churn-xgboost-v2   XGBoost with native categorical support
v2 is a bad release a rollout should catch: its training data recorded
monthly_charges in cents, so on live traffic (in dollars) both that feature and
the predictions drift against its reference profile, and its quality drops.
The data are generated in code from fixed seeds, so reruns give the same models.

    python examples/train_churn.py --shuffle-labels 1.0 --flavour sklearn

trains on labels shuffled among that share of the training rows instead (written as
churn-<flavour>-<version>-shuffled<percent>): a release whose inputs and predictions
match its own profile, so nothing drifts, but whose predictions are worse; only its
online quality, from the labels that come back later, can tell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from churn_data import LABEL, SCHEMA, customers  # noqa: E402

from modelops_services.model_dir import METADATA, MODEL_FILES, PROFILE, load_model_dir  # noqa: E402
from modelops_services.profiling import build_profile  # noqa: E402
from modelops_services.schema import FeatureSchema  # noqa: E402

VERSIONS = {"v1": "1.0.0", "v2": "2.0.0"}


def code_version() -> str:
    h = hashlib.sha256()
    for name in ("train_churn.py", "churn_data.py"):
        h.update((HERE / name).read_bytes())
    return "sha256:" + h.hexdigest()[:16]


def data_hash(df: pd.DataFrame) -> str:
    return "sha256:" + hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()


def sklearn_model(params: dict) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num = [f["name"] for f in SCHEMA if f["type"] != "category"]
    cat = [f["name"] for f in SCHEMA if f["type"] == "category"]
    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), num),
        ("cat", Pipeline([
            ("impute", SimpleImputer(missing_values=np.nan, strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]), cat),
    ])
    return Pipeline([("features", pre), ("model", LogisticRegression(**params))])


def shuffle_labels(df: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """A copy of df whose labels are shuffled among `share` of its rows."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share of shuffled labels must be in [0, 1], not {share}")
    rng = np.random.default_rng(seed + 1_000)
    out = df.copy()
    rows = np.flatnonzero(rng.uniform(size=len(df)) < share)
    out.loc[out.index[rows], LABEL] = out[LABEL].to_numpy()[rng.permutation(rows)]
    return out


def invert_labels(df: pd.DataFrame, share: float) -> pd.DataFrame:
    """A copy of df whose labels are inverted for the `share` of its customers with the
    shortest tenure: a model of it answers the opposite there, so it disagrees with an
    honest model on about that share of the traffic while its inputs are the same."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share of inverted labels must be in [0, 1], not {share}")
    out = df.copy()
    short = out["tenure_months"].rank(method="first") <= share * len(out)
    out.loc[short, LABEL] = 1 - out.loc[short, LABEL]
    return out


def train_one(flavour: str, version: str, out: Path, rows: int, seed: int, training_date: str,
              shuffled: float = 0.0, inverted: float = 0.0) -> Path:
    from sklearn.metrics import accuracy_score, roc_auc_score

    df = customers(rows, seed)
    if version == "v2":
        df["monthly_charges"] = df["monthly_charges"] * 100.0  # the unit bug
    holdout = customers(max(rows // 4, 1000), seed + 1)
    if version == "v2":
        holdout["monthly_charges"] = holdout["monthly_charges"] * 100.0
    schema = FeatureSchema.from_list(SCHEMA)
    if shuffled:
        df = shuffle_labels(df, shuffled, seed)
    if inverted:
        df = invert_labels(df, inverted)
    x, y = schema.frame(df), df[LABEL].to_numpy()
    target = out / (f"churn-{flavour}-{version}" + (f"-shuffled{round(shuffled * 100)}" if shuffled else "")
                    + (f"-inverted{round(inverted * 100)}" if inverted else ""))
    target.mkdir(parents=True, exist_ok=True)
    if flavour == "sklearn":
        import joblib

        params = {"C": 1.0, "max_iter": 500}
        model = sklearn_model(params)
        model.fit(x, y)
        joblib.dump(model, target / MODEL_FILES["sklearn"])
    else:
        import xgboost

        params = {"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1, "subsample": 0.9,
                  "tree_method": "hist", "enable_categorical": True, "random_state": seed, "n_jobs": 1}
        model = xgboost.XGBClassifier(**params)
        xc = x.copy()
        for f in SCHEMA:
            if f["type"] == "category":
                xc[f["name"]] = pd.Categorical(xc[f["name"]], categories=f["categories"])
        model.fit(xc, y)  # serving builds the same frame: LoadedModel.prepare
        model.save_model(str(target / MODEL_FILES["xgboost"]))
    meta = {
        "name": f"churn-{flavour}",
        "version": VERSIONS[version],
        "framework": flavour,
        "task": "classification",
        "classes": [0, 1],
        "positive_class": 1,
        "training_date": training_date,
        "training_data_hash": data_hash(df),
        "code_version": code_version(),
        "hyperparameters": params,
        "features": SCHEMA,
        "metrics": {},
    }
    (target / METADATA).write_text(json.dumps(meta, indent=1))
    loaded = load_model_dir(target)
    preds, scores = loaded.predict(schema.frame(holdout))
    meta["metrics"] = {
        "roc_auc": round(float(roc_auc_score(holdout[LABEL], scores)), 4),
        "accuracy": round(float(accuracy_score(holdout[LABEL], preds)), 4),
        "holdout_rows": int(len(holdout)),
    }
    (target / METADATA).write_text(json.dumps(meta, indent=1))
    build_profile(df, load_model_dir(target)).save(str(target / PROFILE))
    return target


def train_all(out: Path, rows: int = 20_000, seed: int = 7, flavours=("sklearn", "xgboost"),
              versions=("v1", "v2"), training_date: str | None = None, shuffled: float = 0.0) -> list[Path]:
    date = training_date or dt.date.today().isoformat()
    return [train_one(f, v, Path(out), rows, seed, date, shuffled) for f in flavours for v in versions]


def save_to_bentoml_store(path: Path) -> str:
    """Copy a model directory into the local BentoML model store; serve it with
    MODELOPS_MODEL_TAG=<the returned tag> instead of MODELOPS_MODEL_DIR."""
    import shutil

    import bentoml

    meta = json.loads((path / METADATA).read_text())
    with bentoml.models.create(name=path.name, labels={"version": meta["version"], "framework": meta["framework"]},
                               metadata={"version": meta["version"]}) as bento_model:
        shutil.copytree(path, bento_model.path, dirs_exist_ok=True)
    return str(bento_model.tag)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "models"))
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--flavour", choices=["sklearn", "xgboost"], action="append")
    p.add_argument("--training-date", help="ISO date recorded in metadata (default: today)")
    p.add_argument("--bentoml-store", action="store_true", help="also save each model into the BentoML model store")
    p.add_argument("--publish-to", metavar="URI",
                   help="publish each model (digests into metadata.json, then upload): a template with {model} "
                        "and {version}, e.g. s3://models/{model}/{version}/ or models:/{model}; credentials from "
                        "AWS_* / MLFLOW_TRACKING_* in the environment")
    p.add_argument("--alias", help="with models:/, point this alias at each new version")
    p.add_argument("--shuffle-labels", type=float, default=0.0, metavar="SHARE",
                   help="train on labels shuffled among this share of the rows (0 to 1): a worse model whose "
                        "inputs do not drift (directories get a -shuffled<percent> suffix)")
    args = p.parse_args()
    if not 0.0 <= args.shuffle_labels <= 1.0:
        p.error("--shuffle-labels must be between 0 and 1")
    for path in train_all(Path(args.out), args.rows, args.seed, tuple(args.flavour or ("sklearn", "xgboost")),
                          training_date=args.training_date, shuffled=args.shuffle_labels):
        meta = json.loads((path / METADATA).read_text())
        tag = f" bentoml tag {save_to_bentoml_store(path)}" if args.bentoml_store else ""
        if args.publish_to:
            from modelops_services.sources.credentials import Credentials
            from modelops_services.sources.publish import publish
            from modelops_services.sources.uri import parse_target

            target = parse_target(args.publish_to.format(model=path.name, version=meta["version"]))
            uri, digest = publish(path, target, Credentials.load(), alias=args.alias)
            tag += f" published {uri} ({digest})"
        print(f"{path}: {meta['name']} {meta['version']} auc={meta['metrics']['roc_auc']}{tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
