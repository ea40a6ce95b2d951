"""Monitor memory: RSS after 1,000,000 observations vs after 10,000 (target: within 5%).

    python -m bench.drift.memory [--quick]

Starts the real monitor process (the churn example's profile), posts
single-row request records with unique prediction ids (as the model server
does, so the pending-label store fills too) and a label for every tenth
prediction, and reads the process's RSS from /proc.
--quick posts 300,000 observations instead of 1,000,000.
Results: bench/results/drift_memory.{json,md}.
"""

from __future__ import annotations

import argparse
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
from .. import results

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_model(tmp: Path) -> Path:
    sys.path.insert(0, str(EXAMPLES))
    from train_churn import train_one

    return train_one("sklearn", "v1", tmp, rows=20_000, seed=7, training_date="2026-01-01")


def payloads(start: int, n_posts: int, per_post: int, rows: list[dict]):
    for p in range(n_posts):
        recs = []
        for j in range(per_post):
            k = start + p * per_post + j
            rid = f"{k:032x}"
            recs.append({"id": rid, "status": 200, "latency_ms": 1.5, "features": [rows[k % len(rows)]],
                         "predictions": [k % 2], "scores": [0.25 + 0.5 * (k % 2)], "ids": [f"{rid}-0"]})
        labels = [{"id": f"{start + p * per_post + j:032x}-0", "label": 1} for j in range(0, per_post, 10)]
        yield json.dumps({"records": recs, "dropped": 0}).encode(), json.dumps({"labels": labels}).encode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="monitor RSS under 1M observations")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(results.DIR))
    args = ap.parse_args(argv)
    total = 300_000 if args.quick else 1_000_000
    per_post = 500
    sys.path.insert(0, str(EXAMPLES))
    from churn_data import customers
    from traffic import to_rows

    rows = to_rows(customers(5000, 11))
    with tempfile.TemporaryDirectory() as tmp:
        model = example_model(Path(tmp))
        port = free_port()
        env = {**os.environ, "MODELOPS_PROFILE_PATH": str(model / "profile.json"), "MODELOPS_WINDOW": "5m",
               "MODELOPS_MONITOR_HOST": "127.0.0.1", "MODELOPS_MONITOR_PORT": str(port)}
        proc = subprocess.Popen([sys.executable, "-m", "modelops_services.monitor"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            client = httpx.Client(base_url=url, timeout=60)
            samples = []
            sent = 0
            t0 = time.perf_counter()
            checkpoints = sorted({10_000, 100_000, 300_000, 1_000_000} & set(range(0, total + 1, per_post)))
            for body, fb in payloads(0, total // per_post, per_post, rows):
                client.post("/observe", content=body, headers={"Content-Type": "application/json"}).raise_for_status()
                client.post("/feedback", content=fb, headers={"Content-Type": "application/json"}).raise_for_status()
                sent += per_post
                if sent in checkpoints:
                    client.get("/metrics")
                    client.get("/drift")
                    samples.append({"observations": sent, "rss_kib": rss_kib(proc.pid),
                                    "seconds": time.perf_counter() - t0})
            snap = client.get("/drift").json()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    first, last = samples[0], samples[-1]
    res = {"benchmark": "drift_memory", "quick": args.quick, "samples": samples,
           "growth": last["rss_kib"] / first["rss_kib"] - 1.0,
           "observations_per_second": last["observations"] / last["seconds"],
           "monitor_counters": snap["counters"]}
    lines = ["# Monitor memory" + (" (quick run)" if args.quick else ""), "",
             "| observations | RSS MiB |", "|---:|---:|"]
    lines += [f"| {s['observations']:,} | {s['rss_kib'] / 1024:.1f} |" for s in samples]
    lines += ["", f"Growth from {first['observations']:,} to {last['observations']:,}: {100 * res['growth']:+.1f}% "
              f"(target within 5%). Ingest rate over HTTP: {res['observations_per_second']:,.0f} observations/s.", ""]
    results.publish(args.out, "drift_memory", res, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
