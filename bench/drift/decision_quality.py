"""Decision quality: false alarms without drift, detection delay after a change.

    python -m bench.drift.decision_quality [--quick] [--seeds N] [--sequential-seeds N] [--no-evidently]

Streams of 10 features (4 Gaussian, 3 lognormal, 3 Zipf categorical); each seed
draws its own 10,000-row reference and the windows from the same generator.
False alarm: a window with no change in which any feature is flagged (for
modelops: Holm-corrected, alpha 0.05, so the target is <= 0.05).
Detection delay: a full window of normal rows, then changed rows; the sliding
window (2,000 rows, 10 sub-windows) is scored every 200 rows, and the delay is
the number of changed rows seen when the changed feature is first flagged.
Evidently's DataDriftPreset (defaults) runs on exactly the same windows.

modelops_sequential: the sequential evidence the operator decides on (DriftEngine's
SequentialEvidence, default DriftConfig: PSI bands 0.1/0.25, K = 240 change points).
A feature is flagged at the warn band when its anytime-valid p-value K*exp(-evidence)
is below 0.05 after Holm across the 10 features. Detection: the same streams fed in
blocks of 50 rows (a canary's 5 s at 10 rows/s), checked every 200 changed rows. False
alarm: the same no-change windows fed in blocks (50 rows, or window/240 when larger, so
the window fits the 240-block horizon), checked after every block up to 40 times per
window (evenly spaced) and at its end; an alarm at any check counts.
Results: bench/results/drift_decision_quality.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats as sps

from modelops_services.drift import DriftConfig, DriftEngine, fit_profile
from modelops_services.drift.stats import holm

from .streams import CHANGES, apply_change, concat, feature_names, sample
from .. import results

N_FEATURES = 10
N_REF = 10_000
DELAY_WINDOW = 2000
DELAY_STEP = 200
HORIZON_STEPS = 15  # 3,000 changed rows
SEQ_BLOCK = 50  # rows per evidence block: 5 s of a canary at 10 rows/s
SEQ_MAX_CHECKS = 40  # checks per no-change window (evenly spaced over its blocks)
SEQ_ALPHA = 0.05


def sequential_flags(engine: DriftEngine) -> np.ndarray:
    """Per feature: evidence that its PSI reaches the warn band, Holm-corrected p < 0.05."""
    ev = engine.evidence.evaluate()
    return holm(ev.pvalue(0)) < SEQ_ALPHA


def feed_blocks(engine: DriftEngine, cols: dict, start: int, stop: int, block: int):
    """Feed rows [start, stop) in blocks, starting a new evidence block after each;
    yields the rows fed so far after each block."""
    for a in range(start, stop, block):
        b = min(a + block, stop)
        engine.observe({c: v[a:b] for c, v in cols.items()}, b - a)
        yield b - start
        engine.next_block()


def sequential_false_alarm(prof, win: dict, w: int) -> bool:
    engine = DriftEngine(prof)
    # Blocks of 50 rows, larger when the window would not fit the horizon's blocks.
    block = max(SEQ_BLOCK, math.ceil(w / engine.evidence.config.start_points))
    blocks = math.ceil(w / block)
    every = max(1, math.ceil(blocks / SEQ_MAX_CHECKS))
    for i, fed in enumerate(feed_blocks(engine, win, 0, w, block)):
        if ((i + 1) % every == 0 or fed == w) and sequential_flags(engine).any():
            return True
    return False


def upper_ci(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen k times in n."""
    return 1.0 if k >= n else float(sps.beta.ppf(level, k + 1, n - k))


def kinds() -> dict[str, str]:
    num, cat = feature_names(N_FEATURES)
    return {**{n: "numeric" for n in num}, **{c: "categorical" for c in cat}}


def false_alarms(sizes: list[int], seeds: int, ev, ev_seeds: int, seq_seeds: int = 0) -> dict:
    num, cat = feature_names(N_FEATURES)
    out = {}
    for w in sizes:
        hits, secs, seq_hits, seq_secs = 0, 0.0, 0, 0.0
        for s in range(seeds):
            rng = np.random.default_rng([1, w, s])
            ref, win = sample(N_REF, N_FEATURES, rng), sample(w, N_FEATURES, rng)
            t0 = time.perf_counter()
            prof = fit_profile(ref, kinds())
            engine = DriftEngine(prof)
            r = engine.evaluate(engine.count(win, w), w)
            secs += time.perf_counter() - t0
            hits += r.any_feature_drifted
            if s < seq_seeds:
                t0 = time.perf_counter()
                seq_hits += sequential_false_alarm(prof, win, w)
                seq_secs += time.perf_counter() - t0
            if ev is not None and s < ev_seeds:
                ev.add(f"fa-{w}-{s}", ref, win, [(0, w)], num, cat)
        out[w] = {"seeds": seeds, "modelops_alarms": hits, "modelops_rate": hits / seeds,
                  "modelops_rate_upper95": upper_ci(hits, seeds), "modelops_seconds": secs}
        if seq_seeds:
            out[w].update(sequential_seeds=seq_seeds, sequential_alarms=seq_hits,
                          sequential_rate=seq_hits / seq_seeds,
                          sequential_rate_upper95=upper_ci(seq_hits, seq_seeds), sequential_seconds=seq_secs)
    return out


def sequential_delay(prof, pre: dict, post: dict, feat: str) -> int | None:
    """Changed rows until the changed feature is flagged at the warn band, checked
    every DELAY_STEP changed rows, the stream fed in SEQ_BLOCK-row blocks."""
    engine = DriftEngine(prof)
    for _ in feed_blocks(engine, pre, 0, DELAY_WINDOW, SEQ_BLOCK):
        pass
    col = engine.names.index(feat)
    for fed in feed_blocks(engine, post, 0, DELAY_STEP * HORIZON_STEPS, SEQ_BLOCK):
        if fed % DELAY_STEP == 0 and sequential_flags(engine)[col]:
            return fed
    return None


def delays(seeds: int, ev, ev_seeds: int, seq_seeds: int = 0) -> dict:
    num, cat = feature_names(N_FEATURES)
    configs = {"modelops": DriftConfig(), "modelops_psi_warn_0.02": DriftConfig(psi_warn=0.02)}
    out = {}
    for change, (feat, desc) in CHANGES.items():
        res = {name: [] for name in configs}
        if seq_seeds:
            res["modelops_sequential"] = []
        for s in range(seeds):
            rng = np.random.default_rng([2, s, list(CHANGES).index(change)])
            ref = sample(N_REF, N_FEATURES, rng)
            pre = sample(DELAY_WINDOW, N_FEATURES, rng)
            post = apply_change(sample(DELAY_STEP * HORIZON_STEPS, N_FEATURES, rng), change, rng)
            prof = fit_profile(ref, kinds())
            for name, cfg in configs.items():
                eng = DriftEngine(prof, cfg, n_sub=DELAY_WINDOW // DELAY_STEP)
                for k in range(DELAY_WINDOW // DELAY_STEP):
                    eng.rotate()
                    eng.observe({c: v[k * DELAY_STEP:(k + 1) * DELAY_STEP] for c, v in pre.items()}, DELAY_STEP)
                delay = None
                for k in range(HORIZON_STEPS):
                    eng.rotate()
                    eng.observe({c: v[k * DELAY_STEP:(k + 1) * DELAY_STEP] for c, v in post.items()}, DELAY_STEP)
                    r = eng.evaluate()
                    if r.drifted[r.names.index(feat)]:
                        delay = (k + 1) * DELAY_STEP
                        break
                res[name].append(delay)
            if s < seq_seeds:
                res["modelops_sequential"].append(sequential_delay(prof, pre, post, feat))
            if ev is not None and s < ev_seeds:
                windows = [((k + 1) * DELAY_STEP, DELAY_WINDOW + (k + 1) * DELAY_STEP) for k in range(HORIZON_STEPS)]
                ev.add(f"delay-{change}-{s}", ref, concat(pre, post), windows, num, cat, stop_on=feat)
        out[change] = {"feature": feat, "description": desc, "seeds": seeds, "delays": res}
    return out


def summarize_delays(ds: list) -> dict:
    found = [d for d in ds if d is not None]
    return {"detected": len(found), "of": len(ds),
            "median_delay_rows": float(np.median(found)) if found else None,
            "max_delay_rows": max(found) if found else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="drift decision quality vs Evidently")
    p.add_argument("--quick", action="store_true", help="few seeds and sizes, about a minute")
    p.add_argument("--seeds", type=int, help="seeds per false-alarm window size (modelops)")
    p.add_argument("--delay-seeds", type=int, help="seeds per change (modelops)")
    p.add_argument("--evidently-seeds", type=int, help="of those, how many Evidently also runs (it is slow)")
    p.add_argument("--sequential-seeds", type=int, help="seeds per false-alarm window size for the sequential "
                                                            "evidence (default 200, quick 20)")
    p.add_argument("--no-evidently", action="store_true")
    p.add_argument("--out", default=str(results.DIR))
    args = p.parse_args(argv)
    sizes = [200, 1000, 10_000, 100_000] if args.quick else [200, 1000, 5000, 20_000, 100_000]
    seeds = args.seeds or (100 if args.quick else 1000)
    dseeds = args.delay_seeds or (20 if args.quick else 100)
    ev_seeds = min(args.evidently_seeds or (10 if args.quick else 100), seeds)
    ev_dseeds = min(max(1, ev_seeds // 5), dseeds)
    seq_seeds = min(args.sequential_seeds or (20 if args.quick else 200), seeds)
    ev = None
    if not args.no_evidently:
        from .evidently_bridge import EvidentlyJobs

        ev = EvidentlyJobs()
    t0 = time.perf_counter()
    fa = false_alarms(sizes, seeds, ev, ev_seeds, seq_seeds)
    dl = delays(dseeds, ev, ev_dseeds, dseeds)
    ours_secs = time.perf_counter() - t0
    evres = ev.run() if ev is not None else {}
    for w, row in fa.items():
        rs = [evres[f"fa-{w}-{s}"][0] for s in range(ev_seeds)] if evres else []
        if rs:
            k_any = sum(bool(r["drifted"]) for r in rs)
            k_ds = sum(r["dataset_drift"] for r in rs)
            row.update(evidently_seeds=ev_seeds, evidently_any_column_alarms=k_any,
                       evidently_any_column_rate=k_any / ev_seeds,
                       evidently_any_column_rate_upper95=upper_ci(k_any, ev_seeds),
                       evidently_dataset_drift_rate=k_ds / ev_seeds,
                       evidently_seconds=sum(r["seconds"] for r in rs))
    for change, row in dl.items():
        if evres:
            ds = []
            for s in range(ev_dseeds):
                hit = [r for r in evres[f"delay-{change}-{s}"] if row["feature"] in r["drifted"]]
                ds.append(hit[0]["window"][1] - DELAY_WINDOW if hit else None)
            row["delays"]["evidently"] = ds
        row["summary"] = {k: summarize_delays(v) for k, v in row["delays"].items()}
    result = {
        "benchmark": "drift_decision_quality",
        "quick": args.quick,
        "setup": {"features": N_FEATURES, "reference_rows": N_REF, "alpha": 0.05, "correction": "holm",
                  "psi_warn": 0.1, "delay_window": DELAY_WINDOW, "delay_step": DELAY_STEP,
                  "horizon_rows": DELAY_STEP * HORIZON_STEPS,
                  "sequential": {"block_rows": SEQ_BLOCK, "max_checks_per_window": SEQ_MAX_CHECKS,
                                 "start_points": DriftConfig().horizon_seconds / DriftConfig().block_seconds,
                                 "bands": [DriftConfig().psi_warn, DriftConfig().psi_alarm],
                                 "flag": "warn band, Holm-corrected anytime-valid p < 0.05"}},
        "false_alarms": {str(k): v for k, v in fa.items()},
        "detection": dl,
        "modelops_seconds_total": ours_secs,
    }
    results.publish(args.out, "drift_decision_quality", result, render(result))
    return 0


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def render(r: dict) -> str:
    lines = ["# Drift decisions: false alarms and detection delay", "",
             f"Reference {r['setup']['reference_rows']} rows, {r['setup']['features']} features "
             "(4 Gaussian, 3 lognormal, 3 Zipf categorical). modelops: PSI >= 0.1 and chi-square significant "
             "at 0.05 after Holm on the window. modelops_sequential: the sequential evidence the operator decides on, "
             "a feature flagged at warn (0.1) when, at the change point with the most evidence (K = 240), its "
             "anytime-valid p-value of a change is below 0.05 after Holm and its bias-corrected PSI estimate "
             "reaches 0.1 (the fail band needs the 95% lower bound); fed in blocks of 50 rows (no-change windows: 50 rows or "
             "window/240, checked after up to 40 evenly spaced blocks and at the end, any check counts). "
             "Evidently: DataDriftPreset defaults." + (" (quick run)" if r["quick"] else ""), "",
             "## False alarm rate (no change; any feature flagged)", "",
             "| window rows | modelops seeds | modelops | modelops 95% upper | sequential seeds | modelops_sequential | "
             "sequential 95% upper | Evidently seeds | Evidently any column | Evidently dataset drift |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w, v in r["false_alarms"].items():
        lines.append(f"| {int(w):,} | {v['seeds']} | {_pct(v['modelops_rate'])} | {_pct(v['modelops_rate_upper95'])} | "
                     f"{v.get('sequential_seeds', 0)} | {_pct(v.get('sequential_rate'))} | "
                     f"{_pct(v.get('sequential_rate_upper95'))} | "
                     f"{v.get('evidently_seeds', 0)} | {_pct(v.get('evidently_any_column_rate'))} | {_pct(v.get('evidently_dataset_drift_rate'))} |")
    lines += ["", f"## Detection delay (changed rows until the changed feature is flagged; "
              f"window {r['setup']['delay_window']}, scored every {r['setup']['delay_step']} rows, "
              f"horizon {r['setup']['horizon_rows']})", "",
              "| change | method | detected | median delay | max delay |", "|---|---|---:|---:|---:|"]
    for change, v in r["detection"].items():
        for name, s in v["summary"].items():
            med = "-" if s["median_delay_rows"] is None else f"{s['median_delay_rows']:.0f}"
            mx = "-" if s["max_delay_rows"] is None else f"{s['max_delay_rows']}"
            lines.append(f"| {change} | {name} | {s['detected']}/{s['of']} | {med} | {mx} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
