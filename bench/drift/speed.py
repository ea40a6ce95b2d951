"""Drift engine speed, against Evidently on the same data in the same run.

    python -m bench.drift.speed [--quick] [--no-evidently]

1. Streaming rate: rows per second through the engine (binning + counting into
   the sliding window + one evaluation per 10 batches) for 10 and 100 features,
   and through the monitor's record path (JSON-like dict rows) for 10 features.
2. One-shot: time to score a 200,000 x 10 window from raw columns (bin, count,
   all statistics, corrections) against a 10,000-row reference; Evidently's
   DataDriftPreset on the same reference and window (target: >= 50x faster).
Results: bench/results/drift_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from modelops_services.drift import DriftEngine, fit_profile
from modelops_services.monitor.config import MonitorConfig
from modelops_services.monitor.state import MonitorState

from .streams import feature_names, sample
from .. import results



def kinds(n: int) -> dict[str, str]:
    num, cat = feature_names(n)
    return {**{c: "numeric" for c in num}, **{c: "categorical" for c in cat}}


def stream_rate(n_features: int, rows: int, batch: int, rng: np.random.Generator) -> dict:
    prof = fit_profile(sample(10_000, n_features, rng), kinds(n_features))
    eng = DriftEngine(prof)
    data = sample(batch * 10, n_features, rng)
    batches = [{k: v[i * batch:(i + 1) * batch] for k, v in data.items()} for i in range(10)]
    n_batches = rows // batch
    t0 = time.perf_counter()
    for i in range(n_batches):
        eng.observe(batches[i % 10], batch)
        if i % 10 == 9:
            eng.rotate()
            eng.evaluate()
    secs = time.perf_counter() - t0
    return {"features": n_features, "rows": n_batches * batch, "batch_rows": batch, "seconds": secs,
            "rows_per_second": n_batches * batch / secs}


def monitor_record_rate(rows: int, rng: np.random.Generator) -> dict:
    """The monitor's path: request records with dict rows, as the model server sends them."""
    n_features = 10
    ref = sample(10_000, n_features, rng)
    prof = fit_profile(ref, kinds(n_features), prediction={"__prediction__": rng.uniform(size=10_000)})
    state = MonitorState(MonitorConfig(profile_path="-"), prof)
    data = sample(1000, n_features, rng)
    names = list(data)
    recs = []
    for i in range(1000):
        row = {k: (data[k][i].item() if hasattr(data[k][i], "item") else data[k][i]) for k in names}
        recs.append({"id": f"r{i}", "status": 200, "latency_ms": 1.0, "features": [row],
                     "predictions": [1], "scores": [0.5], "ids": [f"r{i}-0"]})
    payload = {"records": recs[:100]}
    t0 = time.perf_counter()
    done = 0
    while done < rows:
        state.observe(payload)
        done += 100
    secs = time.perf_counter() - t0
    return {"features": n_features, "rows": done, "records_per_post": 100, "seconds": secs, "rows_per_second": done / secs}


def one_shot(rows: int, n_features: int, rng: np.random.Generator, repeats: int) -> tuple[dict, dict, dict]:
    ref = sample(10_000, n_features, rng)
    win = sample(rows, n_features, rng)
    times = []
    prof = fit_profile(ref, kinds(n_features))
    for _ in range(repeats):
        t0 = time.perf_counter()
        eng = DriftEngine(prof)
        eng.evaluate(eng.count(win, rows), rows)
        times.append(time.perf_counter() - t0)
    return {"rows": rows, "features": n_features, "seconds_median": statistics.median(times), "repeats": repeats}, ref, win


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="drift engine speed vs Evidently")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-evidently", action="store_true")
    p.add_argument("--out", default=str(results.DIR))
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    scale = 1 if args.quick else 5
    res = {
        "benchmark": "drift_speed",
        "quick": args.quick,
        "stream": [stream_rate(10, 500_000 * scale, 1000, rng), stream_rate(100, 100_000 * scale, 1000, rng)],
        "monitor_records": monitor_record_rate(50_000 * scale, rng),
    }
    shot, ref, win = one_shot(200_000, 10, rng, repeats=3 if args.quick else 10)
    res["one_shot"] = shot
    if not args.no_evidently:
        from .evidently_bridge import EvidentlyJobs
        from .streams import feature_names as fn

        num, cat = fn(10)
        ev = EvidentlyJobs()
        reps = 1 if args.quick else 3
        ev.add("speed", ref, win, [(0, len(win[num[0]]))] * reps, num, cat)
        out = ev.run()["speed"]
        ev_secs = statistics.median(r["seconds"] for r in out)
        res["one_shot"]["evidently_seconds_median"] = ev_secs
        res["one_shot"]["evidently_repeats"] = reps
        res["one_shot"]["speedup"] = ev_secs / shot["seconds_median"]
    results.publish(args.out, "drift_speed", res, render(res))
    return 0


def render(r: dict) -> str:
    lines = ["# Drift engine speed" + (" (quick run)" if r["quick"] else ""), "",
             "| path | features | rows | rows/s |", "|---|---:|---:|---:|"]
    for s in r["stream"]:
        lines.append(f"| engine, columns in batches of {s['batch_rows']} | {s['features']} | {s['rows']:,} | {s['rows_per_second']:,.0f} |")
    m = r["monitor_records"]
    lines.append(f"| monitor state, JSON-like records ({m['records_per_post']} per post) | {m['features']} | {m['rows']:,} | {m['rows_per_second']:,.0f} |")
    o = r["one_shot"]
    lines += ["", f"Scoring a {o['rows']:,} x {o['features']} window against a 10,000-row reference:", "",
              "| tool | seconds (median) |", "|---|---:|", f"| modelops | {o['seconds_median']:.3f} |"]
    if "evidently_seconds_median" in o:
        lines.append(f"| Evidently DataDriftPreset | {o['evidently_seconds_median']:.2f} |")
        lines += ["", f"Speed-up: {o['speedup']:.0f}x (target >= 50x)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
