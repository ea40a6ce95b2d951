"""The BentoML model server: predict and metadata for a scikit-learn or XGBoost model.

Run with
    bentoml serve modelops_services.model_server:ModelService --host H --port P
and MODELOPS_MODEL_DIR (or MODELOPS_MODEL_TAG) pointing at a model directory.

Each request is validated on its own against the feature schema (a bad request
gets a 400 naming the field and cannot fail its neighbours); the validated rows
then go through an opportunistic batcher (batching.py): a request runs at once
when the model is idle, and requests that arrive while it computes share the
next model call. Every answered request is handed to the monitor sidecar
through a bounded queue (see forwarding.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import bentoml
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .batching import Batcher
from .feedback_routing import Owner, monitor_url
from .forwarding import MonitorForwarder
from .model_dir import LoadedModel, load_model_dir, public_metadata, resolve_model_dir
from .request_keys import valid_key
from .schema import SchemaError
from .sticky import RevisionMiddleware

# BentoML's sampler records every request's tracing spans even at sample rate 0.
# They are reference cycles that only full garbage collections reclaim, which then
# take tens of milliseconds under load and set the p99. To trace, set
# OTEL_SDK_DISABLED=false together with BentoML's tracing configuration.
# (Read when the worker builds its tracer provider, after this module is imported.)
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

_METADATA: dict[str, Any] = {}


async def _get_metadata(request: Request) -> JSONResponse:
    return JSONResponse(_METADATA)


# GET /model/metadata for people and probes (BentoML API methods are POST-only).
metadata_app = Starlette(routes=[Route("/metadata", _get_metadata, methods=["GET"])])

_dropped = bentoml.metrics.Counter(
    name="modelops_monitor_dropped_records",
    documentation="Records not handed to the monitor (queue full or monitor unreachable)",
)


@bentoml.asgi_app(metadata_app, path="/model")
@bentoml.service(name="modelops-model", traffic={"timeout": 30})
class ModelService:
    def __init__(self) -> None:
        self.model: LoadedModel = load_model_dir(resolve_model_dir())
        _METADATA.clear()
        _METADATA.update(public_metadata(self.model))
        url = os.environ.get("MODELOPS_MONITOR_URL", "").strip()
        # The monitor in this pod takes records and relayed labels only through its
        # Unix socket (a volume the two containers share); its TCP port (the URL's)
        # is where other replicas' monitors are reached.
        self.monitor_socket = os.environ.get("MODELOPS_MONITOR_SOCKET", "").strip() or None
        self.monitor_url = url.rstrip("/") or None
        # Every pod of a Deployment has its monitor on the same port.
        self.monitor_port = (urlsplit(self.monitor_url).port or 80) if self.monitor_url else 9091
        self.owner = Owner.from_env()
        self._feedback_session = None
        self._local_session = None
        self.forwarder = (
            MonitorForwarder(
                url,
                queue_size=int(os.environ.get("MODELOPS_MONITOR_QUEUE", "10000")),
                flush_s=float(os.environ.get("MODELOPS_MONITOR_FLUSH_MS", "250")) / 1000.0,
                on_drop=_dropped.inc,
                socket_path=self.monitor_socket,
            ) if url or self.monitor_socket else None
        )
        # MODELOPS_BATCHING=off: every request is its own model call (still on the
        # one model thread). MODELOPS_BATCH_MAX_LATENCY_MS is no longer read: the
        # batcher never waits for a batch to fill, so there is no bound to set.
        batching = os.environ.get("MODELOPS_BATCHING", "on").strip().lower() != "off"
        max_batch = int(os.environ.get("MODELOPS_BATCH_MAX_SIZE", "256")) if batching else 1
        self.batcher: Batcher[pd.DataFrame, tuple[list[Any], list[float] | None]] = Batcher(
            self._predict_frames, max_batch_size=max(1, max_batch), size=len)
        # A full garbage collection walks every tracked object with the event loop
        # stopped: with BentoML, pandas and scikit-learn loaded that is ~0.1 s,
        # often enough to set p99 on its own. What exists now (modules, the model)
        # lives as long as the process, so keep it out of the collector's walks.
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------ inference

    def _predict_frames(self, frames: Sequence[pd.DataFrame]) -> list[tuple[list[Any], list[float] | None]]:
        """One model call for validated frames; their rows are split back per frame."""
        sizes = [len(f) for f in frames]
        preds, scores = self.model.predict(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
        out, start = [], 0
        for n in sizes:
            out.append((preds[start : start + n], None if scores is None else scores[start : start + n]))
            start += n
        return out

    # ------------------------------------------------------------ APIs

    @bentoml.api(route="/predict")
    async def predict(self, rows: list[dict[str, Any]], ctx: bentoml.Context) -> dict[str, Any]:
        """Predict a batch of rows, each an object of named features."""
        t0 = time.perf_counter()
        request_id = self.owner.new_request_id()
        try:
            df = self.model.schema.validate(rows)
        except SchemaError as exc:
            ctx.response.status_code = 400
            self._forward(request_id, t0, 400)
            return {"error": str(exc), "field": exc.field, "request_id": request_id}
        try:
            preds, scores = await self.batcher.submit(df)
        except Exception:
            self._forward(request_id, t0, 500)
            raise
        ids = [f"{request_id}-{i}" for i in range(len(preds))]
        # A mirrored copy of a request carries the same x-request-id as the original:
        # the monitors keep answers under it, so a shadow can be matched with the stable.
        key = ctx.request.headers.get("x-request-id")
        self._forward(request_id, t0, 200, rows, preds, scores, ids, key if valid_key(key) else None)
        out: dict[str, Any] = {"request_id": request_id, "ids": ids, "predictions": preds}
        if scores is not None:
            out["scores"] = scores
        out["model"] = {"name": _METADATA.get("name"), "version": _METADATA.get("version")}
        return out

    @bentoml.api(route="/feedback")
    async def feedback(self, labels: list[dict[str, Any]], ctx: bentoml.Context) -> dict[str, Any]:
        """Ground truth by prediction id, each label sent to the monitor that saw the
        prediction, whichever replica this is (feedback_routing.py)."""
        counts = {"matched": 0, "unmatched": 0, "malformed": 0, "unverified": 0, "undelivered": 0}
        if self.forwarder is None:
            ctx.response.status_code = 404
            return {"error": "this model server has no monitor (MODELOPS_MONITOR_URL); labels are not kept",
                    "field": "labels"}
        # Labels of this pod's predictions (and those no signature vouches for, which the
        # monitor counts unverified) go to the local monitor; the rest to their owner's.
        sends = [(None if ip is None else monitor_url(ip, self.monitor_port), items)
                 for ip, items in self.owner.route(labels).items()]
        for answer, n in zip(await asyncio.gather(*(self._post_feedback(u, items) for u, items in sends)),
                             (len(items) for _, items in sends), strict=True):
            if answer is None:
                counts["undelivered"] += n
            else:
                for key in ("matched", "unmatched", "malformed", "unverified"):
                    counts[key] += int(answer.get(key, 0))
        return counts

    async def _post_feedback(self, url: str | None, items: list[Any]) -> dict[str, Any] | None:
        """The monitor's answer (None: the local one), or None when it could not be reached."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=5)
        if url is None and self.monitor_socket:
            if self._local_session is None:
                self._local_session = aiohttp.ClientSession(
                    timeout=timeout, connector=aiohttp.UnixConnector(path=self.monitor_socket))
            session, url = self._local_session, "http://localhost/feedback"
        else:
            if self._feedback_session is None:
                self._feedback_session = aiohttp.ClientSession(timeout=timeout)
            session, url = self._feedback_session, url or f"{self.monitor_url}/feedback"
        try:
            async with session.post(url, json={"labels": items}) as resp:
                body = await resp.json(content_type=None)
                return body if isinstance(body, dict) else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    @bentoml.api(route="/metadata")
    def metadata(self) -> dict[str, Any]:
        """Model name, version, training provenance, metrics and feature schema."""
        return dict(_METADATA)

    def _forward(self, request_id: str, t0: float, status: int, rows: Any = None,
                 preds: Any = None, scores: Any = None, ids: Any = None, key: str | None = None) -> None:
        """Hand the request to the monitor without holding up its answer.

        Only the latency is taken here; the record is built and queued by a
        callback on the event loop, so this coroutine goes straight on to
        return the answer. The forwarder serialises and posts records in
        batches from its own task.
        """
        if self.forwarder is None:
            return
        latency_ms = (time.perf_counter() - t0) * 1000.0
        asyncio.get_running_loop().call_soon(self._submit, request_id, status, latency_ms, rows, preds, scores, ids,
                                             key)

    def _submit(self, request_id: str, status: int, latency_ms: float, rows: Any,
                preds: Any, scores: Any, ids: Any, key: str | None = None) -> None:
        assert self.forwarder is not None
        rec: dict[str, Any] = {"id": request_id, "status": status, "latency_ms": latency_ms}
        if status == 200:
            rec.update(features=rows, predictions=preds, ids=ids)
            if scores is not None:
                rec["scores"] = scores
            if key is not None:
                rec["key"] = key
        self.forwarder.submit(rec)


# Answers name their revision; A/B sessions get their variant cookie from it (sticky.py).
ModelService.add_asgi_middleware(RevisionMiddleware)
