"""Rollback delay and false rollbacks: the operator's gate against a Flagger-style
judge, on the same canary traffic, in the same run.

    python -m bench.loop.rollback_delay [--quick] [--seeds N]

The canary's rows go through the monitor's real drift engine (a sliding window of
10 sub-windows, the sidecar's default of 5 minutes). Both judges read that same
window:

- modelops: the operator's own code path. The window's /drift document goes through
  `analysis.checks.evaluate` with the CRD's default spec.analysis (PSI warn 0.1 and
  fail 0.25, Holm at 0.05, at least 200 rows), then `judge` and `gate`: every 30 s,
  rollback after 2 failed analyses in a row.
- Flagger-style, Flagger's documented defaults: every 60 s a threshold check on a
  metric (here the worst feature's PSI against 0.2, the usual "significant" band,
  since Flagger has no drift statistics of its own), and rollback once 5 checks have
  failed during the analysis (failed checks add up; they are not reset by a pass).

Drift: after 5 minutes of normal traffic, one feature's mean shifts by the given
number of standard deviations. Reported: the canary rows and analysis intervals from
drift onset to the rollback decision. False rollbacks: canaries with no drift at all,
analysed from their first interval (the window starts empty, as for a new canary)
over a 20-minute rollout, at 10 rows/s and at 1 row/s; target at or below the
configured alpha (0.05).
Results: bench/results/loop_rollback_delay.{json,md}.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from bench.drift.decision_quality import kinds, upper_ci
from bench import results
from bench.drift.streams import sample
from modelops_operator.analysis import Decision, Result, gate, judge
from modelops_operator.analysis.checks import evaluate, from_drift_json
from modelops_operator.spec import parse
from modelops_services.drift import DriftConfig, DriftEngine, fit_profile

N_FEATURES = 10
N_REF = 10_000
ROWS_PER_SECOND = 10  # canary traffic: 20% of 50 requests/s, one row each
TICK = 30  # seconds per monitor sub-window and per modelops analysis
SUBWINDOWS = 10  # the sidecar's window: 10 x 30 s = 5 minutes
WARM_TICKS = 10  # normal traffic before the drift starts
HORIZON_TICKS = 40  # 20 minutes after onset
FLAGGER_INTERVAL_TICKS = 2  # 60 s
FLAGGER_THRESHOLD = 5
FLAGGER_MAX_PSI = 0.2
SHIFTS = (0.5, 1.0)
# No-drift canaries at the usual canary traffic and at a trickle (1 row/s: a new canary's
# first windows hold a few dozen rows, where PSI alone is mostly noise).
QUIET_RATES = (ROWS_PER_SECOND, 1)
SPEC = {"model": {"name": "m", "version": "1", "image": "r/m:1"}, "replicas": 2,
        "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 20}]}},
        "analysis": {"drift": {"prediction": False}}}  # the synthetic profile has no prediction


@dataclass
class ModelopsJudge:
    analysis: dict
    failures: int = 0
    inconclusive: int = 0

    def look(self, doc: dict) -> bool:
        """One gate; True when it decides to roll back."""
        a = self.analysis
        verdict = judge(evaluate(from_drift_json(doc), None, a))
        outcome = gate(verdict, self.failures, self.inconclusive, a["failureLimit"], a["inconclusiveLimit"],
                       "Pause")  # an inconclusive pause is not a rollback
        self.failures, self.inconclusive = outcome.consecutive_failures, outcome.consecutive_inconclusive
        return outcome.decision is Decision.ROLLBACK and verdict.result is Result.FAIL


@dataclass
class FlaggerJudge:
    failed: int = 0

    def look(self, doc: dict) -> bool:
        psis = [f["psi"] for f in doc["drift"]["features"] if f["psi"] is not None and not f["prediction"]]
        if not psis or max(psis) > FLAGGER_MAX_PSI:  # no data fails a Flagger check too
            self.failed += 1
        return self.failed >= FLAGGER_THRESHOLD


def document(engine: DriftEngine) -> dict:
    """What the monitor's GET /drift says about its window (health is not at issue here)."""
    report = engine.evaluate().to_dict()
    return {"drift": report, "health": {"requests": report["window_rows"], "error_rate": 0.0,
                                        "latency_p99_seconds": 0.05}}


def run(seed: int, shift: float | None, analysis: dict, warm: bool, rows_per_second: int = ROWS_PER_SECOND) -> dict:
    """One canary. With a shift: rows and intervals from onset to each judge's
    rollback. Without: whether each judge rolled back at all."""
    rng = np.random.default_rng([7, seed, int(10 * (shift or 0))])
    profile = fit_profile(sample(N_REF, N_FEATURES, rng), kinds())
    # Each judge decides from its own engine, so the two never share state; the rows are the same.
    engine = DriftEngine(profile, DriftConfig(), n_sub=SUBWINDOWS)
    judges = {"modelops": ModelopsJudge(analysis), "flagger": FlaggerJudge()}
    rows_per_tick = rows_per_second * TICK
    if warm:
        for _ in range(WARM_TICKS):
            engine.rotate()
            engine.observe(sample(rows_per_tick, N_FEATURES, rng), rows_per_tick)
    out = {name: None for name in judges}
    analyses = {name: 0 for name in judges}
    for tick in range(1, HORIZON_TICKS + 1):
        cols = sample(rows_per_tick, N_FEATURES, rng)
        if shift:
            cols["g0"] = cols["g0"] + shift
        engine.rotate()
        engine.observe(cols, rows_per_tick)
        doc = document(engine)
        for name, j in judges.items():
            if out[name] is not None:
                continue
            if name == "flagger" and tick % FLAGGER_INTERVAL_TICKS:
                continue
            analyses[name] += 1
            if j.look(doc):
                out[name] = {"rows": tick * rows_per_tick, "seconds": tick * TICK, "analyses": analyses[name]}
    return out


def summarize(results: list[dict], name: str) -> dict:
    hits = [r[name] for r in results if r[name] is not None]
    if not hits:
        return {"detected": 0, "of": len(results)}
    return {"detected": len(hits), "of": len(results),
            "median_rows": float(np.median([h["rows"] for h in hits])),
            "median_seconds": float(np.median([h["seconds"] for h in hits])),
            "median_analyses": float(np.median([h["analyses"] for h in hits])),
            "max_seconds": max(h["seconds"] for h in hits)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="rollback delay and false rollbacks: modelops vs a Flagger-style judge")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, help="no-drift canaries (drifting ones: a quarter of it)")
    ap.add_argument("--out", default=str(results.DIR))
    args = ap.parse_args(argv)
    seeds = args.seeds or (60 if args.quick else 400)
    analysis = parse(SPEC).raw["analysis"]
    alpha = analysis["drift"]["significance"]

    delays = {}
    for shift in SHIFTS:
        res = [run(s, shift, analysis, warm=True) for s in range(max(10, seeds // 4))]
        delays[f"{shift:g}"] = {name: summarize(res, name) for name in ("modelops", "flagger")}
        print(f"shift {shift:g} sd: {delays[f'{shift:g}']}", flush=True)
    false = {}
    for rate in QUIET_RATES:
        quiet = [run(s, None, analysis, warm=False, rows_per_second=rate) for s in range(seeds)]
        false[str(rate)] = {}
        for name in ("modelops", "flagger"):
            k = sum(r[name] is not None for r in quiet)
            false[str(rate)][name] = {"rollbacks": k, "of": seeds, "rate": k / seeds, "upper95": upper_ci(k, seeds)}
        print(f"false rollbacks at {rate} rows/s: {false[str(rate)]}", flush=True)

    result = {"benchmark": "loop_rollback_delay", "quick": args.quick, "features": N_FEATURES,
              "canary_rows_per_second": ROWS_PER_SECOND, "window_seconds": TICK * SUBWINDOWS,
              "modelops": {"interval_seconds": TICK, "failure_limit": analysis["failureLimit"],
                           "min_samples": analysis["minSampleSize"], "psi": analysis["drift"]["psi"],
                           "significance": alpha, "correction": analysis["drift"]["correction"]},
              "flagger_style": {"interval_seconds": TICK * FLAGGER_INTERVAL_TICKS, "threshold": FLAGGER_THRESHOLD,
                                "max_psi": FLAGGER_MAX_PSI},
              "delays": delays, "false_rollbacks": false, "alpha": alpha,
              "rollout_minutes": HORIZON_TICKS * TICK / 60}
    results.publish(args.out, "loop_rollback_delay", result, render(result))
    return 0


def _cell(s: dict, key: str, fmt: str) -> str:
    return "never" if key not in s else format(s[key], fmt)


def render(r: dict) -> str:
    m, f = r["modelops"], r["flagger_style"]
    lines = ["# Rollback delay and false rollbacks" + (" (quick run)" if r["quick"] else ""), "",
             f"Canary traffic {r['canary_rows_per_second']} rows/s, {r['features']} features, the monitor's "
             f"{r['window_seconds']}s sliding window. modelops: analysis every {m['interval_seconds']}s, rollback after "
             f"{m['failure_limit']} failed analyses in a row, PSI warn {m['psi']['warn']:g} / fail {m['psi']['fail']:g} "
             f"with {m['correction']} at {m['significance']:g}, at least {m['min_samples']} rows. Flagger-style: a check "
             f"every {f['interval_seconds']}s (worst feature PSI <= {f['max_psi']:g}), rollback after "
             f"{f['threshold']} failed checks.", "",
             "## Drift onset to rollback (mean shift in one feature)", "",
             "| shift | judge | detected | median rows | median seconds | median analyses | worst seconds |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for shift, by in r["delays"].items():
        for name, s in by.items():
            lines.append(f"| {shift} sd | {name} | {s['detected']}/{s['of']} | {_cell(s, 'median_rows', ',.0f')} | "
                         f"{_cell(s, 'median_seconds', '.0f')} | {_cell(s, 'median_analyses', '.0f')} | "
                         f"{_cell(s, 'max_seconds', '.0f')} |")
    lines += ["", f"## False rollbacks without drift ({r['rollout_minutes']:.0f}-minute canary, window starting empty)",
              "", "| canary rows/s | judge | rollbacks | rate | 95% upper bound | target |",
              "|---:|---|---:|---:|---:|---|"]
    for rate, by in r["false_rollbacks"].items():
        for name, s in by.items():
            target = f"<= {r['alpha']:g}" if name == "modelops" else ""
            lines.append(f"| {rate} | {name} | {s['rollbacks']}/{s['of']} | {s['rate']:.3f} | {s['upper95']:.3f} | "
                         f"{target} |")
    ok = all(by["modelops"]["rate"] <= r["alpha"] for by in r["false_rollbacks"].values())
    lines += ["", f"modelops false-rollback rate {'within' if ok else 'ABOVE'} alpha {r['alpha']:g}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
