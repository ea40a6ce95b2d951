"""Fetch times of the example models: what a model pod's init container adds to its
start, from each source, against copying the same directory on local disk (the floor:
the verification reads every byte once more).

For each example model, each source is timed from an empty cache (download, verify,
stage, rename) and from a warm one (a restarted container: the verified entry is
reused). Sources: a local directory (file://), Versity gateway over HTTP and over TLS,
and an MLflow registry (its artifact proxy), all real and on this machine, so the
figures are the client's and the store's overheads, not a network's.

    python -m bench.sources [--quick] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from modelops_services.sources.credentials import Credentials  # noqa: E402
from modelops_services.sources.fetch import fetch  # noqa: E402
from modelops_services.sources.publish import publish  # noqa: E402
from modelops_services.sources.uri import parse, parse_target  # noqa: E402

MODELS = ("churn-sklearn-v1", "churn-xgboost-v1")


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 9

    from tests.mlflowserver import ensure_venv, start_mlflow
    from tests.s3store import start_versity, versitygw_binary
    from train_churn import train_all

    work = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    stops = []
    rows = []
    try:
        models = work / "models"
        train_all(models, rows=8000, seed=7, training_date="2026-01-01", flavours=("sklearn", "xgboost"))
        binary = versitygw_binary()
        plain = start_versity(work / "s3", binary=binary)
        stops.append(plain.stop)
        tls = start_versity(work / "s3-tls", tls=True, binary=binary)
        stops.append(tls.stop)
        ensure_venv()
        mlflow = start_mlflow(work / "mlflow")
        stops.append(mlflow.stop)
        for name in MODELS:
            d = models / name
            local_creds = Credentials()
            sources = {"file://": (parse(f"file://{d}"), local_creds)}
            _, digest = publish(d, parse("s3://bench/" + name + "/"), Credentials.load(env=plain.credentials_env()))
            sources["s3 (http)"] = (parse(f"s3://bench/{name}/"), Credentials.load(env=plain.credentials_env()))
            publish(d, parse("s3://bench/" + name + "/"), Credentials.load(env=tls.credentials_env()))
            sources["s3 (tls)"] = (parse(f"s3://bench/{name}/"), Credentials.load(env=tls.credentials_env()))
            mcreds = Credentials.load(env=mlflow.env())
            pinned, _ = publish(d, parse_target(f"models:/{name}"), mcreds)
            sources["mlflow"] = (parse(pinned), mcreds)
            size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
            count = sum(1 for p in d.rglob("*") if p.is_file())
            def copy(d=d):
                shutil.rmtree(work / "copy", ignore_errors=True)
                shutil.copytree(d, work / "copy")
            floor = _median(copy, repeats)
            for label, (uri, creds) in sources.items():
                cache = work / "cache"

                def cold(uri=uri, creds=creds, cache=cache):
                    shutil.rmtree(cache, ignore_errors=True)
                    fetch(uri, creds, cache, digest)
                cold_s = _median(cold, repeats)
                warm_s = _median(lambda uri=uri, creds=creds, cache=cache: fetch(uri, creds, cache, digest), repeats)
                rows.append({"model": name, "files": count, "bytes": size, "source": label,
                             "cold_s": round(cold_s, 4), "warm_s": round(warm_s, 5),
                             "copy_s": round(floor, 4), "cold_over_copy": round(cold_s / floor, 1)})
                print(f"{name:18} {label:10} cold {cold_s * 1000:7.1f} ms  warm {warm_s * 1000:6.2f} ms  "
                      f"(local copy {floor * 1000:.1f} ms)", flush=True)
    finally:
        for stop in reversed(stops):
            stop()
        shutil.rmtree(work, ignore_errors=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_fetch.json").write_text(json.dumps({"repeats": repeats, "rows": rows}, indent=2) + "\n")
    lines = ["# Model fetch times (`python -m bench.sources`)", "",
             f"Median of {repeats} fetches into an empty cache (cold) and into one holding the verified entry "
             "(warm: a restarted container), against copying the directory on local disk.", "",
             "| model | files | bytes | source | cold | warm | local copy | cold / copy |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['files']} | {r['bytes']} | {r['source']} | {r['cold_s'] * 1000:.1f} ms | "
              f"{r['warm_s'] * 1000:.2f} ms | {r['copy_s'] * 1000:.1f} ms | {r['cold_over_copy']} |" for r in rows]
    (out / "model_fetch.md").write_text("\n".join(lines) + "\n")
    return 0
