"""The BentoML model server: predict and metadata for a scikit-learn or XGBoost model.

Run with
    bentoml serve modelops_services.model_server:ModelService --host H --port P
and MODELOPS_MODEL_DIR (or MODELOPS_MODEL_TAG) pointing at a model directory.

Each request is validated on its own against the feature schema (a bad request
gets a 400 naming the field and cannot fail its neighbours); the validated rows
then go through BentoML's adaptive batching dispatcher, so concurrent requests
share one model call. Every answered request is handed to the monitor sidecar
through a bounded queue (see forwarding.py).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any, Sequence

import bentoml
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .forwarding import MonitorForwarder
from .model_dir import LoadedModel, load_model_dir, public_metadata, resolve_model_dir
from .schema import SchemaError

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
        self.forwarder = (
            MonitorForwarder(
                url,
                queue_size=int(os.environ.get("MODELOPS_MONITOR_QUEUE", "10000")),
                flush_s=float(os.environ.get("MODELOPS_MONITOR_FLUSH_MS", "250")) / 1000.0,
                on_drop=_dropped.inc,
            ) if url else None
        )
        self._batching = os.environ.get("MODELOPS_BATCHING", "on") != "off"
        self._max_batch = int(os.environ.get("MODELOPS_BATCH_MAX_SIZE", "256"))
        # The dispatcher sheds requests it expects to miss this bound; they then
        # run unbatched (below), so the bound only limits how long batching may wait.
        self._max_latency_ms = int(os.environ.get("MODELOPS_BATCH_MAX_LATENCY_MS", "10000"))
        self._infer = None

    # ------------------------------------------------------------ inference

    def _predict_frames(self, frames: Sequence[pd.DataFrame]) -> list[tuple[list[Any], list[float] | None]]:
        sizes = [len(f) for f in frames]
        preds, scores = self.model.predict(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
        out, start = [], 0
        for n in sizes:
            out.append((preds[start : start + n], None if scores is None else scores[start : start + n]))
            start += n
        return out

    def _dispatcher(self) -> Any:
        """BentoML's adaptive (CORK) dispatcher, created in the serving loop."""
        if self._infer is None:
            from bentoml._internal.marshal.dispatcher import CorkDispatcher
            from bentoml.exceptions import ServiceUnavailable

            def overloaded() -> Any:
                raise ServiceUnavailable("model server is overloaded")

            async def run(frames: Sequence[pd.DataFrame]) -> list[Any]:
                return await asyncio.to_thread(self._predict_frames, frames)

            cork = CorkDispatcher(
                max_latency_in_ms=self._max_latency_ms,
                max_batch_size=self._max_batch,
                fallback=overloaded,
                get_batch_size=len,
            )
            self._infer = cork(run)
        return self._infer

    async def _run_model(self, df: pd.DataFrame) -> tuple[list[Any], list[float] | None]:
        if self._batching and len(df) < self._max_batch:
            from bentoml.exceptions import ServiceUnavailable

            try:
                return await self._dispatcher()(df)
            except ServiceUnavailable:
                pass  # shed by the dispatcher: answer it without batching
        return (await asyncio.to_thread(self._predict_frames, [df]))[0]

    # ------------------------------------------------------------ APIs

    @bentoml.api(route="/predict")
    async def predict(self, rows: list[dict[str, Any]], ctx: bentoml.Context) -> dict[str, Any]:
        """Predict a batch of rows, each an object of named features."""
        t0 = time.perf_counter()
        request_id = uuid.uuid4().hex
        try:
            df = self.model.schema.validate(rows)
        except SchemaError as exc:
            ctx.response.status_code = 400
            self._forward(request_id, t0, 400)
            return {"error": str(exc), "field": exc.field, "request_id": request_id}
        try:
            preds, scores = await self._run_model(df)
        except Exception:
            self._forward(request_id, t0, 500)
            raise
        ids = [f"{request_id}-{i}" for i in range(len(preds))]
        self._forward(request_id, t0, 200, rows, preds, scores, ids)
        out: dict[str, Any] = {"request_id": request_id, "ids": ids, "predictions": preds}
        if scores is not None:
            out["scores"] = scores
        out["model"] = {"name": _METADATA.get("name"), "version": _METADATA.get("version")}
        return out

    @bentoml.api(route="/metadata")
    def metadata(self) -> dict[str, Any]:
        """Model name, version, training provenance, metrics and feature schema."""
        return dict(_METADATA)

    def _forward(self, request_id: str, t0: float, status: int, rows: Any = None,
                 preds: Any = None, scores: Any = None, ids: Any = None) -> None:
        if self.forwarder is None:
            return
        rec: dict[str, Any] = {"id": request_id, "status": status, "latency_ms": (time.perf_counter() - t0) * 1000.0}
        if status == 200:
            rec.update(features=rows, predictions=preds, ids=ids)
            if scores is not None:
                rec["scores"] = scores
        self.forwarder.submit(rec)
