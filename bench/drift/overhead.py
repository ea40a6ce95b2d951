"""Model server overhead of monitoring: throughput and latency with the monitor on and off.

    python -m bench.drift.overhead [--quick] [--concurrency 8] [--seconds 20]

Starts the churn example (scikit-learn v1) twice with `bentoml serve`, once
with MODELOPS_MONITOR_URL pointing at a running monitor and once without, and
drives both with the same closed-loop load (single-row requests), alternating
off/on phases so that background load on the machine hits both alike:
closed-loop phases for throughput, then open-loop phases at a fixed rate (40%
of the unmonitored throughput) for latency below saturation.
Targets: throughput ratio (on/off) >= 0.95; p99 grows by at most 1 ms.
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

RESULTS = Path(__file__).resolve().parents[1] / "results"
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="model server overhead with the monitor on/off")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, help="seconds per phase")
    ap.add_argument("--phases", type=int, help="off/on pairs")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    pairs = args.phases or (2 if args.quick else 4)
    sys.path.insert(0, str(EXAMPLES))
    from churn_data import customers
    from train_churn import train_one
    from traffic import to_rows

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
            urls = {}
            for name, port, extra in (("on", on_port, {"MODELOPS_MONITOR_URL": monitor}), ("off", off_port, {})):
                env = {"MODELOPS_MODEL_DIR": str(model), "BENTOML_HOME": str(tmp / "bentoml"), **extra}
                procs.append(start([bentoml, "serve", "modelops_services.model_server:ModelService", "--host", "127.0.0.1",
                                    "--port", str(port)], env, f"http://127.0.0.1:{port}/readyz", tmp / f"server-{name}.log"))
                urls[name] = f"http://127.0.0.1:{port}"
            for name in ("off", "on"):  # warm-up: first requests train the batching dispatcher
                asyncio.run(load(urls[name], bodies, 3.0, args.concurrency))
            phases: dict[str, list] = {"off": [], "on": []}
            servers = {"on": procs[1], "off": procs[2]}
            for _ in range(pairs):
                for name in ("off", "on"):
                    c0, m0 = cpu_seconds(servers[name]), cpu_seconds(procs[0])
                    n, lat, errors = asyncio.run(load(urls[name], bodies, seconds, args.concurrency))
                    phases[name].append({"requests": n, "seconds": seconds, "errors": errors, "lat": lat,
                                         "server_cpu": cpu_seconds(servers[name]) - c0,
                                         "monitor_cpu": cpu_seconds(procs[0]) - m0})
            # Latency below saturation: a fixed rate of 40% of the unmonitored throughput.
            rate = 0.4 * sum(p["requests"] for p in phases["off"]) / sum(p["seconds"] for p in phases["off"])
            paced_lat: dict[str, list] = {"off": [], "on": []}
            for _ in range(pairs):
                for name in ("off", "on"):
                    c0 = cpu_seconds(servers[name])
                    lat, errors = asyncio.run(paced(urls[name], bodies, seconds, rate))
                    paced_lat[name].append({"lat": lat, "errors": errors, "server_cpu": cpu_seconds(servers[name]) - c0})
            observed = httpx.get(monitor + "/drift").json()["counters"]
        finally:
            for p in reversed(procs):
                stop(p)
    summary = {}
    for name, ph in phases.items():
        lat = np.concatenate([p["lat"] for p in ph]) * 1000.0
        summary[name] = {"throughput_rps": sum(p["requests"] for p in ph) / sum(p["seconds"] for p in ph),
                         "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                         "errors": sum(p["errors"] for p in ph), "requests": int(len(lat)),
                         "phase_rps": [p["requests"] / p["seconds"] for p in ph],
                         "server_cpu_ms_per_request": 1000 * sum(p["server_cpu"] for p in ph) / sum(p["requests"] for p in ph),
                         "monitor_cpu_ms_per_request": 1000 * sum(p["monitor_cpu"] for p in ph) / sum(p["requests"] for p in ph)}
        summary[name].pop("monitor_cpu_ms_per_request") if name == "off" else None
        plat = np.concatenate([p["lat"] for p in paced_lat[name]]) * 1000.0
        summary[name].update(paced_rps=rate, paced_p50_ms=float(np.percentile(plat, 50)),
                             paced_p99_ms=float(np.percentile(plat, 99)),
                             paced_errors=sum(p["errors"] for p in paced_lat[name]),
                             paced_server_cpu_ms_per_request=1000 * sum(p["server_cpu"] for p in paced_lat[name])
                             / sum(len(p["lat"]) for p in paced_lat[name]))
    ratio = summary["on"]["throughput_rps"] / summary["off"]["throughput_rps"]
    dp99 = summary["on"]["paced_p99_ms"] - summary["off"]["paced_p99_ms"]
    res = {"benchmark": "drift_overhead", "quick": args.quick, "concurrency": args.concurrency,
           "seconds_per_phase": seconds, "pairs": pairs, "summary": summary, "throughput_ratio": ratio,
           "p99_delta_ms": dp99, "monitor_counters": observed, "cpus": os.cpu_count()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift_overhead.json").write_text(json.dumps(res, indent=1))
    lines = ["# Model server overhead of monitoring" + (" (quick run)" if args.quick else ""), "",
             f"Closed loop, {args.concurrency} concurrent single-row requests, {pairs} alternating off/on phases of "
             f"{seconds:.0f} s; client, server and monitor share {os.cpu_count()} CPUs.", "",
             "Throughput: closed loop (saturated). Latency: open loop at a fixed rate of 40% of the "
             "unmonitored throughput, the same rate for both.", "",
             "| monitor | requests/s (closed loop) | p50 / p99 ms (closed loop) | fixed rate | p50 ms | p99 ms | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("off", "on"):
        s = summary[name]
        lines.append(f"| {name} | {s['throughput_rps']:,.0f} | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | {s['paced_rps']:.0f}/s | "
                     f"{s['paced_p50_ms']:.2f} | {s['paced_p99_ms']:.2f} | {s['errors'] + s['paced_errors']} |")
    on, off = summary["on"], summary["off"]
    lines += ["", f"Throughput ratio on/off: {ratio:.3f} (target >= 0.95). p99 change at the fixed rate: {dp99:+.2f} ms "
              "(target <= +1 ms).",
              f"CPU per request (closed loop): model server {off['server_cpu_ms_per_request']:.3f} ms without the monitor, "
              f"{on['server_cpu_ms_per_request']:.3f} ms with it; the monitor process used "
              f"{on['monitor_cpu_ms_per_request']:.3f} ms per monitored request. At the fixed rate (same batching for both): "
              f"{off['paced_server_cpu_ms_per_request']:.3f} ms without, {on['paced_server_cpu_ms_per_request']:.3f} ms with.",
              f"Monitor received {observed['observed_rows']:,} rows; the server dropped {observed['dropped_records']:,} records.", ""]
    md = "\n".join(lines)
    (out / "drift_overhead.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
