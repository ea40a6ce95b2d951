"""Replay churn traffic against a model server, normal or with a chosen shift.

    python examples/traffic.py --url http://127.0.0.1:3000 --rows 5000
    python examples/traffic.py --url ... --shift mean --feature monthly_charges --amount 0.5
    python examples/traffic.py --url ... --shift missing --amount 0.2 --feedback http://127.0.0.1:9091

Shifts: none, mean (+amount std), variance (x amount), new-category (share),
missing (share). With --feedback, the true labels are posted to the monitor's
/feedback by prediction id, as a late ground-truth pipeline would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from churn_data import FEATURES, LABEL, customers, shift  # noqa: E402


def to_rows(df) -> list[dict[str, Any]]:
    rows = []
    for rec in df[FEATURES].to_dict("records"):
        row = {}
        for k, v in rec.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                row[k] = None
            elif hasattr(v, "item"):
                row[k] = v.item()
            else:
                row[k] = v
        rows.append(row)
    return rows


async def replay(url: str, rows: list[dict[str, Any]], labels: list[int], batch: int, concurrency: int,
                 feedback: str | None = None, feedback_delay: float = 1.0, keepalive: bool = True) -> dict[str, Any]:
    """Send the rows; with feedback, post the true labels by prediction id after
    feedback_delay seconds (ground truth comes late, after the monitor has the
    predictions). stats["labels"] holds the {id, label} pairs either way.
    Without keepalive every request opens its own connection: through a Kubernetes
    Service, kube-proxy picks an endpoint per connection, so only then do requests
    spread over the endpoints as they come and go (a canary's new pods included)."""
    import aiohttp

    stats = {"requests": 0, "ok": 0, "errors": 0, "labels_sent": 0}
    chunks = [(rows[i : i + batch], labels[i : i + batch]) for i in range(0, len(rows), batch)]
    queue: asyncio.Queue = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)
    pending_labels: list[dict[str, Any]] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            part, y = queue.get_nowait()
            stats["requests"] += 1
            try:
                async with session.post(url.rstrip("/") + "/predict", json={"rows": part}) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 200:
                        stats["ok"] += 1
                        pending_labels.extend({"id": i, "label": int(l)} for i, l in zip(body["ids"], y))
                    else:
                        stats["errors"] += 1
            except aiohttp.ClientError:
                stats["errors"] += 1

    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=not keepalive)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        if feedback and pending_labels:
            await asyncio.sleep(feedback_delay)
            for i in range(0, len(pending_labels), 1000):
                async with session.post(feedback.rstrip("/") + "/feedback", json={"labels": pending_labels[i : i + 1000]}) as r:
                    await r.read()
            stats["labels_sent"] = len(pending_labels)
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["labels"] = pending_labels
    return stats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="model server base URL")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--batch", type=int, default=10, help="rows per request")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--shift", default="none", choices=["none", "mean", "variance", "new-category", "missing"])
    p.add_argument("--feature")
    p.add_argument("--amount", type=float)
    p.add_argument("--feedback", help="monitor base URL to post true labels to")
    p.add_argument("--no-keepalive", dest="keepalive", action="store_false",
                   help="a new connection per request (to spread over a Service's endpoints)")
    args = p.parse_args()
    df = shift(customers(args.rows, args.seed), args.shift, args.feature, args.amount, seed=args.seed)
    stats = asyncio.run(replay(args.url, to_rows(df), df[LABEL].tolist(), args.batch, args.concurrency, args.feedback,
                               keepalive=args.keepalive))
    stats.pop("labels")
    print(json.dumps(stats))
    return 0 if stats["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
