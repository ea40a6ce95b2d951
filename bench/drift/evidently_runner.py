"""Runs Evidently's default data-drift preset; executed by the Evidently venv.

    python evidently_runner.py JOBS.json RESULTS.json

Each job names a reference and a stream (Parquet), the [start, end) row ranges
of the windows to test in order, and optionally a column: the job stops at the
first window where that column is flagged. Results: per window, the drifted
columns, the dataset-level decision and the seconds Evidently took.
"""

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def drifted_columns(snapshot_dict):
    cols, dataset = [], False
    for m in snapshot_dict["metrics"]:
        cfg = m.get("config", {})
        kind = cfg.get("type", "")
        if kind.endswith("ValueDrift"):
            method, thr, v = cfg.get("method", ""), cfg.get("threshold"), m["value"]
            # Evidently: a p-value test drifts below its threshold, a distance at or above it.
            hit = (v < thr) if "p_value" in method else (v >= thr)
            if hit:
                cols.append(cfg["column"])
        elif kind.endswith("DriftedColumnsCount"):
            dataset = m["value"]["share"] >= cfg.get("drift_share", 0.5)
    return cols, dataset


def main():
    jobs = json.load(open(sys.argv[1]))
    refs = {}
    out = []
    for job in jobs:
        if job["reference"] not in refs:
            refs[job["reference"]] = pd.read_parquet(job["reference"])
        ref = refs[job["reference"]]
        stream = pd.read_parquet(job["stream"])
        dd = DataDefinition(numerical_columns=job["numeric"], categorical_columns=job["categorical"])
        ref_ds = Dataset.from_pandas(ref, data_definition=dd)
        results = []
        for start, end in job["windows"]:
            cur = stream.iloc[start:end].reset_index(drop=True)
            t0 = time.perf_counter()
            snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=dd), ref_ds)
            d = snap.dict()
            secs = time.perf_counter() - t0
            cols, dataset = drifted_columns(d)
            results.append({"window": [start, end], "drifted": cols, "dataset_drift": dataset, "seconds": secs})
            if job.get("stop_on") and job["stop_on"] in cols:
                break
        out.append({"id": job["id"], "results": results})
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
