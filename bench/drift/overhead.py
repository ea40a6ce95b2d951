"""Model server overhead of monitoring: throughput and latency with the monitor on and off.

    python -m bench.drift.overhead [--quick] [--concurrency 8] [--seconds 10] [--pairs 6] [--paced-pairs 10]

Starts the churn example (scikit-learn v1) twice with `bentoml serve`, once
with MODELOPS_MONITOR_URL pointing at a running monitor and once without, and
measures both in alternating phases, pair after pair (off then on, then on then
off, and so on), so that drifting background load on the shared machine hits
both alike:
- closed loop: `--concurrency` clients send single-row requests back to back;
  throughput (requests/s) per phase;
- open loop: requests start at a fixed rate (40% of the unmonitored closed-loop
  throughput) whatever the answers do, so latency is measured below saturation
  and without coordinated omission; p50/p99 per phase.
Each pair gives one throughput ratio (on/off) and one p50/p99 difference (on
minus off). The result is the median over pairs with the range, so a claim such
as "+0.3 ms at p99" can be read against how much the same quantity moves from
pair to pair (also shown: the p99 change between consecutive off phases).
Targets: median throughput ratio >= 0.95; median p99 difference <= +1 ms.
Results: bench/results/drift_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from .. import results

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict[str, str], ready: str, log: Path) -> subprocess.Popen:
    f = open(log, "wb")
    p = subprocess.Popen(args, env={**os.environ, **env}, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{args[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return p
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{ready} not ready")


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


async def load(url: str, bodies: list[bytes], seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    import aiohttp

    lat: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            async with session.post(url + "/predict", data=bodies[i % len(bodies)],
                                    headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            lat.append(time.perf_counter() - t0)
            i += concurrency

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(worker(session, k) for k in range(concurrency)))
    return len(lat), lat, errors


async def paced(url: str, bodies: list[bytes], seconds: float, rate: float) -> tuple[list[float], int]:
    """Open loop: requests start at a fixed rate whatever the answers do, so the
    latency is measured below saturation and without coordinated omission."""
    import aiohttp

    lat: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession, body: bytes) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        async with session.post(url + "/predict", data=body, headers={"Content-Type": "application/json"}) as r:
            await r.read()
            errors += r.status != 200
        lat.append(time.perf_counter() - t0)

    n = int(seconds * rate)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, bodies[i % len(bodies)])))
        await asyncio.gather(*tasks)
    return lat, errors


def cpu_seconds(p: subprocess.Popen) -> float:
    """User + system CPU of a process and its children (BentoML runs workers)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(p.pid)
        for proc in [root, *root.children(recursive=True)]:
            t = proc.cpu_times()
            total += t.user + t.system
    except psutil.Error:
        pass
    return total


def pct(lat: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(lat) * 1000.0, q))


def spread(values: list[float]) -> dict[str, float]:
    """Median and range over pairs: the estimate and how much it moves."""
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()),
            "q25": float(np.percentile(v, 25)), "q75": float(np.percentile(v, 75)), "n": len(v)}


def run_pairs(pairs: int, servers: dict[str, subprocess.Popen], monitor: subprocess.Popen,
              measure, label: str) -> list[dict]:
    """Alternate off/on phases; odd pairs run on first so neither always goes second."""
    out = []
    for k in range(pairs):
        order = ("off", "on") if k % 2 == 0 else ("on", "off")
        pair = {}
        for name in order:
            c0, m0 = cpu_seconds(servers[name]), cpu_seconds(monitor)
            ph = measure(name)
            ph["server_cpu"] = cpu_seconds(servers[name]) - c0
            ph["monitor_cpu"] = cpu_seconds(monitor) - m0
            pair[name] = ph
        out.append(pair)
        print(f"{label} pair {k + 1}/{pairs}: " + ", ".join(
            f"{n} {pair[n]['rps']:.0f} req/s p50 {pair[n]['p50_ms']:.2f} p99 {pair[n]['p99_ms']:.2f} ms" for n in order),
            flush=True)
    return out


def phase(lat: list[float], seconds: float, errors: int) -> dict:
    return {"requests": len(lat), "seconds": seconds, "rps": len(lat) / seconds, "errors": errors,
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}


def pooled(pairs: list[dict], name: str) -> dict:
    ph = [p[name] for p in pairs]
    n = sum(p["requests"] for p in ph)
    return {"rps": sum(p["requests"] for p in ph) / sum(p["seconds"] for p in ph),
            "p50_ms_median_of_phases": float(np.median([p["p50_ms"] for p in ph])),
            "p99_ms_median_of_phases": float(np.median([p["p99_ms"] for p in ph])),
            "requests": n, "errors": sum(p["errors"] for p in ph),
            "server_cpu_ms_per_request": 1000 * sum(p["server_cpu"] for p in ph) / max(n, 1),
            "monitor_cpu_ms_per_request": 1000 * sum(p["monitor_cpu"] for p in ph) / max(n, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="model server overhead with the monitor on/off")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, help="seconds per phase")
    ap.add_argument("--pairs", type=int, help="closed-loop off/on pairs")
    ap.add_argument("--paced-pairs", type=int, help="fixed-rate off/on pairs")
    ap.add_argument("--rate-share", type=float, default=0.4, help="fixed rate as a share of the unmonitored throughput")
    ap.add_argument("--out", default=str(results.DIR))
    args = ap.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    pairs = args.pairs or (2 if args.quick else 6)
    paced_pairs = args.paced_pairs or (2 if args.quick else 10)
    sys.path.insert(0, str(EXAMPLES))
    from churn_data import customers
    from traffic import to_rows
    from train_churn import train_one

    bodies = [json.dumps({"rows": [r]}).encode() for r in to_rows(customers(2000, 21))]
    bentoml = str(Path(sys.executable).parent / "bentoml")
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = train_one("sklearn", "v1", tmp, rows=20_000, seed=7, training_date="2026-01-01")
        try:
            mport, on_port, off_port = free_port(), free_port(), free_port()
            monitor = f"http://127.0.0.1:{mport}"
            procs.append(start([sys.executable, "-m", "modelops_services.monitor"],
                               {"MODELOPS_PROFILE_PATH": str(model / "profile.json"), "MODELOPS_MONITOR_HOST": "127.0.0.1",
                                "MODELOPS_MONITOR_PORT": str(mport)}, monitor + "/healthz", tmp / "monitor.log"))
            urls, servers = {}, {}
            for name, port, extra in (("on", on_port, {"MODELOPS_MONITOR_URL": monitor}), ("off", off_port, {})):
                env = {"MODELOPS_MODEL_DIR": str(model), "BENTOML_HOME": str(tmp / "bentoml"), **extra}
                servers[name] = start([bentoml, "serve", "modelops_services.model_server:ModelService", "--host", "127.0.0.1",
                                       "--port", str(port)], env, f"http://127.0.0.1:{port}/readyz", tmp / f"server-{name}.log")
                procs.append(servers[name])
                urls[name] = f"http://127.0.0.1:{port}"
            for name in ("off", "on"):  # warm-up: imports, first model calls, connection pools
                asyncio.run(load(urls[name], bodies, 3.0, args.concurrency))

            def closed(name: str) -> dict:
                _, lat, errors = asyncio.run(load(urls[name], bodies, seconds, args.concurrency))
                return phase(lat, seconds, errors)

            closed_pairs = run_pairs(pairs, servers, procs[0], closed, "closed loop")
            # Below saturation: the same fixed rate for both, a share of the unmonitored capacity.
            rate = args.rate_share * float(np.median([p["off"]["rps"] for p in closed_pairs]))

            def open_loop(name: str) -> dict:
                lat, errors = asyncio.run(paced(urls[name], bodies, seconds, rate))
                return phase(lat, seconds, errors)

            fixed_pairs = run_pairs(paced_pairs, servers, procs[0], open_loop, f"fixed rate {rate:.0f}/s")
            observed = httpx.get(monitor + "/drift").json()["counters"]
        finally:
            for p in reversed(procs):
                stop(p)

    ratio = spread([p["on"]["rps"] / p["off"]["rps"] for p in closed_pairs])
    d50 = spread([p["on"]["p50_ms"] - p["off"]["p50_ms"] for p in fixed_pairs])
    d99 = spread([p["on"]["p99_ms"] - p["off"]["p99_ms"] for p in fixed_pairs])
    # The same spread between two phases of the same server: how much p99 moves with no change at all.
    off99 = [p["off"]["p99_ms"] for p in fixed_pairs]
    null99 = spread([b - a for a, b in zip(off99, off99[1:])]) if len(off99) > 1 else None
    summary = {name: {"closed_loop": pooled(closed_pairs, name), "fixed_rate": pooled(fixed_pairs, name)}
               for name in ("off", "on")}
    res = {"benchmark": "drift_overhead", "quick": args.quick, "concurrency": args.concurrency,
           "seconds_per_phase": seconds, "closed_loop_pairs": pairs, "fixed_rate_pairs": paced_pairs,
           "fixed_rate_rps": rate, "throughput_ratio": ratio, "p50_delta_ms": d50, "p99_delta_ms": d99,
           "p99_off_to_off_ms": null99,
           "targets_met": {"throughput_ratio": ratio["median"] >= 0.95, "p99_delta": d99["median"] <= 1.0},
           # A 1 ms claim only means something when p99 differences move less than that between pairs.
           "p99_delta_resolves_1ms": d99["max"] - d99["min"] <= 2.0,
           "summary": summary, "closed_loop": closed_pairs, "fixed_rate": fixed_pairs,
           "monitor_counters": observed, "cpus": os.cpu_count()}

    def rng(s: dict, f: str) -> str:
        return f"{s['median']:{f}} ({s['min']:{f}} to {s['max']:{f}})"

    lines = ["# Model server overhead of monitoring" + (" (quick run)" if args.quick else ""), "",
             f"`python -m bench.drift.overhead{' --quick' if args.quick else ''}`: the churn example (scikit-learn), "
             f"one server with the monitor and one without, measured in alternating phases of {seconds:.0f} s "
             f"(off/on, then on/off, ...); client, servers and monitor share {os.cpu_count()} CPUs.", "",
             f"- Throughput: closed loop, {args.concurrency} concurrent single-row requests, {pairs} pairs.",
             f"- Latency: open loop at a fixed rate of {rate:.0f} requests/s ({args.rate_share:.0%} of the unmonitored "
             f"closed-loop throughput), the same for both, {paced_pairs} pairs.", "",
             "| pair | closed loop req/s off / on | ratio | fixed rate p50 ms off / on | p99 ms off / on | p99 on - off |",
             "|---:|---:|---:|---:|---:|---:|"]
    for k in range(max(pairs, paced_pairs)):
        c = closed_pairs[k] if k < pairs else None
        f = fixed_pairs[k] if k < paced_pairs else None
        cells = [f"{k + 1}"]
        cells += ([f"{c['off']['rps']:.0f} / {c['on']['rps']:.0f}", f"{c['on']['rps'] / c['off']['rps']:.3f}"]
                  if c else ["", ""])
        cells += ([f"{f['off']['p50_ms']:.2f} / {f['on']['p50_ms']:.2f}", f"{f['off']['p99_ms']:.2f} / {f['on']['p99_ms']:.2f}",
                   f"{f['on']['p99_ms'] - f['off']['p99_ms']:+.2f}"] if f else ["", "", ""])
        lines.append("| " + " | ".join(cells) + " |")
    on, off = summary["on"], summary["off"]
    lines += ["", "Median over pairs (range):", "",
              f"- throughput ratio on/off: **{rng(ratio, '.3f')}** (target >= 0.95: "
              f"{'met' if res['targets_met']['throughput_ratio'] else 'not met'})",
              f"- p50 at the fixed rate, on - off: {rng(d50, '+.2f')} ms",
              f"- p99 at the fixed rate, on - off: **{rng(d99, '+.2f')} ms** (target <= +1 ms: "
              f"{'met' if res['targets_met']['p99_delta'] else 'not met'}"
              + ("" if res["p99_delta_resolves_1ms"] else
                 " by the median, but the pair-to-pair range is far wider than 1 ms, so this run cannot resolve a "
                 "1 ms difference either way") + ")"]
    if null99:
        lines.append(f"- for scale, p99 of one off phase minus the previous off phase (no change at all): {rng(null99, '+.2f')} ms")
    lines += ["",
              f"Phase medians: closed loop p50 {off['closed_loop']['p50_ms_median_of_phases']:.1f} / "
              f"{on['closed_loop']['p50_ms_median_of_phases']:.1f} ms, p99 {off['closed_loop']['p99_ms_median_of_phases']:.1f} / "
              f"{on['closed_loop']['p99_ms_median_of_phases']:.1f} ms (off / on); fixed rate p50 "
              f"{off['fixed_rate']['p50_ms_median_of_phases']:.2f} / {on['fixed_rate']['p50_ms_median_of_phases']:.2f} ms, "
              f"p99 {off['fixed_rate']['p99_ms_median_of_phases']:.2f} / {on['fixed_rate']['p99_ms_median_of_phases']:.2f} ms.",
              f"CPU per request (closed loop): model server {off['closed_loop']['server_cpu_ms_per_request']:.3f} ms without "
              f"the monitor, {on['closed_loop']['server_cpu_ms_per_request']:.3f} ms with it; the monitor process used "
              f"{on['closed_loop']['monitor_cpu_ms_per_request']:.3f} ms per monitored request. At the fixed rate: "
              f"{off['fixed_rate']['server_cpu_ms_per_request']:.3f} ms without, "
              f"{on['fixed_rate']['server_cpu_ms_per_request']:.3f} ms with.",
              f"Errors: {off['closed_loop']['errors'] + off['fixed_rate']['errors']} off, "
              f"{on['closed_loop']['errors'] + on['fixed_rate']['errors']} on. Monitor received "
              f"{observed['observed_rows']:,} rows; the server dropped {observed['dropped_records']:,} records.", ""]
    results.publish(args.out, "drift_overhead", res, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
