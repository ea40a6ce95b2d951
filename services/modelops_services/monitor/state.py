"""Everything the monitor knows: drift windows, request health and online quality.

Input arrives as JSON from the model server (through the pod's Unix socket, or on
the TCP port when the monitor runs by hand), so every record is checked and a bad one is counted and skipped; nothing
in here raises on input.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..drift import PREDICTION, PREDICTION_LABEL, DriftEngine, DriftReport, Profile
from ..drift.window import SlidingCounts
from ..feedback_routing import signed_owner
from ..quality import PendingPredictions, QualityWindow
from ..request_keys import valid_key
from .config import MonitorConfig
from .recent import RecentPredictions

# Cumulative latency histogram buckets (seconds), exported to Prometheus.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Finer log-spaced bins for the windowed p50/p99: 0.1 ms .. 100 s, 4% apart.
_LAT_EDGES = np.geomspace(1e-4, 100.0, 352)
STATUS_CLASSES = ("2xx", "4xx", "5xx")


def status_class(code: Any) -> str | None:
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        return None
    return "2xx" if code < 400 else "4xx" if code < 500 else "5xx"


class MonitorState:
    def __init__(self, config: MonitorConfig, profile: Profile):
        self.config = config
        self.profile = profile
        self.engine = DriftEngine(profile, config.drift, n_sub=config.n_sub)
        self.engine.evidence.started[self.engine.evidence.head] = time.time()
        self.feature_names = [s.name for s in profile.features]
        self.pred_names = [s.name for s in profile.prediction]
        # Cumulative prediction bin counts, exported as counters: Prometheus' increase()
        # over the candidate's age gives both tracks' predictions over the same period.
        self.prediction_counts = {s.name: np.zeros(s.n_bins, dtype=np.int64) for s in profile.prediction}
        info = profile.info or {}
        self.task = info.get("task", "classification")
        self.quality = QualityWindow(
            "regression" if self.task == "regression" else "classification",
            config.n_sub,
            positive_class=info.get("positive_class", 1),
        )
        self.pending = PendingPredictions(config.pending_max)
        self.recent = RecentPredictions()  # answers by request key, for a shadow's comparison
        # Windowed request health: counts per status class + latency bins.
        self.health = SlidingCounts(config.n_sub, len(STATUS_CLASSES) + len(_LAT_EDGES) + 1)
        self.requests_total = dict.fromkeys(STATUS_CLASSES, 0)
        self.latency_buckets = np.zeros(len(LATENCY_BUCKETS) + 1, dtype=np.int64)
        self.latency_sum = 0.0
        self.observed_rows = 0
        self.malformed = 0
        self.dropped = 0
        self.feedback = {"matched": 0, "unmatched": 0, "malformed": 0, "unverified": 0}
        self.started = time.time()
        self.last_rotation = time.time()
        self._report: DriftReport | None = None

    # ------------------------------------------------------------ ingest

    def observe(self, payload: Any) -> tuple[int, int]:
        """Take a batch {"records": [...], "dropped": k}; return (accepted, malformed)."""
        if isinstance(payload, list):
            payload = {"records": payload}
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            self.malformed += 1
            return 0, 1
        dropped = payload.get("dropped", 0)
        if isinstance(dropped, int) and not isinstance(dropped, bool) and 0 <= dropped < 2**53:
            self.dropped += dropped
        columns: dict[str, list[Any]] = {n: [] for n in (*self.feature_names, *self.pred_names)}
        n_rows = accepted = bad = 0
        for rec in payload["records"]:
            rows = self._check(rec)
            if rows is None:
                bad += 1
                continue
            accepted += 1
            self._count_request(rec)
            if status_class(rec["status"]) != "2xx":
                continue
            self._add_rows(rec, rows, columns)
            n_rows += len(rows)
        if n_rows:
            try:
                counts = self.engine.observe(columns, n_rows)
                self.observed_rows += n_rows
                offset = 0
                for spec in self.engine.specs:
                    if spec.name in self.prediction_counts:
                        self.prediction_counts[spec.name] += counts[offset:offset + spec.n_bins]
                    offset += spec.n_bins
            except (ValueError, TypeError):  # defensive: a column that will not bin
                self.malformed += 1
        self.malformed += bad
        self._report = None
        return accepted, bad

    def _check(self, rec: Any) -> list[dict[str, Any]] | None:
        """The record's feature rows if it is well formed, else None."""
        if not isinstance(rec, dict) or status_class(rec.get("status")) is None:
            return None
        lat = rec.get("latency_ms")
        if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not math.isfinite(lat) or lat < 0:
            return None
        if status_class(rec["status"]) != "2xx":
            return []
        rows, preds = rec.get("features"), rec.get("predictions")
        if not isinstance(rows, list) or not isinstance(preds, list) or len(rows) != len(preds) or not rows:
            return None
        if not all(isinstance(r, dict) for r in rows):
            return None
        if "key" in rec and not valid_key(rec["key"]):
            return None
        for key in ("scores", "ids"):
            v = rec.get(key)
            if v is not None and (not isinstance(v, list) or len(v) != len(rows)):
                return None
        return rows

    def _count_request(self, rec: dict[str, Any]) -> None:
        cls = status_class(rec["status"])
        self.requests_total[cls] += 1
        lat = float(rec["latency_ms"]) / 1000.0
        self.latency_buckets[np.searchsorted(LATENCY_BUCKETS, lat, side="left")] += 1
        self.latency_sum += lat
        v = np.zeros(self.health.total.shape[0], dtype=np.int64)
        v[STATUS_CLASSES.index(cls)] = 1
        v[len(STATUS_CLASSES) + int(np.searchsorted(_LAT_EDGES, lat, side="right"))] = 1
        self.health.add(v, 1)

    def _add_rows(self, rec: dict[str, Any], rows: list[dict[str, Any]], columns: dict[str, list[Any]]) -> None:
        preds, scores, ids = rec["predictions"], rec.get("scores"), rec.get("ids")
        for name in self.feature_names:
            columns[name].extend(r.get(name) for r in rows)
        for name in self.pred_names:
            if name == PREDICTION_LABEL:
                columns[name].extend(preds)
            elif name == PREDICTION:
                columns[name].extend(scores if scores is not None else preds)
        if "key" in rec:
            self.recent.put(rec["key"], time.time(), preds)
        if ids is not None:
            for i, key in enumerate(ids):
                if isinstance(key, str):
                    s = scores[i] if scores is not None else None
                    self.pending.put(key, preds[i], s if isinstance(s, (int, float)) and not isinstance(s, bool) else None)

    def add_feedback(self, payload: Any, key: bytes | None = None) -> tuple[int, int, int]:
        """Take {"labels": [{"id": ..., "label": ...}]}; return (matched, unmatched, malformed)."""
        counts = self.take_feedback(payload, key)
        return counts["matched"], counts["unmatched"], counts["malformed"]

    def take_feedback(self, payload: Any, key: bytes | None = None) -> dict[str, int]:
        """Take {"labels": [{"id": ..., "label": ...}]}; return the counts by status. With
        `key` (the ModelDeployment's feedback key), a label whose id is not signed with
        it is counted unverified and never matched."""
        counts = {"matched": 0, "unmatched": 0, "malformed": 0, "unverified": 0}
        items = payload.get("labels") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            counts["malformed"] = 1
            self.feedback["malformed"] += 1
            return counts
        for it in items:
            if not isinstance(it, dict) or not isinstance(it.get("id"), str) or "label" not in it:
                counts["malformed"] += 1
                continue
            if key is not None and signed_owner(key, it["id"]) is None:
                counts["unverified"] += 1
                continue
            hit = self.pending.pop(it["id"])
            if hit is None:
                counts["unmatched"] += 1
            elif self.quality.add(it["label"], hit[0], hit[1]):
                counts["matched"] += 1
            else:
                counts["malformed"] += 1
        for k, v in counts.items():
            self.feedback[k] += v
        return counts

    # ------------------------------------------------------------ windows

    def rotate(self) -> None:
        self.engine.rotate()
        self.health.rotate()
        self.quality.rotate()
        self.last_rotation = time.time()
        self._report = None

    def next_block(self) -> None:
        self.engine.next_block(time.time())
        self._report = None

    def predictions_since(self, since: float) -> dict[str, Any]:
        """Bin counts of the predictions in the blocks begun at or after `since` (unix
        seconds): what the candidate's and the stable's predictions are compared on
        over the same period."""
        counts, rows = self.engine.evidence.counts_since(since)
        out, offset = {}, 0
        for spec in self.engine.specs:
            if spec.name in self.pred_names:
                out[spec.name] = dict(zip(spec.labels(), (int(c) for c in counts[offset:offset + spec.n_bins])))
            offset += spec.n_bins
        return {"since": since, "rows": rows, "features": out}

    def prediction_totals(self) -> dict[str, dict[str, int]]:
        """Cumulative counts of each prediction since the monitor started, by bin label
        (a class, or a score interval): another model's profile has other score bins,
        and only bins of the same label can be compared."""
        labels = {s.name: s.labels() for s in self.profile.prediction}
        return {name: dict(zip(labels[name], (int(c) for c in self.prediction_counts[name])))
                for name in self.pred_names}

    def report(self) -> DriftReport:
        if self._report is None:
            self._report = self.engine.evaluate()
        return self._report

    def window_health(self) -> dict[str, float]:
        t = self.health.total
        by_class = dict(zip(STATUS_CLASSES, (int(x) for x in t[: len(STATUS_CLASSES)])))
        n = sum(by_class.values())
        lat = t[len(STATUS_CLASSES) :]
        return {
            "requests": n,
            "error_rate": by_class["5xx"] / n if n else float("nan"),
            "client_error_rate": by_class["4xx"] / n if n else float("nan"),
            "latency_p50_seconds": _quantile(lat, 0.5),
            "latency_p99_seconds": _quantile(lat, 0.99),
        }

    def snapshot(self) -> dict[str, Any]:
        """The /drift document: the same numbers as /metrics, as JSON."""
        d = self.report().to_dict()
        return {
            "labels": dict(self.config.labels),
            "profile": {"hash": self.profile.hash, "n_reference": self.profile.n_reference},
            "window": {
                "seconds": self.config.window_seconds,
                "subwindows": self.config.n_sub,
                "rows": d["window_rows"],
                "labelled_rows": self.quality.n,
                "last_rotation": self.last_rotation,
            },
            "drift": d,
            "health": self.window_health(),
            "quality": {"task": self.quality.task, **self.quality.metrics(),
                        "stderr": self.quality.stderr(), "samples": self.quality.samples()},
            "counters": {
                "requests": dict(self.requests_total),
                "observed_rows": self.observed_rows,
                "malformed_observations": self.malformed,
                "dropped_records": self.dropped,
                "feedback": dict(self.feedback),
                "pending_predictions": len(self.pending),
            },
        }


def _quantile(counts: np.ndarray, q: float) -> float:
    n = counts.sum()
    if n == 0:
        return float("nan")
    i = int(np.searchsorted(np.cumsum(counts), q * n, side="left"))
    # Bin i covers [edge[i-1], edge[i]); report its upper edge (conservative).
    return float(_LAT_EDGES[min(i, len(_LAT_EDGES) - 1)])
